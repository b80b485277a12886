//! PROTOCOL §6.1, the reply rule: which customer messages a reply answers, the owner of
//! the conversation, and reply `client_id` idempotency.

mod common;

use common::{act_ok, id, sorted, Hub, Socket, ADMIN};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn reply(hub: &Hub, token: &str, conv: &str, body: Value) -> (u16, Value) {
    hub.post(&format!("/api/conversations/{conv}/replies"), token, body)
}

/// A reply that must be created (201); returns the answer body.
fn replied(hub: &Hub, token: &str, conv: &str, text: &str) -> Value {
    let (s, b) = reply(hub, token, conv, json!({"text": text}));
    assert_eq!(s, 201, "reply: {b}");
    b
}

fn activities(hub: &Hub, conv: &str) -> Vec<Value> {
    let (s, b) = hub.get(&format!("/api/conversations/{conv}/activities"), ADMIN);
    assert_eq!(s, 200, "{b}");
    b["items"].as_array().unwrap().clone()
}

fn conversation(hub: &Hub, conv: &str) -> Value {
    let (s, b) = hub.get(&format!("/api/conversations/{conv}"), ADMIN);
    assert_eq!(s, 200, "{b}");
    b
}

fn ids(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

/// Status events of `msg`, newest first, as (from, to, assignee, seq).
fn status_events(items: &[Value], msg: &str) -> Vec<(String, String, Value, u64)> {
    items
        .iter()
        .filter(|e| e["kind"] == "message.status_changed" && e["data"]["message_id"] == msg)
        .map(|e| {
            (
                e["data"]["from"].as_str().unwrap().to_string(),
                e["data"]["to"].as_str().unwrap().to_string(),
                e["data"]["assignee"].clone(),
                e["seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn online(hub: &Hub, agent: &(String, String)) -> Socket {
    let (sock, _) = hub.console(&agent.1, None);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, b) = hub.get("/api/agents", ADMIN);
        if b["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == agent.0.as_str() && a["presence"] == "online")
        {
            return sock;
        }
        assert!(Instant::now() < deadline, "agent never came online: {b}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn first_reply_is_created_with_201_and_answers_every_pending_message() {
    let hub = Hub::start();
    let alice = hub.agent("Alice", "agent");
    let (_, contact) = hub.contact();
    let m1 = hub.say(&contact, "hello?");
    let m2 = hub.say(&contact, "anyone there?");
    let conv = m1["conversation_id"].as_str().unwrap().to_string();

    let b = replied(&hub, &alice.1, &conv, "Hi! Looking into it.");
    assert_eq!(b["reply"]["conversation_id"], conv.as_str());
    assert_eq!(
        b["reply"]["author"],
        json!({"kind": "agent", "id": alice.0})
    );
    assert_eq!(b["reply"]["text"], "Hi! Looking into it.");
    assert!(
        b["reply"]["id"].is_string() && b["reply"]["seq"].is_u64() && b["reply"]["at"].is_string()
    );
    assert_eq!(ids(&b["answered"]), sorted(vec![id(&m1), id(&m2)]));

    for m in [&m1, &m2] {
        let full = hub.message(&alice.1, &id(m));
        assert_eq!(full["status"], "answered");
        assert_eq!(full["assignee"], alice.0.as_str());
    }
}

#[test]
fn a_pending_message_is_first_assigned_to_the_replier_then_answered_two_events_in_order() {
    let hub = Hub::start();
    let alice = hub.agent("Alice", "agent");
    let (_, contact) = hub.contact();
    let m = hub.say(&contact, "where is my parcel");
    let conv = m["conversation_id"].as_str().unwrap().to_string();
    replied(&hub, &alice.1, &conv, "tomorrow");

    let items = activities(&hub, &conv);
    let seqs: Vec<u64> = items.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "activities newest first: {seqs:?}"
    );

    let ev = status_events(&items, &id(&m));
    assert_eq!(ev.len(), 2, "exactly two status events: {ev:?}");
    // Newest first: answered, then (older) assigned.
    assert_eq!(
        (ev[0].0.as_str(), ev[0].1.as_str()),
        ("assigned", "answered")
    );
    assert_eq!(ev[0].2, json!(alice.0));
    assert_eq!(
        (ev[1].0.as_str(), ev[1].1.as_str()),
        ("pending", "assigned")
    );
    assert_eq!(ev[1].2, json!(alice.0));
    assert!(ev[0].3 > ev[1].3);
    let by: Vec<&Value> = items
        .iter()
        .filter(|e| e["kind"] == "message.status_changed")
        .map(|e| &e["data"]["by"])
        .collect();
    assert!(
        by.iter().all(|b| **b == json!(alice.0)),
        "the replier caused both: {by:?}"
    );
}

#[test]
fn a_reply_leaves_messages_assigned_to_someone_else_untouched() {
    let hub = Hub::start();
    let alice = hub.agent("Alice", "agent");
    let bob = hub.agent("Bob", "agent");
    let (_, contact) = hub.contact();
    let bobs = hub.say(&contact, "first");
    let bobs_hold = hub.say(&contact, "second");
    let asked = hub.say(&contact, "third");
    let free = hub.say(&contact, "fourth");
    let conv = bobs["conversation_id"].as_str().unwrap().to_string();
    act_ok(&hub, &bob.1, &id(&bobs), "assign", json!({}));
    act_ok(&hub, &bob.1, &id(&bobs_hold), "assign", json!({}));
    act_ok(
        &hub,
        &bob.1,
        &id(&bobs_hold),
        "hold",
        json!({"until": "2099-01-01T00:00:00.000Z"}),
    );
    act_ok(&hub, &bob.1, &id(&asked), "assign", json!({}));
    act_ok(
        &hub,
        &bob.1,
        &id(&asked),
        "request-help",
        json!({"question": "?"}),
    );

    let b = replied(&hub, &alice.1, &conv, "hi");
    assert_eq!(ids(&b["answered"]), vec![id(&free)], "only the pending one");

    let m = hub.message(&alice.1, &id(&bobs));
    assert_eq!(
        (m["status"].as_str(), m["assignee"].as_str()),
        (Some("assigned"), Some(bob.0.as_str()))
    );
    let m = hub.message(&alice.1, &id(&bobs_hold));
    assert_eq!(
        (m["status"].as_str(), m["assignee"].as_str()),
        (Some("on_hold"), Some(bob.0.as_str()))
    );
    assert_eq!(m["hold_until"], "2099-01-01T00:00:00.000Z");
    let m = hub.message(&alice.1, &id(&asked));
    assert_eq!(m["status"], "help_requested");
    assert_eq!(m["assignee"], Value::Null);
    let m = hub.message(&alice.1, &id(&free));
    assert_eq!(
        (m["status"].as_str(), m["assignee"].as_str()),
        (Some("answered"), Some(alice.0.as_str()))
    );
}

#[test]
fn a_reply_answers_the_repliers_assigned_and_on_hold_messages() {
    let hub = Hub::start();
    let alice = hub.agent("Alice", "agent");
    let (_, contact) = hub.contact();
    let a = hub.say(&contact, "one");
    let h = hub.say(&contact, "two");
    let conv = a["conversation_id"].as_str().unwrap().to_string();
    act_ok(&hub, &alice.1, &id(&a), "assign", json!({}));
    act_ok(&hub, &alice.1, &id(&h), "assign", json!({}));
    act_ok(
        &hub,
        &alice.1,
        &id(&h),
        "hold",
        json!({"for_seconds": 3600}),
    );

    let b = replied(&hub, &alice.1, &conv, "done");
    assert_eq!(ids(&b["answered"]), sorted(vec![id(&a), id(&h)]));
    let m = hub.message(&alice.1, &id(&h));
    assert_eq!(m["status"], "answered");
    assert_eq!(m["assignee"], alice.0.as_str());
    assert_eq!(m["hold_until"], Value::Null);
    // Exactly one status event each (no detour through pending/assigned).
    let items = activities(&hub, &conv);
    let ev = status_events(&items, &id(&h));
    assert_eq!(
        (ev[0].0.as_str(), ev[0].1.as_str()),
        ("on_hold", "answered")
    );
    let ev = status_events(&items, &id(&a));
    assert_eq!(
        (ev[0].0.as_str(), ev[0].1.as_str()),
        ("assigned", "answered")
    );
    assert_eq!(
        ev.len(),
        2,
        "pending→assigned by assign, assigned→answered by the reply"
    );
}

#[test]
fn a_reply_answers_the_repliers_help_answered_message() {
    let hub = Hub::start();
    let alice = hub.agent("Alice", "agent");
    let sue = hub.agent("Sue", "supervisor");
    let _console = online(&hub, &alice);
    let (_, contact) = hub.contact();
    let m = hub.say(&contact, "can I get a refund");
    let conv = m["conversation_id"].as_str().unwrap().to_string();
    act_ok(&hub, &alice.1, &id(&m), "assign", json!({}));
    act_ok(
        &hub,
        &alice.1,
        &id(&m),
        "request-help",
        json!({"question": "refund?"}),
    );
    act_ok(&hub, &sue.1, &id(&m), "assign", json!({}));
    let got = act_ok(
        &hub,
        &sue.1,
        &id(&m),
        "answer-help",
        json!({"answer": "yes"}),
    );
    assert_eq!(got["status"], "help_answered");

    // Sue's reply does not take Alice's help_answered message.
    let b = replied(&hub, &sue.1, &conv, "checking");
    assert_eq!(b["answered"], json!([]));
    assert_eq!(hub.message(&alice.1, &id(&m))["status"], "help_answered");

    let b = replied(&hub, &alice.1, &conv, "yes you can");
    assert_eq!(ids(&b["answered"]), vec![id(&m)]);
    let full = hub.message(&alice.1, &id(&m));
    assert_eq!(full["status"], "answered");
    assert_eq!(full["assignee"], alice.0.as_str());
    assert_eq!(full["help"]["answer"], "yes", "help is kept");
}

#[test]
fn a_reply_with_nothing_to_answer_answers_an_empty_list() {
    let hub = Hub::start();
    let alice = hub.agent("Alice", "agent");
    let (_, contact) = hub.contact();
    let m = hub.say(&contact, "hi");
    let conv = m["conversation_id"].as_str().unwrap().to_string();
    replied(&hub, &alice.1, &conv, "hello");
    let b = replied(&hub, &alice.1, &conv, "anything else?");
    assert_eq!(b["answered"], json!([]));
    // Answered messages are not touched again.
    let ev = status_events(&activities(&hub, &conv), &id(&m));
    assert_eq!(ev.len(), 2);
}

#[test]
fn the_first_replier_becomes_owner_and_stays_owner_after_close() {
    let hub = Hub::start();
    let alice = hub.agent("Alice", "agent");
    let bob = hub.agent("Bob", "agent");
    let (_, contact) = hub.contact();
    let m = hub.say(&contact, "hi");
    let conv = m["conversation_id"].as_str().unwrap().to_string();
    assert_eq!(
        conversation(&hub, &conv)["conversation"]["owner"],
        Value::Null
    );

    replied(&hub, &alice.1, &conv, "hello");
    assert_eq!(
        conversation(&hub, &conv)["conversation"]["owner"],
        alice.0.as_str()
    );
    hub.say(&contact, "more");
    replied(&hub, &bob.1, &conv, "I'm Bob");
    assert_eq!(
        conversation(&hub, &conv)["conversation"]["owner"],
        alice.0.as_str(),
        "owner is kept"
    );

    let (s, b) = hub.post(
        &format!("/api/conversations/{conv}/close"),
        &bob.1,
        json!({}),
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["conversation"]["state"], "closed");
    assert_eq!(
        b["conversation"]["owner"],
        alice.0.as_str(),
        "owner kept after close"
    );
    assert_eq!(
        conversation(&hub, &conv)["conversation"]["owner"],
        alice.0.as_str()
    );

    let owner_events: Vec<Value> = activities(&hub, &conv)
        .into_iter()
        .filter(|e| e["kind"] == "conversation.owner")
        .collect();
    assert_eq!(owner_events.len(), 1, "one owner event: {owner_events:?}");
    assert_eq!(owner_events[0]["data"]["owner"], alice.0.as_str());
}

#[test]
fn the_first_assignee_becomes_owner_and_a_later_replier_does_not_take_over() {
    let hub = Hub::start();
    let bob = hub.agent("Bob", "agent");
    let sue = hub.agent("Sue", "supervisor");
    let (_, contact) = hub.contact();
    let m1 = hub.say(&contact, "hi");
    let _m2 = hub.say(&contact, "hello?");
    let conv = m1["conversation_id"].as_str().unwrap().to_string();
    // The supervisor assigns Bob: Bob (the assignee), not Sue, is the owner.
    act_ok(&hub, &sue.1, &id(&m1), "assign", json!({"agent_id": bob.0}));
    assert_eq!(
        conversation(&hub, &conv)["conversation"]["owner"],
        bob.0.as_str()
    );
    let b = replied(&hub, &sue.1, &conv, "hi from Sue");
    assert_eq!(
        b["answered"].as_array().unwrap().len(),
        1,
        "only the pending one: {b}"
    );
    assert_eq!(
        conversation(&hub, &conv)["conversation"]["owner"],
        bob.0.as_str()
    );
}

#[test]
fn a_repeated_reply_client_id_answers_200_with_the_first_reply_and_adds_nothing() {
    let hub = Hub::start();
    let alice = hub.agent("Alice", "agent");
    let (_, contact) = hub.contact();
    let m = hub.say(&contact, "hi");
    let conv = m["conversation_id"].as_str().unwrap().to_string();

    let (s, first) = reply(
        &hub,
        &alice.1,
        &conv,
        json!({"text": "hello", "client_id": "r-1"}),
    );
    assert_eq!(s, 201, "{first}");
    assert_eq!(ids(&first["answered"]), vec![id(&m)]);
    let acts = activities(&hub, &conv);
    let timeline = conversation(&hub, &conv)["timeline"].clone();

    // A new pending message arrives; the repeat must NOT answer it.
    let later = hub.say(&contact, "still there?");
    let acts_before_repeat = activities(&hub, &conv);
    assert_eq!(
        acts_before_repeat.len(),
        acts.len() + 1,
        "the new message.created"
    );

    let (s, again) = reply(
        &hub,
        &alice.1,
        &conv,
        json!({"text": "hello", "client_id": "r-1"}),
    );
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["reply"], first["reply"], "same reply");
    assert_eq!(again["answered"], first["answered"], "same answered list");
    // Even with another text, the key wins.
    let (s, other_text) = reply(
        &hub,
        &alice.1,
        &conv,
        json!({"text": "different", "client_id": "r-1"}),
    );
    assert_eq!(s, 200);
    assert_eq!(other_text["reply"], first["reply"]);

    assert_eq!(
        activities(&hub, &conv),
        acts_before_repeat,
        "nothing new in the activities"
    );
    let tl = conversation(&hub, &conv)["timeline"].clone();
    assert_eq!(
        tl.as_array().unwrap().len(),
        timeline.as_array().unwrap().len() + 1,
        "only the new message"
    );
    assert_eq!(hub.message(&alice.1, &id(&later))["status"], "pending");
    assert_eq!(replies_on_timeline(&hub, &conv), 1);
}

/// A reply with a client id: (status, body).
fn reply_as(hub: &Hub, token: &str, conv: &str, cid: &str) -> (u16, Value) {
    reply(hub, token, conv, json!({"text": cid, "client_id": cid}))
}

/// The replies on a conversation's timeline.
fn replies_on_timeline(hub: &Hub, conv: &str) -> usize {
    let tl = conversation(hub, conv)["timeline"].clone();
    tl.as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "reply")
        .count()
}

/// The hub remembers an agent's reply client ids only from its first reply since it
/// started: after a restart, repeats must still find the replies made before it,
/// whether the agent's first reply since is a repeat or a new one.
#[test]
fn repeated_reply_client_ids_are_found_after_a_restart() {
    let mut hub = Hub::start();
    let alice = hub.agent("Alice", "agent");
    let bob = hub.agent("Bob", "agent");
    let (_, contact) = hub.contact();
    let m = hub.say(&contact, "hi");
    let conv = m["conversation_id"].as_str().unwrap().to_string();
    let mut first = Vec::new();
    for (who, cid) in [(&alice, "a-1"), (&alice, "a-2"), (&bob, "b-1")] {
        let (s, b) = reply_as(&hub, &who.1, &conv, cid);
        assert_eq!(s, 201, "{b}");
        first.push(b);
    }

    hub.restart();
    // Alice's first reply since the restart is a new one; Bob's is a repeat.
    let (s, new) = reply_as(&hub, &alice.1, &conv, "a-3");
    assert_eq!(s, 201, "{new}");
    let (s, again) = reply_as(&hub, &bob.1, &conv, "b-1");
    assert_eq!((s, &again["reply"]), (200, &first[2]["reply"]));
    for (i, cid) in ["a-1", "a-2"].into_iter().enumerate() {
        let (s, again) = reply_as(&hub, &alice.1, &conv, cid);
        assert_eq!((s, &again["reply"]), (200, &first[i]["reply"]), "{cid}");
    }
    // And the reply made since the restart is found too.
    let (s, again) = reply_as(&hub, &alice.1, &conv, "a-3");
    assert_eq!((s, &again["reply"]), (200, &new["reply"]));
    assert_eq!(
        replies_on_timeline(&hub, &conv),
        4,
        "three before the restart, one after"
    );
}

#[test]
fn reply_client_ids_are_per_agent() {
    let hub = Hub::start();
    let alice = hub.agent("Alice", "agent");
    let bob = hub.agent("Bob", "agent");
    let (_, contact) = hub.contact();
    let m = hub.say(&contact, "hi");
    let conv = m["conversation_id"].as_str().unwrap().to_string();
    let (s, a) = reply(
        &hub,
        &alice.1,
        &conv,
        json!({"text": "from alice", "client_id": "same"}),
    );
    assert_eq!(s, 201);
    let (s, b) = reply(
        &hub,
        &bob.1,
        &conv,
        json!({"text": "from bob", "client_id": "same"}),
    );
    assert_eq!(s, 201, "another agent's key is another key: {b}");
    assert_ne!(a["reply"]["id"], b["reply"]["id"]);
    assert_eq!(b["reply"]["author"]["id"], bob.0.as_str());
}

#[test]
fn a_repeated_reply_client_id_still_answers_200_after_the_session_ended() {
    let hub = Hub::start();
    let alice = hub.agent("Alice", "agent");
    let (_, contact) = hub.contact();
    let m = hub.say(&contact, "hi");
    let conv = m["conversation_id"].as_str().unwrap().to_string();
    let (s, first) = reply(
        &hub,
        &alice.1,
        &conv,
        json!({"text": "bye", "client_id": "k"}),
    );
    assert_eq!(s, 201);
    let (s, b) = hub.post(
        &format!("/api/conversations/{conv}/end-session"),
        &alice.1,
        json!({}),
    );
    assert_eq!(s, 200, "{b}");

    let (s, again) = reply(
        &hub,
        &alice.1,
        &conv,
        json!({"text": "bye", "client_id": "k"}),
    );
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["reply"], first["reply"]);
    assert_eq!(again["answered"], first["answered"]);

    let (s, b) = reply(
        &hub,
        &alice.1,
        &conv,
        json!({"text": "one more", "client_id": "k2"}),
    );
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["code"], "session_ended");
    let (s, b) = reply(&hub, &alice.1, &conv, json!({"text": "one more"}));
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["code"], "session_ended");
}

