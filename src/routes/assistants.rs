//! Assistants (PROTOCOL §6.4): drafts, publication per channel (one assistant per channel).
//!
//! Extensions: `DELETE /api/assistants/{id}`, and optimistic concurrency with standard
//! HTTP: each assistant's `ETag` (a hash of its stored definition, status and channels)
//! on `GET /api/assistants/{id}` and on the answers that change it, and `If-Match` on
//! `PUT`, `publish`, `unpublish` and `DELETE` (412 `precondition_failed` when stale).
//! Without `If-Match` a change applies as PROTOCOL §6.4 has it.

use super::{admin, agent, parse, HubData};
use crate::domain::{Assistant, AssistantId, Rule};
use crate::error::ApiError;
use crate::store::{keys, Batch};
use actix_web::http::header::{ETAG, IF_MATCH};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

/// Registers the assistant routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/assistants", web::post().to(create))
        .route("/api/assistants", super::get().to(list))
        .route("/api/assistants/{id}", web::put().to(replace))
        .route("/api/assistants/{id}", super::get().to(show))
        .route("/api/assistants/{id}", web::delete().to(delete))
        .route("/api/assistants/{id}/publish", web::post().to(publish))
        .route("/api/assistants/{id}/unpublish", web::post().to(unpublish));
}

/// The assistant's entity tag (RFC 9110 §8.8.3), strong and quoted: a hash of
/// everything `GET /api/assistants/{id}` answers, so any change to it (a `PUT`, a
/// publish, a channel another assistant took over) gives another tag, and none is
/// stored.
pub fn etag(a: &Assistant) -> String {
    // Serialising a struct of strings and lists cannot fail.
    let json = serde_json::to_vec(a).unwrap_or_default();
    format!("\"{}\"", &hex::encode(Sha256::digest(&json))[..20])
}

/// What a request's `If-Match` asks for (RFC 9110 §13.1.1).
enum IfMatch {
    /// No `If-Match`: the change applies whatever the version (PROTOCOL §6.4).
    Absent,
    /// `*`: the assistant must exist (it must anyway).
    Any,
    /// The change applies only to one of these versions (strong tags; a weak one,
    /// `W/"…"`, never matches: RFC 9110's strong comparison).
    Tags(Vec<String>),
}

/// Reads `If-Match` (a list: several headers count as one, comma-separated).
fn if_match(req: &HttpRequest) -> Result<IfMatch, ApiError> {
    let mut tags = Vec::new();
    let mut any = false;
    let mut seen = false;
    for v in req.headers().get_all(IF_MATCH) {
        seen = true;
        let v = v
            .to_str()
            .map_err(|_| ApiError::invalid("If-Match must be * or a list of entity tags"))?;
        for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (weak, tag) = match part.strip_prefix("W/") {
                Some(t) => (true, t),
                None => (false, part),
            };
            if part == "*" {
                any = true;
            } else if tag.len() >= 2 && tag.starts_with('"') && tag.ends_with('"') {
                if !weak {
                    tags.push(tag.to_string());
                }
            } else {
                return Err(ApiError::invalid(
                    "If-Match must be * or a list of quoted entity tags",
                ));
            }
        }
    }
    Ok(match (seen, any) {
        (false, _) => IfMatch::Absent,
        (true, true) => IfMatch::Any,
        (true, false) => IfMatch::Tags(tags),
    })
}

impl IfMatch {
    /// 412 unless `current` is a version the client named.
    fn check(&self, current: &Assistant) -> Result<(), ApiError> {
        match self {
            IfMatch::Absent | IfMatch::Any => Ok(()),
            IfMatch::Tags(tags) if tags.contains(&etag(current)) => Ok(()),
            IfMatch::Tags(_) => Err(ApiError::PreconditionFailed(
                "this assistant was changed since you read it (If-Match names another \
                 version): read it again, then make your change"
                    .into(),
            )),
        }
    }
}

/// `a` as an answer, with its `ETag`.
fn tagged(mut res: actix_web::HttpResponseBuilder, a: &Assistant) -> HttpResponse {
    res.insert_header((ETAG, etag(a))).json(a)
}

