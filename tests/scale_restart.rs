//! Restart at scale (issue #6): a store with many conversations and messages is opened
//! again, and the hub must serve within seconds, without a full scan at boot.
//!
//! Run by hand (it writes gigabytes at full scale):
//! `SCALE_CONVERSATIONS=1000000 SCALE_MESSAGES=10 cargo test --release --test scale_restart -- --ignored --nocapture`
//! (defaults: 20,000 conversations × 10 messages). `SCALE_DIR` keeps the seeded store
//! for another run (seeding is skipped when it already holds the data). CI runs the same
//! flow on 60 conversations (`restart_small`). The first start after seeding replays
//! the log written since the seeding's last recovery snapshot (at most ≈ 256 MB; it was
//! 105 s after seeding 1 M conversations before the hub wrote snapshots while running,
//! hence `HUB_TEST_START_SECS=600` in the command above, kept for stores seeded then).

mod common;

use common::{Hub, ADMIN};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Seeds `dir` through the hub's own code path (contacts, `customer_send`, conversation
/// actors, group commit), as the widget would, without HTTP. Runs in a child process
/// (see `seed_child`) so that sled's lock on the directory is released when it ends.
fn seed(dir: &Path, conversations: usize, messages: usize) {
    use futures_util::StreamExt;
    use hub::auth::{self, ContactRecord};
    use hub::domain::ContactId;

    let mut config = hub::config::Config::from_env().expect("the test environment's settings");
    config.data = dir.to_path_buf();
    config.admin_token = Some(ADMIN.into());
    config.rate_limit = false;
    actix_web::rt::System::new().block_on(async move {
        let hub = hub::hub::Hub::build(config).expect("open store");
        let started = Instant::now();
        let done = std::sync::atomic::AtomicUsize::new(0);
        futures_util::stream::iter(0..conversations)
            .for_each_concurrent(512, |i| {
                let hub = hub.clone();
                let done = &done;
                async move {
                    let rec = ContactRecord {
                        id: ContactId::from(auth::new_id("k")),
                        channel: "web".into(),
                        name: Some(format!("Customer {i}")),
                        email: None,
                        token_hash: None,
                    };
                    hub.directory
                        .put_contact(&hub.store, rec.clone())
                        .await
                        .expect("contact stored");
                    let mut conv = None;
                    for j in 0..messages {
                        let text = format!("Hello, this is message {j} about order #{i}.");
                        let (m, new) = hub
                            .customer_send(&rec.id, "web", text, Some(format!("seed-{j}")))
                            .await
                            .expect("message acknowledged");
                        assert!(new);
                        conv = Some(m.conversation_id);
                    }
                    if let Some(c) = conv {
                        hub.registry.retire(&c);
                    }
                    let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    if n.is_multiple_of(10_000) {
                        let s = started.elapsed().as_secs_f64();
                        eprintln!(
                            "seeded {n} conversations, {:.0} messages/s",
                            (n * messages) as f64 / s
                        );
                    }
                }
            })
            .await;
        let s = started.elapsed().as_secs_f64();
        eprintln!(
            "seeded {conversations} conversations × {messages} messages in {s:.0} s ({:.0} messages/s)",
            (conversations * messages) as f64 / s
        );
    });
}

/// The seeding half, run as a child process by `restart_at_scale`.
#[test]
#[ignore]
fn seed_child() {
    let Ok(dir) = std::env::var("SCALE_SEED_CHILD") else {
        eprintln!("seed_child runs only as restart_at_scale's child process");
        return;
    };
    seed(
        Path::new(&dir),
        env_usize("SCALE_CONVERSATIONS", 20_000),
        env_usize("SCALE_MESSAGES", 10),
    );
}

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

#[test]
#[ignore]
fn restart_at_scale() {
    let tmp;
    let dir: PathBuf = match std::env::var("SCALE_DIR") {
        Ok(d) => PathBuf::from(d),
        Err(_) => {
            tmp = tempfile::tempdir().expect("tempdir");
            tmp.path().join("data")
        }
    };
    restart(
        &dir,
        env_usize("SCALE_CONVERSATIONS", 20_000),
        env_usize("SCALE_MESSAGES", 10),
    );
}

/// The same flow at a size CI runs in seconds (seeding child, retire, restart, checks).
#[test]
fn restart_small() {
    let tmp = tempfile::tempdir().expect("tempdir");
    restart(&tmp.path().join("data"), 60, 3);
}

