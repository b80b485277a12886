//! The state of one conversation (its messages and session), evolved only by events.

use super::events::*;
use super::ids::*;
use super::messages::Messages;
use super::model::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// Everything a conversation actor owns. `conversation` is `None` until the
/// `conversation.opened` event. A clone (each command is decided on one, see `apply`)
/// shares the messages (in chunks, copied on write: [`Messages`]) and their index instead
/// of copying them, so a command costs about the same in a conversation of 10 messages
/// or 10,000 (but for the commands that look at every message: reply, close, spam).
#[derive(Clone, Debug, Default)]
pub struct ConversationState {
    pub conversation: Option<Conversation>,
    pub messages: Messages,
    /// Positions of `messages[..index.len()]`; the few messages after those (added to a
    /// clone that shares the index) are found by a scan.
    index: Arc<HashMap<MessageId, usize>>,
    /// When the first reply (agent or bot) was written: first-response time.
    pub first_reply_at: Option<Ts>,
    /// When the conversation was first closed: resolution time.
    pub first_closed_at: Option<Ts>,
}

/// A conversation's state as of event `seq`, stored now and then so that a long
/// conversation is restored from it plus the few events after it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub seq: u64,
    pub conversation: Option<Conversation>,
    pub opened_seq: u64,
    pub messages: Vec<Message>,
    pub first_reply_at: Option<Ts>,
    pub first_closed_at: Option<Ts>,
}

impl ConversationState {
    /// The state as of event `seq` (the last one applied).
    pub fn snapshot(&self, seq: u64) -> Snapshot {
        Snapshot {
            seq,
            opened_seq: self
                .conversation
                .as_ref()
                .map(|c| c.opened_seq)
                .unwrap_or(0),
            conversation: self.conversation.clone(),
            messages: self.messages.iter().map(|m| Message::clone(m)).collect(),
            first_reply_at: self.first_reply_at,
            first_closed_at: self.first_closed_at,
        }
    }

    /// The state a snapshot describes.
    pub fn from_snapshot(s: Snapshot) -> Self {
        let mut conversation = s.conversation;
        if let Some(c) = conversation.as_mut() {
            c.opened_seq = s.opened_seq;
        }
        let index = s
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| (m.id.clone(), i))
            .collect();
        ConversationState {
            conversation,
            messages: s.messages.into_iter().map(Arc::new).collect(),
            index: Arc::new(index),
            first_reply_at: s.first_reply_at,
            first_closed_at: s.first_closed_at,
        }
    }

    /// The message with this id, if it belongs to this conversation.
    pub fn message(&self, id: &MessageId) -> Option<&Message> {
        self.position(id).map(|i| &*self.messages[i])
    }

    fn position(&self, id: &MessageId) -> Option<usize> {
        self.index.get(id).copied().or_else(|| {
            let indexed = self.index.len();
            self.messages
                .iter_from(indexed)
                .find(|(_, m)| &m.id == id)
                .map(|(i, _)| i)
        })
    }

    /// Indexes the messages after the indexed ones, unless the index is shared.
    fn reindex_tail(&mut self) {
        let messages = &self.messages;
        if let Some(index) = Arc::get_mut(&mut self.index) {
            for (i, m) in messages.iter_from(index.len()) {
                index.insert(m.id.clone(), i);
            }
        }
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
                if let Some(i) = self.position(&m.id) {
                    self.messages.set(i, Arc::new(m));
                } else {
                    self.messages.push(Arc::new(m));
                    self.reindex_tail();
                }
            }
            EventBody::StatusChanged(ch) => {
                if let Some(i) = self.position(&ch.message_id) {
                    let m = self.messages.make_mut(i);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{apply, Actor, Command, OpenInfo, ReplyId};

    #[test]
    fn a_snapshot_restores_the_same_state() {
        let mut st = ConversationState::default();
        let contact = Actor::Contact(ContactId::from("k"));
        let mut seq = 0;
        for i in 0..3 {
            let open = (i == 0).then(|| OpenInfo {
                conversation_id: ConversationId::from("c"),
                contact_id: ContactId::from("k"),
                channel: "web".into(),
            });
            let cmd = Command::CustomerMessage {
                id: MessageId(format!("m{i}")),
                text: "hi".into(),
                open,
                assistant: None,
                bot_reply_id: ReplyId::from("r"),
            };
            for b in apply(&st, cmd, &contact, Ts(5)).unwrap() {
                seq += 1;
                st.apply_event(&Event::new(seq, Some(ConversationId::from("c")), Ts(5), b));
            }
        }
        let json = serde_json::to_vec(&st.snapshot(seq)).unwrap();
        let back = ConversationState::from_snapshot(serde_json::from_slice(&json).unwrap());
        assert_eq!(back.conversation, st.conversation);
        assert_eq!(back.conversation.as_ref().unwrap().opened_seq, 1);
        assert_eq!(back.messages, st.messages);
        assert_eq!(
            back.message(&MessageId::from("m2")),
            st.message(&MessageId::from("m2"))
        );
    }
}
