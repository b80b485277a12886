//! The customer side of a run: opens widget sessions, connects widget sockets (over
//! several loopback source addresses), sends on an open-loop Poisson schedule, times
//! send -> ack from the *intended* send time, receives replies, and at the end checks
//! what the hub stored against what it acknowledged.

use crate::config::*;
use crate::http::{parse_base, Client};
use crate::stats::{now_us, Stats};
use crate::wire::{self, WsRx, WsTx};
use futures_util::SinkExt;
use rand::rngs::StdRng as SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_tungstenite::tungstenite::Message;

/// The bot's rule reply and transfer reply (the coordinator creates the assistant).
pub const BOT_RULE_MATCH: &str = "price";
pub const BOT_RULE_REPLY: &str = "Our prices are on the pricing page.";
pub const BOT_TRANSFER_KEYWORD: &str = "human";
pub const BOT_TRANSFER_REPLY: &str = "Connecting you to a human colleague.";

/// A command to one customer task.
pub enum Cmd {
    Send {
        n: u32,
        us: u64,
    },
    /// Drop the socket and come back with `since` (a page reload).
    Churn,
    /// Verify against the hub and hand back the result.
    Verify(oneshot::Sender<CustResult>),
}

/// What one customer reports.
#[derive(Default)]
pub struct CustResult {
    pub acked: Vec<u64>,
    pub checks: Checks,
}

/// What every customer task of a driver shares.
pub struct Ctx {
    pub cfg: RunCfg,
    pub stats: Arc<Stats>,
    pub addr: SocketAddr,
    pub host: String,
    pub http: Client,
    /// Limits concurrent HTTP calls of the verification.
    pub http_gate: Semaphore,
    pub connected: AtomicU64,
    pub unacked: AtomicI64,
}

/// Runs one driver until it has reported its result.
pub async fn drive(
    cfg: RunCfg,
    mut inbox: mpsc::Receiver<ToDriver>,
    out: mpsc::Sender<FromDriver>,
) {
    match drive_inner(cfg, &mut inbox, &out).await {
        Ok(r) => {
            let _ = out.send(FromDriver::Result(Box::new(r))).await;
        }
        Err(e) => {
            let _ = out.send(FromDriver::Failed(e)).await;
        }
    }
}

