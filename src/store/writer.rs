//! The group-commit writer: one thread that turns every queued request into one
//! `apply_batch` + `flush` + `sync_data`, answers the requests, then publishes their
//! events in `seq` order (a small reorder buffer covers seqs allocated out of order).

use super::lazy::{self, Lazy, Round};
use super::log::{self, OpenChunks};
use super::recovery::RecoverySnapshots;
use super::{keys, Request, Settings, Store};
use crate::bus::{Bus, Outgoing};
use crate::metrics::CommitPhases;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Most requests folded into one commit.
const MAX_BATCH: usize = 4096;

pub(super) struct Writer {
    bus: Arc<Bus>,
    /// Index counts, loaded on first touch; only this thread writes them.
    counts: HashMap<String, i64>,
    /// The next seq to publish, and events waiting for an earlier seq.
    next_pub: u64,
    held: BTreeMap<u64, Option<Outgoing>>,
    /// The log records that may still grow.
    open: OpenChunks,
    /// The records written behind the commit: dirty keys and journal records.
    lazy: Lazy,
    /// Fewer deferred records than this in a commit are written in place.
    defer_min: usize,
    /// The journal is being drained between commits ([`Writer::idle_checkpoint`]): it
    /// goes on at each empty queue until nothing is pending.
    draining: bool,
    /// The last commit had fewer deferred records than `defer_min` (it would have
    /// written them in place had nothing been pending).
    last_small: bool,
    /// Consoles' frames of published commits, held back ([`Writer::publish`]).
    console_frames: Vec<(u64, bytes::Bytes)>,
    /// Commits whose consoles' frames are held; at most [`Writer::console_hold`].
    held_commits: u32,
    /// How many commits' consoles' frames may be held for the next ones
    /// ([`Settings::console_hold_commits`]).
    console_hold: u32,
}

impl Writer {
    pub(super) fn new(bus: Arc<Bus>, next_pub: u64, settings: &Settings) -> Self {
        Writer {
            bus,
            counts: HashMap::new(),
            next_pub,
            held: BTreeMap::new(),
            open: OpenChunks::default(),
            lazy: Lazy::default(),
            defer_min: settings.defer_min_pairs,
            draining: false,
            last_small: true,
            console_frames: Vec::new(),
            held_commits: 0,
            console_hold: settings.console_hold_commits,
        }
    }

    fn count_mut(&mut self, tree: &sled::Tree, name: &str) -> &mut i64 {
        if !self.counts.contains_key(name) {
            let v = tree
                .get(keys::key(keys::COUNT, &[name.as_bytes()]))
                .ok()
                .flatten()
                .and_then(|v| v.as_ref().try_into().ok().map(i64::from_be_bytes))
                .unwrap_or(0);
            self.counts.insert(name.to_string(), v);
        }
        // unwrap: inserted just above when missing.
        self.counts.get_mut(name).expect("count present")
    }

    fn commit(
        &mut self,
        store: &Store,
        reqs: &mut [Request],
        phases: &mut CommitPhases,
    ) -> Result<(), String> {
        let res = self.try_commit(store, reqs, phases);
        if res.is_err() {
            // The in-memory counts and log records may be ahead of the disk: reload
            // them on next touch.
            self.counts.clear();
            self.open.clear();
        }
        res
    }

