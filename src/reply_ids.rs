//! What the hub remembers of the `client_id`s each agent has replied with (PROTOCOL §5:
//! a repeat answers 200 with the first reply), so that a reply with a new client id
//! does not read the store for a record that is not there.
//!
//! An agent's reply records are `keys::IDEMPOTENCY` + `a/{agent}` + client id. The
//! first reply with a client id of an agent since the hub started reads the client ids
//! of all of them (one prefix scan), as fingerprints; from then on only a fingerprint
//! match reads the record. Each durable reply adds its own.
//!
//! One async lock per agent orders the scan against the replies that note themselves:
//! a reply made durable before the scan is in what the scan reads, one made durable
//! after it is noted into the loaded set. A reply notes its client id whatever its
//! outcome (a failed command may have been written for all the hub knows): a client id
//! noted in vain only costs its repeat a read.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Most fingerprints kept for one agent; past it every reply of that agent with a
/// client id reads the store, as before this cache existed (8 bytes each, and more in
/// the set's own table).
pub const MAX_PER_AGENT: usize = 200_000;

#[derive(Debug, Default)]
enum Known {
    /// Not read since the hub started (or its read failed).
    #[default]
    Unknown,
    /// Every client id the agent has replied with, as fingerprints.
    Ids(HashSet<u64>),
    /// More than [`MAX_PER_AGENT`]: the store tells each time.
    TooMany,
}

/// The agents' reply client ids, by scope (`a/{agent}`).
#[derive(Default)]
pub struct ReplyIds {
    scopes: crate::IdMap<String, Arc<Mutex<Known>>>,
}

impl ReplyIds {
    fn scope(&self, scope: &str) -> Arc<Mutex<Known>> {
        if let Some(s) = self.scopes.get(scope) {
            return s.clone();
        }
        self.scopes.entry(scope.to_string()).or_default().clone()
    }

    /// False when the agent has certainly never replied with `client_id`; true when it
    /// may have (its record must be read). `load` reads the fingerprints of every client
    /// id stored for the scope, the first time.
    pub async fn maybe_used<E, F>(&self, scope: &str, client_id: &str, load: F) -> Result<bool, E>
    where
        F: Future<Output = Result<Vec<u64>, E>>,
    {
        let cell = self.scope(scope);
        let mut known = cell.lock().await;
        if matches!(*known, Known::Unknown) {
            let ids = load.await?;
            *known = if ids.len() > MAX_PER_AGENT {
                Known::TooMany
            } else {
                Known::Ids(ids.into_iter().collect())
            };
        }
        Ok(match &*known {
            Known::Ids(ids) => ids.contains(&crate::store::clients::fingerprint(client_id)),
            Known::Unknown | Known::TooMany => true,
        })
    }

    /// Notes a durable reply with `client_id`.
    pub async fn used(&self, scope: &str, client_id: &str) {
        let cell = self.scope(scope);
        let mut known = cell.lock().await;
        if let Known::Ids(ids) = &mut *known {
            ids.insert(crate::store::clients::fingerprint(client_id));
            if ids.len() > MAX_PER_AGENT {
                *known = Known::TooMany;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::clients::fingerprint;
    use std::cell::Cell;

    type Loaded = Result<Vec<u64>, ()>;

    #[tokio::test]
    async fn the_store_is_read_once_then_only_on_a_fingerprint_match() {
        let ids = ReplyIds::default();
        let loads = Cell::new(0);
        let load = |stored: Vec<u64>| {
            loads.set(loads.get() + 1);
            async move { Loaded::Ok(stored) }
        };
        let stored = vec![fingerprint("old")];
        assert!(ids.maybe_used("a/1", "old", load(stored)).await.unwrap());
        assert!(!ids.maybe_used("a/1", "new", load(vec![])).await.unwrap());
        assert_eq!(loads.get(), 2, "a load future is built each call");
        // The second call's load was never awaited: the set was known.
        ids.used("a/1", "new").await;
        assert!(ids.maybe_used("a/1", "new", load(vec![])).await.unwrap());
        // Scopes are separate.
        assert!(!ids.maybe_used("a/2", "new", load(vec![])).await.unwrap());
    }

    #[tokio::test]
    async fn a_load_that_fails_is_tried_again() {
        let ids = ReplyIds::default();
        let failed = ids.maybe_used("a/1", "x", async { Loaded::Err(()) }).await;
        assert_eq!(failed, Err(()));
        assert!(ids
            .maybe_used("a/1", "x", async { Loaded::Ok(vec![fingerprint("x")]) })
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn a_reply_noted_before_the_first_read_is_left_to_the_store() {
        let ids = ReplyIds::default();
        // Nothing loaded yet: the note is not kept (the store holds the record).
        ids.used("a/1", "x").await;
        assert!(!ids
            .maybe_used("a/1", "x", async { Loaded::Ok(vec![]) })
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn too_many_ids_fall_back_to_reading_the_store() {
        let ids = ReplyIds::default();
        let many: Vec<u64> = (0..=MAX_PER_AGENT as u64).collect();
        assert!(ids
            .maybe_used("a/1", "never", async { Loaded::Ok(many) })
            .await
            .unwrap());
        assert!(
            ids.maybe_used("a/1", "never", async { Loaded::Ok(vec![]) })
                .await
                .unwrap(),
            "still too many"
        );
    }
}
