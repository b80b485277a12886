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
    index: Arc<MessageIndex>,
    /// When the first reply (agent or bot) was written: first-response time.
    pub first_reply_at: Option<Ts>,
    /// When the conversation was first closed: resolution time.
    pub first_closed_at: Option<Ts>,
    /// The customer's rating (an extension): score and comment.
    pub rating: Option<(u8, Option<String>)>,
    /// The address of the customer's latest page noted (`conversation.page`).
    pub page: Option<String>,
    /// A bot replied in the conversation (the stats' automation rate, an extension).
    pub bot_replied: bool,
    /// A human took part (replied, or was assigned a message: the owner), or a bot
    /// handed the conversation over (`conversation.bot` inactive): it was not answered
    /// by the bot alone.
    pub human_part: bool,
}

/// Message ids (drawn by the hub, never chosen by a client) to positions: foldhash, as
/// [`crate::IdMap`], since SipHash showed in `perf` of the fan-out at 10,000 msg/s (≈ 1 %
/// of the socket threads, the index growing as messages arrive).
type MessageIndex = HashMap<MessageId, usize, foldhash::fast::RandomState>;

/// Messages per stored snapshot run: sixteen runs (one sled leaf) of ordinary messages
/// stay far below the size at which sled writes a page as a separate file. (Four in
/// unit tests, so that the property tests' short conversations span several runs.)
pub const SNAPSHOT_RUN: usize = if cfg!(test) { 4 } else { 16 };

/// A conversation's state as of event `seq`, stored now and then so that a long
/// conversation is restored from it plus the few events after it. Its messages are
/// stored beside it in runs of [`SNAPSHOT_RUN`] (`message_count` of them), each run
/// rewritten only when one of its messages changed: a long conversation's snapshot
/// costs what changed since the last one, not its length.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub seq: u64,
    pub conversation: Option<Conversation>,
    pub opened_seq: u64,
    /// All the messages, in snapshots written before the runs (empty since).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
    /// How many messages the runs hold; `None` in snapshots written before the runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_count: Option<usize>,
    pub first_reply_at: Option<Ts>,
    pub first_closed_at: Option<Ts>,
    /// The customer's rating (absent in snapshots written before ratings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<(u8, Option<String>)>,
    /// The customer's latest page noted (absent before pages were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// Whether a bot replied, and whether a human took part (false in snapshots written
    /// before they were kept).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bot_replied: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub human_part: bool,
}

/// Run `n` of a snapshot's messages: `messages[n * SNAPSHOT_RUN..]`, up to
/// [`SNAPSHOT_RUN`] of them.
pub type SnapshotRun = (u32, Vec<Message>);

/// A snapshot's `count` messages from its stored runs (in run order); `None` when the
/// runs do not hold exactly that many, each full but the last.
pub fn messages_from_runs(
    count: usize,
    runs: impl IntoIterator<Item = SnapshotRun>,
) -> Option<Vec<Message>> {
    let mut out = Vec::with_capacity(count);
    for (i, (r, run)) in runs.into_iter().enumerate() {
        let start = i * SNAPSHOT_RUN;
        if start >= count {
            break;
        }
        let want = SNAPSHOT_RUN.min(count - start);
        if r as usize != i || run.len() != want {
            return None;
        }
        out.extend(run);
    }
    (out.len() == count).then_some(out)
}

impl ConversationState {
    /// The state as of event `seq` (the last one applied), with the runs of messages
    /// to store: those changed since the snapshot of seq `written` (whose runs are
    /// stored; `None`: every run). A message changes only by its own events, each of
    /// which sets its `seq`, so a run holding no message with a seq above `written` is
    /// stored as it stands.
    pub fn snapshot(&self, seq: u64, written: Option<u64>) -> (Snapshot, Vec<SnapshotRun>) {
        let n = self.messages.len();
        let mut runs = Vec::new();
        for r in 0..n.div_ceil(SNAPSHOT_RUN) {
            let run = || self.messages.iter_from(r * SNAPSHOT_RUN).take(SNAPSHOT_RUN);
            if written.is_none_or(|w| run().any(|(_, m)| m.seq > w)) {
                runs.push((r as u32, run().map(|(_, m)| Message::clone(m)).collect()));
            }
        }
        let head = Snapshot {
            seq,
            opened_seq: self
                .conversation
                .as_ref()
                .map(|c| c.opened_seq)
                .unwrap_or(0),
            conversation: self.conversation.clone(),
            messages: Vec::new(),
            message_count: Some(n),
            first_reply_at: self.first_reply_at,
            first_closed_at: self.first_closed_at,
            rating: self.rating.clone(),
            page: self.page.clone(),
            bot_replied: self.bot_replied,
            human_part: self.human_part,
        };
        (head, runs)
    }

