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
        .route("/api/widget/messages", super::get().to(list))
        .route("/api/widget/rating", web::post().to(rate))
        .route("/api/widget/page", web::post().to(page))
        .route("/api/widget/availability", super::get().to(availability));
}

/// How long the widget's availability reuses the median first response it read.
const TYPICAL_REPLY_READ_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// `GET /api/widget/availability` (an extension; no token: the widget asks before its
/// customer has written): `{"online": bool, "typical_reply_seconds": n | null}`, whether
/// an agent is online now (away ones are not) and the median first response (§8's,
/// read at most once a minute; null before any), so that the widget says what to
/// expect rather than a promise.
async fn availability(hub: HubData) -> Result<HttpResponse, ApiError> {
    let online = hub.presence.anyone_online();
    let cached = {
        let kept = crate::locks::lock(&hub.typical_reply);
        kept.filter(|(at, _)| at.elapsed() < TYPICAL_REPLY_READ_EVERY)
            .map(|(_, ms)| ms)
    };
    let typical_ms = match cached {
        Some(ms) => ms,
        None => {
            let ms = hub
                .store
                .read(|s| Ok(s.quantiles(crate::store::index::names::FIRST_RESPONSE, &[0.5])?[0]))
                .await?;
            *crate::locks::lock(&hub.typical_reply) = Some((std::time::Instant::now(), ms));
            ms
        }
    };
    let typical = typical_ms.map(|ms| (ms / 1000.0).round());
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(json!({"online": online, "typical_reply_seconds": typical})))
}

/// How long a rating's comment may be.
const MAX_RATING_COMMENT: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RatingBody {
    score: serde_json::Value,
    comment: Option<String>,
    conversation_id: Option<String>,
}

/// `POST /api/widget/rating` (an extension): the customer rates a conversation of theirs
/// (the latest on their channel unless `conversation_id` says which) once it is closed or
/// its session has ended: `score` 1 to 5, an optional `comment`. A later rating replaces
/// it. Answers 200 `{"rating": {"conversation_id","score","comment"}}`.
async fn rate(
    hub: HubData,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (contact_id, channel) = contact(&hub, &req).await?;
    let body = super::read_body(&req, payload).await?;
    let b: RatingBody = parse(&body)?;
    let score = match b.score.as_u64() {
        Some(s @ 1..=5) => s as u8,
        _ => {
            return Err(ApiError::invalid(
                "score must be a whole number from 1 to 5",
            ))
        }
    };
    let comment = trimmed("comment", b.comment, MAX_RATING_COMMENT)?;
    hub.allow_send(&contact_id, req.peer_addr().map(|a| a.ip()))?;
    let conversation = conversation_of(&hub, &contact_id, channel, b.conversation_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("conversation not found".into()))?;
    let cmd = crate::domain::Command::Rate {
        score,
        comment: comment.clone(),
    };
    let who = crate::domain::Actor::Contact(contact_id);
    hub.exec(&conversation.id, cmd, who, None).await?;
    Ok(HttpResponse::Ok().json(json!({"rating": {
        "conversation_id": conversation.id, "score": score, "comment": comment
    }})))
}

/// An optional text field, at most `max` characters, trimmed; blank is none.
fn trimmed(field: &str, v: Option<String>, max: usize) -> Result<Option<String>, ApiError> {
    Ok(opt_field(field, v, max)?
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty()))
}

/// The contact's conversation `asked` for, else its latest on `channel`; none when there
/// is none, and for another customer's (not found, as one that does not exist).
async fn conversation_of(
    hub: &HubData,
    contact: &ContactId,
    channel: String,
    asked: Option<String>,
) -> Result<Option<crate::domain::Conversation>, ApiError> {
    let k = contact.clone();
    Ok(hub
        .store
        .read(move |s| {
            let id = match asked {
                Some(id) => Some(ConversationId::from(id)),
                None => s.get_json::<ConversationId>(
                    keys::LATEST,
                    &[k.as_str().as_bytes(), channel.as_bytes()],
                )?,
            };
            Ok(match id {
                Some(id) => s.conversation(id.as_str())?.filter(|c| c.contact_id == k),
                None => None,
            })
        })
        .await?)
}

