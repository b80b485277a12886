//! Conversations (PROTOCOL §6.1 replies, §6.2): lists, timeline, activities, replies,
//! comments, close, end session, spam.

use super::{agent, check_text, opt_text, parse, HubData};
use crate::actors::conversation::{Idempotency, Outcome};
use crate::domain::{
    Actor as Who, AgentId, Command, CommentId, Conversation, ConversationId, ConversationState,
    EventBody, ReplyId,
};
use crate::error::ApiError;
use crate::hub::Hub;
use crate::store::{index::names, keys};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// Registers the conversation routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/conversations", super::get().to(list))
        .route("/api/conversations/{id}", super::get().to(show))
        .route(
            "/api/conversations/{id}/activities",
            super::get().to(activities),
        )
        .route("/api/conversations/{id}/replies", web::post().to(reply))
        .route("/api/conversations/{id}/comments", web::post().to(comment))
        .route("/api/conversations/{id}/close", web::post().to(close))
        .route(
            "/api/conversations/{id}/end-session",
            web::post().to(end_session),
        )
        .route("/api/conversations/{id}/spam", web::post().to(spam))
        .route("/api/conversations/{id}/owner", web::post().to(owner));
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    limit: Option<String>,
    before: Option<String>,
    preview: Option<String>,
    counts: Option<String>,
}

async fn list(hub: HubData, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    agent(&hub, &req).await?;
    let q = web::Query::<ListQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::invalid(format!("invalid query: {e}")))?
        .into_inner();
    let index = match q.state.as_deref().unwrap_or("open") {
        "open" => names::CONV_OPEN,
        "closed" => names::CONV_CLOSED,
        "spam" => names::CONV_SPAM,
        "all" => names::CONV_ALL,
        _ => return Err(ApiError::invalid("state must be open, closed, spam or all")),
    };
    // PROTOCOL §6.2 lists every conversation of the state; `limit` (at most 5000) is
    // an extension for pages.
    let limit = match super::inbox::parse_num("limit", q.limit.as_deref())? {
        Some(0) => return Err(ApiError::invalid("limit must be at least 1")),
        Some(n) => n.min(5000) as usize,
        None => usize::MAX,
    };
    let before = super::inbox::parse_num("before", q.before.as_deref())?;
    // An extension: each conversation's latest message, reply or comment (below).
    let preview = super::flag("preview", q.preview.as_deref())?;
    // An extension: every list's size (below).
    let counts = super::flag("counts", q.counts.as_deref())?;
    let store = hub.store.clone();
    let mut first = true;
    let n = limit.min(LIST_PAGE);
    let page = list_page(&store, index, before, n, preview, counts).await?;
    // With `counts=true`: how many conversations each list holds, read with the first
    // page (as `GET /api/inbox` answers its folders' counts).
    let mut head = Vec::with_capacity(128);
    if let Some([open, closed, spam, all]) = page.counts {
        head.extend_from_slice(
            format!(
                r#"{{"counts":{{"open":{open},"closed":{closed},"spam":{spam},"all":{all}}},"items":["#
            )
            .as_bytes(),
        );
    } else {
        head.extend_from_slice(br#"{"items":["#);
    }
    let Some(cursor) = write_page(&mut head, page, n, limit, &mut first) else {
        return Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(head));
    };
    // A long list goes out page by page: the next page is read when the client has
    // taken the previous one, so the answer is never held whole in memory.
    let rest = futures_util::stream::unfold(Some((cursor, first)), move |state| {
        let store = store.clone();
        async move {
            let ((before, remaining), mut first) = state?;
            let n = remaining.min(LIST_PAGE);
            match list_page(&store, index, before, n, preview, false).await {
                Ok(page) => {
                    let mut chunk = Vec::new();
                    let next = write_page(&mut chunk, page, n, remaining, &mut first);
                    Some((Ok(bytes::Bytes::from(chunk)), next.map(|c| (c, first))))
                }
                Err(e) => {
                    // The status is sent already: the client sees a cut answer.
                    tracing::warn!(error = %e, "Conversation list cut short.");
                    Some((Err(std::io::Error::other(e.to_string())), None))
                }
            }
        }
    });
    let head = futures_util::stream::once(async move { Ok(bytes::Bytes::from(head)) });
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .streaming(futures_util::StreamExt::chain(head, rest)))
}

