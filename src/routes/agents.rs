//! Staff (PROTOCOL §6): admins create agents; any agent lists them with their presence.

use super::{admin, agent, parse, HubData};
use crate::domain::Role;
use crate::error::ApiError;
use crate::store::index::names;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

/// Registers the agent routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/agents", web::post().to(create))
        .route("/api/agents", super::get().to(list))
        .route("/api/agents/{id}/token", web::post().to(new_token))
        .route("/api/agents/{id}", web::patch().to(update));
}

/// `PATCH /api/agents/{id}` (an extension): `{"capacity"?: n | null, "channels"?: [..] |
/// null}`, at least one, no other field. A present null is told apart from an absent
/// field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default, deserialize_with = "present")]
    capacity: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    channels: Option<Option<Vec<String>>>,
}

fn present<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Most channels an agent is given.
const MAX_CHANNELS: usize = 100;

/// An agent's channels as given: each a channel's name as widgets send it (1 to 64
/// characters, not blank), at least one, repeats dropped.
fn channels(list: Vec<String>) -> Result<Vec<String>, ApiError> {
    if list.is_empty() {
        return Err(ApiError::invalid(
            "channels must name at least one channel, or be null for every channel",
        ));
    }
    if list.len() > MAX_CHANNELS {
        return Err(ApiError::invalid("at most 100 channels"));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for c in list {
        if c.trim().is_empty() || c.chars().count() > 64 {
            return Err(ApiError::invalid("each channel must be 1 to 64 characters"));
        }
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

/// An extension: `PATCH /api/agents/{id}` (admin) sets what automatic assignment gives
/// an agent: its `capacity` (the most conversations at once; null: no limit; 0: never)
/// and its `channels` (null: every channel), answered 200 with the agent as
/// `GET /api/agents` lists it.
async fn update(
    hub: HubData,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    admin(&hub, &req).await?;
    let body = super::read_body(&req, payload).await?;
    let b: UpdateBody = parse(&body)?;
    if b.capacity.is_none() && b.channels.is_none() {
        return Err(ApiError::invalid("give capacity, channels or both"));
    }
    let wanted = match b.channels {
        Some(Some(list)) => Some(Some(channels(list)?)),
        other => other,
    };
    let rec = hub
        .set_agent_routing(
            crate::domain::AgentId::from(path.into_inner()),
            b.capacity,
            wanted,
        )
        .await?;
    tracing::info!(agent_id = %rec.id, capacity = ?rec.capacity, channels = rec.channels.as_ref().map(|c| c.len()), "Agent routing set.");
    let agent = listed(&hub, &rec);
    // Consoles that take signals hear it (their team list compares workloads with it).
    let signal = json!({"type": "agent", "agent": agent});
    hub.bus
        .signal_agents(signal.to_string().as_bytes(), u64::MAX);
    Ok(HttpResponse::Ok().json(agent))
}

/// An agent as `GET /api/agents` lists it.
/// (`channels` only when the agent has some: an agent of every channel lists as before.)
fn listed(hub: &crate::hub::Hub, a: &crate::auth::AgentRecord) -> serde_json::Value {
    let mut v = json!({
        "id": a.id, "name": a.name, "role": a.role, "capacity": a.capacity,
        "presence": hub.presence.get(a.id.as_str()).as_str(),
    });
    if let Some(c) = &a.channels {
        v["channels"] = json!(c);
    }
    v
}

#[derive(Deserialize)]
struct CreateBody {
    name: String,
    role: Role,
    capacity: Option<u32>,
}

/// An agent with its token, as creation (§6) and a new token answer it.
fn with_token(rec: &crate::auth::AgentRecord, token: &str) -> serde_json::Value {
    json!({
        "id": rec.id, "name": rec.name, "role": rec.role, "capacity": rec.capacity, "token": token,
    })
}

async fn create(
    hub: HubData,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    admin(&hub, &req).await?;
    let body = super::read_body(&req, payload).await?;
    let b: CreateBody = parse(&body)?;
    let name = b.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid("name must be 1 to 100 characters"));
    }
    // A name of invisible characters only (a zero-width space) would show as nothing.
    if crate::auth::caseless(&name).trim().is_empty() {
        return Err(ApiError::invalid("name must have a visible character"));
    }
    let (rec, token) = hub.create_agent(name, b.role, b.capacity).await?;
    tracing::info!(agent_id = %rec.id, role = ?rec.role, "Agent created.");
    Ok(HttpResponse::Created().json(with_token(&rec, &token)))
}

/// An extension: `POST /api/agents/{id}/token` (admin) gives an agent a new token, answered
/// 200 `{"id","name","role","capacity","token"}` as creation is; the old token stops
/// working at once (its consoles close with 4401). A lost token no longer locks an agent
/// out for good (names are unique: no new agent could take the name).
async fn new_token(
    hub: HubData,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    admin(&hub, &req).await?;
    let body = super::read_body(&req, payload).await?;
    if !body.is_empty() {
        parse::<serde_json::Value>(&body)?;
    }
    let (rec, token) = hub
        .new_agent_token(crate::domain::AgentId::from(path.into_inner()))
        .await?;
    Ok(HttpResponse::Ok().json(with_token(&rec, &token)))
}

#[derive(Deserialize)]
struct ListQuery {
    workload: Option<String>,
}

async fn list(hub: HubData, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    agent(&hub, &req).await?;
    let q = web::Query::<ListQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::invalid(format!("invalid query: {e}")))?;
    let workload = super::flag("workload", q.workload.as_deref())?;
    let agents = hub.directory.agents();
    let mut items: Vec<_> = agents.iter().map(|a| listed(&hub, a)).collect();
    // An extension (`?workload=true`): who has what, from the counts the hub keeps per
    // folder: `{"assigned"` (Mine: assigned or help answered), `"on_hold"`,
    // `"help_requested"` (their open help requests)`, "conversations"` (the conversations
    // of their Mine and On hold messages whose session is active: what a capacity
    // counts)`}`.
    if workload {
        let ids: Vec<String> = agents.iter().map(|a| a.id.to_string()).collect();
        let loads = hub
            .store
            .read(move |s| {
                ids.iter()
                    .map(|id| {
                        let n = |name: String| s.count(&name).map(|n| n.max(0));
                        Ok(json!({
                            "assigned": n(names::mine(id))?,
                            "on_hold": n(names::on_hold(id))?,
                            "help_requested": n(names::help_by(id))?,
                            "conversations": crate::actors::router::held_conversations(s, id)?.len(),
                        }))
                    })
                    .collect::<Result<Vec<_>, crate::store::StoreError>>()
            })
            .await?;
        for (item, load) in items.iter_mut().zip(loads) {
            item["workload"] = load;
        }
    }
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}
