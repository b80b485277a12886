//! Events: the timeline entries of PROTOCOL §7. The same types are stored in the log and
//! sent on the wire, so the log is the single source of truth a conversation is rebuilt from.

use super::ids::*;
use super::model::*;
use serde::{Deserialize, Serialize};

/// The `kind` and `data` of an event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data")]
pub enum EventBody {
    #[serde(rename = "conversation.opened")]
    ConversationOpened { conversation: Conversation },
    /// `by` (an extension) names the agent whose reopen of a message reopened the
    /// conversation; it is absent when a customer message did.
    #[serde(rename = "conversation.reopened")]
    ConversationReopened {
        conversation: Conversation,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    #[serde(rename = "message.created")]
    MessageCreated { message: Message },
    #[serde(rename = "message.status_changed")]
    StatusChanged(StatusChange),
    #[serde(rename = "reply.created")]
    ReplyCreated { reply: Reply },
    #[serde(rename = "comment.created")]
    CommentCreated { comment: Comment },
    #[serde(rename = "conversation.closed")]
    ConversationClosed { by: String, notes: Option<String> },
    #[serde(rename = "session.ended")]
    SessionEnded { by: String, reason: Option<String> },
    #[serde(rename = "conversation.spam")]
    Spam { spam: bool, by: String },
    #[serde(rename = "conversation.bot")]
    Bot { active: bool, by: String },
    #[serde(rename = "presence.changed")]
    PresenceChanged { agent_id: AgentId, presence: String },
    #[serde(rename = "conversation.owner")]
    Owner { owner: String, by: String },
    /// An extension: the customer rated the conversation (1 to 5, with an optional
    /// comment), once it was closed or its session ended; a later rating replaces it.
    #[serde(rename = "conversation.rated")]
    Rated {
        score: u8,
        comment: Option<String>,
        contact_id: ContactId,
    },
    /// An extension: the customer went to another page of the site that embeds the
    /// widget while the conversation was open (respond.io's "page change" event): its
    /// address and title, and the customer (as a rating names them).
    #[serde(rename = "conversation.page")]
    Page {
        url: String,
        title: Option<String>,
        contact_id: ContactId,
    },
}

/// `message.status_changed` data. `help` and `hold_until` extend the protocol's fields so
/// that the state can be rebuilt from the log alone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    pub message_id: MessageId,
    pub from: Status,
    pub to: Status,
    pub assignee: Option<String>,
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    #[serde(default)]
    pub hold_until: Option<Ts>,
}

impl EventBody {
    /// The wire `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::ConversationOpened { .. } => "conversation.opened",
            EventBody::ConversationReopened { .. } => "conversation.reopened",
            EventBody::MessageCreated { .. } => "message.created",
            EventBody::StatusChanged(_) => "message.status_changed",
            EventBody::ReplyCreated { .. } => "reply.created",
            EventBody::CommentCreated { .. } => "comment.created",
            EventBody::ConversationClosed { .. } => "conversation.closed",
            EventBody::SessionEnded { .. } => "session.ended",
            EventBody::Spam { .. } => "conversation.spam",
            EventBody::Bot { .. } => "conversation.bot",
            EventBody::PresenceChanged { .. } => "presence.changed",
            EventBody::Owner { .. } => "conversation.owner",
            EventBody::Rated { .. } => "conversation.rated",
            EventBody::Page { .. } => "conversation.page",
        }
    }

    /// Whether a contact's widget may see this event (PROTOCOL §5).
    pub fn visible_to_contact(&self) -> bool {
        matches!(
            self,
            EventBody::MessageCreated { .. }
                | EventBody::ReplyCreated { .. }
                | EventBody::SessionEnded { .. }
        )
    }

    /// Sets the seq of the object this event carries (it was created by this event).
    fn stamp(&mut self, seq: u64) {
        match self {
            EventBody::ConversationOpened { conversation }
            | EventBody::ConversationReopened { conversation, .. } => {
                conversation.seq = seq;
                if let EventBody::ConversationOpened { conversation } = self {
                    conversation.opened_seq = seq;
                }
            }
            EventBody::MessageCreated { message } => message.seq = seq,
            EventBody::ReplyCreated { reply } => reply.seq = seq,
            EventBody::CommentCreated { comment } => comment.seq = seq,
            _ => {}
        }
    }
}

/// A durable event: a body with its hub-wide sequence number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    #[serde(flatten)]
    pub body: EventBody,
    pub conversation_id: Option<ConversationId>,
    pub at: Ts,
}

impl Event {
    /// Builds an event and stamps `seq` into the object it carries.
    pub fn new(
        seq: u64,
        conversation_id: Option<ConversationId>,
        at: Ts,
        mut body: EventBody,
    ) -> Self {
        body.stamp(seq);
        Event {
            seq,
            body,
            conversation_id,
            at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_round_trips_through_json_with_wire_field_names() {
        let ev = Event::new(
            7,
            Some(ConversationId::from("c1")),
            Ts(1_700_000_000_123),
            EventBody::StatusChanged(StatusChange {
                message_id: MessageId::from("m1"),
                from: Status::Pending,
                to: Status::Assigned,
                assignee: Some("a1".into()),
                by: "a1".into(),
                question: None,
                answer: None,
                hold_until: None,
            }),
        );
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(json["seq"], 7);
        assert_eq!(json["kind"], "message.status_changed");
        assert_eq!(json["conversation_id"], "c1");
        assert_eq!(json["at"], "2023-11-14T22:13:20.123Z");
        assert_eq!(json["data"]["from"], "pending");
        assert_eq!(json["data"]["to"], "assigned");
        assert!(json["data"].get("question").is_none());
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, ev);
    }
}
