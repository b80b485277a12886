//! Operations: health, metrics, graceful shutdown, rate limits, WebSocket origins.

mod common;

use common::{conv_of, metric, Hub, ADMIN};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[test]
fn head_answers_like_get_without_a_body() {
    let hub = Hub::start();
    let (_, k) = hub.contact();
    hub.say(&k, "a message for the inbox");
    let head = |path: &str, token: Option<&str>| {
        let mut req = ureq::request("HEAD", &format!("{}{}", hub.url, path));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("HEAD {path}: {e}"),
        };
        let status = resp.status();
        let length = resp.header("content-length").map(str::to_string);
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).unwrap();
        (status, length, body)
    };
    for (path, token) in [
        ("/healthz", None),
        ("/api/inbox?folder=all", Some(ADMIN)),
        ("/api/agents", Some(ADMIN)),
        ("/api/widget/messages", Some(k.as_str())),
    ] {
        let (status, length, body) = head(path, token);
        assert_eq!(status, 200, "HEAD {path}");
        assert!(body.is_empty(), "HEAD {path} has no body");
        let got = ureq::get(&format!("{}{}", hub.url, path));
        let got = match token {
            Some(t) => got.set("Authorization", &format!("Bearer {t}")),
            None => got,
        };
        let full = got.call().unwrap().into_string().unwrap();
        assert_eq!(
            length,
            Some(full.len().to_string()),
            "HEAD {path}: GET's length"
        );
    }
    // HEAD checks what GET checks.
    assert_eq!(
        head("/ws/agent", None).0,
        400,
        "a socket route without an upgrade"
    );
    assert_eq!(head("/api/inbox", None).0, 401);
    assert_eq!(head("/api/inbox", Some(k.as_str())).0, 403);
}

#[test]
fn healthz_and_metrics_answer() {
    let hub = Hub::start();
    let (s, b) = hub.call("GET", "/healthz", None, None);
    assert_eq!(s, 200);
    assert_eq!(b["status"], "ok");
    let (_, k) = hub.contact();
    hub.say(&k, "count me");
    let text = hub.metrics();
    let events = metric(&text, "hub_events_total");
    assert!(
        events >= 2,
        "conversation.opened + message.created counted: {events}"
    );
    assert!(
        text.contains("hub_commit_seconds_bucket"),
        "flush latency histogram"
    );
    assert!(
        text.contains("hub_commit_batch_requests_bucket"),
        "batch size histogram"
    );
    // Every write waited for its durable answer: the contact's session and the message
    // at least, each counted once it was answered.
    let waits = metric(&text, "hub_durable_wait_seconds_count");
    let commits = metric(&text, "hub_commits_total");
    assert!(
        waits >= 2 && waits >= commits,
        "durable waits {waits}, commits {commits}"
    );
    let puts = metric(&text, "hub_commit_keys_total{op=\"put\"}");
    // At least the conversation, its log record and the message's `all` entry.
    assert!(puts >= 3, "keys put: {puts}");
    assert!(text.contains("hub_commit_bytes_total "), "bytes written");
    // What sled wrote to its log for them: at least the message's text in a link.
    let linked = metric(&text, "hub_store_log_bytes{kind=\"link\"}");
    assert!(
        linked >= "count me".len() as u64,
        "log bytes linked: {linked}"
    );
    metric(&text, "hub_store_log_bytes{kind=\"page\"}");
    metric(&text, "hub_store_log_bytes{kind=\"cleaning\"}");
    assert!(
        text.contains("hub_messages{status=\"pending\"} 1"),
        "messages by status:\n{text}"
    );
    assert!(text.contains("hub_sockets{kind=\"agent\"} 0"));
    assert!(text.contains("hub_conversation_actors"));
}

