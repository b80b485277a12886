//! Latency histograms (µs, hdrhistogram) and counters, shareable across tasks and
//! serialisable so that worker processes can hand theirs to the parent.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;
/// Microseconds of the system's monotonic clock (`CLOCK_MONOTONIC`): the one clock
/// every process of a run shares, and the one tokio's timers (which pace the sends)
/// run on. The wall clock is not: when the system corrects it by slewing, latencies
/// measured from wall-clock stamps against a monotonic schedule drift with it (a run
/// here once read 620 ms for every message while agents' actions took 2 ms).
pub fn now_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// The `Instant` at which [`now_us`] reads `us` (before or after now).
pub fn instant_at(us: u64) -> std::time::Instant {
    let (now, i) = (now_us(), std::time::Instant::now());
    if us > now {
        i + std::time::Duration::from_micros(us - now)
    } else {
        i - std::time::Duration::from_micros(now - us)
    }
}

#[cfg(test)]
mod clock_tests {
    use super::now_us;
    use std::time::{Duration, Instant};

    #[test]
    fn now_us_runs_with_tokios_clock() {
        let (a, i) = (now_us(), Instant::now());
        std::thread::sleep(Duration::from_millis(100));
        let (b, j) = (now_us(), Instant::now());
        let us = (j - i).as_micros() as i64;
        // The two readings of each pair are taken back to back, so the elapsed times
        // agree closely (the margin is for a preempted reading on a busy machine; a
        // wrong unit would be off by a factor of 1,000).
        assert!(
            ((b - a) as i64 - us).abs() < 25_000,
            "{} µs against {us} µs",
            b - a
        );
        assert!(a > 0);
    }
}

/// A histogram of µs values up to one hour, 3 significant figures.
pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("histogram bounds")
}

/// Records `v` (µs), clamped into the histogram's range.
pub fn record(h: &mut Histogram<u64>, v: u64) {
    let _ = h.record(v.clamp(1, 3_600_000_000));
}

/// Thread-safe named histograms and counters.
#[derive(Default)]
pub struct Stats {
    hists: Mutex<BTreeMap<String, Histogram<u64>>>,
    counters: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    /// Records a latency in µs into histogram `name`.
    pub fn rec(&self, name: &str, us: u64) {
        let mut g = self.hists.lock().unwrap();
        match g.get_mut(name) {
            Some(h) => record(h, us),
            None => {
                let mut h = new_hist();
                record(&mut h, us);
                g.insert(name.to_string(), h);
            }
        }
    }

    /// Adds a whole histogram into `name`.
    pub fn merge_hist(&self, name: &str, h: &Histogram<u64>) {
        let mut g = self.hists.lock().unwrap();
        g.entry(name.to_string())
            .or_insert_with(new_hist)
            .add(h)
            .ok();
    }

    /// Adds `n` to counter `name`.
    pub fn add(&self, name: &str, n: u64) {
        let mut g = self.counters.lock().unwrap();
        match g.get_mut(name) {
            Some(c) => *c += n,
            None => {
                g.insert(name.to_string(), n);
            }
        }
    }

    /// Adds one to counter `name`.
    pub fn inc(&self, name: &str) {
        self.add(name, 1);
    }

