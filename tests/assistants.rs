//! PROTOCOL §6.4: assistants (bots) — their administration (create, replace, publish per
//! channel, unpublish) and how a published one handles customer messages; persistence
//! across a `kill -9`.

mod common;

use common::{assert_error, conv_of, eventually, id, Frame, Hub, Socket, ADMIN};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- helpers

/// The definition most tests use.
fn helper_def() -> Value {
    json!({
        "name": "Helper",
        "rules": [
            {"match": "Opening Hours", "reply": "We open at 9."},
            {"match": "price", "reply": "See our pricing page."}
        ],
        "transfer_keywords": ["human", "operator"],
        "transfer_reply": "Connecting you to a human.",
        "spam_keywords": ["casino"]
    })
}

fn create(hub: &Hub, def: Value) -> Value {
    let (s, b) = hub.post("/api/assistants", ADMIN, def);
    assert_eq!(s, 201, "create assistant: {b}");
    b
}

fn publish(hub: &Hub, a: &str, channels: Value) -> Value {
    let (s, b) = hub.post(
        &format!("/api/assistants/{a}/publish"),
        ADMIN,
        json!({ "channels": channels }),
    );
    assert_eq!(s, 200, "publish: {b}");
    b
}

fn unpublish(hub: &Hub, a: &str, body: Value) -> Value {
    let (s, b) = hub.post(&format!("/api/assistants/{a}/unpublish"), ADMIN, body);
    assert_eq!(s, 200, "unpublish: {b}");
    b
}

fn put(hub: &Hub, a: &str, def: Value) -> Value {
    let (s, b) = hub.call(
        "PUT",
        &format!("/api/assistants/{a}"),
        Some(ADMIN),
        Some(def),
    );
    assert_eq!(s, 200, "put: {b}");
    b
}

fn list(hub: &Hub) -> Vec<Value> {
    let (s, b) = hub.get("/api/assistants", ADMIN);
    assert_eq!(s, 200, "list: {b}");
    b["items"].as_array().unwrap().clone()
}

fn listed(hub: &Hub, a: &str) -> Value {
    list(hub)
        .into_iter()
        .find(|x| x["id"] == a)
        .unwrap_or_else(|| panic!("assistant {a} not listed"))
}

