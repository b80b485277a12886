//! PROTOCOL §5 over HTTP: the chat widget opens a session, writes, and reads back what a
//! contact may see — never statuses, assignees, help, holds or comments (§4).

mod common;

use common::{Hub, ADMIN};
use serde_json::{json, Value};

/// The only fields a contact sees of its message.
const CONTACT_FIELDS: [&str; 6] = ["id", "conversation_id", "contact_id", "text", "at", "seq"];

fn assert_contact_view(m: &Value) {
    let obj = m
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {m}"));
    for f in CONTACT_FIELDS {
        assert!(obj.contains_key(f), "missing {f} in {m}");
    }
    for f in ["status", "assignee", "help", "hold_until"] {
        assert!(!obj.contains_key(f), "a contact must not see {f}: {m}");
    }
    let extra: Vec<&String> = obj
        .keys()
        .filter(|k| !CONTACT_FIELDS.contains(&k.as_str()) && *k != "type")
        .collect();
    assert!(
        extra.is_empty(),
        "fields beyond the contact view: {extra:?} in {m}"
    );
}

fn all_count(hub: &Hub) -> u64 {
    let (s, b) = hub.get("/api/inbox?folder=all", ADMIN);
    assert_eq!(s, 200, "{b}");
    b["counts"]["all"].as_u64().unwrap()
}

fn widget_list(hub: &Hub, token: &str) -> Value {
    let (s, b) = hub.get("/api/widget/messages", token);
    assert_eq!(s, 200, "{b}");
    b
}

#[test]
fn opening_a_widget_session_needs_no_token_and_defaults_to_the_web_channel() {
    let hub = Hub::start();
    let (s, b) = hub.call("POST", "/api/widget/session", None, Some(json!({})));
    assert_eq!(s, 201, "{b}");
    let contact = b["contact_id"].as_str().expect("contact_id").to_string();
    let token = b["token"].as_str().expect("token").to_string();
    assert!(!token.is_empty());

    let m = hub.say(&token, "hi");
    assert_eq!(m["contact_id"], contact.as_str());
    let (s, c) = hub.get(
        &format!(
            "/api/conversations/{}",
            m["conversation_id"].as_str().unwrap()
        ),
        ADMIN,
    );
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["conversation"]["channel"], "web");
    assert_eq!(c["conversation"]["contact_id"], contact.as_str());
}

#[test]
fn a_widget_session_on_a_named_channel_with_a_name_and_email() {
    let hub = Hub::start();
    let (s, b) = hub.call(
        "POST",
        "/api/widget/session",
        None,
        Some(json!({"channel": "whatsapp", "name": "Ann", "email": "ann@example.com"})),
    );
    assert_eq!(s, 201, "{b}");
    let m = hub.say(b["token"].as_str().unwrap(), "hi");
    let (_, c) = hub.get(
        &format!(
            "/api/conversations/{}",
            m["conversation_id"].as_str().unwrap()
        ),
        ADMIN,
    );
    assert_eq!(c["conversation"]["channel"], "whatsapp");
    // Two sessions are two different contacts.
    let (s, b2) = hub.call("POST", "/api/widget/session", None, Some(json!({})));
    assert_eq!(s, 201);
    assert_ne!(b["contact_id"], b2["contact_id"]);
    assert_ne!(b["token"], b2["token"]);
}

#[test]
fn a_widget_session_with_an_overlong_name_or_email_is_invalid() {
    let hub = Hub::start();
    for (body, what) in [
        (json!({"name": "n".repeat(201)}), "name over 200 characters"),
        (
            json!({"email": "e".repeat(321)}),
            "email over 320 characters",
        ),
        (json!({"name": 7}), "name not a string"),
    ] {
        let (s, b) = hub.call("POST", "/api/widget/session", None, Some(body));
        assert_eq!(s, 400, "{what}: {b}");
        assert_eq!(b["error"]["code"], "invalid", "{what}: {b}");
    }
    let (s, b) = hub.call(
        "POST",
        "/api/widget/session",
        None,
        Some(json!({"name": "n".repeat(200), "email": "e".repeat(320)})),
    );
    assert_eq!(s, 201, "at the limits: {b}");
}

