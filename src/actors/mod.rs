//! The actors: one per conversation (found through the registry), presence, and the
//! hold timers that feed conversations.

pub mod conversation;
pub mod presence;
pub mod registry;
pub mod timers;
