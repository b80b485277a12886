//! PROTOCOL §2: "everything that was acknowledged is on disk before the acknowledgement
//! is sent", across a `kill -9`; and §6.1: hold timers survive restarts.
//!
//! Four contacts write continuously while an agent assigns and holds messages; the hub is
//! killed with SIGKILL mid-stream and restarted on the same data directory.

mod common;

use common::{Hub, ADMIN};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CONTACTS: usize = 4;
const HOLD_SECONDS: u64 = 3;

/// A message the hub acknowledged with 201.
#[derive(Clone, Debug)]
struct Acked {
    id: String,
    text: String,
    client_id: String,
    seq: u64,
}

/// What the agent knows of one message: the last acknowledged status, and the target of
/// a request that got no answer (the crash may or may not have applied it).
#[derive(Clone, Debug, Default)]
struct Known {
    acked: Option<&'static str>,
    unanswered: Option<&'static str>,
    /// When the (acknowledged) hold request was sent: the hold cannot end before
    /// `hold_sent + HOLD_SECONDS`.
    hold_sent: Option<Instant>,
}

fn http() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build()
}

/// `Ok((status, body))` for any HTTP answer, `Err` when the hub is gone.
fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> Result<(u16, Value), String> {
    let req = agent
        .request(method, url)
        .set("Authorization", &format!("Bearer {token}"));
    let res = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    match res {
        Ok(r) => {
            let s = r.status();
            Ok((s, r.into_json().unwrap_or(Value::Null)))
        }
        Err(ureq::Error::Status(s, r)) => Ok((s, r.into_json().unwrap_or(Value::Null))),
        Err(e) => Err(e.to_string()),
    }
}

/// Every message of the `all` folder, paging with `before`.
fn all_messages(hub: &Hub) -> Vec<Value> {
    let mut out = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let q = match before {
            Some(b) => format!("/api/inbox?folder=all&limit=100&before={b}"),
            None => "/api/inbox?folder=all&limit=100".to_string(),
        };
        let (s, b) = hub.get(&q, ADMIN);
        assert_eq!(s, 200, "{b}");
        let items = b["items"].as_array().unwrap();
        if items.is_empty() {
            return out;
        }
        let last = items.last().unwrap()["seq"].as_u64().unwrap();
        assert!(
            before.map(|b| last < b).unwrap_or(true),
            "paging goes backwards"
        );
        out.extend(items.iter().cloned());
        before = Some(last);
    }
}

