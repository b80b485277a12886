//! Typing signals (an extension of PROTOCOL §5 and §7): who is typing reaches the
//! sockets that asked for it, as frames with no seq, never stored nor replayed.

mod common;

use common::{conv_of, Hub, Socket};
use serde_json::{json, Value};

/// A console that asked for typing signals, once welcomed.
fn console(hub: &Hub, token: &str) -> Socket {
    let mut s = hub.socket(
        "/ws/agent",
        json!({"type": "hello", "token": token, "typing": true}),
    );
    s.recv_type("welcome");
    s
}

/// A widget that asked for typing signals, once welcomed.
fn widget(hub: &Hub, token: &str) -> Socket {
    let mut s = hub.socket(
        "/ws/widget",
        json!({"type": "hello", "token": token, "typing": true}),
    );
    s.recv_type("welcome");
    s
}

/// The next `typing` frame.
fn typing(s: &mut Socket) -> Value {
    let f = s.recv_type("typing");
    assert!(f.get("seq").is_none(), "a signal has no seq: {f}");
    f
}

/// Posts an internal comment (every console sees its event) and reads `s` up to that
/// event: the frames read before it, which came earlier in its queue.
fn frames_before_comment(hub: &Hub, token: &str, conversation: &str, s: &mut Socket) -> Vec<Value> {
    let (st, b) = hub.post(
        &format!("/api/conversations/{conversation}/comments"),
        token,
        json!({"text": "marker"}),
    );
    assert_eq!(st, 201, "{b}");
    let id = b["comment"]["id"].clone();
    let mut before = Vec::new();
    loop {
        let f = s.recv();
        if f["type"] == "event"
            && f["kind"] == "comment.created"
            && f["data"]["comment"]["id"] == id
        {
            return before;
        }
        before.push(f);
    }
}

fn no_typing(frames: &[Value]) -> bool {
    frames.iter().all(|f| f["type"] != "typing")
}

#[test]
fn typing_reaches_the_sockets_that_asked_and_stops_when_the_typist_goes() {
    let hub = Hub::start();
    let (ann_id, ann) = hub.agent("Ann", "agent");
    let (_, bob) = hub.agent("Bob", "agent");
    let (_, cid) = hub.agent("Cid", "agent");
    let (k_id, k) = hub.contact();
    let (_, k2) = hub.contact();
    let m = hub.say(&k, "hello");
    let conv = conv_of(&m);
    hub.say(&k2, "me too");

    let mut ca = console(&hub, &ann);
    let mut cb = console(&hub, &bob);
    // Cid's console did not ask: it gets events only.
    let (mut cc, _) = hub.console(&cid, None);
    let mut wk = widget(&hub, &k);
    let mut wk2 = widget(&hub, &k2);

    // The customer types: every console that asked hears of it, with the contact.
    wk.send(json!({"type": "typing", "active": true}));
    for c in [&mut ca, &mut cb] {
        assert_eq!(
            typing(c),
            json!({"type": "typing", "contact_id": k_id, "active": true})
        );
    }
    assert!(no_typing(&frames_before_comment(
        &hub, &bob, &conv, &mut cc
    )));

    // Ann types a reply: Bob hears who and where, the customer hears that the brand
    // types; not Ann herself, not another customer, not Cid.
    ca.send(json!({"type": "typing", "active": true, "conversation_id": conv}));
    assert_eq!(
        typing(&mut cb),
        json!({"type": "typing", "conversation_id": conv, "contact_id": k_id,
               "agent_id": ann_id, "kind": "reply", "active": true})
    );
    assert_eq!(
        typing(&mut wk),
        json!({"type": "typing", "conversation_id": conv, "active": true})
    );
    let seen = frames_before_comment(&hub, &bob, &conv, &mut ca);
    assert!(
        seen.iter()
            .all(|f| f["type"] != "typing" || f.get("agent_id").is_none()),
        "{seen:?}"
    );
    assert!(no_typing(&frames_before_comment(
        &hub, &bob, &conv, &mut cc
    )));
    // A widget hears nothing of a comment: send one of another customer's messages so
    // that its socket has a frame to read up to.
    let (s, _) = hub.post("/api/widget/messages", &k2, json!({"text": "still there?"}));
    assert_eq!(s, 201);
    let f = wk2.recv();
    assert_eq!(
        f["type"], "event",
        "the other customer hears no typing: {f}"
    );

    // Ann moves to an internal comment: the reply stops (Bob and the customer are told),
    // and the comment is never told to the customer.
    ca.send(json!({"type": "typing", "active": true, "conversation_id": conv, "kind": "comment"}));
    let stop = typing(&mut cb);
    assert_eq!(
        (&stop["kind"], &stop["active"]),
        (&json!("reply"), &json!(false))
    );
    let start = typing(&mut cb);
    assert_eq!(
        (&start["kind"], &start["active"]),
        (&json!("comment"), &json!(true))
    );
    assert_eq!(typing(&mut wk)["active"], false);

    // Ann's console goes while she types: Bob is told she stopped.
    ca.ws.close(None).unwrap();
    let gone = typing(&mut cb);
    assert_eq!(
        (&gone["agent_id"], &gone["kind"], &gone["active"]),
        (&json!(ann_id), &json!("comment"), &json!(false))
    );
}

