//! An extension: `GET /api/search` finds messages, replies, comments, closing notes,
//! end-of-session reasons, help questions and answers, and customers by name or
//! e-mail address; folded for case and accents, each query word the start of a word,
//! newest first, paged; found as soon as it is acknowledged; kept across `kill -9`, and
//! rebuilt from the log when its index is gone.

mod common;

use common::{act_ok, assert_error, conv_of, eventually, id, Hub, ADMIN};
use serde_json::{json, Value};

fn search(hub: &Hub, token: &str, q: &str) -> Value {
    let (s, b) = hub.get(&format!("/api/search?{q}"), token);
    assert_eq!(s, 200, "{q}: {b}");
    b
}

/// The (kind, seq) of each item.
fn found(b: &Value) -> Vec<(String, u64)> {
    b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn named_contact(hub: &Hub, name: &str, email: &str) -> (String, String) {
    let (s, b) = hub.call(
        "POST",
        "/api/widget/session",
        None,
        Some(json!({"name": name, "email": email})),
    );
    assert_eq!(s, 201, "{b}");
    (
        b["contact_id"].as_str().unwrap().into(),
        b["token"].as_str().unwrap().into(),
    )
}

#[test]
fn every_text_of_a_conversation_is_found_folded_and_by_word_starts() {
    let hub = Hub::start();
    let ann = hub.agent("Ann", "agent");
    let sue = hub.agent("Sue", "supervisor");
    let (contact, k) = named_contact(&hub, "Marie Dupont", "marie.dupont@example.com");
    let first = hub.say(
        &k,
        "Bonjour, je voudrais un REMBOURSEMENT de la commande 12345",
    );
    let conv = conv_of(&first);
    let m = id(&first);
    act_ok(&hub, &ann.1, &m, "assign", json!({}));
    act_ok(
        &hub,
        &ann.1,
        &m,
        "request-help",
        json!({"question": "Politique de remboursé partiel ?"}),
    );
    act_ok(&hub, &sue.1, &m, "assign", json!({}));
    act_ok(
        &hub,
        &sue.1,
        &m,
        "answer-help",
        json!({"answer": "Oui, avoir sous 14 jours"}),
    );
    let (s, reply) = hub.post(
        &format!("/api/conversations/{conv}/replies"),
        &ann.1,
        json!({"text": "Votre remboursement part aujourd'hui"}),
    );
    assert_eq!(s, 201, "{reply}");
    let (s, comment) = hub.post(
        &format!("/api/conversations/{conv}/comments"),
        &ann.1,
        json!({"text": "Client fidèle, geste commercial"}),
    );
    assert_eq!(s, 201, "{comment}");
    let (s, b) = hub.post(
        &format!("/api/conversations/{conv}/close"),
        &ann.1,
        json!({"notes": "Remboursement validé par Sue"}),
    );
    assert_eq!(s, 200, "{b}");
    let (s, b) = hub.post(
        &format!("/api/conversations/{conv}/end-session"),
        &ann.1,
        json!({"reason": "Dossier clos, merci"}),
    );
    assert_eq!(s, 200, "{b}");
    // Another customer's words must not match.
    let (_, k2) = hub.contact();
    let other = hub.say(&k2, "Où est mon colis ?");

    let all = search(&hub, &ann.1, "q=rembours");
    let kinds: Vec<String> = found(&all).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        kinds,
        [
            "conversation.closed",
            "reply.created",
            "message.status_changed",
            "message.created"
        ],
        "every text that holds a word starting with rembours, newest first: {all}"
    );
    let seqs: Vec<u64> = found(&all).into_iter().map(|(_, s)| s).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
    assert_eq!(all["items"][1]["data"]["reply"]["id"], reply["reply"]["id"]);
    assert_eq!(all["items"][3]["data"]["message"]["id"], m.as_str());
    assert_eq!(all["items"][3]["conversation_id"], conv.as_str());
    assert_eq!(all["conversations"][&conv]["contact_id"], contact.as_str());
    assert_eq!(all["conversations"][&conv]["state"], "closed");
    assert!(all["indexed_through"].as_u64().unwrap() >= seqs[0]);
    assert!(all.get("next_before").is_none(), "{all}");

    // Accents and case fold both ways; every word must start a word of one item.
    let one = |q: &str| -> Vec<(String, u64)> { found(&search(&hub, &ann.1, q)) };
    assert_eq!(
        one("q=FIDELE")[0].1,
        comment["comment"]["seq"].as_u64().unwrap()
    );
    assert_eq!(one("q=geste%20fid%C3%A8le").len(), 1);
    assert_eq!(
        one("q=commande%2012345")[0].1,
        first["seq"].as_u64().unwrap()
    );
    assert!(one("q=commande%20colis").is_empty(), "words of two items");
    assert!(
        one("q=emboursement").is_empty(),
        "a word's middle is no match"
    );
    assert_eq!(one("q=avoir%20jours")[0].0, "message.status_changed");
    assert_eq!(one("q=dossier%20clos")[0].0, "session.ended");
    assert_eq!(one("q=colis")[0].1, other["seq"].as_u64().unwrap());
    // The customer, by name or address (the conversation's opening).
    let by_name = search(&hub, &ann.1, "q=dupont");
    assert_eq!(found(&by_name)[0].0, "conversation.opened");
    assert_eq!(by_name["items"][0]["conversation_id"], conv.as_str());
    assert_eq!(
        found(&search(&hub, &ann.1, "q=marie.dupont%40example.com")),
        found(&by_name)
    );
    assert!(one("q=zzzz").is_empty());
    assert_eq!(search(&hub, &ann.1, "q=zzzz")["items"], json!([]));

    // Pages.
    let page = search(&hub, &ann.1, "q=rembours&limit=3");
    assert_eq!(found(&page), found(&all)[..3]);
    let next = page["next_before"].as_u64().expect("next_before");
    let rest = search(&hub, &ann.1, &format!("q=rembours&limit=3&before={next}"));
    assert_eq!(found(&rest), found(&all)[3..]);
    assert!(rest.get("next_before").is_none(), "{rest}");
    let exact = search(&hub, &ann.1, "q=rembours&limit=4");
    assert!(exact.get("next_before").is_none(), "nothing after: {exact}");
}

