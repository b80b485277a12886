//! Process-wide counters for `/metrics` (PROTOCOL §8). Plain atomics: cheap enough to
//! update on every commit without a lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Group commits done.
pub static COMMITS: AtomicU64 = AtomicU64::new(0);
/// Requests folded into commits.
pub static COMMIT_REQUESTS: AtomicU64 = AtomicU64::new(0);
/// Events made durable.
pub static EVENTS: AtomicU64 = AtomicU64::new(0);
/// Total commit time, in microseconds.
pub static COMMIT_MICROS: AtomicU64 = AtomicU64::new(0);

/// Records one group commit.
pub fn record_commit(requests: usize, events: usize, took: Duration) {
    COMMITS.fetch_add(1, Ordering::Relaxed);
    COMMIT_REQUESTS.fetch_add(requests as u64, Ordering::Relaxed);
    EVENTS.fetch_add(events as u64, Ordering::Relaxed);
    COMMIT_MICROS.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
}
