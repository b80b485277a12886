//! PROTOCOL §6.2: conversations — close (and reopen by the contact), end of the messaging
//! session, spam by hand, comments with @mentions, timeline and activities, and their
//! persistence across a `kill -9`.

mod common;

use common::{act_ok, assert_error, conv_of, eventually, id, Frame, Hub, Socket, ADMIN};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- helpers

/// `GET /api/conversations/{id}`: (conversation, timeline).
fn show(hub: &Hub, conv: &str) -> (Value, Vec<Value>) {
    let (s, b) = hub.get(&format!("/api/conversations/{conv}"), ADMIN);
    assert_eq!(s, 200, "show {conv}: {b}");
    (
        b["conversation"].clone(),
        b["timeline"].as_array().expect("timeline").clone(),
    )
}

fn conversation(hub: &Hub, conv: &str) -> Value {
    show(hub, conv).0
}

fn activities(hub: &Hub, conv: &str) -> Vec<Value> {
    let (s, b) = hub.get(&format!("/api/conversations/{conv}/activities"), ADMIN);
    assert_eq!(s, 200, "activities {conv}: {b}");
    b["items"].as_array().expect("items").clone()
}

fn kinds(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Ids of `GET /api/conversations?state=S`.
fn listed(hub: &Hub, state: &str) -> Vec<String> {
    let (s, b) = hub.get(&format!("/api/conversations?state={state}"), ADMIN);
    assert_eq!(s, 200, "list {state}: {b}");
    b["items"].as_array().unwrap().iter().map(id).collect()
}

/// Ids of an inbox folder, as `token` sees it.
fn folder(hub: &Hub, token: &str, f: &str) -> Vec<String> {
    let (s, b) = hub.get(&format!("/api/inbox?folder={f}&limit=500"), token);
    assert_eq!(s, 200, "inbox {f}: {b}");
    b["items"].as_array().unwrap().iter().map(id).collect()
}

fn post_conv(hub: &Hub, token: &str, conv: &str, what: &str, body: Value) -> (u16, Value) {
    hub.post(&format!("/api/conversations/{conv}/{what}"), token, body)
}

/// A conversation action that must answer 200 `{"conversation"}`.
fn conv_ok(hub: &Hub, token: &str, conv: &str, what: &str, body: Value) -> Value {
    let (s, b) = post_conv(hub, token, conv, what, body);
    assert_eq!(s, 200, "{what}: {b}");
    assert_eq!(b["conversation"]["id"], conv, "{what}: {b}");
    b["conversation"].clone()
}

fn reply(hub: &Hub, token: &str, conv: &str, body: Value) -> (u16, Value) {
    post_conv(hub, token, conv, "replies", body)
}

fn comment(hub: &Hub, token: &str, conv: &str, text: &str) -> Value {
    let (s, b) = post_conv(hub, token, conv, "comments", json!({ "text": text }));
    assert_eq!(s, 201, "comment: {b}");
    b["comment"].clone()
}

/// The agent ids a comment mentions.
fn mentioned(c: &Value) -> BTreeSet<&str> {
    c["mentions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

fn status(hub: &Hub, msg: &str) -> (String, Value) {
    let m = hub.message(ADMIN, msg);
    (
        m["status"].as_str().unwrap().to_string(),
        m["assignee"].clone(),
    )
}

/// Waits until the agent is `online`, keeping its console open.
fn online(hub: &Hub, agent: &(String, String)) -> Socket {
    let (sock, _) = hub.console(&agent.1, None);
    eventually("agent online", || {
        let (_, b) = hub.get("/api/agents", ADMIN);
        b["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == agent.0.as_str() && a["presence"] == "online")
            .then_some(())
    });
    sock
}

/// Reads events of conversation `conv` with a seq over `after` until every kind in `want`
/// was seen; returns them by kind (the first of each).
fn await_kinds(
    sock: &mut Socket,
    conv: &str,
    after: u64,
    want: &[&str],
) -> BTreeMap<String, Value> {
    let mut got = BTreeMap::new();
    let deadline = Instant::now() + common::WAIT;
    while want.iter().any(|k| !got.contains_key(*k)) {
        assert!(
            Instant::now() < deadline,
            "events {want:?} not all seen; got {:?}",
            got.keys()
        );
        if let Frame::Json(v) = sock.next(Duration::from_millis(500)) {
            if v["type"] == "event"
                && v["conversation_id"] == conv
                && v["seq"].as_u64().unwrap_or(0) > after
            {
                let k = v["kind"].as_str().unwrap().to_string();
                got.entry(k).or_insert(v);
            }
        }
    }
    got
}

/// Reads a socket for `quiet` and returns every JSON frame seen.
fn drain(sock: &mut Socket, quiet: Duration) -> Vec<Value> {
    let mut out = Vec::new();
    let deadline = Instant::now() + quiet;
    while Instant::now() < deadline {
        if let Frame::Json(v) = sock.next(Duration::from_millis(100)) {
            out.push(v);
        }
    }
    out
}

fn widget(hub: &Hub, token: &str) -> Socket {
    let mut w = hub.socket("/ws/widget", json!({"type": "hello", "token": token}));
    w.recv_type("welcome");
    w
}

fn widget_items(hub: &Hub, token: &str) -> Value {
    let (s, b) = hub.get("/api/widget/messages", token);
    assert_eq!(s, 200, "widget messages: {b}");
    b
}

// ---------------------------------------------------------------- close

/// One conversation holding a message in each status, agent `a` its owner.
struct Busy {
    hub: Hub,
    a: (String, String),
    s: (String, String),
    conv: String,
    answered: String,
    /// (status it is in, message id) for the open ones.
    open: Vec<(&'static str, String)>,
    _a_console: Socket,
}

fn busy() -> Busy {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let s = hub.agent("Sam", "supervisor");
    let a_console = online(&hub, &a);
    let (_, contact) = hub.contact();

    let m_answered = hub.say(&contact, "first question");
    let conv = conv_of(&m_answered);
    let (st, b) = reply(&hub, &a.1, &conv, json!({"text": "answer"}));
    assert_eq!(st, 201, "{b}");

    let m_pending = id(&hub.say(&contact, "still pending"));
    let m_assigned = id(&hub.say(&contact, "to be assigned"));
    let m_hold = id(&hub.say(&contact, "to be held"));
    let m_help_req = id(&hub.say(&contact, "needs help"));
    let m_help_ans = id(&hub.say(&contact, "help answered"));
    for m in [&m_assigned, &m_hold, &m_help_req, &m_help_ans] {
        act_ok(&hub, &a.1, m, "assign", json!({}));
    }
    act_ok(&hub, &a.1, &m_hold, "hold", json!({"for_seconds": 3600}));
    act_ok(
        &hub,
        &a.1,
        &m_help_req,
        "request-help",
        json!({"question": "?"}),
    );
    act_ok(
        &hub,
        &a.1,
        &m_help_ans,
        "request-help",
        json!({"question": "??"}),
    );
    act_ok(&hub, &s.1, &m_help_ans, "assign", json!({}));
    let m = act_ok(
        &hub,
        &s.1,
        &m_help_ans,
        "answer-help",
        json!({"answer": "!"}),
    );
    assert_eq!(m["status"], "help_answered", "{m}");

    let open = vec![
        ("pending", m_pending),
        ("assigned", m_assigned),
        ("on_hold", m_hold),
        ("help_requested", m_help_req),
        ("help_answered", m_help_ans),
    ];
    for (st, m) in &open {
        assert_eq!(status(&hub, m).0, *st, "setup");
    }
    Busy {
        hub,
        a,
        s,
        conv,
        answered: id(&m_answered),
        open,
        _a_console: a_console,
    }
}

#[test]
fn close_archives_every_open_message_and_leaves_answered_ones() {
    let b = busy();
    let c = conv_ok(&b.hub, &b.s.1, &b.conv, "close", json!({"notes": "done"}));
    assert_eq!(c["state"], "closed", "{c}");
    for (was, m) in &b.open {
        assert_eq!(status(&b.hub, m).0, "archived", "message that was {was}");
    }
    assert_eq!(status(&b.hub, &b.answered).0, "answered");
    // One status event per open message, each to archived, by the closer.
    let acts = activities(&b.hub, &b.conv);
    for (was, m) in &b.open {
        let ev: Vec<&Value> = acts
            .iter()
            .filter(|e| {
                e["kind"] == "message.status_changed"
                    && e["data"]["message_id"] == m.as_str()
                    && e["data"]["to"] == "archived"
            })
            .collect();
        assert_eq!(ev.len(), 1, "archived event for the {was} message: {ev:?}");
        assert_eq!(ev[0]["data"]["from"], *was);
        assert_eq!(ev[0]["data"]["by"], b.s.0.as_str());
    }
    // Archived messages leave the working folders.
    assert!(folder(&b.hub, ADMIN, "pending").is_empty());
    assert!(folder(&b.hub, &b.a.1, "mine").is_empty());
    assert!(folder(&b.hub, &b.a.1, "on_hold").is_empty());
    assert!(folder(&b.hub, &b.s.1, "help_requests").is_empty());
    let archived: BTreeSet<String> = folder(&b.hub, ADMIN, "archived").into_iter().collect();
    let want: BTreeSet<String> = b.open.iter().map(|(_, m)| m.clone()).collect();
    assert_eq!(archived, want);
}

#[test]
fn close_keeps_the_owner_and_turns_the_bot_back_on_with_events() {
    let b = busy();
    let before = conversation(&b.hub, &b.conv);
    assert_eq!(before["owner"], b.a.0.as_str(), "precondition: {before}");
    assert_eq!(
        before["bot_active"], false,
        "precondition: the reply turned it off"
    );

    let (mut console, _) = b.hub.console(&b.s.1, None);
    let last = activities(&b.hub, &b.conv)[0]["seq"].as_u64().unwrap();
    let c = conv_ok(
        &b.hub,
        &b.s.1,
        &b.conv,
        "close",
        json!({"notes": "solved by phone"}),
    );
    assert_eq!(c["owner"], b.a.0.as_str(), "owner kept: {c}");
    assert_eq!(c["bot_active"], true, "{c}");
    assert_eq!(c["state"], "closed");
    assert_eq!(c["session"], "active");
    let acts = activities(&b.hub, &b.conv);
    assert_eq!(
        c["seq"], acts[0]["seq"],
        "the conversation's seq is its last change"
    );

    let ev = await_kinds(
        &mut console,
        &b.conv,
        last,
        &["conversation.closed", "conversation.bot"],
    );
    let closed = &ev["conversation.closed"]["data"];
    assert_eq!(closed["by"], b.s.0.as_str(), "{closed}");
    assert_eq!(closed["notes"], "solved by phone", "{closed}");
    let bot = &ev["conversation.bot"]["data"];
    assert_eq!(bot["active"], true, "{bot}");
    assert_eq!(bot["by"], b.s.0.as_str(), "{bot}");

    let after = conversation(&b.hub, &b.conv);
    assert_eq!(after["owner"], b.a.0.as_str());
    assert_eq!(after["bot_active"], true);
    assert_eq!(after["state"], "closed");
    assert!(listed(&b.hub, "closed").contains(&b.conv));
    assert!(!listed(&b.hub, "open").contains(&b.conv));
}

#[test]
fn close_without_notes_has_null_notes() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let conv = conv_of(&hub.say(&k, "hi"));
    let (mut console, _) = hub.console(&a.1, None);
    let (s, b) = hub.call_raw(
        "POST",
        &format!("/api/conversations/{conv}/close"),
        Some(&a.1),
        None,
    );
    assert_eq!(s, 200, "close with no body: {b}");
    let ev = console.recv_event("conversation.closed", |e| {
        e["conversation_id"] == conv.as_str()
    });
    assert_eq!(ev["data"]["by"], a.0.as_str());
    assert!(ev["data"]["notes"].is_null(), "{ev}");
}

#[test]
fn a_hold_timer_never_brings_back_a_message_archived_by_close() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let _console = online(&hub, &a);
    let (_, k) = hub.contact();
    let m = id(&hub.say(&k, "hi"));
    let conv = hub.message(ADMIN, &m)["conversation_id"]
        .as_str()
        .unwrap()
        .to_string();
    act_ok(&hub, &a.1, &m, "assign", json!({}));
    act_ok(&hub, &a.1, &m, "hold", json!({"for_seconds": 1}));
    conv_ok(&hub, &a.1, &conv, "close", json!({}));
    let (st, _) = status(&hub, &m);
    assert_eq!(st, "archived");
    assert!(hub.message(ADMIN, &m)["hold_until"].is_null());
    // Past the hold's end (with margin), it is still archived and nothing else happened.
    let n = activities(&hub, &conv).len();
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(status(&hub, &m).0, "archived");
    assert_eq!(activities(&hub, &conv).len(), n);
}

#[test]
fn closing_a_closed_conversation_is_a_conflict() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let conv = conv_of(&hub.say(&k, "hi"));
    conv_ok(&hub, &a.1, &conv, "close", json!({}));
    let n = activities(&hub, &conv).len();
    assert_error(
        post_conv(&hub, &a.1, &conv, "close", json!({"notes": "again"})),
        409,
        "conflict",
        "second close",
    );
    assert_eq!(
        activities(&hub, &conv).len(),
        n,
        "a refused close adds no event"
    );
}

#[test]
fn a_customer_message_reopens_the_same_closed_conversation() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let m1 = hub.say(&k, "hi");
    let conv = conv_of(&m1);
    reply(&hub, &a.1, &conv, json!({"text": "hello"}));
    conv_ok(&hub, &a.1, &conv, "close", json!({}));

    let (mut console, _) = hub.console(&a.1, None);
    let m2 = hub.say(&k, "one more thing");
    assert_eq!(conv_of(&m2), conv, "same conversation");
    let ev = console.recv_event("conversation.reopened", |e| {
        e["conversation_id"] == conv.as_str()
    });
    assert_eq!(ev["data"]["conversation"]["id"], conv.as_str());
    assert_eq!(ev["data"]["conversation"]["state"], "open");
    // No agent did it (`by`, an extension, names one when one did).
    assert!(ev["data"].get("by").is_none(), "{ev}");
    // The reopen comes before the message it is caused by.
    let created = console.recv_event("message.created", |e| e["conversation_id"] == conv.as_str());
    assert_eq!(created["data"]["message"]["id"], id(&m2));
    assert!(created["seq"].as_u64() > ev["seq"].as_u64());

    let c = conversation(&hub, &conv);
    assert_eq!(c["state"], "open");
    assert_eq!(c["session"], "active");
    assert_eq!(
        c["owner"],
        a.0.as_str(),
        "owner kept across close and reopen"
    );
    assert_eq!(status(&hub, &id(&m2)).0, "pending");
    assert!(listed(&hub, "open").contains(&conv));
    assert!(!listed(&hub, "closed").contains(&conv));
    assert_eq!(
        listed(&hub, "all").iter().filter(|c| **c == conv).count(),
        1,
        "no second conversation"
    );
    // The reopened conversation can be closed again.
    conv_ok(&hub, &a.1, &conv, "close", json!({}));
}

#[test]
fn reopening_a_message_of_a_closed_conversation_reopens_the_conversation() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let b = hub.agent("Bob", "agent");
    let (_, k) = hub.contact();
    let m1 = hub.say(&k, "my parcel never came");
    let m2 = hub.say(&k, "order 42");
    let conv = conv_of(&m1);
    act_ok(&hub, &a.1, &id(&m1), "assign", json!({}));
    conv_ok(
        &hub,
        &a.1,
        &conv,
        "close",
        json!({"notes": "sent a refund"}),
    );
    assert_eq!(status(&hub, &id(&m1)).0, "archived");
    assert!(listed(&hub, "closed").contains(&conv));

    let (mut console, _) = hub.console(&b.1, None);
    let m = act_ok(&hub, &b.1, &id(&m1), "reopen", json!({}));
    assert_eq!(m["status"], "pending");
    // The status change first (the answer's subject), then the conversation.
    let changed = console.recv_event("message.status_changed", |e| {
        e["data"]["message_id"] == id(&m1).as_str()
    });
    assert_eq!(changed["data"]["from"], "archived");
    assert_eq!(changed["data"]["to"], "pending");
    let ev = console.recv_event("conversation.reopened", |e| {
        e["conversation_id"] == conv.as_str()
    });
    assert_eq!(ev["data"]["conversation"]["state"], "open");
    assert_eq!(
        ev["data"]["by"],
        b.0.as_str(),
        "the agent who reopened: {ev}"
    );
    assert!(ev["seq"].as_u64() > changed["seq"].as_u64());

    let c = conversation(&hub, &conv);
    assert_eq!(c["state"], "open");
    assert_eq!(c["owner"], a.0.as_str(), "owner kept");
    assert!(listed(&hub, "open").contains(&conv));
    assert!(!listed(&hub, "closed").contains(&conv));
    assert!(kinds(&activities(&hub, &conv)).contains(&"conversation.reopened".to_string()));
    // Only the reopened message is pending again; the other stays archived.
    assert!(folder(&hub, &b.1, "pending").contains(&id(&m1)));
    assert_eq!(status(&hub, &id(&m2)).0, "archived");

    // Reopening another message of the now open conversation emits no second reopen.
    act_ok(&hub, &b.1, &id(&m2), "reopen", json!({}));
    let reopens = kinds(&activities(&hub, &conv))
        .iter()
        .filter(|k| *k == "conversation.reopened")
        .count();
    assert_eq!(reopens, 1);
    // And it can be closed again.
    conv_ok(&hub, &a.1, &conv, "close", json!({}));
}

