//! The authorization matrix: every route and socket × every kind of caller → exactly the
//! expected status (PROTOCOL §3: 401, then 403 for the token kind or role, then the
//! body, then 404). Requests use unknown ids or invalid bodies so that allowed callers
//! get 400/404 and nothing changes; the count of unexpected successes must be zero.

mod common;

use common::{Frame, Hub};
use serde_json::{json, Value};

const CALLERS: [&str; 7] = [
    "none",
    "bad",
    "contact",
    "other_contact",
    "agent",
    "supervisor",
    "admin",
];

#[test]
fn every_route_answers_every_caller_as_specified() {
    let hub = Hub::start();
    let (_, agent) = hub.agent("Ann", "agent");
    let (_, sup) = hub.agent("Sue", "supervisor");
    let (_, contact) = hub.contact();
    let (_, other) = hub.contact();
    hub.say(&contact, "mine only");
    let token = |c: &str| -> Option<String> {
        match c {
            "none" => None,
            "bad" => Some("not-a-token".into()),
            "contact" => Some(contact.clone()),
            "other_contact" => Some(other.clone()),
            "agent" => Some(agent.clone()),
            "supervisor" => Some(sup.clone()),
            "admin" => Some(common::ADMIN.into()),
            _ => unreachable!(),
        }
    };
    // (method, path, body, expected status per caller in CALLERS order)
    let widget = [401, 401, 400, 400, 403, 403, 403];
    let widget_get = [401, 401, 200, 200, 403, 403, 403];
    let admin_write = [401, 401, 403, 403, 403, 403, 400];
    let agent_read = [401, 401, 403, 403, 200, 200, 200];
    let agent_404 = [401, 401, 403, 403, 404, 404, 404];
    let admin_404 = [401, 401, 403, 403, 403, 403, 404];
    let cases: Vec<(&str, &str, Option<Value>, [u16; 7])> = vec![
        ("POST", "/api/widget/messages", Some(json!({})), widget),
        ("GET", "/api/widget/messages", None, widget_get),
        (
            "POST",
            "/api/widget/rating",
            Some(json!({"score": 5, "conversation_id": "nope"})),
            [401, 401, 404, 404, 403, 403, 403],
        ),
        ("POST", "/api/widget/page", Some(json!({})), widget),
        // No token needed, and a token of any kind (or none known) changes nothing.
        ("GET", "/api/widget/availability", None, [200; 7]),
        ("POST", "/api/agents", Some(json!({})), admin_write),
        ("GET", "/api/agents", None, agent_read),
        // Extensions: an agent's capacity, automatic assignment's setting.
        ("PATCH", "/api/agents/nope", Some(json!({})), admin_write),
        (
            "PATCH",
            "/api/agents/nope",
            Some(json!({"capacity": 2})),
            admin_404,
        ),
        ("GET", "/api/automation", None, agent_read),
        (
            "PATCH",
            "/api/automation",
            Some(json!({"auto_close_seconds": 0})),
            admin_write,
        ),
        (
            "POST",
            "/api/messages/nope/assign",
            Some(json!({})),
            agent_404,
        ),
        (
            "POST",
            "/api/messages/nope/unassign",
            Some(json!({})),
            agent_404,
        ),
        (
            "POST",
            "/api/messages/nope/hold",
            Some(json!({})),
            agent_404,
        ),
        (
            "POST",
            "/api/messages/nope/request-help",
            Some(json!({"question": "q"})),
            agent_404,
        ),
        (
            "POST",
            "/api/messages/nope/answer-help",
            Some(json!({"answer": "a"})),
            agent_404,
        ),
        (
            "POST",
            "/api/messages/nope/archive",
            Some(json!({})),
            agent_404,
        ),
        (
            "POST",
            "/api/messages/nope/reopen",
            Some(json!({})),
            agent_404,
        ),
        ("GET", "/api/conversations", None, agent_read),
        ("GET", "/api/conversations?state=all", None, agent_read),
        ("GET", "/api/conversations/nope", None, agent_404),
        ("GET", "/api/conversations/nope/activities", None, agent_404),
        (
            "POST",
            "/api/conversations/nope/replies",
            Some(json!({"text": "x"})),
            agent_404,
        ),
        (
            "POST",
            "/api/conversations/nope/comments",
            Some(json!({"text": "x"})),
            agent_404,
        ),
        (
            "POST",
            "/api/conversations/nope/close",
            Some(json!({})),
            agent_404,
        ),
        (
            "POST",
            "/api/conversations/nope/end-session",
            Some(json!({})),
            agent_404,
        ),
        (
            "POST",
            "/api/conversations/nope/spam",
            Some(json!({"spam": true})),
            agent_404,
        ),
        ("GET", "/api/inbox?folder=pending", None, agent_read),
        ("GET", "/api/stats", None, agent_read),
        ("POST", "/api/assistants", Some(json!({})), admin_write),
        ("GET", "/api/assistants", None, agent_read),
        ("PUT", "/api/assistants/nope", Some(json!({})), admin_write),
        (
            "POST",
            "/api/assistants/nope/publish",
            Some(json!({"channels": ["web"]})),
            admin_404,
        ),
        (
            "POST",
            "/api/assistants/nope/unpublish",
            Some(json!({})),
            admin_404,
        ),
        ("DELETE", "/api/assistants/nope", None, admin_404),
    ];
    let mut mismatches = Vec::new();
    let mut unauthorized_successes = 0;
    let mut checked = 0;
    for (method, path, body, expected) in &cases {
        for (i, caller) in CALLERS.iter().enumerate() {
            let (status, b) = hub.call(method, path, token(caller).as_deref(), body.clone());
            checked += 1;
            if status != expected[i] {
                mismatches.push(format!(
                    "{method} {path} as {caller}: {status} (want {}) {b}",
                    expected[i]
                ));
            }
            if (200..300).contains(&status) && !(200..300).contains(&expected[i]) {
                unauthorized_successes += 1;
            }
            if status >= 400 {
                assert!(
                    b["error"]["code"].is_string(),
                    "{method} {path}: error body {b}"
                );
            }
        }
    }
    // Another contact never sees the first one's messages.
    let (_, theirs) = hub.get("/api/widget/messages", &other);
    assert!(theirs["items"].as_array().unwrap().is_empty(), "{theirs}");
    // Sockets: who may say hello where.
    for (path, allowed) in [
        ("/ws/agent", ["agent", "supervisor", "admin"]),
        ("/ws/widget", ["contact", "other_contact", "contact"]),
    ] {
        for caller in CALLERS {
            let mut hello = json!({"type": "hello"});
            if let Some(t) = token(caller) {
                hello["token"] = json!(t);
            }
            let mut s = hub.socket(path, hello);
            checked += 1;
            let first = s.next(common::WAIT);
            let welcomed = matches!(&first, Frame::Json(v) if v["type"] == "welcome");
            if welcomed != allowed.contains(&caller) {
                mismatches.push(format!("{path} hello as {caller}: welcomed={welcomed}"));
                if welcomed {
                    unauthorized_successes += 1;
                }
            }
            if !welcomed {
                let code = match first {
                    Frame::Closed(c) => c,
                    _ => s.closed(),
                };
                assert_eq!(code, Some(4401), "{path} as {caller}");
            }
        }
    }
    println!(
        "authorization matrix: {checked} cases, {unauthorized_successes} unauthorized successes"
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(unauthorized_successes, 0);
}

/// The `Bearer` scheme is matched without regard to case (RFC 9110 §11.1); any other
/// scheme, or the token alone, is no token at all.
#[test]
fn the_bearer_scheme_is_case_insensitive_and_other_schemes_are_unauthorized() {
    let hub = Hub::start();
    let (_, token) = hub.agent("Ann", "agent");
    let get = |auth: &str| -> u16 {
        match ureq::get(&format!("{}/api/agents", hub.url))
            .set("Authorization", auth)
            .call()
        {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(s, _)) => s,
            Err(e) => panic!("{e}"),
        }
    };
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        assert_eq!(get(&format!("{scheme} {token}")), 200, "{scheme}");
    }
    for auth in [
        format!("Basic {token}"),
        token.clone(),
        "Bearer ".to_string(),
        format!("Bearer{token}"),
    ] {
        assert_eq!(get(&auth), 401, "{auth:?}");
    }
}