/// Each HTTP/WebSocket thread measures how late its ticks run.
#[test]
fn the_worker_threads_lag_is_measured() {
    let hub = Hub::start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = hub.metrics();
        // Two workers tick 20 times a second each.
        let ticks = metric(&text, "hub_loop_lag_seconds_count");
        if ticks >= 20 {
            assert!(text.contains("hub_loop_lag_seconds_bucket{le=\"0.001\"}"));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ticks counted: {ticks}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_stderr_nobody_reads_stops_nothing() {
    // Every log line fails to be written (the pipe's reader is gone); the hub serves,
    // stores and stops as usual.
    let mut hub = Hub::start_with(&[("TEST_STDERR", "closed"), ("RUST_LOG", "debug")]);
    assert!(!hub.addr.is_empty(), "the hub started");
    let (_, a) = hub.agent("Ann", "agent");
    let (_, k) = hub.contact();
    let m = hub.say(&k, "hello");
    let (s, b) = hub.post(
        &format!("/api/messages/{}/assign", m["id"].as_str().unwrap()),
        &a,
        json!({}),
    );
    assert_eq!(s, 200, "{b}");
    let (mut c, _) = hub.console(&a, None);
    c.send(json!({"type": "ping"}));
    assert_eq!(c.recv_type("pong")["type"], "pong");
    let (s, _) = hub.call("GET", "/healthz", None, None);
    assert_eq!(s, 200);
    assert!(hub.terminate(), "SIGTERM stops it cleanly");
}

#[test]
fn sigterm_right_after_listening_is_a_clean_stop() {
    // The signal handlers exist before `listening` is printed: no window where SIGTERM
    // kills the process instead of stopping it.
    for _ in 0..3 {
        let mut hub = Hub::start();
        assert!(hub.terminate(), "SIGTERM right after start must exit 0");
    }
}

#[test]
fn sigterm_closes_sockets_with_1001_and_keeps_everything() {
    let mut hub = Hub::start();
    let (_, a) = hub.agent("Ann", "agent");
    let (_, k) = hub.contact();
    let m = hub.say(&k, "before shutdown");
    let (mut console, _) = hub.console(&a, None);
    assert!(hub.terminate(), "clean exit");
    assert_eq!(console.closed(), Some(1001));
    hub.restart();
    let got = hub.message(&a, m["id"].as_str().unwrap());
    assert_eq!(got["text"], "before shutdown");
}

/// A socket that has not said hello yet is closed with 1001 too, at once: it does
/// not hold the hub's exit until actix drops it without a close frame.
#[test]
fn sigterm_closes_sockets_that_have_not_said_hello_with_1001() {
    let mut hub = Hub::start();
    let (mut ws, _) = tungstenite::connect(format!("ws://{}/ws/widget", hub.addr)).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(t) = ws.get_mut() {
        t.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    }
    let started = Instant::now();
    assert!(hub.terminate(), "clean exit");
    let code = loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(f)) => break f.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(e) => panic!("no close frame: {e}"),
        }
    };
    assert_eq!(code, Some(1001));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the exit waited {:?} (actix's shutdown timeout is 5 s)",
        started.elapsed()
    );
}