#[test]
fn bad_searches_are_refused_clearly() {
    let hub = Hub::start();
    let ann = hub.agent("Ann", "agent");
    let (_, k) = hub.contact();
    let long = "a".repeat(201);
    for (q, what) in [
        ("", "no q"),
        ("q=", "empty"),
        ("q=a%20b%20!", "no word of two letters"),
        (&format!("q={long}") as &str, "too long"),
        ("q=aa%20bb%20cc%20dd%20ee%20ff%20gg%20hh%20ii", "nine words"),
        ("q=ok&limit=0", "limit 0"),
        ("q=ok&limit=x", "limit x"),
        ("q=ok&before=-1", "before -1"),
    ] {
        assert_error(
            hub.get(&format!("/api/search?{q}"), &ann.1),
            400,
            "invalid",
            what,
        );
    }
    assert_error(
        hub.get("/api/search?q=ok", ""),
        401,
        "unauthorized",
        "no token",
    );
    assert_error(
        hub.get("/api/search?q=ok", &k),
        403,
        "forbidden",
        "a contact",
    );
    assert_eq!(search(&hub, ADMIN, "q=ok")["items"], json!([]));
}

#[test]
fn the_index_survives_a_crash_and_is_rebuilt_when_lost() {
    // Blocks of 1 event, 16 while the hub is busy: most postings are in sled's blocks,
    // the last in memory.
    let mut hub = Hub::start_with(&[("HUB_SEARCH_BLOCK_EVENTS", "1")]);
    let ann = hub.agent("Ann", "agent");
    let (_, k) = hub.contact();
    let mut said = Vec::new();
    for i in 0..30 {
        said.push(hub.say(&k, &format!("parcel number {i} is late")));
    }
    let before: Vec<(String, u64)> = found(&search(&hub, &ann.1, "q=parcel&limit=100"));
    assert_eq!(before.len(), 30);
    hub.kill9();
    hub.restart();
    let after_crash = found(&search(&hub, &ann.1, "q=parcel&limit=100"));
    assert_eq!(
        after_crash, before,
        "what was indexed, or its log, after kill -9"
    );
    let late = hub.say(&k, "parcel found at last");
    let with_new = found(&search(&hub, &ann.1, "q=parcel&limit=100"));
    assert_eq!(with_new[0].1, late["seq"].as_u64().unwrap());
    assert_eq!(&with_new[1..], &before[..]);

    // Lost: rebuilt from the log at the next start.
    hub.terminate();
    std::fs::remove_dir_all(hub.data.join("search-index")).expect("the index's folder");
    hub.restart();
    assert_eq!(found(&search(&hub, &ann.1, "q=parcel&limit=100")), with_new);
    let one = search(&hub, &ann.1, "q=number%2029");
    assert_eq!(found(&one).len(), 1, "{one}");
    assert_eq!(
        one["items"][0]["data"]["message"]["id"],
        id(&said[29]).as_str()
    );
}

