//! Recovery snapshots of sled's page table, written while the hub runs.
//!
//! sled 0.34 rebuilds its page table at open from its last snapshot plus every log
//! record written after it, and it writes a snapshot only when it opens. A hub that
//! crashes after a long run therefore replayed everything written since it started (a
//! store seeded with 1 M conversations: 105 s). The writer now captures the page table
//! every [`DEFAULT_EVERY_MB`] of log (`HUB_STORE_SNAPSHOT_MB`; `vendor/sled/PATCHES.md`,
//! patch 9), right after a commit, when everything written is synced and nothing else
//! writes; a thread of its own writes it. A restart replays only the log after it.

use super::Inner;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Log megabytes between two snapshots (`HUB_STORE_SNAPSHOT_MB`; `0`: none).
pub const DEFAULT_EVERY_MB: f64 = 256.0;

/// When the next snapshot is due, and the thread that writes them.
pub(super) struct RecoverySnapshots {
    /// Log bytes between snapshots (0: never).
    every: i64,
    /// The log position from which the next capture is due.
    next_at: i64,
    /// Set while the thread writes a snapshot: no capture meanwhile.
    writing: Arc<AtomicBool>,
    tx: Option<std::sync::mpsc::Sender<(sled::RecoverySnapshot, Arc<Inner>)>>,
}

impl RecoverySnapshots {
    /// Snapshots every `every_mb` of log from the position `start` (the log's position
    /// when the store opened: sled has just written a snapshot there).
    pub(super) fn new(every_mb: f64, start: i64) -> RecoverySnapshots {
        // `as` saturates: a huge value means "rarely", a negative or NaN one "never".
        let every = (every_mb * (1u64 << 20) as f64) as i64;
        let writing = Arc::new(AtomicBool::new(false));
        let tx = (every > 0).then(|| spawn_writer(writing.clone())).flatten();
        RecoverySnapshots {
            every,
            next_at: start.saturating_add(every),
            writing,
            tx,
        }
    }

    /// The period from `HUB_STORE_SNAPSHOT_MB` (fractions allowed: tests use 0.1).
    pub(super) fn every_mb_from_env() -> f64 {
        std::env::var("HUB_STORE_SNAPSHOT_MB")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_EVERY_MB)
    }

    /// Called by the writer after a successful commit (the log is flushed and synced):
    /// captures the page table when a snapshot is due and hands it to the thread.
    pub(super) fn after_commit(&mut self, inner: &Arc<Inner>) {
        let Some(tx) = &self.tx else {
            return;
        };
        let position = inner.db.stable_lsn();
        if position < self.next_at || self.writing.load(Ordering::Acquire) {
            return;
        }
        let started = Instant::now();
        let captured = inner.db.capture_snapshot();
        let took = started.elapsed();
        let Some(snapshot) = captured else {
            // Something not yet on disk was caught (a write beside the writer: the
            // contact-index pass of an old store). Try again a little later.
            crate::metrics::record_snapshot(Some(took), false);
            tracing::debug!(
                position,
                "Recovery snapshot skipped: a write was in flight."
            );
            self.next_at = position.saturating_add((self.every / 16).max(1 << 20));
            return;
        };
        crate::metrics::record_snapshot(Some(took), false);
        tracing::debug!(
            pages = snapshot.pages(),
            capture_ms = took.as_secs_f64() * 1e3,
            "Recovery snapshot captured."
        );
        self.next_at = snapshot.stable_lsn().saturating_add(self.every);
        self.writing.store(true, Ordering::Release);
        if tx.send((snapshot, inner.clone())).is_err() {
            self.writing.store(false, Ordering::Release);
            self.tx = None;
        }
    }
}

/// The thread that writes captured snapshots, one at a time.
fn spawn_writer(
    writing: Arc<AtomicBool>,
) -> Option<std::sync::mpsc::Sender<(sled::RecoverySnapshot, Arc<Inner>)>> {
    let (tx, rx) = std::sync::mpsc::channel::<(sled::RecoverySnapshot, Arc<Inner>)>();
    let spawned = std::thread::Builder::new()
        .name("hub-snapshot".into())
        .spawn(move || {
            for (snapshot, inner) in rx {
                let started = Instant::now();
                let pages = snapshot.pages();
                // Every page it points at was synced by the commit before the capture;
                // sync again so that no later change of that rule can make a snapshot
                // point at data that is not on the disk.
                let res = inner
                    .sync_file
                    .sync_data()
                    .map_err(|e| e.to_string())
                    .and_then(|()| snapshot.write().map_err(|e| e.to_string()));
                match res {
                    Ok(()) => {
                        crate::metrics::record_snapshot(None, true);
                        tracing::info!(
                            pages,
                            write_ms = started.elapsed().as_secs_f64() * 1e3,
                            "Recovery snapshot written."
                        );
                    }
                    // The previous snapshot stays; a restart replays more of the log.
                    Err(e) => tracing::warn!(error = %e, "Recovery snapshot not written."),
                }
                drop(inner);
                writing.store(false, Ordering::Release);
            }
        });
    match spawned {
        Ok(_) => Some(tx),
        Err(e) => {
            tracing::warn!(error = %e, "No recovery snapshot thread; restarts replay the whole log.");
            None
        }
    }
}
