//! Metrics for `GET /metrics` (PROTOCOL §8), in the Prometheus text format via the
//! `prometheus` crate. Hot-path updates are lock-free (atomics inside the crate's
//! counters and histograms); gauges that mirror state are read at scrape time.

use prometheus::{
    Counter, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::LazyLock;
use std::time::Duration;

/// The hub's metric families.
pub struct Metrics {
    registry: Registry,
    commit_seconds: Histogram,
    durable_wait_seconds: Histogram,
    loop_lag_seconds: Histogram,
    /// The parts of a group commit by `phase`: `apply` (sled's in-memory batch),
    /// `flush` (sled writes its buffers), `sync` (`sync_data`).
    commit_phase_seconds: HistogramVec,
    batch_requests: Histogram,
    /// Keys written by group commits, by `op` (put, remove), and the bytes put.
    keys: IntCounterVec,
    bytes: IntCounter,
    events: IntCounter,
    commits: IntCounter,
    /// Group commits that wrote their deferred records to the journal.
    journal_commits: IntCounter,
    drops: IntCounter,
    /// Reads that must see whole commits ([`crate::store::Store::read_consistent`]), by `how`
    /// they got one: `first` try, `retried` after a commit landed during a try, or
    /// `held` the writer off.
    consistent_reads: IntCounterVec,
    /// Bytes sled wrote to its log since the store opened, by kind (`link`, `page`,
    /// `cleaning`).
    pub log_bytes: IntGaugeVec,
    /// Pages taken by the store's segment cleaning (moved, or found gone already), and
    /// the time it took.
    gc_pages: IntCounter,
    /// Pending messages given out by automatic assignment (`actors/router.rs`).
    auto_assignments: IntCounter,
    /// Idle conversations closed by the hub (`actors/closer.rs`).
    auto_closes: IntCounter,
    /// Messages of agents gone offline handed back to Pending (`actors/router.rs`).
    offline_releases: IntCounter,
    gc_seconds: Counter,
    /// Recovery snapshots of sled's page table written, and the time their captures took
    /// (in the snapshot thread, beside the writer).
    snapshots: IntCounter,
    snapshot_capture_seconds: Counter,
    /// The length of the store's log file.
    pub store_file_bytes: IntGauge,
    /// Records written behind the commit (`store/lazy.rs`): keys whose latest value is
    /// only in the journal, and journal records left.
    pub deferred_keys: IntGauge,
    pub journal_records: IntGauge,
    /// How long agents' commands waited for a slot (`HUB_AGENT_INFLIGHT`).
    agent_admission_seconds: Histogram,
    /// Connected sockets by `kind` (agent, widget).
    pub sockets: IntGaugeVec,
    /// Customer messages by `status`.
    pub messages: IntGaugeVec,
    /// Live conversation actors.
    pub actors: IntGauge,
    /// The last published seq.
    pub head: IntGauge,
}

/// The buckets of the hub's latency histograms, in seconds.
const LATENCY_BUCKETS: [f64; 13] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0,
];

/// A latency histogram with the [`LATENCY_BUCKETS`] up to `upto` seconds.
fn latency(name: &str, help: &str, upto: f64) -> Result<Histogram, prometheus::Error> {
    let buckets = LATENCY_BUCKETS.iter().copied().filter(|b| *b <= upto);
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.collect()))
}