fn channels(a: &Value) -> BTreeSet<String> {
    a["channels"]
        .as_array()
        .unwrap_or_else(|| panic!("channels: {a}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A hub with the Helper assistant published on `web`; returns its id.
fn bot_hub() -> (Hub, String) {
    let hub = Hub::start();
    let a = id(&create(&hub, helper_def()));
    publish(&hub, &a, json!(["web"]));
    (hub, a)
}

fn conversation(hub: &Hub, conv: &str) -> Value {
    let (s, b) = hub.get(&format!("/api/conversations/{conv}"), ADMIN);
    assert_eq!(s, 200, "{b}");
    b["conversation"].clone()
}

fn timeline(hub: &Hub, conv: &str) -> Vec<Value> {
    let (s, b) = hub.get(&format!("/api/conversations/{conv}"), ADMIN);
    assert_eq!(s, 200, "{b}");
    b["timeline"].as_array().unwrap().clone()
}

fn replies(hub: &Hub, conv: &str) -> Vec<Value> {
    timeline(hub, conv)
        .into_iter()
        .filter(|i| i["type"] == "reply")
        .collect()
}

/// Activities oldest first.
fn events(hub: &Hub, conv: &str) -> Vec<Value> {
    let (s, b) = hub.get(&format!("/api/conversations/{conv}/activities"), ADMIN);
    assert_eq!(s, 200, "{b}");
    let mut v = b["items"].as_array().unwrap().clone();
    v.reverse();
    v
}

/// Status events of `msg`, oldest first, as (from, to, assignee, by).
fn status_events(hub: &Hub, conv: &str, msg: &str) -> Vec<(String, String, Value, String)> {
    events(hub, conv)
        .iter()
        .filter(|e| e["kind"] == "message.status_changed" && e["data"]["message_id"] == msg)
        .map(|e| {
            let d = &e["data"];
            (
                d["from"].as_str().unwrap().to_string(),
                d["to"].as_str().unwrap().to_string(),
                d["assignee"].clone(),
                d["by"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn message(hub: &Hub, msg: &str) -> Value {
    hub.message(ADMIN, msg)
}

fn folder(hub: &Hub, token: &str, f: &str) -> Vec<String> {
    let (s, b) = hub.get(&format!("/api/inbox?folder={f}&limit=500"), token);
    assert_eq!(s, 200, "inbox {f}: {b}");
    b["items"].as_array().unwrap().iter().map(id).collect()
}

/// Asserts the message is pending, unassigned and nobody (bot) answered in its conversation.
fn assert_untouched(hub: &Hub, msg: &Value, replies_before: usize) {
    let m = message(hub, &id(msg));
    assert_eq!(m["status"], "pending", "{m}");
    assert!(m["assignee"].is_null(), "{m}");
    let conv = conv_of(msg);
    assert!(
        status_events(hub, &conv, &id(msg)).is_empty(),
        "no status event for {}",
        id(msg)
    );
    assert_eq!(replies(hub, &conv).len(), replies_before, "no new reply");
}

fn bot(a: &str) -> String {
    format!("bot:{a}")
}

fn widget(hub: &Hub, token: &str) -> Socket {
    let mut w = hub.socket("/ws/widget", json!({"type": "hello", "token": token}));
    w.recv_type("welcome");
    w
}

// ---------------------------------------------------------------- administration

#[test]
fn assistant_routes_are_for_admins_only() {
    let hub = Hub::start();
    let a = id(&create(&hub, helper_def()));
    let (_, agent) = hub.agent("Alice", "agent");
    let (_, sup) = hub.agent("Sam", "supervisor");
    let (_, contact) = hub.contact();
    let routes: Vec<(&str, String, Value)> = vec![
        ("POST", "/api/assistants".into(), helper_def()),
        ("PUT", format!("/api/assistants/{a}"), helper_def()),
        (
            "POST",
            format!("/api/assistants/{a}/publish"),
            json!({"channels": ["web"]}),
        ),
        ("POST", format!("/api/assistants/{a}/unpublish"), json!({})),
        ("DELETE", format!("/api/assistants/{a}"), json!({})),
    ];
    for (method, path, body) in &routes {
        let call = |t: Option<&str>| hub.call(method, path, t, Some(body.clone()));
        assert_error(
            call(None),
            401,
            "unauthorized",
            &format!("{method} {path} no token"),
        );
        assert_error(
            call(Some("bogus")),
            401,
            "unauthorized",
            &format!("{method} {path} bad token"),
        );
        assert_error(
            call(Some(&agent)),
            403,
            "forbidden",
            &format!("{method} {path} agent"),
        );
        assert_error(
            call(Some(&sup)),
            403,
            "forbidden",
            &format!("{method} {path} supervisor"),
        );
        assert_error(
            call(Some(&contact)),
            403,
            "forbidden",
            &format!("{method} {path} contact"),
        );
    }
    assert_error(
        hub.call("GET", "/api/assistants", None, None),
        401,
        "unauthorized",
        "list without token",
    );
    assert_error(
        hub.get("/api/assistants", &contact),
        403,
        "forbidden",
        "list as contact",
    );
    // Nothing changed: one draft assistant.
    let all = list(&hub);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["status"], "draft");
    assert_eq!(all[0]["channels"], json!([]));
}

#[test]
fn create_answers_a_draft_with_no_channel_and_the_definition() {
    let hub = Hub::start();
    let b = create(&hub, helper_def());
    assert!(b["id"].is_string(), "{b}");
    assert_eq!(b["status"], "draft");
    assert_eq!(b["channels"], json!([]));
    assert_eq!(b["name"], "Helper");
    assert_eq!(b["rules"], helper_def()["rules"]);
    assert_eq!(b["transfer_keywords"], json!(["human", "operator"]));
    assert_eq!(b["transfer_reply"], "Connecting you to a human.");
    assert_eq!(b["spam_keywords"], json!(["casino"]));
    assert!(b["default_reply"].is_null(), "{b}");
    assert_eq!(listed(&hub, &id(&b)), b, "listed as created");

    // Only the required fields.
    let m = create(
        &hub,
        json!({"name": "Min", "rules": [], "transfer_keywords": []}),
    );
    assert_eq!(m["status"], "draft");
    assert_eq!(m["spam_keywords"], json!([]), "{m}");
    assert!(
        m["transfer_reply"].is_null() && m["default_reply"].is_null(),
        "{m}"
    );
    assert_ne!(id(&m), id(&b));
    assert_eq!(list(&hub).len(), 2);
}

#[test]
fn create_bad_input() {
    let hub = Hub::start();
    let bad: Vec<(&str, Value)> = vec![
        (
            "missing name",
            json!({"rules": [], "transfer_keywords": []}),
        ),
        (
            "empty name",
            json!({"name": "", "rules": [], "transfer_keywords": []}),
        ),
        (
            "blank name",
            json!({"name": "  ", "rules": [], "transfer_keywords": []}),
        ),
        (
            "name not a string",
            json!({"name": 1, "rules": [], "transfer_keywords": []}),
        ),
        (
            "missing rules (required: only the fields marked ? are optional)",
            json!({"name": "x", "transfer_keywords": []}),
        ),
        (
            "missing transfer_keywords",
            json!({"name": "x", "rules": []}),
        ),
        ("name alone", json!({"name": "x"})),
        (
            "rules not a list",
            json!({"name": "x", "rules": {}, "transfer_keywords": []}),
        ),
        (
            "rule without reply",
            json!({"name": "x", "rules": [{"match": "a"}], "transfer_keywords": []}),
        ),
        (
            "rule without match",
            json!({"name": "x", "rules": [{"reply": "a"}], "transfer_keywords": []}),
        ),
        (
            "rule with empty match",
            json!({"name": "x", "rules": [{"match": "", "reply": "a"}], "transfer_keywords": []}),
        ),
        (
            "rule with empty reply",
            json!({"name": "x", "rules": [{"match": "a", "reply": ""}], "transfer_keywords": []}),
        ),
        (
            "transfer_keywords not a list",
            json!({"name": "x", "rules": [], "transfer_keywords": "human"}),
        ),
        (
            "spam_keywords not a list",
            json!({"name": "x", "rules": [], "transfer_keywords": [], "spam_keywords": 3}),
        ),
        (
            "blank transfer keyword (it would match every message)",
            json!({"name": "x", "rules": [], "transfer_keywords": ["human", ""]}),
        ),
        (
            "blank spam keyword",
            json!({"name": "x", "rules": [], "transfer_keywords": [], "spam_keywords": ["  "]}),
        ),
        (
            "transfer_reply not a string",
            json!({"name": "x", "rules": [], "transfer_keywords": [], "transfer_reply": 3}),
        ),
        (
            "empty default_reply",
            json!({"name": "x", "rules": [], "transfer_keywords": [], "default_reply": ""}),
        ),
        ("not an object", json!(["name"])),
    ];
    for (what, body) in bad {
        assert_error(
            hub.post("/api/assistants", ADMIN, body),
            400,
            "invalid",
            what,
        );
    }
    assert_error(
        hub.call_raw(
            "POST",
            "/api/assistants",
            Some(ADMIN),
            Some("{\"name\":".into()),
        ),
        400,
        "invalid",
        "bad JSON",
    );
    assert_error(
        hub.post(
            "/api/assistants",
            ADMIN,
            json!({"name": "x", "rules": [{"match": "a", "reply": "y".repeat(4097)}], "transfer_keywords": []}),
        ),
        413,
        "too_large",
        "reply over 4096 characters",
    );
    assert!(list(&hub).is_empty(), "nothing created");
}

#[test]
fn put_replaces_the_definition_and_keeps_status_and_channels() {
    let hub = Hub::start();
    let a = id(&create(
        &hub,
        json!({
            "name": "Helper",
            "rules": [{"match": "price", "reply": "cheap"}],
            "transfer_keywords": ["human"],
            "transfer_reply": "hold on",
            "spam_keywords": ["casino"],
            "default_reply": "sorry?"
        }),
    ));
    publish(&hub, &a, json!(["web", "sms"]));
    let b = put(
        &hub,
        &a,
        json!({"name": "Helper 2", "rules": [{"match": "hours", "reply": "9 to 5"}], "transfer_keywords": ["person"]}),
    );
    assert_eq!(b["id"], a.as_str());
    assert_eq!(b["name"], "Helper 2");
    assert_eq!(b["rules"], json!([{"match": "hours", "reply": "9 to 5"}]));
    assert_eq!(b["transfer_keywords"], json!(["person"]));
    assert!(b["transfer_reply"].is_null(), "cleared: {b}");
    assert!(b["default_reply"].is_null(), "cleared: {b}");
    assert_eq!(b["spam_keywords"], json!([]), "cleared: {b}");
    assert_eq!(b["status"], "published", "kept: {b}");
    assert_eq!(channels(&b), set(&["web", "sms"]), "kept: {b}");
    assert_eq!(listed(&hub, &a), b);

    // The bot now follows the new definition at once.
    let (_, k) = hub.contact();
    let m = hub.say(&k, "price? and hours?");
    let r = replies(&hub, &conv_of(&m));
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["text"], "9 to 5");
    let (_, k) = hub.contact();
    let m = hub.say(&k, "casino");
    assert_eq!(
        conversation(&hub, &conv_of(&m))["spam"],
        false,
        "old spam keyword gone"
    );

    // A draft stays a draft.
    let d = id(&create(
        &hub,
        json!({"name": "Draft", "rules": [], "transfer_keywords": []}),
    ));
    let b = put(
        &hub,
        &d,
        json!({"name": "Draft 2", "rules": [], "transfer_keywords": []}),
    );
    assert_eq!(b["status"], "draft");
    assert_eq!(b["channels"], json!([]));

    // `null` clears an optional field as its absence does, the keyword list included.
    let c = put(
        &hub,
        &a,
        json!({"name": "Helper 3", "rules": [], "transfer_keywords": ["person"],
               "transfer_reply": null, "spam_keywords": null, "default_reply": null}),
    );
    assert_eq!(c["spam_keywords"], json!([]), "{c}");
    assert!(
        c["transfer_reply"].is_null() && c["default_reply"].is_null(),
        "{c}"
    );
}

#[test]
fn put_bad_input_and_unknown_assistant() {
    let hub = Hub::start();
    let a = id(&create(&hub, helper_def()));
    assert_error(
        hub.call(
            "PUT",
            "/api/assistants/nope",
            Some(ADMIN),
            Some(helper_def()),
        ),
        404,
        "not_found",
        "unknown assistant",
    );
    assert_error(
        hub.call(
            "PUT",
            &format!("/api/assistants/{a}"),
            Some(ADMIN),
            Some(json!({"rules": []})),
        ),
        400,
        "invalid",
        "missing name",
    );
    assert_error(
        hub.call(
            "PUT",
            "/api/assistants/nope",
            Some(ADMIN),
            Some(json!({"name": ""})),
        ),
        400,
        "invalid",
        "400 before 404",
    );
    // A PUT that leaves out the rules is refused, and wipes nothing.
    let before = listed(&hub, &a);
    for body in [
        json!({"name": "x"}),
        json!({"name": "x", "rules": []}),
        json!({"name": "x", "transfer_keywords": []}),
    ] {
        assert_error(
            hub.call(
                "PUT",
                &format!("/api/assistants/{a}"),
                Some(ADMIN),
                Some(body.clone()),
            ),
            400,
            "invalid",
            &format!("PUT {body}"),
        );
    }
    assert_eq!(listed(&hub, &a), before);
    assert_ne!(before["rules"], json!([]), "the fixture has rules to lose");
    assert_eq!(listed(&hub, &a)["name"], "Helper", "unchanged");
}

#[test]
fn publish_makes_it_published_on_those_channels() {
    let hub = Hub::start();
    let a = id(&create(&hub, helper_def()));
    let b = publish(&hub, &a, json!(["web"]));
    assert_eq!(b["id"], a.as_str());
    assert_eq!(b["status"], "published");
    assert_eq!(b["channels"], json!(["web"]));
    assert_eq!(b["name"], "Helper", "the answer is the assistant: {b}");
    // Publishing adds channels; repeating one does not duplicate it.
    let b = publish(&hub, &a, json!(["sms", "web"]));
    assert_eq!(channels(&b), set(&["web", "sms"]));
    assert_eq!(b["channels"].as_array().unwrap().len(), 2, "{b}");
    assert_eq!(listed(&hub, &a), b);
}

#[test]
fn publishing_another_assistant_on_a_channel_takes_it_over() {
    let hub = Hub::start();
    let first = id(&create(&hub, helper_def()));
    let second = id(&create(
        &hub,
        json!({"name": "Other", "rules": [{"match": "price", "reply": "from Other"}], "transfer_keywords": []}),
    ));
    publish(&hub, &first, json!(["web", "sms"]));
    publish(&hub, &second, json!(["web"]));
    let f = listed(&hub, &first);
    assert_eq!(channels(&f), set(&["sms"]), "first lost web: {f}");
    assert_eq!(f["status"], "published", "still has sms");
    let s = listed(&hub, &second);
    assert_eq!(channels(&s), set(&["web"]));
    assert_eq!(s["status"], "published");

    // web is now answered by the second one, sms still by the first.
    let (_, k) = hub.contact_on("web");
    let m = hub.say(&k, "price?");
    let r = replies(&hub, &conv_of(&m));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["author"], json!({"kind": "bot", "id": second}));
    assert_eq!(r[0]["text"], "from Other");
    let (_, k) = hub.contact_on("sms");
    let m = hub.say(&k, "price?");
    let r = replies(&hub, &conv_of(&m));
    assert_eq!(r[0]["author"], json!({"kind": "bot", "id": first}));

    // Taking its last channel makes the first a draft.
    publish(&hub, &second, json!(["sms"]));
    let f = listed(&hub, &first);
    assert_eq!(f["channels"], json!([]), "{f}");
    assert_eq!(f["status"], "draft", "{f}");
    assert_eq!(channels(&listed(&hub, &second)), set(&["web", "sms"]));
    // One published assistant per channel.
    for ch in ["web", "sms"] {
        let holders = list(&hub)
            .iter()
            .filter(|a| channels(a).contains(ch))
            .count();
        assert_eq!(holders, 1, "channel {ch}");
    }
}

#[test]
fn unpublish_some_channels_or_all() {
    let hub = Hub::start();
    let a = id(&create(&hub, helper_def()));
    publish(&hub, &a, json!(["web", "sms", "mail"]));
    let b = unpublish(&hub, &a, json!({"channels": ["sms"]}));
    assert_eq!(channels(&b), set(&["web", "mail"]));
    assert_eq!(b["status"], "published");
    let b = unpublish(&hub, &a, json!({"channels": ["not-held"]}));
    assert_eq!(
        channels(&b),
        set(&["web", "mail"]),
        "unknown channel ignored"
    );
    let b = unpublish(&hub, &a, json!({}));
    assert_eq!(b["channels"], json!([]));
    assert_eq!(b["status"], "draft");
    assert_eq!(listed(&hub, &a), b);
    // Unpublishing the last channel by name is a draft too.
    publish(&hub, &a, json!(["web"]));
    let b = unpublish(&hub, &a, json!({"channels": ["web"]}));
    assert_eq!(b["status"], "draft");
    assert_eq!(b["channels"], json!([]));
    // Unpublishing a draft is harmless.
    let b = unpublish(&hub, &a, json!({}));
    assert_eq!(b["status"], "draft");
}

#[test]
fn publish_and_unpublish_bad_input() {
    let hub = Hub::start();
    let a = id(&create(&hub, helper_def()));
    let p = format!("/api/assistants/{a}/publish");
    for (what, body) in [
        ("no channel", json!({"channels": []})),
        ("channels missing", json!({})),
        ("channels not a list", json!({"channels": "web"})),
        ("empty channel name", json!({"channels": [""]})),
        ("channel not a string", json!({"channels": [1]})),
    ] {
        assert_error(hub.post(&p, ADMIN, body), 400, "invalid", what);
    }
    assert_error(
        hub.post(
            "/api/assistants/nope/publish",
            ADMIN,
            json!({"channels": ["web"]}),
        ),
        404,
        "not_found",
        "publish unknown",
    );
    assert_error(
        hub.post(
            "/api/assistants/nope/publish",
            ADMIN,
            json!({"channels": []}),
        ),
        400,
        "invalid",
        "400 before 404",
    );
    assert_error(
        hub.post("/api/assistants/nope/unpublish", ADMIN, json!({})),
        404,
        "not_found",
        "unpublish unknown",
    );
    assert_error(
        hub.post(
            &format!("/api/assistants/{a}/unpublish"),
            ADMIN,
            json!({"channels": "web"}),
        ),
        400,
        "invalid",
        "unpublish channels not a list",
    );
    let b = listed(&hub, &a);
    assert_eq!(b["status"], "draft");
    assert_eq!(b["channels"], json!([]));
}

#[test]
fn a_draft_never_answers_anyone() {
    let hub = Hub::start();
    create(
        &hub,
        json!({"name": "Draft", "rules": [{"match": "price", "reply": "x"}], "transfer_keywords": ["human"], "spam_keywords": ["casino"], "default_reply": "hi"}),
    );
    let (_, k) = hub.contact();
    for text in ["price?", "human please", "anything", "casino"] {
        let m = hub.say(&k, text);
        assert_untouched(&hub, &m, 0);
        assert_eq!(conversation(&hub, &conv_of(&m))["spam"], false);
    }
}

#[test]
fn an_unpublished_assistant_stops_answering() {
    let (hub, a) = bot_hub();
    let (_, k) = hub.contact();
    let m = hub.say(&k, "price?");
    assert_eq!(
        message(&hub, &id(&m))["status"],
        "answered",
        "published: answers"
    );
    unpublish(&hub, &a, json!({}));
    let (_, k) = hub.contact();
    let m = hub.say(&k, "price?");
    assert_untouched(&hub, &m, 0);
}

#[test]
fn an_assistant_answers_only_on_its_channels() {
    let (hub, _a) = bot_hub();
    let (_, k) = hub.contact_on("sms");
    let m = hub.say(&k, "price?");
    assert_untouched(&hub, &m, 0);
}

// ---------------------------------------------------------------- bot behaviour

#[test]
fn a_rule_match_is_answered_by_the_bot() {
    let (hub, a) = bot_hub();
    let (_, k) = hub.contact();
    let mut w = widget(&hub, &k);
    let m = hub.say(&k, "what are your OPENING hours?");
    let conv = conv_of(&m);

    let full = message(&hub, &id(&m));
    assert_eq!(full["status"], "answered", "{full}");
    assert_eq!(full["assignee"], bot(&a).as_str(), "{full}");

    let r = replies(&hub, &conv);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["author"], json!({"kind": "bot", "id": a}));
    assert_eq!(r[0]["text"], "We open at 9.");

    assert_eq!(
        status_events(&hub, &conv, &id(&m)),
        vec![
            ("pending".into(), "assigned".into(), json!(bot(&a)), bot(&a)),
            (
                "assigned".into(),
                "answered".into(),
                json!(bot(&a)),
                bot(&a)
            ),
        ]
    );
    let c = conversation(&hub, &conv);
    assert_eq!(c["bot_active"], true, "{c}");
    assert!(c["owner"].is_null(), "a bot is not a human owner: {c}");

    // The contact sees the bot's reply, live and over HTTP.
    let ev = w.recv_event("reply.created", |_| true);
    assert_eq!(
        ev["data"]["reply"]["author"],
        json!({"kind": "bot", "id": a})
    );
    assert_eq!(ev["data"]["reply"]["text"], "We open at 9.");
    let (_, b) = hub.get("/api/widget/messages", &k);
    let items = b["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{b}");
    assert_eq!(items[1]["type"], "reply");
    assert_eq!(items[1]["author"]["kind"], "bot");

    // The next matching message is answered too.
    let m2 = hub.say(&k, "and the price");
    assert_eq!(message(&hub, &id(&m2))["status"], "answered");
    assert_eq!(replies(&hub, &conv)[1]["text"], "See our pricing page.");
}

/// PROTOCOL §4: a contact's copy of its message carries one `seq` wherever it gets it —
/// the POST answer (first and repeated), the socket's `ack`, its `message.created`
/// frame and `GET /api/widget/messages` — the seq of its `message.created`, never that
/// of the assistant's status changes, which the contact cannot see and which come
/// after the bot's reply: a widget resuming from such a seq would miss the reply.
#[test]
fn a_bot_answered_message_shows_its_contact_one_seq() {
    let (hub, _) = bot_hub();
    let (_, k) = hub.contact();
    let mut w = widget(&hub, &k);

    let body = json!({"text": "opening hours?", "client_id": "x1"});
    let (s, first) = hub.post("/api/widget/messages", &k, body.clone());
    assert_eq!(s, 201, "{first}");
    let m = &first["message"];
    let created = w.recv_event("message.created", |e| e["data"]["message"]["id"] == m["id"]);
    let reply = w.recv_event("reply.created", |_| true);
    assert_eq!(
        m["seq"], created["seq"],
        "POST answer against the event: {m} {created}"
    );
    assert_eq!(
        created["data"]["message"]["seq"], created["seq"],
        "{created}"
    );
    assert!(
        reply["seq"].as_u64() > m["seq"].as_u64(),
        "{reply} after {m}"
    );
    assert!(
        message(&hub, &id(m))["seq"].as_u64() > m["seq"].as_u64(),
        "the agents' copy moved on with the bot's handling"
    );
    let (s, again) = hub.post("/api/widget/messages", &k, body);
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["message"], *m, "a repeat answers the same copy");
    let (_, listed) = hub.get("/api/widget/messages", &k);
    assert_eq!(listed["items"][0]["seq"], m["seq"], "{listed}");

    // The same over the socket.
    w.send(json!({"type": "send", "text": "and the price", "client_id": "x2"}));
    let ack = w.recv_type("ack");
    let created = w.recv_event("message.created", |e| {
        e["data"]["message"]["id"] == ack["message"]["id"]
    });
    let reply = w.recv_event("reply.created", |_| true);
    assert_eq!(ack["message"]["seq"], created["seq"], "{ack} {created}");
    assert!(reply["seq"].as_u64() > ack["message"]["seq"].as_u64());
    w.send(json!({"type": "send", "text": "and the price", "client_id": "x2"}));
    let again = w.recv_type("ack");
    assert_eq!(
        again["message"], ack["message"],
        "a repeated send over the socket"
    );
}

#[test]
fn bot_events_reach_consoles_with_the_bot_as_author() {
    let (hub, a) = bot_hub();
    let ag = hub.agent("Alice", "agent");
    let (mut console, _) = hub.console(&ag.1, None);
    let (_, k) = hub.contact();
    let m = hub.say(&k, "price");
    let conv = conv_of(&m);
    let ev = console.recv_event("message.status_changed", |e| {
        e["conversation_id"] == conv.as_str() && e["data"]["to"] == "assigned"
    });
    assert_eq!(ev["data"]["by"], bot(&a).as_str());
    let ev = console.recv_event("reply.created", |e| e["conversation_id"] == conv.as_str());
    assert_eq!(
        ev["data"]["reply"]["author"],
        json!({"kind": "bot", "id": a})
    );
    let ev = console.recv_event("message.status_changed", |e| {
        e["conversation_id"] == conv.as_str() && e["data"]["to"] == "answered"
    });
    assert_eq!(ev["data"]["by"], bot(&a).as_str());
    assert_eq!(ev["data"]["assignee"], bot(&a).as_str());
}

#[test]
fn a_fully_automated_conversation_is_in_all_not_in_pending_or_mine() {
    let (hub, _a) = bot_hub();
    let ag = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let m = id(&hub.say(&k, "price"));
    assert!(folder(&hub, &ag.1, "all").contains(&m));
    assert!(folder(&hub, &ag.1, "answered").contains(&m));
    assert!(!folder(&hub, &ag.1, "pending").contains(&m));
    assert!(!folder(&hub, &ag.1, "mine").contains(&m));
    assert!(!folder(&hub, ADMIN, "mine").contains(&m));
    let (_, b) = hub.get("/api/inbox?folder=pending", &ag.1);
    assert_eq!(b["counts"]["pending"], 0, "{b}");
    assert_eq!(b["counts"]["mine"], 0, "{b}");
    assert_eq!(b["counts"]["all"], 1, "{b}");
}

#[test]
fn a_transfer_keyword_hands_over_to_humans() {
    let (hub, a) = bot_hub();
    let ag = hub.agent("Alice", "agent");
    let (mut console, _) = hub.console(&ag.1, None);
    let (_, k) = hub.contact();
    // A transfer keyword wins over a rule.
    let m = hub.say(&k, "price? I want a HUMAN");
    let conv = conv_of(&m);

    let full = message(&hub, &id(&m));
    assert_eq!(full["status"], "pending", "{full}");
    assert!(full["assignee"].is_null(), "{full}");
    assert_eq!(
        status_events(&hub, &conv, &id(&m)),
        vec![
            ("pending".into(), "assigned".into(), json!(bot(&a)), bot(&a)),
            (
                "assigned".into(),
                "answered".into(),
                json!(bot(&a)),
                bot(&a)
            ),
            ("answered".into(), "pending".into(), Value::Null, bot(&a)),
        ]
    );
    let r = replies(&hub, &conv);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["text"], "Connecting you to a human.");
    assert_eq!(r[0]["author"], json!({"kind": "bot", "id": a}));

    let c = conversation(&hub, &conv);
    assert_eq!(c["bot_active"], false, "{c}");
    let ev = console.recv_event("conversation.bot", |e| {
        e["conversation_id"] == conv.as_str()
    });
    assert_eq!(ev["data"], json!({"active": false, "by": bot(&a)}));

    assert!(
        folder(&hub, &ag.1, "pending").contains(&id(&m)),
        "for humans now"
    );

    // Later messages of that conversation are left to humans.
    let later = hub.say(&k, "opening hours?");
    assert_eq!(conv_of(&later), conv);
    assert_untouched(&hub, &later, 1);
    let p = folder(&hub, &ag.1, "pending");
    assert!(p.contains(&id(&later)) && p.contains(&id(&m)), "{p:?}");
}

#[test]
fn a_transfer_without_transfer_reply_says_nothing() {
    let hub = Hub::start();
    let a = id(&create(
        &hub,
        json!({"name": "Quiet", "rules": [{"match": "price", "reply": "cheap"}], "transfer_keywords": ["human"]}),
    ));
    publish(&hub, &a, json!(["web"]));
    let (_, k) = hub.contact();
    let m = hub.say(&k, "human!");
    let conv = conv_of(&m);
    assert!(replies(&hub, &conv).is_empty());
    assert_eq!(message(&hub, &id(&m))["status"], "pending");
    assert_eq!(status_events(&hub, &conv, &id(&m)).len(), 3);
    assert_eq!(conversation(&hub, &conv)["bot_active"], false);
}

#[test]
fn default_reply_answers_when_no_rule_matches() {
    let hub = Hub::start();
    let mut def = helper_def();
    def["default_reply"] = json!("I did not get that.");
    let a = id(&create(&hub, def));
    publish(&hub, &a, json!(["web"]));
    let (_, k) = hub.contact();
    let m = hub.say(&k, "blah blah");
    let conv = conv_of(&m);
    let full = message(&hub, &id(&m));
    assert_eq!(full["status"], "answered");
    assert_eq!(full["assignee"], bot(&a).as_str());
    let r = replies(&hub, &conv);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["text"], "I did not get that.");
    assert_eq!(conversation(&hub, &conv)["bot_active"], true);
    // A rule still beats the default reply.
    hub.say(&k, "price");
    assert_eq!(replies(&hub, &conv)[1]["text"], "See our pricing page.");
}

#[test]
fn without_default_reply_an_unmatched_message_is_transferred() {
    let (hub, a) = bot_hub();
    let (_, k) = hub.contact();
    let m = hub.say(&k, "something unexpected");
    let conv = conv_of(&m);
    assert_eq!(message(&hub, &id(&m))["status"], "pending");
    let r = replies(&hub, &conv);
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0]["text"], "Connecting you to a human.",
        "transfer_reply sent"
    );
    assert_eq!(
        status_events(&hub, &conv, &id(&m)),
        vec![
            ("pending".into(), "assigned".into(), json!(bot(&a)), bot(&a)),
            (
                "assigned".into(),
                "answered".into(),
                json!(bot(&a)),
                bot(&a)
            ),
            ("answered".into(), "pending".into(), Value::Null, bot(&a)),
        ]
    );
    assert_eq!(conversation(&hub, &conv)["bot_active"], false);
}

