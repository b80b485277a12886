//! Operations (PROTOCOL §8): health and metrics.

use super::{agent, HubData};
use crate::domain::Status;
use crate::error::ApiError;
use crate::metrics;
use crate::store::index::names;
use actix_web::HttpRequest;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering;

/// Registers the operations routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", super::get().to(healthz))
        .route("/api/stats", super::get().to(stats))
        .route("/metrics", super::get().to(prometheus));
}

async fn healthz(hub: HubData) -> HttpResponse {
    if hub.store.healthy() {
        HttpResponse::Ok().json(serde_json::json!({"status": "ok", "epoch": hub.store.epoch()}))
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header((actix_web::http::header::RETRY_AFTER, "1"))
            .json(serde_json::json!({"status": "degraded"}))
    }
}

async fn prometheus(hub: HubData) -> Result<HttpResponse, ApiError> {
    let m = &*metrics::METRICS;
    let (agents, widgets) = hub.bus.counts();
    m.sockets.with_label_values(&["agent"]).set(agents as i64);
    m.sockets.with_label_values(&["widget"]).set(widgets as i64);
    m.actors.set(hub.registry.len() as i64);
    m.head.set(hub.bus.head() as i64);
    m.set_drops(hub.bus.dropped.load(Ordering::Relaxed));
    let (counts, file_bytes, log_bytes, (deferred, journal)) = hub
        .store
        .read(|s| {
            let counts = Status::ALL
                .iter()
                .map(|st| Ok((st.as_str(), s.count(&names::status(st.as_str()))?)))
                .collect::<Result<Vec<_>, crate::store::StoreError>>()?;
            Ok((counts, s.file_bytes(), s.log_bytes_written(), s.deferred()))
        })
        .await?;
    m.store_file_bytes.set(file_bytes as i64);
    m.deferred_keys.set(deferred as i64);
    m.journal_records.set(journal as i64);
    for (kind, bytes) in ["link", "page", "cleaning"].into_iter().zip(log_bytes) {
        m.log_bytes.with_label_values(&[kind]).set(bytes as i64);
    }
    for (status, n) in counts {
        m.messages.with_label_values(&[status]).set(n.max(0));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(m.render()))
}

#[derive(serde::Deserialize)]
struct StatsQuery {
    satisfaction: Option<String>,
    waiting: Option<String>,
    automation: Option<String>,
}

/// `GET /api/stats` (PROTOCOL §8): volumes by status and channel, conversation counts,
/// first-response and resolution time percentiles (seconds).
async fn stats(hub: HubData, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    agent(&hub, &req).await?;
    // `?satisfaction=true` (an extension) adds the customers' ratings.
    let q = web::Query::<StatsQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::invalid(format!("invalid query: {e}")))?;
    let satisfaction = super::flag("satisfaction", q.satisfaction.as_deref())?;
    // `?waiting=true` (an extension) adds what waits for the team now.
    let waiting = super::flag("waiting", q.waiting.as_deref())?;
    // `?automation=true` (an extension) adds what the bots answered alone.
    let automation = super::flag("automation", q.automation.as_deref())?;
    let out = hub
        .store
        .read(move |s| {
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
                let secs = |v: Option<f64>| v.map(|ms| json!(ms / 1000.0)).unwrap_or(Value::Null);
                Ok(json!({"p50": secs(q[0]), "p90": secs(q[1])}))
            };
            let mut out = json!({
                "messages": {"by_status": by_status, "by_channel": by_channel},
                "conversations": {
                    "open": s.count(names::CONV_OPEN)?.max(0),
                    "closed": s.count(names::CONV_CLOSED)?.max(0),
                    "spam": s.count(names::CONV_SPAM)?.max(0),
                },
                "first_response_seconds": pct(names::FIRST_RESPONSE)?,
                "resolution_seconds": pct(names::RESOLUTION)?,
            });
            if satisfaction {
                out["satisfaction"] = satisfaction_of(s)?;
            }
            if automation {
                let answered = s.count(names::BOT_ANSWERED)?.max(0);
                let alone = s.count(names::BOT_ALONE)?.max(0);
                let percent = (answered > 0)
                    .then(|| (alone as f64 / answered as f64 * 1000.0).round() / 10.0);
                out["automation"] = json!({
                    "bot_conversations": answered,
                    "fully_automated": alone,
                    "automated_percent": percent,
                });
            }
            if waiting {
                out["waiting"] = json!({
                    "pending": waiting_in(s, names::PENDING)?,
                    "help_requested": waiting_in(s, names::HELP_ALL)?,
                });
            }
            Ok(out)
        })
        .await?;
    Ok(HttpResponse::Ok().json(out))
}

/// What waits in a folder (an extension of `GET /api/stats`): how many messages, and the
/// one that has waited there longest (the first in the folder's order, which is the order
/// in which messages entered it) with when its customer wrote it; `oldest` is null when
/// the folder is empty.
fn waiting_in(s: &crate::store::Store, folder: &str) -> Result<Value, crate::store::StoreError> {
    let count = s.count(folder)?.max(0);
    let mut oldest = Value::Null;
    if let Some((order, id, value)) = s.index_asc(folder, None, 1)?.into_iter().next() {
        if let Some(json) = s.indexed_message(order, &id, value)? {
            if let Ok(m) = serde_json::from_slice::<Value>(&json) {
                oldest = json!({
                    "message_id": m["id"],
                    "conversation_id": m["conversation_id"],
                    "at": m["at"],
                });
            }
        }
    }
    Ok(json!({"count": count, "oldest": oldest}))
}

/// The customers' ratings (an extension of `GET /api/stats`): how many conversations were
/// rated, how many with each score, the average, and the share rated 4 or 5 (CSAT);
/// null figures while there is no rating.
fn satisfaction_of(s: &crate::store::Store) -> Result<Value, crate::store::StoreError> {
    let mut by_score = Map::new();
    let (mut n, mut sum, mut satisfied) = (0i64, 0i64, 0i64);
    for score in 1..=5u8 {
        let c = s.count(&names::rating(score))?.max(0);
        by_score.insert(score.to_string(), json!(c));
        n += c;
        sum += c * i64::from(score);
        if score >= 4 {
            satisfied += c;
        }
    }
    let (average, percent) = if n > 0 {
        let avg = (sum as f64 / n as f64 * 100.0).round() / 100.0;
        let pct = (satisfied as f64 / n as f64 * 1000.0).round() / 10.0;
        (json!(avg), json!(pct))
    } else {
        (Value::Null, Value::Null)
    };
    Ok(
        json!({"ratings": n, "by_score": by_score, "average": average, "satisfied_percent": percent}),
    )
}