    fn try_commit(
        &mut self,
        store: &Store,
        reqs: &mut [Request],
        phases: &mut CommitPhases,
    ) -> Result<(), String> {
        let started = Instant::now();
        let inner = store.inner().map_err(|e| e.to_string())?;
        let tree = &inner.tree;
        let mut b = sled::Batch::default();
        let mut touched: Vec<String> = Vec::new();
        let mut chunks: Vec<u64> = Vec::new();
        let mut deferred: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for r in reqs.iter_mut() {
            deferred.append(&mut r.batch.lazy);
            for (seq, json) in &r.batch.events {
                chunks.push(self.open.add(*seq, json, |c| load_chunk(tree, c))?);
            }
            for (k, v) in &r.batch.puts {
                put(&mut b, phases, k.as_slice(), v.as_slice());
            }
            for k in &r.batch.removes {
                b.remove(k.as_slice());
                phases.removes += 1;
            }
            for e in &r.batch.index_del {
                if !e.name.starts_with(super::index::COUNT_ONLY) {
                    b.remove(keys::index_entry(&e.name, e.order, &e.id));
                    phases.removes += 1;
                }
                *self.count_mut(tree, &e.name) -= 1;
                touched.push(e.name.clone());
            }
            for (e, v) in &r.batch.index_put {
                if !e.name.starts_with(super::index::COUNT_ONLY) {
                    let k = keys::index_entry(&e.name, e.order, &e.id);
                    put(&mut b, phases, k, v.as_slice());
                }
                *self.count_mut(tree, &e.name) += 1;
                touched.push(e.name.clone());
            }
        }
        chunks.sort_unstable();
        chunks.dedup();
        for c in chunks {
            put(&mut b, phases, log::chunk_key(c), self.open.encoded(c));
        }
        touched.sort();
        touched.dedup();
        for name in &touched {
            let v = self.counts.get(name).copied().unwrap_or(0);
            let k = keys::key(keys::COUNT, &[name.as_bytes()]);
            put(&mut b, phases, k, &v.to_be_bytes()[..]);
        }
        self.last_small = deferred.len() < self.defer_min;
        let plan = if self.lazy.in_place(self.last_small) {
            // Nothing is deferred: in place, as any other key, without the overlay.
            for (k, v) in deferred {
                put(&mut b, phases, k, v);
            }
            None
        } else {
            let plan = self
                .lazy
                .plan(&store.overlay(), deferred, Round::Commit, &mut b);
            phases.puts += plan.puts;
            phases.removes += plan.removes;
            phases.bytes += plan.bytes;
            phases.journaled = plan.journals();
            Some(plan)
        };
        let applying = store.begin_apply();
        tree.apply_batch(b).map_err(|e| e.to_string())?;
        if let Some(plan) = plan {
            // Visible once applied, as sled's own writes are (durable after the sync).
            self.settle(store, plan);
        }
        drop(applying);
        let applied = Instant::now();
        phases.apply = applied - started;
        inner.db.flush().map_err(|e| e.to_string())?;
        let flushed = Instant::now();
        phases.flush = flushed - applied;
        inner.sync_file.sync_data().map_err(|e| e.to_string())?;
        phases.sync = flushed.elapsed();
        Ok(())
    }

    /// One round of checkpointing deferred records (`lazy.rs`), applied without a sync
    /// of its own: the journal already holds them, and the next sync carries them.
    fn checkpoint(&mut self, store: &Store, tree: &sled::Tree, round: Round) -> bool {
        let mut b = sled::Batch::default();
        let plan = self.lazy.plan(&store.overlay(), Vec::new(), round, &mut b);
        if let Err(e) = tree.apply_batch(b) {
            // The next commit meets the same error and reopens the store.
            tracing::warn!(error = %e, "Checkpoint of deferred records failed.");
            store.set_healthy(false);
            return false;
        }
        self.settle(store, plan);
        true
    }

    /// [`Lazy::settle`], and the journal's length for `/metrics`.
    fn settle(&mut self, store: &Store, plan: lazy::Plan) {
        self.lazy.settle(&mut store.overlay_mut(), plan);
        self.show_journal(store);
    }

    /// [`Lazy::reset`] (the store was reopened: its journal was replayed).
    fn reset_lazy(&mut self, store: &Store) {
        self.lazy.reset();
        self.draining = false;
        self.show_journal(store);
    }

    /// Publishes the number of journal records left ([`Store::deferred`]).
    fn show_journal(&self, store: &Store) {
        store
            .journal_records
            .store(self.lazy.records(), std::sync::atomic::Ordering::Relaxed);
    }