#[test]
fn rate_limits_refuse_a_flooding_contact_but_not_a_polite_one() {
    let hub = Hub::start_with(&[("HUB_RATE_LIMIT", "on")]);
    let (_, flood) = hub.contact();
    let (_, polite) = hub.contact();
    let mut limited = 0;
    for i in 0..60 {
        let (s, b) = hub.post(
            "/api/widget/messages",
            &flood,
            json!({"text": format!("spam {i}")}),
        );
        if s == 429 {
            assert_eq!(b["error"]["code"], "rate_limited");
            limited += 1;
        } else {
            assert_eq!(s, 201);
        }
    }
    assert!(limited > 0, "a burst of 60 is refused in part");
    // A refusal says when to retry (RFC 9110 §10.2.3).
    let refused = ureq::post(&format!("{}/api/widget/messages", hub.url))
        .set("Authorization", &format!("Bearer {flood}"))
        .send_string(r#"{"text": "once more"}"#);
    match refused {
        Err(ureq::Error::Status(429, r)) => assert_eq!(r.header("retry-after"), Some("1")),
        other => panic!("{:?}", other.map(|r| r.status())),
    }
    // Another contact is unaffected.
    let (s, _) = hub.post("/api/widget/messages", &polite, json!({"text": "hello"}));
    assert_eq!(s, 201);
}

/// PROTOCOL §2: limits never refuse a contact sending ≤ 5 messages/s, even when many
/// customers share one address; the address's budget still bounds faster senders.
#[test]
fn rate_limits_bound_new_widget_sessions_per_address_past_a_generous_burst() {
    let hub = Hub::start_with(&[("HUB_RATE_LIMIT", "on")]);
    let open = || hub.call_raw("POST", "/api/widget/session", None, Some("{}".into()));
    // A thousand at once pass (a shop's visitors behind one address)…
    let mut first = None;
    for i in 0..1000 {
        let (s, b) = open();
        assert_eq!(s, 201, "session {i}: {b}");
        first.get_or_insert(b["token"].as_str().unwrap().to_string());
    }
    // …then the address is held to about 50 a second.
    let mut refused = None;
    for i in 0..1000 {
        let (s, b) = open();
        if s == 429 {
            assert_eq!(b["error"]["code"], "rate_limited", "{b}");
            refused = Some(i);
            break;
        }
    }
    assert!(
        refused.is_some(),
        "no 429 in 2,000 sessions from one address"
    );
    // Those already open keep working.
    let (s, b) = hub.post(
        "/api/widget/messages",
        first.as_deref().unwrap(),
        json!({"text": "still here"}),
    );
    assert_eq!(s, 201, "{b}");
}

#[test]
fn rate_limits_never_refuse_polite_contacts_behind_one_address() {
    let hub = Hub::start_with(&[("HUB_RATE_LIMIT", "on")]);
    let contacts: Vec<String> = (0..30).map(|_| hub.contact().1).collect();
    // 30 contacts × 5 messages at once: 150 sends from 127.0.0.1, past the address's
    // burst of 100, each contact within its 5 a second.
    for (i, k) in contacts.iter().enumerate() {
        for j in 0..5 {
            let (s, b) = hub.post(
                "/api/widget/messages",
                k,
                json!({"text": format!("polite {i}/{j}")}),
            );
            assert_eq!(s, 201, "contact {i}, message {j}: {b}");
        }
    }
    // The same contacts now each send 15 more at once: what goes past a contact's
    // guaranteed rate draws on the address's budget, which runs out.
    let mut refused = 0;
    for (i, k) in contacts.iter().enumerate() {
        for j in 0..15 {
            let (s, b) = hub.post(
                "/api/widget/messages",
                k,
                json!({"text": format!("fast {i}/{j}")}),
            );
            match s {
                201 => {}
                429 => {
                    assert_eq!(b["error"]["code"], "rate_limited");
                    refused += 1;
                }
                other => panic!("{other}: {b}"),
            }
        }
    }
    assert!(
        refused > 0,
        "450 fast sends from one address are refused in part"
    );
}

#[test]
fn rate_limits_apply_to_socket_sends_too() {
    let hub = Hub::start_with(&[("HUB_RATE_LIMIT", "on")]);
    let (_, k) = hub.contact();
    let mut w = hub.socket("/ws/widget", json!({"type": "hello", "token": k}));
    w.recv_type("welcome");
    for i in 0..60 {
        w.send(json!({"type": "send", "text": format!("m{i}"), "client_id": format!("c{i}")}));
    }
    let mut acks = 0;
    let mut refused = 0;
    while acks + refused < 60 {
        let f: Value = w.recv();
        match f["type"].as_str() {
            Some("ack") => acks += 1,
            Some("error") => {
                assert_eq!(f["code"], "rate_limited");
                refused += 1;
            }
            _ => {}
        }
    }
    assert!(refused > 0 && acks >= 20, "acks {acks}, refused {refused}");
}

#[test]
fn rate_limits_apply_to_presence_frames_too() {
    let hub = Hub::start_with(&[("HUB_RATE_LIMIT", "on")]);
    let (_, a) = hub.agent("Toggler", "agent");
    let (mut c, _) = hub.console(&a, None);
    for i in 0..200 {
        let status = if i % 2 == 0 { "away" } else { "online" };
        c.send(json!({"type": "presence", "status": status}));
    }
    c.send(json!({"type": "ping"}));
    let mut refused = 0;
    loop {
        let f: Value = c.recv();
        match f["type"].as_str() {
            Some("error") => {
                assert_eq!(f["code"], "rate_limited", "{f}");
                refused += 1;
            }
            Some("pong") => break,
            _ => {}
        }
    }
    // The bucket holds 80 actions (refilled at 40/s): much of a burst of 200 is refused.
    assert!(refused >= 60, "refused {refused}");
    // Another agent is unaffected.
    let (_, b) = hub.agent("Polite", "agent");
    let (mut p, _) = hub.console(&b, None);
    p.send(json!({"type": "presence", "status": "away"}));
    p.send(json!({"type": "ping"}));
    loop {
        let f: Value = p.recv();
        assert_ne!(f["type"], "error", "{f}");
        if f["type"] == "pong" {
            break;
        }
    }
}

fn upgrade_status(hub: &Hub, origin: Option<&str>) -> u16 {
    upgrade_status_with(hub, origin.map(|o| o.as_bytes()).as_slice())
}

/// The status of an upgrade carrying these `Origin` headers, as bytes (written by hand:
/// client libraries refuse header values that are not UTF-8).
fn upgrade_status_with(hub: &Hub, origins: &[&[u8]]) -> u16 {
    use std::io::Write;
    let mut req = format!(
        "GET /ws/agent HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
        hub.addr
    )
    .into_bytes();
    for o in origins {
        req.extend_from_slice(b"Origin: ");
        req.extend_from_slice(o);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    let mut s = std::net::TcpStream::connect(&hub.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&req).unwrap();
    let head = common::read_until(&mut s, |a| a.windows(4).any(|w| w == b"\r\n\r\n"));
    head.get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{head}"))
}

#[test]
fn websocket_upgrades_check_the_origin() {
    let hub = Hub::start_with(&[("HUB_ALLOWED_ORIGINS", "https://shop.example")]);
    assert_eq!(
        upgrade_status(&hub, None),
        101,
        "no Origin: not a browser, allowed"
    );
    assert_eq!(
        upgrade_status(&hub, Some(&hub.url)),
        403,
        "the list replaces the default (the hub's own origin): not listed"
    );
    assert_eq!(
        upgrade_status(&hub, Some("https://shop.example")),
        101,
        "listed"
    );
    assert_eq!(
        upgrade_status(&hub, Some("https://SHOP.example/")),
        101,
        "listed, whatever the case, with a trailing slash"
    );
    assert_eq!(
        upgrade_status(&hub, Some("https://evil.example")),
        403,
        "not listed"
    );
    // Without a list, the default is the hub's own origin.
    let plain = Hub::start();
    assert_eq!(upgrade_status(&plain, Some(&plain.url)), 101, "own origin");
    assert_eq!(
        upgrade_status(&plain, Some(&plain.url.replace("http://", "HTTP://"))),
        101,
        "own origin, whatever the case of its scheme"
    );
    assert_eq!(
        upgrade_status(&plain, Some("https://shop.example")),
        403,
        "another site"
    );
    // An origin that is not ASCII names no allowed origin (it is not ignored).
    for origin in [
        &b"http://\xc3\xa9vil.example"[..],
        b"http://evil.example/\xff",
    ] {
        assert_eq!(upgrade_status_with(&plain, &[origin]), 403);
        assert_eq!(upgrade_status_with(&hub, &[origin]), 403);
    }
    // Every Origin header must pass, not only the first.
    let own = plain.url.as_bytes();
    assert_eq!(upgrade_status_with(&plain, &[own, own]), 101);
    assert_eq!(
        upgrade_status_with(&plain, &[own, b"https://shop.example"]),
        403
    );
}

#[test]
fn stats_percentiles_interpolate_between_ranks() {
    // Four first responses of known length (from the objects' own times): p50 is their
    // median, the mean of the middle two, and p90 lies 70 % of the way from the third
    // to the fourth (numpy's default).
    let hub = Hub::start();
    let (_, a) = hub.agent("Ann", "agent");
    let convs: Vec<String> = (0..4)
        .map(|i| conv_of(&hub.say(&hub.contact().1, &format!("q{i}"))))
        .collect();
    let mut firsts = Vec::new();
    for (i, conv) in convs.iter().enumerate() {
        // Spread the replies out so that the four lengths differ.
        std::thread::sleep(std::time::Duration::from_millis(40 * i as u64 + 20));
        let (s, r) = hub.post(
            &format!("/api/conversations/{conv}/replies"),
            &a,
            json!({"text": "answer"}),
        );
        assert_eq!(s, 201, "{r}");
        let (_, c) = hub.get(&format!("/api/conversations/{conv}"), &a);
        let ms = |t: &Value| chrono_ms(t.as_str().unwrap());
        firsts.push(ms(&r["reply"]["at"]) - ms(&c["conversation"]["opened_at"]));
    }
    firsts.sort_unstable();
    assert!(
        firsts.windows(2).all(|w| w[0] < w[1]),
        "four different lengths: {firsts:?}"
    );
    let x: Vec<f64> = firsts.iter().map(|&ms| ms as f64 / 1000.0).collect();
    let (_, st) = hub.get("/api/stats", &a);
    let p = |k: &str| st["first_response_seconds"][k].as_f64().unwrap();
    let close = |got: f64, want: f64| (got - want).abs() < 1e-9;
    assert!(
        close(p("p50"), (x[1] + x[2]) / 2.0),
        "p50 {} of {x:?}",
        p("p50")
    );
    assert!(
        close(p("p90"), x[2] + 0.7 * (x[3] - x[2])),
        "p90 {} of {x:?}",
        p("p90")
    );
}

/// Milliseconds since the epoch of an RFC 3339 UTC time with milliseconds
/// (`2026-12-06T23:40:21.123Z`), enough for differences within a day.
fn chrono_ms(t: &str) -> i64 {
    let (date, time) = t.split_once('T').unwrap();
    let day: i64 = date[8..10].parse().unwrap();
    let time = time.trim_end_matches('Z');
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let f: Vec<i64> = hms.split(':').map(|v| v.parse().unwrap()).collect();
    (((day * 24 + f[0]) * 60 + f[1]) * 60 + f[2]) * 1000 + frac.parse::<i64>().unwrap()
}

#[test]
fn stats_report_volumes_and_response_times() {
    let hub = Hub::start();
    let (_, a) = hub.agent("Ann", "agent");
    let (_, k1) = hub.contact();
    let (_, k2) = hub.contact_on("whatsapp");
    let (_, empty) = hub.get("/api/stats", &a);
    assert!(
        empty["first_response_seconds"]["p50"].is_null(),
        "no sample yet: {empty}"
    );
    let m1 = hub.say(&k1, "first");
    hub.say(&k2, "second");
    let conv = m1["conversation_id"].as_str().unwrap();
    hub.post(
        &format!("/api/conversations/{conv}/replies"),
        &a,
        json!({"text": "answer"}),
    );
    hub.post(&format!("/api/conversations/{conv}/close"), &a, json!({}));
    let (s, st) = hub.get("/api/stats", &a);
    assert_eq!(s, 200);
    assert_eq!(st["messages"]["by_status"]["answered"], 1, "{st}");
    assert_eq!(st["messages"]["by_status"]["pending"], 1);
    assert_eq!(st["messages"]["by_channel"]["web"], 1);
    assert_eq!(st["messages"]["by_channel"]["whatsapp"], 1);
    assert_eq!(st["conversations"]["open"], 1);
    assert_eq!(st["conversations"]["closed"], 1);
    assert_eq!(st["conversations"]["spam"], 0);
    assert!(st["first_response_seconds"]["p50"].as_f64().unwrap() >= 0.0);
    assert!(
        st["resolution_seconds"]["p90"].as_f64().unwrap()
            >= st["first_response_seconds"]["p90"].as_f64().unwrap()
    );
    let (_, k) = hub.contact();
    assert_eq!(
        hub.get("/api/stats", &k).0,
        403,
        "contacts may not read stats"
    );
}

#[test]
fn the_widget_api_answers_cors_for_allowed_sites_only() {
    let hub = Hub::start_with(&[("HUB_ALLOWED_ORIGINS", "https://shop.example")]);
    let pre = |origin: &str| {
        ureq::request("OPTIONS", &format!("{}/api/widget/messages", hub.url))
            .set("Origin", origin)
            .set("Access-Control-Request-Method", "POST")
            .call()
            .unwrap()
    };
    let ok = pre("https://shop.example");
    assert_eq!(ok.status(), 204);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
    assert!(ok
        .header("access-control-allow-headers")
        .unwrap()
        .contains("Authorization"));
    let bad = pre("https://evil.example");
    assert_eq!(bad.header("access-control-allow-origin"), None);
    let res = ureq::post(&format!("{}/api/widget/session", hub.url))
        .set("Origin", "https://shop.example")
        .send_string("{}")
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
}

#[test]
fn the_pages_are_served_with_a_content_security_policy() {
    let hub = Hub::start();
    for (path, kind) in [
        ("/", "text/html"),
        ("/widget", "text/html"),
        ("/widget.js", "text/javascript"),
        ("/console.js", "text/javascript"),
        ("/console.css", "text/css"),
    ] {
        let r = ureq::get(&format!("{}{path}", hub.url)).call().unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.content_type().starts_with(kind),
            "{path}: {}",
            r.content_type()
        );
        let csp = r
            .header("content-security-policy")
            .expect("CSP")
            .to_string();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
    }
    let head = ureq::head(&format!("{}/", hub.url)).call().unwrap();
    assert_eq!(head.status(), 200);
    // A browser revalidating what it has gets 304 and no body; another tag, the file.
    let first = ureq::get(&format!("{}/console.js", hub.url))
        .call()
        .unwrap();
    let tag = first.header("etag").expect("an ETag").to_string();
    let again = ureq::get(&format!("{}/console.js", hub.url))
        .set("If-None-Match", &format!("W/\"old\", {tag}"))
        .call()
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.header("etag"), Some(tag.as_str()));
    assert_eq!(again.into_string().unwrap(), "");
    let other = ureq::get(&format!("{}/console.js", hub.url))
        .set("If-None-Match", "\"not-this-one\"")
        .call()
        .unwrap();
    assert_eq!(other.status(), 200);
    assert!(other.into_string().unwrap().len() > 1000);
}