/// Conversations read from the store at a time for `GET /api/conversations`.
const LIST_PAGE: usize = 1000;

/// One page of a conversation list: its conversations, the order key of its last
/// (oldest) index entry, and how many entries it read.
struct ListPage {
    items: Vec<Listed>,
    /// The open, closed, spam and all lists' sizes, when asked.
    counts: Option<[i64; 4]>,
    last: Option<u64>,
    entries: usize,
}

/// A conversation as a list shows it: with `?preview=true`, its `preview` too.
#[derive(serde::Serialize)]
pub(super) struct Listed {
    #[serde(flatten)]
    pub(super) conversation: Conversation,
    #[serde(skip_serializing_if = "Option::is_none")]
    preview: Option<Option<Preview>>,
}

/// The latest message, reply or comment of a conversation, its text cut to
/// [`PREVIEW_CHARS`] characters (`truncated` says so): what a list row shows of it.
#[derive(serde::Serialize, Debug, PartialEq)]
struct Preview {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    author: PreviewAuthor,
    text: String,
    truncated: bool,
    at: crate::domain::Ts,
    seq: u64,
}

/// Who wrote a preview's item: the contact, an agent or a bot.
#[derive(serde::Serialize, Debug, PartialEq)]
struct PreviewAuthor {
    kind: &'static str,
    id: String,
}

/// The characters of an item's text a preview keeps.
const PREVIEW_CHARS: usize = 160;

impl Preview {
    /// The preview of a `*.created` event of a message, reply or comment; None for any
    /// other event.
    fn of(ev: &crate::domain::Event) -> Option<Preview> {
        let author = |a: &crate::domain::Author| PreviewAuthor {
            kind: match a.kind {
                crate::domain::AuthorKind::Agent => "agent",
                crate::domain::AuthorKind::Bot => "bot",
            },
            id: a.id.clone(),
        };
        let (kind, id, author, text, at, seq) = match &ev.body {
            EventBody::MessageCreated { message: m } => (
                "message",
                m.id.to_string(),
                PreviewAuthor {
                    kind: "contact",
                    id: m.contact_id.to_string(),
                },
                &m.text,
                m.at,
                m.seq,
            ),
            EventBody::ReplyCreated { reply: r } => (
                "reply",
                r.id.to_string(),
                author(&r.author),
                &r.text,
                r.at,
                r.seq,
            ),
            EventBody::CommentCreated { comment: c } => (
                "comment",
                c.id.to_string(),
                author(&c.author),
                &c.text,
                c.at,
                c.seq,
            ),
            _ => return None,
        };
        let cut = text.char_indices().nth(PREVIEW_CHARS).map(|(i, _)| i);
        Some(Preview {
            kind,
            id,
            author,
            text: text[..cut.unwrap_or(text.len())].to_owned(),
            truncated: cut.is_some(),
            at,
            seq,
        })
    }
}

/// Up to `n` conversations of `index` older than `before`, newest first, with their
/// previews when asked.
async fn list_page(
    store: &Arc<crate::store::Store>,
    index: &'static str,
    before: Option<u64>,
    n: usize,
    preview: bool,
    counts: bool,
) -> Result<ListPage, crate::store::StoreError> {
    store
        .read(move |s| {
            let counts = if counts {
                let n = |name| s.count(name).map(|n| n.max(0));
                Some([
                    n(names::CONV_OPEN)?,
                    n(names::CONV_CLOSED)?,
                    n(names::CONV_SPAM)?,
                    n(names::CONV_ALL)?,
                ])
            } else {
                None
            };
            let entries = s.index_desc(index, before, n)?;
            let mut page = ListPage {
                counts,
                items: Vec::with_capacity(entries.len()),
                last: entries.last().map(|e| e.0),
                entries: entries.len(),
            };
            for (_, id, _) in entries {
                if let Some(c) = s.conversation(&id)? {
                    page.items.push(listed(s, c, preview)?);
                }
            }
            Ok(page)
        })
        .await
}

/// A conversation as lists show it, with its preview when asked.
pub(super) fn listed(
    s: &crate::store::Store,
    conversation: Conversation,
    preview: bool,
) -> Result<Listed, crate::store::StoreError> {
    let preview = if preview {
        let last = s.last_conversation_event(
            conversation.id.as_str(),
            &["message.created", "reply.created", "comment.created"],
        )?;
        Some(last.as_ref().and_then(Preview::of))
    } else {
        None
    };
    Ok(Listed {
        conversation,
        preview,
    })
}

