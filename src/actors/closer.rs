//! Closing idle conversations (an extension, off until an admin sets
//! `PATCH /api/automation {"auto_close_seconds": n}`): a conversation the customer left
//! once answered stays in Open for good otherwise, and the Open list stops being the
//! list of what needs the team.
//!
//! * An **open** conversation (not spam) whose latest event is older than the setting, and
//!   none of whose customer messages waits for the team (pending, assigned, on hold, help
//!   requested or answered: those are someone's work, however old), is closed by the hub
//!   (`by: system`) with the notes "Closed automatically after … without activity". §6.2's
//!   close applies: the bot is back on, the owner stays, and a new customer message
//!   reopens it (its session stays active).
//! * A scan reads the open conversations oldest first, at most [`PAGE`] of them, each
//!   with the time of its latest event, in one trip to the store; it goes on from there
//!   at the next scan, and starts over at the end. Scans run every quarter of the
//!   setting, at most every minute. The conversation decides: one that moved since it
//!   was read (its latest event is another) or holds a waiting message refuses.

use crate::domain::{Actor as Who, Command, ConversationId, Ts};
use crate::hub::Hub;
use crate::locks::lock;
use crate::store::index::names;
use crate::store::{Store, StoreError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Open conversations read per scan.
pub const PAGE: usize = 1_000;
/// The longest wait between two scans.
const MAX_PERIOD: Duration = Duration::from_secs(60);

/// Closes idle conversations. See the module's documentation.
#[derive(Default)]
pub struct Closer {
    started: std::sync::atomic::AtomicBool,
    /// The setting in seconds (0: off).
    after: AtomicU64,
    wake: tokio::sync::Notify,
    /// Where the next scan starts in the open conversations (their order), if not at the start.
    cursor: Mutex<Option<u64>>,
}

impl Closer {
    /// A closer with the stored setting.
    pub fn new(after: Option<u64>) -> Closer {
        let c = Closer::default();
        c.after.store(after.unwrap_or(0), Ordering::Relaxed);
        c
    }

    /// Binds the closer to its hub and starts its scans.
    pub fn start(self: &Arc<Self>, hub: &Arc<Hub>) {
        if self.started.swap(true, Ordering::Relaxed) {
            return;
        }
        let (closer, weak) = (self.clone(), Arc::downgrade(hub));
        actix_web::rt::spawn(async move {
            loop {
                let after = closer.after.load(Ordering::Relaxed);
                if after > 0 {
                    let Some(hub) = weak.upgrade() else { return };
                    scan(&hub, &closer, after).await;
                }
                let period = match after {
                    0 => MAX_PERIOD,
                    s => (Duration::from_secs(s) / 4).clamp(Duration::from_millis(100), MAX_PERIOD),
                };
                let _ = actix_web::rt::time::timeout(period, closer.wake.notified()).await;
            }
        });
    }

    /// The period, if on.
    pub fn after(&self) -> Option<u64> {
        Some(self.after.load(Ordering::Relaxed)).filter(|s| *s > 0)
    }

    /// Sets the period (the caller stored it first); a scan follows at once.
    pub fn set(&self, after: Option<u64>) {
        self.after.store(after.unwrap_or(0), Ordering::Relaxed);
        self.wake.notify_one();
    }
}

/// An open conversation found idle: its id and its latest event.
struct Idle {
    conversation: ConversationId,
    last_seq: u64,
}

/// Reads up to [`PAGE`] open conversations from `after` (their order), keeping those whose
/// latest event is older than `cutoff`; returns them and where to go on (None: the end).
fn read(s: &Store, after: Option<u64>, cutoff: Ts) -> Result<(Vec<Idle>, Option<u64>), StoreError> {
    let page = s.index_asc(names::CONV_OPEN, after, PAGE)?;
    let next = Store::next_after(&page, PAGE);
    let mut idle = Vec::new();
    for (_, id, _) in page {
        let Some((seq, at)) = s.latest_event_of(&id)? else {
            continue;
        };
        if at < cutoff {
            idle.push(Idle {
                conversation: ConversationId::from(id),
                last_seq: seq,
            });
        }
    }
    Ok((idle, next))
}

async fn scan(hub: &Arc<Hub>, closer: &Closer, after: u64) {
    let cutoff = Ts(crate::now().0 - (after as i64).saturating_mul(1000));
    let from = *lock(&closer.cursor);
    let (idle, next) = match hub.store.read(move |s| read(s, from, cutoff)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "Idle conversations could not be read.");
            return;
        }
    };
    *lock(&closer.cursor) = next;
    let notes = format!(
        "Closed automatically after {} without activity",
        span(after)
    );
    let results = futures_util::future::join_all(idle.iter().map(|i| {
        let cmd = Command::AutoClose {
            notes: notes.clone(),
            last_seq: i.last_seq,
            latest_seq: 0,
        };
        hub.exec(&i.conversation, cmd, Who::System, None)
    }))
    .await;
    let mut closed = 0usize;
    for (i, res) in idle.iter().zip(results) {
        match res {
            Ok(_) => {
                closed += 1;
                crate::metrics::record_auto_close();
            }
            // A message waits, or it moved since: not idle after all.
            Err(e) => {
                tracing::debug!(conversation_id = %i.conversation, error = %e, "Not closed automatically.")
            }
        }
    }
    if !idle.is_empty() {
        tracing::info!(idle = idle.len(), closed, "Idle conversations closed.");
    }
}

/// "3 hours", "2 days", "45 minutes", "90 seconds": the setting in words, for the notes.
pub fn span(seconds: u64) -> String {
    let (n, unit) = if seconds.is_multiple_of(86_400) {
        (seconds / 86_400, "day")
    } else if seconds.is_multiple_of(3600) {
        (seconds / 3600, "hour")
    } else if seconds.is_multiple_of(60) {
        (seconds / 60, "minute")
    } else {
        (seconds, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_setting_reads_in_the_largest_whole_unit() {
        for (s, words) in [
            (1, "1 second"),
            (90, "90 seconds"),
            (120, "2 minutes"),
            (3600, "1 hour"),
            (5400, "90 minutes"),
            (172_800, "2 days"),
        ] {
            assert_eq!(super::span(s), words);
        }
    }
}
