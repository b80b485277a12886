//! The coordinator of a run: sets the hub up (agents, supervisor, assistant), holds the
//! consoles, starts the customer drivers (in this process or in forked workers), prints
//! progress, drains, verifies, and reports.

use crate::config::*;
use crate::consoles::{self, Shared, Who};
use crate::driver;
use crate::http::{parse_base, Client};
use crate::stats::{self, now_us, Snapshot, Stats};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Everything a run is told.
#[derive(Clone, Debug)]
pub struct Opts {
    pub mode: String,
    pub target: Target,
    pub url: String,
    pub admin_token: Option<String>,
    pub customers: u32,
    pub agents: u32,
    pub rate: f64,
    pub duration_s: f64,
    pub ramp: f64,
    pub bot_percent: u32,
    pub bot_channel: String,
    pub source_ips: usize,
    pub workers: u32,
    pub churn: f64,
    /// Planned console reloads (drop, then resume with `since`) per second, whole run.
    pub console_churn: f64,
    pub output: Option<PathBuf>,
    pub agent_concurrency: usize,
    /// Consoles only watch (no agent actions).
    pub watch_only: bool,
    pub ack_wait_s: f64,
    pub drain_s: f64,
    pub seed: u64,
    /// Seconds between progress lines.
    pub progress_s: u64,
}

fn say(msg: impl AsRef<str>) {
    eprintln!("loadtest: {}", msg.as_ref());
}

/// Runs and reports; the exit code is 0 when every check passed.
pub async fn run(o: Opts) -> i32 {
    match report(o).await {
        Ok(r) => {
            if r["passed"] == true {
                0
            } else {
                1
            }
        }
        Err(e) => {
            say(format!("error: {e}"));
            2
        }
    }
}

struct Setup {
    agents: Vec<Who>,
    supervisor: Who,
    assistant: Option<String>,
}

async fn setup_hub(o: &Opts, http: &Client, run: &str) -> Result<Setup, String> {
    let admin = o
        .admin_token
        .clone()
        .ok_or("--admin-token (or HUB_ADMIN_TOKEN) is needed to create agents")?;
    let h = http
        .call("GET", "/healthz", None, None)
        .await
        .map_err(|e| format!("hub not reachable at {}: {e}", o.url))?;
    if !h.ok() {
        return Err(format!("GET /healthz answered {}", h.status));
    }
    let create = |name: String, role: &'static str| {
        let admin = admin.clone();
        async move {
            let a = http
                .call(
                    "POST",
                    "/api/agents",
                    Some(&admin),
                    Some(&json!({"name": name, "role": role, "capacity": 1000})),
                )
                .await
                .map_err(|e| format!("POST /api/agents: {e}"))?;
            if !a.ok() {
                return Err(format!("POST /api/agents: {} {}", a.status, a.body));
            }
            Ok::<Who, String>(Who {
                name,
                token: a.body["token"].as_str().unwrap_or("").to_string(),
                index: None,
            })
        }
    };
    let supervisor = create(format!("lt-{run}-sup"), "supervisor").await?;
    let mut agents = Vec::new();
    for i in 0..o.agents {
        let mut w = create(format!("lt-{run}-a{i}"), "agent").await?;
        w.index = Some(i);
        agents.push(w);
    }
    let mut assistant = None;
    if o.bot_percent > 0 {
        let a = http
            .call(
                "POST",
                "/api/assistants",
                Some(&admin),
                Some(&json!({
                    "name": format!("lt-{run}-bot"),
                    "rules": [{"match": driver::BOT_RULE_MATCH, "reply": driver::BOT_RULE_REPLY}],
                    "transfer_keywords": [driver::BOT_TRANSFER_KEYWORD],
                    "transfer_reply": driver::BOT_TRANSFER_REPLY,
                })),
            )
            .await
            .map_err(|e| format!("POST /api/assistants: {e}"))?;
        if !a.ok() {
            return Err(format!("POST /api/assistants: {} {}", a.status, a.body));
        }
        let id = a.body["id"].as_str().unwrap_or("").to_string();
        let p = http
            .call(
                "POST",
                &format!("/api/assistants/{id}/publish"),
                Some(&admin),
                Some(&json!({"channels": [o.bot_channel]})),
            )
            .await
            .map_err(|e| format!("publish: {e}"))?;
        if !p.ok() {
            return Err(format!("publish assistant: {} {}", p.status, p.body));
        }
        assistant = Some(id);
    }
    Ok(Setup {
        agents,
        supervisor,
        assistant,
    })
}

