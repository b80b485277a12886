//! The team's automation settings (an extension; `src/actors/automation.rs`):
//! `GET /api/automation` (any agent) and `PATCH /api/automation` (admin), both answering
//! `{"auto_assign": bool, "auto_close_seconds": n | null}`.

use super::{admin, agent, parse, HubData};
use crate::actors::automation::Patch;
use crate::error::ApiError;
use actix_web::{web, HttpRequest, HttpResponse};

/// Registers the automation routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/automation", super::get().to(show))
        .route("/api/automation", web::patch().to(change));
}

async fn show(hub: HubData, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    agent(&hub, &req).await?;
    Ok(HttpResponse::Ok().json(hub.automation()))
}

async fn change(
    hub: HubData,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (me, _) = admin(&hub, &req).await?;
    let body = super::read_body(&req, payload).await?;
    let patch = Patch::parse(&parse::<serde_json::Value>(&body)?).map_err(ApiError::invalid)?;
    let now = hub.set_automation(patch).await?;
    // Consoles that take signals (their hello's `"typing": true`) hear it at once, so
    // that every Pending note and Automation panel follows.
    let signal = serde_json::json!({"type": "automation", "settings": now});
    hub.bus
        .signal_agents(signal.to_string().as_bytes(), u64::MAX);
    tracing::info!(
        agent_id = %me,
        auto_assign = now.auto_assign,
        reassign_offline = now.reassign_offline,
        auto_close_seconds = ?now.auto_close_seconds,
        "Automation set."
    );
    Ok(HttpResponse::Ok().json(now))
}
