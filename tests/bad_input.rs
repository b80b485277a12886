//! PROTOCOL §3: bad input is refused with the right code and the error shape
//! `{"error":{"code","message"}}`, writes nothing, and never hurts the hub.

mod common;

use common::{Hub, ADMIN};
use serde_json::{json, Value};

fn assert_error(got: (u16, Value), status: u16, code: &str, what: &str) {
    let (s, b) = got;
    assert_eq!(s, status, "{what}: expected {status} {code}, got {s}: {b}");
    let err = b["error"]
        .as_object()
        .unwrap_or_else(|| panic!("{what}: no error object in {b}"));
    assert_eq!(err.get("code"), Some(&json!(code)), "{what}: {b}");
    assert!(
        err.get("message").map(|m| m.is_string()).unwrap_or(false),
        "{what}: error message must be a string: {b}"
    );
    assert_eq!(
        b.as_object().unwrap().len(),
        1,
        "{what}: only `error` at the top: {b}"
    );
}

/// Everything an agent can observe about what was written.
#[derive(Debug, PartialEq)]
struct Snapshot {
    counts: Value,
    timeline: Value,
    conversations: Value,
}

struct Scene {
    hub: Hub,
    alice: String,
    contact: String,
    conv: String,
    msg: String,
}

fn scene() -> Scene {
    let hub = Hub::start();
    let (_, alice) = hub.agent("Alice", "agent");
    let (_, contact) = hub.contact();
    let m = hub.say(&contact, "hello");
    Scene {
        conv: m["conversation_id"].as_str().unwrap().into(),
        msg: m["id"].as_str().unwrap().into(),
        hub,
        alice,
        contact,
    }
}

impl Scene {
    fn snapshot(&self) -> Snapshot {
        let (s, inbox) = self.hub.get("/api/inbox?folder=all", ADMIN);
        assert_eq!(s, 200, "{inbox}");
        let (s, c) = self
            .hub
            .get(&format!("/api/conversations/{}", self.conv), ADMIN);
        assert_eq!(s, 200, "{c}");
        let (s, l) = self.hub.get("/api/conversations?state=all", ADMIN);
        assert_eq!(s, 200, "{l}");
        Snapshot {
            counts: inbox["counts"].clone(),
            timeline: c["timeline"].clone(),
            conversations: l["items"].clone(),
        }
    }

    /// The hub still answers a good request, and what was written is unchanged.
    fn still_serving_and_unchanged(&self, before: &Snapshot) {
        let (s, b) = self.hub.call("GET", "/healthz", None, None);
        assert_eq!(s, 200, "{b}");
        assert_eq!(
            &self.snapshot(),
            before,
            "a refused request changed the store"
        );
    }

    fn raw(&self, method: &str, path: &str, token: &str, body: &str) -> (u16, Value) {
        self.hub
            .call_raw(method, path, Some(token), Some(body.to_string()))
    }

    /// Every write route with a body, and the token to call it with.
    fn write_routes(&self) -> Vec<(String, String)> {
        let c = &self.conv;
        let m = &self.msg;
        vec![
            ("/api/widget/messages".into(), self.contact.clone()),
            (
                format!("/api/conversations/{c}/replies"),
                self.alice.clone(),
            ),
            (
                format!("/api/conversations/{c}/comments"),
                self.alice.clone(),
            ),
            (format!("/api/messages/{m}/assign"), self.alice.clone()),
            (format!("/api/messages/{m}/hold"), self.alice.clone()),
            (
                format!("/api/messages/{m}/request-help"),
                self.alice.clone(),
            ),
            (format!("/api/messages/{m}/answer-help"), self.alice.clone()),
            (format!("/api/conversations/{c}/spam"), self.alice.clone()),
            ("/api/agents".into(), ADMIN.into()),
        ]
    }
}

#[test]
fn malformed_json_is_invalid_on_every_write_route() {
    let s = scene();
    let before = s.snapshot();
    for (path, token) in s.write_routes() {
        for body in [
            "{",
            "{\"text\": \"hi\"",
            "not json at all",
            "{\"text\": 'hi'}",
            "\u{0}",
        ] {
            assert_error(
                s.raw("POST", &path, &token, body),
                400,
                "invalid",
                &format!("{path} with {body:?}"),
            );
        }
    }
    assert_error(
        s.hub
            .call_raw("POST", "/api/widget/session", None, Some("{".into())),
        400,
        "invalid",
        "widget session",
    );
    s.still_serving_and_unchanged(&before);
}

