//! HTTP routes, one file per resource. Each handler checks in PROTOCOL §3's order:
//! token (401), token kind or role (403), body (400/413), then hands a typed command to
//! the owning actor, which answers 404/409/403 in the domain's order.

pub mod agents;
pub mod assistants;
pub mod automation;
pub mod contacts;
pub mod conversations;
pub mod cors;
pub mod inbox;
pub mod messages;
pub mod ops;
pub mod saved;
pub mod search;
pub mod ui;
pub mod widget;

use crate::auth::{bearer, Principal};
use crate::domain::{AgentId, ContactId, Role};
use crate::error::ApiError;
use crate::hub::{Hub, MAX_TEXT_CHARS};
use actix_web::{web, HttpRequest};
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// Largest accepted body.
pub const MAX_BODY: usize = 64 * 1024;

/// The shared hub, as actix-web app data.
pub type HubData = web::Data<Arc<Hub>>;

/// A header given twice or more where once is allowed ([`single_header`]).
#[derive(Debug)]
pub struct Repeated;

/// A header that may be given at most once (RFC 9110 §5.3: only list fields may be
/// repeated): [`Repeated`] when the request carries it twice or more.
pub fn single_header(
    req: &HttpRequest,
    name: actix_web::http::header::HeaderName,
) -> Result<Option<&actix_web::http::header::HeaderValue>, Repeated> {
    let mut given = req.headers().get_all(name);
    let first = given.next();
    match given.next() {
        Some(_) => Err(Repeated),
        None => Ok(first),
    }
}

/// A route for `GET` that answers `HEAD` too (the same headers, no body: actix's
/// HTTP/1 encoder leaves a HEAD answer's body out), as HTTP expects of a readable resource
/// (uptime checkers probe `/healthz` this way).
pub fn get() -> actix_web::Route {
    use actix_web::guard;
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    widget::configure(cfg);
    agents::configure(cfg);
    messages::configure(cfg);
    conversations::configure(cfg);
    contacts::configure(cfg);
    inbox::configure(cfg);
    search::configure(cfg);
    saved::configure(cfg);
    automation::configure(cfg);
    assistants::configure(cfg);
    ops::configure(cfg);
    ui::configure(cfg);
}

/// How long a request body may take to arrive once its handler reads it (a client
/// that sent its headers and then trickles or withholds the body would otherwise hold
/// the connection for good): 64 KiB in 10 s is 6.5 KB/s.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads a request body of at most [`MAX_BODY`] bytes, within [`BODY_TIMEOUT`] (408
/// `timeout` past it). Handlers call it after the token checks, so that 401/403 come
/// before 413 (PROTOCOL §3). A body whose declared length is over the limit is refused
/// at once, before any of it is read.
pub async fn read_body(req: &HttpRequest, payload: web::Payload) -> Result<web::Bytes, ApiError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(ApiError::TooLarge(format!(
            "the body is over {MAX_BODY} bytes"
        )));
    }
    tokio::time::timeout(BODY_TIMEOUT, read_whole_body(payload))
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::Timeout(format!(
                "the body did not arrive within {} s",
                BODY_TIMEOUT.as_secs()
            )))
        })
}

