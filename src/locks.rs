//! Named async locks: the sends of one contact, a repeated `client_id`, a registry edit.
//! A lock exists only while someone holds or waits for it. And the hub's admission:
//! how many agents' commands run at once.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Mutex, Semaphore, SemaphorePermit};

/// Locks a std mutex held only for short, panic-free updates: a poisoned one (a thread
/// panicked while holding it) still holds a consistent value.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A map of async mutexes by name, each removed when its last user leaves.
#[derive(Default)]
pub struct NamedLocks {
    map: crate::IdMap<String, Arc<Mutex<()>>>,
}

/// One user of a named lock. Dropping it (also when the future that holds it is dropped
/// midway, e.g. a client that hangs up) removes the entry if nobody else uses it.
struct Entry<'a> {
    locks: &'a NamedLocks,
    name: String,
    lock: Option<Arc<Mutex<()>>>,
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        drop(self.lock.take());
        self.locks
            .map
            .remove_if(&self.name, |_, l| Arc::strong_count(l) == 1);
    }
}

impl NamedLocks {
    /// Runs `f` while holding the lock called `name`: runs under the same name are serial,
    /// runs under different names do not wait for each other.
    pub async fn run<T>(&self, name: String, f: impl Future<Output = T>) -> T {
        let lock = self.map.entry(name.clone()).or_default().clone();
        let entry = Entry {
            locks: self,
            name,
            lock: Some(lock),
        };
        let mutex = entry.lock.as_ref().expect("set above");
        let _guard = mutex.lock().await;
        f.await
    }

    /// How many names are in use (held or awaited).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no name is in use.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// At most `limit` holders at once; the others wait in arrival order (FIFO, so nobody
/// starves). A limit of 0 admits everyone at once.
pub struct Admission {
    slots: Option<Semaphore>,
}

impl Admission {
    pub fn new(limit: usize) -> Self {
        Admission {
            slots: (limit > 0).then(|| Semaphore::new(limit)),
        }
    }

    /// Waits for a slot, which is given back when the returned guard drops (also when
    /// the future holding it is dropped, e.g. a client that hangs up).
    pub async fn enter(&self) -> Option<SemaphorePermit<'_>> {
        let slots = self.slots.as_ref()?;
        let asked = Instant::now();
        // `acquire` fails only on a closed semaphore, and this one is never closed.
        let slot = slots.acquire().await.ok();
        crate::metrics::METRICS.agent_admission(asked.elapsed());
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn same_name_is_serial_and_different_names_are_not() {
        let locks = Arc::new(NamedLocks::default());
        let (release, held) = oneshot::channel::<()>();
        let (started, is_started) = oneshot::channel::<()>();
        let l = locks.clone();
        let first = tokio::spawn(async move {
            l.run("a/1/x".into(), async move {
                started.send(()).unwrap();
                held.await.unwrap();
            })
            .await
        });
        is_started.await.unwrap();
        // Another name runs at once while "a/1/x" is held.
        assert_eq!(locks.run("a/1/y".into(), async { 7 }).await, 7);
        // The same name waits until the first run lets go.
        let ran = Arc::new(AtomicUsize::new(0));
        let (l, r) = (locks.clone(), ran.clone());
        let second = tokio::spawn(async move {
            l.run(
                "a/1/x".into(),
                async move { r.fetch_add(1, Ordering::SeqCst) },
            )
            .await
        });
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        assert_eq!(ran.load(Ordering::SeqCst), 0, "ran while the name was held");
        release.send(()).unwrap();
        first.await.unwrap();
        assert_eq!(second.await.unwrap(), 0);
        assert!(locks.is_empty(), "{} names left", locks.len());
    }

    #[tokio::test]
    async fn a_run_dropped_midway_leaves_no_entry() {
        let locks = NamedLocks::default();
        let (_keep, never) = oneshot::channel::<()>();
        let run = locks.run("c/1".into(), async move {
            let _ = never.await;
        });
        // Poll it once (it takes the lock and waits), then drop it like a hung-up client.
        assert!(futures_util::FutureExt::now_or_never(run).is_none());
        assert!(locks.is_empty(), "{} names left", locks.len());
        // The name is usable again.
        assert_eq!(locks.run("c/1".into(), async { 1 }).await, 1);
        assert!(locks.is_empty());
    }

    /// Polls `f` once: whether it is still waiting.
    fn pending<F: Future + Unpin>(f: &mut F) -> bool {
        futures_util::FutureExt::now_or_never(f).is_none()
    }

    #[tokio::test]
    async fn admission_holds_the_third_until_one_of_two_leaves_then_serves_in_order() {
        let adm = Admission::new(2);
        let a = adm.enter().await.expect("slot");
        let b = adm.enter().await.expect("slot");
        let mut third = Box::pin(adm.enter());
        let mut fourth = Box::pin(adm.enter());
        assert!(pending(&mut third));
        assert!(pending(&mut fourth));
        drop(b);
        // The first in line gets the freed slot, the one behind it still waits.
        assert!(pending(&mut fourth));
        let c = third.await.expect("slot");
        assert!(pending(&mut fourth));
        drop(a);
        let d = fourth.await.expect("slot");
        drop((c, d));
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_takes_no_slot_and_no_limit_admits_all() {
        let adm = Admission::new(1);
        let held = adm.enter().await;
        // Poll once (it queues), then drop it like a hung-up client.
        assert!(futures_util::FutureExt::now_or_never(adm.enter()).is_none());
        drop(held);
        assert!(futures_util::FutureExt::now_or_never(adm.enter()).is_some());
        let open = Admission::new(0);
        let all: Vec<_> = (0..100).map(|_| open.enter()).collect();
        for e in all {
            assert!(futures_util::FutureExt::now_or_never(e).is_some());
        }
    }
}
