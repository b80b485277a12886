//! `loadtest compare`: the hub and its peers (the bare relay, nats-server) on the same
//! workload, in alternated rounds, with the peer targets worked out from the
//! medians. Each hub run gets a fresh hub on a fresh store unless `--url` names one.

use crate::config::Target;
use crate::run::{self, Opts};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The hub's p99 (send → every console) may be at most this many times nats-server's.
pub const MAX_P99_VS_NATS: f64 = 1.5;
/// The hub's throughput must be at least this share of the bare relay's.
pub const MIN_THROUGHPUT_VS_RELAY: f64 = 0.5;

/// What `compare` is told.
pub struct CompareOpts {
    /// One run's options per target (`url` empty: start one).
    pub hub: Opts,
    pub peers: Vec<Opts>,
    pub rounds: u32,
    pub hub_bin: Option<PathBuf>,
    pub output: Option<PathBuf>,
}

fn say(msg: impl AsRef<str>) {
    eprintln!("loadtest compare: {}", msg.as_ref());
}

fn name(t: Target) -> &'static str {
    match t {
        Target::Hub => "hub",
        Target::Relay => "relay",
        Target::Nats => "nats",
    }
}

/// A hub started for one run, on a store of its own.
struct HubProc {
    child: tokio::process::Child,
    url: String,
    token: String,
    dir: PathBuf,
}

impl HubProc {
    async fn start(bin: &Path) -> Result<HubProc, String> {
        let dir = std::env::temp_dir().join(format!(
            "loadtest-hub-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let token = format!("lt-{:016x}", rand::random::<u64>());
        let mut child = tokio::process::Command::new(bin)
            .env("HUB_ADDR", "127.0.0.1:0")
            .env("HUB_DATA", &dir)
            .env("HUB_RATE_LIMIT", "off")
            .env("HUB_ADMIN_TOKEN", &token)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("start {} (cargo build --release): {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("no hub stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
                if let Some(url) = line.trim().strip_prefix("listening on ") {
                    return Ok(url.to_string());
                }
            }
            Err("the hub exited before listening".to_string())
        })
        .await
        .map_err(|_| "the hub did not print `listening on` within 120 s".to_string())??;
        // Keep its stdout drained.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(HubProc {
            child,
            url,
            token,
            dir,
        })
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The hub binary beside this one (same `target/release`).
fn default_hub_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("hub")))
        .unwrap_or_else(|| PathBuf::from("hub"))
}

/// The figures of one run that the comparison uses.
pub fn figures(report: &Value) -> Value {
    let lat = |h: &str, q: &str| report["latency_ms"][h][q].as_f64();
    let duration = report["config"]["duration_s"].as_f64().unwrap_or(0.0);
    let frames = report["throughput"]["console_frames_delivered"]
        .as_f64()
        .unwrap_or(0.0);
    json!({
        "passed": report["passed"] == true,
        "ack_p50_ms": lat("send_ack", "p50_ms"),
        "ack_p99_ms": lat("send_ack", "p99_ms"),
        "ack_p999_ms": lat("send_ack", "p999_ms"),
        "console_p50_ms": lat("send_console_all", "p50_ms"),
        "console_p99_ms": lat("send_console_all", "p99_ms"),
        "console_p999_ms": lat("send_console_all", "p999_ms"),
        // The highest ack rate over 5 s while the load ran: a target's ceiling once the
        // offered rate saturates it. (The mean counts the acks that arrive while the run
        // drains, so every target that acks everything in the end shows the same.)
        "acked_per_s": report["throughput"]["acked_per_s_peak_5s"].as_f64(),
        "console_frames_per_s": if duration > 0.0 { Some(frames / duration) } else { None },
    })
}

/// The median (the mean of the middle two for an even count); `None` when empty.
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The order of the targets in round `r`: rotated, so no target always runs first.
pub fn order<T: Clone>(targets: &[T], r: u32) -> Vec<T> {
    let mut v = targets.to_vec();
    if !v.is_empty() {
        let k = r as usize % v.len();
        v.rotate_left(k);
    }
    v
}

