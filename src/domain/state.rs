//! The state of one conversation (its messages and session), evolved only by events.

use super::events::*;
use super::ids::*;
use super::model::*;
use std::collections::HashMap;

/// Everything a conversation actor owns. `conversation` is `None` until the
/// `conversation.opened` event.
#[derive(Clone, Debug, Default)]
pub struct ConversationState {
    pub conversation: Option<Conversation>,
    pub messages: Vec<Message>,
    index: HashMap<MessageId, usize>,
    /// When the first reply (agent or bot) was written: first-response time.
    pub first_reply_at: Option<Ts>,
    /// When the conversation was first closed: resolution time.
    pub first_closed_at: Option<Ts>,
}

impl ConversationState {
    /// The message with this id, if it belongs to this conversation.
    pub fn message(&self, id: &MessageId) -> Option<&Message> {
        self.index.get(id).map(|&i| &self.messages[i])
    }

    /// Applies one durable (or about-to-be-durable) event. Events that do not concern
    /// this state are ignored, so a replay of the log is always safe.
    pub fn apply_event(&mut self, ev: &Event) {
        let seq = ev.seq;
        match &ev.body {
            EventBody::ConversationOpened { conversation } => {
                let mut c = conversation.clone();
                c.seq = seq;
                c.opened_seq = seq;
                self.conversation = Some(c);
            }
            EventBody::ConversationReopened { .. } => {
                if let Some(c) = self.conversation.as_mut() {
                    c.state = ConvState::Open;
                    c.seq = seq;
                }
            }
            EventBody::MessageCreated { message } => {
                let mut m = message.clone();
                m.seq = seq;
                if let Some(&i) = self.index.get(&m.id) {
                    self.messages[i] = m;
                } else {
                    self.index.insert(m.id.clone(), self.messages.len());
                    self.messages.push(m);
                }
            }
            EventBody::StatusChanged(ch) => {
                if let Some(&i) = self.index.get(&ch.message_id) {
                    let m = &mut self.messages[i];
                    m.status = ch.to;
                    m.assignee = ch.assignee.clone();
                    m.seq = seq;
                    m.hold_until = if ch.to == Status::OnHold {
                        ch.hold_until
                    } else {
                        None
                    };
                    if let Some(q) = &ch.question {
                        m.help = Some(Help {
                            requested_by: ch.by.clone(),
                            question: q.clone(),
                            answer: None,
                        });
                    }
                    if let (Some(a), Some(h)) = (&ch.answer, m.help.as_mut()) {
                        h.answer = Some(a.clone());
                    }
                }
            }
            EventBody::ConversationClosed { .. } => {
                self.first_closed_at.get_or_insert(ev.at);
                if let Some(c) = self.conversation.as_mut() {
                    c.state = ConvState::Closed;
                    c.seq = seq;
                }
            }
            EventBody::SessionEnded { .. } => {
                if let Some(c) = self.conversation.as_mut() {
                    c.session = SessionState::Ended;
                    c.seq = seq;
                }
            }
            EventBody::Spam { spam, .. } => {
                if let Some(c) = self.conversation.as_mut() {
                    c.spam = *spam;
                    c.seq = seq;
                }
            }
            EventBody::Bot { active, .. } => {
                if let Some(c) = self.conversation.as_mut() {
                    c.bot_active = *active;
                    c.seq = seq;
                }
            }
            EventBody::Owner { owner, .. } => {
                if let Some(c) = self.conversation.as_mut() {
                    c.owner = Some(owner.clone());
                    c.seq = seq;
                }
            }
            EventBody::ReplyCreated { .. } => {
                self.first_reply_at.get_or_insert(ev.at);
            }
            EventBody::CommentCreated { .. } | EventBody::PresenceChanged { .. } => {}
        }
    }
}
