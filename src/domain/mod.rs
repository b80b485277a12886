//! The pure domain: ids, the message status machine, conversations, assistants and events.
//! No actix, no sled, no clock reads: everything time- or presence-dependent is an input,
//! so the rules can be property-tested without a server.

pub mod apply;
pub mod assistant;
pub mod events;
pub mod ids;
pub mod messages;
pub mod model;
pub mod state;

pub use apply::{apply, Command, DomainError, OpenInfo};
pub use assistant::{Assistant, BotDecision, Rule};
pub use events::{Event, EventBody, StatusChange};
pub use ids::*;
pub use messages::Messages;
pub use model::*;
pub use state::{ConversationState, Snapshot};

#[cfg(test)]
mod proptests;
