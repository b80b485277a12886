//! The customer side over HTTP (PROTOCOL §5): open a widget session, send, read back.

use super::{check_text, contact, opt_field, parse, HubData};
use crate::auth::{self, ContactRecord};
use crate::domain::{ContactId, ConversationId, EventBody, SessionState};
use crate::error::ApiError;
use crate::sends::ContactSends;
use crate::store::keys;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

/// Registers the widget routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/widget/session", web::post().to(open_session))
        .route("/api/widget/messages", web::post().to(send))
        .route("/api/widget/messages", super::get().to(list));
}

#[derive(Deserialize)]
struct SessionBody {
    channel: Option<String>,
    name: Option<String>,
    email: Option<String>,
}

async fn open_session(
    hub: HubData,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    if let Some(ip) = req.peer_addr().map(|a| a.ip()) {
        if !hub
            .limiter
            .allow(&format!("s/{ip}"), crate::ratelimit::SESSION_IP)
        {
            return Err(ApiError::RateLimited);
        }
    }
    let body = super::read_body(&req, payload).await?;
    let b: SessionBody = parse(&body)?;
    let channel = b.channel.unwrap_or_else(|| "web".into());
    if channel.trim().is_empty() || channel.chars().count() > 64 {
        return Err(ApiError::invalid("channel must be 1 to 64 characters"));
    }
    let name = opt_field("name", b.name, 200)?;
    let email = opt_field("email", b.email, 320)?;
    let rec = ContactRecord {
        id: ContactId::from(auth::new_id("k")),
        channel,
        name,
        email,
        token_hash: None,
    };
    let token = hub.directory.put_contact(&hub.store, rec.clone()).await?;
    // Durable and known to nobody else yet: its first send need not read the store.
    hub.sends
        .put(rec.id.clone(), ContactSends::fresh(&rec.id, &rec.channel));
    tracing::info!(contact_id = %rec.id, channel = %rec.channel, "Widget session opened.");
    Ok(HttpResponse::Created().json(json!({"contact_id": rec.id, "token": token})))
}

/// The body of a customer send, shared with the widget socket.
#[derive(Deserialize)]
pub struct SendBody {
    pub text: String,
    pub client_id: Option<String>,
}

/// Validates a send: text rules and a bounded `client_id`.
pub fn check_send(b: &SendBody) -> Result<(), ApiError> {
    check_text("text", &b.text)?;
    super::check_client_id(b.client_id.as_deref())
}

async fn send(
    hub: HubData,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (contact_id, channel) = contact(&hub, &req).await?;
    let body = super::read_body(&req, payload).await?;
    let b: SendBody = parse(&body)?;
    check_send(&b)?;
    hub.allow_send(&contact_id, req.peer_addr().map(|a| a.ip()))?;
    let (m, created) = hub
        .customer_send(&contact_id, &channel, b.text, b.client_id)
        .await?;
    let body = json!({"message": m.for_contact()});
    Ok(if created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

async fn list(hub: HubData, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let (contact_id, channel) = contact(&hub, &req).await?;
    let out = hub
        .store
        .read(move |s| {
            let Some(conv_id) = s.get_json::<ConversationId>(
                keys::LATEST,
                &[contact_id.as_str().as_bytes(), channel.as_bytes()],
            )?
            else {
                return Ok(json!({"conversation": null, "items": []}));
            };
            let conv = s.conversation(conv_id.as_str())?;
            let mut items = Vec::new();
            // The session as the items read make it (the record read above may be a
            // commit older): it only ever goes from active to ended.
            let mut session = SessionState::Active;
            for ev in s.conversation_events(conv_id.as_str())? {
                match &ev.body {
                    EventBody::SessionEnded { .. } => session = SessionState::Ended,
                    EventBody::MessageCreated { message } => {
                        let mut v = json!(message.for_contact());
                        v["type"] = json!("message");
                        items.push(v);
                    }
                    EventBody::ReplyCreated { reply } => {
                        let mut v = json!(reply);
                        v["type"] = json!("reply");
                        items.push(v);
                    }
                    _ => {}
                }
            }
            Ok(json!({
                "conversation": conv.map(|c| json!({"id": c.id, "session": session})),
                "items": items,
            }))
        })
        .await?;
    Ok(HttpResponse::Ok().json(out))
}