async fn drive_inner(
    cfg: RunCfg,
    inbox: &mut mpsc::Receiver<ToDriver>,
    out: &mpsc::Sender<FromDriver>,
) -> Result<DriverResult, String> {
    let (addr, host) = parse_base(&cfg.url)?;
    let stats = Arc::new(Stats::default());
    let ctx = Arc::new(Ctx {
        http: Client::new(addr, host.clone()),
        cfg: cfg.clone(),
        stats: stats.clone(),
        addr,
        host,
        http_gate: Semaphore::new(32),
        connected: AtomicU64::new(0),
        unacked: AtomicI64::new(0),
    });
    let tokens = match cfg.target {
        Target::Hub => open_sessions(&ctx).await?,
        _ => (0..cfg.count)
            .map(|j| format!("customer-{}", cfg.first + j))
            .collect(),
    };
    out.send(FromDriver::Ready)
        .await
        .map_err(|e| e.to_string())?;
    let t0_us = match inbox.recv().await {
        Some(ToDriver::Go(t)) => t,
        _ => return Err("coordinator went away before Go".into()),
    };
    // Time zero as an Instant.
    let t0 = crate::stats::instant_at(t0_us);

    // Customer tasks.
    let mut senders = Vec::with_capacity(cfg.count as usize);
    let mut handles = Vec::with_capacity(cfg.count as usize);
    for (j, token) in tokens.into_iter().enumerate() {
        let (tx, rx) = mpsc::unbounded_channel();
        senders.push(tx);
        let at = t0 + Duration::from_secs_f64(cfg.connect_at(j as u32));
        let idx = cfg.first + j as u32;
        let c = ctx.clone();
        handles.push(match cfg.target {
            Target::Nats => tokio::spawn(crate::nats::customer(c, idx, rx, at)),
            _ => tokio::spawn(customer(c, idx, token, rx, at)),
        });
    }

    // Progress reports.
    let prog = {
        let ctx = ctx.clone();
        let out = out.clone();
        tokio::spawn(async move {
            // Half a second off the coordinator's lines (`run.rs`), whole seconds apart.
            let mut tick = tokio::time::interval_at(
                (t0 + Duration::from_millis(500)).into(),
                Duration::from_secs(1),
            );
            loop {
                tick.tick().await;
                let (ia, ip) = ctx.stats.take_interval("interval_ack").unwrap_or((0, 0));
                let s = &ctx.stats;
                let p = Progress {
                    connected: ctx.connected.load(Ordering::Relaxed),
                    sent: s.get("sent"),
                    acked: s.get("acked"),
                    errors: s.get("send_errors") + s.get("connect_failures"),
                    reconnects: s.get("customer_reconnects"),
                    unacked: ctx.unacked.load(Ordering::Relaxed),
                    interval_acks: ia,
                    interval_p99_us: ip,
                    at_us: now_us(),
                };
                if out.send(FromDriver::Progress(p)).await.is_err() {
                    break;
                }
            }
        })
    };

    schedule(&ctx, &senders, t0).await;

    // Wait for outstanding acks.
    let deadline = Instant::now() + Duration::from_secs_f64(cfg.ack_wait_s);
    while ctx.unacked.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    out.send(FromDriver::Sent)
        .await
        .map_err(|e| e.to_string())?;
    loop {
        match inbox.recv().await {
            Some(ToDriver::Finish) => break,
            Some(_) => continue,
            None => return Err("coordinator went away before Finish".into()),
        }
    }
    prog.abort();

    // Verify, customer by customer.
    let mut result = DriverResult::default();
    let mut waits = Vec::with_capacity(senders.len());
    for s in &senders {
        let (tx, rx) = oneshot::channel();
        if s.send(Cmd::Verify(tx)).is_ok() {
            waits.push(rx);
        }
    }
    for w in waits {
        if let Ok(r) = w.await {
            result.acked.extend(r.acked);
            merge_checks(&mut result.checks, &r.checks);
        }
    }
    drop(senders);
    for h in handles {
        let _ = h.await;
    }
    result.stats = stats.snapshot();
    result.cpu_s = cpu_seconds();
    Ok(result)
}

