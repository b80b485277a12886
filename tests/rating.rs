//! Customer ratings (an extension): `POST /api/widget/rating`, the `conversation.rated`
//! event, `GET /api/stats?satisfaction=true` and the widget's `?ended=true` view.

mod common;

use common::{assert_error, conv_of, Hub};
use serde_json::{json, Value};

fn rate(hub: &Hub, token: &str, body: Value) -> (u16, Value) {
    hub.post("/api/widget/rating", token, body)
}

fn satisfaction(hub: &Hub, token: &str) -> Value {
    let (s, b) = hub.get("/api/stats?satisfaction=true", token);
    assert_eq!(s, 200, "{b}");
    b["satisfaction"].clone()
}

fn activities(hub: &Hub, token: &str, conv: &str) -> Vec<Value> {
    let (s, b) = hub.get(&format!("/api/conversations/{conv}/activities"), token);
    assert_eq!(s, 200, "{b}");
    b["items"].as_array().unwrap().clone()
}

#[test]
fn a_customer_rates_a_conversation_once_it_ended_and_the_team_sees_it() {
    let mut hub = Hub::start();
    let (_, ann) = hub.agent("Ann", "agent");
    let (k_id, k) = hub.contact();
    let conv = conv_of(&hub.say(&k, "my order is late"));
    let (mut console, _) = hub.console(&ann, None);
    let mut widget = hub.socket("/ws/widget", json!({"type": "hello", "token": k}));
    widget.recv_type("welcome");

    // Nothing rated yet: the figures are empty, and the protocol's answer is unchanged.
    assert_eq!(
        satisfaction(&hub, &ann),
        json!({"ratings": 0, "by_score": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0},
               "average": null, "satisfied_percent": null})
    );
    let (_, plain) = hub.get("/api/stats", &ann);
    assert!(plain.get("satisfaction").is_none(), "{plain}");

    // While the conversation is open and its session active, there is nothing to rate.
    assert_error(
        rate(&hub, &k, json!({"score": 5})),
        409,
        "conflict",
        "open conversation",
    );

    let (s, b) = hub.post(
        &format!("/api/conversations/{conv}/end-session"),
        &ann,
        json!({"reason": "solved"}),
    );
    assert_eq!(s, 200, "{b}");
    widget.recv_event("session.ended", |_| true);
    let (_, before) = hub.get(&format!("/api/conversations/{conv}"), &ann);

    let (s, b) = rate(
        &hub,
        &k,
        json!({"score": 5, "comment": "  Quick and kind  "}),
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b,
        json!({"rating": {"conversation_id": conv, "score": 5, "comment": "Quick and kind"}})
    );
    let ev = console.recv_event("conversation.rated", |_| true);
    assert_eq!(ev["conversation_id"], json!(conv));
    assert_eq!(
        ev["data"],
        json!({"score": 5, "comment": "Quick and kind", "contact_id": k_id})
    );
    // The Conversation object has no rating: its seq stays the one of its last change.
    let (_, after) = hub.get(&format!("/api/conversations/{conv}"), &ann);
    assert_eq!(after["conversation"], before["conversation"]);
    assert!(after["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["type"] == "event" && i["kind"] == "conversation.rated"));
    assert_eq!(
        satisfaction(&hub, &ann),
        json!({"ratings": 1, "by_score": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1},
               "average": 5.0, "satisfied_percent": 100.0})
    );
    // The widget reads its rating back with the session's end.
    let (_, view) = hub.get("/api/widget/messages?ended=true", &k);
    assert_eq!(
        view["conversation"]["rating"],
        json!({"score": 5, "comment": "Quick and kind"})
    );
    let (_, view) = hub.get("/api/widget/messages", &k);
    assert!(view["conversation"].get("rating").is_none(), "{view}");

    // A second thought replaces the first; the same again changes nothing.
    let (s, _) = rate(&hub, &k, json!({"score": 2, "conversation_id": conv}));
    assert_eq!(s, 200);
    let ev = console.recv_event("conversation.rated", |_| true);
    assert_eq!(ev["data"]["score"], 2);
    assert_eq!(ev["data"]["comment"], Value::Null);
    let n = activities(&hub, &ann, &conv).len();
    let (s, _) = rate(&hub, &k, json!({"score": 2}));
    assert_eq!(s, 200);
    assert_eq!(
        activities(&hub, &ann, &conv).len(),
        n,
        "a repeat writes no event"
    );
    assert_eq!(
        satisfaction(&hub, &ann),
        json!({"ratings": 1, "by_score": {"1": 0, "2": 1, "3": 0, "4": 0, "5": 0},
               "average": 2.0, "satisfied_percent": 0.0})
    );

    // The customer's widget never hears of ratings: its next frame is its next message.
    let m = hub.say(&k, "one more question");
    let f = widget.recv();
    assert_eq!(
        (&f["kind"], &f["data"]["message"]["id"]),
        (&json!("message.created"), &m["id"]),
        "{f}"
    );

    // A closed conversation (session still active) can be rated too; the counts add up.
    let conv2 = conv_of(&m);
    let (s, _) = hub.post(
        &format!("/api/conversations/{conv2}/close"),
        &ann,
        json!({}),
    );
    assert_eq!(s, 200);
    let (s, b) = rate(&hub, &k, json!({"score": 4}));
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["rating"]["conversation_id"], json!(conv2));

    // Everything survives a kill -9: the figures, and the rating as the state knows it
    // (the same rating again writes nothing).
    hub.kill9();
    hub.restart();
    assert_eq!(
        satisfaction(&hub, &ann),
        json!({"ratings": 2, "by_score": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 0},
               "average": 3.0, "satisfied_percent": 50.0})
    );
    let n = activities(&hub, &ann, &conv).len();
    let (s, _) = rate(&hub, &k, json!({"score": 2, "conversation_id": conv}));
    assert_eq!(s, 200);
    assert_eq!(activities(&hub, &ann, &conv).len(), n);
}

