//! `GET /api/contacts?ids=k_1,k_2,…` (an extension): who the customers are, as they told
//! the widget (`POST /api/widget/session`'s `name` and `email`), for the agents' lists.
//! The inbox's items are PROTOCOL §4's Message objects and stay so; a console asks for
//! the names of the customers it shows here instead.
//!
//! `GET /api/contacts/{id}` (an extension): one customer and every conversation it has
//! had, newest first, each with its preview: an agent sees what came before an ended
//! session.

use super::{agent, HubData};
use crate::error::ApiError;
use crate::store::keys;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

/// Most ids one request may name (a page of the inbox is at most 500 messages).
const MAX_IDS: usize = 500;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/contacts", super::get().to(contacts))
        .route("/api/contacts/{id}", super::get().to(contact));
}

#[derive(Deserialize)]
struct Query {
    ids: Option<String>,
}

async fn contacts(hub: HubData, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    agent(&hub, &req).await?;
    let q = web::Query::<Query>::from_query(req.query_string())
        .map_err(|e| ApiError::invalid(format!("invalid query: {e}")))?
        .into_inner();
    let ids: Vec<String> = q
        .ids
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if ids.len() > MAX_IDS {
        return Err(ApiError::invalid(format!(
            "ids lists at most {MAX_IDS} contacts"
        )));
    }
    let items = hub
        .store
        .read(move |s| {
            let mut out = Vec::with_capacity(ids.len());
            for id in &ids {
                if let Some(c) =
                    s.get_json::<crate::auth::ContactRecord>(keys::CONTACT, &[id.as_bytes()])?
                {
                    out.push(c.view());
                }
            }
            Ok(out)
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

async fn contact(
    hub: HubData,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    agent(&hub, &req).await?;
    let id = path.into_inner();
    let found = hub
        .store
        .read(move |s| {
            let Some(c) =
                s.get_json::<crate::auth::ContactRecord>(keys::CONTACT, &[id.as_bytes()])?
            else {
                return Ok(None);
            };
            let ids = match s.contact_conversations(&id)? {
                Some(ids) => ids,
                // A store older than the contact's index: its conversations are found
                // among all of them.
                None => s
                    .index_desc(crate::store::index::names::CONV_ALL, None, usize::MAX)?
                    .into_iter()
                    .map(|(_, conv, _)| conv)
                    .collect(),
            };
            let mut conversations = Vec::with_capacity(ids.len());
            for conv in &ids {
                // (the check serves the older stores' search among all conversations)
                let theirs = s
                    .conversation(conv)?
                    .filter(|c| c.contact_id.as_str() == id);
                if let Some(c) = theirs {
                    conversations.push(super::conversations::listed(s, c, true)?);
                }
            }
            conversations.sort_by_key(|c| std::cmp::Reverse(c.conversation.opened_at));
            Ok(Some((c.view(), conversations)))
        })
        .await?;
    let Some((contact, conversations)) = found else {
        return Err(ApiError::NotFound("contact not found".into()));
    };
    Ok(HttpResponse::Ok().json(json!({ "contact": contact, "conversations": conversations })))
}
