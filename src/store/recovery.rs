//! Recovery snapshots of sled's page table, written while the hub runs.
//!
//! sled 0.34 rebuilds its page table at open from its last snapshot plus every log
//! record written after it, and it writes a snapshot only when it opens. A hub that
//! crashes after a long run therefore replayed everything written since it started (a
//! store seeded with 1 M conversations: 105 s). Every [`DEFAULT_EVERY_MB`] of log
//! (`HUB_STORE_SNAPSHOT_MB`), or sixteen snapshot sizes when that is more ([`period`]),
//! the writer asks a thread of its own (`hub-snapshot`) for one
//! (`vendor/sled/PATCHES.md`, patch 9): the thread captures the page table beside
//! the writer (2.5 M pages take ≈ 0.2 s, too long a pause for the writer), waits until
//! every commit that was running meanwhile has been synced, syncs again and writes it.
//! A restart replays only the log after it. With snapshots on, the store opens without
//! sled's own snapshot of the replayed log (patch 12: an 85 MB write before serving, on
//! a 1 M-conversation store); the replayed log counts towards the next one here.

use super::Inner;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Log megabytes between two snapshots (`HUB_STORE_SNAPSHOT_MB`; `0`: none).
pub const DEFAULT_EVERY_MB: f64 = 256.0;

/// Log bytes per byte of snapshot, at least, between two snapshots: a big store's
/// snapshot (≈ 32 bytes a page: 80 MB for 2.5 M pages) costs the disk at most a
/// sixteenth of what the log itself writes, and a restart replays at most sixteen
/// times the snapshot it reads.
const LOG_PER_SNAPSHOT_BYTE: i64 = 16;

/// Bytes of a snapshot per page (sled's encoding: a page's log position, pointer and
/// size as varints, about 20–30 bytes).
const SNAPSHOT_BYTES_PER_PAGE: i64 = 32;

/// A snapshot is written this many bytes at a time, each on the device before a pause
/// (a commit's sync then waits behind one chunk at most, ≈ 2 ms here, not behind 80 MB).
const WRITE_CHUNK: usize = 1 << 20;
const WRITE_PAUSE: Duration = Duration::from_millis(10);

/// How long the thread waits for the commits that ran during a capture.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The writer's commits, as the snapshot thread sees them.
#[derive(Default)]
struct Progress {
    /// Commits started, commits synced, commits failed (the writer's own count).
    started: AtomicU64,
    synced: AtomicU64,
    failed: AtomicU64,
    /// The `stable_lsn` of the last snapshot written (or the log's position at open).
    last: AtomicI64,
    /// The pages of the last snapshot captured.
    pages: AtomicI64,
    /// Set while the thread works on a snapshot.
    busy: AtomicBool,
}

/// When the next snapshot is due, and the thread that writes them.
pub(super) struct RecoverySnapshots {
    /// Log bytes between snapshots (0: never).
    every: i64,
    /// The log position before which no new request is made (after one that failed).
    retry_at: i64,
    progress: Arc<Progress>,
    tx: Option<std::sync::mpsc::Sender<Arc<Inner>>>,
}

impl RecoverySnapshots {
    /// Snapshots every `every_mb` of log from the position `start` (where the store
    /// in `dir` would start replaying its log: the offset of its snapshot file, whose
    /// size tells how big the next one will be).
    pub(super) fn new(every_mb: f64, start: i64, dir: &std::path::Path) -> RecoverySnapshots {
        let every = every_bytes(every_mb);
        let progress = Arc::new(Progress::default());
        progress.last.store(start, Ordering::Relaxed);
        progress.pages.store(
            snapshot_file_bytes(dir) / SNAPSHOT_BYTES_PER_PAGE,
            Ordering::Relaxed,
        );
        tracing::debug!(
            start,
            snapshot_pages = progress.pages.load(Ordering::Relaxed),
            every,
            "Recovery snapshots set up."
        );
        let tx = (every > 0)
            .then(|| spawn_thread(progress.clone()))
            .flatten();
        RecoverySnapshots {
            every,
            retry_at: 0,
            progress,
            tx,
        }
    }

