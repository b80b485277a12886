//! What one run does, in a form a worker process can receive, and the messages between
//! the coordinating process and the customer drivers (in-process or forked).

use crate::stats::Snapshot;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the simulator talks to.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The hub: sockets, HTTP actions, verification over HTTP.
    Hub,
    /// The bare relay of `loadtest relay-server`.
    Relay,
    /// `nats-server` over its WebSocket listener.
    Nats,
}

/// One customer driver's share of a run.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct RunCfg {
    pub target: Target,
    /// `http://host:port` of the hub or relay; `ws://host:port` of NATS.
    pub url: String,
    /// The run's id, in every text and name it creates.
    pub run: String,
    /// Customers of the whole run.
    pub customers: u32,
    /// The first customer of this driver, and how many it drives.
    pub first: u32,
    pub count: u32,
    /// Agents of the run (the relay and NATS modes use them as plain consoles).
    pub agents: u32,
    /// Target customer messages per second at the peak, whole run.
    pub rate: f64,
    pub duration_s: f64,
    /// Fraction of the duration spent ramping up, and again ramping down.
    pub ramp: f64,
    /// Percent of customers on the bot channel.
    pub bot_percent: u32,
    pub bot_channel: String,
    /// Spread customer sockets over 127.0.0.1 ..= 127.0.0.k.
    pub source_ips: usize,
    /// Planned customer reconnects (page reloads) per second, whole run.
    pub churn: f64,
    /// How long to wait for outstanding acks after the last send.
    pub ack_wait_s: f64,
    pub seed: u64,
}

impl RunCfg {
    /// This driver's share of the run's rate.
    pub fn share(&self) -> f64 {
        if self.customers == 0 {
            0.0
        } else {
            self.count as f64 / self.customers as f64
        }
    }

    /// Whether customer `idx` is on the bot channel.
    pub fn is_bot(&self, idx: u32) -> bool {
        self.target == Target::Hub && (idx % 100) < self.bot_percent
    }

    /// The rate multiplier at `t` seconds: a peak that ramps from 10% to 100% and back.
    pub fn profile(&self, t: f64) -> f64 {
        let d = self.duration_s;
        let up = (self.ramp * d).max(0.0);
        if up <= 0.0 || t >= d || t < 0.0 {
            return if (0.0..d).contains(&t) { 1.0 } else { 0.0 };
        }
        if t < up {
            0.1 + 0.9 * t / up
        } else if t > d - up {
            0.1 + 0.9 * (d - t) / up
        } else {
            1.0
        }
    }

    /// When (seconds after start) this driver's local customer `j` connects: spread over
    /// the first half of the ramp-up.
    pub fn connect_at(&self, j: u32) -> f64 {
        let window = self.ramp * self.duration_s * 0.5;
        if self.count == 0 {
            0.0
        } else {
            window * j as f64 / self.count as f64
        }
    }
}

/// A verification tally: how many things were checked and how many failed.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Check {
    pub ok: u64,
    pub bad: u64,
    /// Informational only: never fails the run.
    #[serde(default)]
    pub info: bool,
    #[serde(default)]
    pub examples: Vec<String>,
}

/// Named checks.
pub type Checks = BTreeMap<String, Check>;

/// Records one outcome of check `name`.
pub fn tally(checks: &mut Checks, name: &str, ok: bool, example: impl FnOnce() -> String) {
    let c = checks.entry(name.to_string()).or_default();
    if ok {
        c.ok += 1;
    } else {
        c.bad += 1;
        if c.examples.len() < 5 {
            c.examples.push(example());
        }
    }
}

/// How far behind its head the hub replays a resuming socket (docs/DECISIONS.md, "Live
/// events"); further back, its welcome says `reset` (PROTOCOL §7 allows it).
pub const HUB_REPLAY_WINDOW: u64 = 100_000;

impl Target {
    /// How far behind its head this target replays a resuming socket: the hub's window;
    /// nothing for the bare relay (it keeps no history: every resume behind its head is
    /// a `reset`) and for nats-server (no resume).
    pub fn replay_window(self) -> u64 {
        match self {
            Target::Hub => HUB_REPLAY_WINDOW,
            Target::Relay | Target::Nats => 0,
        }
    }
}

/// Whether a resume from `since` with the target at `head` is past what it replays
/// (`window`), so that a reset is what it promises rather than a lost replay.
pub fn beyond_replay_window(since: u64, head: u64, window: u64) -> bool {
    head.saturating_sub(since) > window
}

/// Adds `n` to an informational counter check.
pub fn note(checks: &mut Checks, name: &str, n: u64) {
    let c = checks.entry(name.to_string()).or_default();
    c.info = true;
    c.ok += n;
}