fn build() -> Result<Metrics, prometheus::Error> {
    let registry = Registry::new();
    let commit_seconds = latency(
        "hub_commit_seconds",
        "Duration of a group commit (apply, flush, sync).",
        0.5,
    )?;
    let durable_wait_seconds = latency(
        "hub_durable_wait_seconds",
        "From a write's arrival in the writer's queue to its durable answer: the wait for the commit in progress, then its own group commit.",
        5.0,
    )?;
    let loop_lag_seconds = latency(
        "hub_loop_lag_seconds",
        "How late a 50 ms tick runs on each HTTP/WebSocket thread (tokio rounds its timers up to the millisecond): the time a socket's or a conversation's work waited for that thread, or for a core.",
        1.0,
    )?;
    let commit_phase_seconds = HistogramVec::new(
        HistogramOpts::new(
            "hub_commit_phase_seconds",
            "Duration of each part of a group commit.",
        )
        .buckets(vec![
            0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1,
        ]),
        &["phase"],
    )?;
    let batch_requests = Histogram::with_opts(
        HistogramOpts::new("hub_commit_batch_requests", "Requests per group commit.").buckets(
            vec![
                1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 4096.0,
            ],
        ),
    )?;
    let keys = IntCounterVec::new(
        Opts::new("hub_commit_keys_total", "Keys written by group commits."),
        &["op"],
    )?;
    let bytes = IntCounter::new(
        "hub_commit_bytes_total",
        "Bytes of keys and values put by group commits.",
    )?;
    let events = IntCounter::new("hub_events_total", "Events made durable.")?;
    let commits = IntCounter::new("hub_commits_total", "Group commits.")?;
    let journal_commits = IntCounter::new(
        "hub_store_journal_commits_total",
        "Group commits that wrote their deferred records (conversation log tails, contacts' client ids) to the journal instead of in place.",
    )?;
    let drops = IntCounter::new(
        "hub_outbound_drops_total",
        "Sockets cut off for falling behind.",
    )?;
    let consistent_reads = IntCounterVec::new(
        Opts::new(
            "hub_store_consistent_reads_total",
            "Reads that see whole group commits (an inbox page with its counts), by how: first try, retried after a commit landed meanwhile, or held the next commit back.",
        ),
        &["how"],
    )?;
    let auto_assignments = IntCounter::new(
        "hub_auto_assignments_total",
        "Pending customer messages assigned automatically to an online agent (PATCH /api/automation).",
    )?;
    let auto_closes = IntCounter::new(
        "hub_auto_closes_total",
        "Idle conversations closed by the hub (PATCH /api/automation auto_close_seconds).",
    )?;
    let offline_releases = IntCounter::new(
        "hub_offline_releases_total",
        "Messages of agents gone offline put back in Pending (PATCH /api/automation reassign_offline).",
    )?;
    let gc_pages = IntCounter::new(
        "hub_store_gc_pages_total",
        "Pages taken by the store's segment cleaning so that its file space is reused (moved, or found already rewritten elsewhere).",
    )?;
    let gc_seconds = Counter::new(
        "hub_store_gc_seconds_total",
        "Time the writer spent cleaning segments (between commits).",
    )?;
    let snapshots = IntCounter::new(
        "hub_store_snapshots_total",
        "Recovery snapshots of the store's page table written (a restart replays only the log after the last).",
    )?;
    let snapshot_capture_seconds = Counter::new(
        "hub_store_snapshot_capture_seconds_total",
        "Time spent capturing the recovery snapshots written (in their own thread, beside the writer).",
    )?;
    let log_bytes = IntGaugeVec::new(
        Opts::new(
            "hub_store_log_bytes",
            "Bytes the store wrote to its log since it opened: updates linked to pages (link), whole pages rewritten or split (page), pages moved by segment cleaning (cleaning).",
        ),
        &["kind"],
    )?;
    let store_file_bytes = IntGauge::new(
        "hub_store_file_bytes",
        "Length of the store's log file (sled's `db` file).",
    )?;
    let deferred_keys = IntGauge::new(
        "hub_store_deferred_keys",
        "Keys (conversation log tails, contacts' client ids) whose latest value is in the journal and not yet in its own record.",
    )?;
    let journal_records = IntGauge::new(
        "hub_store_journal_records",
        "Journal records not yet removed (a start replays them).",
    )?;
    let agent_admission_seconds = Histogram::with_opts(
        HistogramOpts::new(
            "hub_agent_admission_wait_seconds",
            "How long an agent's command waited for one of the HUB_AGENT_INFLIGHT slots.",
        )
        .buckets(vec![
            0.00001, 0.0001, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ]),
    )?;
    let sockets = IntGaugeVec::new(Opts::new("hub_sockets", "Connected sockets."), &["kind"])?;
    let messages = IntGaugeVec::new(
        Opts::new("hub_messages", "Customer messages by status."),
        &["status"],
    )?;
    let actors = IntGauge::new("hub_conversation_actors", "Live conversation actors.")?;
    let head = IntGauge::new("hub_head_seq", "Last published event seq.")?;
    registry.register(Box::new(commit_seconds.clone()))?;
    registry.register(Box::new(durable_wait_seconds.clone()))?;
    registry.register(Box::new(loop_lag_seconds.clone()))?;
    registry.register(Box::new(commit_phase_seconds.clone()))?;
    registry.register(Box::new(batch_requests.clone()))?;
    registry.register(Box::new(keys.clone()))?;
    registry.register(Box::new(bytes.clone()))?;
    registry.register(Box::new(events.clone()))?;
    registry.register(Box::new(commits.clone()))?;
    registry.register(Box::new(journal_commits.clone()))?;
    registry.register(Box::new(drops.clone()))?;
    registry.register(Box::new(consistent_reads.clone()))?;
    registry.register(Box::new(gc_pages.clone()))?;
    registry.register(Box::new(auto_assignments.clone()))?;
    registry.register(Box::new(auto_closes.clone()))?;
    registry.register(Box::new(offline_releases.clone()))?;
    registry.register(Box::new(gc_seconds.clone()))?;
    registry.register(Box::new(snapshots.clone()))?;
    registry.register(Box::new(snapshot_capture_seconds.clone()))?;
    registry.register(Box::new(store_file_bytes.clone()))?;
    registry.register(Box::new(deferred_keys.clone()))?;
    registry.register(Box::new(journal_records.clone()))?;
    registry.register(Box::new(log_bytes.clone()))?;
    registry.register(Box::new(agent_admission_seconds.clone()))?;
    registry.register(Box::new(sockets.clone()))?;
    registry.register(Box::new(messages.clone()))?;
    registry.register(Box::new(actors.clone()))?;
    registry.register(Box::new(head.clone()))?;
    Ok(Metrics {
        registry,
        commit_seconds,
        durable_wait_seconds,
        loop_lag_seconds,
        commit_phase_seconds,
        batch_requests,
        keys,
        bytes,
        events,
        commits,
        journal_commits,
        drops,
        consistent_reads,
        log_bytes,
        gc_pages,
        auto_assignments,
        auto_closes,
        offline_releases,
        gc_seconds,
        snapshots,
        snapshot_capture_seconds,
        store_file_bytes,
        deferred_keys,
        journal_records,
        agent_admission_seconds,
        sockets,
        messages,
        actors,
        head,
    })
}