/// Medians per target and the peer ratios, from the rounds' figures
/// (`rounds[i][target name]` = `figures` of that run, absent when it failed to run).
pub fn summarize(rounds: &[Value]) -> Value {
    let mut per_target = serde_json::Map::new();
    for t in ["hub", "relay", "nats"] {
        let runs: Vec<&Value> = rounds.iter().filter_map(|r| r.get(t)).collect();
        if runs.is_empty() {
            continue;
        }
        let mut s = serde_json::Map::new();
        s.insert("runs".into(), json!(runs.len()));
        s.insert(
            "passed".into(),
            json!(runs.iter().filter(|f| f["passed"] == true).count()),
        );
        for k in [
            "ack_p50_ms",
            "ack_p99_ms",
            "ack_p999_ms",
            "console_p50_ms",
            "console_p99_ms",
            "console_p999_ms",
            "acked_per_s",
            "console_frames_per_s",
        ] {
            let vals: Vec<f64> = runs.iter().filter_map(|f| f[k].as_f64()).collect();
            s.insert(k.into(), json!(median(vals.clone())));
            s.insert(format!("{k}_all"), json!(vals));
        }
        per_target.insert(t.into(), Value::Object(s));
    }
    // Ratios per round (both runs of the same round), then their median.
    let ratio = |a: &str, b: &str, k: &str| -> Vec<f64> {
        rounds
            .iter()
            .filter_map(|r| {
                let x = r.get(a)?[k].as_f64()?;
                let y = r.get(b)?[k].as_f64()?;
                (y > 0.0).then_some(x / y)
            })
            .collect()
    };
    let p99_vs_nats = ratio("hub", "nats", "console_p99_ms");
    let tput_vs_relay = ratio("hub", "relay", "acked_per_s");
    let m_p99 = median(p99_vs_nats.clone());
    let m_tput = median(tput_vs_relay.clone());
    json!({
        "targets": per_target,
        "hub_p99_vs_nats": {
            "median": m_p99, "rounds": p99_vs_nats, "target_max": MAX_P99_VS_NATS,
            "met": m_p99.map(|m| m <= MAX_P99_VS_NATS),
        },
        "hub_throughput_vs_relay": {
            "median": m_tput, "rounds": tput_vs_relay, "target_min": MIN_THROUGHPUT_VS_RELAY,
            "met": m_tput.map(|m| m >= MIN_THROUGHPUT_VS_RELAY),
        },
    })
}

fn cell(v: &Value, digits: usize) -> String {
    v.as_f64()
        .map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "-".into())
}