    /// The value of counter `name`.
    pub fn get(&self, name: &str) -> u64 {
        self.counters
            .lock()
            .unwrap()
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    /// Takes (and resets) histogram `name`'s p99 and count, for progress lines.
    pub fn take_interval(&self, name: &str) -> Option<(u64, u64)> {
        let mut g = self.hists.lock().unwrap();
        let h = g.get_mut(name)?;
        let out = (h.len(), h.value_at_quantile(0.99));
        h.reset();
        Some(out)
    }

    /// A serialisable copy.
    pub fn snapshot(&self) -> Snapshot {
        let hists = self
            .hists
            .lock()
            .unwrap()
            .iter()
            .map(|(k, h)| (k.clone(), encode(h)))
            .collect();
        Snapshot {
            hists,
            counters: self.counters.lock().unwrap().clone(),
        }
    }

    /// Adds a snapshot (from a worker) into these stats.
    pub fn absorb(&self, s: &Snapshot) {
        for (k, v) in &s.hists {
            self.merge_hist(k, &decode(v));
        }
        for (k, v) in &s.counters {
            self.add(k, *v);
        }
    }
}

/// Histograms as (value, count) pairs, and counters.
#[derive(Serialize, Deserialize, Default, Clone, Debug)]
pub struct Snapshot {
    pub hists: BTreeMap<String, Vec<(u64, u64)>>,
    pub counters: BTreeMap<String, u64>,
}

fn encode(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

fn decode(v: &[(u64, u64)]) -> Histogram<u64> {
    let mut h = new_hist();
    for (value, count) in v {
        let _ = h.record_n((*value).clamp(1, 3_600_000_000), *count);
    }
    h
}

/// The order and labels of the histograms in the human table.
pub const LABELS: &[(&str, &str)] = &[
    ("send_ack", "customer send -> ack"),
    (
        "send_console_first",
        "customer send -> first console message.created",
    ),
    (
        "send_console_all",
        "customer send -> every console message.created",
    ),
    ("reply_widget", "agent reply -> widget reply.created"),
    ("bot_reply", "customer send -> widget bot reply"),
    ("action.all", "agent action -> 2xx (all kinds)"),
    ("action.reply", "  reply"),
    ("action.assign", "  assign"),
    ("action.hold", "  hold"),
    ("action.unassign", "  unassign"),
    ("action.request_help", "  request-help"),
    ("action.assign_help", "  supervisor assign help"),
    ("action.answer_help", "  supervisor answer-help"),
    ("action.comment", "  comment"),
    ("action.close", "  close"),
    (
        "agent_queue_wait",
        "(simulator) agent busy: action waits its turn",
    ),
    ("session_create", "POST /api/widget/session"),
    ("ws_connect", "widget socket connect -> welcome"),
    ("console_connect", "console socket connect -> welcome"),
    ("console_resume", "console resume: reconnect -> caught up"),
];

fn ms(us: u64) -> String {
    let v = us as f64 / 1000.0;
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// One histogram as JSON (ms).
pub fn hist_json(h: &Histogram<u64>) -> Value {
    let q = |p: f64| h.value_at_quantile(p) as f64 / 1000.0;
    json!({
        "count": h.len(),
        "p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99), "p999_ms": q(0.999),
        "max_ms": h.max() as f64 / 1000.0, "mean_ms": h.mean() / 1000.0,
    })
}

/// The latency table, as text.
pub fn table(s: &Snapshot) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<48} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        "latency (ms)", "count", "p50", "p90", "p99", "p99.9", "max"
    ));
    let mut shown = std::collections::BTreeSet::new();
    let mut row = |label: &str, v: &[(u64, u64)]| {
        let h = decode(v);
        if h.is_empty() {
            return;
        }
        out.push_str(&format!(
            "{:<48} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            label,
            h.len(),
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.9)),
            ms(h.value_at_quantile(0.99)),
            ms(h.value_at_quantile(0.999)),
            ms(h.max())
        ));
    };
    for (k, label) in LABELS {
        if let Some(v) = s.hists.get(*k) {
            row(label, v);
            shown.insert(k.to_string());
        }
    }
    for (k, v) in &s.hists {
        if !shown.contains(k) && !k.starts_with("interval_") {
            row(k, v);
        }
    }
    out
}

/// All histograms as JSON.
pub fn hists_json(s: &Snapshot) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in s.hists.iter().filter(|(k, _)| !k.starts_with("interval_")) {
        m.insert(k.clone(), hist_json(&decode(v)));
    }
    Value::Object(m)
}
