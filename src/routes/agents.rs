//! Staff (PROTOCOL §6): admins create agents; any agent lists them with their presence.

use super::{admin, agent, parse, HubData};
use crate::domain::Role;
use crate::error::ApiError;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

/// Registers the agent routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/agents", web::post().to(create))
        .route("/api/agents", super::get().to(list));
}

#[derive(Deserialize)]
struct CreateBody {
    name: String,
    role: Role,
    capacity: Option<u32>,
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
    Ok(HttpResponse::Created().json(json!({
        "id": rec.id, "name": rec.name, "role": rec.role, "capacity": rec.capacity, "token": token,
    })))
}

async fn list(hub: HubData, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    agent(&hub, &req).await?;
    let items: Vec<_> = hub
        .directory
        .agents()
        .into_iter()
        .map(|a| {
            json!({
                "id": a.id, "name": a.name, "role": a.role, "capacity": a.capacity,
                "presence": hub.presence.get(a.id.as_str()).as_str(),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}