    /// Called by the writer as it starts a commit.
    pub(super) fn commit_started(&self) {
        self.progress.started.fetch_add(1, Ordering::SeqCst);
    }

    /// Called by the writer once a commit is synced (`ok`) or has failed. When a
    /// snapshot is due, and `quiet` (nothing but the writer writes to the store), asks
    /// the thread for one.
    pub(super) fn commit_ended(&mut self, ok: bool, inner: Option<Arc<Inner>>, quiet: bool) {
        let counter = if ok {
            &self.progress.synced
        } else {
            &self.progress.failed
        };
        counter.fetch_add(1, Ordering::SeqCst);
        let (Some(tx), Some(inner), true) = (&self.tx, inner, ok && quiet) else {
            return;
        };
        let position = inner.db.stable_lsn();
        let period = period(self.every, self.progress.pages.load(Ordering::Acquire));
        let due = self
            .progress
            .last
            .load(Ordering::Acquire)
            .saturating_add(period);
        if position < due.max(self.retry_at) || self.progress.busy.load(Ordering::Acquire) {
            return;
        }
        tracing::debug!(position, due, period, "Recovery snapshot due.");
        // Should this one fail, the next request waits for a little more log.
        self.retry_at = position.saturating_add((self.every / 16).max(1 << 20));
        self.progress.busy.store(true, Ordering::Release);
        if tx.send(inner).is_err() {
            self.progress.busy.store(false, Ordering::Release);
            self.tx = None;
        }
    }
}

/// Whether the hub writes snapshots while it runs, `every_mb` apart
/// ([`super::Settings::snapshot_mb`]): then sled writes none when it opens the store
/// (opening only reads, and the first snapshot comes once the log replayed at open plus
/// what follows make a period).
pub(super) fn enabled(every_mb: f64) -> bool {
    every_bytes(every_mb) > 0
}

/// `HUB_STORE_SNAPSHOT_MB` in bytes. `as` saturates: a huge value means "rarely", a
/// negative or NaN one "never".
fn every_bytes(every_mb: f64) -> i64 {
    (every_mb * (1u64 << 20) as f64) as i64
}

/// Log bytes between two snapshots: `every`, or sixteen times the size of a snapshot
/// of `pages` pages when that is more.
fn period(every: i64, pages: i64) -> i64 {
    every.max(pages.saturating_mul(SNAPSHOT_BYTES_PER_PAGE * LOG_PER_SNAPSHOT_BYTE))
}

/// The size of the store's snapshot file (sled keeps one), 0 when there is none.
fn snapshot_file_bytes(dir: &std::path::Path) -> i64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("snap.") && !name.ends_with(".generating")
        })
        .filter_map(|e| e.metadata().ok())
        .map(|m| i64::try_from(m.len()).unwrap_or(i64::MAX))
        .max()
        .unwrap_or(0)
}

/// The thread that captures and writes snapshots, one at a time.
fn spawn_thread(progress: Arc<Progress>) -> Option<std::sync::mpsc::Sender<Arc<Inner>>> {
    let (tx, rx) = std::sync::mpsc::channel::<Arc<Inner>>();
    let spawned = std::thread::Builder::new()
        .name("hub-snapshot".into())
        .spawn(move || {
            lowest_priority();
            for inner in rx {
                match snapshot(&inner, &progress) {
                    Ok(Some((lsn, pages, capture, total))) => {
                        progress.last.store(lsn, Ordering::Release);
                        crate::metrics::record_snapshot(capture);
                        tracing::info!(
                            pages,
                            capture_ms = capture.as_secs_f64() * 1e3,
                            total_ms = total.as_secs_f64() * 1e3,
                            "Recovery snapshot written."
                        );
                    }
                    // A commit failed meanwhile, or none ended in time (an idle
                    // writer): the writer asks again later.
                    Ok(None) => tracing::debug!("Recovery snapshot abandoned."),
                    // The previous snapshot stays; a restart replays more of the log.
                    Err(e) => tracing::warn!(error = %e, "Recovery snapshot not written."),
                }
                drop(inner);
                progress.busy.store(false, Ordering::Release);
            }
        });
    match spawned {
        Ok(_) => Some(tx),
        Err(e) => {
            tracing::warn!(error = %e, "No recovery snapshot thread; restarts replay more log.");
            None
        }
    }
}