#[test]
fn a_spam_keyword_marks_the_conversation_spam_and_leaves_the_message_pending() {
    let (hub, a) = bot_hub();
    let ag = hub.agent("Alice", "agent");
    let (mut console, _) = hub.console(&ag.1, None);
    let (_, k) = hub.contact();
    // A spam keyword beats a rule and a transfer keyword.
    let m = hub.say(&k, "Best CASINO prices, human");
    let conv = conv_of(&m);
    let ev = console.recv_event("conversation.spam", |e| {
        e["conversation_id"] == conv.as_str()
    });
    assert_eq!(ev["data"], json!({"spam": true, "by": bot(&a)}));

    let c = conversation(&hub, &conv);
    assert_eq!(c["spam"], true);
    assert_untouched(&hub, &m, 0);
    assert!(folder(&hub, &ag.1, "spam").contains(&id(&m)));
    assert!(!folder(&hub, &ag.1, "pending").contains(&id(&m)));

    // In a spam conversation the bot stays silent, even for a rule match.
    let m2 = hub.say(&k, "opening hours?");
    assert_eq!(conv_of(&m2), conv);
    assert_untouched(&hub, &m2, 0);
    assert!(folder(&hub, &ag.1, "spam").contains(&id(&m2)));

    // Once un-spammed, both messages are pending for humans.
    let (s, b) = hub.post(
        &format!("/api/conversations/{conv}/spam"),
        &ag.1,
        json!({"spam": false}),
    );
    assert_eq!(s, 200, "{b}");
    let p = folder(&hub, &ag.1, "pending");
    assert!(p.contains(&id(&m)) && p.contains(&id(&m2)), "{p:?}");
}