#[test]
fn reopening_a_message_whose_session_ended_reopens_the_conversation_but_not_the_session() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let m = hub.say(&k, "hi");
    let conv = conv_of(&m);
    conv_ok(&hub, &a.1, &conv, "end-session", json!({}));
    conv_ok(&hub, &a.1, &conv, "close", json!({}));
    act_ok(&hub, &a.1, &id(&m), "reopen", json!({}));
    let c = conversation(&hub, &conv);
    assert_eq!(c["state"], "open");
    assert_eq!(c["session"], "ended");
    // The contact still starts a new conversation.
    assert_ne!(conv_of(&hub.say(&k, "hello again")), conv);
}

#[test]
fn close_bad_input() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let conv = conv_of(&hub.say(&k, "hi"));
    let path = format!("/api/conversations/{conv}/close");
    assert_error(
        hub.call("POST", &path, None, Some(json!({}))),
        401,
        "unauthorized",
        "no token",
    );
    assert_error(
        hub.post(&path, &k, json!({})),
        403,
        "forbidden",
        "contact token",
    );
    assert_error(
        hub.post(&path, &a.1, json!({"notes": 5})),
        400,
        "invalid",
        "notes not a string",
    );
    assert_error(
        hub.post(&path, &a.1, json!({"notes": "n".repeat(4097)})),
        413,
        "too_large",
        "notes over 4096 characters",
    );
    assert_error(
        hub.call_raw("POST", &path, Some(&a.1), Some("{notes".into())),
        400,
        "invalid",
        "bad JSON",
    );
    assert_error(
        post_conv(&hub, &a.1, "no-such-conversation", "close", json!({})),
        404,
        "not_found",
        "unknown conversation",
    );
    assert_error(
        post_conv(
            &hub,
            &a.1,
            "no-such-conversation",
            "close",
            json!({"notes": 1}),
        ),
        400,
        "invalid",
        "400 before 404",
    );
    assert_eq!(
        conversation(&hub, &conv)["state"],
        "open",
        "nothing closed it"
    );
}

