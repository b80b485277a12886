//! `GET /api/contacts?ids=k_1,k_2,…` (an extension): who the customers are, as they told
//! the widget (`POST /api/widget/session`'s `name` and `email`), for the agents' lists.
//! The inbox's items are PROTOCOL §4's Message objects and stay so; a console asks for
//! the names of the customers it shows here instead.

use super::{agent, HubData};
use crate::error::ApiError;
use crate::store::keys;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

/// Most ids one request may name (a page of the inbox is at most 500 messages).
const MAX_IDS: usize = 500;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/contacts", super::get().to(contacts));
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