/// An extension: `POST /api/agents/{id}/token` (admin) replaces an agent's token. The old
/// one stops working at once, on HTTP and on the agent's open console (closed with
/// 4401); the new one signs the agent in. Only an admin may; an unknown agent is 404.
#[test]
fn an_admin_replaces_a_lost_token_and_the_old_one_stops_working() {
    let mut hub = Hub::start();
    let (bob_id, old) = hub.agent("Bob", "agent");
    let (_, sue) = hub.agent("Sue", "supervisor");
    let (mut console, _) = hub.console(&old, None);
    let (_, k) = hub.contact();
    let path = format!("/api/agents/{bob_id}/token");

    for (token, code) in [
        (Some(old.as_str()), 403),
        (Some(sue.as_str()), 403),
        (Some(k.as_str()), 403),
        (None, 401),
    ] {
        let (s, b) = hub.call("POST", &path, token, Some(json!({})));
        assert_eq!(s, code, "{token:?}: {b}");
    }
    let (s, b) = hub.call(
        "POST",
        "/api/agents/nobody/token",
        Some(common::ADMIN),
        None,
    );
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{b}"
    );

    let (s, b) = hub.call("POST", &path, Some(common::ADMIN), None);
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (b["id"].as_str(), b["name"].as_str()),
        (Some(bob_id.as_str()), Some("Bob"))
    );
    let new = b["token"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    // the open console is closed as a bad token is, whatever it was doing
    let code = loop {
        match console.next(common::WAIT) {
            Frame::Closed(c) => break c,
            Frame::Json(_) => continue,
            other => panic!("the console stayed open: {other:?}"),
        }
    };
    assert_eq!(code, Some(4401));
    let (s, _) = hub.get("/api/agents", &old);
    assert_eq!(s, 401, "the old token");
    let (s, _) = hub.get("/api/agents", &new);
    assert_eq!(s, 200, "the new token");
    let mut again = hub.socket("/ws/agent", json!({"type": "hello", "token": old}));
    assert_eq!(again.closed(), Some(4401));
    let (_, w) = hub.console(&new, None);
    assert_eq!(w["agent_id"], bob_id.as_str());
    // and it lasts: after a restart too
    hub.restart();
    let (s, _) = hub.get("/api/agents", &new);
    assert_eq!(s, 200);
    let (s, _) = hub.get("/api/agents", &old);
    assert_eq!(s, 401);
}