    /// Checkpoints deferred records while the queue is empty, a round of at most
    /// [`super::lazy::IDLE_ROUND`] keys at a time, until a request arrives: while large
    /// commits go on, the keys that are due; after a small commit, every key, and the
    /// journal is removed (small commits then write in place again).
    fn idle_checkpoint(&mut self, store: &Store, rx: &mpsc::Receiver<Request>) {
        let Ok(inner) = store.inner() else {
            return;
        };
        if !self.last_small {
            self.draining = false;
            while rx.is_empty() && self.lazy.due(&store.overlay()) {
                if !self.checkpoint(store, &inner.tree, Round::Idle) {
                    return;
                }
            }
            return;
        }
        self.draining = true;
        while rx.is_empty() && self.lazy.pending() {
            if !self.checkpoint(store, &inner.tree, Round::Drain) {
                return;
            }
        }
        self.draining = self.lazy.pending();
    }

    /// Whether the queue's being empty is the moment to checkpoint: something is due,
    /// or a drain that a request cut short goes on.
    fn checkpoint_now(&self, store: &Store) -> bool {
        self.lazy.pending()
            && ((self.draining && self.last_small) || self.lazy.due(&store.overlay()))
    }

    /// Checkpoints every deferred record and removes the journal (the queue closed: a
    /// clean stop leaves nothing for the next start to replay).
    fn drain(&mut self, store: &Store) {
        let Ok(inner) = store.inner() else {
            return;
        };
        while self.lazy.pending() {
            if !self.checkpoint(store, &inner.tree, Round::Drain) {
                return;
            }
        }
        if let Err(e) = inner.flush_and_sync() {
            tracing::warn!(error = %e, "Checkpoint of deferred records not synced.");
        }
    }

    /// Publishes what became durable: contacts' frames at once, consoles' frames at once
    /// too unless `another` commit follows straight away (requests are waiting) and
    /// fewer than [`Writer::console_hold`] commits are held already: then they go with
    /// the next commit's, one write per console for both.
    fn publish(&mut self, reqs: Vec<Request>, ok: bool, another: bool) {
        for r in reqs {
            let seqs: Vec<u64> = r.batch.events.iter().map(|e| e.0).collect();
            let mut outgoing = r.batch.outgoing.into_iter();
            for seq in seqs {
                let o = outgoing.next();
                self.held.insert(seq, if ok { o } else { None });
            }
        }
        let mut ready = Vec::new();
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() != self.next_pub {
                break;
            }
            if let Some(o) = entry.remove() {
                ready.push(o);
            }
            self.next_pub += 1;
        }
        if !ready.is_empty() {
            let frames = self.bus.publish_contacts(ready);
            self.console_frames.extend(frames);
        }
        // Every seq below `next_pub` has reached this thread: their records are final.
        self.open.settle(self.next_pub);
        if another && self.held_commits < self.console_hold && !self.console_frames.is_empty() {
            self.held_commits += 1;
        } else {
            self.release_console_frames();
        }
    }

    /// Hands the consoles' frames held back to the bus.
    fn release_console_frames(&mut self) {
        self.held_commits = 0;
        if !self.console_frames.is_empty() {
            self.bus
                .publish_agents(std::mem::take(&mut self.console_frames));
        }
    }
}

/// Adds an insert to the sled batch and counts it in the commit's figures.
fn put(
    b: &mut sled::Batch,
    phases: &mut CommitPhases,
    k: impl Into<sled::IVec>,
    v: impl Into<sled::IVec>,
) {
    let (k, v) = (k.into(), v.into());
    phases.puts += 1;
    phases.bytes += k.len() + v.len();
    b.insert(k, v);
}

/// A log record as stored (empty when absent). A read error fails the commit: writing
/// the record without its stored events would lose them.
fn load_chunk(tree: &sled::Tree, c: u64) -> Result<BTreeMap<u64, Vec<u8>>, String> {
    let Some(v) = tree.get(log::chunk_key(c)).map_err(|e| e.to_string())? else {
        return Ok(BTreeMap::new());
    };
    let events = log::decode_chunk(&v).unwrap_or_else(|| {
        // Nothing of it can be read back anyway; keep serving.
        tracing::error!(chunk = c, "Unreadable log record; rewriting it.");
        Vec::new()
    });
    Ok(events.into_iter().map(|(s, b)| (s, b.to_vec())).collect())
}

