//! Operations (PROTOCOL §8): health and metrics.

use super::HubData;
use crate::metrics;
use actix_web::{web, HttpResponse};
use std::fmt::Write;
use std::sync::atomic::Ordering;

/// Registers the operations routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
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