/// A driver seen from the coordinator.
struct DriverLink {
    tx: mpsc::Sender<ToDriver>,
    child: Option<tokio::process::Child>,
}

fn start_in_process(
    cfg: RunCfg,
    i: usize,
    events: mpsc::Sender<(usize, FromDriver)>,
) -> DriverLink {
    let (to_tx, to_rx) = mpsc::channel(8);
    let (from_tx, mut from_rx) = mpsc::channel(64);
    tokio::spawn(driver::drive(cfg, to_rx, from_tx));
    tokio::spawn(async move {
        while let Some(m) = from_rx.recv().await {
            if events.send((i, m)).await.is_err() {
                break;
            }
        }
    });
    DriverLink {
        tx: to_tx,
        child: None,
    }
}

fn start_worker(
    cfg: RunCfg,
    i: usize,
    events: mpsc::Sender<(usize, FromDriver)>,
) -> Result<DriverLink, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = tokio::process::Command::new(exe)
        .arg("worker")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("fork worker: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no worker stdin")?;
    let stdout = child.stdout.take().ok_or("no worker stdout")?;
    let (to_tx, mut to_rx) = mpsc::channel::<ToDriver>(8);
    let first = serde_json::to_string(&cfg).map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        if stdin
            .write_all(format!("{first}\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
        while let Some(m) = to_rx.recv().await {
            let line = serde_json::to_string(&m).unwrap_or_default();
            if stdin
                .write_all(format!("{line}\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
            let _ = stdin.flush().await;
        }
    });
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        loop {
            match lines.next_line().await {
                Ok(Some(l)) => match serde_json::from_str::<FromDriver>(&l) {
                    Ok(m) => {
                        if events.send((i, m)).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => eprintln!("worker {i}: unreadable line ({e}): {l:.200}"),
                },
                _ => {
                    let _ = events
                        .send((i, FromDriver::Failed("worker exited".into())))
                        .await;
                    break;
                }
            }
        }
    });
    Ok(DriverLink {
        tx: to_tx,
        child: Some(child),
    })
}

/// The `worker` subcommand: one driver over stdin/stdout.
pub async fn worker_main() -> i32 {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let cfg: RunCfg = match lines.next_line().await {
        Ok(Some(l)) => match serde_json::from_str(&l) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("worker: bad config: {e}");
                return 2;
            }
        },
        _ => return 2,
    };
    let (to_tx, to_rx) = mpsc::channel(8);
    let (from_tx, mut from_rx) = mpsc::channel(64);
    tokio::spawn(driver::drive(cfg, to_rx, from_tx));
    tokio::spawn(async move {
        while let Ok(Some(l)) = lines.next_line().await {
            if let Ok(m) = serde_json::from_str::<ToDriver>(&l) {
                if to_tx.send(m).await.is_err() {
                    break;
                }
            }
        }
    });
    let mut out = tokio::io::stdout();
    while let Some(m) = from_rx.recv().await {
        let done = matches!(m, FromDriver::Result(_) | FromDriver::Failed(_));
        let line = serde_json::to_string(&m).unwrap_or_default();
        if out.write_all(format!("{line}\n").as_bytes()).await.is_err() {
            return 2;
        }
        let _ = out.flush().await;
        if done {
            return 0;
        }
    }
    2
}

