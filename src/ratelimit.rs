//! Token-bucket rate limits (PROTOCOL §2): per contact and per IP on widget sends, per
//! agent on actions. Lock-free per key (one DashMap shard lock for a few nanoseconds).

use dashmap::DashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// A limit: `rate` tokens per second, bursts of `burst`.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub rate: f64,
    pub burst: f64,
}

/// Contacts: 10 messages/s, bursts of 20.
pub const CONTACT: Limit = Limit {
    rate: 10.0,
    burst: 20.0,
};
/// What a contact is always allowed (PROTOCOL §2: never refuse a contact sending ≤ 5
/// messages/s): sends within it do not draw on their IP address's budget.
pub const CONTACT_GUARANTEED: Limit = Limit {
    rate: 5.0,
    burst: 10.0,
};
/// IP addresses (widget sends beyond [`CONTACT_GUARANTEED`]): 50/s, bursts of 100.
pub const IP: Limit = Limit {
    rate: 50.0,
    burst: 100.0,
};
/// New widget sessions per IP address (`POST /api/widget/session`, which needs no
/// token and writes a contact): 50/s, bursts of 1,000. Generous: a shop's visitors
/// behind one address open sessions on their first message, not on page views; it
/// bounds one client filling the disk (a black-box probe opened 4,800 a second, 256 MB
/// of store in 50 s).
pub const SESSION_IP: Limit = Limit {
    rate: 50.0,
    burst: 1000.0,
};
/// Page views a contact's widget reports (`POST /api/widget/page`, each a durable
/// event while its conversation is open): 1/s, bursts of 20 (someone clicking through a
/// shop), apart from its sends, which they never slow down.
pub const PAGE: Limit = Limit {
    rate: 1.0,
    burst: 20.0,
};
/// Agents: 40 actions/s, bursts of 80.
pub const AGENT: Limit = Limit {
    rate: 40.0,
    burst: 80.0,
};

struct Bucket {
    tokens: f64,
    last: Instant,
    /// The limit this bucket was drawn under, so that a sweep judges it by its own.
    limit: Limit,
}

impl Bucket {
    /// Full again at `now`: forgetting it changes nothing the next call would decide.
    fn full_at(&self, now: Instant) -> bool {
        now.duration_since(self.last).as_secs_f64() * self.limit.rate + self.tokens
            >= self.limit.burst
    }
}

/// Buckets held before the first sweep of full ones.
const SWEEP_FLOOR: usize = 100_000;

/// Buckets by key (`c/…`, `ip/…`, `a/…`).
pub struct Limiter {
    enabled: bool,
    buckets: DashMap<String, Bucket>,
    /// How many buckets may be held before the next sweep: twice what the last sweep
    /// kept, and at least [`SWEEP_FLOOR`], so that a sweep (a pass over every bucket)
    /// comes once per that many new keys, however many keys are busy at once.
    sweep_at: AtomicUsize,
    /// The least `sweep_at` may be.
    floor: usize,
}

impl Limiter {
    /// A limiter; `enabled = false` allows everything.
    pub fn new(enabled: bool) -> Self {
        Self::with_floor(enabled, SWEEP_FLOOR)
    }

    fn with_floor(enabled: bool, floor: usize) -> Self {
        Limiter {
            enabled,
            buckets: DashMap::new(),
            sweep_at: AtomicUsize::new(floor),
            floor,
        }
    }

    /// Takes one token from `key`'s bucket; false when it is empty.
    pub fn allow(&self, key: &str, limit: Limit) -> bool {
        if !self.enabled {
            return true;
        }
        let now = Instant::now();
        if let Some(mut b) = self.buckets.get_mut(key) {
            return Self::take(&mut b, limit, now);
        }
        if self.buckets.len() >= self.sweep_at.load(Ordering::Relaxed) {
            self.sweep(now);
        }
        let mut b = self.buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: limit.burst,
            last: now,
            limit,
        });
        Self::take(&mut b, limit, now)
    }

    fn take(b: &mut Bucket, limit: Limit, now: Instant) -> bool {
        let refill = now.duration_since(b.last).as_secs_f64() * limit.rate;
        b.tokens = (b.tokens + refill).min(limit.burst);
        b.last = now;
        b.limit = limit;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Forgets the buckets that are full again (idle keys).
    fn sweep(&self, now: Instant) {
        self.buckets.retain(|_, b| !b.full_at(now));
        let kept = self.buckets.len();
        self.sweep_at
            .store((kept * 2).max(self.floor), Ordering::Relaxed);
        tracing::debug!(kept, "Rate-limit buckets swept.");
    }

    #[cfg(test)]
    fn held(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_bucket_refuses() {
        let l = Limiter::new(true);
        let lim = Limit {
            rate: 0.001,
            burst: 3.0,
        };
        assert!((0..3).all(|_| l.allow("k", lim)));
        assert!(!l.allow("k", lim));
        assert!(l.allow("other", lim), "keys are independent");
    }

    #[test]
    fn disabled_allows_everything() {
        let l = Limiter::new(false);
        let lim = Limit {
            rate: 0.0,
            burst: 0.0,
        };
        assert!((0..1000).all(|_| l.allow("k", lim)));
    }

    #[test]
    fn a_sweep_judges_each_bucket_by_its_own_limit() {
        let l = Limiter::with_floor(true, 3);
        let slow = Limit {
            rate: 0.001,
            burst: 2.0,
        };
        let fast = Limit {
            rate: 1e9,
            burst: 2.0,
        };
        assert!(l.allow("slow", slow));
        assert!(l.allow("a", fast));
        assert!(l.allow("b", fast));
        // The fourth key sweeps: the fast buckets are full again, the slow one is not.
        assert!(l.allow("c", fast));
        assert_eq!(
            l.held(),
            2,
            "kept the draining bucket and added the new one"
        );
        assert!(l.allow("slow", slow));
        assert!(!l.allow("slow", slow), "the slow bucket kept its count");
    }

    #[test]
    fn sweeps_wait_for_twice_what_the_last_one_kept() {
        let l = Limiter::with_floor(true, 4);
        let busy = Limit {
            rate: 0.001,
            burst: 5.0,
        };
        for k in 0..4 {
            assert!(l.allow(&format!("k{k}"), busy));
        }
        // Nothing is full again: the sweep keeps all four and waits for eight.
        assert!(l.allow("k4", busy));
        assert_eq!(l.held(), 5);
        assert_eq!(l.sweep_at.load(Ordering::Relaxed), 8);
        for k in 5..8 {
            assert!(l.allow(&format!("k{k}"), busy));
        }
        assert_eq!(l.held(), 8, "no sweep before eight buckets");
    }
}