/// Merges check tallies.
pub fn merge_checks(into: &mut Checks, from: &Checks) {
    for (k, v) in from {
        let c = into.entry(k.clone()).or_default();
        c.ok += v.ok;
        c.bad += v.bad;
        c.info |= v.info;
        for e in &v.examples {
            if c.examples.len() < 5 {
                c.examples.push(e.clone());
            }
        }
    }
}

/// Coordinator -> driver.
#[derive(Serialize, Deserialize, Debug)]
pub enum ToDriver {
    /// Start: the run's time zero, µs of the monotonic clock (`stats::now_us`).
    Go(u64),
    /// Load and ack wait are over everywhere: verify and report.
    Finish,
}

/// Live counters of a driver.
#[derive(Serialize, Deserialize, Debug, Default, Clone)]
pub struct Progress {
    pub connected: u64,
    pub sent: u64,
    pub acked: u64,
    pub errors: u64,
    pub reconnects: u64,
    pub unacked: i64,
    /// Acks and their p99 (µs) since the last progress report.
    pub interval_acks: u64,
    pub interval_p99_us: u64,
    /// When these counters were read, µs of the monotonic clock (`stats::now_us`).
    pub at_us: u64,
}

/// What a driver hands back at the end.
#[derive(Serialize, Deserialize, Debug, Default)]
pub struct DriverResult {
    pub stats: Snapshot,
    /// Keys (customer << 32 | n) of every acknowledged message.
    pub acked: Vec<u64>,
    pub checks: Checks,
    pub cpu_s: f64,
}

/// Driver -> coordinator.
#[derive(Serialize, Deserialize, Debug)]
pub enum FromDriver {
    /// Sessions are open; waiting for `Go`.
    Ready,
    Progress(Progress),
    /// The schedule is over and acks are drained (or timed out).
    Sent,
    Result(Box<DriverResult>),
    /// The driver could not run.
    Failed(String),
}

/// CPU seconds (user + system) this process has used, from /proc.
pub fn cpu_seconds() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses).
    let Some(rest) = s.rfind(')').map(|i| &s[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = 100.0;
    let ut: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let st: f64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    (ut + st) / tick
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_resume_further_back_than_the_targets_window_may_reset() {
        let hub = Target::Hub.replay_window();
        assert!(!beyond_replay_window(8_154, 8_154 + HUB_REPLAY_WINDOW, hub));
        assert!(beyond_replay_window(8_154, 8_155 + HUB_REPLAY_WINDOW, hub));
        assert!(
            !beyond_replay_window(500, 400, hub),
            "a since past the head is no excuse"
        );
        // The relay replays nothing: any resume behind its head may reset.
        let relay = Target::Relay.replay_window();
        assert!(beyond_replay_window(8_154, 8_155, relay));
        assert!(!beyond_replay_window(8_155, 8_155, relay));
    }

    fn cfg() -> RunCfg {
        RunCfg {
            target: Target::Hub,
            url: String::new(),
            run: "r".into(),
            customers: 100,
            first: 0,
            count: 50,
            agents: 1,
            rate: 100.0,
            duration_s: 10.0,
            ramp: 0.2,
            bot_percent: 10,
            bot_channel: "bot".into(),
            source_ips: 1,
            churn: 0.0,
            ack_wait_s: 1.0,
            seed: 1,
        }
    }

    #[test]
    fn the_profile_ramps_up_holds_and_ramps_down() {
        let c = cfg();
        assert!((c.profile(0.0) - 0.1).abs() < 1e-9);
        assert!((c.profile(1.0) - 0.55).abs() < 1e-9);
        assert_eq!(c.profile(5.0), 1.0);
        assert!((c.profile(9.0) - 0.55).abs() < 1e-9);
        assert_eq!(c.profile(10.0), 0.0);
        assert_eq!(c.share(), 0.5);
        assert!(c.is_bot(3) && !c.is_bot(10) && c.is_bot(105));
        assert_eq!(c.connect_at(0), 0.0);
        assert!(c.connect_at(49) < 1.0);
    }

    #[test]
    fn checks_tally_and_merge() {
        let mut a = Checks::new();
        tally(&mut a, "x", true, String::new);
        tally(&mut a, "x", false, || "bad one".into());
        let mut b = Checks::new();
        tally(&mut b, "x", true, String::new);
        note(&mut b, "y", 3);
        merge_checks(&mut a, &b);
        assert_eq!((a["x"].ok, a["x"].bad), (2, 1));
        assert_eq!(a["x"].examples, vec!["bad one".to_string()]);
        assert!(a["y"].info);
    }
}
