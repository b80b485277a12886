//! Automation (extensions): `GET`/`PATCH /api/automation`; automatic assignment, with
//! agents' `capacity` (`PATCH /api/agents/{id}`), giving pending messages to online
//! agents; idle conversations closed by the hub.

mod common;

use common::{assert_error, conv_of, id, metric, Hub, Socket, ADMIN};
use serde_json::{json, Value};

/// Creates an agent with a capacity; returns (id, token).
fn agent_with(hub: &Hub, name: &str, role: &str, capacity: Option<u32>) -> (String, String) {
    let (s, b) = hub.post(
        "/api/agents",
        ADMIN,
        json!({"name": name, "role": role, "capacity": capacity}),
    );
    assert_eq!(s, 201, "{b}");
    (id(&b), b["token"].as_str().unwrap().to_string())
}

fn automation(hub: &Hub, patch: Value) -> Value {
    let (s, b) = hub.call("PATCH", "/api/automation", Some(ADMIN), Some(patch));
    assert_eq!(s, 200, "{b}");
    b
}

/// The automation settings as an agent reads them (`GET /api/automation`, 200).
fn settings(hub: &Hub, token: &str) -> Value {
    let (s, b) = hub.get("/api/automation", token);
    assert_eq!(s, 200, "{b}");
    b
}

fn routing(hub: &Hub, on: bool) {
    let b = automation(hub, json!({ "auto_assign": on }));
    assert_eq!(b["auto_assign"], on, "{b}");
}

fn capacity(hub: &Hub, agent: &str, capacity: Value) -> Value {
    let (s, b) = hub.call(
        "PATCH",
        &format!("/api/agents/{agent}"),
        Some(ADMIN),
        Some(json!({ "capacity": capacity })),
    );
    assert_eq!(s, 200, "{b}");
    b
}

/// `PATCH /api/agents/{id}` with a raw body.
fn patch_agent(hub: &Hub, token: &str, agent: &str, body: &str) -> (u16, Value) {
    hub.call_raw(
        "PATCH",
        &format!("/api/agents/{agent}"),
        Some(token),
        Some(body.to_string()),
    )
}

/// Waits until a console has seen each of `messages` assigned automatically (in any
/// order: a sweep gives a page out at once), each to `agent`.
fn assigned_all(console: &mut Socket, messages: &[&Value], agent: &str) {
    let mut waiting: std::collections::HashSet<String> = messages.iter().map(|m| id(m)).collect();
    while !waiting.is_empty() {
        let e = console.recv_event("message.status_changed", |e| {
            e["data"]["to"] == "assigned" && e["data"]["by"] == "system"
        });
        assert_eq!(e["data"]["assignee"], json!(agent), "{e}");
        assert!(
            waiting.remove(e["data"]["message_id"].as_str().unwrap()),
            "{e}"
        );
    }
}

/// The next automatic assignment (`to: assigned`, `by: system`) of `message` a console
/// sees.
fn assigned(console: &mut Socket, message: &str) -> Value {
    console.recv_event("message.status_changed", |e| {
        let d = &e["data"];
        d["message_id"] == message && d["to"] == "assigned" && d["by"] == "system"
    })
}

/// The message as it stands after a comment in its conversation has gone round (posted,
/// then seen by `console`): what the hub was prompted to do with the message before
/// (give it out, hand it back) has had the time of a commit and its publication.
fn settled(hub: &Hub, token: &str, console: &mut Socket, m: &Value) -> Value {
    let (s, b) = hub.post(
        &format!("/api/conversations/{}/comments", conv_of(m)),
        token,
        json!({"text": "a note"}),
    );
    assert_eq!(s, 201, "{b}");
    console.recv_event("comment.created", |_| true);
    hub.message(token, &id(m))
}