/// Appends a page read with room for `n` entries, out of `remaining` still wanted, to
/// the list's JSON array (`first`: nothing written yet). Closes the answer when the
/// list is done; otherwise returns where the next page starts and how many are left.
fn write_page(
    buf: &mut Vec<u8>,
    page: ListPage,
    n: usize,
    remaining: usize,
    first: &mut bool,
) -> Option<(Option<u64>, usize)> {
    for c in &page.items {
        if !*first {
            buf.push(b',');
        }
        *first = false;
        // unwrap: a Conversation is plain data; serialising it into memory cannot fail.
        serde_json::to_writer(&mut *buf, c).expect("serialise a conversation");
    }
    let remaining = remaining - page.entries;
    if page.entries < n {
        buf.extend_from_slice(b"]}");
        return None;
    }
    if remaining == 0 {
        // The limit cut the list (an extension): where the next page starts, for
        // `before`. A conversation's `seq` moves with its changes; its place does not.
        match page.last {
            Some(last) => buf.extend_from_slice(format!(r#"],"next_before":{last}}}"#).as_bytes()),
            None => buf.extend_from_slice(b"]}"),
        }
        return None;
    }
    Some((page.last, remaining))
}

fn typed(v: impl serde::Serialize, kind: &str) -> Value {
    let mut v = json!(v);
    v["type"] = json!(kind);
    v
}

async fn show(
    hub: HubData,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    agent(&hub, &req).await?;
    let id = path.into_inner();
    let out = hub
        .store
        .read(move |s| {
            let Some(conv) = s.conversation(&id)? else {
                return Ok(None);
            };
            let events = s.conversation_events(&id)?;
            // The messages as they now stand: the conversation's events, folded.
            let mut state = ConversationState::default();
            for ev in &events {
                state.apply_event(ev);
            }
            // The conversation too, so that it is the one its timeline makes: the record
            // read above may be a commit older than the events read after it.
            let conv = state.conversation.take().unwrap_or(conv);
            let mut timeline = Vec::with_capacity(events.len());
            for ev in events {
                match &ev.body {
                    EventBody::MessageCreated { message } => {
                        let current = state.message(&message.id).unwrap_or(message);
                        timeline.push(typed(current, "message"));
                    }
                    EventBody::ReplyCreated { reply } => timeline.push(typed(reply, "reply")),
                    EventBody::CommentCreated { comment } => {
                        timeline.push(typed(comment, "comment"))
                    }
                    _ => timeline.push(typed(&ev, "event")),
                }
            }
            let contact = s
                .get_json::<crate::auth::ContactRecord>(
                    keys::CONTACT,
                    &[conv.contact_id.as_str().as_bytes()],
                )?
                .map(|c| c.view());
            Ok(Some(
                json!({ "conversation": conv, "timeline": timeline, "contact": contact }),
            ))
        })
        .await?
        .ok_or_else(|| ApiError::NotFound("conversation not found".into()))?;
    Ok(HttpResponse::Ok().json(out))
}

async fn activities(
    hub: HubData,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    agent(&hub, &req).await?;
    let id = path.into_inner();
    let items = hub
        .store
        .read(move |s| {
            if s.conversation(&id)?.is_none() {
                return Ok(None);
            }
            let mut evs = s.conversation_events(&id)?;
            evs.reverse();
            Ok(Some(evs))
        })
        .await?
        .ok_or_else(|| ApiError::NotFound("conversation not found".into()))?;
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

#[derive(Deserialize)]
struct ReplyBody {
    text: String,
    client_id: Option<String>,
}

async fn reply(
    hub: HubData,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (me, role) = agent(&hub, &req).await?;
    let body = super::read_body(&req, payload).await?;
    let b: ReplyBody = parse(&body)?;
    check_text("text", &b.text)?;
    super::check_client_id(b.client_id.as_deref())?;
    let conv = ConversationId::from(path.into_inner());
    let hub2: Arc<Hub> = hub.get_ref().clone();
    let scope = format!("a/{me}");
    let lock = b.client_id.as_ref().map(|c| format!("{scope}/{c}"));
    let who = Who::Agent {
        id: me.clone(),
        role,
    };
    let run = async move {
        if let Some(cid) = &b.client_id {
            if let Some(rec) = hub2.earlier_reply(&scope, cid).await? {
                // A repeat sent to another conversation still answers with the first
                // reply, but one sent to a conversation that does not exist is a 404
                // (§3 checks that before anything the action's state decides).
                if rec["reply"]["conversation_id"].as_str() != Some(conv.as_str()) {
                    let id = conv.as_str().to_string();
                    let known = hub2
                        .store
                        .read(move |s| s.conversation(&id))
                        .await?
                        .is_some();
                    if !known {
                        return Err(ApiError::NotFound("conversation not found".into()));
                    }
                }
                return Ok::<_, ApiError>((rec, false));
            }
        }
        let cmd = Command::Reply {
            id: ReplyId::from(crate::auth::new_id("r")),
            text: b.text,
        };
        let client_id = b.client_id.clone();
        let idem = b.client_id.map(|client_id| Idempotency::Record {
            scope: scope.clone(),
            client_id,
        });
        let done = hub2.exec(&conv, cmd, who, idem).await;
        if let Some(cid) = &client_id {
            // Whatever the outcome: a failure may have been written for all the hub
            // knows, and a client id noted in vain only costs its repeat a read.
            hub2.reply_ids.used(&scope, cid).await;
        }
        match done? {
            Outcome::Reply { reply, answered } => {
                Ok((json!({"reply": reply, "answered": answered}), true))
            }
            _ => Err(ApiError::NotFound("conversation not found".into())),
        }
    };
    // Repeats of a client id wait for the first one and find its record; an agent's
    // other replies run at once (the hub's admission bounds how many agents' commands
    // run together: `Hub::exec`).
    let (body, created) = match &lock {
        Some(name) => hub.locked(name.clone(), run).await?,
        None => run.await?,
    };
    Ok(if created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// The agents `@mention`ed in `text`, by name (case-insensitive) or id. Where names
/// share a beginning, a mention is the longest one it spells (`@Mary Jane` is Mary
/// Jane, not Mary as well).
pub fn mentions(hub: &Hub, text: &str) -> Vec<String> {
    let lower = crate::auth::caseless(text);
    let agents = hub.directory.agents();
    let handles: Vec<(String, usize)> = agents
        .iter()
        .enumerate()
        .flat_map(|(i, a)| {
            [
                (crate::auth::caseless(&a.name), i),
                (crate::auth::caseless(a.id.as_str()), i),
            ]
        })
        .filter(|(h, _)| !h.is_empty())
        .collect();
    let mut mentioned = vec![false; agents.len()];
    for (at, _) in lower.match_indices('@') {
        // A mention starts a word: the `@` of an address (`sue@sue.com`) is none.
        let starts_word = lower[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric() && !"_.-+%".contains(c));
        if !starts_word {
            continue;
        }
        let rest = &lower[at + 1..];
        // A handle ends a word: what follows is no letter, digit or mark on its last
        // letter (`@Zed` with a diaeresis over its "d" is no `@Zed`).
        let spelled = |h: &str| {
            rest.starts_with(h)
                && rest[h.len()..].chars().next().is_none_or(|c| {
                    !c.is_alphanumeric()
                        && c != '_'
                        && c != '-'
                        && !unicode_normalization::char::is_combining_mark(c)
                })
        };
        let longest = handles
            .iter()
            .filter(|(h, _)| spelled(h))
            .map(|(h, _)| h.len())
            .max();
        for (h, i) in &handles {
            if Some(h.len()) == longest && spelled(h) {
                mentioned[*i] = true;
            }
        }
    }
    agents
        .into_iter()
        .zip(mentioned)
        .filter(|(_, m)| *m)
        .map(|(a, _)| a.id.to_string())
        .collect()
}

#[derive(Deserialize)]
struct CommentBody {
    text: String,
}

async fn comment(
    hub: HubData,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (me, role) = agent(&hub, &req).await?;
    let body = super::read_body(&req, payload).await?;
    let b: CommentBody = parse(&body)?;
    check_text("text", &b.text)?;
    let conv = ConversationId::from(path.into_inner());
    let cmd = Command::Comment {
        id: CommentId::from(crate::auth::new_id("n")),
        mentions: mentions(&hub, &b.text),
        text: b.text,
    };
    match hub
        .exec(&conv, cmd, Who::Agent { id: me, role }, None)
        .await?
    {
        Outcome::Comment(c) => Ok(HttpResponse::Created().json(json!({ "comment": c }))),
        _ => Err(ApiError::NotFound("conversation not found".into())),
    }
}

async fn conversation_command(
    hub: &HubData,
    me: AgentId,
    role: crate::domain::Role,
    id: String,
    cmd: Command,
) -> Result<HttpResponse, ApiError> {
    let conv = ConversationId::from(id);
    match hub
        .exec(&conv, cmd, Who::Agent { id: me, role }, None)
        .await?
    {
        Outcome::Conversation(c) => Ok(HttpResponse::Ok().json(json!({ "conversation": c }))),
        _ => Err(ApiError::NotFound("conversation not found".into())),
    }
}

#[derive(Deserialize)]
struct CloseBody {
    notes: Option<String>,
}

async fn close(
    hub: HubData,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (me, role) = agent(&hub, &req).await?;
    let body = super::read_body(&req, payload).await?;
    let b: CloseBody = parse(&body)?;
    let notes = opt_text("notes", b.notes, 4096)?;
    conversation_command(&hub, me, role, path.into_inner(), Command::Close { notes }).await
}

#[derive(Deserialize)]
struct EndBody {
    reason: Option<String>,
}

async fn end_session(
    hub: HubData,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (me, role) = agent(&hub, &req).await?;
    let body = super::read_body(&req, payload).await?;
    let b: EndBody = parse(&body)?;
    let reason = opt_text("reason", b.reason, 4096)?;
    conversation_command(
        &hub,
        me,
        role,
        path.into_inner(),
        Command::EndSession { reason },
    )
    .await
}

#[derive(Deserialize)]
struct SpamBody {
    spam: bool,
}

async fn spam(
    hub: HubData,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (me, role) = agent(&hub, &req).await?;
    let body = super::read_body(&req, payload).await?;
    let b: SpamBody = parse(&body)?;
    conversation_command(
        &hub,
        me,
        role,
        path.into_inner(),
        Command::SetSpam { spam: b.spam },
    )
    .await
}

#[derive(Deserialize)]
struct OwnerBody {
    agent_id: Option<String>,
}

/// An extension: `POST /api/conversations/{id}/owner {"agent_id"?}` gives the
/// conversation to an agent as its owner (the caller when absent), answered 200
/// `{"conversation"}` with a `conversation.owner` event. A supervisor or admin gives any
/// conversation to anyone, its owner hands it over, an agent takes one nobody owns;
/// otherwise 403. The same owner again changes nothing.
async fn owner(
    hub: HubData,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (me, role) = agent(&hub, &req).await?;
    let body = super::read_body(&req, payload).await?;
    let b: OwnerBody = parse(&body)?;
    let agent_id = super::agent_or_me(&hub, b.agent_id, &me)?;
    conversation_command(
        &hub,
        me,
        role,
        path.into_inner(),
        Command::SetOwner { agent_id },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Author, AuthorKind, Event, Reply, Ts};

    fn reply_event(text: &str) -> Event {
        let reply = Reply {
            id: ReplyId::from("r_1"),
            conversation_id: ConversationId::from("c_1"),
            author: Author {
                kind: AuthorKind::Bot,
                id: "a_1".into(),
            },
            text: text.into(),
            at: Ts(0),
            seq: 0,
        };
        Event::new(
            7,
            Some(ConversationId::from("c_1")),
            Ts(0),
            EventBody::ReplyCreated { reply },
        )
    }

    #[test]
    fn a_preview_keeps_160_characters_and_says_when_it_cut() {
        let exact = "é".repeat(PREVIEW_CHARS);
        let p = Preview::of(&reply_event(&exact)).unwrap();
        assert_eq!((p.text.as_str(), p.truncated), (exact.as_str(), false));
        let longer = format!("{exact}x");
        let p = Preview::of(&reply_event(&longer)).unwrap();
        assert_eq!((p.text.as_str(), p.truncated), (exact.as_str(), true));
        assert_eq!((p.kind, p.author.kind, p.seq), ("reply", "bot", 7));
        let status = Event::new(
            8,
            None,
            Ts(0),
            EventBody::PresenceChanged {
                agent_id: "a_1".into(),
                presence: "online".into(),
            },
        );
        assert_eq!(
            Preview::of(&status),
            None,
            "only messages, replies and comments"
        );
    }
}