/// The race of a token replacement with consoles saying hello with the old token at that
/// very moment: whether a hello's token was checked before the replacement or after,
/// every such console ends closed with 4401 (refused, or cut off); none stays subscribed
/// until it reconnects. And each one counted for presence is uncounted once: the agent
/// ends offline (the test hub's presence grace is 0). The mechanism is tested step by
/// step in `bus::tests`; here many rounds run it against the real hub.
#[test]
fn consoles_saying_hello_as_their_token_is_replaced_all_close_with_4401() {
    const CONSOLES: usize = 12;
    const ROUNDS: usize = 8;
    let hub = Hub::start();
    let (bob_id, mut token) = hub.agent("Bob", "agent");
    let path = format!("/api/agents/{bob_id}/token");
    let addr = hub.addr.clone();
    for round in 0..ROUNDS {
        let ready = std::sync::Arc::new(std::sync::Barrier::new(CONSOLES + 1));
        let consoles: Vec<_> = (0..CONSOLES)
            .map(|_| {
                let (addr, ready, token) = (addr.clone(), ready.clone(), token.clone());
                std::thread::spawn(move || {
                    let mut s = common::Socket::connect(&format!("ws://{addr}/ws/agent"));
                    ready.wait();
                    s.send(json!({"type": "hello", "token": token}));
                    // A welcome, or not: either way the socket must close, with 4401.
                    loop {
                        match s.next(common::WAIT) {
                            Frame::Json(_) => continue,
                            Frame::Closed(code) => return Ok(code),
                            other => return Err(format!("{other:?}")),
                        }
                    }
                })
            })
            .collect();
        ready.wait();
        let (s, b) = hub.call("POST", &path, Some(common::ADMIN), None);
        assert_eq!(s, 200, "{b}");
        token = b["token"].as_str().unwrap().to_string();
        for c in consoles {
            let end = c.join().expect("a console thread");
            assert_eq!(
                end,
                Ok(Some(4401)),
                "round {round}: a console with the old token stayed open"
            );
        }
    }
    common::eventually("Bob offline once his consoles are closed", || {
        let (_, b) = hub.get("/api/agents", common::ADMIN);
        let bob = b["items"]
            .as_array()?
            .iter()
            .find(|a| a["id"] == bob_id.as_str())?
            .clone();
        (bob["presence"] == "offline").then_some(())
    });
    let (_, w) = hub.console(&token, None);
    assert_eq!(w["agent_id"], bob_id.as_str());
}