// ---------------------------------------------------------------- end session

#[test]
fn end_session_reaches_the_contacts_widget_and_agents() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let m = hub.say(&k, "hi");
    let conv = conv_of(&m);
    let mut w = widget(&hub, &k);
    let (mut console, _) = hub.console(&a.1, None);

    let c = conv_ok(
        &hub,
        &a.1,
        &conv,
        "end-session",
        json!({"reason": "inactive"}),
    );
    assert_eq!(c["session"], "ended", "{c}");
    assert_eq!(c["state"], "open", "the state is not touched: {c}");

    let ev = w.recv_event("session.ended", |_| true);
    assert_eq!(ev["conversation_id"], conv.as_str(), "{ev}");
    assert_eq!(ev["data"]["reason"], "inactive", "{ev}");
    assert!(ev["seq"].is_u64());
    let ev = console.recv_event("session.ended", |e| e["conversation_id"] == conv.as_str());
    assert_eq!(ev["data"]["by"], a.0.as_str(), "{ev}");
    assert_eq!(ev["data"]["reason"], "inactive", "{ev}");

    assert_eq!(status(&hub, &id(&m)).0, "pending", "statuses unchanged");
    assert_eq!(widget_items(&hub, &k)["conversation"]["session"], "ended");
}

#[test]
fn after_the_session_ended_replies_are_refused_and_comments_allowed() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let m = hub.say(&k, "hi");
    let conv = conv_of(&m);
    conv_ok(&hub, &a.1, &conv, "end-session", json!({}));
    let n = activities(&hub, &conv).len();

    assert_error(
        reply(&hub, &a.1, &conv, json!({"text": "too late"})),
        409,
        "session_ended",
        "reply after end",
    );
    assert_error(
        reply(
            &hub,
            &a.1,
            &conv,
            json!({"text": "too late", "client_id": "fresh"}),
        ),
        409,
        "session_ended",
        "reply with a new client_id after end",
    );
    assert_eq!(
        activities(&hub, &conv).len(),
        n,
        "a refused reply adds nothing"
    );
    assert_eq!(
        status(&hub, &id(&m)).0,
        "pending",
        "not answered by a refused reply"
    );

    let c = comment(&hub, &a.1, &conv, "note after the end");
    assert_eq!(c["conversation_id"], conv.as_str());
}

#[test]
fn after_the_session_ended_the_next_customer_message_opens_a_new_conversation() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (kid, k) = hub.contact();
    let m1 = hub.say(&k, "hi");
    let old = conv_of(&m1);
    reply(&hub, &a.1, &old, json!({"text": "hello"}));
    assert_eq!(conversation(&hub, &old)["owner"], a.0.as_str());
    conv_ok(&hub, &a.1, &old, "end-session", json!({"reason": "done"}));

    let (mut console, _) = hub.console(&a.1, None);
    let m2 = hub.say(&k, "new question");
    let new = conv_of(&m2);
    assert_ne!(new, old, "a new conversation");
    let ev = console.recv_event("conversation.opened", |e| {
        e["conversation_id"] == new.as_str()
    });
    assert_eq!(ev["data"]["conversation"]["id"], new.as_str());

    let c = conversation(&hub, &new);
    assert_eq!(c["state"], "open");
    assert_eq!(c["session"], "active");
    assert!(c["owner"].is_null(), "no owner: {c}");
    assert_eq!(c["contact_id"], kid.as_str());
    assert_eq!(c["channel"], "web");
    let (st, assignee) = status(&hub, &id(&m2));
    assert_eq!(st, "pending");
    assert!(assignee.is_null(), "unassigned");

    // The old one is untouched.
    let o = conversation(&hub, &old);
    assert_eq!(o["session"], "ended");
    assert_eq!(o["state"], "open");
    assert_eq!(o["owner"], a.0.as_str());

    // The widget shows the new conversation only.
    let w = widget_items(&hub, &k);
    assert_eq!(w["conversation"]["id"], new.as_str(), "{w}");
    assert_eq!(w["conversation"]["session"], "active", "{w}");
    let items = w["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{w}");
    assert_eq!(items[0]["id"], id(&m2));
    assert_eq!(items[0]["type"], "message");

    // Both are listed as open conversations, newest first.
    let open = listed(&hub, "open");
    let (pn, po) = (
        open.iter().position(|c| *c == new).expect("new listed"),
        open.iter().position(|c| *c == old).expect("old listed"),
    );
    assert!(pn < po, "newest first: {open:?}");

    // Further messages keep going to the new conversation.
    assert_eq!(conv_of(&hub.say(&k, "and another")), new);
}

#[test]
fn the_widget_socket_follows_the_contact_into_its_new_conversation() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let (_, other) = hub.contact();
    let old = conv_of(&hub.say(&k, "hi"));
    hub.say(&other, "someone else");
    let mut w = widget(&hub, &k);
    let mut w_other = widget(&hub, &other);
    conv_ok(&hub, &a.1, &old, "end-session", json!({"reason": "bye"}));
    let ended = w.recv_event("session.ended", |_| true);
    assert_eq!(ended["conversation_id"], old.as_str());

    // Over the socket: the next send opens a new conversation, and its events follow.
    w.send(json!({"type": "send", "text": "new topic", "client_id": "s-1"}));
    let ack = w.recv_type("ack");
    let new = conv_of(&ack["message"]);
    assert_ne!(new, old);
    let (s, b) = reply(&hub, &a.1, &new, json!({"text": "welcome back"}));
    assert_eq!(s, 201, "{b}");
    let ev = w.recv_event("reply.created", |_| true);
    assert_eq!(ev["conversation_id"], new.as_str());
    assert_eq!(ev["data"]["reply"]["text"], "welcome back");

    // The other contact saw none of it.
    for f in drain(&mut w_other, Duration::from_millis(300)) {
        assert!(
            f["conversation_id"] != old.as_str() && f["conversation_id"] != new.as_str(),
            "another contact's event leaked: {f}"
        );
    }
}

#[test]
fn a_customer_client_id_repeated_after_the_session_ended_returns_the_first_message() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let (s, first) = hub.post(
        "/api/widget/messages",
        &k,
        json!({"text": "hi", "client_id": "k-1"}),
    );
    assert_eq!(s, 201, "{first}");
    let old = conv_of(&first["message"]);
    conv_ok(&hub, &a.1, &old, "end-session", json!({}));
    let (s, again) = hub.post(
        "/api/widget/messages",
        &k,
        json!({"text": "hi", "client_id": "k-1"}),
    );
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["message"], first["message"]);
    assert_eq!(
        listed(&hub, "all"),
        vec![old.clone()],
        "no new conversation"
    );
    assert_eq!(widget_items(&hub, &k)["conversation"]["id"], old.as_str());
}

#[test]
fn an_ended_sessions_conversation_can_still_be_closed_and_is_not_reopened() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let m = hub.say(&k, "hi");
    let conv = conv_of(&m);
    conv_ok(&hub, &a.1, &conv, "end-session", json!({}));
    let c = conv_ok(&hub, &a.1, &conv, "close", json!({"notes": "wrap up"}));
    assert_eq!(c["state"], "closed");
    assert_eq!(c["session"], "ended");
    assert_eq!(status(&hub, &id(&m)).0, "archived");

    // The contact writes again: a new conversation; the closed one stays closed.
    let m2 = hub.say(&k, "hello again");
    assert_ne!(conv_of(&m2), conv);
    assert_eq!(conversation(&hub, &conv)["state"], "closed");
    assert!(!kinds(&activities(&hub, &conv)).contains(&"conversation.reopened".to_string()));
}

#[test]
fn ending_the_session_of_a_closed_conversation_keeps_it_closed_and_the_contact_starts_anew() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let conv = conv_of(&hub.say(&k, "hi"));
    conv_ok(&hub, &a.1, &conv, "close", json!({}));
    let c = conv_ok(&hub, &a.1, &conv, "end-session", json!({}));
    assert_eq!(c["state"], "closed");
    assert_eq!(c["session"], "ended");
    let new = conv_of(&hub.say(&k, "hello?"));
    assert_ne!(new, conv, "an ended session is never reopened");
    assert_eq!(conversation(&hub, &conv)["state"], "closed");
}