#[derive(Deserialize)]
struct Definition {
    // PROTOCOL §6.4: `name`, `rules` and `transfer_keywords` are required (400 when
    // absent, so a PUT cannot wipe an assistant's rules by leaving them out); the
    // fields marked `?` there are optional.
    name: String,
    rules: Vec<Rule>,
    transfer_keywords: Vec<String>,
    transfer_reply: Option<String>,
    /// Optional: absent and `null` both mean none, as for the optional replies.
    #[serde(default)]
    spam_keywords: Option<Vec<String>>,
    default_reply: Option<String>,
}

fn check(d: &Definition) -> Result<(), ApiError> {
    if d.name.trim().is_empty() || d.name.chars().count() > 100 {
        return Err(ApiError::invalid("name must be 1 to 100 characters"));
    }
    for r in &d.rules {
        if r.pattern.trim().is_empty() {
            return Err(ApiError::invalid("a rule's match must not be empty"));
        }
        super::check_text("a rule's reply", &r.reply)?;
    }
    // A blank keyword would match every message; it is refused like a blank `match`.
    let mut keywords = d
        .transfer_keywords
        .iter()
        .chain(d.spam_keywords.iter().flatten());
    if keywords.any(|k| k.trim().is_empty()) {
        return Err(ApiError::invalid("keywords must not be blank"));
    }
    for t in [&d.transfer_reply, &d.default_reply].into_iter().flatten() {
        super::check_text("a reply", t)?;
    }
    Ok(())
}

fn apply_definition(a: &mut Assistant, d: Definition) {
    a.name = d.name.trim().to_string();
    a.rules = d.rules;
    a.transfer_keywords = d.transfer_keywords;
    a.transfer_reply = d.transfer_reply;
    a.spam_keywords = d.spam_keywords.unwrap_or_default();
    a.default_reply = d.default_reply;
}

async fn create(
    hub: HubData,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    admin(&hub, &req).await?;
    let body = super::read_body(&req, payload).await?;
    let d: Definition = parse(&body)?;
    check(&d)?;
    let mut a = Assistant {
        id: AssistantId::from(crate::auth::new_id("b")),
        name: String::new(),
        status: "draft".into(),
        channels: vec![],
        rules: vec![],
        transfer_keywords: vec![],
        transfer_reply: None,
        spam_keywords: vec![],
        default_reply: None,
    };
    apply_definition(&mut a, d);
    let hub2 = hub.get_ref().clone();
    let out = a.clone();
    hub.locked("assistants".into(), async move {
        hub2.put_assistants(vec![a]).await
    })
    .await?;
    tracing::info!(assistant_id = %out.id, "Assistant created.");
    Ok(tagged(HttpResponse::Created(), &out))
}

#[derive(Deserialize)]
struct ListQuery {
    etags: Option<String>,
}