/// Makes the calling thread yield the CPU and the disk to everything else: nice 19
/// (not `SCHED_IDLE`, which could starve it while it holds sled's epoch, and hold back
/// the freeing of memory) and the idle I/O class.
pub(super) fn lowest_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: both calls take plain integers and only change this thread's scheduling
    // (a thread id of 0 is the calling thread).
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19);
        const IOPRIO_WHO_PROCESS: libc::c_long = 1;
        const IOPRIO_CLASS_IDLE: libc::c_long = 3 << 13;
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            IOPRIO_CLASS_IDLE,
        );
    }
}

/// Captures, waits until what the capture saw is durable, writes. `Ok(None)` when it
/// had to give up; else the snapshot's offset, its pages, the capture's time and the
/// whole time.
fn snapshot(
    inner: &Inner,
    progress: &Progress,
) -> Result<Option<(i64, usize, Duration, Duration)>, String> {
    let started = Instant::now();
    let failed = progress.failed.load(Ordering::SeqCst);
    let Some(snapshot) = inner.db.capture_snapshot() else {
        return Ok(None);
    };
    let capture = started.elapsed();
    progress.pages.store(
        i64::try_from(snapshot.pages()).unwrap_or(i64::MAX),
        Ordering::Release,
    );
    // Every batch a captured page may come from started before this count was read:
    // once that many commits are synced, each has ended and is on the disk, and so is
    // every record the capture saw once the stable offset is past the newest of them.
    let needed = progress.started.load(Ordering::SeqCst);
    loop {
        if progress.failed.load(Ordering::SeqCst) != failed {
            return Ok(None);
        }
        if progress.synced.load(Ordering::SeqCst) >= needed
            && inner.db.stable_lsn() > snapshot.newest_lsn()
        {
            break;
        }
        if started.elapsed() > SETTLE_TIMEOUT {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // The commits synced what they wrote; sync again so that nothing else that may
    // have been written (a page moved by segment cleaning) is missing either.
    inner.sync_file.sync_data().map_err(|e| e.to_string())?;
    let (lsn, pages) = (snapshot.stable_lsn(), snapshot.pages());
    snapshot
        .write(WRITE_CHUNK, WRITE_PAUSE)
        .map_err(|e| e.to_string())?;
    Ok(Some((lsn, pages, capture, started.elapsed())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_big_store_snapshots_less_often() {
        let every = 256 << 20;
        // A busy-hour store (12,000 pages): the configured period.
        assert_eq!(period(every, 12_000), every);
        // 1 M conversations (2.7 M pages, an 85 MB file): 16 × 32 bytes a page.
        assert_eq!(period(every, 2_700_000), 2_700_000 * 512);
        // Off stays off; no overflow.
        assert_eq!(period(0, 0), 0);
        assert_eq!(period(every, i64::MAX), i64::MAX);
    }

    #[test]
    fn the_first_period_comes_from_the_snapshot_sled_wrote_at_open() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(snapshot_file_bytes(dir.path()), 0);
        std::fs::write(dir.path().join("snap.00000000000000FF"), vec![0u8; 3200]).unwrap();
        // A file a crash cut short does not count.
        std::fs::write(
            dir.path().join("snap.0000000000000FFF.generating"),
            vec![0u8; 9000],
        )
        .unwrap();
        std::fs::write(dir.path().join("db"), vec![0u8; 10_000]).unwrap();
        assert_eq!(snapshot_file_bytes(dir.path()), 3200);
        let s = RecoverySnapshots::new(0.0, 1_000, dir.path());
        assert_eq!(s.progress.pages.load(Ordering::Relaxed), 100);
        assert!(s.tx.is_none(), "0 MB: no thread, no snapshot");
    }
}
