//! The actors: one per conversation (found through the registry), presence, and the
//! hold timers and the automation (assignment, closing idle conversations) that feed
//! conversations.

pub mod automation;
pub mod closer;
pub mod conversation;
pub mod presence;
pub mod registry;
pub mod router;
pub mod timers;
