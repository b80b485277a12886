//! Automatic assignment's setting (an extension; `src/actors/router.rs`):
//! `GET /api/routing` (any agent) and `PUT /api/routing` (admin), both answering
//! `{"auto_assign": bool}`.

use super::{admin, agent, parse, HubData};
use crate::actors::router::Routing;
use crate::error::ApiError;
use actix_web::{web, HttpRequest, HttpResponse};

/// Registers the routing routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/routing", super::get().to(show))
        .route("/api/routing", web::put().to(set));
}

async fn show(hub: HubData, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    agent(&hub, &req).await?;
    Ok(HttpResponse::Ok().json(hub.router.settings()))
}

async fn set(
    hub: HubData,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (me, _) = admin(&hub, &req).await?;
    let body = super::read_body(&req, payload).await?;
    let routing: Routing = parse(&body)?;
    hub.router.set(&hub.store, routing).await?;
    tracing::info!(agent_id = %me, auto_assign = routing.auto_assign, "Routing set.");
    Ok(HttpResponse::Ok().json(hub.router.settings()))
}