#[test]
fn the_bot_is_silent_in_a_conversation_an_agent_marked_spam() {
    let (hub, _a) = bot_hub();
    let ag = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let m = hub.say(&k, "price");
    let conv = conv_of(&m);
    let (s, b) = hub.post(
        &format!("/api/conversations/{conv}/spam"),
        &ag.1,
        json!({"spam": true}),
    );
    assert_eq!(s, 200, "{b}");
    let m2 = hub.say(&k, "price again");
    assert_untouched(&hub, &m2, 1);
}

#[test]
fn a_human_reply_turns_the_bot_off() {
    let (hub, a) = bot_hub();
    let ag = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let m = hub.say(&k, "price");
    let conv = conv_of(&m);
    assert_eq!(message(&hub, &id(&m))["assignee"], bot(&a).as_str());

    let (mut console, _) = hub.console(&ag.1, None);
    let (s, b) = hub.post(
        &format!("/api/conversations/{conv}/replies"),
        &ag.1,
        json!({"text": "Hi, Alice here."}),
    );
    assert_eq!(s, 201, "{b}");
    let ev = console.recv_event("conversation.bot", |e| {
        e["conversation_id"] == conv.as_str()
    });
    assert_eq!(ev["data"], json!({"active": false, "by": ag.0}));
    let c = conversation(&hub, &conv);
    assert_eq!(c["bot_active"], false);
    assert_eq!(c["owner"], ag.0.as_str(), "the first human replier owns it");

    let m2 = hub.say(&k, "price?");
    assert_untouched(&hub, &m2, 2);
}

