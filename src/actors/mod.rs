//! The actors: one per conversation (found through the registry), presence, and the
//! hold timers and the automatic assignment that feed conversations.

pub mod conversation;
pub mod presence;
pub mod registry;
pub mod router;
pub mod timers;