#[test]
fn every_acknowledged_message_and_status_survives_kill_9_and_hold_timers_fire_after_restart() {
    let mut hub = Hub::start();
    let (alice_id, alice) = hub.agent("Alice", "agent");
    let contacts: Vec<(String, String)> = (0..CONTACTS).map(|_| hub.contact()).collect();
    let url = hub.url.clone();
    let stop = Arc::new(AtomicBool::new(false));

    // Writers: each contact sends until the hub dies, recording every 201.
    let acked: Arc<Mutex<Vec<Vec<Acked>>>> = Arc::new(Mutex::new(vec![Vec::new(); CONTACTS]));
    // (contact, text, client_id) of a send that got no answer: the crash cut it off.
    let unanswered_sends = Arc::new(Mutex::new(Vec::<(usize, String, String)>::new()));
    let writers: Vec<_> = contacts
        .iter()
        .enumerate()
        .map(|(k, (_, token))| {
            let (url, token, stop, acked, unanswered) = (
                url.clone(),
                token.clone(),
                stop.clone(),
                acked.clone(),
                unanswered_sends.clone(),
            );
            std::thread::spawn(move || {
                let agent = http();
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let text = format!("contact {k} message {i}");
                    let client_id = format!("k{k}-{i}");
                    let body = json!({"text": text, "client_id": client_id});
                    match send(
                        &agent,
                        "POST",
                        &format!("{url}/api/widget/messages"),
                        &token,
                        Some(body),
                    ) {
                        Ok((201, b)) => {
                            let m = &b["message"];
                            assert_eq!(m["text"], text.as_str());
                            acked.lock().unwrap()[k].push(Acked {
                                id: m["id"].as_str().unwrap().into(),
                                text,
                                client_id,
                                seq: m["seq"].as_u64().unwrap(),
                            });
                        }
                        Ok((s, b)) => panic!("send refused {s}: {b}"),
                        Err(_) => {
                            unanswered.lock().unwrap().push((k, text, client_id));
                            return;
                        }
                    }
                    i += 1;
                }
            })
        })
        .collect();

    // The agent: takes pending messages; puts every third on hold for HOLD_SECONDS.
    let known: Arc<Mutex<HashMap<String, Known>>> = Arc::new(Mutex::new(HashMap::new()));
    let worker = {
        let (url, alice, stop, known) = (url.clone(), alice.clone(), stop.clone(), known.clone());
        std::thread::spawn(move || {
            let agent = http();
            let mut n = 0u64;
            let act = |id: &str, action: &str, body: Value, to: &'static str| -> bool {
                known
                    .lock()
                    .unwrap()
                    .entry(id.to_string())
                    .or_default()
                    .unanswered = Some(to);
                let sent = Instant::now();
                match send(
                    &agent,
                    "POST",
                    &format!("{url}/api/messages/{id}/{action}"),
                    &alice,
                    Some(body),
                ) {
                    Ok((200, b)) => {
                        assert_eq!(b["message"]["status"], to, "{b}");
                        let mut k = known.lock().unwrap();
                        let e = k.get_mut(id).unwrap();
                        e.acked = Some(to);
                        e.unanswered = None;
                        if to == "on_hold" {
                            e.hold_sent = Some(sent);
                        }
                        true
                    }
                    Ok((s, b)) => panic!("{action} refused {s}: {b}"),
                    Err(_) => false,
                }
            };
            while !stop.load(Ordering::SeqCst) {
                let items = match send(
                    &agent,
                    "GET",
                    &format!("{url}/api/inbox?folder=pending&limit=20"),
                    &alice,
                    None,
                ) {
                    Ok((200, b)) => b["items"].as_array().unwrap().clone(),
                    Ok((s, b)) => panic!("inbox {s}: {b}"),
                    Err(_) => return,
                };
                for m in items {
                    let id = m["id"].as_str().unwrap();
                    if !act(id, "assign", json!({}), "assigned") {
                        return;
                    }
                    n += 1;
                    if n.is_multiple_of(3)
                        && !act(id, "hold", json!({"for_seconds": HOLD_SECONDS}), "on_hold")
                    {
                        return;
                    }
                }
            }
        })
    };

    // Let the stream run for about a second, with some holds in, then crash the hub.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30);
    loop {
        let holds = known
            .lock()
            .unwrap()
            .values()
            .filter(|k| k.acked == Some("on_hold"))
            .count();
        let sent: usize = acked.lock().unwrap().iter().map(|v| v.len()).sum();
        if started.elapsed() >= Duration::from_secs(1) && holds >= 3 && sent >= 40 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stream never got going: {sent} sent, {holds} held"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    hub.kill9();
    let killed_at = Instant::now();
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().expect("writer");
    }
    worker.join().expect("agent");

    let acked: Vec<Vec<Acked>> = acked.lock().unwrap().clone();
    let known: HashMap<String, Known> = known.lock().unwrap().clone();
    let acked_total: usize = acked.iter().map(|v| v.len()).sum();
    let held: Vec<String> = known
        .iter()
        .filter(|(_, k)| k.acked == Some("on_hold") && k.unanswered.is_none())
        .map(|(id, _)| id.clone())
        .collect();
    for id in &held {
        let sent = known[id].hold_sent.unwrap();
        assert!(
            killed_at.duration_since(sent) < Duration::from_secs(HOLD_SECONDS),
            "the hold of {id} must end after the crash, so that only the restarted hub can fire it"
        );
    }

    hub.restart();

    // 1. The holds survived the crash: each that cannot have ended yet is still on hold.
    let asked = Instant::now();
    let (s, b) = hub.get("/api/inbox?folder=on_hold&limit=500", &alice);
    assert_eq!(s, 200, "{b}");
    let on_hold: BTreeSet<&str> = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    let mut still_held = 0;
    for id in &held {
        if known[id].hold_sent.unwrap() + Duration::from_secs(HOLD_SECONDS) > asked {
            assert!(
                on_hold.contains(id.as_str()),
                "hold of {id} lost in the crash: {b}"
            );
            still_held += 1;
        }
    }

    // 2. They end after the restart (Alice has no console, so they go back to pending).
    //    Poll Alice's on_hold folder until it is empty.
    let deadline = Instant::now() + Duration::from_secs(HOLD_SECONDS + 15);
    loop {
        let (s, b) = hub.get("/api/inbox?folder=on_hold", &alice);
        assert_eq!(s, 200, "{b}");
        if b["counts"]["on_hold"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "holds never ended after the restart: {b}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // From here on nothing changes by itself: the store can be read page by page.

    // 3. Every acknowledged message is there exactly once; nothing is there twice.
    let all = all_messages(&hub);
    let mut by_id: BTreeMap<String, Value> = BTreeMap::new();
    for m in &all {
        let prev = by_id.insert(m["id"].as_str().unwrap().to_string(), m.clone());
        assert!(prev.is_none(), "message {} listed twice", m["id"]);
    }
    let mut texts = BTreeSet::new();
    for m in &all {
        assert!(
            texts.insert(m["text"].as_str().unwrap().to_string()),
            "text stored twice: {}",
            m["text"]
        );
    }
    let mut found = 0;
    for (k, list) in acked.iter().enumerate() {
        for a in list {
            let m = by_id
                .get(&a.id)
                .unwrap_or_else(|| panic!("acknowledged message {} of contact {k} lost", a.id));
            assert_eq!(m["text"], a.text.as_str());
            assert!(m["seq"].as_u64().unwrap() >= a.seq);
            found += 1;
        }
    }
    let unanswered: Vec<(usize, String, String)> = unanswered_sends.lock().unwrap().clone();
    let unanswered_found = unanswered
        .iter()
        .filter(|(_, t, _)| texts.contains(t))
        .count();
    assert!(
        all.len() <= acked_total + unanswered.len(),
        "{} stored but only {acked_total} acked + {} in flight",
        all.len(),
        unanswered.len()
    );
    let (_, counts) = hub.get("/api/inbox?folder=all", ADMIN);
    assert_eq!(
        counts["counts"]["all"].as_u64().unwrap() as usize,
        all.len(),
        "count agrees with the list"
    );

    // The contacts see their acknowledged messages, in the order they were acknowledged.
    for (k, (_, token)) in contacts.iter().enumerate() {
        let (s, b) = hub.get("/api/widget/messages", token);
        assert_eq!(s, 200, "{b}");
        let ids: Vec<&str> = b["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect();
        let acked_ids: Vec<&str> = acked[k].iter().map(|a| a.id.as_str()).collect();
        let acked_set: BTreeSet<&str> = acked_ids.iter().copied().collect();
        let seen: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|i| acked_set.contains(i))
            .collect();
        assert_eq!(
            seen, acked_ids,
            "contact {k}: every acknowledged message once, in order"
        );
        assert!(
            ids.len() <= acked_ids.len() + 1,
            "contact {k}: at most the one in-flight message besides"
        );
    }

    // 4. Acknowledged statuses are kept (holds have ended meanwhile: checked below).
    let mut assigned_kept = 0;
    for (id, k) in &known {
        let m = by_id
            .get(id)
            .unwrap_or_else(|| panic!("message {id} handled by the agent is lost"));
        let status = m["status"].as_str().unwrap();
        let mut allowed: Vec<&str> = k.acked.into_iter().chain(k.unanswered).collect();
        if k.acked.is_none() {
            allowed.push("pending");
        }
        if allowed.contains(&"on_hold") {
            allowed.push("pending"); // the hold may have ended since
        }
        assert!(
            allowed.contains(&status),
            "{id}: status {status} not in {allowed:?}: {m}"
        );
        if k.acked == Some("assigned") && k.unanswered.is_none() {
            assert_eq!(status, "assigned", "{m}");
            assert_eq!(m["assignee"], alice_id.as_str());
            assigned_kept += 1;
        }
        if k.acked == Some("on_hold") && k.unanswered.is_none() && status == "on_hold" {
            assert_eq!(m["assignee"], alice_id.as_str());
            assert!(m["hold_until"].is_string(), "{m}");
        }
    }

    // 5. Every held message went back to pending, unassigned, by `system`.
    for id in &held {
        let m = &by_id[id];
        assert_eq!(m["status"], "pending", "{m}");
        assert_eq!(m["assignee"], Value::Null, "{m}");
        assert_eq!(m["hold_until"], Value::Null, "{m}");
    }
    let one = &held[0];
    let conv = by_id[one]["conversation_id"].as_str().unwrap();
    let (_, acts) = hub.get(&format!("/api/conversations/{conv}/activities"), ADMIN);
    let expiry = acts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "message.status_changed" && e["data"]["message_id"] == one.as_str())
        .cloned()
        .unwrap();
    assert_eq!(
        (
            expiry["data"]["from"].as_str(),
            expiry["data"]["to"].as_str()
        ),
        (Some("on_hold"), Some("pending"))
    );
    assert_eq!(expiry["data"]["by"], "system");

    // 6. Idempotency keys survive the crash: repeating an acknowledged send answers 200
    //    with the same message; repeating a cut-off send completes it exactly once.
    for (k, (_, token)) in contacts.iter().enumerate() {
        for a in acked[k].iter().rev().take(3) {
            let (s, b) = hub.post(
                "/api/widget/messages",
                token,
                json!({"text": a.text, "client_id": a.client_id}),
            );
            assert_eq!(
                s, 200,
                "repeat of acknowledged {} after the crash: {b}",
                a.client_id
            );
            assert_eq!(b["message"]["id"], a.id.as_str());
        }
    }
    for (k, text, client_id) in &unanswered {
        let (s, b) = hub.post(
            "/api/widget/messages",
            &contacts[*k].1,
            json!({"text": text, "client_id": client_id}),
        );
        if texts.contains(text) {
            assert_eq!(
                s, 200,
                "{client_id} was stored before the crash; the repeat must not add it again: {b}"
            );
            let stored = all.iter().find(|m| m["text"] == text.as_str()).unwrap();
            assert_eq!(b["message"]["id"], stored["id"]);
        } else {
            assert_eq!(
                s, 201,
                "{client_id} was not stored; the repeat stores it: {b}"
            );
        }
    }
    let (_, after) = hub.get("/api/inbox?folder=all", ADMIN);
    assert_eq!(
        after["counts"]["all"].as_u64().unwrap() as usize,
        acked_total + unanswered.len(),
        "every send, acknowledged or cut off, is stored exactly once after the retries"
    );

    // 7. The hub goes on: a new message gets a seq above everything before the crash.
    let head = all
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .max()
        .unwrap();
    let m = hub.say(&contacts[0].1, "after the crash");
    assert!(
        m["seq"].as_u64().unwrap() > head,
        "seq never goes back: {} vs {head}",
        m["seq"]
    );

    println!(
        "crash recovery: acked {acked_total} messages, found {found} of them (stored {} in all, {} of {} unanswered sends applied); \
         agent: {} assigned kept, {} holds fired after restart ({} seen still on hold after it)",
        all.len(),
        unanswered_found,
        unanswered.len(),
        assigned_kept,
        held.len(),
        still_held
    );
    assert_eq!(found, acked_total);
}