#[test]
fn a_human_assign_turns_the_bot_off() {
    let hub = Hub::start();
    let ag = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    // Written before any assistant exists: pending.
    let m = hub.say(&k, "hello");
    let conv = conv_of(&m);
    let a = id(&create(&hub, helper_def()));
    publish(&hub, &a, json!(["web"]));
    assert_eq!(conversation(&hub, &conv)["bot_active"], true);

    let (mut console, _) = hub.console(&ag.1, None);
    let (s, b) = hub.act(&ag.1, &id(&m), "assign", json!({}));
    assert_eq!(s, 200, "{b}");
    let ev = console.recv_event("conversation.bot", |e| {
        e["conversation_id"] == conv.as_str()
    });
    assert_eq!(ev["data"], json!({"active": false, "by": ag.0}));
    assert_eq!(conversation(&hub, &conv)["bot_active"], false);

    let m2 = hub.say(&k, "price?");
    assert_untouched(&hub, &m2, 0);
    // A new conversation of another contact is still the bot's.
    let (_, k2) = hub.contact();
    let m3 = hub.say(&k2, "price?");
    assert_eq!(message(&hub, &id(&m3))["status"], "answered");
}

#[test]
fn closing_turns_the_bot_back_on() {
    let (hub, a) = bot_hub();
    let ag = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let m = hub.say(&k, "operator please");
    let conv = conv_of(&m);
    assert_eq!(conversation(&hub, &conv)["bot_active"], false);

    let (mut console, _) = hub.console(&ag.1, None);
    let (s, b) = hub.post(
        &format!("/api/conversations/{conv}/close"),
        &ag.1,
        json!({}),
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["conversation"]["bot_active"], true, "{b}");
    let ev = console.recv_event("conversation.bot", |e| {
        e["conversation_id"] == conv.as_str() && e["data"]["active"] == true
    });
    assert_eq!(ev["data"], json!({"active": true, "by": ag.0}));
    assert_eq!(message(&hub, &id(&m))["status"], "archived");

    // The next message reopens the conversation and the bot handles it again.
    let m2 = hub.say(&k, "opening hours?");
    assert_eq!(conv_of(&m2), conv);
    let full = message(&hub, &id(&m2));
    assert_eq!(full["status"], "answered", "{full}");
    assert_eq!(full["assignee"], bot(&a).as_str());
    let r = replies(&hub, &conv);
    assert_eq!(r.last().unwrap()["text"], "We open at 9.");
    let c = conversation(&hub, &conv);
    assert_eq!(c["state"], "open");
    assert_eq!(c["bot_active"], true);
}