/// The comparison as a text table.
pub fn table(summary: &Value) -> String {
    let mut out = format!(
        "{:<7} {:>4} {:>4} {:>9} {:>9} {:>9} {:>11} {:>11} {:>10} {:>12}\n",
        "target",
        "runs",
        "pass",
        "ack p50",
        "ack p99",
        "ack p99.9",
        "console p50",
        "console p99",
        "peak ack/s",
        "frames/s"
    );
    if let Some(m) = summary["targets"].as_object() {
        for t in ["hub", "relay", "nats"] {
            let Some(s) = m.get(t) else { continue };
            out.push_str(&format!(
                "{:<7} {:>4} {:>4} {:>9} {:>9} {:>9} {:>11} {:>11} {:>10} {:>12}\n",
                t,
                s["runs"].as_u64().unwrap_or(0),
                s["passed"].as_u64().unwrap_or(0),
                cell(&s["ack_p50_ms"], 2),
                cell(&s["ack_p99_ms"], 2),
                cell(&s["ack_p999_ms"], 2),
                cell(&s["console_p50_ms"], 2),
                cell(&s["console_p99_ms"], 2),
                cell(&s["acked_per_s"], 0),
                cell(&s["console_frames_per_s"], 0),
            ));
        }
    }
    out.push_str("(latencies in ms; medians over the rounds)\n\n");
    let status = |met: &Value| match met.as_bool() {
        Some(true) => "met",
        Some(false) => "not met",
        None => "not measured",
    };
    let rounds = |v: &Value| {
        v.as_array()
            .map(|a| a.iter().map(|x| cell(x, 2)).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    let p = &summary["hub_p99_vs_nats"];
    out.push_str(&format!(
        "hub p99 (send -> every console) / nats-server's: {}x median (rounds: {}), target <= {}x: {}\n",
        cell(&p["median"], 2),
        rounds(&p["rounds"]),
        MAX_P99_VS_NATS,
        status(&p["met"])
    ));
    let t = &summary["hub_throughput_vs_relay"];
    out.push_str(&format!(
        "hub peak acked msgs/s (5 s) / the bare relay's: {} median (rounds: {}), target >= {}: {}\n",
        cell(&t["median"], 2),
        rounds(&t["rounds"]),
        MIN_THROUGHPUT_VS_RELAY,
        status(&t["met"])
    ));
    out
}

/// Runs the rounds; the exit code is 0 when every run passed its checks, 1 when a check
/// failed, 2 when a run could not be carried out. Whether the peer targets are met is
/// reported, not turned into the exit code.
pub async fn compare(o: CompareOpts) -> i32 {
    let runs: Vec<&Opts> = std::iter::once(&o.hub).chain(&o.peers).collect();
    let n_rounds = o.rounds.max(1);
    let hub_bin = o.hub_bin.clone().unwrap_or_else(default_hub_bin);
    let mut rounds = Vec::new();
    let mut errors = Vec::new();
    let mut failed = false;
    for r in 0..n_rounds {
        let mut figs = serde_json::Map::new();
        for run in order(&runs, r) {
            let t = run.target;
            say(format!("round {} of {n_rounds}: {}", r + 1, name(t)));
            let mut opts = run.clone();
            opts.output = None;
            let mut started = None;
            if t == Target::Hub && opts.url.is_empty() {
                match HubProc::start(&hub_bin).await {
                    Ok(h) => {
                        opts.url = h.url.clone();
                        opts.admin_token = Some(h.token.clone());
                        started = Some(h);
                    }
                    Err(e) => {
                        say(format!("error: {e}"));
                        errors.push(format!("round {} hub: {e}", r + 1));
                        continue;
                    }
                }
            }
            let res = run::report(opts).await;
            if let Some(h) = started {
                h.stop().await;
            }
            match res {
                Ok(report) => {
                    let f = figures(&report);
                    failed |= f["passed"] != true;
                    figs.insert(name(t).into(), f);
                }
                Err(e) => {
                    say(format!("error: {e}"));
                    errors.push(format!("round {} {}: {e}", r + 1, name(t)));
                }
            }
        }
        rounds.push(Value::Object(figs));
    }
    let summary = summarize(&rounds);
    let h = &o.hub;
    println!(
        "\n=== loadtest compare: {} round(s), customers {} agents {} peak rate {}/s duration {}s ===",
        n_rounds,
        h.customers,
        h.agents,
        h.rate,
        h.duration_s
    );
    print!("{}", table(&summary));
    for e in &errors {
        println!("error: {e}");
    }
    let report = json!({
        "mode": "compare",
        "config": {
            "customers": h.customers, "agents": h.agents, "rate": h.rate,
            "duration_s": h.duration_s, "ramp": h.ramp, "workers": h.workers,
            "rounds": n_rounds,
        },
        "rounds": rounds,
        "summary": summary,
        "errors": errors,
        "passed": !failed && errors.is_empty(),
    });
    if let Some(p) = &o.output {
        match std::fs::write(p, serde_json::to_string_pretty(&report).unwrap_or_default()) {
            Ok(()) => say(format!("wrote {}", p.display())),
            Err(e) => {
                say(format!("write {}: {e}", p.display()));
                return 2;
            }
        }
    }
    if !errors.is_empty() {
        2
    } else if failed {
        1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(p99: f64, acked: f64, passed: bool) -> Value {
        json!({"passed": passed, "console_p99_ms": p99, "acked_per_s": acked,
               "ack_p99_ms": p99 + 1.0})
    }

    #[test]
    fn median_of_odd_and_even_counts_and_of_nothing() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![f64::NAN, 5.0]), Some(5.0));
    }

    #[test]
    fn every_target_leads_one_round() {
        let t = [Target::Hub, Target::Relay, Target::Nats];
        let firsts: Vec<Target> = (0..3).map(|r| order(&t, r)[0]).collect();
        assert_eq!(firsts, vec![Target::Hub, Target::Relay, Target::Nats]);
        assert_eq!(order(&t, 4), order(&t, 1));
    }

    #[test]
    fn ratios_pair_runs_of_the_same_round() {
        let rounds = vec![
            json!({"hub": fig(9.0, 800.0, true), "nats": fig(3.0, 800.0, true),
                   "relay": fig(2.0, 1000.0, true)}),
            json!({"hub": fig(4.0, 900.0, true), "nats": fig(4.0, 900.0, true),
                   "relay": fig(2.0, 900.0, true)}),
            // nats did not run this round: no p99 ratio from it.
            json!({"hub": fig(30.0, 100.0, false), "relay": fig(2.0, 1000.0, true)}),
        ];
        let s = summarize(&rounds);
        assert_eq!(s["hub_p99_vs_nats"]["rounds"], json!([3.0, 1.0]));
        assert_eq!(s["hub_p99_vs_nats"]["median"], json!(2.0));
        assert_eq!(s["hub_p99_vs_nats"]["met"], json!(false));
        assert_eq!(
            s["hub_throughput_vs_relay"]["rounds"],
            json!([0.8, 1.0, 0.1])
        );
        assert_eq!(s["hub_throughput_vs_relay"]["median"], json!(0.8));
        assert_eq!(s["hub_throughput_vs_relay"]["met"], json!(true));
        assert_eq!(s["targets"]["hub"]["runs"], json!(3));
        assert_eq!(s["targets"]["hub"]["passed"], json!(2));
        assert_eq!(s["targets"]["hub"]["console_p99_ms"], json!(9.0));
        assert_eq!(s["targets"]["nats"]["runs"], json!(2));
        let text = table(&s);
        assert!(text.contains("2.00x median"), "{text}");
        assert!(text.contains("not met"), "{text}");
    }

    #[test]
    fn no_peer_runs_means_not_measured() {
        let s = summarize(&[json!({"hub": fig(5.0, 100.0, true)})]);
        assert_eq!(s["hub_p99_vs_nats"]["met"], Value::Null);
        assert!(table(&s).contains("not measured"));
    }

    #[test]
    fn figures_read_a_run_report() {
        let report = json!({
            "passed": true,
            "config": {"duration_s": 10.0},
            "latency_ms": {
                "send_ack": {"p50_ms": 1.0, "p99_ms": 2.0, "p999_ms": 3.0},
                "send_console_all": {"p50_ms": 1.5, "p99_ms": 2.5, "p999_ms": 3.5},
            },
            "throughput": {"acked_per_s_mean": 900.0, "acked_per_s_peak_5s": 1010.0,
                "console_frames_delivered": 50000},
        });
        let f = figures(&report);
        assert_eq!(f["passed"], json!(true));
        assert_eq!(f["ack_p99_ms"], json!(2.0));
        assert_eq!(f["console_p99_ms"], json!(2.5));
        assert_eq!(f["acked_per_s"], json!(1010.0));
        assert_eq!(f["console_frames_per_s"], json!(5000.0));
    }
}