#[test]
fn channel_and_client_id_limits_count_characters_not_bytes() {
    let hub = Hub::start();
    for (channel, status) in [("é".repeat(64), 201), ("€".repeat(65), 400)] {
        let (s, b) = hub.call(
            "POST",
            "/api/widget/session",
            None,
            Some(json!({ "channel": channel })),
        );
        assert_eq!(s, status, "{} characters: {b}", channel.chars().count());
    }
    let (_, token) = hub.contact();
    for (cid, status) in [("😀".repeat(200), 201), ("é".repeat(201), 400)] {
        let (s, b) = hub.post(
            "/api/widget/messages",
            &token,
            json!({"text": "hi", "client_id": cid}),
        );
        assert_eq!(s, status, "{} characters: {b}", cid.chars().count());
    }
}

#[test]
fn sending_a_message_answers_201_with_only_the_contact_view() {
    let hub = Hub::start();
    let (contact_id, token) = hub.contact();
    let (s, b) = hub.post(
        "/api/widget/messages",
        &token,
        json!({"text": "my parcel is late"}),
    );
    assert_eq!(s, 201, "{b}");
    let m = &b["message"];
    assert_contact_view(m);
    assert_eq!(m["text"], "my parcel is late");
    assert_eq!(m["contact_id"], contact_id.as_str());
    assert!(m["seq"].as_u64().unwrap() > 0);
    let at = m["at"].as_str().unwrap();
    assert!(
        at.ends_with('Z') && at.len() == "2024-01-01T00:00:00.000Z".len(),
        "RFC 3339 UTC ms: {at}"
    );

    // The agent side sees the same message, with a status.
    let full = hub.message(ADMIN, m["id"].as_str().unwrap());
    assert_eq!(full["status"], "pending");
    assert_eq!(full["text"], "my parcel is late");
    assert_eq!(full["conversation_id"], m["conversation_id"]);
}

#[test]
fn the_contact_view_hides_status_even_once_an_agent_works_on_the_message() {
    let hub = Hub::start();
    let (_, alice) = hub.agent("Alice", "agent");
    let (_, token) = hub.contact();
    let m = hub.say(&token, "one");
    let id = m["id"].as_str().unwrap();
    assert_eq!(hub.act(&alice, id, "assign", json!({})).0, 200);
    assert_eq!(
        hub.act(&alice, id, "hold", json!({"for_seconds": 600})).0,
        200
    );
    let (s, b) = hub.post("/api/widget/messages", &token, json!({"text": "two"}));
    assert_eq!(s, 201);
    assert_contact_view(&b["message"]);
    for item in widget_list(&hub, &token)["items"].as_array().unwrap() {
        if item["type"] == "message" {
            assert_contact_view(item);
        }
    }
}

#[test]
fn a_repeated_client_id_answers_200_with_the_first_message_and_creates_nothing() {
    let hub = Hub::start();
    let (_, token) = hub.contact();
    let (s, first) = hub.post(
        "/api/widget/messages",
        &token,
        json!({"text": "hello", "client_id": "c-1"}),
    );
    assert_eq!(s, 201, "{first}");
    let count = all_count(&hub);
    assert_eq!(count, 1);

    let (s, again) = hub.post(
        "/api/widget/messages",
        &token,
        json!({"text": "hello", "client_id": "c-1"}),
    );
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["message"], first["message"]);
    assert_contact_view(&again["message"]);
    // The key wins even if the text differs.
    let (s, other) = hub.post(
        "/api/widget/messages",
        &token,
        json!({"text": "changed", "client_id": "c-1"}),
    );
    assert_eq!(s, 200);
    assert_eq!(other["message"], first["message"]);

    // An agent's handling changes the message, not what its contact is answered
    // (PROTOCOL §4: the contact's copy, with the seq of its creation).
    let (_, agent) = hub.agent("Ann", "agent");
    let id = first["message"]["id"].as_str().unwrap();
    let (s, b) = hub.act(&agent, id, "assign", json!({}));
    assert_eq!(s, 200, "{b}");
    assert!(b["message"]["seq"].as_u64() > first["message"]["seq"].as_u64());
    let (s, later) = hub.post(
        "/api/widget/messages",
        &token,
        json!({"text": "hello", "client_id": "c-1"}),
    );
    assert_eq!(s, 200);
    assert_eq!(later["message"], first["message"], "after an assignment");

    assert_eq!(all_count(&hub), count, "the all folder did not grow");
    assert_eq!(
        widget_list(&hub, &token)["items"].as_array().unwrap().len(),
        1
    );

    // Another key is another message.
    let (s, _) = hub.post(
        "/api/widget/messages",
        &token,
        json!({"text": "hello", "client_id": "c-2"}),
    );
    assert_eq!(s, 201);
    assert_eq!(all_count(&hub), count + 1);
}

