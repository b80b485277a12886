//! The agent side: one console socket per agent (and the supervisor) that checks the
//! event stream (contiguous, in order, identical across consoles), times customer
//! send -> console delivery, and feeds each agent's "brain", which works the
//! conversations routed to it over HTTP: assign, reply, hold, request help, comment,
//! unassign, close. The supervisor answers help requests.

use crate::config::Target;
use crate::http::{Answer, Client};
use crate::stats::{self, now_us, Stats};
use crate::wire::{self, WsRx, WsTx};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use rand::Rng;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};
use tokio_tungstenite::tungstenite::Message;

/// The customer messages some console has seen, by key. Every console inserts every
/// message it gets, so the set hashes its `u64` keys with one multiplication rather
/// than SipHash (built for keys an attacker chooses).
type KeySet = HashSet<u64, std::hash::BuildHasherDefault<KeyHasher>>;

#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = wire::mix(self.0, bytes);
    }

    fn write_u64(&mut self, n: u64) {
        // A key's customer is in its high half and its message number in its low half;
        // folding the product spreads both over the bits the table uses.
        let p = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = p ^ (p >> 29);
    }
}

/// Events per hash block when comparing consoles.
pub const BLOCK: u64 = 256;
const SHARDS: usize = 64;

/// What all consoles of a run share.
pub struct Shared {
    pub run: String,
    pub target: Target,
    pub addr: SocketAddr,
    pub host: String,
    pub stats: Arc<Stats>,
    /// Customer message keys some console has seen (message.created), sharded.
    first_seen: Vec<Mutex<KeySet>>,
    pub n_agents: u32,
    pub bot_channel: String,
    pub supervisor_name: String,
    /// Agent flows under way.
    pub flows: AtomicI64,
    pub agent_concurrency: usize,
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        run: String,
        target: Target,
        addr: SocketAddr,
        host: String,
        stats: Arc<Stats>,
        n_agents: u32,
        bot_channel: String,
        supervisor_name: String,
        agent_concurrency: usize,
    ) -> Self {
        Shared {
            run,
            target,
            addr,
            host,
            stats,
            first_seen: (0..SHARDS).map(|_| Mutex::new(KeySet::default())).collect(),
            n_agents,
            bot_channel,
            supervisor_name,
            flows: AtomicI64::new(0),
            agent_concurrency,
        }
    }

    /// Whether some console saw customer message `key`.
    pub fn seen(&self, key: u64) -> bool {
        self.first_seen[(key as usize ^ (key >> 32) as usize) % SHARDS]
            .lock()
            .unwrap()
            .contains(&key)
    }

    fn first_sight(&self, key: u64) -> bool {
        self.first_seen[(key as usize ^ (key >> 32) as usize) % SHARDS]
            .lock()
            .unwrap()
            .insert(key)
    }

    /// A console got customer message `key` after `lat` µs; the first one is timed
    /// (`lat` none: a replayed frame, which counts as seen but is not timed).
    pub fn note_seen(&self, key: u64, lat: Option<u64>) {
        if self.first_sight(key) {
            if let Some(lat) = lat {
                self.stats.rec("send_console_first", lat);
            }
        }
    }
}

/// Who drives a console.
#[derive(Clone)]
pub struct Who {
    pub name: String,
    pub token: String,
    /// Agent number (routing), or none for the supervisor.
    pub index: Option<u32>,
}

/// A running console.
pub struct Handle {
    pub name: String,
    pub last_seq: Arc<AtomicU64>,
    pub welcomed: Arc<AtomicBool>,
    pub welcome_seq: Arc<AtomicU64>,
    /// Asks the console to drop its connection and resume (`--console-churn`).
    churn: Arc<Notify>,
    stop: Option<oneshot::Sender<()>>,
    join: tokio::task::JoinHandle<Report>,
}

