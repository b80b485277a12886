//! The crash loop: writers and a console run against the hub while it is `kill -9`ed at
//! random moments, N times. After every restart: the store opens; every acknowledged
//! customer message, reply and assignment is present exactly once; the console, resuming
//! with `since`, has seen every acknowledged message exactly once, in increasing seq.
//!
//! The hub writes a recovery snapshot of its store every 50 KB of log here
//! (`HUB_STORE_SNAPSHOT_MB=0.05`; 256 MB by default), so that crashes land before,
//! during and after snapshot writes, and restarts recover from them. Segment cleaning
//! waits for 1 MB of log after a segment becomes half dead (`HUB_STORE_CLEANING_LAG_MB=1`;
//! 64 MB by default), so that it runs within a cycle or two.
//!
//! Commits of two deferred records or more (a customer message's conversation log and
//! client id) go through the store's journal (`HUB_STORE_DEFER_MIN_PAIRS=2`; 64 by
//! default), so that crashes land among journal records and checkpoints; after the last
//! restart a spread of acknowledged sends is repeated with its client id and must return
//! its first message.
//!
//! `CRASH_CYCLES` sets N (CI runs the default 20; the README reports a long run);
//! `CRASH_TEXT_BYTES` pads every message's text to about that many bytes (at most 4,000),
//! so that the store rewrites and cleans its log segments within a few cycles.

mod common;

use common::{Frame, Hub};
use rand::Rng;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Acked {
    messages: HashSet<String>,
    /// (contact token, client id, message id) of every acknowledged send.
    sends: Vec<(String, String, String)>,
    replies: HashSet<String>,
    assigned: HashSet<String>,
}

fn writer(url: String, token: String, stop: Arc<AtomicBool>, acked: Arc<Mutex<Acked>>, tag: usize) {
    let pad = "x".repeat(
        std::env::var("CRASH_TEXT_BYTES")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
            .min(4000),
    );
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .build();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let res = agent
            .post(&format!("{url}/api/widget/messages"))
            .set("Authorization", &format!("Bearer {token}"))
            .send_string(
                &json!({"text": format!("w{tag} m{i} {pad}"), "client_id": format!("w{tag}-{i}")})
                    .to_string(),
            );
        match res {
            Ok(r) if r.status() == 201 || r.status() == 200 => {
                let b: Value = r.into_json().unwrap();
                let id = b["message"]["id"].as_str().unwrap().to_string();
                let mut acked = acked.lock().unwrap();
                acked.messages.insert(id.clone());
                acked.sends.push((token.clone(), format!("w{tag}-{i}"), id));
            }
            _ => return, // the hub died: acknowledged only what came back
        }
    }
}

fn handler(url: String, token: String, stop: Arc<AtomicBool>, acked: Arc<Mutex<Acked>>) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .build();
    while !stop.load(Ordering::Relaxed) {
        let Ok(r) = agent
            .get(&format!("{url}/api/inbox?folder=pending&limit=5"))
            .set("Authorization", &format!("Bearer {token}"))
            .call()
        else {
            return;
        };
        let inbox: Value = r.into_json().unwrap();
        for m in inbox["items"].as_array().unwrap() {
            let id = m["id"].as_str().unwrap();
            let res = agent
                .post(&format!("{url}/api/messages/{id}/assign"))
                .set("Authorization", &format!("Bearer {token}"))
                .send_string("{}");
            match res {
                Ok(_) => {
                    acked.lock().unwrap().assigned.insert(id.to_string());
                }
                Err(ureq::Error::Status(..)) => {}
                Err(_) => return,
            }
            let conv = m["conversation_id"].as_str().unwrap();
            if rand::thread_rng().gen_bool(0.3) {
                let res = agent
                    .post(&format!("{url}/api/conversations/{conv}/replies"))
                    .set("Authorization", &format!("Bearer {token}"))
                    .send_string(&json!({"text": "on it"}).to_string());
                match res {
                    Ok(r) => {
                        let b: Value = r.into_json().unwrap();
                        acked
                            .lock()
                            .unwrap()
                            .replies
                            .insert(b["reply"]["id"].as_str().unwrap().to_string());
                    }
                    Err(ureq::Error::Status(..)) => {}
                    Err(_) => return,
                }
            }
        }
    }
}