#[test]
fn a_reply_to_an_unknown_conversation_is_404_and_a_bad_body_400_first() {
    let hub = Hub::start();
    let alice = hub.agent("Alice", "agent");
    let (s, b) = reply(&hub, &alice.1, "c_nope", json!({"text": "hi"}));
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{b}"
    );
    let (s, b) = reply(&hub, &alice.1, "c_nope", json!({"text": ""}));
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("invalid")),
        "{b}"
    );
    let (_, contact) = hub.contact();
    let (s, b) = reply(&hub, &contact, "c_nope", json!({"text": ""}));
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{b}"
    );
    // A client id already used answers with its first reply anywhere but in a
    // conversation that does not exist.
    let m = hub.say(&contact, "hi");
    let conv = m["conversation_id"].as_str().unwrap();
    assert_eq!(reply_as(&hub, &alice.1, conv, "k").0, 201);
    let (s, b) = reply_as(&hub, &alice.1, "c_nope", "k");
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{b}"
    );
    let (_, other) = hub.contact();
    let other = hub.say(&other, "hello");
    let (s, b) = reply_as(
        &hub,
        &alice.1,
        other["conversation_id"].as_str().unwrap(),
        "k",
    );
    assert_eq!(
        (s, b["reply"]["conversation_id"].as_str()),
        (200, Some(conv)),
        "{b}"
    );
}