async fn list(hub: HubData, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    agent(&hub, &req).await?;
    let q = web::Query::<ListQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::invalid(format!("invalid query: {e}")))?;
    // An extension (`?etags=true`): each item's `etag`, the version a later `If-Match`
    // names (a screen that lists assistants and edits them from the list).
    let with_etags = super::flag("etags", q.etags.as_deref())?;
    let mut items: Vec<Assistant> = hub.assistants.iter().map(|a| a.clone()).collect();
    items.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    if !with_etags {
        return Ok(HttpResponse::Ok().json(json!({ "items": items })));
    }
    let items: Vec<serde_json::Value> = items
        .iter()
        .map(|a| {
            let mut v = json!(a);
            v["etag"] = json!(etag(a));
            v
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

async fn show(
    hub: HubData,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    agent(&hub, &req).await?;
    let a = hub
        .assistants
        .get(&AssistantId::from(path.into_inner()))
        .map(|a| a.clone())
        .ok_or_else(|| ApiError::NotFound("assistant not found".into()))?;
    Ok(tagged(HttpResponse::Ok(), &a))
}

/// Runs `f` on the assistant `id` (and may change others) under the assistants lock,
/// if it is a version `cond` names (the check and the change are one step).
async fn update(
    hub: &HubData,
    id: String,
    cond: IfMatch,
    f: impl FnOnce(&mut Assistant, &mut Vec<Assistant>) + Send + 'static,
) -> Result<HttpResponse, ApiError> {
    let hub2 = hub.get_ref().clone();
    let id = AssistantId::from(id);
    hub.locked("assistants".into(), async move {
        let mut a = hub2
            .assistants
            .get(&id)
            .map(|a| a.clone())
            .ok_or_else(|| ApiError::NotFound("assistant not found".into()))?;
        cond.check(&a).inspect_err(|_| {
            tracing::info!(assistant_id = %id, "Assistant change refused: a stale If-Match.");
        })?;
        let mut others: Vec<Assistant> = hub2
            .assistants
            .iter()
            .filter(|o| o.id != id)
            .map(|o| o.clone())
            .collect();
        f(&mut a, &mut others);
        let out = a.clone();
        let mut changed = vec![a];
        changed.extend(others);
        hub2.put_assistants(changed).await?;
        Ok(tagged(HttpResponse::Ok(), &out))
    })
    .await
}

/// An extension: `DELETE /api/assistants/{id}` (admin) → 204; 404 when unknown, 412
/// when `If-Match` names another version. A published assistant leaves its channels
/// with it: they have no assistant afterwards (none takes over), and their customers'
/// next messages wait for a person. Conversations it answered keep its replies (their
/// author stays `{"kind":"bot","id"}`) and their `bot_active`: a bot published later on
/// the channel answers them, as publishing does today.
async fn delete(
    hub: HubData,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admin(&hub, &req).await?;
    let cond = if_match(&req)?;
    let hub2 = hub.get_ref().clone();
    let id = AssistantId::from(path.into_inner());
    hub.locked("assistants".into(), async move {
        let a = hub2
            .assistants
            .get(&id)
            .map(|a| a.clone())
            .ok_or_else(|| ApiError::NotFound("assistant not found".into()))?;
        cond.check(&a).inspect_err(|_| {
            tracing::info!(assistant_id = %id, "Assistant deletion refused: a stale If-Match.");
        })?;
        let mut b = Batch::default();
        b.remove(keys::ASSISTANT, &[id.as_str().as_bytes()]);
        hub2.store.commit(b).await?;
        // Out of the map only once durable: a customer message sent meanwhile may still
        // be answered by it, as one sent in the instant of an unpublish is.
        hub2.assistants.remove(&id);
        tracing::info!(assistant_id = %id, channels = a.channels.len(), "Assistant deleted.");
        Ok(HttpResponse::NoContent().finish())
    })
    .await
}

async fn replace(
    hub: HubData,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    admin(&hub, &req).await?;
    let body = super::read_body(&req, payload).await?;
    let d: Definition = parse(&body)?;
    check(&d)?;
    let cond = if_match(&req)?;
    update(&hub, path.into_inner(), cond, move |a, others| {
        apply_definition(a, d);
        others.clear();
    })
    .await
}

/// A misspelt `channels` must not unpublish every channel (see `AssignBody`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Channels {
    channels: Option<Vec<String>>,
}

fn set_status(a: &mut Assistant) {
    a.status = if a.channels.is_empty() {
        "draft"
    } else {
        "published"
    }
    .into();
}

async fn publish(
    hub: HubData,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    admin(&hub, &req).await?;
    let body = super::read_body(&req, payload).await?;
    let c: Channels = parse(&body)?;
    let channels: Vec<String> = c.channels.unwrap_or_default();
    if channels.is_empty() {
        return Err(ApiError::invalid(
            "channels must list at least one channel name",
        ));
    }
    if channels
        .iter()
        .any(|c| c.trim().is_empty() || c.chars().count() > 64)
    {
        return Err(ApiError::invalid(
            "a channel name must be 1 to 64 characters",
        ));
    }
    let cond = if_match(&req)?;
    update(&hub, path.into_inner(), cond, move |a, others| {
        for ch in &channels {
            if !a.channels.contains(ch) {
                a.channels.push(ch.clone());
            }
        }
        set_status(a);
        others.retain_mut(|o| {
            let before = o.channels.len();
            o.channels.retain(|c| !channels.contains(c));
            set_status(o);
            o.channels.len() != before
        });
    })
    .await
}

async fn unpublish(
    hub: HubData,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    admin(&hub, &req).await?;
    let body = super::read_body(&req, payload).await?;
    let c: Channels = parse(&body)?;
    let cond = if_match(&req)?;
    update(&hub, path.into_inner(), cond, move |a, others| {
        match c.channels {
            Some(chs) => a.channels.retain(|x| !chs.contains(x)),
            None => a.channels.clear(),
        }
        set_status(a);
        others.clear();
    })
    .await
}