#[test]
fn agents_see_who_the_contact_is() {
    let hub = Hub::start();
    let (_, a) = hub.agent("Ann", "agent");
    let (s, b) = hub.call(
        "POST",
        "/api/widget/session",
        None,
        Some(json!({"name": "Léa", "email": "lea@example.com"})),
    );
    assert_eq!(s, 201);
    let m = hub.say(b["token"].as_str().unwrap(), "bonjour");
    let (_, conv) = hub.get(
        &format!(
            "/api/conversations/{}",
            m["conversation_id"].as_str().unwrap()
        ),
        &a,
    );
    assert_eq!(conv["contact"]["name"], "Léa");
    assert_eq!(conv["contact"]["email"], "lea@example.com");
    assert_eq!(conv["contact"]["id"], b["contact_id"]);
    // An extension for lists: several contacts at once, unknown ids left out.
    let lea = b["contact_id"].as_str().unwrap().to_string();
    let (anon, anon_token) = hub.contact();
    let (s, got) = hub.get(&format!("/api/contacts?ids={lea},k_nobody,{anon}"), &a);
    assert_eq!(s, 200, "{got}");
    assert_eq!(
        got["items"],
        json!([
            {"id": lea, "name": "Léa", "email": "lea@example.com", "channel": "web"},
            {"id": anon, "name": null, "email": null, "channel": "web"}
        ])
    );
    assert_eq!(
        hub.get("/api/contacts?ids=", &a),
        (200, json!({"items": []}))
    );
    let (s, _) = hub.get(&format!("/api/contacts?ids={lea}"), &anon_token);
    assert_eq!(s, 403, "agents only");
    let many = vec!["k_x"; 501].join(",");
    let (s, e) = hub.get(&format!("/api/contacts?ids={many}"), &a);
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("invalid")));
}