#[test]
fn ending_an_ended_session_is_a_conflict() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let conv = conv_of(&hub.say(&k, "hi"));
    conv_ok(&hub, &a.1, &conv, "end-session", json!({}));
    let n = activities(&hub, &conv).len();
    assert_error(
        post_conv(&hub, &a.1, &conv, "end-session", json!({"reason": "again"})),
        409,
        "conflict",
        "second end-session",
    );
    assert_eq!(activities(&hub, &conv).len(), n);
}

#[test]
fn a_reply_client_id_repeated_after_the_session_ended_returns_the_first_reply() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let m = hub.say(&k, "hi");
    let conv = conv_of(&m);
    let (s, first) = reply(
        &hub,
        &a.1,
        &conv,
        json!({"text": "hello", "client_id": "r-1"}),
    );
    assert_eq!(s, 201, "{first}");
    conv_ok(&hub, &a.1, &conv, "end-session", json!({}));
    let (s, again) = reply(
        &hub,
        &a.1,
        &conv,
        json!({"text": "hello", "client_id": "r-1"}),
    );
    assert_eq!(s, 200, "repeat after the end: {again}");
    assert_eq!(again["reply"], first["reply"]);
    assert_eq!(again["answered"], json!([id(&m)]));
    let replies = show(&hub, &conv)
        .1
        .iter()
        .filter(|i| i["type"] == "reply")
        .count();
    assert_eq!(replies, 1, "nothing new created");
}

#[test]
fn end_session_bad_input() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let conv = conv_of(&hub.say(&k, "hi"));
    let path = format!("/api/conversations/{conv}/end-session");
    assert_error(
        hub.call("POST", &path, None, Some(json!({}))),
        401,
        "unauthorized",
        "no token",
    );
    assert_error(
        hub.post(&path, &k, json!({})),
        403,
        "forbidden",
        "contact token",
    );
    assert_error(
        hub.post(&path, &a.1, json!({"reason": ["x"]})),
        400,
        "invalid",
        "reason not a string",
    );
    assert_error(
        hub.post(&path, &a.1, json!({"reason": "r".repeat(4097)})),
        413,
        "too_large",
        "reason over 4096 characters",
    );
    assert_error(
        post_conv(&hub, &a.1, "nope", "end-session", json!({})),
        404,
        "not_found",
        "unknown conversation",
    );
    assert_eq!(conversation(&hub, &conv)["session"], "active");
}

// ---------------------------------------------------------------- spam

#[test]
fn spam_moves_the_conversation_and_its_pending_messages_to_the_spam_folders() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let m1 = id(&hub.say(&k, "buy cheap watches"));
    let m2 = id(&hub.say(&k, "really cheap"));
    let conv = hub.message(ADMIN, &m1)["conversation_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, other_k) = hub.contact();
    let other = id(&hub.say(&other_k, "a real question"));

    let (mut console, _) = hub.console(&a.1, None);
    let c = conv_ok(&hub, &a.1, &conv, "spam", json!({"spam": true}));
    assert_eq!(c["spam"], true, "{c}");
    let ev = console.recv_event("conversation.spam", |e| {
        e["conversation_id"] == conv.as_str()
    });
    assert_eq!(ev["data"]["spam"], true);
    assert_eq!(ev["data"]["by"], a.0.as_str());

    assert!(listed(&hub, "spam").contains(&conv));
    assert!(!listed(&hub, "open").contains(&conv));
    assert!(!listed(&hub, "closed").contains(&conv));
    assert!(listed(&hub, "all").contains(&conv));

    let pending = folder(&hub, &a.1, "pending");
    let spam = folder(&hub, &a.1, "spam");
    assert_eq!(
        pending,
        vec![other.clone()],
        "only the real question is pending"
    );
    assert_eq!(
        spam.iter().cloned().collect::<BTreeSet<_>>(),
        [m1.clone(), m2.clone()].into_iter().collect(),
    );
    let (_, b) = hub.get("/api/inbox?folder=spam", &a.1);
    assert_eq!(b["counts"]["spam"], 2, "{b}");
    assert_eq!(b["counts"]["pending"], 1, "{b}");
    // The messages keep their status.
    assert_eq!(status(&hub, &m1).0, "pending");
    // A new message in a spam conversation goes to the spam folder too.
    let m3 = id(&hub.say(&k, "last chance"));
    assert!(folder(&hub, &a.1, "spam").contains(&m3));
    assert!(!folder(&hub, &a.1, "pending").contains(&m3));
}

#[test]
fn unspam_returns_the_pending_messages_to_pending() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let m1 = hub.say(&k, "looks like spam");
    let conv = conv_of(&m1);
    conv_ok(&hub, &a.1, &conv, "spam", json!({"spam": true}));
    let (mut console, _) = hub.console(&a.1, None);
    let c = conv_ok(&hub, &a.1, &conv, "spam", json!({"spam": false}));
    assert_eq!(c["spam"], false);
    let ev = console.recv_event("conversation.spam", |e| {
        e["conversation_id"] == conv.as_str() && e["data"]["spam"] == false
    });
    assert_eq!(ev["data"]["by"], a.0.as_str());
    assert_eq!(folder(&hub, &a.1, "pending"), vec![id(&m1)]);
    assert!(folder(&hub, &a.1, "spam").is_empty());
    assert!(listed(&hub, "open").contains(&conv));
    assert!(!listed(&hub, "spam").contains(&conv));
}

#[test]
fn setting_spam_to_the_value_it_has_changes_nothing() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let conv = conv_of(&hub.say(&k, "hi"));
    let before = activities(&hub, &conv);
    let c = conv_ok(&hub, &a.1, &conv, "spam", json!({"spam": false}));
    assert_eq!(c["spam"], false);
    assert_eq!(activities(&hub, &conv), before, "no event for a no-op");

    conv_ok(&hub, &a.1, &conv, "spam", json!({"spam": true}));
    let before = activities(&hub, &conv);
    let c = conv_ok(&hub, &a.1, &conv, "spam", json!({"spam": true}));
    assert_eq!(c["spam"], true);
    assert_eq!(activities(&hub, &conv), before, "no event for a no-op");
    assert_eq!(
        c["seq"], before[0]["seq"],
        "the conversation's seq did not move"
    );
}

#[test]
fn a_closed_spam_conversation_is_listed_as_spam_not_closed() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let conv = conv_of(&hub.say(&k, "hi"));
    conv_ok(&hub, &a.1, &conv, "spam", json!({"spam": true}));
    conv_ok(&hub, &a.1, &conv, "close", json!({}));
    assert!(listed(&hub, "spam").contains(&conv));
    assert!(!listed(&hub, "closed").contains(&conv));
    assert!(!listed(&hub, "open").contains(&conv));
    conv_ok(&hub, &a.1, &conv, "spam", json!({"spam": false}));
    assert!(listed(&hub, "closed").contains(&conv));
}

#[test]
fn spam_bad_input() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let conv = conv_of(&hub.say(&k, "hi"));
    let path = format!("/api/conversations/{conv}/spam");
    assert_error(
        hub.call("POST", &path, None, Some(json!({"spam": true}))),
        401,
        "unauthorized",
        "no token",
    );
    assert_error(
        hub.post(&path, &k, json!({"spam": true})),
        403,
        "forbidden",
        "contact token",
    );
    assert_error(
        hub.post(&path, &a.1, json!({})),
        400,
        "invalid",
        "spam missing",
    );
    assert_error(
        hub.post(&path, &a.1, json!({"spam": "yes"})),
        400,
        "invalid",
        "spam not a bool",
    );
    assert_error(
        post_conv(&hub, &a.1, "nope", "spam", json!({"spam": true})),
        404,
        "not_found",
        "unknown conversation",
    );
    assert_error(
        post_conv(&hub, &a.1, "nope", "spam", json!({})),
        400,
        "invalid",
        "400 before 404",
    );
    assert_eq!(conversation(&hub, &conv)["spam"], false);
}

// ---------------------------------------------------------------- comments

