//! Token-bucket rate limits (PROTOCOL §2): per contact and per IP on widget sends, per
//! agent on actions. Lock-free per key (one DashMap shard lock for a few nanoseconds).

use dashmap::DashMap;
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
/// Agents: 40 actions/s, bursts of 80.
pub const AGENT: Limit = Limit {
    rate: 40.0,
    burst: 80.0,
};

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Buckets by key (`c/…`, `ip/…`, `a/…`).
pub struct Limiter {
    enabled: bool,
    buckets: DashMap<String, Bucket>,
}

impl Limiter {
    /// A limiter; `enabled = false` allows everything.
    pub fn new(enabled: bool) -> Self {
        Limiter {
            enabled,
            buckets: DashMap::new(),
        }
    }

    /// Takes one token from `key`'s bucket; false when it is empty.
    pub fn allow(&self, key: &str, limit: Limit) -> bool {
        if !self.enabled {
            return true;
        }
        let now = Instant::now();
        if self.buckets.len() > 100_000 {
            // Forget buckets that are full again (idle keys).
            self.buckets.retain(|_, b| {
                now.duration_since(b.last).as_secs_f64() * limit.rate + b.tokens < limit.burst
            });
        }
        let mut b = self.buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: limit.burst,
            last: now,
        });
        let refill = now.duration_since(b.last).as_secs_f64() * limit.rate;
        b.tokens = (b.tokens + refill).min(limit.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
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
}