#[test]
fn every_client_id_of_a_chatty_contact_is_kept_across_conversations_and_restarts() {
    let mut hub = Hub::start();
    let (_, agent) = hub.agent("Alice", "agent");
    let (_, token) = hub.contact();
    let send = |hub: &Hub, i: usize| {
        hub.post(
            "/api/widget/messages",
            &token,
            json!({"text": format!("question {i}"), "client_id": format!("chatty-{i}")}),
        )
    };
    // Enough client ids to need several records, over two conversations.
    let mut first = Vec::new();
    for i in 0..60 {
        if i == 30 {
            let conv = common::conv_of(&first[0]);
            let (s, b) = hub.post(
                &format!("/api/conversations/{conv}/end-session"),
                &agent,
                json!({}),
            );
            assert_eq!(s, 200, "{b}");
        }
        let (s, b) = send(&hub, i);
        assert_eq!(s, 201, "{b}");
        first.push(b["message"].clone());
    }
    assert_ne!(common::conv_of(&first[0]), common::conv_of(&first[59]));
    hub.restart();
    for (i, m) in first.iter().enumerate().rev() {
        let (s, b) = send(&hub, i);
        assert_eq!(s, 200, "chatty-{i}: {b}");
        assert_eq!(&b["message"], m, "chatty-{i}");
    }
    assert_eq!(all_count(&hub), 60, "no repeat created a message");
    let (s, b) = send(&hub, 60);
    assert_eq!(s, 201, "{b}");
    assert_eq!(all_count(&hub), 61);
}

#[test]
fn client_ids_belong_to_one_contact() {
    let hub = Hub::start();
    let (_, ann) = hub.contact();
    let (_, ben) = hub.contact();
    let (s, a) = hub.post(
        "/api/widget/messages",
        &ann,
        json!({"text": "from ann", "client_id": "same"}),
    );
    assert_eq!(s, 201);
    let (s, b) = hub.post(
        "/api/widget/messages",
        &ben,
        json!({"text": "from ben", "client_id": "same"}),
    );
    assert_eq!(s, 201, "another contact's key is another key: {b}");
    assert_ne!(a["message"]["id"], b["message"]["id"]);
    assert_eq!(b["message"]["text"], "from ben");
}

#[test]
fn before_writing_the_contact_has_no_conversation() {
    let hub = Hub::start();
    let (_, token) = hub.contact();
    let b = widget_list(&hub, &token);
    assert_eq!(b["conversation"], Value::Null);
    assert_eq!(b["items"], json!([]));
}

#[test]
fn the_contact_reads_its_messages_and_replies_oldest_first_and_never_comments() {
    let hub = Hub::start();
    let (alice_id, alice) = hub.agent("Alice", "agent");
    let (_, token) = hub.contact();
    let m1 = hub.say(&token, "hi");
    let conv = m1["conversation_id"].as_str().unwrap().to_string();
    let (s, c) = hub.post(
        &format!("/api/conversations/{conv}/comments"),
        &alice,
        json!({"text": "VIP customer, @Alice"}),
    );
    assert_eq!(s, 201, "{c}");
    let (s, r) = hub.post(
        &format!("/api/conversations/{conv}/replies"),
        &alice,
        json!({"text": "hello!"}),
    );
    assert_eq!(s, 201, "{r}");
    let m2 = hub.say(&token, "thanks");

    let b = widget_list(&hub, &token);
    assert_eq!(b["conversation"], json!({"id": conv, "session": "active"}));
    let items = b["items"].as_array().unwrap();
    let kinds: Vec<&str> = items.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["message", "reply", "message"], "{b}");
    assert_eq!(items[0]["id"], m1["id"]);
    assert_eq!(items[1]["id"], r["reply"]["id"]);
    assert_eq!(items[1]["text"], "hello!");
    assert_eq!(items[1]["author"], json!({"kind": "agent", "id": alice_id}));
    assert_eq!(items[2]["id"], m2["id"]);
    let seqs: Vec<u64> = items.iter().map(|i| i["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {seqs:?}"
    );
    let text = b.to_string();
    assert!(
        !text.contains("VIP customer"),
        "a comment leaked to the contact: {text}"
    );
    assert!(!text.contains("\"status\""), "a status leaked: {text}");
    assert_contact_view(&items[0]);
    assert_contact_view(&items[2]);
}