fn restart(dir: &Path, conversations: usize, messages: usize) {
    let total = (conversations * messages) as u64;

    // Seed (in a child process) unless the directory already holds this data set.
    let seeded = {
        if dir.exists() {
            let hub = Hub::start_on(dir, &[]);
            let (_, inbox) = hub.get("/api/inbox?folder=all&limit=1", ADMIN);
            inbox["counts"]["all"].as_u64() == Some(total)
        } else {
            false
        }
    };
    if !seeded {
        let _ = std::fs::remove_dir_all(dir);
        let st = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--ignored", "--exact", "seed_child", "--nocapture"])
            .env("SCALE_SEED_CHILD", dir)
            .env("SCALE_CONVERSATIONS", conversations.to_string())
            .env("SCALE_MESSAGES", messages.to_string())
            .status()
            .expect("run the seeding child");
        assert!(st.success(), "seeding failed");
    }
    eprintln!(
        "store: {conversations} conversations, {total} messages, {:.1} GiB on disk",
        dir_size(dir) as f64 / (1u64 << 30) as f64
    );

    // Warm the page cache as a restarted machine's hub would find it, then measure.
    let mut warm = Hub::start_on(dir, &[]);
    assert!(warm.terminate());

    let t0 = Instant::now();
    let hub = Hub::start_on(dir, &[]);
    let listening = t0.elapsed();
    assert!(!hub.addr.is_empty(), "the hub did not start");

    let (status, inbox) = hub.get("/api/inbox?folder=pending&limit=50", ADMIN);
    let first_page = t0.elapsed();
    assert_eq!(status, 200);
    assert_eq!(
        inbox["items"].as_array().map(Vec::len),
        Some(50.min(total as usize))
    );
    // Every run assigns one message of a kept store (SCALE_DIR), so pending only shrinks.
    let pending = inbox["counts"]["pending"].as_u64().unwrap_or(0);
    assert!(
        pending > total.saturating_sub(1000) && pending <= total,
        "pending {pending}"
    );
    assert_eq!(inbox["counts"]["all"].as_u64(), Some(total));

    // The oldest conversation (no actor, no cache): its timeline and a new message in it.
    let (status, convs) = hub.get("/api/conversations?state=open", ADMIN);
    assert_eq!(status, 200);
    let conv = convs["items"][0]["id"]
        .as_str()
        .expect("a conversation")
        .to_string();
    let t1 = Instant::now();
    let (status, shown) = hub.get(&format!("/api/conversations/{conv}"), ADMIN);
    let restore = t1.elapsed();
    assert_eq!(status, 200);
    let timeline = shown["timeline"].as_array().expect("timeline");
    let n_messages = timeline.iter().filter(|i| i["type"] == "message").count();
    assert_eq!(n_messages, messages);

    let name = format!("Scale {}", hub::auth::random_hex(4));
    let (agent, token) = hub.agent(&name, "agent");
    let mid = inbox["items"][0]["id"].as_str().unwrap();
    let t2 = Instant::now();
    let (status, m) = hub.post(&format!("/api/messages/{mid}/assign"), &token, json!({}));
    let first_action = t2.elapsed();
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["message"]["assignee"], agent.as_str());

    // A console resuming a little behind the head gets exactly the missed events.
    let (mut sock, welcome) = hub.console(&token, None);
    let head = welcome["seq"].as_u64().unwrap();
    drop(sock);
    let t3 = Instant::now();
    let (s2, w2) = hub.console(&token, Some(head - 100));
    sock = s2;
    assert_ne!(w2["reset"], true);
    let mut last = head - 100;
    while last < head {
        let ev = sock.recv_type("event");
        let seq = ev["seq"].as_u64().unwrap();
        assert_eq!(seq, last + 1);
        last = seq;
    }
    let replay = t3.elapsed();
    eprintln!(
        "restart: listening after {:.0} ms, first inbox page after {:.0} ms; cold conversation \
         shown in {:.1} ms, first assign {:.1} ms, 100-event console replay {:.1} ms",
        listening.as_secs_f64() * 1e3,
        first_page.as_secs_f64() * 1e3,
        restore.as_secs_f64() * 1e3,
        first_action.as_secs_f64() * 1e3,
        replay.as_secs_f64() * 1e3,
    );
}
