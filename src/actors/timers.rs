//! Hold timers. Every hold with an end is an entry of the store's `timers` index (written
//! with the hold itself), so timers survive restarts: at boot the index — only the holds
//! still running, never the whole store — is read and re-armed. When a timer fires the
//! conversation decides (a hold that was changed meanwhile is left alone).

use crate::domain::{Actor as Who, Command, ConversationId, MessageId, Ts};
use crate::hub::Hub;
use crate::store::index::names;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Schedules hold expiries.
#[derive(Default)]
pub struct Timers {
    hub: OnceLock<std::sync::Weak<Hub>>,
}

impl Timers {
    /// Binds the timers to their hub and re-arms every stored timer.
    pub fn start(&self, hub: &Arc<Hub>) -> Result<usize, crate::store::StoreError> {
        let _ = self.hub.set(Arc::downgrade(hub));
        let entries = hub.store.index_upto(names::TIMERS, u64::MAX - 1)?;
        let n = entries.len();
        for (until, msg, conv) in entries {
            let conv = ConversationId::from(String::from_utf8_lossy(&conv).into_owned());
            self.schedule(MessageId::from(msg), conv, Ts(until as i64));
        }
        Ok(n)
    }

    /// Fires `HoldExpired` for the message at `until`.
    pub fn schedule(&self, message_id: MessageId, conversation_id: ConversationId, until: Ts) {
        let Some(hub) = self.hub.get().cloned() else {
            return;
        };
        let delay = Duration::from_millis((until.0 - crate::now().0).max(0) as u64);
        actix_web::rt::spawn(async move {
            actix_web::rt::time::sleep(delay).await;
            let Some(hub) = hub.upgrade() else { return };
            fire(&hub, message_id, conversation_id, until).await;
        });
    }
}

async fn fire(hub: &Arc<Hub>, message_id: MessageId, conversation_id: ConversationId, until: Ts) {
    for attempt in 0..5u32 {
        // The conversation fills in whether the holder is present.
        let cmd = Command::HoldExpired {
            message_id: message_id.clone(),
            until,
            assignee_present: false,
        };
        match hub.exec(&conversation_id, cmd, Who::System, None).await {
            Ok(_) | Err(crate::error::ApiError::NotFound(_)) => return,
            Err(e) => {
                tracing::warn!(%message_id, attempt, error = %e, "Hold expiry failed; retrying.");
                actix_web::rt::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
        }
    }
}
