//! `GET /api/search?q=…&limit=N&before=SEQ` (an extension): the events whose texts hold
//! the words of `q` — customer messages, replies, internal comments, closing notes,
//! end-of-session reasons, help questions and answers, and the opening of each
//! conversation for its customer's name and e-mail address — newest first.
//!
//! Answer: `{"items":[Event…],"conversations":{CONV_ID: Conversation},
//! "indexed_through":SEQ,"next_before"?:SEQ}`; each item is the event as PROTOCOL §7
//! sends it (`seq`, `kind`, `conversation_id`, `at`, `data`), as it was written: a
//! message's current status is its conversation's to tell. `limit` is 20 by default, at
//! most 500; a page that was cut short (by its limit, or after examining 2,000
//! candidates) ends with `next_before`, the `before` of the next page. The index is
//! built behind the log (`store/search.rs`): the answer waits up to a second for it
//! to reach the events committed before the request, and `indexed_through` says how
//! far it got. `"partial": true` says that a query word of 4 letters or more starts
//! more than 1,024 indexed words and only the first of them were searched.

use super::inbox::{conversations_of, page_limit_or, parse_num};
use super::{agent, HubData};
use crate::error::ApiError;
use crate::store::search::{query_words, MAX_QUERY_WORDS};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// Longest query, in characters.
const MAX_QUERY: usize = 200;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/search", super::get().to(search));
}

#[derive(Deserialize)]
struct Query {
    q: Option<String>,
    limit: Option<String>,
    before: Option<String>,
}

async fn search(hub: HubData, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    agent(&hub, &req).await?;
    let q = web::Query::<Query>::from_query(req.query_string())
        .map_err(|e| ApiError::invalid(format!("invalid query: {e}")))?
        .into_inner();
    let text = q.q.unwrap_or_default();
    if text.chars().count() > MAX_QUERY {
        return Err(ApiError::invalid(format!(
            "q must be at most {MAX_QUERY} characters"
        )));
    }
    let words = query_words(&text);
    if words.is_empty() {
        return Err(ApiError::invalid(
            "q must hold a word of at least two letters or digits",
        ));
    }
    if words.len() > MAX_QUERY_WORDS {
        return Err(ApiError::invalid(format!(
            "q may hold at most {MAX_QUERY_WORDS} words"
        )));
    }
    let limit = page_limit_or(q.limit.as_deref(), 20)?;
    let before = parse_num("before", q.before.as_deref())?;
    if !hub.config.search {
        return Err(ApiError::Unavailable(
            "search is off on this hub (HUB_SEARCH=off)".into(),
        ));
    }
    let index = hub.search.clone();
    if !index
        .caught_up(
            hub.bus.head().max(hub.store.committed()),
            Duration::from_secs(1),
        )
        .await
    {
        if !index.ready() {
            return Err(ApiError::Unavailable(
                "the search index is opening; try again in a moment".into(),
            ));
        }
        tracing::info!(
            indexed = index.indexed(),
            "Search answered before the index caught up."
        );
    }
    let out = hub
        .store
        .read(move |s| {
            let found = index.search(s, &words, before, limit)?;
            let ids = found
                .events
                .iter()
                .filter_map(|ev| ev.conversation_id.as_ref());
            let convs = conversations_of(s, ids.map(|id| id.to_string()))?;
            let mut out = json!({
                "items": found.events,
                "conversations": convs,
                "indexed_through": index.indexed(),
            });
            if let Some(b) = found.next_before {
                out["next_before"] = json!(b);
            }
            if found.partial {
                out["partial"] = json!(true);
            }
            Ok(out)
        })
        .await?;
    Ok(HttpResponse::Ok().json(out))
}