#[test]
fn ratings_are_checked() {
    let hub = Hub::start();
    let (_, ann) = hub.agent("Ann", "agent");
    let (_, k) = hub.contact();
    let (_, other) = hub.contact();
    let conv = conv_of(&hub.say(&k, "hello"));
    let (s, _) = hub.post(
        &format!("/api/conversations/{conv}/end-session"),
        &ann,
        json!({}),
    );
    assert_eq!(s, 200);

    for body in [
        json!({"score": 0}),
        json!({"score": 6}),
        json!({"score": 3.5}),
        json!({"score": "5"}),
        json!({}),
        json!({"score": 5, "stars": 5}),
        json!({"score": 5, "comment": 7}),
        json!({"score": 5, "comment": "x".repeat(1001)}),
    ] {
        assert_error(
            rate(&hub, &k, body.clone()),
            400,
            "invalid",
            &body.to_string(),
        );
    }
    assert_error(
        hub.call(
            "POST",
            "/api/widget/rating",
            None,
            Some(json!({"score": 5})),
        ),
        401,
        "unauthorized",
        "no token",
    );
    assert_error(
        rate(&hub, &ann, json!({"score": 5})),
        403,
        "forbidden",
        "an agent",
    );
    // Another customer's conversation, or none at all: not found.
    assert_error(
        rate(&hub, &other, json!({"score": 5, "conversation_id": conv})),
        404,
        "not_found",
        "another's conversation",
    );
    assert_error(
        rate(&hub, &other, json!({"score": 5})),
        404,
        "not_found",
        "no conversation",
    );
    assert_error(
        rate(&hub, &k, json!({"score": 5, "conversation_id": "nope"})),
        404,
        "not_found",
        "unknown conversation",
    );
    // The stats' flag reads as every extension's flag does: true/1, false/0, else 400.
    assert_error(
        hub.get("/api/stats?satisfaction=yes", &ann),
        400,
        "invalid",
        "a flag that is no boolean",
    );
    let (s, b) = hub.get("/api/stats?satisfaction=1", &ann);
    assert_eq!(s, 200, "{b}");
    assert!(b["satisfaction"].is_object(), "{b}");
    let (s, b) = rate(&hub, &k, json!({"score": 1, "comment": "   "}));
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["rating"]["comment"],
        Value::Null,
        "a blank comment is none"
    );
}

#[test]
fn a_ratings_comment_is_found_by_search() {
    let hub = Hub::start();
    let (_, ann) = hub.agent("Ann", "agent");
    let (k_id, k) = hub.contact();
    let conv = conv_of(&hub.say(&k, "hello"));
    let (s, _) = hub.post(&format!("/api/conversations/{conv}/close"), &ann, json!({}));
    assert_eq!(s, 200);
    let (s, _) = rate(
        &hub,
        &k,
        json!({"score": 3, "comment": "La livraison était lente"}),
    );
    assert_eq!(s, 200);
    let (s, b) = hub.get("/api/search?q=livraison%20lente", &ann);
    assert_eq!(s, 200, "{b}");
    let items = b["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{b}");
    assert_eq!(items[0]["kind"], "conversation.rated");
    assert_eq!(items[0]["data"]["contact_id"], json!(k_id));
    assert!(b["conversations"][&conv].is_object(), "{b}");
    // A rating without words has nothing to find.
    let (s, _) = rate(&hub, &k, json!({"score": 4}));
    assert_eq!(s, 200);
    let (_, b) = hub.get("/api/search?q=livraison", &ann);
    assert_eq!(b["items"].as_array().unwrap().len(), 1, "{b}");
}