#[test]
fn pending_messages_go_to_online_agents_within_their_capacity() {
    let hub = Hub::start();
    let (ann, ann_t) = agent_with(&hub, "Ann", "agent", Some(1));
    let (bob, bob_t) = agent_with(&hub, "Bob", "agent", Some(2));
    // A supervisor who watches and is never given conversations (capacity 0).
    let (_, sue_t) = agent_with(&hub, "Sue", "supervisor", Some(0));
    let (mut watch, _) = hub.console(&sue_t, None);
    let (mut ann_console, _) = hub.console(&ann_t, None);
    let (_bob_console, _) = hub.console(&bob_t, None);
    // An admin online with no capacity is never given conversations.
    let (_admin_console, _) = hub.console(ADMIN, None);

    // Off by default: a message stays pending, with agents online.
    assert_eq!(
        settings(&hub, &ann_t),
        json!({"auto_assign": false, "reassign_offline": false, "auto_close_seconds": null})
    );
    let (_, k0) = hub.contact();
    let m0 = hub.say(&k0, "before routing");
    assert_eq!(settled(&hub, &sue_t, &mut watch, &m0)["status"], "pending");
    let (s, b) = hub.act(&sue_t, &id(&m0), "archive", json!({}));
    assert_eq!(s, 409, "{b}"); // still pending: nobody's to archive
    let (s, b) = hub.act(&sue_t, &id(&m0), "assign", json!({"agent_id": ann}));
    assert_eq!(s, 200, "{b}");
    act_reply(&hub, &ann_t, &conv_of(&m0));

    routing(&hub, true);
    assert_eq!(
        settings(&hub, &bob_t),
        json!({"auto_assign": true, "reassign_offline": false, "auto_close_seconds": null})
    );

    // The first customer goes to one of the two (nobody holds anything).
    let (_, k1) = hub.contact();
    let m1 = hub.say(&k1, "hello");
    let e1 = assigned(&mut watch, &id(&m1));
    assert_eq!(e1["data"]["by"], "system");
    assert_eq!(e1["data"]["from"], "pending");
    let first = e1["data"]["assignee"].as_str().unwrap().to_string();
    assert!(first == ann || first == bob, "{e1}");
    let owner = watch.recv_event("conversation.owner", |e| {
        e["conversation_id"] == m1["conversation_id"]
    });
    assert_eq!(owner["data"], json!({"owner": first, "by": "system"}));

    // The same customer again: the same agent (continuity), whatever their capacity.
    let m1b = hub.say(&k1, "are you there?");
    let e = assigned(&mut watch, &id(&m1b));
    assert_eq!(e["data"]["assignee"], json!(first));

    // A second customer goes to the one with fewer conversations.
    let (_, k2) = hub.contact();
    let m2 = hub.say(&k2, "hi");
    let second = assigned(&mut watch, &id(&m2))["data"]["assignee"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(second, first);

    // A third: Ann is full (capacity 1), so Bob, whichever of the two he had.
    let (_, k3) = hub.contact();
    let m3 = hub.say(&k3, "hey");
    assert_eq!(
        assigned(&mut watch, &id(&m3))["data"]["assignee"],
        json!(bob)
    );

    // A fourth: everyone is full; it waits in Pending until Ann answers hers.
    let (_, k4) = hub.contact();
    let m4 = hub.say(&k4, "anyone?");
    let ann_conv = if first == ann {
        conv_of(&m1)
    } else {
        conv_of(&m2)
    };
    let reply = act_reply(&hub, &ann_t, &ann_conv);
    let e4 = assigned(&mut watch, &id(&m4));
    assert_eq!(e4["data"]["assignee"], json!(ann));
    assert!(
        e4["seq"].as_u64() > reply["seq"].as_u64(),
        "assigned before Ann had room: {e4} {reply}"
    );
    // Ann's console hears it as every console does.
    assigned(&mut ann_console, &id(&m4));

    // Away agents are passed over: Bob, away, gets room; Ann is full; a fifth waits
    // until Ann gets room too, and goes to her.
    bob_away(&hub, &bob_t, &bob, &mut watch);
    capacity(&hub, &bob, json!(5));
    let (_, k5) = hub.contact();
    let m5 = hub.say(&k5, "fifth");
    let b = capacity(&hub, &ann, json!(2));
    assert_eq!(b["capacity"], 2);
    assert_eq!(b["presence"], "online");
    assert_eq!(
        assigned(&mut watch, &id(&m5))["data"]["assignee"],
        json!(ann)
    );

    // Ann hands the fifth back: it is not given to her again (though she owns its
    // conversation and has room); it waits until Bob is online again, and goes to him.
    let (s, b) = hub.act(&ann_t, &id(&m5), "unassign", json!({}));
    assert_eq!((s, b["message"]["status"].clone()), (200, json!("pending")));
    let (mut bob_again, _) = hub.console(&bob_t, None);
    bob_again.send(json!({"type": "presence", "status": "online"}));
    let online = watch.recv_event("presence.changed", |e| {
        e["data"] == json!({"agent_id": bob, "presence": "online"})
    });
    let e5 = assigned(&mut watch, &id(&m5));
    assert_eq!(e5["data"]["assignee"], json!(bob), "{e5}");
    assert!(e5["seq"].as_u64() > online["seq"].as_u64(), "{e5} {online}");

    // Every automatic assignment was counted: m1, m1b, m2, m3, m4, m5 twice (the router
    // counts once its whole page is answered, which may be after the events are out).
    common::eventually("seven automatic assignments counted", || {
        (metric(&hub.metrics(), "hub_auto_assignments_total") == 7).then_some(())
    });
    let (_, inbox) = hub.get("/api/inbox?folder=pending", &sue_t);
    assert_eq!(inbox["counts"]["pending"], 0, "{inbox}");
}

/// Bob's console says `away`; waits until everyone sees it.
fn bob_away(hub: &Hub, bob_t: &str, bob: &str, watch: &mut Socket) {
    let (mut c, _) = hub.console(bob_t, None);
    c.send(json!({"type": "presence", "status": "away"}));
    watch.recv_event("presence.changed", |e| {
        e["data"] == json!({"agent_id": bob, "presence": "away"})
    });
}

/// An agent replies in a conversation; returns the `reply`.
fn act_reply(hub: &Hub, token: &str, conv: &str) -> Value {
    let (s, b) = hub.post(
        &format!("/api/conversations/{conv}/replies"),
        token,
        json!({"text": "done"}),
    );
    assert_eq!(s, 201, "{b}");
    b["reply"].clone()
}

#[test]
fn routing_and_capacity_are_checked_and_survive_a_crash() {
    let mut hub = Hub::start();
    let (ann, ann_t) = agent_with(&hub, "Ann", "agent", None);
    let (_, k) = hub.contact();

    // Who may do what.
    assert_error(
        hub.call("GET", "/api/automation", None, None),
        401,
        "unauthorized",
        "no token",
    );
    assert_error(
        hub.get("/api/automation", &k),
        403,
        "forbidden",
        "a contact",
    );
    let put = |token: &str, body: &str| {
        hub.call_raw(
            "PATCH",
            "/api/automation",
            Some(token),
            Some(body.to_string()),
        )
    };
    assert_error(
        put(&ann_t, r#"{"auto_assign":true}"#),
        403,
        "forbidden",
        "an agent",
    );
    for bad in [
        r#"{"auto_assign":"yes"}"#,
        r#"{"auto_assign":true,"mode":"round_robin"}"#,
        r#"{"auto_close_seconds":0}"#,
        r#"{"auto_close_seconds":"3600"}"#,
        r#"{"reassign_offline":1}"#,
        "[true]",
    ] {
        assert_error(put(ADMIN, bad), 400, "invalid", bad);
    }
    // Nothing was changed by the refusals; an empty change answers what stands.
    let (s, b) = put(ADMIN, "{}");
    assert_eq!(
        (s, b),
        (
            200,
            json!({"auto_assign": false, "reassign_offline": false, "auto_close_seconds": null})
        )
    );
    let patch = |token: &str, agent: &str, body: &str| patch_agent(&hub, token, agent, body);
    assert_error(
        patch(&ann_t, &ann, r#"{"capacity":3}"#),
        403,
        "forbidden",
        "an agent",
    );
    for bad in [
        "{}",
        r#"{"capacity":-1}"#,
        r#"{"capacity":1.5}"#,
        r#"{"capacity":"3"}"#,
        r#"{"capacity":3,"name":"Anna"}"#,
    ] {
        assert_error(patch(ADMIN, &ann, bad), 400, "invalid", bad);
    }
    assert_error(
        patch(ADMIN, "a_nobody", r#"{"capacity":3}"#),
        404,
        "not_found",
        "unknown agent",
    );
    let (s, b) = patch(ADMIN, &ann, r#"{"capacity":3}"#);
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b,
        json!({"id": ann, "name": "Ann", "role": "agent", "capacity": 3, "presence": "offline"})
    );
    let (s, b) = patch(ADMIN, &ann, r#"{"capacity":null}"#);
    assert_eq!((s, b["capacity"].clone()), (200, Value::Null));
    patch(ADMIN, &ann, r#"{"capacity":4}"#);
    // The admin's own capacity and channels are kept across starts (HUB_ADMIN_TOKEN
    // rewrites its record), as an agent's are.
    let (s, _) = patch(ADMIN, "admin", r#"{"capacity":0,"channels":["web"]}"#);
    assert_eq!(s, 200);
    let (s, _) = patch(ADMIN, &ann, r#"{"channels":["web","fr"]}"#);
    assert_eq!(s, 200);

    // On, then a crash: a message written while nobody was online is given to Ann once
    // her console connects after the restart.
    routing(&hub, true);
    automation(&hub, json!({"reassign_offline": true}));
    let m = hub.say(&k, "written while nobody is online");
    assert_eq!(hub.message(&ann_t, &id(&m))["status"], "pending");
    // A message assigned by hand to Ann while she is offline stays hers (until she next
    // goes offline), across a start too.
    let (_, k3) = hub.contact();
    let m3 = hub.say(&k3, "assigned to someone offline");
    let (s, b) = hub.act(ADMIN, &id(&m3), "assign", json!({"agent_id": ann}));
    assert_eq!((s, b["message"]["assignee"].clone()), (200, json!(ann)));
    hub.kill9();
    hub.restart();
    assert_eq!(
        settings(&hub, &ann_t),
        json!({"auto_assign": true, "reassign_offline": true, "auto_close_seconds": null})
    );
    let (_, agents) = hub.get("/api/agents", &ann_t);
    let field = |who: &str, name: &str| {
        agents["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == who)
            .unwrap()[name]
            .clone()
    };
    assert_eq!(
        (field(&ann, "capacity"), field("admin", "capacity")),
        (json!(4), json!(0))
    );
    assert_eq!(
        (field(&ann, "channels"), field("admin", "channels")),
        (json!(["web", "fr"]), json!(["web"]))
    );
    // Once she is online, what waits is given to her; what she was given by hand while
    // offline is still hers.
    let (mut console, _) = hub.console(&ann_t, None);
    assigned_all(&mut console, &[&m], &ann);
    let held = settled(&hub, &ann_t, &mut console, &m3);
    assert_eq!(
        (held["status"].clone(), held["assignee"].clone()),
        (json!("assigned"), json!(ann)),
        "{held}"
    );

    // Turned off, the hub gives nothing out; a message stays pending.
    routing(&hub, false);
    let (_, k2) = hub.contact();
    let m2 = hub.say(&k2, "after routing is off");
    assert_eq!(
        settled(&hub, &ann_t, &mut console, &m2)["status"],
        "pending"
    );
}

#[test]
fn a_bot_transfer_and_a_help_answer_without_the_requester_reach_an_online_agent() {
    let hub = Hub::start();
    let (ann, ann_t) = agent_with(&hub, "Ann", "agent", None);
    let (bob, bob_t) = agent_with(&hub, "Bob", "agent", None);
    let (_, sue_t) = agent_with(&hub, "Sue", "supervisor", Some(0));
    let (s, a) = hub.post(
        "/api/assistants",
        ADMIN,
        json!({"name": "Helper", "rules": [{"match": "hours", "reply": "9 to 5"}],
               "transfer_keywords": ["human"], "transfer_reply": "Passing you on"}),
    );
    assert_eq!(s, 201, "{a}");
    let (s, b) = hub.post(
        &format!("/api/assistants/{}/publish", id(&a)),
        ADMIN,
        json!({"channels": ["web"]}),
    );
    assert_eq!(s, 200, "{b}");
    routing(&hub, true);
    let (mut watch, _) = hub.console(&sue_t, None);
    let (ann_console, _) = hub.console(&ann_t, None);

    // The bot answers what it can: nothing for the router.
    let (_, k) = hub.contact();
    let m1 = hub.say(&k, "your hours?");
    let answered = watch.recv_event("message.status_changed", |e| {
        e["data"]["message_id"] == m1["id"] && e["data"]["to"] == "answered"
    });
    assert_eq!(answered["data"]["by"], format!("bot:{}", id(&a)));

    // A transfer to a human: answered, then pending (the bot), then Ann (the hub).
    let m2 = hub.say(&k, "a human please");
    let back = watch.recv_event("message.status_changed", |e| {
        e["data"]["message_id"] == m2["id"] && e["data"]["to"] == "pending"
    });
    assert_eq!(back["data"]["by"], format!("bot:{}", id(&a)));
    let e = assigned(&mut watch, &id(&m2));
    assert_eq!(
        (e["data"]["assignee"].clone(), e["data"]["by"].clone()),
        (json!(ann), json!("system"))
    );
    assert!(e["seq"].as_u64() > back["seq"].as_u64());

    // Ann asks for help, then leaves; Sue answers: Ann is not present, so the message is
    // pending again (§6.1), and goes to Bob, online now, rather than waiting for Ann.
    act_reply_help(&hub, &ann_t, &id(&m2));
    drop(ann_console);
    watch.recv_event("presence.changed", |e| {
        e["data"] == json!({"agent_id": ann, "presence": "offline"})
    });
    let (_bob_console, _) = hub.console(&bob_t, None);
    let (s, b) = hub.act(&sue_t, &id(&m2), "assign", json!({}));
    assert_eq!(s, 200, "{b}");
    let (s, b) = hub.act(&sue_t, &id(&m2), "answer-help", json!({"answer": "yes"}));
    assert_eq!(
        (s, b["message"]["status"].clone()),
        (200, json!("pending")),
        "{b}"
    );
    let e = assigned(&mut watch, &id(&m2));
    assert_eq!(
        (e["data"]["assignee"].clone(), e["data"]["by"].clone()),
        (json!(bob), json!("system"))
    );
}

/// The assignee asks for help on `message`.
fn act_reply_help(hub: &Hub, token: &str, message: &str) {
    let (s, b) = hub.act(
        token,
        message,
        "request-help",
        json!({"question": "refund?"}),
    );
    assert_eq!(
        (s, b["message"]["status"].clone()),
        (200, json!("help_requested")),
        "{b}"
    );
}

/// An agent replies in the conversation of `message`; returns the conversation id.
fn answered(hub: &Hub, token: &str, message: &Value) -> String {
    let conv = conv_of(message);
    act_reply(hub, token, &conv);
    conv
}

fn state_of(hub: &Hub, token: &str, conv: &str) -> Value {
    let (s, b) = hub.get(&format!("/api/conversations/{conv}"), token);
    assert_eq!(s, 200, "{b}");
    b["conversation"]["state"].clone()
}

#[test]
fn idle_conversations_are_closed_once_nothing_waits_for_the_team() {
    let mut hub = Hub::start();
    let (_, ann_t) = agent_with(&hub, "Ann", "agent", None);
    let (mut watch, _) = hub.console(&ann_t, None);
    // B waits for an answer (older than A); C was answered, then marked spam.
    let (_, kb) = hub.contact();
    let b = conv_of(&hub.say(&kb, "still waiting"));
    let (_, kc) = hub.contact();
    let c = answered(&hub, &ann_t, &hub.say(&kc, "buy cheap watches"));
    let (s, r) = hub.post(
        &format!("/api/conversations/{c}/spam"),
        &ann_t,
        json!({"spam": true}),
    );
    assert_eq!(s, 200, "{r}");
    // A was answered, and the customer said nothing more.
    let (_, ka) = hub.contact();
    let a = answered(&hub, &ann_t, &hub.say(&ka, "where is my parcel?"));

    let b_json = automation(&hub, json!({"auto_close_seconds": 1}));
    assert_eq!(
        b_json,
        json!({"auto_assign": false, "reassign_offline": false, "auto_close_seconds": 1})
    );
    let closed = watch.recv_event("conversation.closed", |e| e["conversation_id"] == a);
    assert_eq!(
        closed["data"],
        json!({"by": "system", "notes": "Closed automatically after 1 second without activity"})
    );
    // §6.2's close: the bot is on again (Ann's reply had turned it off).
    let bot = watch.recv_event("conversation.bot", |e| e["conversation_id"] == a);
    assert_eq!(bot["data"], json!({"active": true, "by": "system"}));

    // A conversation answered later is closed by a later scan: by then the scan that
    // closed A had weighed B and C, and left them open.
    let (_, kd) = hub.contact();
    let d = answered(&hub, &ann_t, &hub.say(&kd, "and my refund?"));
    watch.recv_event("conversation.closed", |e| e["conversation_id"] == d);
    assert_eq!(state_of(&hub, &ann_t, &b), "open");
    assert_eq!(state_of(&hub, &ann_t, &c), "open");
    assert_eq!(metric(&hub.metrics(), "hub_auto_closes_total"), 2);

    // The customer of A writes again: §6.2 reopens it, and it waits for the team.
    hub.say(&ka, "it never came");
    let (_, b2) = hub.get(&format!("/api/conversations/{a}"), &ann_t);
    assert_eq!(b2["conversation"]["state"], "open");

    // The setting survives a crash, and closing goes on after it.
    hub.kill9();
    hub.restart();
    assert_eq!(
        settings(&hub, &ann_t),
        json!({"auto_assign": false, "reassign_offline": false, "auto_close_seconds": 1})
    );
    let (mut watch, _) = hub.console(&ann_t, None);
    let (_, ke) = hub.contact();
    let e = answered(&hub, &ann_t, &hub.say(&ke, "one more thing"));
    watch.recv_event("conversation.closed", |ev| ev["conversation_id"] == e);
    assert_eq!(
        state_of(&hub, &ann_t, &a),
        "open",
        "A has a message waiting"
    );

    // Off again: `null`.
    let off = automation(&hub, json!({"auto_close_seconds": null}));
    assert_eq!(off["auto_close_seconds"], Value::Null);
}

#[test]
fn a_long_queue_nobody_can_take_does_not_hide_newer_messages() {
    let hub = Hub::start();
    let (ann, ann_t) = agent_with(&hub, "Ann", "agent", None);
    // More pending messages than a page of the router's reads, all in ended sessions
    // (left to people), and older than the one that matters.
    for i in 0..130 {
        let (_, k) = hub.contact();
        let conv = conv_of(&hub.say(&k, &format!("old question {i}")));
        let (s, b) = hub.post(
            &format!("/api/conversations/{conv}/end-session"),
            ADMIN,
            json!({}),
        );
        assert_eq!(s, 200, "{b}");
    }
    routing(&hub, true);
    let (mut console, _) = hub.console(&ann_t, None);
    let (_, k) = hub.contact();
    let m = hub.say(&k, "a new question");
    let e = assigned(&mut console, &id(&m));
    assert_eq!(e["data"]["assignee"], json!(ann));
    let (_, inbox) = hub.get("/api/inbox?folder=pending&limit=1", &ann_t);
    assert_eq!(
        inbox["counts"]["pending"], 130,
        "the ended ones wait for people"
    );
}

/// An agent's workload as `GET /api/agents?workload=true` reports it.
fn workload_of(hub: &Hub, agent: &str) -> Value {
    let (s, b) = hub.get("/api/agents?workload=true", ADMIN);
    assert_eq!(s, 200, "{b}");
    b["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == agent)
        .unwrap_or_else(|| panic!("{agent} not listed: {b}"))["workload"]
        .clone()
}

#[test]
fn an_ended_session_frees_its_agents_place() {
    let hub = Hub::start();
    let (ann, ann_t) = agent_with(&hub, "Ann", "agent", Some(1));
    let (mut ann_console, _) = hub.console(&ann_t, None);
    routing(&hub, true);

    let (_, k1) = hub.contact();
    let m1 = hub.say(&k1, "my parcel is late");
    assigned(&mut ann_console, &id(&m1));
    assert_eq!(workload_of(&hub, &ann)["conversations"], 1);

    // Ann is full: a second customer waits.
    let (_, k2) = hub.contact();
    let m2 = hub.say(&k2, "hello?");
    assert_eq!(
        settled(&hub, &ann_t, &mut ann_console, &m2)["status"],
        "pending"
    );

    // Ann ends the first session (its message stays hers, §6.2): her place is free, as
    // Zendesk frees an agent's messaging capacity, and the second customer is hers.
    let (s, b) = hub.post(
        &format!("/api/conversations/{}/end-session", conv_of(&m1)),
        &ann_t,
        json!({"reason": "moved to email"}),
    );
    assert_eq!(s, 200, "{b}");
    let ended = ann_console.recv_event("session.ended", |e| {
        e["conversation_id"] == m1["conversation_id"]
    });
    let e2 = assigned(&mut ann_console, &id(&m2));
    assert_eq!(e2["data"]["assignee"], json!(ann), "{e2}");
    assert!(e2["seq"].as_u64() > ended["seq"].as_u64(), "{e2} {ended}");
    assert_eq!(hub.message(&ann_t, &id(&m1))["status"], "assigned");
    let w = workload_of(&hub, &ann);
    assert_eq!(w["conversations"], 1, "{w}");
    assert_eq!(w["assigned"], 2, "{w}");
}

/// The next `message.status_changed` of `message` a console sees.
fn status_event(console: &mut Socket, message: &str) -> Value {
    console.recv_event("message.status_changed", |e| {
        e["data"]["message_id"] == message
    })
}

#[test]
fn an_agent_gone_offline_hands_back_what_they_hold() {
    let hub = Hub::start(); // presence grace 0: offline as the last console closes
    let (ann, ann_t) = agent_with(&hub, "Ann", "agent", None);
    let (bob, bob_t) = agent_with(&hub, "Bob", "agent", None);
    let (_, sue_t) = agent_with(&hub, "Sue", "supervisor", Some(0));
    let (mut watch, _) = hub.console(&sue_t, None);
    let b = automation(&hub, json!({"reassign_offline": true}));
    assert_eq!(
        b,
        json!({"auto_assign": false, "reassign_offline": true, "auto_close_seconds": null})
    );

    let (ann_console, _) = hub.console(&ann_t, None);
    let take = |text: &str| {
        let (_, k) = hub.contact();
        let m = hub.say(&k, text);
        let (s, b) = hub.act(&ann_t, &id(&m), "assign", json!({}));
        assert_eq!(s, 200, "{b}");
        m
    };
    // Ann holds: one assigned, one on hold (its timer decides), one whose session she
    // ended (nobody could answer it), one answered by a supervisor after her question.
    let assigned_m = take("where is my order?");
    let held = take("call me tomorrow");
    let (s, b) = hub.act(&ann_t, &id(&held), "hold", json!({"for_seconds": 3600}));
    assert_eq!(s, 200, "{b}");
    let ended = take("thanks, bye");
    let (s, b) = hub.post(
        &format!("/api/conversations/{}/end-session", conv_of(&ended)),
        &ann_t,
        json!({}),
    );
    assert_eq!(s, 200, "{b}");
    let helped = take("can I get a refund?");
    let (s, b) = hub.act(
        &ann_t,
        &id(&helped),
        "request-help",
        json!({"question": "refund policy?"}),
    );
    assert_eq!(s, 200, "{b}");
    let (s, b) = hub.act(&sue_t, &id(&helped), "assign", json!({}));
    assert_eq!(s, 200, "{b}");
    let (s, b) = hub.act(
        &sue_t,
        &id(&helped),
        "answer-help",
        json!({"answer": "yes"}),
    );
    assert_eq!(
        (
            s,
            b["message"]["status"].clone(),
            b["message"]["assignee"].clone()
        ),
        (200, json!("help_answered"), json!(ann)),
        "{b}"
    );

    // Ann closes her console: once everyone sees her offline, the hub hands back the
    // assigned and the help-answered message, by `system`.
    drop(ann_console);
    let offline = watch.recv_event("presence.changed", |e| {
        e["data"] == json!({"agent_id": ann, "presence": "offline"})
    });
    // (handed back at once: in either order)
    let mut back = std::collections::HashMap::new();
    while back.len() < 2 {
        let e = watch.recv_event("message.status_changed", |e| e["data"]["to"] == "pending");
        back.insert(e["data"]["message_id"].as_str().unwrap().to_string(), e);
    }
    for (m, from) in [(&assigned_m, "assigned"), (&helped, "help_answered")] {
        let e = &back[&id(m)];
        assert_eq!(
            e["data"],
            json!({"message_id": id(m), "from": from, "to": "pending", "assignee": null, "by": "system", "hold_until": null}),
            "{e}"
        );
        assert!(e["seq"].as_u64() > offline["seq"].as_u64(), "{e} {offline}");
    }
    // The two others stay hers; the metric counts two.
    common::eventually("two messages handed back", || {
        (metric(&hub.metrics(), "hub_offline_releases_total") == 2).then_some(())
    });
    assert_eq!(hub.message(&sue_t, &id(&held))["status"], "on_hold");
    assert_eq!(hub.message(&sue_t, &id(&ended))["status"], "assigned");
    assert_eq!(hub.message(&sue_t, &id(&ended))["assignee"], json!(ann));
    let (_, inbox) = hub.get("/api/inbox?folder=pending", &sue_t);
    assert_eq!(inbox["counts"]["pending"], 2, "{inbox}");
    let h = hub.message(&sue_t, &id(&helped));
    assert_eq!(
        h["help"]["answer"], "yes",
        "the help stays with the message: {h}"
    );

    // With automatic assignment on, they go to Bob, who is online.
    let (_bob_console, _) = hub.console(&bob_t, None);
    routing(&hub, true);
    assigned_all(&mut watch, &[&assigned_m, &helped], &bob);

    // Off: an agent who goes offline keeps what they hold. Turned on again, what the
    // agents offline now hold goes back at once.
    automation(&hub, json!({"reassign_offline": false}));
    let (mut ann_console, _) = hub.console(&ann_t, None);
    watch.recv_event("presence.changed", |e| {
        e["data"] == json!({"agent_id": ann, "presence": "online"})
    });
    let later = {
        let (_, k) = hub.contact();
        let m = hub.say(&k, "hello again");
        assigned(&mut ann_console, &id(&m));
        m
    };
    assert_eq!(hub.message(&sue_t, &id(&later))["assignee"], json!(ann));
    drop(ann_console);
    watch.recv_event("presence.changed", |e| {
        e["data"] == json!({"agent_id": ann, "presence": "offline"})
    });
    assert_eq!(
        settled(&hub, &sue_t, &mut watch, &later)["assignee"],
        json!(ann)
    );
    automation(&hub, json!({"reassign_offline": true}));
    let e = status_event(&mut watch, &id(&later));
    assert_eq!(
        (e["data"]["to"].clone(), e["data"]["by"].clone()),
        (json!("pending"), json!("system"))
    );
    assert_eq!(
        assigned(&mut watch, &id(&later))["data"]["assignee"],
        json!(bob)
    );
}

#[test]
fn a_message_given_by_hand_to_an_offline_agent_stays_theirs() {
    let mut hub = Hub::start(); // presence grace 0: offline as the last console closes
    let (ann, ann_t) = agent_with(&hub, "Ann", "agent", None);
    let (bob, bob_t) = agent_with(&hub, "Bob", "agent", None);
    let (_, sue_t) = agent_with(&hub, "Sue", "supervisor", Some(0));
    let (mut watch, _) = hub.console(&sue_t, None);
    let ann_is = |watch: &mut Socket, presence: &str| {
        watch.recv_event("presence.changed", |e| {
            e["data"] == json!({"agent_id": ann, "presence": presence})
        })
    };

    // Ann takes a message, then leaves while agents keep what they hold.
    let (ann_console, _) = hub.console(&ann_t, None);
    ann_is(&mut watch, "online");
    let held = hub.say(&hub.contact().1, "where is my parcel?");
    common::act_ok(&hub, &ann_t, &id(&held), "assign", json!({}));
    drop(ann_console);
    ann_is(&mut watch, "offline");
    // Sue gives her another one while she is away: on purpose (Ann's tomorrow's work).
    let given = hub.say(&hub.contact().1, "about my contract renewal");
    let m = common::act_ok(
        &hub,
        &sue_t,
        &id(&given),
        "assign",
        json!({"agent_id": ann}),
    );
    assert_eq!(m["assignee"], json!(ann), "{m}");

    // Turned on: what Ann held when she left goes back; what she was given since stays.
    automation(&hub, json!({"reassign_offline": true}));
    let e = status_event(&mut watch, &id(&held));
    assert_eq!(
        (e["data"]["to"].clone(), e["data"]["by"].clone()),
        (json!("pending"), json!("system")),
        "{e}"
    );
    // (the metric is counted once every answer of the hand-back is in)
    common::eventually("one message handed back", || {
        (metric(&hub.metrics(), "hub_offline_releases_total") == 1).then_some(())
    });
    let g = hub.message(&sue_t, &id(&given));
    assert_eq!(
        (g["status"].clone(), g["assignee"].clone()),
        (json!("assigned"), json!(ann)),
        "{g}"
    );

    // A crash and a start: the hand-backs the start runs (for those a crash cut short)
    // leave it to her too. They run before the router's first sweep, so once Bob has
    // been given what waits, they are done.
    routing(&hub, true);
    hub.kill9();
    hub.restart();
    let (mut watch, _) = hub.console(&sue_t, None);
    let (_bob_console, _) = hub.console(&bob_t, None);
    assigned_all(&mut watch, &[&held], &bob);
    let g = hub.message(&sue_t, &id(&given));
    assert_eq!(
        (g["status"].clone(), g["assignee"].clone()),
        (json!("assigned"), json!(ann)),
        "{g}"
    );

    // When Ann next goes offline, she holds it then: it goes back, to Bob.
    let (ann_console, _) = hub.console(&ann_t, None);
    ann_is(&mut watch, "online");
    drop(ann_console);
    ann_is(&mut watch, "offline");
    let e = status_event(&mut watch, &id(&given));
    assert_eq!(
        (e["data"]["to"].clone(), e["data"]["by"].clone()),
        (json!("pending"), json!("system")),
        "{e}"
    );
    assert_eq!(
        assigned(&mut watch, &id(&given))["data"]["assignee"],
        json!(bob)
    );

    // Ann takes one more and leaves, and the hub dies at once: whether her hand-back was
    // committed before the crash or not (then the start runs it, or her offline event
    // comes after it), the message goes back to Pending.
    routing(&hub, false);
    let (ann_console, _) = hub.console(&ann_t, None);
    ann_is(&mut watch, "online");
    let last = hub.say(&hub.contact().1, "one more question");
    common::act_ok(&hub, &ann_t, &id(&last), "assign", json!({}));
    drop(ann_console);
    hub.kill9();
    hub.restart();
    common::eventually("the last message handed back", || {
        (hub.message(&sue_t, &id(&last))["status"] == "pending").then_some(())
    });
}

#[test]
fn agents_are_given_only_the_channels_they_serve() {
    let hub = Hub::start();
    let (ann, ann_t) = agent_with(&hub, "Ann", "agent", None);
    let (bob, bob_t) = agent_with(&hub, "Bob", "agent", None);
    let (_, sue_t) = agent_with(&hub, "Sue", "supervisor", Some(0));

    // Checked: a list of channel names, or null; with capacity, or alone.
    for bad in [
        "{}",
        r#"{"channels":[]}"#,
        r#"{"channels":[""]}"#,
        r#"{"channels":["  "]}"#,
        r#"{"channels":"fr"}"#,
        r#"{"channels":[1]}"#,
        r#"{"channels":["fr"],"name":"x"}"#,
    ] {
        assert_error(patch_agent(&hub, ADMIN, &ann, bad), 400, "invalid", bad);
    }
    let long = format!(r#"{{"channels":["{}"]}}"#, "x".repeat(65));
    assert_error(
        patch_agent(&hub, ADMIN, &ann, &long),
        400,
        "invalid",
        "65 characters",
    );
    let many: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
    let many = json!({ "channels": many }).to_string();
    assert_error(
        patch_agent(&hub, ADMIN, &ann, &many),
        400,
        "invalid",
        "101 channels",
    );
    let (s, b) = patch_agent(&hub, ADMIN, &ann, r#"{"channels":["fr","fr"]}"#);
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b,
        json!({"id": ann, "name": "Ann", "role": "agent", "capacity": null, "channels": ["fr"], "presence": "offline"})
    );
    let (s, b) = patch_agent(&hub, ADMIN, &bob, r#"{"channels":["web"],"capacity":5}"#);
    assert_eq!(
        (s, b["channels"].clone(), b["capacity"].clone()),
        (200, json!(["web"]), json!(5))
    );
    // An agent of every channel lists as ever (no `channels` field).
    let (_, listed) = hub.get("/api/agents", &sue_t);
    let sue = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Sue")
        .unwrap();
    assert!(sue.get("channels").is_none(), "{sue}");

    let (mut watch, _) = hub.console(&sue_t, None);
    let (_ann_console, _) = hub.console(&ann_t, None);
    let (_bob_console, _) = hub.console(&bob_t, None);
    routing(&hub, true);

    // Web customers go to Bob, even when Ann has fewer conversations; French ones to Ann.
    for text in ["hello", "hi there"] {
        let (_, k) = hub.contact_on("web");
        let m = hub.say(&k, text);
        assert_eq!(
            assigned(&mut watch, &id(&m))["data"]["assignee"],
            json!(bob)
        );
    }
    let (_, kf) = hub.contact_on("fr");
    let mf = hub.say(&kf, "bonjour");
    assert_eq!(
        assigned(&mut watch, &id(&mf))["data"]["assignee"],
        json!(ann)
    );

    // A channel nobody serves waits in Pending, until an agent is given it.
    let (_, kd) = hub.contact_on("de");
    let md = hub.say(&kd, "hallo");
    assert_eq!(settled(&hub, &sue_t, &mut watch, &md)["status"], "pending");
    let (s, b) = patch_agent(&hub, ADMIN, &ann, r#"{"channels":["fr","de"]}"#);
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        assigned(&mut watch, &id(&md))["data"]["assignee"],
        json!(ann)
    );

    // Null gives every channel back; the capacity set with it stays.
    let (s, b) = patch_agent(&hub, ADMIN, &bob, r#"{"channels":null}"#);
    assert_eq!(
        (s, b.get("channels"), b["capacity"].clone()),
        (200, None, json!(5))
    );
}

#[test]
fn consoles_that_take_signals_hear_settings_and_agents_change() {
    let hub = Hub::start();
    let (ann, ann_t) = agent_with(&hub, "Ann", "agent", None);
    let mut signals = hub.socket(
        "/ws/agent",
        json!({"type": "hello", "token": ann_t, "typing": true}),
    );
    signals.recv_type("welcome");
    let (mut plain, _) = hub.console(&ann_t, None);

    let now = automation(&hub, json!({"auto_assign": true, "reassign_offline": true}));
    assert_eq!(
        signals.recv_type("automation"),
        json!({"type": "automation", "settings": now})
    );
    let (s, agent) = patch_agent(&hub, ADMIN, &ann, r#"{"capacity":2,"channels":["fr"]}"#);
    assert_eq!(s, 200, "{agent}");
    assert_eq!(
        signals.recv_type("agent"),
        json!({"type": "agent", "agent": agent})
    );
    // A refused change says nothing.
    assert_error(
        patch_agent(&hub, ADMIN, &ann, r#"{"channels":[]}"#),
        400,
        "invalid",
        "no channel",
    );

    // A console that did not ask for signals gets only events: the next frame after
    // the changes is the comment's event (and so is the signalled console's).
    let (_, k) = hub.contact_on("fr");
    let m = hub.say(&k, "bonjour");
    let (s, b) = hub.post(
        &format!("/api/conversations/{}/comments", conv_of(&m)),
        &ann_t,
        json!({"text": "a note"}),
    );
    assert_eq!(s, 201, "{b}");
    loop {
        let f = plain.recv();
        assert_eq!(f["type"], "event", "{f}");
        if f["kind"] == "comment.created" {
            break;
        }
    }
    loop {
        let f = signals.recv();
        assert!(f["type"] == "event" || f["type"] == "typing", "{f}");
        if f["kind"] == "comment.created" {
            break;
        }
    }
}