#[test]
fn concurrent_repeats_of_one_reply_client_id_create_exactly_one_reply() {
    let hub = Hub::start();
    let alice = hub.agent("Alice", "agent");
    let (_, contact) = hub.contact();
    let m = hub.say(&contact, "hi");
    let conv = m["conversation_id"].as_str().unwrap().to_string();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (url, token, conv) = (hub.url.clone(), alice.1.clone(), conv.clone());
            std::thread::spawn(move || {
                let r = ureq::post(&format!("{url}/api/conversations/{conv}/replies"))
                    .set("Authorization", &format!("Bearer {token}"))
                    .send_json(json!({"text": "once", "client_id": "dup"}))
                    .expect("reply");
                (r.status(), r.into_json::<Value>().unwrap())
            })
        })
        .collect();
    let answers: Vec<(u16, Value)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 201).count(),
        1,
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 200).count(),
        7,
        "{answers:?}"
    );
    let first = &answers[0].1;
    for (_, b) in &answers {
        assert_eq!(b["reply"], first["reply"]);
        assert_eq!(b["answered"], json!([id(&m)]));
    }
    let tl = conversation(&hub, &conv)["timeline"].clone();
    assert_eq!(
        tl.as_array()
            .unwrap()
            .iter()
            .filter(|i| i["type"] == "reply")
            .count(),
        1
    );
}

