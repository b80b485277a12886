//! Page views (an extension): `POST /api/widget/page` and the `conversation.page` event,
//! noted on the timeline while the customer's conversation is open.

mod common;

use common::{assert_error, conv_of, Hub};
use serde_json::{json, Value};

fn page(hub: &Hub, token: &str, body: Value) -> (u16, Value) {
    hub.post("/api/widget/page", token, body)
}

fn kinds(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter(|i| i["type"] == "event")
        .map(|i| i["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_team_sees_which_page_an_open_conversations_customer_is_on() {
    let hub = Hub::start();
    let (_, ann) = hub.agent("Ann", "agent");
    let (k_id, k) = hub.contact();
    let (mut console, _) = hub.console(&ann, None);

    // Before any message there is no conversation: nothing is kept.
    let (s, b) = page(
        &hub,
        &k,
        json!({"url": "https://shop.example/lamps", "title": "Lamps"}),
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b,
        json!({"page": {"conversation_id": null, "url": "https://shop.example/lamps", "title": "Lamps"}})
    );

    let m = hub.say(&k, "does the arc lamp come in black?");
    let conv = conv_of(&m);
    let mut widget = hub.socket("/ws/widget", json!({"type": "hello", "token": k}));
    widget.recv_type("welcome");
    let (_, before) = hub.get(&format!("/api/conversations/{conv}"), &ann);

    // Now it is noted on the conversation, for every console; blanks are trimmed.
    let (s, b) = page(
        &hub,
        &k,
        json!({"url": " https://shop.example/lamps/arc?colour=black ", "title": "  Arc floor lamp  "}),
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["page"],
        json!({"conversation_id": conv, "url": "https://shop.example/lamps/arc?colour=black", "title": "Arc floor lamp"})
    );
    let ev = console.recv_event("conversation.page", |_| true);
    assert_eq!(ev["conversation_id"], json!(conv));
    assert_eq!(
        ev["data"],
        json!({"url": "https://shop.example/lamps/arc?colour=black", "title": "Arc floor lamp", "contact_id": k_id})
    );

    // The same page again notes nothing; another one (no title) does.
    let (s, _) = page(
        &hub,
        &k,
        json!({"url": "https://shop.example/lamps/arc?colour=black"}),
    );
    assert_eq!(s, 200);
    let (s, _) = page(&hub, &k, json!({"url": "HTTP://shop.example/cart"}));
    assert_eq!(s, 200);
    let ev2 = console.recv_event("conversation.page", |_| true);
    assert_eq!(
        ev2["data"],
        json!({"url": "HTTP://shop.example/cart", "title": null, "contact_id": k_id})
    );
    assert_eq!(
        ev2["seq"].as_u64().unwrap(),
        ev["seq"].as_u64().unwrap() + 1
    );
    // The Conversation object did not change for them: its seq is its last change's.
    let (_, mid) = hub.get(&format!("/api/conversations/{conv}"), &ann);
    assert_eq!(mid["conversation"], before["conversation"]);

    // The customer's widget never hears of it: the next frame it gets is the reply.
    let (s, b) = hub.post(
        &format!("/api/conversations/{conv}/replies"),
        &ann,
        json!({"text": "Yes, in black too."}),
    );
    assert_eq!(s, 201, "{b}");
    let next = widget.recv();
    assert_eq!(next["kind"], "reply.created", "{next}");

    // The timeline and the activities hold both.
    let (_, after) = hub.get(&format!("/api/conversations/{conv}"), &ann);
    let timeline = after["timeline"].as_array().unwrap();
    let pages: Vec<&Value> = timeline
        .iter()
        .filter(|i| i["kind"] == "conversation.page")
        .collect();
    assert_eq!(pages.len(), 2, "{after}");
    assert_eq!(pages[0]["seq"], ev["seq"]);
    assert_eq!(pages[0]["type"], "event");
    let (_, acts) = hub.get(&format!("/api/conversations/{conv}/activities"), &ann);
    assert!(
        acts["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["seq"] == ev2["seq"]),
        "{acts}"
    );

    // Closed: nothing is noted until a message reopens it.
    let (s, _) = hub.post(&format!("/api/conversations/{conv}/close"), &ann, json!({}));
    assert_eq!(s, 200);
    let (s, b) = page(&hub, &k, json!({"url": "https://shop.example/help"}));
    assert_eq!(
        (s, b["page"]["conversation_id"].clone()),
        (200, Value::Null),
        "{b}"
    );
    hub.say(&k, "one more thing");
    let (s, b) = page(&hub, &k, json!({"url": "https://shop.example/help"}));
    assert_eq!(
        (s, b["page"]["conversation_id"].clone()),
        (200, json!(conv)),
        "{b}"
    );
    let ev3 = console.recv_event("conversation.page", |_| true);
    assert_eq!(ev3["data"]["url"], "https://shop.example/help");
    let (_, last) = hub.get(&format!("/api/conversations/{conv}"), &ann);
    assert_eq!(
        kinds(last["timeline"].as_array().unwrap())
            .iter()
            .filter(|k| *k == "conversation.page")
            .count(),
        3,
        "the page seen while closed was not kept: {last}"
    );
}

#[test]
fn page_views_are_checked_and_do_not_eat_into_sends() {
    let hub = Hub::start_with(&[("HUB_RATE_LIMIT", "on")]);
    let (_, ann) = hub.agent("Ann", "agent");
    let (_, k) = hub.contact();
    hub.say(&k, "hello");
    let long = format!("https://shop.example/{}", "a".repeat(2048));
    for (body, what) in [
        (json!({"url": "javascript:alert(1)"}), "a script"),
        (json!({"url": "ftp://shop.example/"}), "another scheme"),
        (json!({"url": "https://"}), "no host"),
        (json!({"url": "https:///path"}), "no host before the path"),
        (json!({"url": "https://shop.example/a b"}), "a blank"),
        (
            json!({"url": "https://shop.example/\u{7}"}),
            "a control character",
        ),
        (json!({"url": long}), "too long"),
        (json!({"url": 5}), "not a string"),
        (json!({}), "no url"),
        (
            json!({"url": "https://shop.example/", "title": "t".repeat(301)}),
            "a long title",
        ),
        (
            json!({"url": "https://shop.example/", "referrer": "x"}),
            "an unknown field",
        ),
    ] {
        assert_error(page(&hub, &k, body), 400, "invalid", what);
    }
    assert_error(
        page(&hub, &ann, json!({"url": "https://shop.example/"})),
        403,
        "forbidden",
        "an agent",
    );
    assert_error(
        hub.call(
            "POST",
            "/api/widget/page",
            None,
            Some(json!({"url": "https://a.example/"})),
        ),
        401,
        "unauthorized",
        "no token",
    );

    // A burst of 20 pages is taken, the next is refused; messages are still accepted.
    for i in 0..20 {
        let (s, b) = page(
            &hub,
            &k,
            json!({"url": format!("https://shop.example/p{i}")}),
        );
        assert_eq!(s, 200, "page {i}: {b}");
    }
    assert_error(
        page(&hub, &k, json!({"url": "https://shop.example/p20"})),
        429,
        "rate_limited",
        "past the burst",
    );
    for i in 0..5 {
        let (s, b) = hub.post(
            "/api/widget/messages",
            &k,
            json!({"text": format!("still here {i}")}),
        );
        assert_eq!(s, 201, "{b}");
    }
}
