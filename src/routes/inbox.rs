//! Inbox folders with counts (PROTOCOL §6.3).

use super::{agent, HubData};
use crate::domain::{Message, Role};
use crate::error::ApiError;
use crate::store::index::names;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;

/// Registers the inbox route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/inbox", super::get().to(inbox))
        .route("/api/mentions", super::get().to(mentions));
}

#[derive(Deserialize)]
struct MentionsQuery {
    limit: Option<String>,
    before: Option<String>,
}

/// An extension: `GET /api/mentions?limit=N&before=SEQ` lists the comments that mention
/// the caller, newest first (`limit` 50 by default, at most 500), each a Comment with
/// `"type": "comment"` and its conversation's `contact_id`; a page cut by its limit ends
/// with `next_before`. A mention made while its agent was away is found here later.
async fn mentions(hub: HubData, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let (me, _) = agent(&hub, &req).await?;
    let q = web::Query::<MentionsQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::invalid(format!("invalid query: {e}")))?
        .into_inner();
    let limit = page_limit(q.limit.as_deref())?;
    let before = parse_num("before", q.before.as_deref())?;
    let out = hub
        .store
        .read(move |s| {
            let entries = s.index_desc(&names::mentions(me.as_str()), before, limit)?;
            let full = entries.len() == limit;
            let last = entries.last().map(|e| e.0);
            let mut items = Vec::with_capacity(entries.len());
            for (_, _, value) in entries {
                let mut c: serde_json::Value = serde_json::from_slice(&value)
                    .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
                let contact = match c["conversation_id"].as_str() {
                    Some(id) => s.conversation(id)?.map(|conv| conv.contact_id),
                    None => None,
                };
                c["type"] = json!("comment");
                c["contact_id"] = json!(contact);
                items.push(c);
            }
            let mut out = json!({ "items": items });
            if let (true, Some(last)) = (full, last) {
                out["next_before"] = json!(last);
            }
            Ok(out)
        })
        .await?;
    Ok(HttpResponse::Ok().json(out))
}

/// Every folder, in the order the console shows them.
pub const FOLDERS: [&str; 8] = [
    "pending",
    "mine",
    "on_hold",
    "help_requests",
    "answered",
    "archived",
    "spam",
    "all",
];

/// The index behind folder `f` as `agent` (with `role`) sees it.
pub fn folder_index(f: &str, agent: &str, role: Role) -> Option<String> {
    Some(match f {
        "pending" => names::PENDING.into(),
        "mine" => names::mine(agent),
        "on_hold" => names::on_hold(agent),
        "help_requests" if role.is_supervisor() => names::HELP_ALL.into(),
        "help_requests" => names::help_by(agent),
        "answered" => names::ANSWERED.into(),
        "archived" => names::ARCHIVED.into(),
        "spam" => names::SPAM.into(),
        "all" => names::ALL.into(),
        _ => return None,
    })
}

/// A page's `limit` (§6.3): 50 by default, a larger one than 500 counts as 500, 0 is 400.
fn page_limit(v: Option<&str>) -> Result<usize, ApiError> {
    page_limit_or(v, 50)
}

/// [`page_limit`] with another default.
pub(crate) fn page_limit_or(v: Option<&str>, default: usize) -> Result<usize, ApiError> {
    match parse_num("limit", v)? {
        None => Ok(default),
        Some(0) => Err(ApiError::invalid("limit must be at least 1")),
        Some(n) => Ok(n.min(500) as usize),
    }
}

/// Parses an optional non-negative integer query parameter. A number past `u64::MAX`
/// counts as `u64::MAX` (a huge `limit` counts as 500, a huge `before` keeps everything).
pub fn parse_num(field: &str, v: Option<&str>) -> Result<Option<u64>, ApiError> {
    v.map(|s| {
        let digits = s.strip_prefix('+').unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::invalid(format!(
                "{field} must be a non-negative integer"
            )));
        }
        Ok(digits.parse::<u64>().unwrap_or(u64::MAX))
    })
    .transpose()
}

