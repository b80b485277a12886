//! One actor per conversation: it owns the conversation's state (its messages' statuses,
//! its session), applies commands with the pure domain, and answers only once the
//! resulting events are durable. Commands are handled one at a time (`AtomicResponse`),
//! so each sees the effect of the previous one.

use crate::domain::{
    self, Actor as Who, Command, ConversationId, ConversationState, Event, EventBody, MessageId,
};
use crate::error::ApiError;
use crate::hub::Hub;
use crate::store::{self, index, keys, Batch, Ticket};
use actix::prelude::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A snapshot of the state is written with every this many events of a conversation.
const SNAPSHOT_EVERY: usize = 128;

/// An idle actor stops after this long; the next command restores it from the store.
const IDLE: Duration = Duration::from_secs(300);

/// What a command produced, for the edge to answer.
#[derive(Clone, Debug)]
pub enum Outcome {
    Message(domain::Message),
    Reply {
        reply: domain::Reply,
        answered: Vec<MessageId>,
    },
    Comment(domain::Comment),
    Conversation(domain::Conversation),
    Nothing,
}

/// Run a command against this conversation.
#[derive(Message, Clone)]
#[rtype(result = "Result<Outcome, ApiError>")]
pub struct Exec {
    pub cmd: Command,
    pub who: Who,
    /// What to record with the events so that a repeat finds their outcome.
    pub idempotency: Option<Idempotency>,
}

/// What a command records for its idempotency key.
#[derive(Clone, Debug)]
pub enum Idempotency {
    /// A reply's outcome, under `I` + scope + client id.
    Record { scope: String, client_id: String },
    /// A customer message's id, in its contact's client ids (`store::clients`).
    ClientId {
        slot: store::clients::ClientIdSlot,
        client_id: String,
    },
}

/// Owns one conversation.
pub struct ConversationActor {
    id: ConversationId,
    hub: Arc<Hub>,
    state: ConversationState,
    last_active: Instant,
    /// Events applied since the last snapshot was written.
    since_snapshot: usize,
    /// The tail of the conversation's log of event seqs (this actor extends it).
    log: store::log::ConvLog,
    /// The seq of the conversation's latest event (0: none yet).
    last_seq: u64,
    /// The seq of the snapshot whose message runs are stored (`None`: none, or not
    /// known), so that a snapshot rewrites only the runs that changed since.
    written: Option<u64>,
    /// A conversation just named by the hub: nothing to restore from the store.
    empty: bool,
}

impl ConversationActor {
    /// An actor that restores `id` from the store when it starts.
    pub fn new(id: ConversationId, hub: Arc<Hub>) -> Self {
        ConversationActor {
            id,
            hub,
            state: ConversationState::default(),
            last_active: Instant::now(),
            since_snapshot: 0,
            log: store::log::ConvLog::default(),
            last_seq: 0,
            written: None,
            empty: false,
        }
    }

    /// The actor of a conversation whose id was drawn just now (`Registry::start_new`):
    /// the store holds nothing of it, so it starts without reading it.
    pub fn new_empty(id: ConversationId, hub: Arc<Hub>) -> Self {
        ConversationActor {
            empty: true,
            ..ConversationActor::new(id, hub)
        }
    }

