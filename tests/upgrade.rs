//! Upgrades: today's hub serves a store written by an earlier one, with nothing lost
//! and nothing to migrate. `tests/fixtures/legacy-store.tar.gz` was written by the hub
//! at commit 732614b (`tests/fixtures/make_legacy_store.py`): one log key per event,
//! a message row per message, folder entries naming the conversation, idempotency
//! records naming the message, random message ids.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;

/// Unpacks the legacy store; returns its directory (kept alive) and its manifest.
fn legacy_store() -> (tempfile::TempDir, Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy-store.tar.gz");
    let st = std::process::Command::new("tar")
        .arg("xzf")
        .arg(&archive)
        .arg("-C")
        .arg(dir.path())
        .status()
        .expect("run tar");
    assert!(st.success(), "unpack {}", archive.display());
    let manifest = std::fs::read_to_string(dir.path().join("fixture.json")).expect("manifest");
    (dir, serde_json::from_str(&manifest).expect("manifest JSON"))
}

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

/// A contact's send with a `client_id`: (status, the message).
fn send(hub: &Hub, token: &str, text: &str, client_id: &str) -> (u16, Value) {
    let (st, b) = hub.post(
        "/api/widget/messages",
        token,
        json!({"text": text, "client_id": client_id}),
    );
    (st, b["message"].clone())
}

/// The ids of a folder as `token` sees it, highest seq first.
fn folder(hub: &Hub, token: &str, f: &str) -> Vec<(String, String)> {
    let (st, b) = hub.get(&format!("/api/inbox?folder={f}&limit=500"), token);
    assert_eq!(st, 200, "{b}");
    b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (s(&m["id"]), s(&m["status"])))
        .collect()
}

#[test]
fn a_store_written_by_an_earlier_hub_serves_and_grows() {
    let (dir, f) = legacy_store();
    let mut hub = Hub::start_on(&dir.path().join("data"), &[]);
    let alice = s(&f["alice"]["token"]);
    let ann = s(&f["ann"]["token"]);
    let (m1, m2, m3, b1) = (
        s(&f["messages"]["m1"]),
        s(&f["messages"]["m2"]),
        s(&f["messages"]["m3"]),
        s(&f["messages"]["b1"]),
    );
    let ann_conv = s(&f["ann_conversation"]);

    // The folders read the earlier entries (the message rows behind them).
    for (f, id, status) in [
        ("pending", &m3, "pending"),
        ("mine", &m1, "assigned"),
        ("on_hold", &m2, "on_hold"),
        ("answered", &b1, "answered"),
    ] {
        assert_eq!(
            folder(&hub, &alice, f),
            vec![(id.clone(), status.into())],
            "{f}"
        );
    }
    assert_eq!(folder(&hub, &alice, "all").len(), 4);

    // The earlier log is searchable: the index is built from it at the first start.
    let (st, b) = hub.get("/api/search?q=PARCEL", &alice);
    assert_eq!(st, 200, "{b}");
    let found: Vec<&str> = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["data"]["message"]["id"].as_str())
        .collect();
    assert_eq!(found, [m1.as_str()], "{b}");

    // An earlier client_id repeats the earlier message, creating nothing.
    let (st, m) = send(&hub, &ann, "where is my parcel?", "k1");
    assert_eq!(st, 200, "{m}");
    assert_eq!(m["id"], m1.as_str());

    // An earlier message is found and acted on; its folder entries move.
    let m = act_ok(&hub, &alice, &m3, "assign", json!({}));
    assert_eq!(m["status"], "assigned");
    assert_eq!(folder(&hub, &alice, "pending"), vec![]);
    assert_eq!(
        folder(&hub, &alice, "mine"),
        vec![
            (m3.clone(), "assigned".into()),
            (m1.clone(), "assigned".into())
        ]
    );

    // A new message joins the earlier conversation, named after it.
    let (st, m) = send(&hub, &ann, "hello again", "k4");
    assert_eq!(st, 201, "{m}");
    let m4 = s(&m["id"]);
    assert_eq!(m["conversation_id"], ann_conv.as_str());
    assert_eq!(m4, format!("{ann_conv}.m4"));
    let m = act_ok(&hub, &alice, &m4, "assign", json!({}));
    assert_eq!(m["status"], "assigned");

    // The timeline shows every message as it now stands, earlier and new.
    let (st, b) = hub.get(&format!("/api/conversations/{ann_conv}"), &alice);
    assert_eq!(st, 200, "{b}");
    let messages: Vec<(String, String)> = b["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .map(|m| (s(&m["id"]), s(&m["status"])))
        .collect();
    assert_eq!(
        messages,
        vec![
            (m1.clone(), "assigned".into()),
            (m2.clone(), "on_hold".into()),
            (m3.clone(), "assigned".into()),
            (m4.clone(), "assigned".into()),
        ]
    );

    // A console replays the whole log, across both layouts, in order.
    let (mut sock, welcome) = hub.console(&alice, Some(0));
    let head = welcome["seq"].as_u64().unwrap();
    assert_eq!(welcome.get("reset"), None, "{welcome}");
    let mut seqs = Vec::new();
    while seqs.last() != Some(&head) {
        let e = sock.recv_type("event");
        seqs.push(e["seq"].as_u64().unwrap());
    }
    let mut want = seqs.clone();
    want.sort_unstable();
    want.dedup();
    assert_eq!(seqs, want, "increasing, none repeated");
    assert!(
        seqs.len() >= 12,
        "the earlier events are replayed too: {seqs:?}"
    );

    // Ann's widget replays her messages, earlier and new, and nothing of Bob's. This
    // store did not list contacts' conversations: the hub lists them in a background
    // pass at start, and until it is done a widget's replay reads the hub-wide log.
    let replayed = |hub: &Hub| {
        let mut w = hub.socket(
            "/ws/widget",
            json!({"type": "hello", "token": ann, "since": 0}),
        );
        let welcome = w.recv_type("welcome");
        assert_eq!(welcome.get("reset"), None, "{welcome}");
        let mut created = Vec::new();
        while created.len() < 4 {
            let e = w.recv_type("event");
            assert_eq!(e["conversation_id"], ann_conv.as_str(), "{e}");
            if e["kind"] == "message.created" {
                created.push(s(&e["data"]["message"]["id"]));
            }
        }
        created
    };
    let want = vec![m1.clone(), m2.clone(), m3.clone(), m4.clone()];
    assert_eq!(replayed(&hub), want);

    // All of it survives a crash.
    drop(sock);
    hub.restart();
    assert_eq!(
        folder(&hub, &alice, "mine"),
        vec![
            (m4.clone(), "assigned".into()),
            (m3.clone(), "assigned".into()),
            (m1.clone(), "assigned".into())
        ]
    );
    let (st, m) = send(&hub, &ann, "hello again", "k4");
    assert_eq!(st, 200, "{m}");
    assert_eq!(m["id"], m4.as_str());
    // The same replay after the restart (by then the list is built, unless the crash
    // cut the pass short: then it runs again).
    assert_eq!(replayed(&hub), want);
}