/// Every agent command takes one of `HUB_AGENT_INFLIGHT` slots (counted by
/// `hub_agent_admission_wait_seconds`); customers' sends take none. One agent's replies
/// to different conversations run side by side, and past the limit they wait their turn
/// instead of failing.
#[test]
fn agent_commands_take_an_admission_slot_and_past_the_limit_wait_their_turn() {
    let hub = Hub::start_with(&[("HUB_AGENT_INFLIGHT", "2")]);
    let series = "hub_agent_admission_wait_seconds_count";
    let alice = hub.agent("Alice", "agent");
    let convs: Vec<(String, Value)> = (0..6)
        .map(|i| {
            let (_, contact) = hub.contact();
            let m = hub.say(&contact, &format!("hi {i}"));
            (m["conversation_id"].as_str().unwrap().to_string(), m)
        })
        .collect();
    assert_eq!(
        common::metric(&hub.metrics(), series),
        0,
        "customers' sends take no agent slot"
    );
    let threads: Vec<_> = convs
        .iter()
        .map(|(conv, _)| {
            let (url, token, conv) = (hub.url.clone(), alice.1.clone(), conv.clone());
            std::thread::spawn(move || {
                let r = ureq::post(&format!("{url}/api/conversations/{conv}/replies"))
                    .set("Authorization", &format!("Bearer {token}"))
                    .send_json(json!({"text": "on it"}))
                    .expect("reply");
                (r.status(), r.into_json::<Value>().unwrap())
            })
        })
        .collect();
    for ((_, m), t) in convs.iter().zip(threads) {
        let (status, body) = t.join().unwrap();
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["answered"], json!([id(m)]));
    }
    assert_eq!(common::metric(&hub.metrics(), series), 6);
    // Any agent command, not only replies.
    let (conv, _) = &convs[0];
    let (s, b) = hub.post(
        &format!("/api/conversations/{conv}/comments"),
        &alice.1,
        json!({"text": "note"}),
    );
    assert_eq!(s, 201, "{b}");
    assert_eq!(common::metric(&hub.metrics(), series), 7);
}
