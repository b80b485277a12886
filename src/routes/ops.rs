//! Operations (PROTOCOL §8): health and metrics.

use super::{agent, HubData};
use crate::domain::Status;
use crate::error::ApiError;
use crate::metrics;
use crate::store::index::names;
use actix_web::HttpRequest;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};
use std::fmt::Write;
use std::sync::atomic::Ordering;

/// Registers the operations routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/api/stats", web::get().to(stats))
        .route("/metrics", web::get().to(prometheus));
}

async fn healthz(hub: HubData) -> HttpResponse {
    if hub.store.healthy() {
        HttpResponse::Ok().json(serde_json::json!({"status": "ok", "epoch": hub.store.epoch()}))
    } else {
        HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "degraded"}))
    }
}

async fn prometheus(hub: HubData) -> HttpResponse {
    let (agents, widgets) = hub.bus.counts();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    metric(
        "hub_sockets_agent",
        "gauge",
        "Connected agent consoles.",
        agents as u64,
    );
    metric(
        "hub_sockets_widget",
        "gauge",
        "Connected chat widgets.",
        widgets as u64,
    );
    metric(
        "hub_conversation_actors",
        "gauge",
        "Live conversation actors.",
        hub.registry.len() as u64,
    );
    metric(
        "hub_events_total",
        "counter",
        "Events made durable.",
        metrics::EVENTS.load(Ordering::Relaxed),
    );
    metric(
        "hub_commits_total",
        "counter",
        "Group commits.",
        metrics::COMMITS.load(Ordering::Relaxed),
    );
    metric(
        "hub_commit_requests_total",
        "counter",
        "Requests folded into group commits.",
        metrics::COMMIT_REQUESTS.load(Ordering::Relaxed),
    );
    metric(
        "hub_commit_seconds_micros_total",
        "counter",
        "Time spent in group commits, in microseconds.",
        metrics::COMMIT_MICROS.load(Ordering::Relaxed),
    );
    metric(
        "hub_outbound_drops_total",
        "counter",
        "Sockets cut off for falling behind.",
        hub.bus.dropped.load(Ordering::Relaxed),
    );
    metric(
        "hub_head_seq",
        "gauge",
        "Last published event seq.",
        hub.bus.head(),
    );
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(out)
}

/// `GET /api/stats` (PROTOCOL §8): volumes by status and channel, conversation counts,
/// first-response and resolution time percentiles (seconds).
async fn stats(hub: HubData, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    agent(&hub, &req).await?;
    let out = hub
        .store
        .read(|s| {
            let mut by_status = Map::new();
            for st in Status::ALL {
                by_status.insert(
                    st.as_str().into(),
                    json!(s.count(&names::status(st.as_str()))?.max(0)),
                );
            }
            let mut by_channel = Map::new();
            for (ch, n) in s.counts_with_prefix(names::CHANNEL_PREFIX)? {
                if n > 0 {
                    by_channel.insert(ch, json!(n));
                }
            }
            let pct = |name: &str| -> Result<Value, crate::store::StoreError> {
                let q = s.quantiles(name, &[0.5, 0.9])?;
                let secs =
                    |v: Option<u64>| v.map(|ms| json!(ms as f64 / 1000.0)).unwrap_or(Value::Null);
                Ok(json!({"p50": secs(q[0]), "p90": secs(q[1])}))
            };
            Ok(json!({
                "messages": {"by_status": by_status, "by_channel": by_channel},
                "conversations": {
                    "open": s.count(names::CONV_OPEN)?.max(0),
                    "closed": s.count(names::CONV_CLOSED)?.max(0),
                    "spam": s.count(names::CONV_SPAM)?.max(0),
                },
                "first_response_seconds": pct(names::FIRST_RESPONSE)?,
                "resolution_seconds": pct(names::RESOLUTION)?,
            }))
        })
        .await?;
    Ok(HttpResponse::Ok().json(out))
}
