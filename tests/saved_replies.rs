//! An extension: saved replies, the team's canned answers with a shortcut. Supervisors
//! and admins keep them, every agent reads them; shortcuts are unique whatever their
//! case; a change is durable (kill -9), a deletion too.

mod common;

use common::{assert_error, Hub, ADMIN};
use serde_json::{json, Value};

fn list(hub: &Hub, token: &str) -> Vec<(String, String)> {
    let (s, b) = hub.get("/api/saved-replies", token);
    assert_eq!(s, 200, "{b}");
    b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["shortcut"].as_str().unwrap().to_string(),
                r["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn create(hub: &Hub, token: &str, shortcut: &str, text: &str) -> Value {
    let (s, b) = hub.post(
        "/api/saved-replies",
        token,
        json!({"shortcut": shortcut, "text": text}),
    );
    assert_eq!(s, 201, "{b}");
    b
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn supervisors_keep_saved_replies_every_agent_reads_them_and_they_last() {
    let mut hub = Hub::start();
    let sue = hub.agent("Sue", "supervisor");
    let ann = hub.agent("Ann", "agent");
    let refund = create(
        &hub,
        &sue.1,
        "/refund",
        "Bonjour {{customer.first_name|}}, votre remboursement part aujourd'hui.",
    );
    assert_eq!(
        refund["shortcut"], "refund",
        "the leading / is not part of it"
    );
    assert_eq!(refund["updated_by"], sue.0.as_str());
    assert!(refund["id"].as_str().unwrap().starts_with("sr_"));
    assert!(refund["updated_at"].as_str().unwrap().ends_with('Z'));
    let hello = create(&hub, ADMIN, "Hello_2", "Hello! How can I help?");
    create(&hub, &sue.1, "délai", "Comptez 3 à 5 jours.");
    assert_eq!(
        list(&hub, &ann.1),
        pairs(&[
            ("délai", "Comptez 3 à 5 jours."),
            ("Hello_2", "Hello! How can I help?"),
            (
                "refund",
                "Bonjour {{customer.first_name|}}, votre remboursement part aujourd'hui."
            ),
        ]),
        "every agent reads them, by shortcut whatever its case"
    );

    // Replaced (shortcut kept or changed), then deleted.
    let id = refund["id"].as_str().unwrap();
    let (s, b) = hub.call(
        "PUT",
        &format!("/api/saved-replies/{id}"),
        Some(&sue.1),
        Some(json!({"shortcut": "rembourse", "text": "Votre remboursement est parti."})),
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (b["id"].as_str(), b["shortcut"].as_str()),
        (Some(id), Some("rembourse"))
    );
    let (s, b) = hub.call(
        "DELETE",
        &format!("/api/saved-replies/{}", hello["id"].as_str().unwrap()),
        Some(&sue.1),
        None,
    );
    assert_eq!(s, 204, "{b}");
    let want = pairs(&[
        ("délai", "Comptez 3 à 5 jours."),
        ("rembourse", "Votre remboursement est parti."),
    ]);
    assert_eq!(list(&hub, &ann.1), want);
    hub.kill9();
    hub.restart();
    assert_eq!(
        list(&hub, &ann.1),
        want,
        "changes and the deletion are durable"
    );
    // the freed shortcut may be used again
    create(&hub, &sue.1, "hello_2", "Hi again");
}

#[test]
fn saved_replies_refuse_what_is_not_allowed_or_means_nothing() {
    let hub = Hub::start();
    let sue = hub.agent("Sue", "supervisor");
    let ann = hub.agent("Ann", "agent");
    let (_, k) = hub.contact();
    let first = create(&hub, &sue.1, "thanks", "Thank you!");
    let id = first["id"].as_str().unwrap().to_string();
    let body = json!({"shortcut": "x", "text": "y"});
    assert_error(
        hub.post("/api/saved-replies", &ann.1, body.clone()),
        403,
        "forbidden",
        "an agent",
    );
    assert_error(
        hub.post("/api/saved-replies", &k, body.clone()),
        403,
        "forbidden",
        "a contact",
    );
    assert_error(
        hub.post("/api/saved-replies", "", body.clone()),
        401,
        "unauthorized",
        "no token",
    );
    assert_error(
        hub.get("/api/saved-replies", &k),
        403,
        "forbidden",
        "a contact reads",
    );
    assert_error(
        hub.call(
            "DELETE",
            &format!("/api/saved-replies/{id}"),
            Some(&ann.1),
            None,
        ),
        403,
        "forbidden",
        "an agent deletes",
    );
    for (b, what) in [
        (json!({"shortcut": "", "text": "y"}), "empty shortcut"),
        (json!({"shortcut": "/", "text": "y"}), "only a slash"),
        (
            json!({"shortcut": "two words", "text": "y"}),
            "a blank inside",
        ),
        (
            json!({"shortcut": "a".repeat(33), "text": "y"}),
            "33 characters",
        ),
        (json!({"shortcut": "ok", "text": "  "}), "blank text"),
        (json!({"shortcut": "ok"}), "no text"),
        (
            json!({"shortcut": "ok", "text": "y", "extra": 1}),
            "unknown field",
        ),
        (json!({"shortcut": 5, "text": "y"}), "not a string"),
    ] {
        assert_error(
            hub.post("/api/saved-replies", &sue.1, b),
            400,
            "invalid",
            what,
        );
    }
    let (s, _) = hub.post(
        "/api/saved-replies",
        &sue.1,
        json!({"shortcut": "long", "text": "x".repeat(20_000)}),
    );
    assert_eq!(s, 413, "a text longer than a reply may be");
    assert_error(
        hub.post(
            "/api/saved-replies",
            &sue.1,
            json!({"shortcut": "THANKS", "text": "dup"}),
        ),
        409,
        "conflict",
        "a taken shortcut, whatever its case",
    );
    let other = create(&hub, &sue.1, "other", "Other");
    assert_error(
        hub.call(
            "PUT",
            &format!("/api/saved-replies/{}", other["id"].as_str().unwrap()),
            Some(&sue.1),
            Some(json!({"shortcut": "Thanks", "text": "dup"})),
        ),
        409,
        "conflict",
        "renamed onto a taken shortcut",
    );
    for method in ["PUT", "DELETE"] {
        assert_error(
            hub.call(
                method,
                "/api/saved-replies/sr_nope",
                Some(&sue.1),
                Some(body.clone()),
            ),
            404,
            "not_found",
            method,
        );
    }
    assert_eq!(
        list(&hub, &ann.1),
        pairs(&[("other", "Other"), ("thanks", "Thank you!")]),
        "nothing refused was kept"
    );
}