#[test]
fn a_body_that_is_not_utf8_is_invalid() {
    let s = scene();
    let before = s.snapshot();
    let agent = ureq::AgentBuilder::new().build();
    // In the text, and in a field the route ignores (serde does not read its bytes).
    for raw in [
        &b"{\"text\": \"\xff\xfe\"}"[..],
        &b"{\"text\": \"hi\", \"note\": \"\xff\"}"[..],
    ] {
        let r = agent
            .post(&format!("{}/api/widget/messages", s.hub.url))
            .set("Authorization", &format!("Bearer {}", s.contact))
            .set("Content-Type", "application/json")
            .send_bytes(raw);
        let (status, body) = match r {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        };
        assert_error(
            (status, serde_json::from_str(&body).unwrap_or(Value::Null)),
            400,
            "invalid",
            &format!("bad utf-8 in {}", String::from_utf8_lossy(raw)),
        );
    }
    s.still_serving_and_unchanged(&before);
}

#[test]
fn json_that_is_not_an_object_or_has_wrong_field_types_is_invalid() {
    let s = scene();
    let before = s.snapshot();
    let cases: Vec<(String, &str, Value)> = vec![
        ("/api/widget/messages".into(), &s.contact, json!([])),
        // serde reads a struct from an array of its fields: not a body here.
        (
            "/api/widget/messages".into(),
            &s.contact,
            json!(["hello from an array", "cid-1"]),
        ),
        ("/api/widget/messages".into(), &s.contact, json!(["hello"])),
        ("/api/widget/messages".into(), &s.contact, json!("hello")),
        ("/api/widget/messages".into(), &s.contact, json!(null)),
        (
            "/api/widget/messages".into(),
            &s.contact,
            json!({"text": 42}),
        ),
        (
            "/api/widget/messages".into(),
            &s.contact,
            json!({"text": ["hi"]}),
        ),
        (
            "/api/widget/messages".into(),
            &s.contact,
            json!({"text": "hi", "client_id": 7}),
        ),
        (
            "/api/widget/messages".into(),
            &s.contact,
            json!({"message": "hi"}),
        ),
        (
            format!("/api/conversations/{}/replies", s.conv),
            &s.alice,
            json!({"text": {"t": 1}}),
        ),
        (
            format!("/api/conversations/{}/replies", s.conv),
            &s.alice,
            json!({"text": "x", "client_id": true}),
        ),
        (
            format!("/api/conversations/{}/comments", s.conv),
            &s.alice,
            json!({"text": 1.5}),
        ),
        (
            format!("/api/messages/{}/assign", s.msg),
            &s.alice,
            json!({"agent_id": 7}),
        ),
        (
            format!("/api/messages/{}/request-help", s.msg),
            &s.alice,
            json!({"question": null}),
        ),
        (
            format!("/api/conversations/{}/spam", s.conv),
            &s.alice,
            json!({"spam": "yes"}),
        ),
        (
            format!("/api/conversations/{}/spam", s.conv),
            &s.alice,
            json!({}),
        ),
        (
            "/api/agents".into(),
            ADMIN,
            json!({"name": 5, "role": "agent"}),
        ),
        (
            "/api/agents".into(),
            ADMIN,
            json!({"name": "Zed", "role": "overlord"}),
        ),
    ];
    for (path, token, body) in cases {
        assert_error(
            s.hub.post(&path, token, body.clone()),
            400,
            "invalid",
            &format!("{path} {body}"),
        );
    }
    assert_error(
        s.hub.call_raw(
            "POST",
            "/api/widget/session",
            None,
            Some(r#"["web", "Ann", "ann@example.com"]"#.into()),
        ),
        400,
        "invalid",
        "a session's fields as an array",
    );
    s.still_serving_and_unchanged(&before);
    let (_, agents) = s.hub.get("/api/agents", ADMIN);
    assert!(
        !agents.to_string().contains("Zed"),
        "no agent was created: {agents}"
    );
}

#[test]
fn empty_or_blank_or_missing_text_is_invalid() {
    let s = scene();
    let before = s.snapshot();
    for (path, token) in [
        ("/api/widget/messages".to_string(), &s.contact),
        (format!("/api/conversations/{}/replies", s.conv), &s.alice),
        (format!("/api/conversations/{}/comments", s.conv), &s.alice),
    ] {
        for body in [json!({"text": ""}), json!({"text": "   \n\t"}), json!({})] {
            assert_error(
                s.hub.post(&path, token, body.clone()),
                400,
                "invalid",
                &format!("{path} {body}"),
            );
        }
    }
    s.still_serving_and_unchanged(&before);
}

#[test]
fn text_of_4096_characters_is_accepted_and_4097_is_too_large() {
    let s = scene();
    // Multi-byte characters: the limit counts characters, not bytes.
    for ch in ["a", "é", "😀"] {
        let ok = ch.repeat(4096);
        let (st, b) = s
            .hub
            .post("/api/widget/messages", &s.contact, json!({"text": ok}));
        assert_eq!(st, 201, "4096 × {ch:?}: {b}");
        assert_eq!(b["message"]["text"].as_str().unwrap().chars().count(), 4096);
    }
    let (st, b) = s.hub.post(
        &format!("/api/conversations/{}/replies", s.conv),
        &s.alice,
        json!({"text": "r".repeat(4096)}),
    );
    assert_eq!(st, 201, "{b}");
    let (st, b) = s.hub.post(
        &format!("/api/conversations/{}/comments", s.conv),
        &s.alice,
        json!({"text": "c".repeat(4096)}),
    );
    assert_eq!(st, 201, "{b}");

    let before = s.snapshot();
    for ch in ["a", "é", "😀"] {
        let long = ch.repeat(4097);
        assert_error(
            s.hub
                .post("/api/widget/messages", &s.contact, json!({"text": long})),
            413,
            "too_large",
            &format!("4097 × {ch:?}"),
        );
    }
    assert_error(
        s.hub.post(
            &format!("/api/conversations/{}/replies", s.conv),
            &s.alice,
            json!({"text": "r".repeat(4097)}),
        ),
        413,
        "too_large",
        "reply",
    );
    assert_error(
        s.hub.post(
            &format!("/api/conversations/{}/comments", s.conv),
            &s.alice,
            json!({"text": "c".repeat(4097)}),
        ),
        413,
        "too_large",
        "comment",
    );
    s.still_serving_and_unchanged(&before);
}

#[test]
fn a_body_over_64_kib_is_too_large() {
    let s = scene();
    let before = s.snapshot();
    // Short text, but the body is over 64 KiB because of a padding field.
    let padded = json!({"text": "hi", "pad": "x".repeat(64 * 1024)}).to_string();
    assert!(padded.len() > 64 * 1024);
    for (path, token) in s.write_routes() {
        assert_error(
            s.raw("POST", &path, &token, &padded),
            413,
            "too_large",
            &path,
        );
    }
    assert_error(
        s.hub
            .call_raw("POST", "/api/widget/session", None, Some(padded.clone())),
        413,
        "too_large",
        "widget session",
    );
    // A body of a megabyte, and one that is not even JSON.
    let huge = json!({"text": "y".repeat(1024 * 1024)}).to_string();
    assert_error(
        s.raw("POST", "/api/widget/messages", &s.contact, &huge),
        413,
        "too_large",
        "1 MiB body",
    );
    let junk = "z".repeat(100 * 1024);
    assert_error(
        s.raw("POST", "/api/widget/messages", &s.contact, &junk),
        413,
        "too_large",
        "100 KiB junk",
    );
    s.still_serving_and_unchanged(&before);
}

#[test]
fn a_body_far_over_the_limit_still_gets_a_json_error() {
    let s = scene();
    let before = s.snapshot();
    let huge = json!({"text": "y".repeat(9 * 1024 * 1024)}).to_string();
    assert_error(
        s.raw("POST", "/api/widget/messages", &s.contact, &huge),
        413,
        "too_large",
        "9 MiB body",
    );
    s.still_serving_and_unchanged(&before);
}

#[test]
fn a_huge_body_is_checked_after_the_token_as_section_3_orders() {
    let s = scene();
    let huge = json!({"text": "y".repeat(9 * 1024 * 1024)}).to_string();
    // 401 (no token) and 403 (wrong token kind) come before 413.
    assert_error(
        s.hub
            .call_raw("POST", "/api/widget/messages", None, Some(huge.clone())),
        401,
        "unauthorized",
        "9 MiB body without a token",
    );
    assert_error(
        s.raw("POST", "/api/widget/messages", &s.alice, &huge),
        403,
        "forbidden",
        "9 MiB body, agent token",
    );
    // Below the transport limit the order already holds.
    let big = json!({"text": "y".repeat(100 * 1024)}).to_string();
    assert_error(
        s.hub
            .call_raw("POST", "/api/widget/messages", None, Some(big.clone())),
        401,
        "unauthorized",
        "100 KiB body without a token",
    );
    assert_error(
        s.raw("POST", "/api/widget/messages", &s.alice, &big),
        403,
        "forbidden",
        "100 KiB body, agent token",
    );
}

#[test]
fn a_body_declared_over_64_kib_is_refused_before_it_arrives() {
    use std::io::Write;
    let s = scene();
    for (token, status, code) in [
        (s.contact.as_str(), 413, "too_large"),
        ("nope", 401, "unauthorized"),
    ] {
        // The headers announce 70,000 bytes; 20 come, then nothing: the answer must not
        // wait for the rest (nor for the 10 s body timeout, 408).
        let mut c = std::net::TcpStream::connect(&s.hub.addr).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(8)))
            .unwrap();
        write!(
            c,
            "POST /api/widget/messages HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 70000\r\n\r\n{{\"text\": \"aaaaaaa",
            s.hub.addr
        )
        .unwrap();
        let text = common::read_until(&mut c, |a| a.ends_with(b"}}"));
        assert!(text.starts_with(&format!("HTTP/1.1 {status}")), "{text}");
        assert!(text.contains(&format!(r#""code":"{code}""#)), "{text}");
    }
    let (st, mine) = s.hub.get("/api/widget/messages", &s.contact);
    assert_eq!(st, 200);
    assert_eq!(
        mine["items"].as_array().unwrap().len(),
        1,
        "nothing stored: {mine}"
    );
}

#[test]
fn requests_that_are_not_http_get_the_error_body_too() {
    // Errors the HTTP layer answers by itself carry §3's body like any other (the hub's
    // patched actix-http, `vendor/actix-http/PATCHES.md`).
    use std::io::{Read, Write};
    let hub = Hub::start();
    let ask = |bytes: &[u8]| {
        let mut c = std::net::TcpStream::connect(&hub.addr).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        c.write_all(bytes).unwrap();
        let mut answer = Vec::new();
        let _ = c.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    };
    for (request, status, code) in [
        (&b"GARBAGE\r\n\r\n"[..], 400, "invalid"),
        (
            &b"POST /api/widget/session HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\
               Transfer-Encoding: chunked\r\n\r\n"[..],
            400,
            "invalid",
        ),
        // Nothing at all: the head's timeout (5 s).
        (&b""[..], 408, "timeout"),
    ] {
        let text = ask(request);
        let what = String::from_utf8_lossy(request);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status} ")),
            "{what:?}: {text}"
        );
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        let v: Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{what:?}: {e}: {text}"));
        assert_error((status, v), status, code, &what);
        assert!(
            text.to_lowercase()
                .contains("content-type: application/json"),
            "{text}"
        );
    }
    // A later request whose head stops half-way on a kept-alive connection gets the
    // same timeout (actix armed it for a connection's first request only, and such a
    // connection stayed open for good).
    let mut c = std::net::TcpStream::connect(&hub.addr).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let first = common::read_until(&mut c, |a| a.ends_with(b"}"));
    assert!(first.starts_with("HTTP/1.1 200 "), "{first}");
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let second = common::read_until(&mut c, |a| a.ends_with(b"}}"));
    assert!(second.starts_with("HTTP/1.1 408 "), "{second}");
    assert!(second.contains(r#""code":"timeout""#), "{second}");
    assert_eq!(hub.get("/healthz", ADMIN).0, 200);
}

#[test]
fn unknown_ids_are_not_found() {
    let s = scene();
    let before = s.snapshot();
    let a = &s.alice;
    for path in [
        "/api/conversations/c_nope",
        "/api/conversations/c_nope/activities",
    ] {
        assert_error(s.hub.get(path, a), 404, "not_found", path);
    }
    let posts = [
        ("/api/conversations/c_nope/replies", json!({"text": "hi"})),
        ("/api/conversations/c_nope/comments", json!({"text": "hi"})),
        ("/api/conversations/c_nope/close", json!({})),
        ("/api/conversations/c_nope/end-session", json!({})),
        ("/api/conversations/c_nope/spam", json!({"spam": true})),
        ("/api/messages/m_nope/assign", json!({})),
        ("/api/messages/m_nope/unassign", json!({})),
        ("/api/messages/m_nope/hold", json!({})),
        (
            "/api/messages/m_nope/request-help",
            json!({"question": "?"}),
        ),
        ("/api/messages/m_nope/answer-help", json!({"answer": "!"})),
        ("/api/messages/m_nope/archive", json!({})),
        ("/api/messages/m_nope/reopen", json!({})),
    ];
    for (path, body) in posts {
        assert_error(s.hub.post(path, a, body), 404, "not_found", path);
    }
    // A message id is not a conversation id, and the other way round.
    assert_error(
        s.hub.get(&format!("/api/conversations/{}", s.msg), a),
        404,
        "not_found",
        "message id as conversation",
    );
    assert_error(
        s.hub.act(a, &s.conv, "assign", json!({})),
        404,
        "not_found",
        "conversation id as message",
    );
    s.still_serving_and_unchanged(&before);
}

#[test]
fn an_unknown_route_is_a_json_404() {
    let s = scene();
    assert_error(
        s.hub.get("/api/nothing-here", &s.alice),
        404,
        "not_found",
        "unknown route",
    );
}

#[test]
fn wrong_tokens_answer_401_and_wrong_kinds_403_with_the_error_shape() {
    let s = scene();
    let before = s.snapshot();
    assert_error(
        s.hub.call("GET", "/api/inbox", None, None),
        401,
        "unauthorized",
        "no token",
    );
    assert_error(
        s.hub.get("/api/inbox", "nope"),
        401,
        "unauthorized",
        "unknown token",
    );
    assert_error(
        s.hub
            .post("/api/widget/messages", "nope", json!({"text": "hi"})),
        401,
        "unauthorized",
        "unknown contact",
    );
    assert_error(
        s.hub
            .post("/api/widget/messages", &s.alice, json!({"text": "hi"})),
        403,
        "forbidden",
        "agent on widget",
    );
    assert_error(
        s.hub.post(
            &format!("/api/conversations/{}/replies", s.conv),
            &s.contact,
            json!({"text": "hi"}),
        ),
        403,
        "forbidden",
        "contact reply",
    );
    assert_error(
        s.hub.post(
            "/api/agents",
            &s.alice,
            json!({"name": "Eve", "role": "admin"}),
        ),
        403,
        "forbidden",
        "agent creates agent",
    );
    s.still_serving_and_unchanged(&before);
}

#[test]
fn a_storm_of_bad_requests_does_not_disturb_good_ones() {
    let s = scene();
    let url = s.hub.url.clone();
    let contact = s.contact.clone();
    let bad = std::thread::spawn(move || {
        let agent = ureq::AgentBuilder::new().build();
        for i in 0..200 {
            let body = match i % 4 {
                0 => "{".to_string(),
                1 => json!({"text": ""}).to_string(),
                2 => json!({"text": "x".repeat(4097)}).to_string(),
                _ => json!({"text": 1}).to_string(),
            };
            let r = agent
                .post(&format!("{url}/api/widget/messages"))
                .set("Authorization", &format!("Bearer {contact}"))
                .set("Content-Type", "application/json")
                .send_string(&body);
            match r {
                Err(ureq::Error::Status(c, _)) => assert!(c == 400 || c == 413, "{c}"),
                other => panic!("bad request accepted: {:?}", other.map(|r| r.status())),
            }
        }
    });
    let mut good = Vec::new();
    for i in 0..50 {
        good.push(
            s.hub.say(&s.contact, &format!("good {i}"))["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    bad.join().unwrap();
    let (_, b) = s.hub.get("/api/inbox?folder=all&limit=500", ADMIN);
    assert_eq!(
        b["counts"]["all"], 51,
        "only the good ones (and the first) were written"
    );
    let found: Vec<&str> = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    for g in &good {
        assert!(found.contains(&g.as_str()));
    }
}

#[test]
fn a_body_that_does_not_arrive_is_answered_408_and_others_are_served_meanwhile() {
    use std::io::Write;
    let hub = Hub::start();
    let (_, contact) = hub.contact();
    // Headers announcing 100 bytes, then 10 of them, then nothing.
    let mut s = std::net::TcpStream::connect(&hub.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        s,
        "POST /api/widget/messages HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {contact}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"text\":\"",
        hub.addr
    )
    .unwrap();
    // The hub serves everyone else meanwhile.
    let m = hub.say(&contact, "meanwhile");
    assert_eq!(m["text"], "meanwhile");
    let started = std::time::Instant::now();
    let text = common::read_until(&mut s, |a| a.windows(9).any(|w| w == b"\"timeout\""));
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains(r#""code":"timeout""#), "{text}");
    assert!(started.elapsed() < std::time::Duration::from_secs(25));
    // Nothing was stored from it.
    let (status, mine) = hub.get("/api/widget/messages", &contact);
    assert_eq!(status, 200);
    assert_eq!(mine["items"].as_array().unwrap().len(), 1, "{mine}");
}

#[test]
fn a_misspelt_field_that_would_change_an_action_is_invalid() {
    // Absent, these fields mean something (assign to oneself, a hold without end,
    // unpublish every channel): a misspelt one is refused rather than read as absent.
    let s = scene();
    let (sup_id, sup) = s.hub.agent("Sam", "supervisor");
    let m = &s.msg;
    let assign = format!("/api/messages/{m}/assign");
    let hold = format!("/api/messages/{m}/hold");
    let before = s.snapshot();
    for body in [json!({"agent": sup_id}), json!({"agentId": sup_id})] {
        assert_error(
            s.hub.post(&assign, &sup, body.clone()),
            400,
            "invalid",
            &format!("assign with {body}"),
        );
    }
    s.still_serving_and_unchanged(&before);
    // Spelt right, they work.
    let (st, b) = s.hub.post(&assign, &s.alice, json!({}));
    assert_eq!(
        (st, &b["message"]["status"]),
        (200, &json!("assigned")),
        "{b}"
    );
    let before = s.snapshot();
    assert_error(
        s.hub.post(&hold, &s.alice, json!({"for_second": 60})),
        400,
        "invalid",
        "hold with `for_second`",
    );
    s.still_serving_and_unchanged(&before);
    let (st, b) = s.hub.post(&hold, &s.alice, json!({"for_seconds": 60}));
    assert_eq!(st, 200, "{b}");
    assert!(b["message"]["hold_until"].is_string(), "{b}");

    let (st, bot) = s.hub.post(
        "/api/assistants",
        ADMIN,
        json!({"name": "Bot", "rules": [], "transfer_keywords": ["human"]}),
    );
    assert_eq!(st, 201, "{bot}");
    let bot = bot["id"].as_str().unwrap();
    let (st, b) = s.hub.post(
        &format!("/api/assistants/{bot}/publish"),
        ADMIN,
        json!({"channels": ["web", "sms"]}),
    );
    assert_eq!(st, 200, "{b}");
    assert_error(
        s.hub.post(
            &format!("/api/assistants/{bot}/unpublish"),
            ADMIN,
            json!({"channel": ["sms"]}),
        ),
        400,
        "invalid",
        "unpublish with `channel`",
    );
    let (_, list) = s.hub.get("/api/assistants", ADMIN);
    let mut channels = list["items"][0]["channels"].as_array().unwrap().clone();
    channels.sort_by_key(|c| c.to_string());
    assert_eq!(channels, [json!("sms"), json!("web")], "kept both: {list}");
}

/// `Authorization` is not a list (RFC 9110 §5.3): a request that carries it twice names
/// no one caller and is answered 401, whichever of the two is valid.
#[test]
fn a_request_with_two_authorization_headers_is_unauthorized() {
    use std::io::Write;
    let hub = Hub::start();
    for (first, second, status) in [
        (ADMIN, "nope", "401"),
        ("nope", ADMIN, "401"),
        (ADMIN, ADMIN, "401"),
    ] {
        let mut c = std::net::TcpStream::connect(&hub.addr).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        write!(
            c,
            "GET /api/agents HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {first}\r\n\
             Authorization: Bearer {second}\r\n\r\n",
            hub.addr
        )
        .unwrap();
        let text = common::read_until(&mut c, |a| a.ends_with(b"}}"));
        assert!(text.starts_with(&format!("HTTP/1.1 {status}")), "{text}");
        assert!(text.contains(r#""code":"unauthorized""#), "{text}");
    }
    // One header, as usual, is enough.
    let (st, _) = hub.get("/api/agents", ADMIN);
    assert_eq!(st, 200);
}
