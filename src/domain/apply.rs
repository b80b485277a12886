//! `apply(state, command, actor, now)`: the whole rule book of PROTOCOL §6, as a pure function.
//! It reads no clock and does no I/O; a refused command returns an error and no events.

use super::assistant::{Assistant, BotDecision};
use super::events::*;
use super::ids::*;
use super::model::*;
use super::state::ConversationState;

/// What opens a new conversation with the first customer message.
#[derive(Clone, Debug)]
pub struct OpenInfo {
    pub conversation_id: ConversationId,
    pub contact_id: ContactId,
    pub channel: String,
}

/// A command to a conversation. Ids of created objects and the presence of agents are
/// inputs, so that `apply` stays pure.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // built once per request, moved, never stored
pub enum Command {
    /// A contact writes. `open` is set when this message starts a new conversation;
    /// `assistant` is the channel's published assistant, if any; `bot_reply_id` names the
    /// bot's reply if it writes one.
    CustomerMessage {
        id: MessageId,
        text: String,
        open: Option<OpenInfo>,
        assistant: Option<Assistant>,
        bot_reply_id: ReplyId,
    },
    Assign {
        message_id: MessageId,
        agent_id: AgentId,
    },
    Unassign {
        message_id: MessageId,
    },
    Hold {
        message_id: MessageId,
        until: Option<Ts>,
    },
    RequestHelp {
        message_id: MessageId,
        question: String,
    },
    AnswerHelp {
        message_id: MessageId,
        answer: String,
        requester_present: bool,
    },
    Archive {
        message_id: MessageId,
    },
    Reopen {
        message_id: MessageId,
    },
    Reply {
        id: ReplyId,
        text: String,
    },
    Comment {
        id: CommentId,
        text: String,
        mentions: Vec<String>,
    },
    Close {
        notes: Option<String>,
    },
    EndSession {
        reason: Option<String>,
    },
    SetSpam {
        spam: bool,
    },
    /// An extension: gives the conversation to `agent_id` as its owner (a handover).
    SetOwner {
        agent_id: AgentId,
    },
    /// An extension: the customer rates the conversation (a score of 1 to 5, checked by
    /// the route), once it is closed or its session has ended.
    Rate {
        score: u8,
        comment: Option<String>,
    },
    /// An extension: the customer's widget is on another page (`url` and `title`
    /// checked by the route). Noted on the timeline while the conversation is open, its
    /// session active and it is not spam, when it is another page than the last noted;
    /// otherwise nothing happens.
    ViewPage {
        url: String,
        title: Option<String>,
    },
    /// An extension: automatic assignment (`src/actors/router.rs`) gives a pending
    /// message to `agent_id`, as the hub (`by: system`). Only the system sends it; a
    /// message that is no longer pending, or a spam conversation's, is refused.
    AutoAssign {
        message_id: MessageId,
        agent_id: AgentId,
    },
    /// An extension: automation closes a conversation left idle (`src/actors/closer.rs`),
    /// as the hub (`by: system`). `last_seq` is the conversation's latest event when it
    /// was found idle; `latest_seq` is filled in by the conversation (its latest now): a
    /// conversation that moved since, or holds a message still waiting for the team, or
    /// is spam or closed, is refused.
    AutoClose {
        notes: String,
        last_seq: u64,
        latest_seq: u64,
    },
    /// An extension: `agent_id` went offline holding `message_id` (automation's
    /// `reassign_offline`, `src/actors/router.rs`): the hub puts it back in Pending
    /// (`by: system`), as a supervisor's unassign would, for someone present.
    /// `agent_present` is filled in by the conversation. Refused unless the message is
    /// `assigned` or `help_answered` to that agent, the agent is not present (back
    /// meanwhile), the message has not changed since `offline_since` (the seq of the
    /// event that took the agent offline: a message given to the agent by hand while
    /// offline was given on purpose, and stays), and the conversation is neither spam
    /// nor ended (nobody else could answer it there).
    Release {
        message_id: MessageId,
        agent_id: AgentId,
        agent_present: bool,
        offline_since: u64,
    },
    /// A hold timer fired; `assignee_present` says whether the holding agent is present.
    HoldExpired {
        message_id: MessageId,
        until: Ts,
        assignee_present: bool,
    },
}