#[test]
fn the_session_shows_ended_after_an_agent_ends_it_and_a_new_message_opens_a_new_conversation() {
    let hub = Hub::start();
    let (_, alice) = hub.agent("Alice", "agent");
    let (_, token) = hub.contact();
    let m1 = hub.say(&token, "hi");
    let conv = m1["conversation_id"].as_str().unwrap().to_string();
    let (s, _) = hub.post(
        &format!("/api/conversations/{conv}/end-session"),
        &alice,
        json!({}),
    );
    assert_eq!(s, 200);
    assert_eq!(
        widget_list(&hub, &token)["conversation"],
        json!({"id": conv, "session": "ended"})
    );

    let m2 = hub.say(&token, "me again");
    assert_ne!(m2["conversation_id"], m1["conversation_id"]);
    let b = widget_list(&hub, &token);
    assert_eq!(b["conversation"]["id"], m2["conversation_id"]);
    assert_eq!(b["conversation"]["session"], "active");
    assert_eq!(
        b["items"].as_array().unwrap().len(),
        1,
        "only the latest conversation: {b}"
    );
}

#[test]
fn another_contact_cannot_see_the_first_contacts_messages() {
    let hub = Hub::start();
    let (_, ann) = hub.contact();
    let (_, ben) = hub.contact();
    let secret = hub.say(&ann, "my card number is 4111");
    let b = widget_list(&hub, &ben);
    assert_eq!(b["conversation"], Value::Null);
    assert_eq!(b["items"], json!([]));
    let mine = hub.say(&ben, "hello");
    assert_ne!(
        mine["conversation_id"], secret["conversation_id"],
        "each contact has its own conversation"
    );
    let b = widget_list(&hub, &ben);
    assert!(!b.to_string().contains("4111"), "{b}");
    assert_eq!(b["items"].as_array().unwrap().len(), 1);
    assert_eq!(widget_list(&hub, &ann)["items"][0]["id"], secret["id"]);
}

#[test]
fn an_agent_token_on_a_widget_route_is_forbidden() {
    let hub = Hub::start();
    let (_, alice) = hub.agent("Alice", "agent");
    let (s, b) = hub.post("/api/widget/messages", &alice, json!({"text": "hi"}));
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{b}"
    );
    // 403 for the token kind comes before the body check.
    let (s, b) = hub.call_raw(
        "POST",
        "/api/widget/messages",
        Some(&alice),
        Some("{oops".into()),
    );
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{b}"
    );
    let (s, b) = hub.get("/api/widget/messages", ADMIN);
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{b}"
    );
    assert_eq!(all_count(&hub), 0, "nothing was written");
}

#[test]
fn widget_routes_without_or_with_an_unknown_token_answer_401() {
    let hub = Hub::start();
    let (s, b) = hub.call(
        "POST",
        "/api/widget/messages",
        None,
        Some(json!({"text": "hi"})),
    );
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{b}"
    );
    // A real contact's id with another secret, another contact's secret, an unknown id.
    let (k, token) = hub.contact();
    let (_, other) = hub.contact();
    let secret = |t: &str| t.rsplit('.').next().unwrap().to_string();
    for forged in [
        "not-a-token".to_string(),
        format!("{k}.{}", "0".repeat(32)),
        format!("{k}.{}", secret(&other)),
        format!("k_000000000000ffffffffffffffff.{}", secret(&token)),
    ] {
        let (s, b) = hub.call("GET", "/api/widget/messages", Some(&forged), None);
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{forged}: {b}"
        );
    }
    assert_eq!(all_count(&hub), 0);
    assert_eq!(hub.get("/api/widget/messages", &token).0, 200);
}