    /// Applies `exec` and, if it caused events, sends them to the writer. The flag says
    /// whether automatic assignment should look again once they are durable (a message
    /// created or changed status, or the spam flag moved).
    fn execute(
        &mut self,
        exec: Exec,
        ticket: Ticket,
    ) -> Result<(Option<store::Durable>, Outcome, bool), ApiError> {
        let now = crate::now();
        let mut cmd = exec.cmd;
        self.resolve_inputs(&mut cmd);
        if let Command::CustomerMessage { id, .. } = &mut cmd {
            // Messages are never removed from a conversation: the count names the next.
            *id = MessageId::numbered(&self.id, self.state.messages.len() + 1);
        }
        let target = target_of(&cmd);
        // The router's own assignments need no second look.
        let routed = matches!(cmd, Command::AutoAssign { .. });
        // A message handed back is not given again to whoever handed it back.
        let returned = match &cmd {
            Command::Unassign { message_id } => self
                .state
                .message(message_id)
                .and_then(|m| m.assignee.clone())
                .map(|a| (message_id.clone(), a)),
            _ => None,
        };
        let bodies = domain::apply(&self.state, cmd, &exec.who, now)?;
        if bodies.is_empty() {
            return Ok((None, self.outcome(target, &[]), false));
        }
        let base = ticket.alloc(bodies.len());
        let old_conv = self.state.conversation.clone();
        let old_spam = old_conv.as_ref().map(|c| c.spam).unwrap_or(false);
        let old_channel = old_conv
            .as_ref()
            .map(|c| c.channel.clone())
            .unwrap_or_default();
        let old_samples = (self.state.first_reply_at, self.state.first_closed_at);
        let old_score = self.state.rating.as_ref().map(|r| r.0);
        let old_bot = (self.state.bot_replied, self.state.human_part, old_spam);
        let mut touched: BTreeSet<MessageId> = BTreeSet::new();
        let mut spam_changed = false;
        // An ended session frees its agent's capacity (automatic assignment), so the
        // router is told as for a status change.
        let mut session_ended = false;
        for b in &bodies {
            match b {
                EventBody::MessageCreated { message } => {
                    touched.insert(message.id.clone());
                }
                EventBody::StatusChanged(c) => {
                    touched.insert(c.message_id.clone());
                }
                EventBody::Spam { .. } => spam_changed = true,
                EventBody::SessionEnded { .. } => session_ended = true,
                _ => {}
            }
        }
        if spam_changed {
            touched.extend(self.state.messages.iter().map(|m| m.id.clone()));
        }
        let untouched = touched.is_empty();
        if let Some((message, agent)) = returned {
            self.hub
                .router
                .returned(message, domain::AgentId::from(agent));
        }
        let old_entries: Vec<(MessageId, Vec<index::IndexEntry>)> = touched
            .iter()
            .map(|id| {
                let e = self
                    .state
                    .message(id)
                    .map(|m| index::message_entries(m, old_spam, &old_channel))
                    .unwrap_or_default();
                (id.clone(), e)
            })
            .collect();

        let mut batch = Batch::default();
        let mut events = Vec::with_capacity(bodies.len());
        for (i, body) in bodies.into_iter().enumerate() {
            let ev = Event::new(base + i as u64, Some(self.id.clone()), now, body);
            self.state.apply_event(&ev);
            events.push(ev);
        }
        self.last_seq = events.last().map(|e| e.seq).unwrap_or(self.last_seq);
        // unwrap: apply succeeded with events, so the conversation exists now.
        let conv = self
            .state
            .conversation
            .clone()
            .expect("conversation exists");
        for ev in &events {
            batch.event(ev, Some(&conv.contact_id));
            // the comment, under each agent it mentions (their mentions list)
            if let EventBody::CommentCreated { comment } = &ev.body {
                if !comment.mentions.is_empty() {
                    // expect: a Comment is plain data; serialising it cannot fail.
                    let json = serde_json::to_string(comment).expect("serialise a comment");
                    let entries: BTreeSet<&String> = comment.mentions.iter().collect();
                    let entries = entries
                        .into_iter()
                        .map(|a| index::mention_entry(a, ev.seq, comment.id.as_str()))
                        .collect();
                    batch.reindex(vec![], entries, &json);
                }
            }
        }
        batch.conversation_log(
            conv.id.as_str(),
            &mut self.log,
            events.iter().map(|e| e.seq),
        );
        let new_spam = conv.spam;
        for (id, old) in old_entries {
            if let Some(m) = self.state.message(&id) {
                batch.reindex_message(old, index::message_entries(m, new_spam, &conv.channel), m);
                if m.status == domain::Status::OnHold {
                    if let Some(until) = m.hold_until {
                        self.hub
                            .timers
                            .schedule(m.id.clone(), conv.id.clone(), until);
                    }
                }
            }
        }
        if old_conv.as_ref() != Some(&conv) {
            let old = old_conv
                .as_ref()
                .map(index::conversation_entries)
                .unwrap_or_default();
            batch.reindex(old, index::conversation_entries(&conv), "");
            batch.put_conversation(&conv);
        }
        for (before, after, name) in [
            (
                old_samples.0,
                self.state.first_reply_at,
                index::names::FIRST_RESPONSE,
            ),
            (
                old_samples.1,
                self.state.first_closed_at,
                index::names::RESOLUTION,
            ),
        ] {
            if let (None, Some(at)) = (before, after) {
                let e = index::sample_entry(name, at.0 - conv.opened_at.0, conv.id.as_str());
                batch.reindex(vec![], vec![e], "");
            }
        }
        // The ratings are counted by score (the stats' satisfaction, an extension).
        let score = self.state.rating.as_ref().map(|r| r.0);
        if score != old_score {
            let entry = |s: Option<u8>| {
                s.map(|s| index::rating_entry(s, conv.id.as_str()))
                    .into_iter()
                    .collect()
            };
            batch.reindex(entry(old_score), entry(score), "");
        }
        // The automation counts (the stats' automation rate, an extension).
        let new_bot = (self.state.bot_replied, self.state.human_part, conv.spam);
        if new_bot != old_bot {
            let entries = |(bot, human, spam): (bool, bool, bool)| {
                index::bot_entries(bot, human, spam, conv.id.as_str())
            };
            batch.reindex(entries(old_bot), entries(new_bot), "");
        }
        if old_conv.is_none() {
            batch.put_json(
                keys::LATEST,
                &[conv.contact_id.as_str().as_bytes(), conv.channel.as_bytes()],
                &conv.id,
            );
            batch.contact_conversation(&conv.contact_id, conv.id.as_str());
        }
        self.since_snapshot += events.len();
        if self.since_snapshot >= SNAPSHOT_EVERY {
            let last = events.last().map(|e| e.seq).unwrap_or(0);
            let snapshot = self.state.snapshot(last, self.written);
            batch.snapshot(conv.id.as_str(), snapshot);
            // If this batch fails, the actor stops and the next one restores from disk.
            self.written = Some(last);
            self.since_snapshot = 0;
        }
        let outcome = self.outcome(target, &events);
        match (&exec.idempotency, &outcome) {
            (Some(Idempotency::Record { scope, client_id }), _) => batch.put_json(
                keys::IDEMPOTENCY,
                &[scope.as_bytes(), client_id.as_bytes()],
                &idempotency_record(&outcome),
            ),
            (Some(Idempotency::ClientId { slot, client_id }), Outcome::Message(m)) => {
                batch.client_id(slot, client_id, m.id.as_str())
            }
            _ => {}
        }
        let kick = !routed && (!untouched || session_ended);
        Ok((Some(ticket.send(batch)), outcome, kick))
    }

