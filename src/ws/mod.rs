//! WebSockets (PROTOCOL §5, §7): the only module that uses actix-web-actors, so a move
//! to actix-ws stays a one-folder change.

pub mod context;
pub mod frames;
pub mod socket;

use crate::config::Config;
use crate::hub::Hub;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use context::WsContext;
use socket::{Kind, Socket};
use std::sync::Arc;

/// Largest accepted client frame (bigger ones close the socket with 1009).
pub const MAX_FRAME: usize = 64 * 1024;

/// Registers the socket routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // HEAD answers as a plain GET does (400, no body), like every other GET route.
    use crate::routes::get;
    cfg.route("/ws/agent", get().to(agent))
        .route("/ws/widget", get().to(widget));
}

/// An upgrade carrying an `Origin` must come from an origin of `HUB_ALLOWED_ORIGINS`
/// or, when that list is not set, from the hub's own origin (the host the request was
/// sent to, PROTOCOL §2: the list replaces that default); one without `Origin` (not a
/// browser) passes.
pub fn origin_allowed(req: &HttpRequest, config: &Config) -> bool {
    // Every `Origin` header must pass (a browser sends one); one that is not visible
    // ASCII (RFC 6454 serialises origins in ASCII, IDNs as punycode) names no allowed
    // origin.
    req.headers()
        .get_all("origin")
        .all(|o| o.to_str().is_ok_and(|o| origin_is_allowed(o, req, config)))
}

fn origin_is_allowed(origin: &str, req: &HttpRequest, config: &Config) -> bool {
    if !config.allowed_origins.is_empty() {
        return config.origin_listed(origin);
    }
    // Compared as origins: without regard to case or the scheme's default port.
    let origin = crate::config::canonical_origin(origin);
    let host = req.connection_info().host().to_string();
    ["http://", "https://"].iter().any(|scheme| {
        origin.starts_with(scheme)
            && crate::config::canonical_origin(&format!("{scheme}{host}")) == origin
    })
}

async fn start(
    kind: Kind,
    hub: web::Data<Arc<Hub>>,
    req: HttpRequest,
    stream: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    if !origin_allowed(&req, &hub.config) {
        return Err(crate::error::ApiError::Forbidden(
            "this origin may not open sockets here".into(),
        )
        .into());
    }
    use crate::routes::single_header;
    use actix_web::http::header::{SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION};
    // RFC 6455 §4.2.1: an upgrade is an HTTP/1.1 GET whose key is 16 bytes in base64,
    // given once (§11.3.1).
    let key = single_header(&req, SEC_WEBSOCKET_KEY);
    let refused = if req.version() < actix_web::http::Version::HTTP_11 {
        Some("a WebSocket upgrade needs HTTP/1.1")
    } else if req
        .headers()
        .get(SEC_WEBSOCKET_KEY)
        .is_some_and(|k| !key_is_16_bytes(k.as_bytes()))
    {
        Some("Sec-WebSocket-Key must be 16 bytes in base64")
    } else if key.is_err() {
        Some("Sec-WebSocket-Key must be given once")
    } else {
        None
    };
    // actix also upgrades the drafts' versions 7 and 8; RFC 6455 is version 13 and the
    // hub speaks nothing else, so those, and a version named twice, are refused as
    // unsupported (400, naming version 13).
    let version_13 = match single_header(&req, SEC_WEBSOCKET_VERSION) {
        Ok(v) => v.is_none_or(|v| v.as_bytes() == b"13"),
        Err(crate::routes::Repeated) => false,
    };
    if refused.is_none() && !version_13 {
        return Ok(unsupported_version());
    }
    if let Some(why) = refused {
        return Err(crate::error::ApiError::invalid(why).into());
    }
    let socket = Socket::new(hub.get_ref().clone(), kind, req.peer_addr().map(|a| a.ip()));
    // Not an upgrade (a plain GET, a missing key or version): a §3 error body; one
    // naming a version this hub does not speak also names the one it does (RFC 6455
    // §4.2.2).
    let mut res = match ws::handshake(&req) {
        Ok(res) => res,
        Err(ws::HandshakeError::UnsupportedVersion) => return Ok(unsupported_version()),
        Err(e) => {
            use actix_web::ResponseError;
            return Ok(crate::error::ApiError::Invalid(format!(
                "this is a WebSocket endpoint: {e}"
            ))
            .error_response());
        }
    };
    Ok(res.streaming(WsContext::create(socket, stream, MAX_FRAME)))
}

/// An upgrade naming a version other than 13: 400 with the §3 body, naming the version
/// the hub speaks (RFC 6455 §4.2.2).
fn unsupported_version() -> HttpResponse {
    use actix_web::ResponseError;
    let mut res = crate::error::ApiError::invalid(
        "unsupported Sec-WebSocket-Version: this hub speaks version 13",
    )
    .error_response();
    res.headers_mut().insert(
        actix_web::http::header::SEC_WEBSOCKET_VERSION,
        actix_web::http::header::HeaderValue::from_static("13"),
    );
    res
}

/// Whether `key` is 16 bytes in base64: 22 characters of its alphabet and `==`.
fn key_is_16_bytes(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

async fn agent(
    hub: web::Data<Arc<Hub>>,
    req: HttpRequest,
    stream: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    start(Kind::Agent, hub, req, stream).await
}

async fn widget(
    hub: web::Data<Arc<Hub>>,
    req: HttpRequest,
    stream: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    start(Kind::Widget, hub, req, stream).await
}