#[test]
fn comment_mentions_agents_by_name_case_insensitively_and_by_id() {
    let hub = Hub::start();
    let alice = hub.agent("Alice", "agent");
    let bob = hub.agent("Bob", "agent");
    let carol = hub.agent("Carol", "supervisor");
    let ann = hub.agent("Ann", "agent");
    let (_, k) = hub.contact();
    let conv = conv_of(&hub.say(&k, "hi"));

    let c = comment(
        &hub,
        &carol.1,
        &conv,
        &format!("@aLiCe please check, cc @{} — and @nobody, @Anna", bob.0),
    );
    let mentions: BTreeSet<String> = c["mentions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        mentions,
        [alice.0.clone(), bob.0.clone()].into_iter().collect(),
        "Alice by name, Bob by id; unknown names (and @Anna ≠ Ann) ignored: {c}"
    );
    assert!(!mentions.contains(&ann.0));
    assert_eq!(c["author"], json!({"kind": "agent", "id": carol.0}));
    assert_eq!(c["conversation_id"], conv.as_str());
    assert!(c["id"].is_string() && c["seq"].is_u64() && c["at"].is_string());

    let c = comment(
        &hub,
        &bob.1,
        &conv,
        &format!("@Alice, @ALICE and @{} again.", alice.0),
    );
    assert_eq!(c["mentions"], json!([alice.0]), "each agent once: {c}");

    let c = comment(&hub, &alice.1, &conv, "nobody here @ghost");
    assert_eq!(c["mentions"], json!([]), "{c}");

    // The `@` of an e-mail address mentions nobody, even where its domain is a name.
    let c = comment(
        &hub,
        &alice.1,
        &conv,
        &format!("mail bob@Bob.com, x.y+z@alice or ann_@{}", bob.0),
    );
    assert_eq!(c["mentions"], json!([]), "{c}");
    let c = comment(&hub, &alice.1, &conv, "(@Bob) and\n@ann:");
    let mut got: Vec<&str> = c["mentions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    got.sort_unstable();
    let mut want = vec![bob.0.as_str(), ann.0.as_str()];
    want.sort_unstable();
    assert_eq!(got, want, "after a bracket or a line break: {c}");

    // A name may be an e-mail address (PROTOCOL §6: names are only unique).
    let dana = hub.agent("dana@example.com", "agent");
    let c = comment(&hub, &alice.1, &conv, "over to @dana@example.com, thanks");
    assert_eq!(c["mentions"], json!([dana.0]), "{c}");

    // Names that share a beginning: a mention is the longest name it spells.
    let mary = hub.agent("Mary", "agent");
    let mary_jane = hub.agent("Mary Jane", "agent");
    let c = comment(&hub, &alice.1, &conv, "@Mary Jane please");
    assert_eq!(c["mentions"], json!([mary_jane.0]), "not Mary as well: {c}");
    let c = comment(&hub, &alice.1, &conv, "@mary, then @MARY JANE.");
    let got = mentioned(&c);
    assert_eq!(got, [mary.0.as_str(), mary_jane.0.as_str()].into(), "{c}");
    let c = comment(&hub, &alice.1, &conv, "@Mary Janet?");
    assert_eq!(c["mentions"], json!([mary.0]), "Mary, then a word: {c}");
}

#[test]
fn a_comment_is_never_shown_to_the_contact() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let conv = conv_of(&hub.say(&k, "hi"));
    let mut w = hub.socket("/ws/widget", json!({"type": "hello", "token": k}));
    let welcome_seq = w.recv_type("welcome")["seq"].as_u64().unwrap();

    comment(&hub, &a.1, &conv, "SECRET internal note");
    let (s, b) = reply(&hub, &a.1, &conv, json!({"text": "public answer"}));
    assert_eq!(s, 201, "{b}");

    // Up to the reply, the widget gets only message/reply events (the message may still
    // arrive live if it was published after the welcome's head), never the comment.
    let head = welcome_seq;
    let deadline = Instant::now() + common::WAIT;
    loop {
        assert!(Instant::now() < deadline, "no reply.created on the widget");
        let Frame::Json(f) = w.next(Duration::from_millis(200)) else {
            continue;
        };
        assert!(!f.to_string().contains("SECRET"), "comment leaked: {f}");
        if f["type"] != "event" {
            continue;
        }
        assert!(
            f["seq"].as_u64().unwrap() > head,
            "only events after the welcome: {f}"
        );
        let kind = f["kind"].as_str().unwrap();
        assert!(
            kind == "message.created" || kind == "reply.created",
            "unexpected widget event: {f}"
        );
        if kind == "reply.created" {
            assert_eq!(f["data"]["reply"]["text"], "public answer");
            break;
        }
    }
    for f in drain(&mut w, Duration::from_millis(300)) {
        assert!(!f.to_string().contains("SECRET"), "comment leaked: {f}");
    }

    let items = widget_items(&hub, &k);
    assert!(!items.to_string().contains("SECRET"), "{items}");
    let types: Vec<&str> = items["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["message", "reply"]);
}

#[test]
fn agents_see_comment_created_on_their_consoles() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let b = hub.agent("Bob", "agent");
    let (_, k) = hub.contact();
    let conv = conv_of(&hub.say(&k, "hi"));
    let (mut ca, _) = hub.console(&a.1, None);
    let (mut cb, _) = hub.console(&b.1, None);
    let c = comment(&hub, &a.1, &conv, "@Bob have a look");
    for console in [&mut ca, &mut cb] {
        let ev = console.recv_event("comment.created", |e| e["conversation_id"] == conv.as_str());
        assert_eq!(ev["data"]["comment"], c, "{ev}");
        assert_eq!(ev["seq"], c["seq"]);
        assert_eq!(ev["data"]["comment"]["mentions"], json!([b.0]));
    }
}

#[test]
fn comment_bad_input() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let conv = conv_of(&hub.say(&k, "hi"));
    let path = format!("/api/conversations/{conv}/comments");
    assert_error(
        post_conv(&hub, &a.1, "no-such", "comments", json!({"text": "x"})),
        404,
        "not_found",
        "unknown conversation",
    );
    assert_error(
        hub.post(&path, &a.1, json!({"text": ""})),
        400,
        "invalid",
        "empty",
    );
    assert_error(
        hub.post(&path, &a.1, json!({"text": "  \n "})),
        400,
        "invalid",
        "blank",
    );
    assert_error(
        hub.post(&path, &a.1, json!({})),
        400,
        "invalid",
        "missing text",
    );
    assert_error(
        hub.post(&path, &a.1, json!({"text": 3})),
        400,
        "invalid",
        "text not a string",
    );
    assert_error(
        hub.post(&path, &a.1, json!({"text": "x".repeat(4097)})),
        413,
        "too_large",
        "text over 4096",
    );
    assert_error(
        hub.call("POST", &path, None, Some(json!({"text": "x"}))),
        401,
        "unauthorized",
        "no token",
    );
    assert_error(
        hub.post(&path, &k, json!({"text": "x"})),
        403,
        "forbidden",
        "contact token",
    );
    // 400 comes before 404 (§3).
    assert_error(
        post_conv(&hub, &a.1, "no-such", "comments", json!({"text": ""})),
        400,
        "invalid",
        "empty on unknown conversation",
    );
    let n = show(&hub, &conv)
        .1
        .iter()
        .filter(|i| i["type"] == "comment")
        .count();
    assert_eq!(n, 0, "no comment created");
}

// ---------------------------------------------------------------- timeline & activities

/// A conversation with every kind of timeline entry.
fn storied() -> (Hub, (String, String), String, String) {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let m1 = hub.say(&k, "hello");
    let conv = conv_of(&m1);
    act_ok(&hub, &a.1, &id(&m1), "assign", json!({}));
    comment(&hub, &a.1, &conv, "@Alice mine");
    reply(&hub, &a.1, &conv, json!({"text": "hi there"}));
    hub.say(&k, "thanks");
    conv_ok(&hub, &a.1, &conv, "spam", json!({"spam": true}));
    conv_ok(&hub, &a.1, &conv, "spam", json!({"spam": false}));
    conv_ok(&hub, &a.1, &conv, "close", json!({"notes": "n"}));
    hub.say(&k, "back again");
    conv_ok(&hub, &a.1, &conv, "end-session", json!({"reason": "r"}));
    (hub, a, k, conv)
}