    /// Fills the inputs a command takes from outside the domain: presence (from the
    /// presence actor's view) and the conversation's latest event.
    fn resolve_inputs(&self, cmd: &mut Command) {
        match cmd {
            Command::AnswerHelp {
                message_id,
                requester_present,
                ..
            } => {
                *requester_present = self
                    .state
                    .message(message_id)
                    .and_then(|m| m.help.as_ref())
                    .map(|h| self.hub.presence.is_present(&h.requested_by))
                    .unwrap_or(false);
            }
            Command::AutoClose { latest_seq, .. } => *latest_seq = self.last_seq,
            Command::Release {
                agent_id,
                agent_present,
                ..
            } => *agent_present = self.hub.presence.is_present(agent_id.as_str()),
            Command::HoldExpired {
                message_id,
                assignee_present,
                ..
            } => {
                *assignee_present = self
                    .state
                    .message(message_id)
                    .and_then(|m| m.assignee.as_deref())
                    .map(|a| self.hub.presence.is_present(a))
                    .unwrap_or(false);
            }
            _ => {}
        }
    }

    fn outcome(&self, target: Target, events: &[Event]) -> Outcome {
        match target {
            Target::Message(id) => self
                .state
                .message(&id)
                .cloned()
                .map(Outcome::Message)
                .unwrap_or(Outcome::Nothing),
            // The message as created, as its contact sees it (PROTOCOL §4: its `seq`
            // is the one of its `message.created`, not of the assistant's handling).
            Target::Created => events
                .iter()
                .find_map(|e| match &e.body {
                    EventBody::MessageCreated { message } => Some(message.clone()),
                    _ => None,
                })
                .map(Outcome::Message)
                .unwrap_or(Outcome::Nothing),
            Target::Reply => {
                let reply = events.iter().find_map(|e| match &e.body {
                    EventBody::ReplyCreated { reply } => Some(reply.clone()),
                    _ => None,
                });
                let answered = events
                    .iter()
                    .filter_map(|e| match &e.body {
                        EventBody::StatusChanged(c) if c.to == domain::Status::Answered => {
                            Some(c.message_id.clone())
                        }
                        _ => None,
                    })
                    .collect();
                reply
                    .map(|reply| Outcome::Reply { reply, answered })
                    .unwrap_or(Outcome::Nothing)
            }
            Target::Comment => events
                .iter()
                .find_map(|e| match &e.body {
                    EventBody::CommentCreated { comment } => {
                        Some(Outcome::Comment(comment.clone()))
                    }
                    _ => None,
                })
                .unwrap_or(Outcome::Nothing),
            Target::Conversation => self
                .state
                .conversation
                .clone()
                .map(Outcome::Conversation)
                .unwrap_or(Outcome::Nothing),
            Target::Nothing => Outcome::Nothing,
        }
    }
}