/// An extension: `GET /api/contacts/{id}` is a customer and every conversation it has
/// had, newest first, each with its preview (what came before an ended session).
#[test]
fn a_contacts_page_lists_its_conversations_newest_first_with_previews() {
    let hub = Hub::start();
    let (ann, a) = hub.agent("Ann", "agent");
    let (s, b) = hub.call(
        "POST",
        "/api/widget/session",
        None,
        Some(json!({"name": "Léa", "email": "lea@example.com"})),
    );
    assert_eq!(s, 201);
    let (lea, token) = (
        b["contact_id"].as_str().unwrap().to_string(),
        b["token"].as_str().unwrap().to_string(),
    );
    let first = hub.say(&token, "where is my parcel?");
    let c1 = first["conversation_id"].as_str().unwrap().to_string();
    let (s, r) = hub.post(
        &format!("/api/conversations/{c1}/replies"),
        &a,
        json!({"text": "on its way"}),
    );
    assert_eq!(s, 201, "{r}");
    let (s, e) = hub.post(
        &format!("/api/conversations/{c1}/end-session"),
        &a,
        json!({}),
    );
    assert_eq!(s, 200, "{e}");
    let second = hub.say(&token, "it never came");
    let c2 = second["conversation_id"].as_str().unwrap().to_string();
    assert_ne!(c1, c2, "a new conversation after the ended session");
    // Someone else's conversation is not listed.
    let (_, other) = hub.contact();
    hub.say(&other, "hello");

    let (s, got) = hub.get(&format!("/api/contacts/{lea}"), &a);
    assert_eq!(s, 200, "{got}");
    assert_eq!(
        got["contact"],
        json!({"id": lea, "name": "Léa", "email": "lea@example.com", "channel": "web"})
    );
    let convs = got["conversations"].as_array().unwrap();
    let ids: Vec<&str> = convs.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [c2.as_str(), c1.as_str()], "newest first");
    assert_eq!(convs[0]["preview"]["text"], "it never came");
    assert_eq!(convs[0]["preview"]["type"], "message");
    assert_eq!(convs[1]["session"], "ended");
    assert_eq!(convs[1]["preview"]["type"], "reply");
    assert_eq!(
        convs[1]["preview"]["author"],
        json!({"kind": "agent", "id": ann})
    );
    assert_eq!(convs[1]["preview"]["text"], "on its way");

    let (s, e) = hub.get("/api/contacts/k_nobody", &a);
    assert_eq!((s, e["error"]["code"].as_str()), (404, Some("not_found")));
    let (s, _) = hub.get(&format!("/api/contacts/{lea}"), &token);
    assert_eq!(s, 403, "agents only");
    let (s, _) = hub.get(&format!("/api/contacts/{lea}"), "nobody");
    assert_eq!(s, 401);
}