/// What was acknowledged is found by the very next search, whatever way it came in
/// (the answer goes out a moment before the bus publishes the event).
#[test]
fn an_acknowledged_text_is_found_by_the_next_search() {
    let hub = Hub::start();
    let ann = hub.agent("Ann", "agent");
    let (_, k) = hub.contact();
    let conv = conv_of(&hub.say(&k, "hello"));
    let mut widget = hub.socket("/ws/widget", json!({"type": "hello", "token": k}));
    widget.recv_type("welcome");
    for i in 0..300 {
        let word = format!("unique{i}x");
        let seq = match i % 4 {
            0 => hub.say(&k, &format!("about {word}"))["seq"]
                .as_u64()
                .unwrap(),
            3 => {
                widget.send(json!({"type": "send", "text": format!("socket {word}")}));
                widget.recv_type("ack")["message"]["seq"].as_u64().unwrap()
            }
            1 => {
                let (s, b) = hub.post(
                    &format!("/api/conversations/{conv}/replies"),
                    &ann.1,
                    json!({"text": format!("answer {word}")}),
                );
                assert_eq!(s, 201, "{b}");
                b["reply"]["seq"].as_u64().unwrap()
            }
            _ => {
                let (s, b) = hub.post(
                    &format!("/api/conversations/{conv}/comments"),
                    &ann.1,
                    json!({"text": format!("note {word}")}),
                );
                assert_eq!(s, 201, "{b}");
                b["comment"]["seq"].as_u64().unwrap()
            }
        };
        let b = search(&hub, &ann.1, &format!("q={word}"));
        assert_eq!(found(&b).len(), 1, "round {i}: {b}");
        assert_eq!(found(&b)[0].1, seq, "round {i}");
    }
}

/// A short query word reads one complete list however many words it starts; Greek,
/// French and German spellings fold as they are typed.
#[test]
fn short_starts_find_every_word_and_whole_letters_fold() {
    // Blocks of 4 events (64 while the hub is busy): the lists are read from sled's
    // blocks and from memory.
    let hub = Hub::start_with(&[("HUB_SEARCH_BLOCK_EVENTS", "4")]);
    let ann = hub.agent("Ann", "agent");
    let (_, k) = hub.contact();
    let mut seqs = Vec::new();
    for a in b'a'..=b'z' {
        for b in b'a'..=b'l' {
            let w = format!("ab{}{}", a as char, b as char);
            seqs.push(hub.say(&k, &format!("code {w}"))["seq"].as_u64().unwrap());
        }
    }
    seqs.reverse();
    let b = search(&hub, &ann.1, "q=ab&limit=500");
    let got: Vec<u64> = found(&b).into_iter().map(|(_, s)| s).collect();
    assert_eq!(got.len(), 312, "every one of 312 words starting with ab");
    assert_eq!(got, seqs, "newest first");
    assert!(b.get("partial").is_none(), "{b}");
    let abz = search(&hub, &ann.1, "q=abz");
    assert_eq!(found(&abz).len(), 12);

    let greek = hub.say(&k, "ΟΔΟΣ ΑΘΗΝΑΣ")["seq"].as_u64().unwrap();
    let french = hub.say(&k, "Mon cœur, Straße")["seq"].as_u64().unwrap();
    for (q, seq) in [
        ("q=%CE%BF%CE%B4%CE%BF%CF%82", greek), // οδος, typed with a final ς
        ("q=odos%20%CE%B1%CE%B8%CE%B7%CE%BD%CE%B1%CF%83", 0), // no Latin for Greek
        ("q=coeur%20strasse", french),
        ("q=C%C5%92UR", french), // CŒUR
    ] {
        let b = search(&hub, &ann.1, q);
        let want: Vec<u64> = if seq == 0 { vec![] } else { vec![seq] };
        let got: Vec<u64> = found(&b).into_iter().map(|(_, s)| s).collect();
        assert_eq!(got, want, "{q}: {b}");
    }
}

/// A file where the index's folder should be does not stop search for good: after a
/// few failed opens it goes, and the index is built again from the log.
#[test]
fn an_index_folder_that_cannot_be_opened_is_replaced() {
    let mut hub = Hub::start();
    let ann = hub.agent("Ann", "agent");
    let (_, k) = hub.contact();
    let said = hub.say(&k, "lost parcel");
    hub.terminate();
    let dir = hub.data.join("search-index");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"not a folder").unwrap();
    hub.restart();
    let b = eventually("search rebuilt", || {
        let (s, b) = hub.get("/api/search?q=parcel", &ann.1);
        (s == 200 && !found(&b).is_empty()).then_some(b)
    });
    assert_eq!(found(&b)[0].1, said["seq"].as_u64().unwrap());
    assert!(dir.is_dir());
}
