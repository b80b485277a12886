//! The hub: an actor-based, real-time messaging hub for customer support.
//!
//! # Architecture
//!
//! Data flows one way. An edge — an HTTP route ([`routes`]) or a WebSocket actor
//! ([`ws`]) — authenticates the caller, validates the body and turns the request into a
//! typed [`domain::Command`]. The conversation's actor ([`actors::conversation`], found or
//! started lazily by [`actors::registry`]) applies it to its state with the pure
//! [`domain::apply`], stamps the resulting events with hub-wide sequence numbers and
//! hands them to the [`store`], whose single writer thread makes every queued request
//! durable in one sled batch, flush and `sync_data` (group commit). Only then is the
//! request answered, and the events go to the [`bus`], which fans them out, in `seq`
//! order and through bounded per-socket queues, to the consoles and widgets allowed to
//! see them. [`actors::presence`] knows who is online; [`actors::timers`] wakes holds up.

pub mod actors;
pub mod auth;
pub mod bus;
pub mod config;
pub mod domain;
pub mod error;
pub mod hub;
pub mod locks;
pub mod metrics;
pub mod ratelimit;
pub mod reply_ids;
pub mod routes;
pub mod sends;
pub mod startup;
pub mod store;
pub mod ws;

/// A concurrent map keyed by ids or names the hub itself draws (conversations, contacts,
/// lock names, subscriptions), looked up several times per message: foldhash, seeded per
/// process, instead of SipHash, which took ≈ 2 % of the socket threads at 10,000
/// messages/s. Maps keyed by what a client chooses (tokens, rate-limit keys) keep SipHash.
pub type IdMap<K, V> = dashmap::DashMap<K, V, foldhash::fast::RandomState>;

/// The current time (the only clock read outside tests; the domain gets it as input).
pub fn now() -> domain::Ts {
    domain::Ts(chrono::Utc::now().timestamp_millis())
}

/// mimalloc: sled's write path and the per-socket buffers allocate a lot of small,
/// short-lived objects; mimalloc does this faster and with less fragmentation than glibc.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