/// Files sled wrote as separate blobs (pages too large for its log), under `data`.
fn blob_files(data: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![data.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.parent().is_some_and(|d| d.ends_with("blobs")) {
                out.push(p);
            }
        }
    }
    out
}

/// A long conversation (hundreds of messages, ≈ 1,300 events) is restored from its
/// snapshot after a `kill -9` with every status as it stood, including a change to one of
/// its first messages made long after they were first snapshotted; and its snapshots
/// stay small: no page of the store grew past what sled's log holds (a snapshot written
/// whole, ≈ 170 KB here, did).
#[test]
fn a_long_conversation_is_restored_from_its_snapshot_and_writes_no_oversized_page() {
    const MESSAGES: usize = 400;
    const REPLY_EVERY: usize = 25;
    let mut hub = Hub::start();
    let (_, ana) = hub.agent("Ana", "agent");
    let (_, contact) = hub.contact();
    let mut ids: Vec<String> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    let mut conv = String::new();
    let reply = |hub: &Hub, conv: &str, n: usize| -> Vec<String> {
        let (s, b) = hub.post(
            &format!("/api/conversations/{conv}/replies"),
            &ana,
            json!({"text": format!("reply {n}")}),
        );
        assert_eq!(s, 201, "{b}");
        let mut answered: Vec<String> = b["answered"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        answered.sort();
        answered
    };
    for i in 0..MESSAGES {
        let text = format!(
            "message {i}: {}",
            "the parcel has not arrived yet, ".repeat(5)
        );
        let m = hub.say(&contact, &text);
        conv = common::conv_of(&m);
        ids.push(common::id(&m));
        pending.push(common::id(&m));
        if i == MESSAGES / 2 {
            // Long after the first messages were snapshotted, one of them changes.
            let (s, b) = hub.act(&ana, &ids[5], "reopen", json!({}));
            assert_eq!(s, 200, "{b}");
            pending.push(ids[5].clone());
        }
        if (i + 1) % REPLY_EVERY == 0 && i + 1 < MESSAGES {
            pending.sort();
            assert_eq!(reply(&hub, &conv, i), pending, "reply after message {i}");
            pending.clear();
        }
    }
    let blobs = blob_files(&hub.data);
    assert!(blobs.is_empty(), "pages written as blobs: {blobs:?}");

    hub.kill9();
    hub.restart();
    // The restored conversation answers exactly the messages still pending: a stale
    // run would bring back a message as it was before a later change.
    pending.sort();
    assert_eq!(pending.len(), REPLY_EVERY);
    assert_eq!(reply(&hub, &conv, MESSAGES), pending);
    let (s, b) = hub.act(&ana, &ids[5], "archive", json!({}));
    common::assert_error(
        (s, b),
        409,
        "invalid_transition",
        "archive an answered message",
    );
}
