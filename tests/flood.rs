//! Flood: one contact sending far beyond its rate (here: as fast as one connection can)
//! must not raise the other contacts' p99 latency by more than 10 %. Timing-based, so
//! it is `#[ignore]`d in the default run; the README reports its figure:
//! `cargo test --release --test flood -- --ignored --nocapture`.

mod common;

use common::Hub;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// p99 (ms) of `clients` contacts each sending `per_second` messages for `secs`.
fn normal_clients_p99(hub: &Hub, clients: usize, per_second: u64, secs: u64) -> f64 {
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (_, token) = hub.contact();
            let url = hub.url.clone();
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().build();
                let mut lat = Vec::new();
                let start = Instant::now();
                let gap = Duration::from_millis(1000 / per_second);
                for i in 0..per_second * secs {
                    let due = start + gap * i as u32;
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait); // pacing an open-loop sender, not synchronisation
                    }
                    let r = agent
                        .post(&format!("{url}/api/widget/messages"))
                        .set("Authorization", &format!("Bearer {token}"))
                        .send_string(&json!({"text": format!("n{i}")}).to_string())
                        .unwrap();
                    assert_eq!(r.status(), 201);
                    lat.push(due.elapsed().as_secs_f64() * 1000.0);
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<f64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    all[(all.len() * 99 / 100).min(all.len() - 1)]
}

#[test]
#[ignore]
fn a_flooding_contact_does_not_slow_the_others() {
    let hub = Hub::start_with(&[("HUB_RATE_LIMIT", "on")]);
    normal_clients_p99(&hub, 10, 4, 2); // warm-up, discarded
    let baseline = normal_clients_p99(&hub, 10, 4, 10);
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let flood = {
        let (_, token) = hub.contact();
        let (url, stop, refused, sent) =
            (hub.url.clone(), stop.clone(), refused.clone(), sent.clone());
        std::thread::spawn(move || {
            let agent = ureq::AgentBuilder::new().build();
            while !stop.load(Ordering::Relaxed) {
                let r = agent
                    .post(&format!("{url}/api/widget/messages"))
                    .set("Authorization", &format!("Bearer {token}"))
                    .send_string(&json!({"text": "flood"}).to_string());
                sent.fetch_add(1, Ordering::Relaxed);
                if matches!(r, Err(ureq::Error::Status(429, _))) {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let flooded = normal_clients_p99(&hub, 10, 4, 10);
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();
    let rate = sent.load(Ordering::Relaxed) as f64 / 10.0;
    println!(
        "flood: normal p99 {baseline:.2} ms alone, {flooded:.2} ms beside a flooder at {rate:.0} req/s ({} refused with 429); change {:+.1} %",
        refused.load(Ordering::Relaxed),
        (flooded / baseline - 1.0) * 100.0
    );
    assert!(
        rate >= 50.0,
        "the flooder sent at least 10x the normal 4-5/s"
    );
    assert!(
        flooded <= baseline * 1.10 + 1.0,
        "p99 {baseline:.2} → {flooded:.2} ms"
    );
}