async fn read_whole_body(mut payload: web::Payload) -> Result<web::Bytes, ApiError> {
    use futures_util::StreamExt;
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            use actix_web::error::PayloadError;
            ApiError::invalid(match e {
                PayloadError::Incomplete(_) => "the body ended before it was complete",
                PayloadError::EncodingCorrupted => "the body's transfer encoding is corrupt",
                _ => "the body could not be read",
            })
        })?;
        if buf.len() + chunk.len() > MAX_BODY {
            return Err(ApiError::TooLarge(format!(
                "the body is over {MAX_BODY} bytes"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Parses a JSON body (an empty body counts as `{}`).
pub fn parse<T: DeserializeOwned>(body: &web::Bytes) -> Result<T, ApiError> {
    if body.len() > MAX_BODY {
        return Err(ApiError::TooLarge(format!(
            "the body is over {MAX_BODY} bytes"
        )));
    }
    // JSON is UTF-8 (RFC 8259 §8.1); serde checks only the strings it keeps, so bytes
    // that are not would pass in a field the route ignores.
    if let Err(e) = std::str::from_utf8(body) {
        return Err(ApiError::invalid(format!(
            "the body is not UTF-8 (byte {})",
            e.valid_up_to()
        )));
    }
    let raw: &[u8] = match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => b"{}",
        Some(b'{') => body,
        // serde would also read a struct from an array (its fields in order).
        Some(_) => return Err(ApiError::invalid("the body must be a JSON object")),
    };
    serde_json::from_slice(raw).map_err(|e| ApiError::invalid(format!("invalid body: {e}")))
}

/// Checks a message, reply or comment text: not empty, at most 4096 characters.
pub fn check_text(field: &str, text: &str) -> Result<(), ApiError> {
    if text.trim().is_empty() {
        return Err(ApiError::invalid(format!("{field} must not be empty")));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::TooLarge(format!(
            "{field} is over {MAX_TEXT_CHARS} characters"
        )));
    }
    Ok(())
}

/// Checks an idempotency key: 1 to 200 characters.
pub fn check_client_id(client_id: Option<&str>) -> Result<(), ApiError> {
    match client_id {
        Some(c) if c.is_empty() || c.chars().count() > 200 => {
            Err(ApiError::invalid("client_id must be 1 to 200 characters"))
        }
        _ => Ok(()),
    }
}

/// The calling agent (401 without a valid token, 403 for a contact's token, 429 past
/// the agent's action rate).
pub async fn agent(hub: &Arc<Hub>, req: &HttpRequest) -> Result<(AgentId, Role), ApiError> {
    match hub.principal(bearer(req)).await? {
        Principal::Agent { id, role } => {
            if req.method() != actix_web::http::Method::GET
                && !hub
                    .limiter
                    .allow(&format!("a/{id}"), crate::ratelimit::AGENT)
            {
                return Err(ApiError::RateLimited);
            }
            Ok((id, role))
        }
        Principal::Contact { .. } => Err(ApiError::Forbidden("this route is for agents".into())),
    }
}

/// The calling agent, who must be an admin.
pub async fn admin(hub: &Arc<Hub>, req: &HttpRequest) -> Result<(AgentId, Role), ApiError> {
    let (id, role) = agent(hub, req).await?;
    if role != Role::Admin {
        return Err(ApiError::Forbidden("only an admin may do this".into()));
    }
    Ok((id, role))
}

/// The calling contact and its channel (401, or 403 for an agent's token).
pub async fn contact(hub: &Arc<Hub>, req: &HttpRequest) -> Result<(ContactId, String), ApiError> {
    match hub.principal(bearer(req)).await? {
        Principal::Contact { id, channel } => Ok((id, channel)),
        Principal::Agent { .. } => Err(ApiError::Forbidden("this route is for contacts".into())),
    }
}

/// An optional free-text field (notes, a reason): over `max` characters is `too_large`,
/// as text is (PROTOCOL §3).
/// The agent a body's optional `agent_id` names (400 when nobody is), else `me`.
pub fn agent_or_me(hub: &Hub, agent_id: Option<String>, me: &AgentId) -> Result<AgentId, ApiError> {
    match agent_id {
        Some(a) => {
            let a = AgentId::from(a);
            if hub.directory.agent(&a).is_none() {
                return Err(ApiError::invalid("agent_id is not a known agent"));
            }
            Ok(a)
        }
        None => Ok(me.clone()),
    }
}

/// An optional boolean query parameter of an extension: `true`/`1`, `false`/`0`, or absent
/// (false); anything else is 400.
pub fn flag(field: &str, v: Option<&str>) -> Result<bool, ApiError> {
    match v {
        None | Some("0" | "false") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(_) => Err(ApiError::invalid(format!("{field} must be true or false"))),
    }
}

pub fn opt_text(field: &str, v: Option<String>, max: usize) -> Result<Option<String>, ApiError> {
    match v {
        Some(s) if s.chars().count() > max => Err(ApiError::TooLarge(format!(
            "{field} is over {max} characters"
        ))),
        other => Ok(other),
    }
}

/// An optional short field (a name, an address): over `max` characters is a wrong field,
/// `invalid`, as an agent's or an assistant's name is.
pub fn opt_field(field: &str, v: Option<String>, max: usize) -> Result<Option<String>, ApiError> {
    match v {
        Some(s) if s.chars().count() > max => Err(ApiError::invalid(format!(
            "{field} must be at most {max} characters"
        ))),
        other => Ok(other),
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Probe {
        text: String,
        client_id: Option<String>,
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 5000, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any body bytes give a value or a 400/413, never a panic.
        #[test]
        fn any_body_parses_or_is_refused(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            match parse::<Probe>(&web::Bytes::from(bytes)) {
                Ok(p) => prop_assert!(p.text.len() < 300),
                Err(e) => prop_assert!(matches!(e, ApiError::Invalid(_) | ApiError::TooLarge(_))),
            }
        }

        /// Any text is accepted or refused by the text rules, never a panic.
        #[test]
        fn any_text_is_checked(s in "\\PC{0,50}") {
            let r = check_text("text", &s);
            prop_assert_eq!(r.is_ok(), !s.trim().is_empty());
        }
    }
}