/// The longest page address and title a widget may report.
const MAX_PAGE_URL: usize = 2048;
const MAX_PAGE_TITLE: usize = 300;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageBody {
    url: String,
    title: Option<String>,
}

/// A page address agents may open: `http` or `https`, with a host, at most
/// [`MAX_PAGE_URL`] characters, no blanks or control characters.
fn page_url(url: &str) -> Result<String, ApiError> {
    let url = url.trim();
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return Err(ApiError::invalid("url must be an http or https address"));
    };
    if url.chars().count() > MAX_PAGE_URL {
        return Err(ApiError::invalid(format!(
            "url must be at most {MAX_PAGE_URL} characters"
        )));
    }
    let host_ends = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if host_ends == 0 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::invalid("url must be an http or https address"));
    }
    Ok(url.to_string())
}

/// `POST /api/widget/page` (an extension): the widget says which page of the site its
/// customer is on, `{"url", "title"?}`, when it loads and when the page changes. While
/// the customer's latest conversation on its channel is open (its session active, not
/// spam), another page than the last one noted is put on its timeline for the agents, as
/// a `conversation.page` event (respond.io's "page change"); otherwise nothing is kept.
/// Answers 200 `{"page": {"conversation_id": id | null, "url", "title"}}`, with the
/// conversation it is noted in (null: none open, so the widget tells again after its
/// next message).
async fn page(
    hub: HubData,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (contact_id, channel) = contact(&hub, &req).await?;
    let body = super::read_body(&req, payload).await?;
    let b: PageBody = parse(&body)?;
    let url = page_url(&b.url)?;
    let title = trimmed("title", b.title, MAX_PAGE_TITLE)?;
    if !hub
        .limiter
        .allow(&format!("p/{contact_id}"), crate::ratelimit::PAGE)
    {
        return Err(ApiError::RateLimited);
    }
    let conversation = conversation_of(&hub, &contact_id, channel, None)
        .await?
        .filter(|c| c.notes_pages());
    let noted = match conversation {
        Some(c) => {
            let cmd = crate::domain::Command::ViewPage {
                url: url.clone(),
                title: title.clone(),
            };
            let who = crate::domain::Actor::Contact(contact_id);
            hub.exec(&c.id, cmd, who, None).await?;
            Some(c.id)
        }
        None => None,
    };
    Ok(HttpResponse::Ok().json(json!({"page": {
        "conversation_id": noted, "url": url, "title": title
    }})))
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

/// Earlier conversations `?earlier=N` may ask for (an extension).
const MAX_EARLIER: u64 = 10;

#[derive(Deserialize)]
struct ListQuery {
    earlier: Option<String>,
    authors: Option<String>,
    ended: Option<String>,
}

/// A conversation as its contact sees it: `{"id","session"}` and its messages and replies,
/// oldest first (PROTOCOL §5). With `with_end` (an extension, `?ended=true`) the
/// conversation also says how its session ended: `"ended": {"reason","by","at"}`, what
/// the live `session.ended` frame told the contact, or null while it is active; and the
/// contact's rating of it, `"rating": {"score","comment"}` or null.
fn contact_view(
    s: &crate::store::Store,
    conv_id: &str,
    with_end: bool,
) -> Result<(serde_json::Value, Vec<serde_json::Value>), crate::store::StoreError> {
    let mut items = Vec::new();
    // The session as the items read make it (the record read before may be a commit
    // older): it only ever goes from active to ended.
    let mut session = SessionState::Active;
    let mut ended = serde_json::Value::Null;
    let mut rating = serde_json::Value::Null;
    for ev in s.conversation_events(conv_id)? {
        match &ev.body {
            EventBody::Rated { score, comment, .. } => {
                rating = json!({"score": score, "comment": comment});
            }
            EventBody::SessionEnded { by, reason } => {
                session = SessionState::Ended;
                ended = json!({"reason": reason, "by": by, "at": ev.at});
            }
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
    let mut conv = json!({"id": conv_id, "session": session});
    if with_end {
        conv["ended"] = ended;
        conv["rating"] = rating;
    }
    Ok((conv, items))
}

async fn list(hub: HubData, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let (contact_id, channel) = contact(&hub, &req).await?;
    let q = web::Query::<ListQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::invalid(format!("invalid query: {e}")))?
        .into_inner();
    // An extension: `earlier=N` adds the N conversations before the latest (on this
    // channel), oldest first, so that a widget still shows what was said before an
    // ended session after the page is reloaded.
    let earlier = match super::inbox::parse_num("earlier", q.earlier.as_deref())? {
        Some(n) => n.min(MAX_EARLIER) as usize,
        None => 0,
    };
    let with_authors = super::flag("authors", q.authors.as_deref())?;
    // An extension: `ended=true` says how each session ended (the agent's reason), so
    // that a reloaded widget shows the notice it showed live.
    let with_end = super::flag("ended", q.ended.as_deref())?;
    let out = hub
        .store
        .read(move |s| {
            let Some(conv_id) = s.get_json::<ConversationId>(
                keys::LATEST,
                &[contact_id.as_str().as_bytes(), channel.as_bytes()],
            )?
            else {
                let mut out = json!({"conversation": null, "items": []});
                if earlier > 0 {
                    out["earlier"] = json!([]);
                }
                return Ok(out);
            };
            let exists = s.conversation(conv_id.as_str())?.is_some();
            let (conv, items) = contact_view(s, conv_id.as_str(), with_end)?;
            let mut out = json!({
                "conversation": if exists { conv } else { serde_json::Value::Null },
                "items": items,
            });
            if earlier > 0 {
                let mut before = Vec::new();
                for id in s
                    .contact_conversations(contact_id.as_str())?
                    .unwrap_or_default()
                {
                    if id == conv_id.as_str() {
                        continue;
                    }
                    if let Some(c) = s.conversation(&id)? {
                        if c.channel == channel {
                            before.push(c);
                        }
                    }
                }
                before.sort_by_key(|c| c.opened_at);
                let skip = before.len().saturating_sub(earlier);
                let mut list = Vec::new();
                for c in &before[skip..] {
                    let (conv, items) = contact_view(s, c.id.as_str(), with_end)?;
                    list.push(json!({"conversation": conv, "items": items}));
                }
                out["earlier"] = json!(list);
            }
            Ok(out)
        })
        .await?;
    let mut out = out;
    if with_authors {
        out["authors"] = authors(&hub, &out);
    }
    Ok(HttpResponse::Ok().json(out))
}

/// An extension (`?authors=true`): the names of the agents whose replies a contact's
/// history holds, `{AGENT_ID: {"name"}}`, so that the widget can say who answered
/// ("Alice · 14:05"). Only those agents: a contact learns nothing of the rest of the team.
fn authors(hub: &crate::hub::Hub, out: &serde_json::Value) -> serde_json::Value {
    let earlier = out["earlier"].as_array().into_iter().flatten();
    let lists = std::iter::once(&out["items"]).chain(earlier.map(|c| &c["items"]));
    let mut names = serde_json::Map::new();
    for item in lists.filter_map(|l| l.as_array()).flatten() {
        let author = &item["author"];
        let Some(id) = author["id"].as_str() else {
            continue;
        };
        if author["kind"] != "agent" || names.contains_key(id) {
            continue;
        }
        if let Some(a) = hub.directory.agent(&id.into()) {
            names.insert(id.to_owned(), json!({ "name": a.name }));
        }
    }
    serde_json::Value::Object(names)
}