/// How much log (megabytes) is written after a segment becomes half dead before cleaning
/// moves its live pages out (sled patch 14, `Db::set_cleaning_lag`). Moving a page
/// rewrites it whole, while what keeps it in an old segment is often one small update
/// of a page that is rewritten anyway a few updates later (sled consolidates a page
/// every 10 updates); waiting lets those leave by themselves. Measured on a 90 s busy
/// hour: 0.88 GB of moved pages instead of 2.89 GB, for a store 6 % larger
/// (`docs/DECISIONS.md`, "Segment cleaning"). `HUB_STORE_CLEANING_LAG_MB` sets it
/// ([`Settings::cleaning_lag_mb`]).
pub(super) const CLEANING_LAG_MB: f64 = 64.0;

/// Consoles' frames are held for the next commit only after a commit that took less
/// than this ([`Writer::publish`]).
const CONSOLE_HOLD_MAX_COMMIT: Duration = Duration::from_millis(1);

/// How many commits' consoles' frames the writer may hold for the next commit when one
/// follows at once, unless `HUB_CONSOLE_HOLD_COMMITS` says otherwise
/// ([`Settings::console_hold_commits`]; `0` publishes every commit's frames to consoles
/// at once).
pub(super) const CONSOLE_HOLD_COMMITS: u32 = 1;

/// Pages one round of segment cleaning rewrites at most before the writer looks at its
/// queue again (it also stops as soon as a request waits).
const GC_ROUND_PAGES: usize = 64;

/// Pages cleaned after every commit even when requests wait, so that a writer that is
/// never idle (sustained saturation) still reclaims space (≈ 10 µs per page).
const GC_PAGES_PER_COMMIT: usize = 4;

/// Each commit lets cleaning move this many more pages (at most [`GC_BUDGET_MAX`]
/// banked): cleaning follows what was written, and a flaw like the one patch 7 fixes
/// cannot keep an idle writer busy. A busy hour needs ≈ 3 pages per commit.
const GC_PAGES_EARNED_PER_COMMIT: usize = 256;
const GC_BUDGET_MAX: usize = 1 << 20;

/// One round of sled's segment cleaning, between commits: rewrites pages that hold
/// back segments of the log file from being reused (`vendor/sled/PATCHES.md`, patches
/// 5 and 6). sled takes such steps in its flusher thread, which the hub does not run
/// (the writer flushes every commit itself); without them the file grows by almost
/// every page version ever written. Never runs beside a commit; past `min` pages it
/// stops as soon as a request waits, and it moves at most `budget` pages, which it
/// spends. The moved pages reach the disk with the next commit. True when more may be
/// left.
fn clean_segments(
    store: &Store,
    rx: &mpsc::Receiver<Request>,
    min: usize,
    budget: &mut usize,
) -> bool {
    let Ok(inner) = store.inner() else {
        return false;
    };
    let started = Instant::now();
    let max = (*budget).min(GC_ROUND_PAGES);
    let mut pages = 0;
    let more = loop {
        if pages >= max || (pages >= min && !rx.is_empty()) {
            break true;
        }
        match inner.db.gc_step() {
            Ok(true) => pages += 1,
            Ok(false) => break false,
            Err(e) => {
                // The next commit meets the same error and reopens the store.
                tracing::warn!(error = %e, "Segment cleaning failed.");
                break false;
            }
        }
    };
    *budget -= pages;
    crate::metrics::record_gc(pages, started.elapsed());
    more
}