/// Which object a command's answer shows.
enum Target {
    Message(MessageId),
    Created,
    Reply,
    Comment,
    Conversation,
    Nothing,
}

fn target_of(cmd: &Command) -> Target {
    match cmd {
        Command::CustomerMessage { .. } => Target::Created,
        Command::Assign { message_id, .. }
        | Command::AutoAssign { message_id, .. }
        | Command::Release { message_id, .. }
        | Command::Unassign { message_id }
        | Command::Hold { message_id, .. }
        | Command::RequestHelp { message_id, .. }
        | Command::AnswerHelp { message_id, .. }
        | Command::Archive { message_id }
        | Command::Reopen { message_id } => Target::Message(message_id.clone()),
        Command::Reply { .. } => Target::Reply,
        Command::Comment { .. } => Target::Comment,
        Command::Close { .. }
        | Command::EndSession { .. }
        | Command::SetSpam { .. }
        | Command::SetOwner { .. }
        | Command::AutoClose { .. }
        | Command::Rate { .. }
        | Command::ViewPage { .. } => Target::Conversation,
        Command::HoldExpired { .. } => Target::Nothing,
    }
}

/// What an idempotent repeat answers.
pub fn idempotency_record(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Reply { reply, answered } => {
            serde_json::json!({"reply": reply, "answered": answered})
        }
        _ => Value::Null,
    }
}

impl Actor for ConversationActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(64);
        ctx.run_interval(Duration::from_secs(30), |act, ctx| {
            if act.last_active.elapsed() > IDLE {
                ctx.stop();
            }
        });
        if self.empty {
            return;
        }
        let store = self.hub.store.clone();
        let id = self.id.clone();
        ctx.wait(
            async move { store.read(move |s| s.load_conversation(id.as_str())).await }
                .into_actor(self)
                .map(|res, act, ctx| match res {
                    Ok(loaded) => {
                        act.state = loaded.state;
                        act.log = loaded.log;
                        act.written = loaded.written;
                        act.last_seq = loaded.last;
                    }
                    Err(e) => {
                        tracing::error!(conversation_id = %act.id, error = %e, "Conversation could not be restored.");
                        ctx.stop();
                    }
                }),
        );
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        self.hub.registry.forget(&self.id, &ctx.address());
    }
}

/// Stop once the commands already queued are done (the next command restores the
/// conversation from the store).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire;

impl Handler<Retire> for ConversationActor {
    type Result = ();

    fn handle(&mut self, _: Retire, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// A message of this conversation as it now stands.
#[derive(Message, Clone)]
#[rtype(result = "Option<domain::Message>")]
pub struct Lookup(pub MessageId);

impl Handler<Lookup> for ConversationActor {
    type Result = Option<domain::Message>;

    fn handle(&mut self, q: Lookup, _ctx: &mut Context<Self>) -> Self::Result {
        self.last_active = Instant::now();
        self.state.message(&q.0).cloned()
    }
}

impl Handler<Exec> for ConversationActor {
    type Result = AtomicResponse<Self, Result<Outcome, ApiError>>;

    fn handle(&mut self, exec: Exec, _ctx: &mut Context<Self>) -> Self::Result {
        self.last_active = Instant::now();
        let store = self.hub.store.clone();
        let fut = async move { store.ticket().await }
            .into_actor(self)
            .map(move |ticket, act, _ctx| {
                let ticket = ticket.map_err(ApiError::from)?;
                act.execute(exec, ticket)
            })
            .then(|res, act, _ctx| {
                let router = act.hub.router.clone();
                async move {
                    let (rx, outcome, kick) = res?;
                    if let Some(rx) = rx {
                        store::wait(rx).await?;
                    }
                    if kick {
                        router.kick();
                    }
                    Ok(outcome)
                }
                .into_actor(act)
            })
            .map(|res: Result<Outcome, ApiError>, _act, ctx| {
                if matches!(res, Err(ApiError::Unavailable(_))) {
                    // The state may be ahead of the disk: drop it, restore on next use.
                    ctx.stop();
                }
                res
            });
        AtomicResponse::new(Box::pin(fut))
    }
}