/// Why a command was refused. Maps one-to-one onto PROTOCOL §3 error codes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("cannot {action} a message that is {}", from.as_str())]
    InvalidTransition { action: &'static str, from: Status },
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("the messaging session of this conversation has ended")]
    SessionEnded,
    #[error("{0}")]
    Conflict(&'static str),
    #[error("{0}")]
    Invalid(&'static str),
}

type Result<T> = std::result::Result<T, DomainError>;

/// Accumulates events while applying them to a scratch copy of the state, so each
/// rule sees the effect of the previous ones.
struct Tx {
    state: ConversationState,
    out: Vec<EventBody>,
    conversation_id: ConversationId,
    now: Ts,
}

impl Tx {
    fn emit(&mut self, body: EventBody) {
        let ev = Event::new(0, Some(self.conversation_id.clone()), self.now, body);
        self.state.apply_event(&ev);
        self.out.push(ev.body);
    }

    fn conversation(&self) -> Result<&Conversation> {
        self.state
            .conversation
            .as_ref()
            .ok_or(DomainError::NotFound("conversation"))
    }

    fn message(&self, id: &MessageId) -> Result<&Message> {
        self.state
            .message(id)
            .ok_or(DomainError::NotFound("message"))
    }

    fn status(&mut self, m: &MessageId, to: Status, assignee: Option<String>, by: &str) {
        self.status_with(m, to, assignee, by, None, None, None)
    }

    #[allow(clippy::too_many_arguments)]
    fn status_with(
        &mut self,
        m: &MessageId,
        to: Status,
        assignee: Option<String>,
        by: &str,
        question: Option<String>,
        answer: Option<String>,
        hold_until: Option<Ts>,
    ) {
        let from = self.state.message(m).map(|m| m.status).unwrap_or(to);
        self.emit(EventBody::StatusChanged(StatusChange {
            message_id: m.clone(),
            from,
            to,
            assignee,
            by: by.to_string(),
            question,
            answer,
            hold_until,
        }));
    }

    /// The first human agent assigned or replying becomes the owner.
    fn owner_if_none(&mut self, agent: &str, by: &str) {
        if matches!(self.state.conversation.as_ref(), Some(c) if c.owner.is_none()) {
            self.emit(EventBody::Owner {
                owner: agent.to_string(),
                by: by.to_string(),
            });
        }
    }

    /// Assigns `m` to `agent` (from pending or a help request): the agent becomes the
    /// owner if there is none, and the bot stays off while a human handles it (§6.4).
    fn assign_to(&mut self, m: &MessageId, agent: &AgentId, by: &str) {
        self.status(m, Status::Assigned, Some(agent.to_string()), by);
        self.owner_if_none(agent.as_str(), by);
        self.set_bot(false, by);
    }

    /// Closes the conversation (§6.2): its open customer messages are archived first,
    /// then the close with its notes; the bot is on again.
    fn close(&mut self, by: &str, notes: Option<String>) {
        let open: Vec<(MessageId, Option<String>)> = self
            .state
            .messages
            .iter()
            .filter(|m| m.status.is_open())
            .map(|m| (m.id.clone(), m.assignee.clone()))
            .collect();
        for (mid, assignee) in open {
            self.status(&mid, Status::Archived, assignee, by);
        }
        self.emit(EventBody::ConversationClosed {
            by: by.to_string(),
            notes,
        });
        self.set_bot(true, by);
    }

    fn set_bot(&mut self, active: bool, by: &str) {
        if matches!(self.state.conversation.as_ref(), Some(c) if c.bot_active != active) {
            self.emit(EventBody::Bot {
                active,
                by: by.to_string(),
            });
        }
    }
}

/// The conversation's customer, when it is the one acting (`why` refuses anyone else).
fn its_customer(actor: &Actor, c: &Conversation, why: &'static str) -> Result<ContactId> {
    match actor {
        Actor::Contact(k) if *k == c.contact_id => Ok(k.clone()),
        _ => Err(DomainError::Forbidden(why)),
    }
}

fn agent_of(actor: &Actor) -> Result<(&AgentId, Role)> {
    match actor {
        Actor::Agent { id, role } => Ok((id, *role)),
        _ => Err(DomainError::Forbidden("only agents may do this")),
    }
}

fn refuse(action: &'static str, from: Status) -> DomainError {
    DomainError::InvalidTransition { action, from }
}

fn is_assignee(m: &Message, me: &AgentId) -> bool {
    m.assignee.as_deref() == Some(me.as_str())
}

/// Applies `command` by `actor` at `now` to `state`. Returns the events it causes, in
/// order (possibly none), or why it is refused. Checks follow PROTOCOL §3's order:
/// 404, then 409 `invalid_transition`, then 403, then 409 `session_ended`/`conflict`.
pub fn apply(
    state: &ConversationState,
    command: Command,
    actor: &Actor,
    now: Ts,
) -> Result<Vec<EventBody>> {
    let conversation_id = match (&state.conversation, &command) {
        (Some(c), _) => c.id.clone(),
        (
            None,
            Command::CustomerMessage {
                open: Some(open), ..
            },
        ) => open.conversation_id.clone(),
        (None, _) => return Err(DomainError::NotFound("conversation")),
    };
    let mut tx = Tx {
        state: state.clone(),
        out: Vec::new(),
        conversation_id,
        now,
    };
    let by = actor.by();
    match command {
        Command::CustomerMessage {
            id,
            text,
            open,
            assistant,
            bot_reply_id,
        } => {
            let contact_id = match actor {
                Actor::Contact(c) => c.clone(),
                _ => {
                    return Err(DomainError::Forbidden(
                        "only contacts write customer messages",
                    ))
                }
            };
            match (&tx.state.conversation, open) {
                (None, Some(open)) => {
                    let conversation = Conversation {
                        id: open.conversation_id,
                        contact_id: open.contact_id,
                        channel: open.channel,
                        state: ConvState::Open,
                        session: SessionState::Active,
                        spam: false,
                        bot_active: true,
                        owner: None,
                        opened_at: now,
                        seq: 0,
                        opened_seq: 0,
                    };
                    tx.emit(EventBody::ConversationOpened { conversation });
                }
                (None, None) => return Err(DomainError::NotFound("conversation")),
                (Some(c), _) => {
                    if c.contact_id != contact_id {
                        return Err(DomainError::Forbidden("not this contact's conversation"));
                    }
                    if c.session == SessionState::Ended {
                        return Err(DomainError::SessionEnded);
                    }
                    if c.state == ConvState::Closed {
                        let mut conversation = c.clone();
                        conversation.state = ConvState::Open;
                        tx.emit(EventBody::ConversationReopened {
                            conversation,
                            by: None,
                        });
                    }
                }
            }
            let conv = tx.conversation()?.clone();
            tx.emit(EventBody::MessageCreated {
                message: Message {
                    id: id.clone(),
                    conversation_id: conv.id.clone(),
                    contact_id,
                    text: text.clone(),
                    at: now,
                    seq: 0,
                    status: Status::Pending,
                    assignee: None,
                    help: None,
                    hold_until: None,
                },
            });
            if let Some(a) = assistant.filter(|_| conv.bot_active && !conv.spam) {
                bot_handles(&mut tx, &a, &id, &text, bot_reply_id);
            }
        }
        Command::Assign {
            message_id,
            agent_id,
        } => {
            let (me, role) = agent_of(actor)?;
            let m = tx.message(&message_id)?;
            match m.status {
                Status::Pending => {
                    if !role.is_supervisor() && &agent_id != me {
                        return Err(DomainError::Forbidden(
                            "an agent may only assign messages to itself",
                        ));
                    }
                }
                Status::HelpRequested => {
                    if !role.is_supervisor() {
                        return Err(DomainError::Forbidden(
                            "only supervisors assign help requests",
                        ));
                    }
                }
                s => return Err(refuse("assign", s)),
            }
            tx.assign_to(&message_id, &agent_id, &by);
        }
        Command::Unassign { message_id } => {
            let (me, role) = agent_of(actor)?;
            let m = tx.message(&message_id)?;
            match m.status {
                Status::Assigned | Status::OnHold | Status::HelpAnswered => {}
                s => return Err(refuse("unassign", s)),
            }
            if !is_assignee(m, me) && !role.is_supervisor() {
                return Err(DomainError::Forbidden(
                    "only the assignee or a supervisor may unassign",
                ));
            }
            tx.status(&message_id, Status::Pending, None, &by);
        }
        Command::Hold { message_id, until } => {
            let (me, _) = agent_of(actor)?;
            let m = tx.message(&message_id)?;
            match m.status {
                Status::Assigned | Status::HelpAnswered => {}
                s => return Err(refuse("hold", s)),
            }
            if !is_assignee(m, me) {
                return Err(DomainError::Forbidden("only the assignee may put on hold"));
            }
            // `until` was checked against the request's time at the edge; if it has passed
            // while the command waited, the hold simply ends when its timer fires (at once).
            let assignee = m.assignee.clone();
            tx.status_with(
                &message_id,
                Status::OnHold,
                assignee,
                &by,
                None,
                None,
                until,
            );
        }
        Command::RequestHelp {
            message_id,
            question,
        } => {
            let (me, _) = agent_of(actor)?;
            let m = tx.message(&message_id)?;
            match m.status {
                Status::Assigned | Status::OnHold | Status::HelpAnswered => {}
                s => return Err(refuse("request help for", s)),
            }
            if !is_assignee(m, me) {
                return Err(DomainError::Forbidden("only the assignee may request help"));
            }
            tx.status_with(
                &message_id,
                Status::HelpRequested,
                None,
                &by,
                Some(question),
                None,
                None,
            );
        }
        Command::AnswerHelp {
            message_id,
            answer,
            requester_present,
        } => {
            let (me, role) = agent_of(actor)?;
            let m = tx.message(&message_id)?;
            let open_help = m.help.as_ref().filter(|h| h.answer.is_none());
            let requester = match (m.status, open_help) {
                (Status::Assigned, Some(h)) => h.requested_by.clone(),
                (s, _) => return Err(refuse("answer help for", s)),
            };
            if !is_assignee(m, me) && !role.is_supervisor() {
                return Err(DomainError::Forbidden(
                    "only the assignee or a supervisor may answer help",
                ));
            }
            let (to, assignee) = if requester_present {
                (Status::HelpAnswered, Some(requester))
            } else {
                (Status::Pending, None)
            };
            tx.status_with(&message_id, to, assignee, &by, None, Some(answer), None);
        }
        Command::Archive { message_id } => {
            let (me, _) = agent_of(actor)?;
            let m = tx.message(&message_id)?;
            match m.status {
                Status::Assigned | Status::OnHold | Status::HelpAnswered => {}
                s => return Err(refuse("archive", s)),
            }
            if !is_assignee(m, me) {
                return Err(DomainError::Forbidden("only the assignee may archive"));
            }
            let assignee = m.assignee.clone();
            tx.status(&message_id, Status::Archived, assignee, &by);
        }
        Command::Reopen { message_id } => {
            agent_of(actor)?;
            let m = tx.message(&message_id)?;
            match m.status {
                Status::Answered | Status::Archived => {}
                s => return Err(refuse("reopen", s)),
            }
            tx.status(&message_id, Status::Pending, None, &by);
            // A pending message is work: its conversation leaves the closed list (after
            // the status change that causes it, as the message's own answer comes first).
            let conv = tx.conversation()?;
            if conv.state == ConvState::Closed {
                let mut conversation = conv.clone();
                conversation.state = ConvState::Open;
                tx.emit(EventBody::ConversationReopened {
                    conversation,
                    by: Some(by.clone()),
                });
            }
        }
        Command::Reply { id, text } => {
            let (me, _) = agent_of(actor)?;
            let conv = tx.conversation()?.clone();
            if conv.session == SessionState::Ended {
                return Err(DomainError::SessionEnded);
            }
            tx.emit(EventBody::ReplyCreated {
                reply: Reply {
                    id,
                    conversation_id: conv.id.clone(),
                    author: Author {
                        kind: AuthorKind::Agent,
                        id: me.to_string(),
                    },
                    text,
                    at: now,
                    seq: 0,
                },
            });
            let targets: Vec<(MessageId, Status)> = tx
                .state
                .messages
                .iter()
                .filter(|m| {
                    m.status == Status::Pending
                        || (matches!(
                            m.status,
                            Status::Assigned | Status::OnHold | Status::HelpAnswered
                        ) && is_assignee(m, me))
                })
                .map(|m| (m.id.clone(), m.status))
                .collect();
            for (mid, status) in targets {
                if status == Status::Pending {
                    tx.status(&mid, Status::Assigned, Some(me.to_string()), &by);
                }
                tx.status(&mid, Status::Answered, Some(me.to_string()), &by);
            }
            tx.owner_if_none(me.as_str(), &by);
            tx.set_bot(false, &by);
        }
        Command::Comment { id, text, mentions } => {
            let (me, _) = agent_of(actor)?;
            let conv_id = tx.conversation()?.id.clone();
            tx.emit(EventBody::CommentCreated {
                comment: Comment {
                    id,
                    conversation_id: conv_id,
                    author: Author {
                        kind: AuthorKind::Agent,
                        id: me.to_string(),
                    },
                    text,
                    mentions,
                    at: now,
                    seq: 0,
                },
            });
        }
        Command::Close { notes } => {
            agent_of(actor)?;
            if tx.conversation()?.state == ConvState::Closed {
                return Err(DomainError::Conflict("the conversation is already closed"));
            }
            tx.close(&by, notes);
        }
        Command::AutoClose {
            notes,
            last_seq,
            latest_seq,
        } => {
            if !matches!(actor, Actor::System) {
                return Err(DomainError::Forbidden("only the hub closes automatically"));
            }
            let c = tx.conversation()?;
            if c.state == ConvState::Closed {
                return Err(DomainError::Conflict("the conversation is already closed"));
            }
            if c.spam {
                return Err(DomainError::Conflict("the conversation is spam"));
            }
            if last_seq != latest_seq {
                return Err(DomainError::Conflict("the conversation moved since"));
            }
            if tx.state.messages.iter().any(|m| m.status.is_open()) {
                return Err(DomainError::Conflict("a message waits for the team"));
            }
            tx.close("system", Some(notes));
        }
        Command::EndSession { reason } => {
            agent_of(actor)?;
            if tx.conversation()?.session == SessionState::Ended {
                return Err(DomainError::Conflict("the session has already ended"));
            }
            tx.emit(EventBody::SessionEnded { by, reason });
        }
        Command::Rate { score, comment } => {
            let c = tx.conversation()?;
            let contact = its_customer(actor, c, "only the conversation's customer rates it")?;
            if c.goes_on() {
                return Err(DomainError::Conflict(
                    "a conversation is rated once it is closed or its session has ended",
                ));
            }
            if tx.state.rating.as_ref() != Some(&(score, comment.clone())) {
                tx.emit(EventBody::Rated {
                    score,
                    comment,
                    contact_id: contact,
                });
            }
        }
        Command::ViewPage { url, title } => {
            let c = tx.conversation()?;
            let contact_id = its_customer(actor, c, "only the conversation's customer browses")?;
            if c.notes_pages() && tx.state.page.as_deref() != Some(url.as_str()) {
                tx.emit(EventBody::Page {
                    url,
                    title,
                    contact_id,
                });
            }
        }
        Command::SetSpam { spam } => {
            if tx.conversation()?.spam != spam {
                tx.emit(EventBody::Spam { spam, by });
            }
        }
        Command::SetOwner { agent_id } => {
            let (me, role) = agent_of(actor)?;
            let c = tx.conversation()?;
            let current = c.owner.clone();
            let open = c.state == ConvState::Open;
            if current.as_deref() != Some(agent_id.as_str()) {
                // A supervisor gives any conversation to anyone; its owner hands it
                // over; an agent takes one nobody owns.
                let allowed = role.is_supervisor()
                    || current.as_deref() == Some(me.as_str())
                    || (current.is_none() && &agent_id == me);
                if !allowed {
                    return Err(DomainError::Forbidden(if current.is_some() {
                        "only the conversation's owner or a supervisor may give it to someone else"
                    } else {
                        "an agent may only take a conversation for itself"
                    }));
                }
                tx.emit(EventBody::Owner {
                    owner: agent_id.to_string(),
                    by: by.clone(),
                });
                // a human now handles the open conversation: the bot stays off (§6.4)
                if open {
                    tx.set_bot(false, &by);
                }
            }
        }
        Command::AutoAssign {
            message_id,
            agent_id,
        } => {
            if !matches!(actor, Actor::System) {
                return Err(DomainError::Forbidden("only the hub assigns automatically"));
            }
            let m = tx.message(&message_id)?;
            if m.status != Status::Pending {
                return Err(refuse("assign", m.status));
            }
            if tx.conversation()?.spam {
                return Err(DomainError::Conflict("the conversation is spam"));
            }
            tx.assign_to(&message_id, &agent_id, "system");
        }
        Command::Release {
            message_id,
            agent_id,
            agent_present,
            offline_since,
        } => {
            if !matches!(actor, Actor::System) {
                return Err(DomainError::Forbidden(
                    "only the hub hands back an offline agent's messages",
                ));
            }
            let m = tx.message(&message_id)?;
            match m.status {
                Status::Assigned | Status::HelpAnswered => {}
                s => return Err(refuse("unassign", s)),
            }
            if m.assignee.as_deref() != Some(agent_id.as_str()) {
                return Err(DomainError::Conflict(
                    "the message is no longer that agent's",
                ));
            }
            if agent_present {
                return Err(DomainError::Conflict("the agent is present again"));
            }
            if m.seq > offline_since {
                return Err(DomainError::Conflict(
                    "the message was given to the agent after it went offline",
                ));
            }
            let c = tx.conversation()?;
            if c.spam || c.session == SessionState::Ended {
                return Err(DomainError::Conflict(
                    "the conversation is spam or its session has ended",
                ));
            }
            tx.status(&message_id, Status::Pending, None, "system");
        }
        Command::HoldExpired {
            message_id,
            until,
            assignee_present,
        } => {
            let m = tx.message(&message_id)?;
            if m.status == Status::OnHold && m.hold_until == Some(until) {
                let assignee = m.assignee.clone().filter(|_| assignee_present);
                let to = if assignee.is_some() {
                    Status::Assigned
                } else {
                    Status::Pending
                };
                tx.status(&message_id, to, assignee, "system");
            }
        }
    }
    Ok(tx.out)
}

/// PROTOCOL §6.4: the published assistant handles a fresh customer message.
fn bot_handles(tx: &mut Tx, a: &Assistant, mid: &MessageId, text: &str, reply_id: ReplyId) {
    let bot = bot_ref(&a.id);
    let decision = a.decide(text);
    if decision == BotDecision::Spam {
        tx.emit(EventBody::Spam {
            spam: true,
            by: bot,
        });
        return;
    }
    tx.status(mid, Status::Assigned, Some(bot.clone()), &bot);
    let say = |tx: &mut Tx, text: String| {
        let conversation_id = tx.conversation_id.clone();
        let now = tx.now;
        tx.emit(EventBody::ReplyCreated {
            reply: Reply {
                id: reply_id.clone(),
                conversation_id,
                author: Author {
                    kind: AuthorKind::Bot,
                    id: a.id.to_string(),
                },
                text,
                at: now,
                seq: 0,
            },
        });
    };
    match decision {
        BotDecision::Reply(text) => {
            say(tx, text);
            tx.status(mid, Status::Answered, Some(bot.clone()), &bot);
        }
        BotDecision::Transfer { reply } => {
            if let Some(text) = reply {
                say(tx, text);
            }
            tx.status(mid, Status::Answered, Some(bot.clone()), &bot);
            tx.status(mid, Status::Pending, None, &bot);
            tx.set_bot(false, &bot);
        }
        BotDecision::Spam => {}
    }
}