impl Handle {
    /// A handle over a console task run elsewhere (the NATS mode's).
    pub fn new(
        name: String,
        last_seq: Arc<AtomicU64>,
        welcomed: Arc<AtomicBool>,
        welcome_seq: Arc<AtomicU64>,
        stop: oneshot::Sender<()>,
        join: tokio::task::JoinHandle<Report>,
    ) -> Self {
        Handle {
            name,
            last_seq,
            welcomed,
            welcome_seq,
            churn: Arc::new(Notify::new()),
            stop: Some(stop),
            join,
        }
    }

    /// Makes the console drop its connection at once, as a reloaded page does, and
    /// resume with `since` (consoles that cannot resume ignore it).
    pub fn reload(&self) {
        self.churn.notify_one();
    }

    /// Stops the console and returns what it saw.
    pub async fn finish(mut self) -> Report {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.join.await.unwrap_or_default()
    }
}

/// What a console saw.
#[derive(Default)]
pub struct Report {
    pub name: String,
    pub welcome_seq: u64,
    pub last_seq: u64,
    pub events: u64,
    pub gaps: u64,
    pub missing: u64,
    pub repeats: u64,
    pub resets: u64,
    /// Resets on a resume further back than the hub replays: what it promises (§7).
    pub resets_beyond_window: u64,
    pub reconnects: u64,
    pub first_problem: Option<String>,
    /// (block, hash) of every block of BLOCK events it saw whole.
    pub blocks: Vec<(u64, u64)>,
    pub all: Option<Histogram<u64>>,
}

/// Starts a console; with `brain`, the agent also works its share of messages.
pub fn start(shared: Arc<Shared>, who: Who, work: bool) -> Handle {
    let last_seq = Arc::new(AtomicU64::new(0));
    let welcomed = Arc::new(AtomicBool::new(false));
    let welcome_seq = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = oneshot::channel();
    let churn = Arc::new(Notify::new());
    let name = who.name.clone();
    let join = tokio::spawn(run_console(
        shared,
        who,
        work,
        Signals {
            stop: stop_rx,
            churn: churn.clone(),
        },
        last_seq.clone(),
        welcomed.clone(),
        welcome_seq.clone(),
    ));
    Handle {
        name,
        last_seq,
        welcomed,
        welcome_seq,
        churn,
        stop: Some(stop_tx),
        join,
    }
}

struct Stream {
    last: u64,
    block: u64,
    block_hash: u64,
    block_count: u64,
    rep: Report,
    hist: Histogram<u64>,
}

impl Stream {
    fn event(&mut self, seq: u64, kind: &str, conv: Option<&str>) {
        self.rep.events += 1;
        if seq <= self.last {
            self.rep.repeats += 1;
            if self.rep.first_problem.is_none() {
                self.rep.first_problem = Some(format!("seq {seq} after {}", self.last));
            }
            return;
        }
        if seq != self.last + 1 {
            self.rep.gaps += 1;
            self.rep.missing += seq - self.last - 1;
            if self.rep.first_problem.is_none() {
                self.rep.first_problem = Some(format!(
                    "gap: seq {seq} after {} ({} missing)",
                    self.last,
                    seq - self.last - 1
                ));
            }
        }
        self.last = seq;
        let b = (seq - 1) / BLOCK;
        if b != self.block {
            self.close_block();
            self.block = b;
            self.block_hash = 0;
            self.block_count = 0;
        }
        let mut h = wire::mix(self.block_hash, &seq.to_le_bytes());
        h = wire::mix(h, kind.as_bytes());
        h = wire::mix(h, conv.unwrap_or("-").as_bytes());
        self.block_hash = h;
        self.block_count += 1;
    }

    fn close_block(&mut self) {
        if self.block_count == BLOCK {
            self.rep.blocks.push((self.block, self.block_hash));
        }
    }
}

/// What a console's task is told from outside: stop, or drop the connection and resume.
struct Signals {
    stop: oneshot::Receiver<()>,
    churn: Arc<Notify>,
}

/// A resume under way: the head its welcome named, and when the console set out to
/// reconnect. Frames up to that head are the replay.
struct Resume {
    head: u64,
    since: Instant,
}