/// Starts the hub on `data` without `HUB_ADMIN_TOKEN`; returns it and its stdout lines.
fn start_without_admin_token(
    data: &std::path::Path,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hub"))
        .env("HUB_ADDR", "127.0.0.1:0")
        .env("HUB_DATA", data)
        .env_remove("HUB_ADMIN_TOKEN")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn hub");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// PROTOCOL §2: the first line on stdout is `listening on …`, whatever else is printed;
/// a generated admin token is printed once, after it, and works across a restart.
#[test]
fn a_generated_admin_token_is_printed_once_after_the_ready_line() {
    let dir = tempfile::tempdir().unwrap();
    let wait = std::time::Duration::from_secs(30);
    let (mut hub, lines) = start_without_admin_token(dir.path());
    let first = lines.recv_timeout(wait).expect("a first line");
    let url = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("the first line is the ready line, got {first:?}"))
        .to_string();
    let second = lines.recv_timeout(wait).expect("the token line");
    let token = second
        .strip_prefix("admin token: ")
        .unwrap_or_else(|| panic!("then the token, got {second:?}"))
        .to_string();
    let agents = |url: &str, token: &str| {
        ureq::get(&format!("{url}/api/agents"))
            .set("Authorization", &format!("Bearer {token}"))
            .call()
            .map(|r| r.status())
            .unwrap_or_else(|e| match e {
                ureq::Error::Status(s, _) => s,
                e => panic!("{e}"),
            })
    };
    assert_eq!(
        agents(&url, &token),
        200,
        "the printed token is the admin's"
    );
    hub.kill().unwrap();
    hub.wait().unwrap();
    // Restarted on the same store: the token is not printed again and still works.
    let (mut hub, lines) = start_without_admin_token(dir.path());
    let first = lines.recv_timeout(wait).expect("a first line");
    let url = first
        .strip_prefix("listening on ")
        .expect("ready line")
        .to_string();
    assert_eq!(
        agents(&url, &token),
        200,
        "the stored token survives a restart"
    );
    assert!(
        lines
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_err(),
        "printed once: nothing after the ready line on a second start"
    );
    hub.kill().unwrap();
    hub.wait().unwrap();
}