#[test]
fn a_contact_token_cannot_read_agent_routes() {
    let hub = Hub::start();
    let (_, token) = hub.contact();
    let m = hub.say(&token, "hi");
    for path in [
        "/api/inbox?folder=all".to_string(),
        "/api/agents".to_string(),
        format!(
            "/api/conversations/{}",
            m["conversation_id"].as_str().unwrap()
        ),
    ] {
        let (s, b) = hub.get(&path, &token);
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{path}: {b}"
        );
    }
}

#[test]
fn a_message_to_a_closed_conversation_with_an_active_session_reopens_it() {
    let hub = Hub::start();
    let (_, alice) = hub.agent("Alice", "agent");
    let (_, token) = hub.contact();
    let m1 = hub.say(&token, "hi");
    let conv = m1["conversation_id"].as_str().unwrap().to_string();
    let (s, b) = hub.post(
        &format!("/api/conversations/{conv}/close"),
        &alice,
        json!({}),
    );
    assert_eq!(s, 200, "{b}");
    let m2 = hub.say(&token, "one more thing");
    assert_eq!(m2["conversation_id"], conv.as_str(), "same conversation");
    let (_, c) = hub.get(&format!("/api/conversations/{conv}"), &alice);
    assert_eq!(c["conversation"]["state"], "open");
    assert_eq!(
        widget_list(&hub, &token)["items"].as_array().unwrap().len(),
        2
    );
}