async fn run_console(
    shared: Arc<Shared>,
    who: Who,
    work: bool,
    mut signals: Signals,
    last_seq: Arc<AtomicU64>,
    welcomed: Arc<AtomicBool>,
    welcome_seq: Arc<AtomicU64>,
) -> Report {
    let brain = if work && shared.target == Target::Hub {
        Some(Brain::start(shared.clone(), who.clone()))
    } else {
        None
    };
    let mut s = Stream {
        last: 0,
        block: u64::MAX,
        block_hash: 0,
        block_count: 0,
        rep: Report {
            name: who.name.clone(),
            ..Default::default()
        },
        hist: stats::new_hist(),
    };
    let stop = &mut signals.stop;
    let mut epoch: Option<String> = None;
    let mut first = true;
    let mut backoff = Duration::from_millis(100);
    'outer: loop {
        let set_out = Instant::now();
        let conn = tokio::select! {
            _ = &mut *stop => break 'outer,
            c = hello(&shared, &who, if first { None } else { Some(s.last) }, epoch.as_deref()) => c,
        };
        let (mut tx, mut rx, head, ep, reset) = match conn {
            Ok(c) => c,
            Err(e) => {
                shared.stats.inc("console_connect_failures");
                eprintln!("console {}: {e}", who.name);
                tokio::select! {
                    _ = &mut *stop => break 'outer,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(3));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        epoch = ep;
        let mut resume = None;
        if first {
            s.last = head;
            s.rep.welcome_seq = head;
            welcome_seq.store(head, Ordering::SeqCst);
            first = false;
        } else if reset {
            if crate::config::beyond_replay_window(s.last, head, shared.target.replay_window()) {
                // A console cut off for falling behind (a saturated run) that comes back
                // further behind than the target replays: it reloads over HTTP (§7).
                s.rep.resets_beyond_window += 1;
            } else {
                s.rep.resets += 1;
                if s.rep.first_problem.is_none() {
                    s.rep.first_problem =
                        Some(format!("reset on resume since {} (head {head})", s.last));
                }
            }
            s.last = head;
        } else {
            resume = Some(Resume {
                head,
                since: set_out,
            });
        }
        last_seq.store(s.last, Ordering::SeqCst);
        welcomed.store(true, Ordering::SeqCst);
        loop {
            if let Some(r) = resume.as_ref().filter(|r| s.last >= r.head) {
                shared
                    .stats
                    .rec("console_resume", r.since.elapsed().as_micros() as u64);
                resume = None;
            }
            let f = tokio::select! {
                _ = &mut *stop => {
                    let _ = tx.send(Message::Close(None)).await;
                    break 'outer;
                }
                _ = signals.churn.notified() => {
                    // A reload: the connection goes without a close frame, and the
                    // console comes back a moment later with `since`.
                    drop((tx, rx));
                    shared.stats.inc("console_planned_reconnects");
                    let pause = Duration::from_millis(rand::thread_rng().gen_range(20..200));
                    tokio::select! {
                        _ = &mut *stop => break 'outer,
                        _ = tokio::time::sleep(pause) => {}
                    }
                    continue 'outer;
                }
                f = wire::next_text(&mut rx) => f,
            };
            match f {
                Some(Ok(t)) => {
                    let live_after = resume.as_ref().map_or(0, |r| r.head);
                    on_frame(&shared, &who, &t, &mut s, brain.as_ref(), live_after);
                    last_seq.store(s.last, Ordering::Relaxed);
                }
                Some(Err(e)) => {
                    shared.stats.inc("console_reconnects");
                    s.rep.reconnects += 1;
                    eprintln!("console {}: {e}; resuming since {}", who.name, s.last);
                    break;
                }
                None => {
                    shared.stats.inc("console_reconnects");
                    s.rep.reconnects += 1;
                    break;
                }
            }
        }
    }
    s.close_block();
    s.rep.last_seq = s.last;
    s.rep.all = Some(s.hist);
    s.rep
}

type Conn = (WsTx, WsRx, u64, Option<String>, bool);

async fn hello(
    shared: &Shared,
    who: &Who,
    since: Option<u64>,
    epoch: Option<&str>,
) -> Result<Conn, String> {
    let t = Instant::now();
    let ws = wire::connect(shared.addr, &shared.host, "/ws/agent", None).await?;
    let (mut tx, mut rx) = ws.split();
    let mut h = json!({"type": "hello", "token": who.token});
    if let Some(s) = since {
        h["since"] = json!(s);
        if let Some(e) = epoch {
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
    shared
        .stats
        .rec("console_connect", t.elapsed().as_micros() as u64);
    Ok((
        tx,
        rx,
        v["seq"].as_u64().unwrap_or(0),
        v["epoch"].as_str().map(str::to_string),
        v["reset"].as_bool().unwrap_or(false),
    ))
}

/// Which agent works conversation `conv`.
pub fn route(conv: &str, n_agents: u32) -> u32 {
    (wire::fnv(0, conv.as_bytes()) % n_agents.max(1) as u64) as u32
}

/// Handles one frame; frames with a seq up to `live_after` are a resume's replay, which
/// is not timed (its delay is the time the console was away).
fn on_frame(
    shared: &Shared,
    who: &Who,
    t: &str,
    s: &mut Stream,
    brain: Option<&Brain>,
    live_after: u64,
) {
    let parsed;
    let (seq, kind, conv) = match wire::scan_event(t) {
        Some(h) => (h.seq, h.kind, h.conversation_id),
        None => {
            let Ok(v) = serde_json::from_str::<Value>(t) else {
                shared.stats.inc("console_bad_frames");
                return;
            };
            match wire::head_of(&v) {
                Some(h) => {
                    parsed = h;
                    (parsed.0, parsed.1.as_str(), parsed.2.as_deref())
                }
                None => {
                    if v["type"] == "error" {
                        shared.stats.inc("console_error_frames");
                    }
                    return;
                }
            }
        }
    };
    s.event(seq, kind, conv);
    if kind == "message.created" {
        if let Some((key, us)) = wire::parse_tag(t, &shared.run) {
            if seq > live_after {
                let lat = now_us().saturating_sub(us);
                stats::record(&mut s.hist, lat);
                shared.note_seen(key, Some(lat));
            } else {
                shared.note_seen(key, None);
            }
        }
    }
    let Some(brain) = brain else {
        return;
    };
    let mine = match (who.index, conv) {
        (Some(i), Some(c)) => route(c, shared.n_agents) == i,
        _ => false,
    };
    let wanted = match who.index {
        Some(_) => {
            mine && matches!(
                kind,
                "message.created"
                    | "message.status_changed"
                    | "conversation.opened"
                    | "conversation.reopened"
                    | "conversation.bot"
            )
        }
        None => kind == "message.status_changed" && t.contains(r#""to":"help_requested""#),
    };
    if wanted {
        if let Ok(v) = serde_json::from_str::<Value>(t) {
            let _ = brain.tx.send(v);
        }
    }
}

/// Status changes a flow waits for.
type Waiters = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Value>>>>;

/// An agent's decision maker: gets the events of its conversations, runs flows.
struct Brain {
    tx: mpsc::UnboundedSender<Value>,
}

struct AgentRt {
    shared: Arc<Shared>,
    who: Who,
    http: Client,
    gate: Semaphore,
    waiters: Waiters,
    /// Messages of this agent that the hub handed back (`by: system`, e.g. the agent
    /// went offline while its console reloaded): an action on one that the hub refuses
    /// lost a race to the hand-back rather than failing.
    handed_back: Mutex<HashSet<String>>,
}

impl Brain {
    fn start(shared: Arc<Shared>, who: Who) -> Brain {
        let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
        let rt = Arc::new(AgentRt {
            http: Client::new(shared.addr, shared.host.clone()),
            gate: Semaphore::new(shared.agent_concurrency.max(1)),
            shared,
            who,
            waiters: Arc::new(Mutex::new(HashMap::new())),
            handed_back: Mutex::new(HashSet::new()),
        });
        tokio::spawn(async move {
            // conversation -> (channel, bot_active)
            let mut convs: HashMap<String, (String, bool)> = HashMap::new();
            let mut ours: HashSet<String> = HashSet::new();
            while let Some(v) = rx.recv().await {
                let kind = v["kind"].as_str().unwrap_or("");
                let conv = v["conversation_id"].as_str().unwrap_or("").to_string();
                let d = &v["data"];
                match kind {
                    "conversation.opened" | "conversation.reopened" => {
                        let c = &d["conversation"];
                        convs.insert(
                            conv,
                            (
                                c["channel"].as_str().unwrap_or("").to_string(),
                                c["bot_active"].as_bool().unwrap_or(false),
                            ),
                        );
                    }
                    "conversation.bot" => {
                        if let Some(e) = convs.get_mut(&conv) {
                            e.1 = d["active"].as_bool().unwrap_or(false);
                        }
                    }
                    "message.created" => {
                        let m = &d["message"];
                        let text = m["text"].as_str().unwrap_or("");
                        if wire::parse_tag(text, &rt.shared.run).is_none() {
                            continue;
                        }
                        let id = m["id"].as_str().unwrap_or("").to_string();
                        ours.insert(id.clone());
                        let (channel, bot_active) = convs.get(&conv).cloned().unwrap_or_default();
                        let bot_conv = channel == rt.shared.bot_channel;
                        if m["status"] == "pending" && !(bot_conv && bot_active) {
                            spawn_flow(&rt, id, conv, bot_conv);
                        }
                    }
                    "message.status_changed" => {
                        let id = d["message_id"].as_str().unwrap_or("").to_string();
                        if d["by"] == "system" && d["to"] == "pending" && ours.contains(&id) {
                            rt.handed_back.lock().unwrap().insert(id.clone());
                        }
                        if rt.who.index.is_none() {
                            if d["to"] == "help_requested" {
                                spawn_help_answer(&rt, id);
                            }
                            continue;
                        }
                        let waiter = rt.waiters.lock().unwrap().get(&id).cloned();
                        if let Some(w) = waiter {
                            let _ = w.send(d.clone());
                        } else if d["to"] == "pending"
                            && d["by"].as_str().unwrap_or("").starts_with("bot:")
                            && ours.contains(&id)
                        {
                            // The bot handed over: a human takes it.
                            let bot_conv = convs
                                .get(&conv)
                                .is_some_and(|c| c.0 == rt.shared.bot_channel);
                            spawn_flow(&rt, id, conv, bot_conv);
                        }
                    }
                    _ => {}
                }
            }
        });
        Brain { tx }
    }
}

impl AgentRt {
    /// One HTTP action; 2xx latency goes to `action.KIND`.
    async fn act(&self, kind: &str, method: &str, path: &str, body: Value) -> Option<Answer> {
        self.act_with(kind, method, path, || body).await
    }

    /// Like `act`, with the body built once the agent is free to send it (so that
    /// times written into it do not include the agent's own queue).
    async fn act_with(
        &self,
        kind: &str,
        method: &str,
        path: &str,
        body: impl FnOnce() -> Value,
    ) -> Option<Answer> {
        let queued = Instant::now();
        let _p = self.gate.acquire().await;
        self.shared
            .stats
            .rec("agent_queue_wait", queued.elapsed().as_micros() as u64);
        let body = body();
        let t = Instant::now();
        let res = self
            .http
            .call(method, path, Some(&self.who.token), Some(&body))
            .await;
        let lat = t.elapsed().as_micros() as u64;
        let st = &self.shared.stats;
        match res {
            Ok(a) if a.ok() => {
                st.rec(&format!("action.{kind}"), lat);
                st.rec("action.all", lat);
                st.inc("actions_ok");
                Some(a)
            }
            Ok(a) if a.status == 409 => {
                st.inc(&format!("action_conflict.{kind}.{}", a.code()));
                st.inc("actions_conflict");
                Some(a)
            }
            Ok(a) if a.status == 403 && self.was_handed_back(path) => {
                st.inc(&format!("action_conflict.{kind}.handed_back"));
                st.inc("actions_conflict");
                Some(a)
            }
            Ok(a) => {
                st.inc(&format!("action_error.{kind}.{}", a.code()));
                st.inc("actions_error");
                if st.get("actions_error") <= 5 {
                    eprintln!(
                        "agent {}: {kind} {path} -> {} {}",
                        self.who.name, a.status, a.body
                    );
                }
                Some(a)
            }
            Err(e) => {
                st.inc(&format!("action_error.{kind}.io"));
                st.inc("actions_error");
                if st.get("actions_error") <= 5 {
                    eprintln!("agent {}: {kind} {path} -> {e}", self.who.name);
                }
                None
            }
        }
    }

    /// Whether `path` acts on a message the hub handed back from this agent.
    fn was_handed_back(&self, path: &str) -> bool {
        path.strip_prefix("/api/messages/")
            .and_then(|rest| rest.split('/').next())
            .is_some_and(|id| self.handed_back.lock().unwrap().contains(id))
    }

    async fn reply(&self, conv: &str, msg: &str) {
        let run = &self.shared.run;
        let body = || {
            json!({
                "text": wire::reply_text(run, now_us()),
                "client_id": format!("{run}-r-{msg}"),
            })
        };
        self.act_with(
            "reply",
            "POST",
            &format!("/api/conversations/{conv}/replies"),
            body,
        )
        .await;
    }

    async fn assign(&self, msg: &str) -> bool {
        self.act(
            "assign",
            "POST",
            &format!("/api/messages/{msg}/assign"),
            json!({}),
        )
        .await
        .is_some_and(|a| a.ok())
    }

    /// Waits (bounded) for a status change of `msg` to one of `to`.
    async fn wait_for(
        &self,
        rx: &mut mpsc::UnboundedReceiver<Value>,
        to: &[&str],
        secs: u64,
    ) -> Option<Value> {
        let deadline = tokio::time::sleep(Duration::from_secs(secs));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => {
                    self.shared.stats.inc("flow_wait_timeouts");
                    return None;
                }
                v = rx.recv() => {
                    let v = v?;
                    if to.iter().any(|t| v["to"] == *t) {
                        return Some(v);
                    }
                }
            }
        }
    }

    fn waiter(&self, msg: &str) -> mpsc::UnboundedReceiver<Value> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.waiters.lock().unwrap().insert(msg.to_string(), tx);
        rx
    }

    fn unwait(&self, msg: &str) {
        self.waiters.lock().unwrap().remove(msg);
    }
}

#[derive(Clone, Copy, Debug)]
enum Plan {
    Reply,
    AssignReply,
    Hold,
    Help,
    Comment,
    Unassign,
    Close,
}

fn choose(bot_conv: bool) -> Plan {
    let r: u32 = rand::thread_rng().gen_range(0..100);
    match r {
        0..=49 => Plan::Reply,
        50..=64 => Plan::AssignReply,
        65..=74 => Plan::Hold,
        75..=81 => Plan::Help,
        82..=88 => Plan::Comment,
        89..=93 => Plan::Unassign,
        _ if bot_conv => Plan::Reply,
        _ => Plan::Close,
    }
}

fn spawn_flow(rt: &Arc<AgentRt>, msg: String, conv: String, bot_conv: bool) {
    let rt = rt.clone();
    rt.shared.flows.fetch_add(1, Ordering::SeqCst);
    let plan = choose(bot_conv);
    let hold_for: u64 = rand::thread_rng().gen_range(1..=3);
    tokio::spawn(async move {
        rt.shared.stats.inc(&format!("flow.{plan:?}"));
        match plan {
            Plan::Reply => rt.reply(&conv, &msg).await,
            Plan::AssignReply => {
                rt.assign(&msg).await;
                rt.reply(&conv, &msg).await;
            }
            Plan::Hold => {
                if rt.assign(&msg).await {
                    let mut w = rt.waiter(&msg);
                    let held = rt
                        .act(
                            "hold",
                            "POST",
                            &format!("/api/messages/{msg}/hold"),
                            json!({"for_seconds": hold_for}),
                        )
                        .await
                        .is_some_and(|a| a.ok());
                    if held {
                        // The timer hands it back (assigned), unless a reply got there first.
                        let back = rt
                            .wait_for(
                                &mut w,
                                &["assigned", "pending", "answered", "archived"],
                                hold_for + 30,
                            )
                            .await;
                        if back.is_some_and(|v| v["by"] == "system") {
                            rt.shared.stats.inc("hold_timers_fired");
                        }
                    }
                    rt.unwait(&msg);
                }
                rt.reply(&conv, &msg).await;
            }
            Plan::Help => {
                if rt.assign(&msg).await {
                    let mut w = rt.waiter(&msg);
                    let asked = rt
                        .act(
                            "request_help",
                            "POST",
                            &format!("/api/messages/{msg}/request-help"),
                            json!({"question": "Can we refund this order?"}),
                        )
                        .await
                        .is_some_and(|a| a.ok());
                    if asked {
                        let v = rt
                            .wait_for(
                                &mut w,
                                &["help_answered", "pending", "answered", "archived"],
                                60,
                            )
                            .await;
                        if let Some(v) = v {
                            rt.shared.stats.inc(&format!(
                                "help_came_back.{}",
                                v["to"].as_str().unwrap_or("?")
                            ));
                        }
                    }
                    rt.unwait(&msg);
                }
                rt.reply(&conv, &msg).await;
            }
            Plan::Comment => {
                rt.assign(&msg).await;
                let text = format!(
                    "@{} customer asks about order 12345",
                    rt.shared.supervisor_name
                );
                rt.act(
                    "comment",
                    "POST",
                    &format!("/api/conversations/{conv}/comments"),
                    json!({"text": text}),
                )
                .await;
                rt.reply(&conv, &msg).await;
            }
            Plan::Unassign => {
                if rt.assign(&msg).await {
                    rt.act(
                        "unassign",
                        "POST",
                        &format!("/api/messages/{msg}/unassign"),
                        json!({}),
                    )
                    .await;
                }
                rt.reply(&conv, &msg).await;
            }
            Plan::Close => {
                rt.reply(&conv, &msg).await;
                rt.act(
                    "close",
                    "POST",
                    &format!("/api/conversations/{conv}/close"),
                    json!({"notes": "done"}),
                )
                .await;
            }
        }
        rt.shared.flows.fetch_sub(1, Ordering::SeqCst);
    });
}

/// The supervisor takes a help request and answers it.
fn spawn_help_answer(rt: &Arc<AgentRt>, msg: String) {
    let rt = rt.clone();
    rt.shared.flows.fetch_add(1, Ordering::SeqCst);
    tokio::spawn(async move {
        let took = rt
            .act(
                "assign_help",
                "POST",
                &format!("/api/messages/{msg}/assign"),
                json!({}),
            )
            .await
            .is_some_and(|a| a.ok());
        if took {
            rt.act(
                "answer_help",
                "POST",
                &format!("/api/messages/{msg}/answer-help"),
                json!({"answer": "Yes, refund it."}),
            )
            .await;
        }
        rt.shared.flows.fetch_sub(1, Ordering::SeqCst);
    });
}

/// Compares the consoles: contiguous streams, agreement on every shared block.
pub fn check_consoles(reports: &[Report], head: u64, checks: &mut crate::config::Checks) {
    use crate::config::{note, tally};
    for r in reports {
        if r.resets_beyond_window > 0 {
            note(
                checks,
                "console.reset_beyond_replay_window",
                r.resets_beyond_window,
            );
        }
        tally(
            checks,
            "console.contiguous_in_order",
            r.gaps == 0 && r.repeats == 0 && r.resets == 0,
            || {
                format!(
                    "{}: {} gaps ({} events missing), {} repeats, {} resets; first: {}",
                    r.name,
                    r.gaps,
                    r.missing,
                    r.repeats,
                    r.resets,
                    r.first_problem.clone().unwrap_or_default()
                )
            },
        );
        tally(checks, "console.reached_head", r.last_seq >= head, || {
            format!("{}: last seq {} < head {head}", r.name, r.last_seq)
        });
    }
    let mut by_block: HashMap<u64, (u64, &str)> = HashMap::new();
    for r in reports {
        for (b, h) in &r.blocks {
            match by_block.get(b) {
                None => {
                    by_block.insert(*b, (*h, &r.name));
                }
                Some((h0, n0)) => {
                    tally(checks, "console.streams_identical", h0 == h, || {
                        format!(
                            "events {}..{} differ between {} and {}",
                            b * BLOCK + 1,
                            (b + 1) * BLOCK,
                            n0,
                            r.name
                        )
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, resets: u64, beyond: u64) -> Report {
        Report {
            name: name.into(),
            last_seq: 10,
            resets,
            resets_beyond_window: beyond,
            ..Default::default()
        }
    }

    #[test]
    fn only_a_reset_within_the_replay_window_fails_a_console() {
        let mut checks = crate::config::Checks::default();
        check_consoles(
            &[report("far", 0, 2), report("near", 1, 0)],
            10,
            &mut checks,
        );
        let c = &checks["console.contiguous_in_order"];
        assert_eq!(
            (c.ok, c.bad),
            (1, 1),
            "the far console passes, the near one fails"
        );
        let info = &checks["console.reset_beyond_replay_window"];
        assert!(info.info, "counted as information");
        assert_eq!((info.ok, info.bad), (2, 0));
    }

    #[test]
    fn a_resumes_replay_counts_as_seen_but_is_not_timed() {
        let stats = Arc::new(Stats::default());
        let shared = Shared::new(
            "r1".into(),
            Target::Hub,
            "127.0.0.1:1".parse().unwrap(),
            "localhost".into(),
            stats.clone(),
            1,
            "bot".into(),
            "sup".into(),
            1,
        );
        let who = Who {
            name: "a0".into(),
            token: String::new(),
            index: None,
        };
        let mut s = Stream {
            last: 4,
            block: u64::MAX,
            block_hash: 0,
            block_count: 0,
            rep: Report::default(),
            hist: stats::new_hist(),
        };
        let frame = |seq: u64, n: u32| {
            let text = wire::customer_text("r1", 7, n, now_us().saturating_sub(60_000_000), "hi");
            json!({"type": "event", "seq": seq, "kind": "message.created",
                   "conversation_id": "c1", "at": "2026-01-01T00:00:00.000Z",
                   "data": {"message": {"id": "m", "text": text}}})
            .to_string()
        };
        // A resume whose welcome named head 6: seqs 5 and 6 are the replay.
        on_frame(&shared, &who, &frame(5, 1), &mut s, None, 6);
        on_frame(&shared, &who, &frame(6, 2), &mut s, None, 6);
        assert!(shared.seen(wire::key(7, 1)) && shared.seen(wire::key(7, 2)));
        assert_eq!(s.hist.len(), 0, "the replay is not timed");
        assert!(stats.snapshot().hists.is_empty(), "nor as a first sight");
        on_frame(&shared, &who, &frame(7, 3), &mut s, None, 6);
        assert_eq!(s.hist.len(), 1, "a live frame is timed");
        assert!(s.hist.max() >= 60_000_000, "from its send time");
        assert_eq!((s.last, s.rep.gaps, s.rep.repeats), (7, 0, 0));
    }
}