pub(super) fn spawn(mut w: Writer, mut rx: mpsc::Receiver<Request>, store: Arc<Store>) {
    std::thread::Builder::new()
        .name("hub-writer".into())
        .spawn(move || {
            let mut last_reopen = Instant::now();
            // Whether segment cleaning may have more work: its last round (after a
            // commit, or in idle time) stopped before finding none.
            let mut gc_pending = false;
            // Pages cleaning may still move ([`GC_PAGES_EARNED_PER_COMMIT`]).
            let mut gc_budget = 0usize;
            let start = store
                .inner()
                .map(|i| i.db.snapshot_lsn_at_open())
                .unwrap_or(0);
            let mut snapshots =
                RecoverySnapshots::new(store.settings.snapshot_mb, start, &store.dir);
            loop {
                let first = match rx.try_recv() {
                    Ok(r) => r,
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        // No commit follows at once: nothing stays held.
                        w.release_console_frames();
                        if store.healthy() && w.checkpoint_now(&store) {
                            w.idle_checkpoint(&store, &rx);
                            continue;
                        }
                        if gc_pending && gc_budget > 0 && store.healthy() {
                            gc_pending = clean_segments(&store, &rx, 0, &mut gc_budget);
                            continue;
                        }
                        match rx.blocking_recv() {
                            Some(r) => r,
                            None => break,
                        }
                    }
                };
                let mut reqs = vec![first];
                while reqs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(r) => reqs.push(r),
                        Err(_) => break,
                    }
                }
                let started = Instant::now();
                if !store.healthy() && last_reopen.elapsed() > Duration::from_millis(250) {
                    last_reopen = Instant::now();
                    match store.reopen() {
                        // The journal was replayed into sled.
                        Ok(()) => w.reset_lazy(&store),
                        Err(e) => tracing::error!(error = %e, "Store reopen failed; will retry."),
                    }
                }
                let mut phases = CommitPhases::default();
                snapshots.commit_started();
                let res = w.commit(&store, &mut reqs, &mut phases);
                let events: usize = reqs.iter().map(|r| r.batch.event_count()).sum();
                crate::metrics::record_commit(reqs.len(), events, started.elapsed(), phases);
                store.set_healthy(res.is_ok());
                if let Err(e) = &res {
                    tracing::error!(error = %e, requests = reqs.len(), "Group commit failed.");
                }
                // Counted before the answers, so that whoever has one sees it counted.
                crate::metrics::record_durable_waits(reqs.iter().map(|r| r.queued));
                if res.is_ok() {
                    // Before the answers: a search made with one in hand waits for it.
                    let top = reqs
                        .iter()
                        .filter_map(|r| r.batch.events.last())
                        .map(|e| e.0)
                        .max();
                    if let Some(top) = top {
                        store
                            .committed
                            .fetch_max(top, std::sync::atomic::Ordering::AcqRel);
                    }
                }
                let mut answered = Vec::with_capacity(reqs.len());
                for mut r in reqs {
                    let done = std::mem::replace(&mut r.done, tokio::sync::oneshot::channel().0);
                    let _ = done.send(res.clone());
                    answered.push(r);
                }
                // Held consoles' frames wait for a commit of a few hundred µs, not for
                // one of a saturated writer (milliseconds).
                let another = !rx.is_empty() && started.elapsed() < CONSOLE_HOLD_MAX_COMMIT;
                w.publish(answered, res.is_ok(), another);
                // The contact-index pass of an old store writes beside the writer; no
                // snapshot is taken while it runs.
                let quiet = store
                    .contact_index
                    .load(std::sync::atomic::Ordering::Acquire);
                snapshots.commit_ended(res.is_ok(), store.inner().ok(), quiet);
                if res.is_ok() {
                    gc_budget = (gc_budget + GC_PAGES_EARNED_PER_COMMIT).min(GC_BUDGET_MAX);
                    gc_pending = clean_segments(&store, &rx, GC_PAGES_PER_COMMIT, &mut gc_budget);
                }
            }
            w.release_console_frames();
            if store.healthy() {
                w.drain(&store);
            }
            tracing::info!("Store writer stopped.");
        })
        // unwrap: spawning a thread at start-up only fails when the OS is out of resources.
        .expect("spawn writer thread");
}