#[test]
fn concurrent_repeats_of_one_client_id_create_exactly_one_message() {
    let hub = Hub::start();
    let (_, token) = hub.contact();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (url, token) = (hub.url.clone(), token.clone());
            std::thread::spawn(move || {
                let r = ureq::post(&format!("{url}/api/widget/messages"))
                    .set("Authorization", &format!("Bearer {token}"))
                    .send_json(json!({"text": "once", "client_id": "dup"}))
                    .expect("send");
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
    for (_, b) in &answers {
        assert_eq!(b["message"], answers[0].1["message"]);
    }
    assert_eq!(all_count(&hub), 1);
    assert_eq!(
        widget_list(&hub, &token)["items"].as_array().unwrap().len(),
        1
    );
}

/// An extension: `?earlier=N` adds the contact's conversations before the latest (on its
/// channel), oldest first, each as its contact sees it, so that what was said before
/// an ended session is still there after a reload.
#[test]
fn earlier_conversations_come_with_the_history_when_asked() {
    let hub = Hub::start();
    let (_, a) = hub.agent("Ann", "agent");
    let (_, k) = hub.contact();
    let mut convs = Vec::new();
    for round in 0..3 {
        let m = hub.say(&k, &format!("question {round}"));
        let conv = m["conversation_id"].as_str().unwrap().to_string();
        let (s, b) = hub.post(
            &format!("/api/conversations/{conv}/replies"),
            &a,
            json!({"text": format!("answer {round}")}),
        );
        assert_eq!(s, 201, "{b}");
        let (s, b) = hub.post(
            &format!("/api/conversations/{conv}/comments"),
            &a,
            json!({"text": "internal"}),
        );
        assert_eq!(s, 201, "{b}");
        let (s, b) = hub.post(
            &format!("/api/conversations/{conv}/end-session"),
            &a,
            json!({}),
        );
        assert_eq!(s, 200, "{b}");
        convs.push(conv);
    }
    let latest = hub.say(&k, "question 3");
    let last = latest["conversation_id"].as_str().unwrap().to_string();

    // Without the parameter: §5's answer, as it was.
    let plain = widget_list(&hub, &k);
    assert!(plain.get("earlier").is_none(), "{plain}");
    assert_eq!(plain["conversation"]["id"], last.as_str());

    let (s, b) = hub.get("/api/widget/messages?earlier=2", &k);
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["items"], plain["items"]);
    let earlier = b["earlier"].as_array().unwrap();
    let ids: Vec<&str> = earlier
        .iter()
        .map(|c| c["conversation"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [convs[1].as_str(), convs[2].as_str()],
        "the last two, oldest first"
    );
    for (c, round) in earlier.iter().zip(1..) {
        assert_eq!(c["conversation"]["session"], "ended");
        let items = c["items"].as_array().unwrap();
        let texts: Vec<&str> = items
            .iter()
            .map(|it| it["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            texts,
            [format!("question {round}"), format!("answer {round}")]
        );
        assert_contact_view(&items[0]);
        assert_eq!(items[1]["type"], "reply");
    }
    let (_, b) = hub.get("/api/widget/messages?earlier=50", &k);
    assert_eq!(
        b["earlier"].as_array().unwrap().len(),
        3,
        "all three (at most 10)"
    );
    let (s, b) = hub.get("/api/widget/messages?earlier=many", &k);
    assert_eq!((s, b["error"]["code"].as_str()), (400, Some("invalid")));

    // A contact (here on another channel) with one conversation has none earlier.
    let (s, b) = hub.call(
        "POST",
        "/api/widget/session",
        None,
        Some(json!({"channel": "shop"})),
    );
    assert_eq!(s, 201, "{b}");
    let other = b["token"].as_str().unwrap();
    hub.say(other, "hello from the shop");
    let (_, b) = hub.get("/api/widget/messages?earlier=5", other);
    assert_eq!(b["earlier"], json!([]));
}

/// An extension: asked to (`?authors=true`), the history names the agents whose replies
/// it holds, and only those, so that the widget can say who answered.
#[test]
fn the_history_names_the_agents_who_answered_and_no_one_else() {
    let hub = Hub::start();
    let (ann_id, ann) = hub.agent("Ann Lee", "agent");
    let (bob_id, bob) = hub.agent("Bob Stone", "agent");
    let (carl_id, _) = hub.agent("Carl", "agent");
    let (_, k) = hub.contact();
    let first = hub.say(&k, "where is my parcel?");
    let conv = first["conversation_id"].as_str().unwrap().to_string();
    let reply = |token: &str, text: &str| {
        let (s, b) = hub.post(
            &format!("/api/conversations/{conv}/replies"),
            token,
            json!({ "text": text }),
        );
        assert_eq!(s, 201, "{b}");
    };
    let named = |q: &str| {
        let (s, b) = hub.get(&format!("/api/widget/messages?authors=true{q}"), &k);
        assert_eq!(s, 200, "{b}");
        b
    };
    assert_eq!(named("")["authors"], json!({}), "no reply yet");

    reply(&ann, "on its way");
    let (s, b) = hub.post(
        &format!("/api/conversations/{conv}/comments"),
        &bob,
        json!({"text": "@Carl have a look"}),
    );
    assert_eq!(s, 201, "{b}");
    let b = named("");
    assert_eq!(
        b["authors"],
        json!({ ann_id.as_str(): {"name": "Ann Lee"} })
    );
    // only when asked: §5's answer stays as it is
    let plain = widget_list(&hub, &k);
    assert!(plain.get("authors").is_none(), "{plain}");
    assert_eq!(plain["items"], b["items"]);
    let (s, b) = hub.get("/api/widget/messages?authors=maybe", &k);
    assert_eq!((s, b["error"]["code"].as_str()), (400, Some("invalid")));

    // Bob answers after the session ended and a new conversation began: his reply is in
    // an earlier conversation, named only when the widget asks for those.
    reply(&bob, "it arrives tomorrow");
    let (s, b) = hub.post(
        &format!("/api/conversations/{conv}/end-session"),
        &ann,
        json!({}),
    );
    assert_eq!(s, 200, "{b}");
    hub.say(&k, "thanks!");
    let latest = named("");
    assert_eq!(latest["authors"], json!({}), "{latest}");
    let b = named("&earlier=3");
    assert_eq!(
        b["authors"],
        json!({
            ann_id.as_str(): {"name": "Ann Lee"},
            bob_id.as_str(): {"name": "Bob Stone"},
        })
    );
    assert!(b["authors"].get(carl_id.as_str()).is_none());
}

/// An extension: `GET /api/widget/messages?ended=true` says how each session ended (the
/// agent's reason, who, when: what the live `session.ended` frame told the contact), so
/// that a reloaded widget shows the same notice; null while the session is active. Only
/// when asked: §5's conversation stays `{"id","session"}`.
#[test]
fn the_history_says_why_a_session_ended_when_asked() {
    let hub = Hub::start();
    let (ann_id, ann) = hub.agent("Ann", "agent");
    let (_, k) = hub.contact();
    let mut live = hub.socket("/ws/widget", json!({"type": "hello", "token": k}));
    live.recv_type("welcome");
    let first = hub.say(&k, "my parcel never came");
    let conv = first["conversation_id"].as_str().unwrap().to_string();
    let ended = |q: &str| {
        let (s, b) = hub.get(&format!("/api/widget/messages?ended=true{q}"), &k);
        assert_eq!(s, 200, "{b}");
        b
    };
    assert_eq!(
        ended("")["conversation"],
        json!({"id": conv, "session": "active", "ended": null, "rating": null})
    );

    let (s, b) = hub.post(
        &format!("/api/conversations/{conv}/end-session"),
        &ann,
        json!({"reason": "Refund sent: see your e-mail"}),
    );
    assert_eq!(s, 200, "{b}");
    let frame = live.recv_event("session.ended", |_| true);
    let b = ended("");
    assert_eq!(
        b["conversation"],
        json!({
            "id": conv,
            "session": "ended",
            "ended": {"reason": "Refund sent: see your e-mail", "by": ann_id, "at": frame["at"]},
            "rating": null,
        }),
        "what the live frame said: {frame}"
    );
    assert_eq!(
        b["conversation"]["ended"]["reason"],
        frame["data"]["reason"]
    );
    // only when asked: §5's answer as it was
    let plain = widget_list(&hub, &k);
    assert_eq!(
        plain["conversation"],
        json!({"id": conv, "session": "ended"})
    );
    assert_eq!(plain["items"], b["items"]);
    let (s, b) = hub.get("/api/widget/messages?ended=yes", &k);
    assert_eq!((s, b["error"]["code"].as_str()), (400, Some("invalid")));

    // A new conversation: the ended one is among the earlier ones, with its reason; an
    // end without a reason says null.
    let second = hub.say(&k, "and another thing");
    let conv2 = second["conversation_id"].as_str().unwrap().to_string();
    let (s, b) = hub.post(
        &format!("/api/conversations/{conv2}/end-session"),
        &ann,
        json!({}),
    );
    assert_eq!(s, 200, "{b}");
    let b = ended("&earlier=5");
    assert_eq!(b["conversation"]["id"], conv2.as_str());
    assert_eq!(b["conversation"]["ended"]["reason"], Value::Null);
    assert_eq!(b["conversation"]["ended"]["by"], ann_id.as_str());
    let earlier = &b["earlier"][0]["conversation"];
    assert_eq!(earlier["id"], conv.as_str());
    assert_eq!(earlier["ended"]["reason"], "Refund sent: see your e-mail");
    let without = hub.get("/api/widget/messages?earlier=5", &k).1;
    assert!(without["earlier"][0]["conversation"].get("ended").is_none());
}

/// `GET /api/widget/availability` (an extension): whether an agent is online now, and the
/// team's median first response; no token needed.
#[test]
fn the_widget_learns_whether_someone_is_online_and_how_fast_the_team_replies() {
    let hub = Hub::start();
    let (_, ann) = hub.agent("Ann", "agent");
    let (_, k) = hub.contact();
    let m = hub.say(&k, "anyone there?");
    let (s, _) = hub.post(
        &format!("/api/conversations/{}/replies", common::conv_of(&m)),
        &ann,
        json!({"text": "yes"}),
    );
    assert_eq!(s, 201);

    let availability = |token: Option<&str>| {
        let (s, b) = hub.call("GET", "/api/widget/availability", token, None);
        assert_eq!(s, 200, "{b}");
        b
    };
    let a = availability(None);
    assert_eq!(a["online"], false, "{a}");
    let typical = a["typical_reply_seconds"]
        .as_f64()
        .expect("a first response was made");
    assert!((0.0..60.0).contains(&typical), "{a}");

    // A console makes its agent online; away is not online.
    let (mut console, _) = hub.console(&ann, None);
    assert_eq!(availability(Some(&k))["online"], true);
    console.send(json!({"type": "presence", "status": "away"}));
    console.recv_event("presence.changed", |e| e["data"]["presence"] == "away");
    assert_eq!(availability(Some(&ann))["online"], false);
    console.send(json!({"type": "presence", "status": "online"}));
    console.recv_event("presence.changed", |e| e["data"]["presence"] == "online");
    assert_eq!(availability(None)["online"], true);
}