#[test]
fn typing_frames_are_checked_repeats_are_dropped_and_ended_sessions_hear_none() {
    let hub = Hub::start();
    let (_, ann) = hub.agent("Ann", "agent");
    let (_, bob) = hub.agent("Bob", "agent");
    let (_, k) = hub.contact();
    let conv = conv_of(&hub.say(&k, "hello"));
    let mut ca = console(&hub, &ann);
    let mut cb = console(&hub, &bob);
    let mut wk = widget(&hub, &k);

    // Bad typing frames get errors (§3 codes), and the socket stays open.
    for (frame, code) in [
        (json!({"type": "typing", "active": true}), "invalid"),
        (
            json!({"type": "typing", "active": "yes", "conversation_id": conv}),
            "invalid",
        ),
        (
            json!({"type": "typing", "active": true, "conversation_id": conv, "kind": "poem"}),
            "invalid",
        ),
        (
            json!({"type": "typing", "active": true, "conversation_id": "nope"}),
            "not_found",
        ),
    ] {
        ca.send(frame.clone());
        let e = ca.recv_type("error");
        assert_eq!(e["code"], code, "{frame} -> {e}");
    }
    ca.send(json!({"type": "ping"}));
    ca.recv_type("pong");

    // Repeats of what was just said are not passed on: five "typing" then a stop reach
    // Bob as one of each.
    for _ in 0..5 {
        ca.send(json!({"type": "typing", "active": true, "conversation_id": conv}));
    }
    ca.send(json!({"type": "typing", "active": false, "conversation_id": conv}));
    assert_eq!(typing(&mut cb)["active"], true);
    assert_eq!(typing(&mut cb)["active"], false);
    assert!(no_typing(&frames_before_comment(
        &hub, &ann, &conv, &mut cb
    )));
    assert_eq!(typing(&mut wk)["active"], true);
    assert_eq!(typing(&mut wk)["active"], false);

    // After the session ends, a reply being typed is told to the team only.
    let (s, b) = hub.post(
        &format!("/api/conversations/{conv}/end-session"),
        &bob,
        json!({"reason": "done"}),
    );
    assert_eq!(s, 200, "{b}");
    wk.recv_type("event");
    // A console that reads the conversation afresh (a new socket) learns the session ended.
    let mut ca2 = console(&hub, &ann);
    ca2.send(json!({"type": "typing", "active": true, "conversation_id": conv}));
    assert_eq!(typing(&mut cb)["active"], true);
    // The widget's next frame is the reply's ... none can come: a message of the customer
    // starts a new conversation, whose events it hears; no typing came before them.
    let (s, _) = hub.post("/api/widget/messages", &k, json!({"text": "new question"}));
    assert_eq!(s, 201);
    let f = wk.recv();
    assert_eq!(f["type"], "event", "no typing for an ended session: {f}");

    // Typing frames leave no trace: a console resuming from the start replays events only.
    let mut replay = hub.socket(
        "/ws/agent",
        json!({"type": "hello", "token": bob, "since": 0, "typing": true}),
    );
    replay.recv_type("welcome");
    let replayed = frames_before_comment(&hub, &ann, &conv, &mut replay);
    assert!(!replayed.is_empty());
    assert!(no_typing(&replayed), "{replayed:?}");
    let seqs: Vec<u64> = replayed
        .iter()
        .filter(|f| f["type"] == "event")
        .map(|f| f["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    let mut cz = console(&hub, &ann);
    // Typing in ever other conversations cannot make a console read the store at will:
    // the reads count against the same rate (8 a second), the rest is dropped.
    for i in 0..40 {
        cz.send(json!({"type": "typing", "active": true, "conversation_id": format!("nope{i}")}));
    }
    cz.send(json!({"type": "ping"}));
    let mut errors = 0;
    loop {
        let f = cz.recv();
        match f["type"].as_str() {
            Some("pong") => break,
            Some("error") => {
                assert_eq!(f["code"], "not_found", "{f}");
                errors += 1;
            }
            _ => {}
        }
    }
    assert!((1..=20).contains(&errors), "{errors} reads of 40");
}