/// Runs the hub binary to its exit (it must fail at start-up): (exit code, stderr).
fn failed_start(data: &std::path::Path, addr: &str) -> (Option<i32>, String) {
    failed_start_with(data, addr, &[])
}

fn failed_start_with(
    data: &std::path::Path,
    addr: &str,
    env: &[(&str, &str)],
) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hub"))
        .env("HUB_ADDR", addr)
        .env("HUB_DATA", data)
        .env("HUB_ADMIN_TOKEN", ADMIN)
        .env("RUST_LOG", "off")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run the hub");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening on"),
        "a hub that cannot serve never prints the ready line"
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_hub_that_cannot_start_says_why_in_one_line_and_exits_1() {
    let hub = Hub::start();
    let other = tempfile::tempdir().unwrap();
    // The port is taken (by the first hub).
    let (code, err) = failed_start(other.path(), &hub.addr);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.starts_with(&format!("hub: cannot listen on HUB_ADDR={}: ", hub.addr)),
        "{err}"
    );
    // The store is held by the first hub.
    let (code, err) = failed_start(&hub.data, "127.0.0.1:0");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.starts_with("hub: cannot open the store in HUB_DATA=")
            && err.contains("another hub is running on this directory"),
        "{err}"
    );
    // Not an address at all.
    let (code, err) = failed_start(other.path(), "not-an-address");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("HUB_ADDR=not-an-address"), "{err}");
    // A setting that means nothing: refused, not replaced by its default.
    for (k, v) in [
        ("HUB_PRESENCE_GRACE_MS", "abc"),
        ("HUB_RATE_LIMIT", "maybe"),
    ] {
        let (code, err) = failed_start_with(other.path(), "127.0.0.1:0", &[(k, v)]);
        assert_eq!(code, Some(1), "{k}={v}: {err}");
        assert!(
            err.starts_with(&format!("hub: {k} must be")) && err.lines().count() == 1,
            "{err}"
        );
    }
    // The first hub was not disturbed.
    assert_eq!(hub.get("/healthz", ADMIN).0, 200);
}