/// Opens one widget session per customer, 64 at a time.
async fn open_sessions(ctx: &Arc<Ctx>) -> Result<Vec<String>, String> {
    let cfg = &ctx.cfg;
    let gate = Arc::new(Semaphore::new(64));
    let mut hs = Vec::new();
    for j in 0..cfg.count {
        let idx = cfg.first + j;
        let ctx = ctx.clone();
        let gate = gate.clone();
        hs.push(tokio::spawn(async move {
            let _p = gate.acquire().await;
            let channel = if ctx.cfg.is_bot(idx) {
                ctx.cfg.bot_channel.clone()
            } else {
                "web".to_string()
            };
            let body = json!({"channel": channel, "name": format!("lt-{}-c{idx}", ctx.cfg.run)});
            for attempt in 0..5 {
                let t = Instant::now();
                match ctx
                    .http
                    .call("POST", "/api/widget/session", None, Some(&body))
                    .await
                {
                    Ok(a) if a.ok() => {
                        ctx.stats
                            .rec("session_create", t.elapsed().as_micros() as u64);
                        if let Some(tok) = a.body["token"].as_str() {
                            return Ok(tok.to_string());
                        }
                        return Err("session answer without token".to_string());
                    }
                    Ok(a) => {
                        ctx.stats.inc(&format!("session_errors.{}", a.code()));
                        if attempt == 4 {
                            return Err(format!("POST /api/widget/session: {}", a.status));
                        }
                    }
                    Err(e) => {
                        ctx.stats.inc("session_errors.io");
                        if attempt == 4 {
                            return Err(format!("POST /api/widget/session: {e}"));
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            Err("unreachable".into())
        }));
    }
    let mut out = Vec::with_capacity(hs.len());
    for h in hs {
        out.push(h.await.map_err(|e| e.to_string())??);
    }
    Ok(out)
}

/// The open-loop schedule: Poisson arrivals at the profile's rate, each sent to a
/// random customer that is due to be connected, stamped with its intended time.
async fn schedule(ctx: &Arc<Ctx>, senders: &[mpsc::UnboundedSender<Cmd>], t0: Instant) {
    let cfg = &ctx.cfg;
    if senders.is_empty() {
        tokio::time::sleep_until((t0 + Duration::from_secs_f64(cfg.duration_s)).into()).await;
        return;
    }
    let mut rng = SmallRng::seed_from_u64(cfg.seed ^ (cfg.first as u64).wrapping_mul(0x9e37));
    let rate = cfg.rate * cfg.share();
    let churn = cfg.churn * cfg.share();
    let mut next_n = vec![0u32; senders.len()];
    let mut t = 0.0f64;
    let mut next_churn = if churn > 0.0 {
        exp(&mut rng, churn)
    } else {
        f64::INFINITY
    };
    let base_us = {
        // t0 on the monotonic µs clock (`now_us`), computed once.
        let now = Instant::now();
        let n = now_us() as i64;
        if t0 >= now {
            n + (t0 - now).as_micros() as i64
        } else {
            n - (now - t0).as_micros() as i64
        }
    };
    loop {
        // Thinning keeps the arrivals Poisson under a changing rate.
        let peak = rate.max(1e-9);
        t += exp(&mut rng, peak);
        if t >= cfg.duration_s {
            break;
        }
        if rng.gen::<f64>() > cfg.profile(t) {
            continue;
        }
        while next_churn < t {
            let j = pick(&mut rng, cfg, next_churn, senders.len());
            let _ = senders[j].send(Cmd::Churn);
            next_churn += exp(&mut rng, churn);
        }
        let due = t0 + Duration::from_secs_f64(t);
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        let j = pick(&mut rng, cfg, t, senders.len());
        let n = next_n[j];
        next_n[j] += 1;
        let us = (base_us + (t * 1e6) as i64) as u64;
        let _ = senders[j].send(Cmd::Send { n, us });
    }
    tokio::time::sleep_until((t0 + Duration::from_secs_f64(cfg.duration_s)).into()).await;
}

fn exp(rng: &mut SmallRng, rate: f64) -> f64 {
    let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
    -u.ln() / rate
}

/// A random customer among those due to be connected at `t`.
fn pick(rng: &mut SmallRng, cfg: &RunCfg, t: f64, n: usize) -> usize {
    let window = cfg.ramp * cfg.duration_s * 0.5;
    let due = if window <= 0.0 || t >= window {
        n
    } else {
        ((t / window) * n as f64).ceil() as usize
    };
    rng.gen_range(0..due.clamp(1, n))
}

/// What a customer task keeps.
#[derive(Default)]
struct CustState {
    /// Sent, not yet acknowledged: n -> (intended µs, text).
    pending: BTreeMap<u32, (u64, String)>,
    /// Acknowledged: n -> message id.
    acked: HashMap<u32, String>,
    last_seq: u64,
    epoch: Option<String>,
    connected_once: bool,
    created_seen: HashSet<String>,
    replies_seen: HashSet<String>,
    bot_waiting: VecDeque<u64>,
    bot_off: bool,
    checks: Checks,
}

fn client_id(run: &str, idx: u32, n: u32) -> String {
    format!("{run}-{idx}-{n}")
}

fn words(is_bot: bool, n: u32, rng_val: u32) -> &'static str {
    if is_bot {
        if rng_val.is_multiple_of(5) {
            "I want to talk to a human please"
        } else {
            "what is the price of the premium plan?"
        }
    } else {
        match n % 3 {
            0 => "hello, where is my order 12345?",
            1 => "the parcel has still not arrived",
            _ => "can I change the delivery address?",
        }
    }
}

/// One customer: its widget socket, its sends, its events, and its final check.
async fn customer(
    ctx: Arc<Ctx>,
    idx: u32,
    token: String,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    connect_at: Instant,
) {
    tokio::time::sleep_until(connect_at.into()).await;
    let run = ctx.cfg.run.clone();
    let is_bot = ctx.cfg.is_bot(idx);
    let mut st = CustState::default();
    let mut conn: Option<(WsTx, WsRx)> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        if conn.is_none() {
            match hello(&ctx, idx, &token, &mut st).await {
                Ok(c) => {
                    conn = Some(c);
                    backoff = Duration::from_millis(100);
                    ctx.connected.fetch_add(1, Ordering::Relaxed);
                    // Resend what was not acknowledged, with the same client_id.
                    let again: Vec<String> = st.pending.values().map(|(_, t)| t.clone()).collect();
                    if let Some((tx, _)) = conn.as_mut() {
                        for f in again {
                            ctx.stats.inc("resent");
                            if tx.send(Message::Text(f)).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                Err(e) => {
                    ctx.stats.inc("connect_failures");
                    if ctx.stats.get("connect_failures") <= 3 {
                        eprintln!("customer {idx}: {e}");
                    }
                    // Keep taking commands while away, so sends queue up.
                    let sleep = tokio::time::sleep(backoff);
                    tokio::pin!(sleep);
                    backoff = (backoff * 2).min(Duration::from_secs(3));
                    loop {
                        tokio::select! {
                            _ = &mut sleep => break,
                            cmd = rx.recv() => match cmd {
                                Some(Cmd::Send { n, us }) => { queue_send(&ctx, &run, idx, is_bot, n, us, &mut st); }
                                Some(Cmd::Churn) => {}
                                Some(Cmd::Verify(done)) => {
                                    let _ = done.send(verify_offline(&ctx, idx, &mut st));
                                    return;
                                }
                                None => return,
                            }
                        }
                    }
                    continue;
                }
            }
        }
        let Some((tx, wrx)) = conn.as_mut() else {
            continue;
        };
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(Cmd::Send { n, us }) => {
                    let frame = queue_send(&ctx, &run, idx, is_bot, n, us, &mut st);
                    if tx.send(Message::Text(frame)).await.is_err() {
                        ctx.stats.inc("customer_reconnects");
                        drop_conn(&ctx, &mut conn);
                    }
                }
                Some(Cmd::Churn) => {
                    let _ = tx.send(Message::Close(None)).await;
                    ctx.stats.inc("churn_reconnects");
                    drop_conn(&ctx, &mut conn);
                }
                Some(Cmd::Verify(done)) => {
                    let r = verify(&ctx, idx, &token, &mut st, wrx).await;
                    let _ = tx.send(Message::Close(None)).await;
                    drop_conn(&ctx, &mut conn);
                    let _ = done.send(r);
                    return;
                }
                None => return,
            },
            f = wire::next_text(wrx) => match f {
                Some(Ok(t)) => on_frame(&ctx, &run, &t, &mut st),
                Some(Err(_)) | None => {
                    ctx.stats.inc("customer_reconnects");
                    drop_conn(&ctx, &mut conn);
                }
            }
        }
    }
}

fn drop_conn(ctx: &Ctx, conn: &mut Option<(WsTx, WsRx)>) {
    if conn.take().is_some() {
        ctx.connected.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Records a send and returns its frame.
fn queue_send(
    ctx: &Ctx,
    run: &str,
    idx: u32,
    is_bot: bool,
    n: u32,
    us: u64,
    st: &mut CustState,
) -> String {
    let text = wire::customer_text(run, idx, n, us, words(is_bot, n, idx ^ n.wrapping_mul(7)));
    let frame =
        json!({"type": "send", "text": text, "client_id": client_id(run, idx, n)}).to_string();
    st.pending.insert(n, (us, frame.clone()));
    if is_bot && !st.bot_off {
        st.bot_waiting.push_back(us);
    }
    ctx.stats.inc("sent");
    ctx.unacked.fetch_add(1, Ordering::Relaxed);
    frame
}

/// Connects and says hello (with `since` after the first time).
async fn hello(
    ctx: &Ctx,
    idx: u32,
    token: &str,
    st: &mut CustState,
) -> Result<(WsTx, WsRx), String> {
    use futures_util::StreamExt;
    let t = Instant::now();
    let src = wire::source_ip(&ctx.addr, idx as usize, ctx.cfg.source_ips);
    let ws = wire::connect(ctx.addr, &ctx.host, "/ws/widget", src).await?;
    let (mut tx, mut rx) = ws.split();
    let mut h = json!({"type": "hello", "token": token});
    if st.connected_once {
        h["since"] = json!(st.last_seq);
        if let Some(e) = &st.epoch {
            h["epoch"] = json!(e);
        }
    }
    tx.send(Message::Text(h.to_string()))
        .await
        .map_err(|e| format!("hello: {e}"))?;
    let w = tokio::time::timeout(Duration::from_secs(20), wire::next_text(&mut rx))
        .await
        .map_err(|_| "no welcome".to_string())?
        .ok_or("closed before welcome")??;
    let v: Value = serde_json::from_str(&w).map_err(|_| format!("bad welcome {w}"))?;
    if v["type"] != "welcome" {
        return Err(format!("expected welcome, got {w}"));
    }
    ctx.stats.rec("ws_connect", t.elapsed().as_micros() as u64);
    let head = v["seq"].as_u64().unwrap_or(0);
    if st.connected_once {
        let reset = v["reset"].as_bool().unwrap_or(false);
        if reset
            && crate::config::beyond_replay_window(
                st.last_seq,
                head,
                ctx.cfg.target.replay_window(),
            )
        {
            // The hub documents this reset (docs/DECISIONS.md, "Live events").
            note(&mut st.checks, "widget.reset_beyond_replay_window", 1);
        } else {
            tally(
                &mut st.checks,
                "widget.resume_without_reset",
                !reset,
                || {
                    format!(
                        "customer {idx}: welcome reset on resume since {}",
                        st.last_seq
                    )
                },
            );
        }
        if reset {
            st.last_seq = head;
        }
    } else {
        st.last_seq = head;
        st.connected_once = true;
    }
    st.epoch = v["epoch"].as_str().map(str::to_string);
    Ok((tx, rx))
}

/// The hub's `ack` of the message whose client id is `client_id`.
fn on_ack(ctx: &Ctx, st: &mut CustState, client_id: Option<&str>, id: &str) {
    let n = client_id
        .and_then(|c| c.rsplit('-').next())
        .and_then(|n| n.parse::<u32>().ok());
    let Some(n) = n else {
        ctx.stats.inc("ack_without_client_id");
        return;
    };
    match st.pending.remove(&n) {
        Some((us, _)) => {
            let lat = now_us().saturating_sub(us);
            ctx.stats.rec("send_ack", lat);
            ctx.stats.rec("interval_ack", lat);
            ctx.stats.inc("acked");
            ctx.unacked.fetch_sub(1, Ordering::Relaxed);
            st.acked.insert(n, id.to_string());
        }
        None => {
            // A repeat ack (after a resend): it must name the same message.
            let same = st.acked.get(&n).is_some_and(|m| m == id);
            tally(
                &mut st.checks,
                "widget.repeat_ack_same_message",
                same,
                || format!("ack for n={n} names {id}, first was {:?}", st.acked.get(&n)),
            );
        }
    }
}

/// Any event a widget receives: its seqs must increase.
fn on_event_seq(ctx: &Ctx, st: &mut CustState, seq: u64) {
    let in_order = seq > st.last_seq;
    tally(&mut st.checks, "widget.seq_increasing", in_order, || {
        format!("seq {seq} after {}", st.last_seq)
    });
    st.last_seq = st.last_seq.max(seq);
    ctx.stats.inc("widget_events");
}

fn on_frame(ctx: &Ctx, run: &str, t: &str, st: &mut CustState) {
    // The two frames every message brings are scanned; anything else is parsed.
    if let Some(a) = wire::scan_ack(t) {
        return on_ack(ctx, st, Some(a.client_id), a.message_id);
    }
    if let Some((seq, id)) = wire::scan_message_created(t) {
        on_event_seq(ctx, st, seq);
        st.created_seen.insert(id.to_string());
        return;
    }
    let Ok(v) = serde_json::from_str::<Value>(t) else {
        ctx.stats.inc("widget_bad_frames");
        return;
    };
    match v["type"].as_str().unwrap_or("") {
        "ack" => on_ack(
            ctx,
            st,
            v["client_id"].as_str(),
            v["message"]["id"].as_str().unwrap_or(""),
        ),
        "error" => {
            let code = v["code"].as_str().unwrap_or("?").to_string();
            ctx.stats.inc(&format!("send_error.{code}"));
            ctx.stats.inc("send_errors");
            if let Some(n) = v["client_id"]
                .as_str()
                .and_then(|c| c.rsplit('-').next())
                .and_then(|n| n.parse::<u32>().ok())
            {
                if st.pending.remove(&n).is_some() {
                    ctx.unacked.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        "event" => {
            on_event_seq(ctx, st, v["seq"].as_u64().unwrap_or(0));
            match v["kind"].as_str().unwrap_or("") {
                "message.created" => {
                    if let Some(id) = v["data"]["message"]["id"].as_str() {
                        st.created_seen.insert(id.to_string());
                    }
                }
                "reply.created" => {
                    let r = &v["data"]["reply"];
                    if let Some(id) = r["id"].as_str() {
                        st.replies_seen.insert(id.to_string());
                    }
                    let text = r["text"].as_str().unwrap_or("");
                    if r["author"]["kind"] == "bot" {
                        if let Some(us) = st.bot_waiting.pop_front() {
                            ctx.stats.rec("bot_reply", now_us().saturating_sub(us));
                        }
                        if text == BOT_TRANSFER_REPLY {
                            st.bot_off = true;
                            st.bot_waiting.clear();
                        }
                    } else {
                        st.bot_waiting.clear();
                        if let Some(us) = wire::parse_reply_tag(text, run) {
                            ctx.stats.rec("reply_widget", now_us().saturating_sub(us));
                        }
                    }
                    ctx.stats.inc("replies_received");
                }
                "session.ended" => ctx.stats.inc("sessions_ended"),
                _ => {}
            }
        }
        "pong" | "welcome" => {}
        _ => ctx.stats.inc("widget_unknown_frames"),
    }
}

/// The end-of-run check of a customer that cannot connect.
fn verify_offline(ctx: &Ctx, idx: u32, st: &mut CustState) -> CustResult {
    finish_pending(ctx, st);
    CustResult {
        acked: acked_keys(st, idx),
        checks: std::mem::take(&mut st.checks),
    }
}

fn finish_pending(ctx: &Ctx, st: &mut CustState) {
    let left = st.pending.len() as u64;
    if left > 0 {
        ctx.stats.add("unacked", left);
    }
}

fn acked_keys(st: &CustState, idx: u32) -> Vec<u64> {
    st.acked.keys().map(|n| wire::key(idx, *n)).collect()
}

/// Compares what the hub stored for this customer with what it acknowledged, and
/// with what the socket delivered.
async fn verify(
    ctx: &Ctx,
    idx: u32,
    token: &str,
    st: &mut CustState,
    wrx: &mut WsRx,
) -> CustResult {
    finish_pending(ctx, st);
    let run = ctx.cfg.run.clone();
    let mut checks = std::mem::take(&mut st.checks);
    let acked = acked_keys(st, idx);
    if ctx.cfg.target != Target::Hub {
        return CustResult { acked, checks };
    }
    // GET while still reading the socket.
    let answer = {
        let get = async {
            let _p = ctx.http_gate.acquire().await;
            ctx.http
                .call("GET", "/api/widget/messages", Some(token), None)
                .await
        };
        tokio::pin!(get);
        let mut open = true;
        loop {
            tokio::select! {
                r = &mut get => break r,
                f = wire::next_text(wrx), if open => match f {
                    Some(Ok(t)) => on_frame(ctx, &run, &t, st),
                    _ => open = false,
                }
            }
        }
    };
    let items = match answer {
        Ok(a) if a.ok() => a.body["items"].as_array().cloned().unwrap_or_default(),
        Ok(a) => {
            tally(&mut checks, "widget.get_messages", false, || {
                format!("GET /api/widget/messages: {} {}", a.status, a.code())
            });
            return CustResult { acked, checks };
        }
        Err(e) => {
            tally(&mut checks, "widget.get_messages", false, || {
                format!("GET /api/widget/messages: {e}")
            });
            return CustResult { acked, checks };
        }
    };
    // Wait (bounded) until the socket has delivered everything the GET shows.
    let want_msgs: Vec<String> = items
        .iter()
        .filter(|i| i["type"] == "message")
        .filter_map(|i| i["id"].as_str().map(str::to_string))
        .collect();
    let want_replies: Vec<String> = items
        .iter()
        .filter(|i| i["type"] == "reply")
        .filter_map(|i| i["id"].as_str().map(str::to_string))
        .collect();
    let missing = |st: &CustState| {
        want_msgs.iter().any(|m| !st.created_seen.contains(m))
            || want_replies.iter().any(|r| !st.replies_seen.contains(r))
    };
    let deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(deadline);
    while missing(st) {
        tokio::select! {
            _ = &mut deadline => break,
            f = wire::next_text(wrx) => match f {
                Some(Ok(t)) => on_frame(ctx, &run, &t, st),
                _ => break,
            }
        }
    }
    // Stored exactly once.
    let mut by_id: HashMap<&str, u32> = HashMap::new();
    let mut by_key: HashMap<u64, u32> = HashMap::new();
    for i in items.iter().filter(|i| i["type"] == "message") {
        if let Some(id) = i["id"].as_str() {
            *by_id.entry(id).or_default() += 1;
        }
        if let Some((k, _)) = i["text"].as_str().and_then(|t| wire::parse_tag(t, &run)) {
            *by_key.entry(k).or_default() += 1;
        }
    }
    for (n, id) in &st.acked {
        let c = by_id.get(id.as_str()).copied().unwrap_or(0);
        tally(&mut checks, "widget.acked_stored_once", c == 1, || {
            format!("message {id} (n={n}) stored {c} times")
        });
    }
    for (k, c) in &by_key {
        tally(
            &mut checks,
            "widget.no_duplicate_client_message",
            *c == 1,
            || {
                format!(
                    "customer {} message {} stored {c} times",
                    k >> 32,
                    k & 0xffff_ffff
                )
            },
        );
        let n = (*k & 0xffff_ffff) as u32;
        if !st.acked.contains_key(&n) {
            note(&mut checks, "widget.stored_without_ack", 1);
        }
    }
    for m in &want_msgs {
        tally(
            &mut checks,
            "widget.saw_message_created",
            st.created_seen.contains(m),
            || format!("message {m} never arrived on the widget socket"),
        );
    }
    for r in &want_replies {
        tally(
            &mut checks,
            "widget.saw_reply_created",
            st.replies_seen.contains(r),
            || format!("reply {r} never arrived on the widget socket"),
        );
    }
    CustResult { acked, checks }
}