#[test]
fn the_timeline_is_oldest_first_and_does_not_repeat_created_events() {
    let (hub, _a, _k, conv) = storied();
    let (c, timeline) = show(&hub, &conv);
    assert_eq!(c["id"], conv.as_str());
    assert_eq!(c["session"], "ended");

    for item in &timeline {
        let t = item["type"].as_str().unwrap_or("");
        assert!(
            ["message", "reply", "comment", "event"].contains(&t),
            "typed item: {item}"
        );
        if t == "event" {
            let k = item["kind"].as_str().unwrap();
            assert!(
                !["message.created", "reply.created", "comment.created"].contains(&k),
                "a *.created event repeats an item: {item}"
            );
            assert!(item["data"].is_object() && item["seq"].is_u64(), "{item}");
        }
    }
    let texts: Vec<String> = timeline
        .iter()
        .filter(|i| i["type"] != "event")
        .map(|i| {
            format!(
                "{}:{}",
                i["type"].as_str().unwrap(),
                i["text"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        texts,
        vec![
            "message:hello",
            "comment:@Alice mine",
            "reply:hi there",
            "message:thanks",
            "message:back again"
        ]
    );
    // Messages show as they stand now (agent view, with status).
    let first = &timeline.iter().find(|i| i["type"] == "message").unwrap();
    assert_eq!(first["status"], "answered", "{first}");

    // Exactly the activities, reversed, with *.created events turned into their items.
    let mut acts = activities(&hub, &conv);
    acts.reverse();
    let expect: Vec<String> = acts
        .iter()
        .map(|e| match e["kind"].as_str().unwrap() {
            "message.created" => format!("message {}", e["data"]["message"]["id"]),
            "reply.created" => format!("reply {}", e["data"]["reply"]["id"]),
            "comment.created" => format!("comment {}", e["data"]["comment"]["id"]),
            k => format!("event {k} {}", e["seq"]),
        })
        .collect();
    let got: Vec<String> = timeline
        .iter()
        .map(|i| match i["type"].as_str().unwrap() {
            "event" => format!("event {} {}", i["kind"].as_str().unwrap(), i["seq"]),
            t => format!("{t} {}", i["id"]),
        })
        .collect();
    assert_eq!(got, expect);
    // Event items are the events themselves.
    for i in timeline.iter().filter(|i| i["type"] == "event") {
        let e = acts.iter().find(|e| e["seq"] == i["seq"]).unwrap();
        for f in ["kind", "conversation_id", "at", "data"] {
            assert_eq!(i[f], e[f], "field {f} of {i}");
        }
    }
}

#[test]
fn activities_are_newest_first_and_include_everything() {
    let (hub, a, _k, conv) = storied();
    let acts = activities(&hub, &conv);
    let seqs: Vec<u64> = acts.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );
    for e in &acts {
        assert_eq!(e["conversation_id"], conv.as_str(), "{e}");
        assert!(e["at"].is_string() && e["data"].is_object(), "{e}");
    }
    let ks: BTreeSet<String> = kinds(&acts).into_iter().collect();
    for k in [
        "conversation.opened",
        "message.created",
        "message.status_changed",
        "conversation.owner",
        "conversation.bot",
        "comment.created",
        "reply.created",
        "conversation.spam",
        "conversation.closed",
        "conversation.reopened",
        "session.ended",
    ] {
        assert!(ks.contains(k), "{k} in activities: {ks:?}");
    }
    assert_eq!(acts.last().unwrap()["kind"], "conversation.opened");
    assert_eq!(acts[0]["kind"], "session.ended");
    assert_eq!(acts[0]["data"], json!({"by": a.0, "reason": "r"}));
    let closed = acts
        .iter()
        .find(|e| e["kind"] == "conversation.closed")
        .unwrap();
    assert_eq!(closed["data"], json!({"by": a.0, "notes": "n"}));
    // Three customer messages, one reply, one comment.
    let count = |k: &str| acts.iter().filter(|e| e["kind"] == k).count();
    assert_eq!(count("message.created"), 3);
    assert_eq!(count("reply.created"), 1);
    assert_eq!(count("comment.created"), 1);
    assert_eq!(count("conversation.spam"), 2);
}

#[test]
fn activities_match_what_consoles_saw_live() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (mut console, w) = hub.console(&a.1, None);
    let head = w["seq"].as_u64().unwrap();
    let (_, k) = hub.contact();
    let m = hub.say(&k, "hello");
    let conv = conv_of(&m);
    reply(&hub, &a.1, &conv, json!({"text": "hi"}));
    comment(&hub, &a.1, &conv, "note");
    conv_ok(&hub, &a.1, &conv, "close", json!({}));
    let acts = activities(&hub, &conv);
    let mut live = Vec::new();
    while live.len() < acts.len() {
        let ev = console.recv_type("event");
        if ev["conversation_id"] == conv.as_str() {
            assert!(ev["seq"].as_u64().unwrap() > head);
            live.push(ev);
        }
    }
    live.reverse();
    let strip = |e: &Value| json!([e["seq"], e["kind"], e["data"], e["at"]]);
    assert_eq!(
        live.iter().map(strip).collect::<Vec<_>>(),
        acts.iter().map(strip).collect::<Vec<_>>()
    );
}

#[test]
fn timeline_and_activities_of_an_unknown_conversation_are_not_found() {
    let hub = Hub::start();
    let (_, k) = hub.contact();
    assert_error(
        hub.get("/api/conversations/nope", ADMIN),
        404,
        "not_found",
        "show",
    );
    assert_error(
        hub.get("/api/conversations/nope/activities", ADMIN),
        404,
        "not_found",
        "activities",
    );
    assert_error(
        hub.call("GET", "/api/conversations/nope", None, None),
        401,
        "unauthorized",
        "no token",
    );
    assert_error(
        hub.get("/api/conversations", &k),
        403,
        "forbidden",
        "contact token",
    );
}

#[test]
fn conversation_lists_filter_by_state_newest_first() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let mut convs = Vec::new();
    let mut contacts = Vec::new();
    for i in 0..4 {
        let (_, k) = hub.contact();
        convs.push(conv_of(&hub.say(&k, &format!("hi {i}"))));
        contacts.push(k);
    }
    let closed_contact = contacts[1].clone();
    conv_ok(&hub, &a.1, &convs[1], "close", json!({}));
    conv_ok(&hub, &a.1, &convs[2], "spam", json!({"spam": true}));
    let rev = |v: &[&String]| v.iter().rev().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(listed(&hub, "open"), rev(&[&convs[0], &convs[3]]));
    assert_eq!(listed(&hub, "closed"), rev(&[&convs[1]]));
    assert_eq!(listed(&hub, "spam"), rev(&[&convs[2]]));
    assert_eq!(listed(&hub, "all"), rev(&convs.iter().collect::<Vec<_>>()));
    let (s, b) = hub.get("/api/conversations", ADMIN);
    assert_eq!(s, 200);
    let default: Vec<String> = b["items"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(default, listed(&hub, "open"), "default is open");
    // An extension: asked to, every list's size, whichever list was asked for (and
    // whatever its limit), as the inbox answers its folders' counts; §6.2's answer
    // stays as it is otherwise.
    assert!(b.get("counts").is_none(), "{b}");
    let counts = json!({"open": 2, "closed": 1, "spam": 1, "all": 4});
    for q in [
        "counts=true",
        "state=closed&counts=1",
        "state=spam&limit=1&counts=true",
        "state=all&preview=true&counts=true",
    ] {
        let (s, b) = hub.get(&format!("/api/conversations?{q}"), ADMIN);
        assert_eq!((s, &b["counts"]), (200, &counts), "{q}: {b}");
    }
    // A customer message reopens the closed one; un-spammed, the other is open again.
    let m = hub.say(&closed_contact, "still there?");
    assert_eq!(conv_of(&m), convs[1]);
    conv_ok(&hub, &a.1, &convs[2], "spam", json!({"spam": false}));
    let (_, after) = hub.get("/api/conversations?state=spam&counts=true", ADMIN);
    assert_eq!(
        after["counts"],
        json!({"open": 4, "closed": 0, "spam": 0, "all": 4})
    );
    assert_error(
        hub.get("/api/conversations?state=bogus", ADMIN),
        400,
        "invalid",
        "unknown state",
    );
    // Items are full Conversation objects.
    let c = &b["items"][0];
    for f in [
        "id",
        "contact_id",
        "channel",
        "state",
        "session",
        "spam",
        "bot_active",
        "owner",
        "opened_at",
        "seq",
    ] {
        assert!(c.get(f).is_some(), "field {f} in {c}");
    }
}

/// An extension: `?preview=true` adds each conversation's latest message, reply or
/// comment (its text cut to 160 characters), whatever status events came after it.
#[test]
fn conversation_lists_preview_the_latest_message_reply_or_comment() {
    let hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (k1, t1) = hub.contact();
    let first = hub.say(&t1, "hello there");
    let c1 = conv_of(&first);
    let (k2, t2) = hub.contact();
    let long: String = "é".repeat(100) + &"x".repeat(100);
    let m2 = hub.say(&t2, &long);
    let c2 = conv_of(&m2);
    let previews = |state: &str| -> BTreeMap<String, Value> {
        let (s, b) = hub.get(
            &format!("/api/conversations?state={state}&preview=true"),
            &a.1,
        );
        assert_eq!(s, 200, "{b}");
        b["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (id(c), c["preview"].clone()))
            .collect()
    };

    let p = previews("open");
    assert_eq!(
        p[&c1],
        json!({"type": "message", "id": id(&first), "author": {"kind": "contact", "id": k1},
               "text": "hello there", "truncated": false, "at": first["at"], "seq": first["seq"]})
    );
    let cut: String = long.chars().take(160).collect();
    assert_eq!(p[&c2]["text"], json!(cut), "160 characters, not bytes");
    assert_eq!(p[&c2]["truncated"], json!(true));
    assert_eq!(p[&c2]["author"]["id"], json!(k2));

    // A reply, then its status events: the reply is the latest item.
    let (s, r) = reply(&hub, &a.1, &c1, json!({"text": "how can I help?"}));
    assert_eq!(s, 201, "{r}");
    let p = previews("open");
    assert_eq!(p[&c1]["type"], "reply");
    assert_eq!(p[&c1]["id"], r["reply"]["id"]);
    assert_eq!(p[&c1]["author"], json!({"kind": "agent", "id": a.0}));

    // A comment, then more than a log record's worth of status events after it.
    let note = comment(&hub, &a.1, &c2, "checking with billing");
    for _ in 0..6 {
        act_ok(&hub, &a.1, &id(&m2), "assign", json!({}));
        act_ok(&hub, &a.1, &id(&m2), "unassign", json!({}));
    }
    let p = previews("all");
    assert_eq!(p[&c2]["type"], "comment");
    assert_eq!(p[&c2]["id"], note["id"]);
    assert_eq!(p[&c2]["text"], "checking with billing");

    // A closed conversation keeps its preview; without the parameter there is none.
    conv_ok(&hub, &a.1, &c1, "close", json!({}));
    assert_eq!(previews("closed")[&c1]["type"], "reply");
    let (s, b) = hub.get("/api/conversations?state=all", &a.1);
    assert_eq!(s, 200);
    assert!(
        b["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c.get("preview").is_none()),
        "{b}"
    );
    assert_error(
        hub.get("/api/conversations?preview=maybe", &a.1),
        400,
        "invalid",
        "preview must be a boolean",
    );
}

// ---------------------------------------------------------------- persistence

#[test]
fn session_spam_and_state_survive_kill_9() {
    let mut hub = Hub::start();
    let a = hub.agent("Alice", "agent");
    let (_, k1) = hub.contact();
    let (_, k2) = hub.contact();
    let (_, k3) = hub.contact();
    let m1 = hub.say(&k1, "ended one");
    let ended = conv_of(&m1);
    let (s, r) = reply(
        &hub,
        &a.1,
        &ended,
        json!({"text": "bye", "client_id": "c-1"}),
    );
    assert_eq!(s, 201);
    conv_ok(&hub, &a.1, &ended, "end-session", json!({"reason": "bye"}));
    let spam = conv_of(&hub.say(&k2, "spammy"));
    conv_ok(&hub, &a.1, &spam, "spam", json!({"spam": true}));
    let m3 = hub.say(&k3, "closed one");
    let closed = conv_of(&m3);
    comment(&hub, &a.1, &closed, "@Alice note");
    conv_ok(&hub, &a.1, &closed, "close", json!({"notes": "n"}));

    let before: Vec<Value> = [&ended, &spam, &closed]
        .iter()
        .map(|c| show(&hub, c).0)
        .collect();
    let acts_before = activities(&hub, &closed);

    hub.restart();

    let after: Vec<Value> = [&ended, &spam, &closed]
        .iter()
        .map(|c| show(&hub, c).0)
        .collect();
    assert_eq!(after, before);
    assert_eq!(activities(&hub, &closed), acts_before);
    assert!(listed(&hub, "spam").contains(&spam));
    assert!(listed(&hub, "closed").contains(&closed));
    assert!(folder(&hub, &a.1, "spam").len() == 1);

    // Behaviour follows the stored state.
    assert_error(
        reply(&hub, &a.1, &ended, json!({"text": "again"})),
        409,
        "session_ended",
        "reply after restart",
    );
    let (s, again) = reply(
        &hub,
        &a.1,
        &ended,
        json!({"text": "bye", "client_id": "c-1"}),
    );
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["reply"], r["reply"]);
    assert_error(
        post_conv(&hub, &a.1, &ended, "end-session", json!({})),
        409,
        "conflict",
        "end again after restart",
    );
    assert_error(
        post_conv(&hub, &a.1, &closed, "close", json!({})),
        409,
        "conflict",
        "close again after restart",
    );
    assert_ne!(
        conv_of(&hub.say(&k1, "new")),
        ended,
        "ended session stays ended"
    );
    assert_eq!(conv_of(&hub.say(&k3, "reopen")), closed, "closed reopens");
    assert_eq!(conversation(&hub, &closed)["state"], "open");
    let m = id(&hub.say(&k2, "more spam"));
    assert!(folder(&hub, &a.1, "spam").contains(&m));
    assert!(!folder(&hub, &a.1, "pending").contains(&m));
}

/// PROTOCOL §6.2: the list holds every conversation of the state, newest first, however
/// many there are; `limit` (an extension) cuts a page.
#[test]
fn the_conversation_list_holds_every_conversation() {
    let hub = Hub::start();
    let n = 1_030;
    let mut opened = Vec::with_capacity(n);
    for i in 0..n {
        let (_, k) = hub.contact();
        opened.push(conv_of(&hub.say(&k, &format!("hello {i}"))));
    }
    let all = listed(&hub, "open");
    assert_eq!(all.len(), n, "every open conversation, not a first page");
    let newest_first: Vec<String> = opened.iter().rev().cloned().collect();
    assert_eq!(all, newest_first);
    let (s, page) = hub.get("/api/conversations?state=open&limit=2", ADMIN);
    assert_eq!(s, 200, "{page}");
    // A list the limit cut says where the next page starts (an extension).
    let next = page["next_before"].as_u64().expect("next_before");
    let page: Vec<String> = page["items"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(page, newest_first[..2]);
    // Long answers are read from the store 1,000 at a time: limits around that size,
    // and a `before` in the middle, give the same list.
    let ids = |query: &str| -> Vec<String> {
        let (s, b) = hub.get(&format!("/api/conversations?state=open{query}"), ADMIN);
        assert_eq!(s, 200, "{query}: {b}");
        b["items"].as_array().unwrap().iter().map(id).collect()
    };
    for limit in [999, 1000, 1001, 1029, 1030, 5000] {
        let got = ids(&format!("&limit={limit}"));
        assert_eq!(got, newest_first[..limit.min(n)], "limit {limit}");
    }
    assert_eq!(ids(&format!("&before={next}")), newest_first[2..]);
    let (_, b) = hub.get("/api/conversations?state=open&limit=1000", ADMIN);
    let next = b["next_before"].as_u64().expect("next_before after 1,000");
    assert_eq!(
        ids(&format!("&before={next}&limit=1000")),
        newest_first[1000..]
    );
    let (_, b) = hub.get("/api/conversations?state=open", ADMIN);
    assert!(
        b.get("next_before").is_none(),
        "the whole list has no next page"
    );
    let (_, b) = hub.get("/api/conversations?state=open&limit=5000", ADMIN);
    assert!(
        b.get("next_before").is_none(),
        "nor one shorter than its limit"
    );
    // `before`: the order key of the oldest item seen, here each conversation's seq
    // (its opening: nothing changed them since).
    for seen in [9, 999, 1000] {
        let (_, b) = hub.get(
            &format!("/api/conversations?state=open&limit={}", seen + 1),
            ADMIN,
        );
        let before = b["items"][seen]["seq"].as_u64().expect("seq");
        assert_eq!(
            ids(&format!("&before={before}")),
            newest_first[seen + 1..],
            "after {seen}"
        );
    }
    let (s, b) = hub.get("/api/conversations?state=closed", ADMIN);
    assert_eq!((s, b), (200, json!({"items": []})));
    // As in the inbox, a page holds at least one item.
    let (s, b) = hub.get("/api/conversations?limit=0", ADMIN);
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("invalid")),
        "{b}"
    );
}

/// PROTOCOL §6: agent names are unique case-insensitively, with case folded whole
/// (a capital that is two letters, "ß" → "SS", included) and the same letters spelled
/// alike (an accent typed as a combining mark, full-width letters); mentions fold the
/// same way.
#[test]
fn agent_names_are_unique_whatever_their_case_and_mentions_fold_alike() {
    let hub = Hub::start();
    let (_, k) = hub.contact();
    let conv = conv_of(&hub.say(&k, "hi"));
    let mut first = Vec::new();
    for (name, again) in [
        ("Ann", "aNN"),
        ("Élise", "éLISE"),
        ("Straße", "STRASSE"),
        ("Weiß", "WEIẞ"),
        // "Amélie" with a precomposed "é", then with "e" and a combining acute accent.
        ("Am\u{e9}lie", "Ame\u{301}lie"),
        ("Zoé", "ＺＯＥ\u{301}"),
    ] {
        first.push(hub.agent(name, "agent"));
        assert_error(
            hub.post(
                "/api/agents",
                ADMIN,
                json!({"name": again, "role": "agent"}),
            ),
            409,
            "conflict",
            &format!("{again} after {name}"),
        );
    }
    let (_, list) = hub.get("/api/agents", ADMIN);
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        1 + first.len(),
        "the admin and the first of each pair: {list}"
    );
    let c = comment(
        &hub,
        &first[0].1,
        &conv,
        "ask @strasse and @ÉLISE, and @AME\u{301}LIE",
    );
    let got = mentioned(&c);
    assert_eq!(
        got,
        [
            first[1].0.as_str(),
            first[2].0.as_str(),
            first[4].0.as_str()
        ]
        .into(),
        "{c}"
    );
    // A mark on a handle's last letter makes another word.
    let c = comment(&hub, &first[1].1, &conv, "ask @Ann\u{308} then");
    assert!(mentioned(&c).is_empty(), "{c}");
    // A name of invisible characters only would show as nothing.
    assert_error(
        hub.post(
            "/api/agents",
            ADMIN,
            json!({"name": "\u{200b}\u{2066}", "role": "agent"}),
        ),
        400,
        "invalid",
        "an invisible name",
    );
}