/// Starts `loadtest relay-server` on a free port; returns it and its URL.
async fn spawn_relay() -> Result<(tokio::process::Child, String), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = tokio::process::Command::new(exe)
        .args(["relay-server", "--addr", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("start relay: {e}"))?;
    let stdout = child.stdout.take().ok_or("no relay stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .map_err(|_| "relay did not start")?
        .map_err(|e| e.to_string())?
        .ok_or("relay exited")?;
    let url = line
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected relay line {line}"))?
        .to_string();
    Ok((child, url))
}

/// Runs, prints the human table, writes the JSON when asked, and returns the report
/// (`"passed"` tells whether every check passed).
pub async fn report(mut o: Opts) -> Result<Value, String> {
    let started = Instant::now();
    let run = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let mut helper: Option<tokio::process::Child> = None;
    let mut nats_dir = None;
    if o.url.is_empty() {
        match o.target {
            Target::Relay => {
                let (c, url) = spawn_relay().await?;
                say(format!("started relay-server at {url}"));
                helper = Some(c);
                o.url = url;
            }
            Target::Nats => {
                let (c, url, dir) = crate::nats::spawn_server().await?;
                say(format!("started nats-server at {url}"));
                helper = Some(c);
                nats_dir = Some(dir);
                o.url = url;
            }
            Target::Hub => o.url = "http://127.0.0.1:8080".into(),
        }
    }
    let (addr, host) = parse_base(&o.url)?;
    let http = Client::new(addr, host.clone());
    let source_ips = if o.source_ips == 0 {
        // ~20k sockets per source address keeps clear of the ephemeral range.
        (o.customers as usize).div_ceil(20_000).max(4)
    } else {
        o.source_ips
    };
    say(format!(
        "{} run {run}: {} customers, {} agents, {} msg/s peak for {}s against {} ({} workers)",
        o.mode,
        o.customers,
        o.agents,
        o.rate,
        o.duration_s,
        o.url,
        o.workers.max(1)
    ));

    // 1. Setup.
    let setup = match o.target {
        Target::Hub => setup_hub(&o, &http, &run).await?,
        _ => Setup {
            agents: (0..o.agents)
                .map(|i| Who {
                    name: format!("agent-{i}"),
                    token: format!("agent-{i}"),
                    index: Some(i),
                })
                .collect(),
            supervisor: Who {
                name: "supervisor".into(),
                token: "supervisor".into(),
                index: None,
            },
            assistant: None,
        },
    };
    let stats = Arc::new(Stats::default());
    let shared = Arc::new(Shared::new(
        run.clone(),
        o.target,
        addr,
        host.clone(),
        stats.clone(),
        o.agents,
        o.bot_channel.clone(),
        setup.supervisor.name.clone(),
        o.agent_concurrency,
    ));

    // 2. Consoles.
    let mut handles = Vec::new();
    if o.target == Target::Nats {
        for w in setup.agents.iter() {
            handles.push(crate::nats::start_console(shared.clone(), w.clone()));
        }
    } else {
        for w in setup
            .agents
            .iter()
            .chain(std::iter::once(&setup.supervisor))
        {
            handles.push(consoles::start(shared.clone(), w.clone(), !o.watch_only));
        }
    }
    let t = Instant::now();
    while handles.iter().any(|h| !h.welcomed.load(Ordering::SeqCst)) {
        if t.elapsed() > Duration::from_secs(60) {
            let late: Vec<&str> = handles
                .iter()
                .filter(|h| !h.welcomed.load(Ordering::SeqCst))
                .map(|h| h.name.as_str())
                .collect();
            return Err(format!(
                "consoles did not connect within 60 s: {}",
                late.join(", ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let start_seq = handles
        .iter()
        .map(|h| h.welcome_seq.load(Ordering::SeqCst))
        .min()
        .unwrap_or(0);
    say(format!(
        "{} consoles connected at seq {start_seq}",
        handles.len()
    ));

    // 3. Drivers.
    let n_drivers = o.workers.max(1);
    let (ev_tx, mut ev_rx) = mpsc::channel::<(usize, FromDriver)>(256);
    let mut links = Vec::new();
    let per = o.customers.div_ceil(n_drivers);
    for i in 0..n_drivers {
        let first = (i * per).min(o.customers);
        let count = per.min(o.customers - first);
        let cfg = RunCfg {
            target: o.target,
            url: o.url.clone(),
            run: run.clone(),
            customers: o.customers,
            first,
            count,
            agents: o.agents,
            rate: o.rate,
            duration_s: o.duration_s,
            ramp: o.ramp,
            bot_percent: o.bot_percent,
            bot_channel: o.bot_channel.clone(),
            source_ips,
            churn: o.churn,
            ack_wait_s: o.ack_wait_s,
            seed: o.seed.wrapping_add(i as u64),
        };
        links.push(if o.workers >= 1 {
            start_worker(cfg, i as usize, ev_tx.clone())?
        } else {
            start_in_process(cfg, i as usize, ev_tx.clone())
        });
    }
    drop(ev_tx);
    let mut ready = 0;
    while ready < links.len() {
        match tokio::time::timeout(Duration::from_secs(600), ev_rx.recv()).await {
            Ok(Some((_, FromDriver::Ready))) => ready += 1,
            Ok(Some((i, FromDriver::Failed(e)))) => return Err(format!("driver {i}: {e}")),
            Ok(Some(_)) => {}
            _ => return Err("drivers did not get ready".into()),
        }
    }
    say(format!(
        "{} customer sessions open; go (setup took {:.1}s)",
        o.customers,
        started.elapsed().as_secs_f64()
    ));
    let t0_us = now_us() + 300_000;
    for l in &links {
        let _ = l.tx.send(ToDriver::Go(t0_us)).await;
    }
    let cfg0 = RunCfg {
        target: o.target,
        url: String::new(),
        run: run.clone(),
        customers: o.customers,
        first: 0,
        count: o.customers,
        agents: o.agents,
        rate: o.rate,
        duration_s: o.duration_s,
        ramp: o.ramp,
        bot_percent: 0,
        bot_channel: String::new(),
        source_ips,
        churn: 0.0,
        ack_wait_s: 0.0,
        seed: 0,
    };

    // 4. Load, with progress lines.
    let mut progress: Vec<Progress> = vec![Progress::default(); links.len()];
    let mut sent_done = 0;
    // Lines fall on whole seconds after the start; the drivers report half a second
    // off them, so that each line takes whole reports (`--progress 1s`: one each).
    let every = Duration::from_secs(o.progress_s.max(1));
    let start = stats::instant_at(t0_us);
    let mut tick = tokio::time::interval_at((start + every).into(), every);
    let mut last_seq_seen = start_seq;
    let mut last_tick = Instant::now();
    let mut peak_ack_rate = 0.0f64;
    let mut prev: Vec<Progress> = vec![
        Progress {
            at_us: t0_us,
            ..Default::default()
        };
        links.len()
    ];
    let mut interval_p99 = 0u64;
    let mut failed: Option<String> = None;
    // Console reloads: Poisson arrivals over the load, each on a console drawn at random.
    let mut reloads = ConsoleChurn::new(o.console_churn, o.seed, start);
    while sent_done < links.len() {
        tokio::select! {
            _ = reloads.next(), if reloads.on() => reloads.fire(&handles),
            m = ev_rx.recv() => match m {
                Some((i, FromDriver::Progress(p))) => {
                    interval_p99 = interval_p99.max(p.interval_p99_us);
                    progress[i] = p;
                }
                Some((_, FromDriver::Sent)) => sent_done += 1,
                Some((i, FromDriver::Failed(e))) => { failed = Some(format!("driver {i}: {e}")); break; }
                Some(_) => {}
                None => { failed = Some("drivers went away".into()); break; }
            },
            _ = tick.tick() => {
                let el = (now_us().saturating_sub(t0_us)) as f64 / 1e6;
                let dt = last_tick.elapsed().as_secs_f64();
                last_tick = Instant::now();
                let sum = |f: fn(&Progress) -> u64| progress.iter().map(f).sum::<u64>();
                let acked = sum(|p| p.acked);
                // Each driver's rate over its own report times, so that report
                // phases do not alias.
                let ack_rate: f64 = progress
                    .iter()
                    .zip(&prev)
                    .filter(|(p, q)| q.at_us > 0 && p.at_us > q.at_us)
                    .map(|(p, q)| (p.acked - q.acked.min(p.acked)) as f64 * 1e6 / (p.at_us - q.at_us) as f64)
                    .sum::<f64>()
                    + 0.0;
                prev.clone_from(&progress);
                peak_ack_rate = peak_ack_rate.max(ack_rate);
                let seq = handles.iter().map(|h| h.last_seq.load(Ordering::Relaxed)).min().unwrap_or(0);
                let ev_rate = (seq - last_seq_seen.min(seq)) as f64 / dt;
                last_seq_seen = seq;
                say(format!(
                    "[{el:5.0}s] target {:5.0}/s | sent {} acked {} ({ack_rate:.0}/s, p99 {:.1} ms) unacked {} | conn {} | events {ev_rate:.0}/s | flows {} | actions ok {} 409 {} err {} | errors {} reconnects {}+{}",
                    o.rate * cfg0.profile(el),
                    sum(|p| p.sent),
                    acked,
                    interval_p99 as f64 / 1000.0,
                    progress.iter().map(|p| p.unacked).sum::<i64>(),
                    sum(|p| p.connected),
                    shared.flows.load(Ordering::Relaxed),
                    stats.get("actions_ok"),
                    stats.get("actions_conflict"),
                    stats.get("actions_error"),
                    sum(|p| p.errors),
                    sum(|p| p.reconnects),
                    stats.get("console_reconnects") + stats.get("console_planned_reconnects"),
                ));
                interval_p99 = 0;
            }
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let load_end = Instant::now();
    say("load over; draining agent work");

    // 5. Drain: agent flows finish (hold timers, help answers).
    let t = Instant::now();
    let mut quiet_since: Option<Instant> = None;
    while t.elapsed().as_secs_f64() < o.drain_s {
        if shared.flows.load(Ordering::SeqCst) == 0 {
            let q = *quiet_since.get_or_insert_with(Instant::now);
            if q.elapsed() > Duration::from_millis(1500) {
                break;
            }
        } else {
            quiet_since = None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let flows_left = shared.flows.load(Ordering::SeqCst);
    let mut checks: Checks = BTreeMap::new();
    tally(&mut checks, "agents.drained", flows_left == 0, || {
        format!(
            "{flows_left} agent flows still under way after {}s",
            o.drain_s
        )
    });

    // 6. The head now, and every console must reach it.
    let head = match o.target {
        Target::Nats => {
            // No global seq: wait until the consoles' counts settle.
            let mut last = u64::MAX;
            for _ in 0..30 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let c: u64 = handles
                    .iter()
                    .map(|h| h.last_seq.load(Ordering::SeqCst))
                    .sum();
                if c == last {
                    break;
                }
                last = c;
            }
            0
        }
        _ => probe_head(&shared, &setup.supervisor).await?,
    };
    let t = Instant::now();
    while handles
        .iter()
        .any(|h| h.last_seq.load(Ordering::SeqCst) < head)
        && t.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut reports = Vec::new();
    for h in handles {
        reports.push(h.finish().await);
    }
    if o.target != Target::Nats {
        consoles::check_consoles(&reports, head, &mut checks);
    } else {
        crate::nats::check_consoles(&reports, &mut checks);
    }
    for r in &mut reports {
        if let Some(h) = r.all.take() {
            stats.merge_hist("send_console_all", &h);
        }
    }

    // 7. Drivers verify and report.
    for l in &links {
        let _ = l.tx.send(ToDriver::Finish).await;
    }
    let mut acked: Vec<u64> = Vec::new();
    let mut driver_cpu = 0.0;
    let mut results = 0;
    while results < links.len() {
        match tokio::time::timeout(Duration::from_secs(600), ev_rx.recv()).await {
            Ok(Some((_, FromDriver::Result(r)))) => {
                results += 1;
                stats.absorb(&r.stats);
                merge_checks(&mut checks, &r.checks);
                acked.extend(r.acked);
                driver_cpu += r.cpu_s;
            }
            Ok(Some((i, FromDriver::Failed(e)))) => return Err(format!("driver {i}: {e}")),
            Ok(Some(_)) => {}
            _ => return Err("drivers did not report".into()),
        }
    }
    for l in &mut links {
        if let Some(c) = l.child.as_mut() {
            let _ = c.wait().await;
        }
    }
    if o.workers < 1 {
        // In-process: the driver's CPU is ours.
        driver_cpu = 0.0;
    }

    // 8. Every acknowledged message reached the consoles, and (hub) is stored once.
    for k in &acked {
        tally(
            &mut checks,
            "console.saw_every_acked_message",
            shared.seen(*k),
            || {
                format!(
                    "customer {} message {} acked but no console saw it",
                    k >> 32,
                    k & 0xffff_ffff
                )
            },
        );
    }
    let mut extra = json!({});
    if o.target == Target::Hub {
        let (statuses, hub_stats) = inbox_check(
            &http,
            &setup.supervisor.token,
            &run,
            start_seq,
            &acked,
            &mut checks,
        )
        .await;
        extra["final_statuses"] = json!(statuses);
        extra["hub_stats"] = hub_stats;
        extra["assistant"] = json!(setup.assistant);
    }
    if let Some(mut c) = helper.take() {
        let _ = c.kill().await;
    }
    if let Some(d) = nats_dir {
        let _ = std::fs::remove_dir_all(d);
    }

    // 9. Report.
    let snap = stats.snapshot();
    let load_s = o.duration_s;
    let acked_n = snap.counters.get("acked").copied().unwrap_or(0);
    let events = reports.iter().map(|r| r.events).max().unwrap_or(0);
    let passed = checks.values().all(|c| c.info || c.bad == 0);
    let report = json!({
        "mode": o.mode,
        "run": run,
        "url": o.url,
        "config": {
            "customers": o.customers, "agents": o.agents, "rate": o.rate,
            "duration_s": o.duration_s, "ramp": o.ramp, "bot_percent": o.bot_percent,
            "workers": o.workers, "source_ips": source_ips, "churn_per_s": o.churn,
            "console_churn_per_s": o.console_churn,
            "agent_concurrency": o.agent_concurrency, "watch_only": o.watch_only,
        },
        "wall_s": started.elapsed().as_secs_f64(),
        "throughput": {
            "sent": snap.counters.get("sent").copied().unwrap_or(0),
            "acked": acked_n,
            "acked_per_s_mean": acked_n as f64 / load_s,
            "acked_per_s_peak_5s": peak_ack_rate,
            "console_events_per_console": events,
            "console_events_per_s": events as f64 / load_end.duration_since(started).as_secs_f64().max(load_s),
            "console_frames_delivered": reports.iter().map(|r| r.events).sum::<u64>(),
        },
        "latency_ms": stats::hists_json(&snap),
        "counters": snap.counters,
        "checks": checks,
        "passed": passed,
        "cpu_s": {"coordinator": cpu_seconds(), "workers": driver_cpu},
        "extra": extra,
    });
    print_human(&report, &snap);
    if let Some(p) = &o.output {
        std::fs::write(p, serde_json::to_string_pretty(&report).unwrap_or_default())
            .map_err(|e| format!("write {}: {e}", p.display()))?;
        say(format!("wrote {}", p.display()));
    }
    Ok(report)
}

/// When the next planned console reload falls (`--console-churn`).
struct ConsoleChurn {
    rate: f64,
    rng: rand::rngs::StdRng,
    next: tokio::time::Instant,
}

impl ConsoleChurn {
    fn new(rate: f64, seed: u64, start: Instant) -> Self {
        use rand::SeedableRng;
        let mut c = ConsoleChurn {
            rate,
            rng: rand::rngs::StdRng::seed_from_u64(seed ^ 0xc0_5013),
            next: start.into(),
        };
        c.advance();
        c
    }

    fn on(&self) -> bool {
        self.rate > 0.0
    }

    fn advance(&mut self) {
        use rand::Rng;
        if self.on() {
            let u: f64 = self.rng.gen_range(f64::EPSILON..1.0);
            self.next += Duration::from_secs_f64(-u.ln() / self.rate);
        }
    }

    async fn next(&self) {
        tokio::time::sleep_until(self.next).await
    }

    /// Reloads one console drawn at random, and sets the next reload.
    fn fire(&mut self, handles: &[consoles::Handle]) {
        use rand::Rng;
        if !handles.is_empty() {
            handles[self.rng.gen_range(0..handles.len())].reload();
        }
        self.advance();
    }
}

/// The hub's head seq, read from a fresh console's welcome.
async fn probe_head(shared: &Shared, who: &Who) -> Result<u64, String> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let ws = crate::wire::connect(shared.addr, &shared.host, "/ws/agent", None).await?;
    let (mut tx, mut rx) = ws.split();
    tx.send(Message::Text(
        json!({"type": "hello", "token": who.token}).to_string(),
    ))
    .await
    .map_err(|e| e.to_string())?;
    let w = tokio::time::timeout(Duration::from_secs(20), crate::wire::next_text(&mut rx))
        .await
        .map_err(|_| "no welcome on probe")?
        .ok_or("probe closed")??;
    let _ = tx.send(Message::Close(None)).await;
    let v: Value = serde_json::from_str(&w).map_err(|e| e.to_string())?;
    v["seq"]
        .as_u64()
        .ok_or_else(|| format!("probe welcome without seq: {w}"))
}

/// Pages through `GET /api/inbox?folder=all` down to the run's first seq and checks that
/// every acknowledged message is there exactly once.
async fn inbox_check(
    http: &Client,
    token: &str,
    run: &str,
    start_seq: u64,
    acked: &[u64],
    checks: &mut Checks,
) -> (BTreeMap<String, u64>, Value) {
    let mut count: HashMap<u64, u32> = HashMap::new();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut before: Option<u64> = None;
    let mut pages = 0;
    let t = Instant::now();
    loop {
        let path = match before {
            Some(b) => format!("/api/inbox?folder=all&limit=500&before={b}"),
            None => "/api/inbox?folder=all&limit=500".to_string(),
        };
        let a = match http.call("GET", &path, Some(token), None).await {
            Ok(a) if a.ok() => a,
            Ok(a) => {
                tally(checks, "hub.inbox_readable", false, || {
                    format!("{path}: {} {}", a.status, a.body)
                });
                return (statuses, Value::Null);
            }
            Err(e) => {
                tally(checks, "hub.inbox_readable", false, || {
                    format!("{path}: {e}")
                });
                return (statuses, Value::Null);
            }
        };
        pages += 1;
        let items = a.body["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            break;
        }
        let mut min_seq = u64::MAX;
        let mut prev = u64::MAX;
        for m in &items {
            let seq = m["seq"].as_u64().unwrap_or(0);
            tally(checks, "hub.inbox_ordered_by_seq", seq < prev, || {
                format!("inbox seq {seq} after {prev}")
            });
            prev = seq;
            min_seq = min_seq.min(seq);
            if let Some((k, _)) = m["text"]
                .as_str()
                .and_then(|t| crate::wire::parse_tag(t, run))
            {
                *count.entry(k).or_default() += 1;
                *statuses
                    .entry(m["status"].as_str().unwrap_or("?").to_string())
                    .or_default() += 1;
            }
        }
        if min_seq <= start_seq || min_seq == 0 {
            break;
        }
        before = Some(min_seq);
    }
    say(format!(
        "inbox scan: {pages} pages, {} run messages, {:.1}s",
        count.len(),
        t.elapsed().as_secs_f64()
    ));
    let acked_set: std::collections::HashSet<u64> = acked.iter().copied().collect();
    for k in acked {
        let c = count.get(k).copied().unwrap_or(0);
        tally(checks, "hub.inbox_acked_stored_once", c == 1, || {
            format!(
                "customer {} message {} found {c} times in folder all",
                k >> 32,
                k & 0xffff_ffff
            )
        });
    }
    for (k, c) in &count {
        if *c > 1 {
            tally(checks, "hub.inbox_no_duplicates", false, || {
                format!(
                    "customer {} message {} listed {c} times",
                    k >> 32,
                    k & 0xffff_ffff
                )
            });
        }
        if !acked_set.contains(k) {
            note(checks, "hub.stored_without_ack", 1);
        }
    }
    let hub_stats = match http.call("GET", "/api/stats", Some(token), None).await {
        Ok(a) if a.ok() => a.body,
        _ => Value::Null,
    };
    (statuses, hub_stats)
}

fn print_human(r: &Value, snap: &Snapshot) {
    let mut out = String::new();
    let c = &r["config"];
    out.push_str(&format!(
        "\n=== loadtest {} (run {}) against {} ===\n",
        r["mode"].as_str().unwrap_or(""),
        r["run"].as_str().unwrap_or(""),
        r["url"].as_str().unwrap_or("")
    ));
    out.push_str(&format!(
        "customers {}  agents {}  peak rate {}/s  duration {}s  ramp {}  bot {}%  workers {}  source ips {}\n\n",
        c["customers"], c["agents"], c["rate"], c["duration_s"], c["ramp"], c["bot_percent"], c["workers"], c["source_ips"]
    ));
    out.push_str(&stats::table(snap));
    let t = &r["throughput"];
    out.push_str(&format!(
        "\nthroughput: sent {}  acked {}  ({:.0}/s mean over the run, {:.0}/s peak 5 s)\n",
        t["sent"],
        t["acked"],
        t["acked_per_s_mean"].as_f64().unwrap_or(0.0),
        t["acked_per_s_peak_5s"].as_f64().unwrap_or(0.0)
    ));
    out.push_str(&format!(
        "console events: {} per console, {} frames delivered to consoles in all\n",
        t["console_events_per_console"], t["console_frames_delivered"]
    ));
    let k = &r["counters"];
    let g = |n: &str| k[n].as_u64().unwrap_or(0);
    out.push_str(&format!(
        "errors: send errors {}  unacked {}  connect failures {}  agent action errors {} (409 races {})\n",
        g("send_errors"),
        g("unacked"),
        g("connect_failures") + g("console_connect_failures"),
        g("actions_error"),
        g("actions_conflict")
    ));
    out.push_str(&format!(
        "reconnects: customers {} unplanned + {} planned (churn), consoles {} unplanned + {} planned (reloads); replies received by widgets {}\n",
        g("customer_reconnects"),
        g("churn_reconnects"),
        g("console_reconnects"),
        g("console_planned_reconnects"),
        g("replies_received")
    ));
    if let Some(obj) = k.as_object() {
        let errs: Vec<String> = obj
            .iter()
            .filter(|(n, _)| {
                n.starts_with("action_error.")
                    || n.starts_with("send_error.")
                    || n.starts_with("session_errors.")
            })
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        if !errs.is_empty() {
            out.push_str(&format!("error detail: {}\n", errs.join(" ")));
        }
    }
    out.push_str(&format!(
        "cpu: coordinator {:.1}s, workers {:.1}s\n",
        r["cpu_s"]["coordinator"].as_f64().unwrap_or(0.0),
        r["cpu_s"]["workers"].as_f64().unwrap_or(0.0)
    ));
    if let Some(s) = r["extra"]["final_statuses"].as_object() {
        let v: Vec<String> = s.iter().map(|(k, v)| format!("{k} {v}")).collect();
        out.push_str(&format!(
            "final statuses of the run's messages: {}\n",
            v.join(", ")
        ));
    }
    out.push_str("\nchecks:\n");
    if let Some(cs) = r["checks"].as_object() {
        for (name, c) in cs {
            let bad = c["bad"].as_u64().unwrap_or(0);
            let ok = c["ok"].as_u64().unwrap_or(0);
            let verdict = if c["info"].as_bool().unwrap_or(false) {
                "info"
            } else if bad == 0 {
                "PASS"
            } else {
                "FAIL"
            };
            out.push_str(&format!("  {verdict:<4} {name:<42} ok {ok:<9} bad {bad}\n"));
            if let Some(ex) = c["examples"].as_array() {
                for e in ex {
                    out.push_str(&format!("         e.g. {}\n", e.as_str().unwrap_or("")));
                }
            }
        }
    }
    out.push_str(&format!(
        "\nresult: {}\n",
        if r["passed"].as_bool().unwrap_or(false) {
            "PASS"
        } else {
            "FAIL"
        }
    ));
    println!("{out}");
}