#[test]
fn the_bot_is_silent_while_a_human_handles_the_conversation_until_close() {
    // A human assign after the bot answered (via reopen of the bot-answered message).
    let (hub, _a) = bot_hub();
    let ag = hub.agent("Alice", "agent");
    let (_, k) = hub.contact();
    let m = hub.say(&k, "price");
    let conv = conv_of(&m);
    let (s, b) = hub.act(&ag.1, &id(&m), "reopen", json!({}));
    assert_eq!(s, 200, "{b}");
    let (s, b) = hub.act(&ag.1, &id(&m), "assign", json!({}));
    assert_eq!(s, 200, "{b}");
    assert_eq!(conversation(&hub, &conv)["bot_active"], false);
    for text in ["price", "opening hours", "anything"] {
        let mx = hub.say(&k, text);
        assert_untouched(&hub, &mx, 1);
    }
}

// ---------------------------------------------------------------- persistence

#[test]
fn assistants_publications_and_bot_state_survive_kill_9() {
    let mut hub = Hub::start();
    let a = id(&create(&hub, helper_def()));
    let d = id(&create(
        &hub,
        json!({"name": "Draft", "rules": [], "transfer_keywords": [], "default_reply": "draft!"}),
    ));
    let o = id(&create(
        &hub,
        json!({"name": "Other", "rules": [], "transfer_keywords": [], "default_reply": "other!"}),
    ));
    publish(&hub, &a, json!(["web", "sms"]));
    publish(&hub, &o, json!(["sms"]));
    put(&hub, &a, {
        let mut def = helper_def();
        def["default_reply"] = json!("default after put");
        def
    });
    let (_, k_off) = hub.contact();
    let off = conv_of(&hub.say(&k_off, "human"));
    let (_, k_on) = hub.contact();
    let on = conv_of(&hub.say(&k_on, "price"));
    let (_, k_spam) = hub.contact();
    let spam = conv_of(&hub.say(&k_spam, "casino"));
    let before = list(&hub);
    let convs_before: Vec<Value> = [&off, &on, &spam]
        .iter()
        .map(|c| conversation(&hub, c))
        .collect();

    hub.restart();

    assert_eq!(list(&hub), before, "assistants and publications kept");
    assert_eq!(listed(&hub, &d)["status"], "draft");
    assert_eq!(channels(&listed(&hub, &a)), set(&["web"]));
    assert_eq!(channels(&listed(&hub, &o)), set(&["sms"]));
    let convs_after: Vec<Value> = [&off, &on, &spam]
        .iter()
        .map(|c| conversation(&hub, c))
        .collect();
    assert_eq!(convs_after, convs_before, "conversations kept");
    assert_eq!(convs_after[0]["bot_active"], false);
    assert_eq!(convs_after[2]["spam"], true);

    // Behaviour follows: the bot stays off where it was off, silent in spam, on elsewhere.
    let m = hub.say(&k_off, "price");
    assert_untouched(&hub, &m, 1);
    let m = hub.say(&k_spam, "price");
    assert_untouched(&hub, &m, 0);
    let m = hub.say(&k_on, "whatever");
    assert_eq!(
        replies(&hub, &on).last().unwrap()["text"],
        "default after put"
    );
    assert_eq!(message(&hub, &id(&m))["status"], "answered");
    let (_, k) = hub.contact_on("sms");
    let m = hub.say(&k, "hello");
    let r = replies(&hub, &conv_of(&m));
    assert_eq!(r[0]["text"], "other!");
    assert_eq!(r[0]["author"]["id"], o.as_str());
}

#[test]
fn bot_replies_are_visible_on_the_widget_socket_in_order() {
    let (hub, a) = bot_hub();
    let (_, k) = hub.contact();
    let mut w = widget(&hub, &k);
    w.send(json!({"type": "send", "text": "opening hours?", "client_id": "c1"}));
    let ack = w.recv_type("ack");
    let mid = ack["message"]["id"].as_str().unwrap().to_string();
    assert!(ack["message"].get("status").is_none(), "{ack}");
    // The widget sees its message then the bot's reply, and nothing internal.
    let mut seen = Vec::new();
    let deadline = Instant::now() + common::WAIT;
    while seen.len() < 2 {
        assert!(Instant::now() < deadline, "got {seen:?}");
        if let Frame::Json(v) = w.next(Duration::from_millis(200)) {
            if v["type"] == "event" {
                seen.push(v);
            }
        }
    }
    assert_eq!(seen[0]["kind"], "message.created");
    assert_eq!(seen[0]["data"]["message"]["id"], mid.as_str());
    assert_eq!(seen[1]["kind"], "reply.created");
    assert_eq!(
        seen[1]["data"]["reply"]["author"],
        json!({"kind": "bot", "id": a})
    );
    assert!(seen[0]["seq"].as_u64() < seen[1]["seq"].as_u64());
    // Nothing about statuses follows.
    let extra = eventually("quiet widget", || {
        match w.next(Duration::from_millis(300)) {
            Frame::Timeout => Some(None),
            Frame::Json(v) if v["type"] == "event" => Some(Some(v)),
            _ => None,
        }
    });
    assert!(extra.is_none(), "unexpected widget event: {extra:?}");
}

