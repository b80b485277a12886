//! The objects of PROTOCOL §4, as the domain holds them and the wire shows them.

use super::ids::*;
use serde::{Deserialize, Serialize};

/// The seven statuses of a customer message (PROTOCOL §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Assigned,
    OnHold,
    HelpRequested,
    HelpAnswered,
    Answered,
    Archived,
}

impl Status {
    /// Every status, for exhaustive tests and counters.
    pub const ALL: [Status; 7] = [
        Status::Pending,
        Status::Assigned,
        Status::OnHold,
        Status::HelpRequested,
        Status::HelpAnswered,
        Status::Answered,
        Status::Archived,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Assigned => "assigned",
            Status::OnHold => "on_hold",
            Status::HelpRequested => "help_requested",
            Status::HelpAnswered => "help_answered",
            Status::Answered => "answered",
            Status::Archived => "archived",
        }
    }

    /// Statuses that a close turns into `archived`.
    pub fn is_open(self) -> bool {
        !matches!(self, Status::Answered | Status::Archived)
    }
}

/// Staff roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Agent,
    Supervisor,
    Admin,
}

impl Role {
    /// Supervisors and admins may assign others and answer help requests.
    pub fn is_supervisor(self) -> bool {
        matches!(self, Role::Supervisor | Role::Admin)
    }
}

/// A help request attached to a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Help {
    pub requested_by: String,
    pub question: String,
    pub answer: Option<String>,
}

/// A customer message with its status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub contact_id: ContactId,
    pub text: String,
    pub at: Ts,
    pub seq: u64,
    pub status: Status,
    /// An agent id or `bot:ASSISTANT_ID`.
    pub assignee: Option<String>,
    pub help: Option<Help>,
    pub hold_until: Option<Ts>,
}

/// What a contact may see of its own message (PROTOCOL §4).
#[derive(Clone, Debug, Serialize)]
pub struct ContactMessage<'a> {
    pub id: &'a MessageId,
    pub conversation_id: &'a ConversationId,
    pub contact_id: &'a ContactId,
    pub text: &'a str,
    pub at: Ts,
    pub seq: u64,
}

impl Message {
    /// The contact's view of this message.
    pub fn for_contact(&self) -> ContactMessage<'_> {
        ContactMessage {
            id: &self.id,
            conversation_id: &self.conversation_id,
            contact_id: &self.contact_id,
            text: &self.text,
            at: self.at,
            seq: self.seq,
        }
    }
}

/// Who wrote a reply or comment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    pub kind: AuthorKind,
    pub id: String,
}

/// Kind of author.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorKind {
    Agent,
    Bot,
}

/// A brand reply to the contact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub id: ReplyId,
    pub conversation_id: ConversationId,
    pub author: Author,
    pub text: String,
    pub at: Ts,
    pub seq: u64,
}

/// An internal note, never shown to the contact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub id: CommentId,
    pub conversation_id: ConversationId,
    pub author: Author,
    pub text: String,
    pub mentions: Vec<String>,
    pub at: Ts,
    pub seq: u64,
}

/// Open or closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConvState {
    Open,
    Closed,
}

/// The messaging session of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    Active,
    Ended,
}

/// A conversation (PROTOCOL §4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub contact_id: ContactId,
    pub channel: String,
    pub state: ConvState,
    pub session: SessionState,
    pub spam: bool,
    pub bot_active: bool,
    pub owner: Option<String>,
    pub opened_at: Ts,
    pub seq: u64,
    /// The seq of the `conversation.opened` event: orders conversation lists.
    #[serde(skip)]
    pub opened_seq: u64,
}

impl Conversation {
    /// Open, its session active: the exchange with the customer goes on.
    pub fn goes_on(&self) -> bool {
        self.state == ConvState::Open && self.session == SessionState::Active
    }

    /// Where the customer's page views are noted (an extension): going on, not spam.
    pub fn notes_pages(&self) -> bool {
        self.goes_on() && !self.spam
    }
}

/// Who performs a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    Agent { id: AgentId, role: Role },
    Contact(ContactId),
    Bot(AssistantId),
    System,
}

impl Actor {
    /// The `by` of events: an agent id, `bot:ID` or `system`.
    pub fn by(&self) -> String {
        match self {
            Actor::Agent { id, .. } => id.to_string(),
            Actor::Contact(id) => id.to_string(),
            Actor::Bot(id) => bot_ref(id),
            Actor::System => "system".to_string(),
        }
    }
}

/// `bot:ASSISTANT_ID`, how a bot appears as assignee and `by`.
pub fn bot_ref(id: &AssistantId) -> String {
    format!("bot:{}", id.0)
}

/// A saved reply (an extension, `routes/saved.rs`): a canned answer and the shortcut an
/// agent types to insert it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SavedReply {
    pub id: String,
    pub shortcut: String,
    pub text: String,
    pub updated_at: Ts,
    pub updated_by: AgentId,
}