#[derive(Deserialize)]
struct Query {
    folder: Option<String>,
    limit: Option<String>,
    before: Option<String>,
    /// An extension: `newest` (the default, PROTOCOL §6.3) or `oldest` first, the order
    /// of a queue worked first come, first served.
    order: Option<String>,
    /// With `order=oldest`: items with seq > this (the next page).
    after: Option<String>,
    /// An extension: `true` adds the items' conversations (below).
    conversations: Option<String>,
}

async fn inbox(hub: HubData, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let (me, role) = agent(&hub, &req).await?;
    let q = web::Query::<Query>::from_query(req.query_string())
        .map_err(|e| ApiError::invalid(format!("invalid query: {e}")))?
        .into_inner();
    let folder = q.folder.unwrap_or_else(|| "pending".into());
    let index = folder_index(&folder, me.as_str(), role).ok_or_else(|| {
        ApiError::invalid(format!("folder must be one of {}", FOLDERS.join(", ")))
    })?;
    let limit = page_limit(q.limit.as_deref())?;
    let before = parse_num("before", q.before.as_deref())?;
    let after = parse_num("after", q.after.as_deref())?;
    let with_conversations = super::flag("conversations", q.conversations.as_deref())?;
    let oldest_first = match q.order.as_deref() {
        None | Some("newest") => false,
        Some("oldest") => true,
        Some(_) => return Err(ApiError::invalid("order must be newest or oldest")),
    };
    if (oldest_first && before.is_some()) || (!oldest_first && after.is_some()) {
        return Err(ApiError::invalid(
            "before pages newest-first lists, after oldest-first ones (order=oldest)",
        ));
    }
    let count_indexes: Vec<(&'static str, String)> = FOLDERS
        .iter()
        .filter_map(|f| folder_index(f, me.as_str(), role).map(|i| (*f, i)))
        .collect();
    // The page and the counts come from one state (no commit half-seen), so that a
    // folder's count agrees with its items; parsing waits until after the read.
    let (entries, counts) = hub
        .store
        .read_consistent(move |s| {
            let mut entries = Vec::new();
            let page = if oldest_first {
                s.index_asc(&index, after, limit)?
            } else {
                s.index_desc(&index, before, limit)?
            };
            for (order, id, value) in page {
                if let Some(json) = s.indexed_message(order, &id, value)? {
                    entries.push((id, json));
                }
            }
            let mut counts = BTreeMap::new();
            for (f, i) in &count_indexes {
                counts.insert(*f, s.count(i)?.max(0));
            }
            Ok((entries, counts))
        })
        .await?;
    let mut items = Vec::with_capacity(entries.len());
    for (id, json) in entries {
        let m: Message = serde_json::from_slice(&json).map_err(|e| {
            ApiError::from(crate::store::StoreError::Corrupt(format!(
                "index entry of {id}: {e}"
            )))
        })?;
        items.push(m);
    }
    let mut out = json!({ "items": items, "counts": counts });
    // With `conversations=true`: `{CONV_ID: Conversation}` for the items' conversations,
    // so that a row can say its session ended (its customer can no longer be answered
    // there) or who owns it.
    if with_conversations {
        let ids: Vec<String> = items
            .iter()
            .map(|m| m.conversation_id.to_string())
            .collect();
        let convs = hub.store.read(move |s| conversations_of(s, ids)).await?;
        out["conversations"] = serde_json::Value::Object(convs);
    }
    Ok(HttpResponse::Ok().json(out))
}

/// `{CONV_ID: Conversation}` for the conversations named (each read once; an unknown
/// id is left out): the inbox's `conversations=true` and the search's answer.
pub fn conversations_of(
    s: &crate::store::Store,
    ids: impl IntoIterator<Item = String>,
) -> Result<serde_json::Map<String, serde_json::Value>, crate::store::StoreError> {
    let mut map = serde_json::Map::new();
    for id in ids.into_iter().collect::<std::collections::BTreeSet<_>>() {
        if let Some(c) = s.conversation(&id)? {
            map.insert(id, json!(c));
        }
    }
    Ok(map)
}