// ------------------------------------------------- deletion and If-Match (extensions)

/// A request with an optional `If-Match`; answers (status, `ETag` header, JSON body).
fn tagged_call(
    hub: &Hub,
    method: &str,
    path: &str,
    if_match: Option<&str>,
    body: Option<Value>,
) -> (u16, Option<String>, Value) {
    let mut req = ureq::request(method, &format!("{}{}", hub.url, path))
        .set("Authorization", &format!("Bearer {ADMIN}"));
    if let Some(tag) = if_match {
        req = req.set("If-Match", tag);
    }
    let res = match body {
        Some(b) => req
            .set("Content-Type", "application/json")
            .send_string(&b.to_string()),
        None => req.call(),
    };
    let resp = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let status = resp.status();
    let etag = resp.header("ETag").map(str::to_string);
    let text = resp.into_string().unwrap_or_default();
    (
        status,
        etag,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// An extension: `DELETE /api/assistants/{id}` (admin) answers 204 and the assistant is
/// gone (404 after, also across a restart). Published, it leaves its channels with it:
/// no bot answers there any more, and the conversations it answered go on without it —
/// their timeline keeps its replies, their next message waits for a person, and a bot
/// published later answers them.
#[test]
fn deleting_an_assistant_takes_it_off_its_channels_and_its_conversations_go_on() {
    let (mut hub, a) = bot_hub();
    let (_, k) = hub.contact();
    let first = hub.say(&k, "what are your opening hours?");
    let conv = conv_of(&first);
    assert_eq!(replies(&hub, &conv).len(), 1, "the bot answered");
    assert_eq!(conversation(&hub, &conv)["bot_active"], true);

    let (s, _, b) = tagged_call(&hub, "DELETE", &format!("/api/assistants/{a}"), None, None);
    assert_eq!((s, &b), (204, &Value::Null));
    assert_error(
        hub.get(&format!("/api/assistants/{a}"), ADMIN),
        404,
        "not_found",
        "a deleted assistant",
    );
    assert!(list(&hub).is_empty());
    let (s, _, b) = tagged_call(&hub, "DELETE", &format!("/api/assistants/{a}"), None, None);
    assert_eq!((s, b["error"]["code"].as_str()), (404, Some("not_found")));
    for (what, path) in [("publish", "publish"), ("unpublish", "unpublish")] {
        let (s, b) = hub.post(
            &format!("/api/assistants/{a}/{path}"),
            ADMIN,
            json!({"channels": ["web"]}),
        );
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{what}"
        );
    }

    // Its conversation goes on: the next message waits for a person, untouched.
    let second = hub.say(&k, "opening hours again?");
    assert_eq!(conv_of(&second), conv);
    assert_untouched(&hub, &second, 1);
    assert!(folder(&hub, ADMIN, "pending").contains(&id(&second)));
    let c = conversation(&hub, &conv);
    assert_eq!(
        (c["state"].as_str(), c["bot_active"].as_bool()),
        (Some("open"), Some(true))
    );
    let bot_reply = &replies(&hub, &conv)[0];
    assert_eq!(bot_reply["author"], json!({"kind": "bot", "id": a}));
    let (s, w) = hub.get("/api/widget/messages", &k);
    assert_eq!(s, 200, "{w}");
    assert_eq!(w["items"].as_array().unwrap().len(), 3, "{w}");
    // A new customer on the channel: no bot either.
    let (_, k2) = hub.contact();
    let lone = hub.say(&k2, "opening hours?");
    assert_untouched(&hub, &lone, 0);

    // Deleted for good, across a restart; another bot published on the channel answers
    // the conversation (its `bot_active` is still on), as publishing does.
    hub.restart();
    assert!(list(&hub).is_empty());
    let b2 = id(&create(
        &hub,
        json!({"name": "Second", "rules": [{"match": "hours", "reply": "9 to 5."}], "transfer_keywords": []}),
    ));
    publish(&hub, &b2, json!(["web"]));
    hub.say(&k, "hours, please");
    let r = replies(&hub, &conv);
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[1]["author"], json!({"kind": "bot", "id": b2}));
    assert_eq!(r[1]["text"], "9 to 5.");
}

