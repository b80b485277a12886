//! Disk trouble: the data directory on a full disk. Needs root (it mounts a small tmpfs);
//! skipped with a message elsewhere.

mod common;

use common::Hub;
use serde_json::json;
use std::process::Command;

struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?.keep();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then_some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_answers_503_acks_nothing_undurable_and_recovers() {
    let Some(fs) = Tmpfs::mount("24m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let data = fs.0.join("data");
    let mut hub = Hub::start_on(&data, &[]);
    let (_, a) = hub.agent("Ann", "agent");
    let (_, k) = hub.contact();
    hub.say(&k, "before the disk fills");
    // Fill the disk.
    let filler = fs.0.join("filler");
    let _ = Command::new("dd")
        .args([
            "if=/dev/zero",
            &format!("of={}", filler.display()),
            "bs=1M",
            "count=64",
        ])
        .stderr(std::process::Stdio::null())
        .status();
    // Leave a little room, so some writes succeed before the disk is full.
    let _ = Command::new("truncate")
        .args(["-s", "-1M"])
        .arg(&filler)
        .status();
    let text = "z".repeat(4000);
    let mut acked = Vec::new();
    let mut refused = 0;
    for _ in 0..3000 {
        let (s, b) = hub.post("/api/widget/messages", &k, json!({"text": text}));
        match s {
            201 => acked.push(b["message"]["id"].as_str().unwrap().to_string()),
            503 => {
                assert_eq!(b["error"]["code"], "unavailable");
                refused += 1;
                if refused > 5 {
                    break;
                }
            }
            other => panic!("unexpected {other}: {b}"),
        }
    }
    assert!(refused > 0, "the disk never filled ({} acked)", acked.len());
    match ureq::get(&format!("{}/healthz", hub.url)).call() {
        Err(ureq::Error::Status(503, r)) => {
            assert_eq!(
                r.header("retry-after"),
                Some("1"),
                "health says when to look again"
            )
        }
        other => panic!(
            "health reports the trouble: {:?}",
            other.map(|r| r.status())
        ),
    }
    // The disk recovers.
    std::fs::remove_file(&filler).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (s, _) = hub.post(
            "/api/widget/messages",
            &k,
            json!({"text": "after recovery"}),
        );
        if s == 201 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no recovery: {s}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Everything acknowledged survives a crash.
    hub.restart();
    let (_, all) = hub.get("/api/inbox?folder=all&limit=500", &a);
    let found: std::collections::HashSet<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    let missing = acked
        .iter()
        .filter(|id| !found.contains(id.as_str()))
        .count();
    println!(
        "disk full: {} acked, {refused} refused with 503, {missing} missing after restart",
        acked.len()
    );
    assert_eq!(missing, 0);
}

/// The store fills the disk itself (no other file to remove): requests go on being
/// answered (503) instead of hanging, and the hub still stops on SIGTERM. sled's closing
/// flush could wait for good there, with the store's lock held.
#[test]
fn a_store_that_fills_its_disk_keeps_answering_and_stops_on_sigterm() {
    let Some(fs) = Tmpfs::mount("16m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let data = fs.0.join("data");
    let mut hub = Hub::start_on(&data, &[]);
    let (_, k) = hub.contact();
    let text = "z".repeat(4000);
    let agent = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(10))
        .build();
    let (mut acked, mut refused) = (0, 0);
    for i in 0..3000 {
        let r = agent
            .post(&format!("{}/api/widget/messages", hub.url))
            .set("Authorization", &format!("Bearer {k}"))
            .send_json(json!({"text": text, "client_id": format!("k{i}")}));
        // A client that leaves the writer idle between requests (it cleans the log's
        // segments then): the hang needed that.
        std::thread::sleep(std::time::Duration::from_millis(2));
        match r {
            Ok(r) if r.status() == 201 => acked += 1,
            Err(ureq::Error::Status(503, _)) => {
                refused += 1;
                if refused >= 20 {
                    break;
                }
            }
            other => panic!(
                "request {i} ({acked} acked, {refused} refused): {:?}",
                other.map(|r| r.status())
            ),
        }
    }
    eprintln!("store-filled disk: {acked} acked, {refused} refused");
    assert!(refused >= 20, "the disk never filled ({acked} acked)");
    let r = agent
        .post(&format!("{}/api/widget/session", hub.url))
        .send_json(json!({}));
    assert!(
        matches!(r, Err(ureq::Error::Status(503, _))),
        "a new contact is refused, not left hanging: {:?}",
        r.map(|r| r.status())
    );
    assert!(hub.terminate(), "a clean stop");
}