#[test]
fn the_hub_survives_kill_9_at_random_moments() {
    let cycles: usize = std::env::var("CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut hub = Hub::start_with(&[
        ("HUB_STORE_SNAPSHOT_MB", "0.05"),
        ("HUB_STORE_CLEANING_LAG_MB", "1"),
        // Commits of two deferred records or more journal them (64 by default), so
        // that crashes land among journal records and checkpoints and restarts replay
        // them (`src/store/lazy.rs`); a reply's commit (one record) writes in place.
        ("HUB_STORE_DEFER_MIN_PAIRS", "2"),
    ]);
    let (_, agent) = hub.agent("Ann", "agent");
    // Recovery snapshots written by all incarnations (read just before each kill).
    let mut snapshots = 0;
    let (_, watcher) = hub.agent("Wat", "agent");
    let contacts: Vec<String> = (0..3).map(|_| hub.contact().1).collect();
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut seen_created: HashMap<String, u64> = HashMap::new();
    let mut last_seq = 0u64;
    let mut rng = rand::thread_rng();
    for cycle in 0..cycles {
        let (mut console, welcome) =
            hub.console(&watcher, if cycle == 0 { None } else { Some(last_seq) });
        assert!(
            welcome.get("reset").is_none(),
            "cycle {cycle}: resume refused: {welcome}"
        );
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for (i, c) in contacts.iter().enumerate() {
            let (u, c, s, a) = (hub.url.clone(), c.clone(), stop.clone(), acked.clone());
            let tag = cycle * 10 + i;
            threads.push(std::thread::spawn(move || writer(u, c, s, a, tag)));
        }
        {
            let (u, t, s, a) = (hub.url.clone(), agent.clone(), stop.clone(), acked.clone());
            threads.push(std::thread::spawn(move || handler(u, t, s, a)));
        }
        // Read the console until the random crash moment.
        let crash_at = Instant::now() + Duration::from_millis(rng.gen_range(100..500));
        while Instant::now() < crash_at {
            if let Frame::Json(v) = console.next(Duration::from_millis(20)) {
                if v["type"] != "event" {
                    continue;
                }
                let seq = v["seq"].as_u64().unwrap();
                assert!(seq > last_seq, "cycle {cycle}: seq {seq} after {last_seq}");
                last_seq = seq;
                if v["kind"] == "message.created" {
                    let id = v["data"]["message"]["id"].as_str().unwrap().to_string();
                    assert!(
                        seen_created.insert(id, seq).is_none(),
                        "a message.created seen twice"
                    );
                }
            }
        }
        snapshots += common::metric(&hub.metrics(), "hub_store_snapshots_total");
        hub.kill9();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            let _ = t.join();
        }
        hub.restart();
    }
    // Final check, after the last restart.
    let acked = acked.lock().unwrap();
    let (_, all) = hub.get("/api/inbox?folder=all&limit=500", &agent);
    let mut found: HashMap<String, Value> = HashMap::new();
    let mut before: Option<u64> = None;
    loop {
        let path = match before {
            Some(b) => format!("/api/inbox?folder=all&limit=500&before={b}"),
            None => "/api/inbox?folder=all&limit=500".to_string(),
        };
        let (_, page) = hub.get(&path, &agent);
        let items = page["items"].as_array().unwrap();
        if items.is_empty() {
            break;
        }
        for m in items {
            assert!(
                found
                    .insert(m["id"].as_str().unwrap().to_string(), m.clone())
                    .is_none(),
                "a message listed twice"
            );
        }
        before = items.last().and_then(|m| m["seq"].as_u64());
    }
    assert_eq!(
        found.len() as i64,
        all["counts"]["all"].as_i64().unwrap(),
        "count matches listing"
    );
    let missing: Vec<&String> = acked
        .messages
        .iter()
        .filter(|id| !found.contains_key(*id))
        .collect();
    let unassigned: Vec<&String> = acked
        .assigned
        .iter()
        .filter(|id| {
            found
                .get(*id)
                .map(|m| m["status"] == "pending")
                .unwrap_or(true)
        })
        .collect();
    // Replies: every acknowledged reply is on its conversation's timeline.
    let mut replies_found = HashSet::new();
    let (_, convs) = hub.get("/api/conversations?state=all", &agent);
    for c in convs["items"].as_array().unwrap() {
        let (_, t) = hub.get(
            &format!("/api/conversations/{}", c["id"].as_str().unwrap()),
            &agent,
        );
        for item in t["timeline"].as_array().unwrap() {
            if item["type"] == "reply" {
                assert!(
                    replies_found.insert(item["id"].as_str().unwrap().to_string()),
                    "reply twice"
                );
            }
        }
    }
    let replies_missing = acked
        .replies
        .iter()
        .filter(|id| !replies_found.contains(*id))
        .count();
    // The console: resume once more and collect what it has not seen yet.
    let (mut console, welcome) = hub.console(&watcher, Some(last_seq));
    assert!(welcome.get("reset").is_none());
    let head = welcome["seq"].as_u64().unwrap();
    while last_seq < head {
        match console.next(Duration::from_secs(5)) {
            Frame::Json(v) if v["type"] == "event" => {
                let seq = v["seq"].as_u64().unwrap();
                assert!(seq > last_seq);
                last_seq = seq;
                if v["kind"] == "message.created" {
                    let id = v["data"]["message"]["id"].as_str().unwrap().to_string();
                    assert!(
                        seen_created.insert(id, seq).is_none(),
                        "a message.created seen twice"
                    );
                }
            }
            Frame::Json(_) => {}
            other => panic!("console stopped early: {other:?}"),
        }
    }
    // Idempotency survives the crashes: a repeated send (same contact, same client id)
    // returns its first message (PROTOCOL.md §2), for a spread of acknowledged sends.
    let step = (acked.sends.len() / 200).max(1);
    let mut repeats = 0;
    for (token, client_id, id) in acked.sends.iter().step_by(step) {
        let (status, b) = hub.post(
            "/api/widget/messages",
            token,
            json!({"text": "again", "client_id": client_id}),
        );
        assert_eq!(status, 200, "a repeated client id created a message: {b}");
        assert_eq!(b["message"]["id"].as_str(), Some(id.as_str()), "{b}");
        repeats += 1;
    }
    assert!(repeats > 0);
    let console_missing = acked
        .messages
        .iter()
        .filter(|id| !seen_created.contains_key(*id))
        .count();
    println!(
        "crash loop: {cycles} cycles; messages acked {} found {} (missing {}); assignments acked {} kept {}; replies acked {} found {}; console missed {}",
        acked.messages.len(),
        found.len(),
        missing.len(),
        acked.assigned.len(),
        acked.assigned.len() - unassigned.len(),
        acked.replies.len(),
        acked.replies.len() - replies_missing,
        console_missing
    );
    let metrics = hub.metrics();
    let gauge = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    println!(
        "store file {:.1} MB; pages moved by segment cleaning since the last restart {}; \
         recovery snapshots written before the kills {snapshots}",
        gauge("hub_store_file_bytes ") / 1e6,
        gauge("hub_store_gc_pages_total ")
    );
    assert!(
        missing.is_empty(),
        "acknowledged messages lost: {missing:?}"
    );
    assert!(
        unassigned.is_empty(),
        "acknowledged assignments lost: {unassigned:?}"
    );
    assert_eq!(replies_missing, 0, "acknowledged replies lost");
    assert_eq!(
        console_missing, 0,
        "the console missed acknowledged messages"
    );
    assert!(acked.messages.len() > cycles, "the load actually ran");
    assert!(snapshots > 0, "no recovery snapshot was written");
}