/// A conversation's page is one state of it: the conversation object is the one its
/// timeline's events make, even while its spam flag flips and messages arrive.
#[test]
fn a_conversation_and_its_timeline_agree_while_others_write() {
    let hub = Hub::start_with(&[("HUB_RATE_LIMIT", "off")]);
    let (_, rita) = hub.agent("Rita", "agent");
    let (_, k) = hub.contact();
    let conv = conv_of(&hub.say(&k, "first"));
    let writing = std::sync::atomic::AtomicBool::new(true);
    let (reads, torn) = std::thread::scope(|sc| {
        let (hub_, rita_, conv_) = (&hub, &rita, &conv);
        let flipper = sc.spawn(move || {
            for n in 0..300 {
                let (s, b) = post_conv(hub_, rita_, conv_, "spam", json!({"spam": n % 2 == 0}));
                assert_eq!(s, 200, "{b}");
            }
        });
        let sayer = sc.spawn(|| {
            for n in 0..150 {
                hub.say(&k, &format!("more {n}"));
            }
        });
        let readers: Vec<_> = (0..2)
            .map(|_| {
                sc.spawn(|| {
                    let (mut reads, mut torn) = (0, Vec::new());
                    while writing.load(std::sync::atomic::Ordering::Relaxed) {
                        let (s, b) = hub.get(&format!("/api/conversations/{conv}"), &rita);
                        assert_eq!(s, 200, "{b}");
                        let c = &b["conversation"];
                        let changes: Vec<&Value> = b["timeline"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .filter(|e| e["type"] == "event" && e["kind"] == "conversation.spam")
                            .collect();
                        let last = changes.last().map(|e| &e["data"]["spam"]);
                        let spam_seq = changes.last().map(|e| e["seq"].as_u64().unwrap());
                        let max_seq = b["timeline"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|e| e["seq"].as_u64().unwrap())
                            .max()
                            .unwrap();
                        if last.is_some_and(|l| *l != c["spam"])
                            || c["seq"].as_u64().unwrap() > max_seq
                            || spam_seq.is_some_and(|s| s > c["seq"].as_u64().unwrap())
                        {
                            torn.push(format!(
                                "conversation spam {} seq {}, last spam event {last:?} at {spam_seq:?}, timeline to {max_seq}",
                                c["spam"], c["seq"]
                            ));
                        }
                        reads += 1;
                    }
                    (reads, torn)
                })
            })
            .collect();
        flipper.join().unwrap();
        sayer.join().unwrap();
        writing.store(false, std::sync::atomic::Ordering::Relaxed);
        readers.into_iter().map(|r| r.join().unwrap()).fold(
            (0, Vec::new()),
            |(n, mut t), (r, tr)| {
                t.extend(tr);
                (n + r, t)
            },
        )
    });
    eprintln!("{reads} reads beside the writers");
    assert!(
        reads >= 30,
        "the readers ran beside the writers: {reads} reads"
    );
    assert!(
        torn.is_empty(),
        "{} of {reads} answers torn: {torn:?}",
        torn.len()
    );
}

/// An extension (respond.io: "affecter" a conversation): `POST …/owner {"agent_id"?}`
/// hands a conversation over. A supervisor gives any to anyone, the owner hands it over,
/// an agent takes one nobody owns; each change is a `conversation.owner` event with
/// `by`, and a human taking an open conversation turns its bot off.
#[test]
fn a_conversation_is_handed_over_by_its_owner_or_a_supervisor() {
    let hub = Hub::start();
    let ann = hub.agent("Ann", "agent");
    let bob = hub.agent("Bob", "agent");
    let carl = hub.agent("Carl", "agent");
    let sue = hub.agent("Sue", "supervisor");
    let (_, k) = hub.contact();
    let m = hub.say(&k, "my parcel is late");
    let conv = conv_of(&m);
    let (mut console, welcome) = hub.console(&sue.1, None);
    let head = welcome["seq"].as_u64().unwrap();

    // nobody owns it: an agent may take it, not give it to someone else
    assert_eq!(conversation(&hub, &conv)["owner"], Value::Null);
    assert_eq!(conversation(&hub, &conv)["bot_active"], true);
    assert_error(
        post_conv(&hub, &bob.1, &conv, "owner", json!({"agent_id": carl.0})),
        403,
        "forbidden",
        "an agent gives an unowned conversation away",
    );
    let c = conv_ok(&hub, &ann.1, &conv, "owner", json!({}));
    assert_eq!(
        (&c["owner"], &c["bot_active"]),
        (&json!(ann.0), &json!(false))
    );
    let seen = await_kinds(
        &mut console,
        &conv,
        head,
        &["conversation.owner", "conversation.bot"],
    );
    assert_eq!(
        seen["conversation.owner"]["data"],
        json!({"owner": ann.0, "by": ann.0})
    );
    assert_eq!(
        seen["conversation.bot"]["data"],
        json!({"active": false, "by": ann.0})
    );
    let after_take = seen["conversation.bot"]["seq"].as_u64().unwrap();

    // another agent may neither take it nor give it away; the owner hands it over
    for body in [
        json!({}),
        json!({"agent_id": bob.0}),
        json!({"agent_id": carl.0}),
    ] {
        assert_error(
            post_conv(&hub, &bob.1, &conv, "owner", body),
            403,
            "forbidden",
            "not the owner",
        );
    }
    let c = conv_ok(&hub, &ann.1, &conv, "owner", json!({"agent_id": bob.0}));
    assert_eq!(c["owner"], bob.0.as_str());
    let seen = await_kinds(&mut console, &conv, after_take, &["conversation.owner"]);
    assert_eq!(
        seen["conversation.owner"]["data"],
        json!({"owner": bob.0, "by": ann.0})
    );
    let handed = seen["conversation.owner"]["seq"].as_u64().unwrap();
    // the same owner again: 200, nothing changes (as for spam)
    let again = conv_ok(&hub, &bob.1, &conv, "owner", json!({}));
    assert_eq!(again["seq"], c["seq"], "{again}");

    // a supervisor gives it to anyone, closed too (the owner stays after close)
    conv_ok(&hub, &sue.1, &conv, "close", json!({}));
    let c = conv_ok(&hub, &sue.1, &conv, "owner", json!({"agent_id": carl.0}));
    assert_eq!(
        (&c["owner"], &c["state"]),
        (&json!(carl.0), &json!("closed"))
    );
    assert_eq!(
        c["bot_active"], true,
        "closing turned the bot on; giving it does not turn it off"
    );
    let seen = await_kinds(&mut console, &conv, handed, &["conversation.owner"]);
    assert_eq!(
        seen["conversation.owner"]["data"],
        json!({"owner": carl.0, "by": sue.0})
    );
    let (_, timeline) = show(&hub, &conv);
    let owners: Vec<&Value> = timeline
        .iter()
        .filter(|i| i["kind"] == "conversation.owner")
        .map(|i| &i["data"]["owner"])
        .collect();
    assert_eq!(owners, [&json!(ann.0), &json!(bob.0), &json!(carl.0)]);

    // §3's checks, in their order
    let path = format!("/api/conversations/{conv}/owner");
    assert_error(
        hub.call("POST", &path, None, Some(json!({}))),
        401,
        "unauthorized",
        "no token",
    );
    assert_error(
        hub.post(&path, &k, json!({})),
        403,
        "forbidden",
        "a contact",
    );
    assert_error(
        hub.post(&path, &sue.1, json!({"agent_id": "nobody"})),
        400,
        "invalid",
        "unknown agent",
    );
    assert_error(
        hub.post(&path, &sue.1, json!({"agent_id": 7})),
        400,
        "invalid",
        "not a string",
    );
    assert_error(
        hub.post("/api/conversations/nope/owner", &sue.1, json!({})),
        404,
        "not_found",
        "unknown conversation",
    );
    assert_eq!(conversation(&hub, &conv)["owner"], carl.0.as_str());
}

/// An extension: `GET /api/mentions` lists the comments that mention the caller, newest
/// first, each once however often it names them, with its conversation's customer; it
/// pages with `before` / `next_before` and survives a `kill -9`.
#[test]
fn an_agent_finds_the_comments_that_mention_them() {
    let mut hub = Hub::start();
    let ann = hub.agent("Ann", "agent");
    let bob = hub.agent("Bob", "agent");
    let carl = hub.agent("Carl", "agent");
    let (contact, k) = hub.contact();
    let conv = conv_of(&hub.say(&k, "my parcel is late"));
    let first = comment(&hub, &bob.1, &conv, "@Ann and @Carl, have a look");
    let second = comment(&hub, &carl.1, &conv, "@ann @Ann again, sorry");
    comment(&hub, &ann.1, &conv, "nobody named here");
    fn mentions(hub: &Hub, token: &str, q: &str) -> Value {
        let (s, b) = hub.get(&format!("/api/mentions{q}"), token);
        assert_eq!(s, 200, "{b}");
        b
    }
    let b = mentions(&hub, &ann.1, "");
    let ids: Vec<String> = b["items"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(ids, [id(&second), id(&first)], "newest first, each once");
    let top = &b["items"][0];
    assert_eq!(top["type"], "comment");
    assert_eq!(top["contact_id"], contact.as_str());
    assert_eq!(top["text"], second["text"]);
    assert_eq!(top["seq"], second["seq"]);
    assert!(b.get("next_before").is_none(), "{b}");
    let carls: Vec<String> = mentions(&hub, &carl.1, "")["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(id)
        .collect();
    assert_eq!(carls, [id(&first)]);
    assert_eq!(mentions(&hub, &bob.1, "")["items"], json!([]));

    // pages
    let page = mentions(&hub, &ann.1, "?limit=1");
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let next = page["next_before"].as_u64().expect("next_before");
    let rest = mentions(&hub, &ann.1, &format!("?limit=1&before={next}"));
    assert_eq!(id(&rest["items"][0]), id(&first));
    for q in ["?limit=0", "?before=x"] {
        let (s, b) = hub.get(&format!("/api/mentions{q}"), &ann.1);
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (400, Some("invalid")),
            "{q}"
        );
    }
    let (s, _) = hub.get("/api/mentions", &k);
    assert_eq!(s, 403, "a contact");

    hub.restart(); // (a kill -9, then the same data)
    let after: Vec<String> = mentions(&hub, &ann.1, "")["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(id)
        .collect();
    assert_eq!(after, [id(&second), id(&first)]);
}