/// An extension: optimistic concurrency with standard HTTP. Each assistant has an `ETag`
/// (on `GET /api/assistants/{id}` and on the answers of create, `PUT`, publish and
/// unpublish, and per item in `GET /api/assistants?etags=true`); `If-Match` on `PUT`,
/// publish, unpublish and `DELETE` refuses a change to another version with 412
/// `precondition_failed` (§3's body) and changes nothing. Without `If-Match`, and in
/// the list without `etags=true`, everything is as PROTOCOL §6.4 has it.
#[test]
fn a_change_made_from_a_stale_copy_is_refused_with_412_when_if_match_says_so() {
    let hub = Hub::start();
    let (s, created_tag, created) =
        tagged_call(&hub, "POST", "/api/assistants", None, Some(helper_def()));
    assert_eq!(s, 201, "{created}");
    let a = id(&created);
    let path = format!("/api/assistants/{a}");
    let (s, tag, shown) = tagged_call(&hub, "GET", &path, None, None);
    assert_eq!(s, 200);
    let tag = tag.expect("an ETag on GET");
    assert!(
        tag.starts_with('"') && tag.ends_with('"') && tag.len() > 2,
        "{tag}"
    );
    assert_eq!(created_tag.as_deref(), Some(tag.as_str()));
    assert_eq!(shown, created);
    // The list gains no field unasked; with `etags=true` each item has its tag.
    let plain = listed(&hub, &a);
    assert_eq!(plain, created, "the list's item is the assistant as it was");
    let (_, tagged_list) = hub.get("/api/assistants?etags=true", ADMIN);
    assert_eq!(tagged_list["items"][0]["etag"], tag.as_str());
    let mut item = tagged_list["items"][0].clone();
    item.as_object_mut().unwrap().remove("etag");
    assert_eq!(item, created);
    assert_error(
        hub.get("/api/assistants?etags=maybe", ADMIN),
        400,
        "invalid",
        "a flag that is not one",
    );

    // Two admins read version 1; the first saves; the second's save is refused.
    let mut first = helper_def();
    first["name"] = json!("Helper (first admin)");
    let (s, tag2, b) = tagged_call(&hub, "PUT", &path, Some(&tag), Some(first.clone()));
    assert_eq!(s, 200, "{b}");
    let tag2 = tag2.expect("an ETag on PUT");
    assert_ne!(tag2, tag);
    let mut second = helper_def();
    second["name"] = json!("Helper (second admin)");
    let (s, _, b) = tagged_call(&hub, "PUT", &path, Some(&tag), Some(second.clone()));
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (412, Some("precondition_failed")),
        "{b}"
    );
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{b}"
    );
    assert_eq!(
        listed(&hub, &a)["name"],
        "Helper (first admin)",
        "nothing changed"
    );
    // Any of several tags, and `*`, match; a weak tag never does (strong comparison).
    let (s, _, _) = tagged_call(
        &hub,
        "PUT",
        &path,
        Some(&format!("\"x\", {tag2}")),
        Some(first.clone()),
    );
    assert_eq!(s, 200);
    let (s, _, _) = tagged_call(
        &hub,
        "PUT",
        &path,
        Some(&format!("W/{tag2}")),
        Some(first.clone()),
    );
    assert_eq!(s, 412);
    let (s, _, b) = tagged_call(&hub, "PUT", &path, Some("nonsense"), Some(first.clone()));
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("invalid")),
        "{b}"
    );
    let (s, tag3, _) = tagged_call(&hub, "PUT", &path, Some("*"), Some(first.clone()));
    assert_eq!(s, 200);
    let tag3 = tag3.unwrap();
    assert_eq!(tag3, tag2, "the same definition, the same version");
    // Without If-Match: today's behaviour, last write wins.
    let (s, tag4, b) = tagged_call(&hub, "PUT", &path, None, Some(second.clone()));
    assert_eq!(
        (s, b["name"].as_str()),
        (200, Some("Helper (second admin)"))
    );
    let tag4 = tag4.unwrap();
    // 404 before 412: an unknown assistant is unknown whatever the tag.
    let (s, _, _) = tagged_call(
        &hub,
        "PUT",
        "/api/assistants/nope",
        Some(&tag4),
        Some(first.clone()),
    );
    assert_eq!(s, 404);
    // 400 (the body) before 412, as §3 orders the body first.
    let (s, _, _) = tagged_call(&hub, "PUT", &path, Some(&tag), Some(json!({"name": "x"})));
    assert_eq!(s, 400);

    // Publish and unpublish: refused from a stale copy, tagged when done.
    let publish_path = format!("{path}/publish");
    let (s, _, _) = tagged_call(
        &hub,
        "POST",
        &publish_path,
        Some(&tag3),
        Some(json!({"channels": ["web"]})),
    );
    assert_eq!(s, 412);
    assert_eq!(listed(&hub, &a)["status"], "draft");
    let (s, tag5, b) = tagged_call(
        &hub,
        "POST",
        &publish_path,
        Some(&tag4),
        Some(json!({"channels": ["web"]})),
    );
    assert_eq!((s, b["status"].as_str()), (200, Some("published")), "{b}");
    let tag5 = tag5.unwrap();
    assert_ne!(tag5, tag4, "a publish is a change");
    // Another assistant taking the channel over changes this one too.
    let other = id(&create(
        &hub,
        json!({"name": "Other", "rules": [], "transfer_keywords": []}),
    ));
    publish(&hub, &other, json!(["web"]));
    let (_, tag6, b) = tagged_call(&hub, "GET", &path, None, None);
    assert_eq!(b["status"], "draft");
    let tag6 = tag6.unwrap();
    assert_ne!(tag6, tag5);
    let unpublish_path = format!("{path}/unpublish");
    let (s, _, _) = tagged_call(&hub, "POST", &unpublish_path, Some(&tag5), Some(json!({})));
    assert_eq!(s, 412);
    let (s, tag7, _) = tagged_call(&hub, "POST", &unpublish_path, Some(&tag6), Some(json!({})));
    assert_eq!(s, 200);
    assert_eq!(
        tag7.as_deref(),
        Some(tag6.as_str()),
        "nothing to unpublish: unchanged"
    );

    // Delete: refused from a stale copy, done from the current one.
    let (s, _, b) = tagged_call(&hub, "DELETE", &path, Some(&tag5), None);
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (412, Some("precondition_failed"))
    );
    assert_eq!(list(&hub).len(), 2);
    let (s, _, _) = tagged_call(&hub, "DELETE", &path, Some(&tag6), None);
    assert_eq!(s, 204);
    assert_eq!(list(&hub).len(), 1);
}

/// `GET /api/stats?automation=true` (an extension).
fn automation(hub: &Hub) -> Value {
    let (s, b) = hub.get("/api/stats?automation=true", ADMIN);
    assert_eq!(s, 200, "{b}");
    b["automation"].clone()
}

fn counts(answered: i64, alone: i64, percent: Value) -> Value {
    json!({"bot_conversations": answered, "fully_automated": alone, "automated_percent": percent})
}

#[test]
fn the_stats_count_the_conversations_a_bot_answered_alone() {
    let (mut hub, _) = bot_hub();
    let (_, ann) = hub.agent("Ann", "agent");
    assert_eq!(automation(&hub), counts(0, 0, Value::Null));
    let (_, plain) = hub.get("/api/stats", ADMIN);
    assert!(plain.get("automation").is_none(), "{plain}");

    // Answered by a rule: the bot alone.
    let a = hub.say(&hub.contact().1, "what is the price?");
    assert_eq!(automation(&hub), counts(1, 1, json!(100.0)));
    // Handed over (the bot said something, then a human is needed).
    hub.say(&hub.contact().1, "a human please");
    assert_eq!(automation(&hub), counts(2, 1, json!(50.0)));
    // An agent replies after the bot: no longer the bot alone.
    let c = hub.say(&hub.contact().1, "price of the lamp?");
    assert_eq!(automation(&hub), counts(3, 2, json!(66.7)));
    let (s, b) = hub.post(
        &format!("/api/conversations/{}/replies", conv_of(&c)),
        &ann,
        json!({"text": "It is 89 euros."}),
    );
    assert_eq!(s, 201, "{b}");
    assert_eq!(automation(&hub), counts(3, 1, json!(33.3)));
    // A human conversation with no bot counts nowhere (another channel, no assistant).
    let (_, k) = hub.contact_on("phone");
    hub.say(&k, "hello?");
    assert_eq!(automation(&hub), counts(3, 1, json!(33.3)));
    // Spam leaves the counts, and comes back to them.
    let spam = |on: bool| {
        let (s, b) = hub.post(
            &format!("/api/conversations/{}/spam", conv_of(&a)),
            &ann,
            json!({"spam": on}),
        );
        assert_eq!(s, 200, "{b}");
    };
    spam(true);
    assert_eq!(automation(&hub), counts(2, 0, json!(0.0)));
    spam(false);
    assert_eq!(automation(&hub), counts(3, 1, json!(33.3)));
    // Kept across a crash; the conversation still knows the bot answered it alone, so an
    // assignment afterwards takes it out.
    hub.kill9();
    hub.restart();
    assert_eq!(automation(&hub), counts(3, 1, json!(33.3)));
    let (s, b) = hub.act(&ann, &id(&a), "reopen", json!({}));
    assert_eq!(s, 200, "{b}");
    let (s, b) = hub.act(&ann, &id(&a), "assign", json!({}));
    assert_eq!(s, 200, "{b}");
    assert_eq!(automation(&hub), counts(3, 0, json!(0.0)));
}