    /// The state a snapshot describes, given its messages (its runs in order, or its
    /// own `messages` for a snapshot written before the runs).
    pub fn from_snapshot(s: Snapshot, messages: Vec<Message>) -> Self {
        let mut conversation = s.conversation;
        if let Some(c) = conversation.as_mut() {
            c.opened_seq = s.opened_seq;
        }
        let index = messages
            .iter()
            .enumerate()
            .map(|(i, m)| (m.id.clone(), i))
            .collect();
        ConversationState {
            conversation,
            messages: messages.into_iter().map(Arc::new).collect(),
            index: Arc::new(index),
            first_reply_at: s.first_reply_at,
            first_closed_at: s.first_closed_at,
            rating: s.rating,
            page: s.page,
            bot_replied: s.bot_replied,
            human_part: s.human_part,
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
            // Not a field of the Conversation object: its `seq` stays (PROTOCOL §4).
            EventBody::Rated { score, comment, .. } => {
                self.rating = Some((*score, comment.clone()));
            }
            // Not a field of the Conversation object either.
            EventBody::Page { url, .. } => self.page = Some(url.clone()),
            EventBody::Spam { spam, .. } => {
                if let Some(c) = self.conversation.as_mut() {
                    c.spam = *spam;
                    c.seq = seq;
                }
            }
            EventBody::Bot { active, .. } => {
                self.human_part |= !*active;
                if let Some(c) = self.conversation.as_mut() {
                    c.bot_active = *active;
                    c.seq = seq;
                }
            }
            EventBody::Owner { owner, .. } => {
                self.human_part = true;
                if let Some(c) = self.conversation.as_mut() {
                    c.owner = Some(owner.clone());
                    c.seq = seq;
                }
            }
            EventBody::ReplyCreated { reply } => {
                self.first_reply_at.get_or_insert(ev.at);
                match reply.author.kind {
                    crate::domain::AuthorKind::Bot => self.bot_replied = true,
                    crate::domain::AuthorKind::Agent => self.human_part = true,
                }
            }
            EventBody::CommentCreated { .. } | EventBody::PresenceChanged { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{apply, Actor, Command, DomainError, OpenInfo, ReplyId, Role};
    use std::collections::BTreeMap;

    /// A conversation of `n` customer messages, and the seq of its last event.
    fn conversation(n: usize) -> (ConversationState, u64) {
        let mut st = ConversationState::default();
        let mut seq = 0;
        for i in 0..n {
            seq = customer_message(&mut st, seq, i);
        }
        (st, seq)
    }

    fn customer_message(st: &mut ConversationState, seq: u64, i: usize) -> u64 {
        let open = (i == 0).then(|| OpenInfo {
            conversation_id: ConversationId::from("c"),
            contact_id: ContactId::from("k"),
            channel: "web".into(),
        });
        let cmd = Command::CustomerMessage {
            id: MessageId::from(format!("m{i}")),
            text: format!("hi {i}"),
            open,
            assistant: None,
            bot_reply_id: ReplyId::from("r"),
        };
        run(st, seq, cmd, &Actor::Contact(ContactId::from("k")))
    }

    fn run(st: &mut ConversationState, mut seq: u64, cmd: Command, who: &Actor) -> u64 {
        for b in apply(st, cmd, who, Ts(5)).unwrap() {
            seq += 1;
            st.apply_event(&Event::new(seq, Some(ConversationId::from("c")), Ts(5), b));
        }
        seq
    }

    /// What the store would hold: the head and the runs, each written through JSON.
    #[derive(Default)]
    struct Stored {
        head: Option<Snapshot>,
        runs: BTreeMap<u32, Vec<Message>>,
    }

    impl Stored {
        /// Writes a snapshot; answers the numbers of the runs it wrote.
        fn write(&mut self, (head, runs): (Snapshot, Vec<SnapshotRun>)) -> Vec<u32> {
            let json = serde_json::to_vec(&head).unwrap();
            self.head = Some(serde_json::from_slice(&json).unwrap());
            runs.into_iter()
                .map(|(r, run)| {
                    let json = serde_json::to_vec(&run).unwrap();
                    self.runs.insert(r, serde_json::from_slice(&json).unwrap());
                    r
                })
                .collect()
        }

        fn restore(&self) -> ConversationState {
            let head = self.head.clone().unwrap();
            let count = head.message_count.unwrap();
            let runs = self.runs.iter().map(|(r, m)| (*r, m.clone()));
            let messages = messages_from_runs(count, runs).unwrap();
            ConversationState::from_snapshot(head, messages)
        }
    }

    fn assert_same(back: &ConversationState, st: &ConversationState) {
        assert_eq!(back.conversation, st.conversation);
        assert_eq!(back.messages, st.messages);
        assert_eq!(back.first_reply_at, st.first_reply_at);
        assert_eq!(back.rating, st.rating);
        assert_eq!(back.page, st.page);
        assert_eq!(
            (back.bot_replied, back.human_part),
            (st.bot_replied, st.human_part)
        );
        for m in &st.messages {
            assert_eq!(back.message(&m.id), Some(&**m));
        }
    }

    #[test]
    fn a_snapshot_restores_the_same_state() {
        let (mut st, seq) = conversation(2 * SNAPSHOT_RUN + 3);
        let page = Command::ViewPage {
            url: "https://shop.example/lamps".into(),
            title: None,
        };
        let seq = run(&mut st, seq, page, &Actor::Contact(ContactId::from("k")));
        assert_eq!(st.page.as_deref(), Some("https://shop.example/lamps"));
        let mut stored = Stored::default();
        assert_eq!(stored.write(st.snapshot(seq, None)), vec![0, 1, 2]);
        let back = stored.restore();
        assert_same(&back, &st);
        assert_eq!(back.conversation.as_ref().unwrap().opened_seq, 1);
        // The page noted is kept: the same page again notes nothing.
        let again = Command::ViewPage {
            url: "https://shop.example/lamps".into(),
            title: Some("Lamps".into()),
        };
        let who = Actor::Contact(ContactId::from("k"));
        assert!(apply(&back, again, &who, Ts(6)).unwrap().is_empty());
    }

    #[test]
    fn pages_are_noted_while_the_conversation_is_open_and_once_each() {
        let (mut st, _) = conversation(1);
        let me = Actor::Contact(ContactId::from("k"));
        let view = |url: &str| Command::ViewPage {
            url: url.into(),
            title: Some("Shop".into()),
        };
        let kinds = |st: &mut ConversationState, cmd, who: &Actor| {
            apply(st, cmd, who, Ts(6)).map(|evs| {
                let kinds: Vec<&str> = evs.iter().map(|b| b.kind()).collect();
                evs.iter().for_each(|b| {
                    st.apply_event(&Event::new(
                        9,
                        Some(ConversationId::from("c")),
                        Ts(6),
                        b.clone(),
                    ))
                });
                kinds
            })
        };
        let seq_before = st.conversation.as_ref().unwrap().seq;
        assert_eq!(
            kinds(&mut st, view("https://a.example/1"), &me),
            Ok(vec!["conversation.page"])
        );
        assert_eq!(
            st.conversation.as_ref().unwrap().seq,
            seq_before,
            "not a change of the conversation"
        );
        assert_eq!(
            kinds(&mut st, view("https://a.example/1"), &me),
            Ok(vec![]),
            "the same page"
        );
        assert_eq!(
            kinds(&mut st, view("https://a.example/2"), &me),
            Ok(vec!["conversation.page"])
        );
        let other = Actor::Contact(ContactId::from("k2"));
        assert!(matches!(
            kinds(&mut st, view("https://a.example/3"), &other),
            Err(DomainError::Forbidden(_))
        ));
        let agent = Actor::Agent {
            id: AgentId::from("a"),
            role: Role::Admin,
        };
        assert!(matches!(
            kinds(&mut st, view("https://a.example/3"), &agent),
            Err(DomainError::Forbidden(_))
        ));
        // Spam, then closed: nothing is noted.
        kinds(&mut st, Command::SetSpam { spam: true }, &agent).unwrap();
        assert_eq!(kinds(&mut st, view("https://a.example/4"), &me), Ok(vec![]));
        kinds(&mut st, Command::SetSpam { spam: false }, &agent).unwrap();
        kinds(&mut st, Command::Close { notes: None }, &agent).unwrap();
        assert_eq!(kinds(&mut st, view("https://a.example/5"), &me), Ok(vec![]));
    }

    #[test]
    fn a_later_snapshot_writes_only_the_runs_that_changed() {
        let (mut st, mut seq) = conversation(3 * SNAPSHOT_RUN + 2);
        let mut stored = Stored::default();
        stored.write(st.snapshot(seq, None));
        let written = seq;
        let agent = Actor::Agent {
            id: AgentId::from("a"),
            role: Role::Agent,
        };
        let assign = Command::Assign {
            message_id: MessageId::from("m5"),
            agent_id: AgentId::from("a"),
        };
        seq = run(&mut st, seq, assign, &agent);
        seq = customer_message(&mut st, seq, 3 * SNAPSHOT_RUN + 2);
        // m5's run changed and run 3 grew; the others are as written.
        let m5 = (5 / SNAPSHOT_RUN) as u32;
        assert_eq!(stored.write(st.snapshot(seq, Some(written))), vec![m5, 3]);
        assert_same(&stored.restore(), &st);
        // Nothing changed since: only the head is written.
        let written = seq;
        assert_eq!(
            stored.write(st.snapshot(seq, Some(written))),
            Vec::<u32>::new()
        );
        // A reply answers every pending message: every run is written again.
        let reply = Command::Reply {
            id: ReplyId::from("r1"),
            text: "hello".into(),
        };
        seq = run(&mut st, seq, reply, &agent);
        assert_eq!(
            stored.write(st.snapshot(seq, Some(written))),
            vec![0, 1, 2, 3]
        );
        let back = stored.restore();
        assert_same(&back, &st);
        assert!(back.messages.iter().all(|m| m.status == Status::Answered));
    }

    #[test]
    fn runs_that_do_not_add_up_are_refused() {
        let (st, seq) = conversation(SNAPSHOT_RUN + 4);
        let (head, runs) = st.snapshot(seq, None);
        let count = head.message_count.unwrap();
        assert_eq!(
            messages_from_runs(count, runs.clone()).map(|m| m.len()),
            Some(count)
        );
        // A missing run, a short run, a run out of place, too few messages.
        assert_eq!(messages_from_runs(count, runs[1..].to_vec()), None);
        let mut short = runs.clone();
        short[0].1.pop();
        assert_eq!(messages_from_runs(count, short), None);
        let swapped = vec![runs[1].clone(), runs[0].clone()];
        assert_eq!(messages_from_runs(count, swapped), None);
        assert_eq!(messages_from_runs(count + 1, runs), None);
    }

    #[test]
    fn a_snapshot_written_before_the_runs_still_reads() {
        let (st, seq) = conversation(3);
        let messages: Vec<Message> = st.messages.iter().map(|m| Message::clone(m)).collect();
        // The layout before the runs: every message in the snapshot itself.
        let old = serde_json::json!({
            "seq": seq,
            "conversation": st.conversation,
            "opened_seq": 1,
            "messages": messages,
            "first_reply_at": null,
            "first_closed_at": null,
        });
        let head: Snapshot = serde_json::from_value(old).unwrap();
        assert_eq!(head.message_count, None);
        let messages = head.messages.clone();
        assert_same(&ConversationState::from_snapshot(head, messages), &st);
    }
}