/// An extension: `GET /api/stats?waiting=true` says what waits for the team now: how many
/// pending messages and help requests, and the one of each that has waited longest.
#[test]
fn stats_say_what_waits_and_since_when() {
    let hub = Hub::start();
    let (_, a) = hub.agent("Ann", "agent");
    let (_, sup) = hub.agent("Sue", "supervisor");
    let (s, st) = hub.get("/api/stats?waiting=true", &a);
    assert_eq!(s, 200, "{st}");
    assert_eq!(
        st["waiting"],
        json!({"pending": {"count": 0, "oldest": null}, "help_requested": {"count": 0, "oldest": null}})
    );
    // Not asked for, not there (PROTOCOL §8's answer as it is).
    assert!(hub.get("/api/stats", &a).1.get("waiting").is_none());
    assert_eq!(hub.get("/api/stats?waiting=maybe", &a).0, 400);

    let (_, k1) = hub.contact();
    let (_, k2) = hub.contact();
    let first = hub.say(&k1, "first");
    let second = hub.say(&k2, "second");
    let third = hub.say(&k1, "third");
    let (_, st) = hub.get("/api/stats?waiting=true", &a);
    assert_eq!(st["waiting"]["pending"]["count"], 3, "{st}");
    assert_eq!(
        st["waiting"]["pending"]["oldest"],
        json!({"message_id": first["id"], "conversation_id": first["conversation_id"], "at": first["at"]})
    );

    // The first is taken, then asks for help: the second waits longest in Pending, the
    // first is the oldest help request.
    let id = |m: &Value| m["id"].as_str().unwrap().to_string();
    common::act_ok(&hub, &a, &id(&first), "assign", json!({}));
    common::act_ok(
        &hub,
        &a,
        &id(&first),
        "request-help",
        json!({"question": "refund?"}),
    );
    let (_, st) = hub.get("/api/stats?waiting=true", &sup);
    assert_eq!(st["waiting"]["pending"]["count"], 2, "{st}");
    assert_eq!(
        st["waiting"]["pending"]["oldest"]["message_id"],
        second["id"]
    );
    assert_eq!(st["waiting"]["help_requested"]["count"], 1, "{st}");
    assert_eq!(
        st["waiting"]["help_requested"]["oldest"]["message_id"],
        first["id"]
    );
    // A spam conversation's messages are not waiting for anyone.
    let (s, _) = hub.post(
        &format!("/api/conversations/{}/spam", conv_of(&second)),
        &a,
        json!({"spam": true}),
    );
    assert_eq!(s, 200);
    let (_, st) = hub.get("/api/stats?waiting=true", &a);
    assert_eq!(st["waiting"]["pending"]["count"], 1, "{st}");
    assert_eq!(
        st["waiting"]["pending"]["oldest"]["message_id"],
        third["id"]
    );
}