/// The process's metrics.
// unwrap: the metric names and buckets above are fixed and valid.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| build().expect("valid metrics"));

/// The parts of one group commit, as timed by the writer.
#[derive(Clone, Copy, Debug, Default)]
pub struct CommitPhases {
    pub apply: Duration,
    pub flush: Duration,
    pub sync: Duration,
    /// Keys the commit inserted and removed, and the bytes of keys and values inserted.
    pub puts: usize,
    pub removes: usize,
    pub bytes: usize,
    /// Whether its deferred records went to the journal.
    pub journaled: bool,
}

/// Counts a read that saw whole commits, and how (`first`, `retried`, `held`).
pub fn record_consistent_read(how: &str) {
    METRICS.consistent_reads.with_label_values(&[how]).inc();
}

/// Records one group commit.
pub fn record_commit(requests: usize, events: usize, took: Duration, phases: CommitPhases) {
    let m = &*METRICS;
    m.commit_seconds.observe(took.as_secs_f64());
    for (phase, d) in [
        ("apply", phases.apply),
        ("flush", phases.flush),
        ("sync", phases.sync),
    ] {
        m.commit_phase_seconds
            .with_label_values(&[phase])
            .observe(d.as_secs_f64());
    }
    m.batch_requests.observe(requests as f64);
    m.keys
        .with_label_values(&["put"])
        .inc_by(phases.puts as u64);
    m.keys
        .with_label_values(&["remove"])
        .inc_by(phases.removes as u64);
    m.bytes.inc_by(phases.bytes as u64);
    m.events.inc_by(events as u64);
    m.commits.inc();
    if phases.journaled {
        m.journal_commits.inc();
    }
}

/// Records, for each request of a commit just answered, the time since it was queued.
pub fn record_durable_waits(queued: impl Iterator<Item = std::time::Instant>) {
    let m = &*METRICS;
    let now = std::time::Instant::now();
    for q in queued {
        m.durable_wait_seconds
            .observe(now.saturating_duration_since(q).as_secs_f64());
    }
}

/// Records how late a tick of an HTTP/WebSocket thread ran (`startup::watch_loop_lag`).
pub fn record_loop_lag(late: Duration) {
    METRICS.loop_lag_seconds.observe(late.as_secs_f64());
}

/// Records a recovery snapshot written, and the time its capture took.
pub fn record_snapshot(capture: Duration) {
    let m = &*METRICS;
    m.snapshot_capture_seconds.inc_by(capture.as_secs_f64());
    m.snapshots.inc();
}

/// Counts a message assigned automatically.
pub fn record_auto_assignment() {
    METRICS.auto_assignments.inc();
}

/// Counts an idle conversation closed.
pub fn record_auto_close() {
    METRICS.auto_closes.inc();
}

/// Counts a message of an agent gone offline put back in Pending.
pub fn record_offline_release() {
    METRICS.offline_releases.inc();
}

/// Records one round of segment cleaning.
pub fn record_gc(pages: usize, took: Duration) {
    let m = &*METRICS;
    m.gc_pages.inc_by(pages as u64);
    m.gc_seconds.inc_by(took.as_secs_f64());
}

impl Metrics {
    /// (group commits, requests folded into them, seconds spent), since start.
    pub fn commit_totals(&self) -> (u64, f64, f64) {
        (
            self.commit_seconds.get_sample_count(),
            self.batch_requests.get_sample_sum(),
            self.commit_seconds.get_sample_sum(),
        )
    }

    /// Seconds spent in each commit phase (apply, flush, sync), keys put and bytes put,
    /// since start.
    pub fn commit_phase_totals(&self) -> ([f64; 3], u64, u64) {
        let phase = |p: &str| {
            self.commit_phase_seconds
                .with_label_values(&[p])
                .get_sample_sum()
        };
        (
            [phase("apply"), phase("flush"), phase("sync")],
            self.keys.with_label_values(&["put"]).get(),
            self.bytes.get(),
        )
    }

    /// Records how long an agent's command waited for its slot.
    pub fn agent_admission(&self, waited: Duration) {
        self.agent_admission_seconds.observe(waited.as_secs_f64());
    }

    /// Brings the cumulative drop counter up to `total`.
    pub fn set_drops(&self, total: u64) {
        let now = self.drops.get();
        if total > now {
            self.drops.inc_by(total - now);
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
