//! Property tests of the message status machine (PROTOCOL §6.1) against an independent
//! reference model, plus unit tests of its trickiest rows.
//!
//! A random case is three agents with random roles, optionally a published assistant, and a
//! sequence of commands (customer messages, assign, unassign, hold, request/answer help,
//! archive, reopen, reply, close, end-session, spam, hold expiry) by random actors (the
//! agents, the message's assignee, two contacts, the system). After every step:
//!
//! 1. every message has exactly one status, the status invariants hold, and the model
//!    (written from the protocol text, never calling `apply`) agrees with the real state,
//!    on the outcome (events or the error) and on every message and the conversation;
//! 2. a refused command emits nothing and leaves the state unchanged;
//! 3. each `message.status_changed` has `from` = the status before it, `to` = the one after;
//! 4. after a reply by X, nothing is pending nor assigned/on_hold/help_answered to X;
//! 5. the state rebuilt from the event log (each event through a JSON round trip) equals
//!    the live one.

use super::*;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use std::collections::BTreeMap;

const CONV: &str = "conv1";
const T0: i64 = 1_700_000_000_000;
const AGENTS: [&str; 3] = ["a0", "a1", "a2"];
const CONTACTS: [&str; 2] = ["c0", "c1"];
const BOT: &str = "bot1";
const TEXTS: [&str; 6] = [
    "hello",
    "what is the PRICE?",
    "I want a human",
    "casino bonus",
    "price for a Human please",
    "thanks",
];

// ---------------------------------------------------------------------------------------
// The reference model: PROTOCOL §6.1 (and the bits of §6.2 / §6.4 that move statuses).
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
enum MErr {
    NotFound,
    Transition(Status),
    Forbidden,
    SessionEnded,
    Conflict,
    Invalid,
}

fn merr(e: &DomainError) -> MErr {
    match e {
        DomainError::NotFound(_) => MErr::NotFound,
        DomainError::InvalidTransition { from, .. } => MErr::Transition(*from),
        DomainError::Forbidden(_) => MErr::Forbidden,
        DomainError::SessionEnded => MErr::SessionEnded,
        DomainError::Conflict(_) => MErr::Conflict,
        DomainError::Invalid(_) => MErr::Invalid,
    }
}

fn merr_label(e: &MErr) -> &'static str {
    match e {
        MErr::NotFound => "not_found",
        MErr::Transition(_) => "invalid_transition",
        MErr::Forbidden => "forbidden",
        MErr::SessionEnded => "session_ended",
        MErr::Conflict => "conflict",
        MErr::Invalid => "invalid",
    }
}

/// What the model expects to be emitted, in a form comparable with the real events.
#[derive(Clone, Debug, PartialEq, Eq)]
enum MEv {
    Opened,
    Reopened,
    Created(String),
    Status {
        mid: String,
        from: Status,
        to: Status,
        assignee: Option<String>,
        by: String,
    },
    Reply(String),
    Closed(String),
    Ended(String),
    Spam(bool, String),
    Bot(bool, String),
    Owner(String, String),
    Rated(u8),
    Page(String),
}

fn mev(body: &EventBody) -> MEv {
    match body {
        EventBody::ConversationOpened { .. } => MEv::Opened,
        EventBody::ConversationReopened { .. } => MEv::Reopened,
        EventBody::MessageCreated { message } => MEv::Created(message.id.to_string()),
        EventBody::StatusChanged(ch) => MEv::Status {
            mid: ch.message_id.to_string(),
            from: ch.from,
            to: ch.to,
            assignee: ch.assignee.clone(),
            by: ch.by.clone(),
        },
        EventBody::ReplyCreated { reply } => {
            let kind = match reply.author.kind {
                AuthorKind::Agent => "agent",
                AuthorKind::Bot => "bot",
            };
            MEv::Reply(format!("{kind}:{}", reply.author.id))
        }
        EventBody::ConversationClosed { by, .. } => MEv::Closed(by.clone()),
        EventBody::SessionEnded { by, .. } => MEv::Ended(by.clone()),
        EventBody::Spam { spam, by } => MEv::Spam(*spam, by.clone()),
        EventBody::Bot { active, by } => MEv::Bot(*active, by.clone()),
        EventBody::Owner { owner, by } => MEv::Owner(owner.clone(), by.clone()),
        EventBody::Rated { score, .. } => MEv::Rated(*score),
        EventBody::Page { url, .. } => MEv::Page(url.clone()),
        other => panic!("unexpected event {other:?}"),
    }
}

#[derive(Clone, Debug)]
struct MConv {
    contact: String,
    closed: bool,
    ended: bool,
    spam: bool,
    bot_active: bool,
    owner: Option<String>,
    rating: Option<(u8, Option<String>)>,
    page: Option<String>,
}

#[derive(Clone, Debug)]
struct MMsg {
    id: String,
    status: Status,
    assignee: Option<String>,
    help: Option<Help>,
    hold_until: Option<Ts>,
}

#[derive(Clone, Debug, Default)]
struct Model {
    conv: Option<MConv>,
    msgs: Vec<MMsg>,
}

/// The acting agent and whether it is a supervisor/admin, or 403.
fn model_agent(actor: &Actor) -> Result<(String, bool), MErr> {
    match actor {
        Actor::Agent { id, role } => Ok((
            id.to_string(),
            matches!(role, Role::Supervisor | Role::Admin),
        )),
        _ => Err(MErr::Forbidden),
    }
}

fn model_by(actor: &Actor) -> String {
    match actor {
        Actor::Agent { id, .. } => id.to_string(),
        Actor::Contact(c) => c.to_string(),
        Actor::Bot(b) => format!("bot:{}", b.0),
        Actor::System => "system".into(),
    }
}

impl Model {
    fn find(&self, id: &MessageId) -> Result<usize, MErr> {
        self.msgs
            .iter()
            .position(|m| m.id == id.as_str())
            .ok_or(MErr::NotFound)
    }

    fn conv(&mut self) -> &mut MConv {
        self.conv.as_mut().expect("conversation exists")
    }

    /// One status change: `hold_until` only survives into `on_hold`.
    fn set(
        &mut self,
        i: usize,
        to: Status,
        assignee: Option<String>,
        by: &str,
        hold_until: Option<Ts>,
        out: &mut Vec<MEv>,
    ) {
        let m = &mut self.msgs[i];
        out.push(MEv::Status {
            mid: m.id.clone(),
            from: m.status,
            to,
            assignee: assignee.clone(),
            by: by.to_string(),
        });
        m.status = to;
        m.assignee = assignee;
        m.hold_until = if to == Status::OnHold {
            hold_until
        } else {
            None
        };
    }

    fn owner_if_none(&mut self, agent: &str, by: &str, out: &mut Vec<MEv>) {
        let c = self.conv();
        if c.owner.is_none() {
            c.owner = Some(agent.to_string());
            out.push(MEv::Owner(agent.to_string(), by.to_string()));
        }
    }

    fn bot_active(&mut self, active: bool, by: &str, out: &mut Vec<MEv>) {
        let c = self.conv();
        if c.bot_active != active {
            c.bot_active = active;
            out.push(MEv::Bot(active, by.to_string()));
        }
    }

    /// Applies a command to a copy; the copy and the expected events, or the refusal.
    fn step(&self, cmd: &Command, actor: &Actor, now: Ts) -> Result<(Model, Vec<MEv>), MErr> {
        let mut m = self.clone();
        let mut out = Vec::new();
        m.exec(cmd, actor, now, &mut out)?;
        Ok((m, out))
    }

    fn exec(
        &mut self,
        cmd: &Command,
        actor: &Actor,
        _now: Ts,
        out: &mut Vec<MEv>,
    ) -> Result<(), MErr> {
        // Nothing but an opening customer message reaches a conversation that does not exist.
        if self.conv.is_none() && !matches!(cmd, Command::CustomerMessage { open: Some(_), .. }) {
            return Err(MErr::NotFound);
        }
        let by = model_by(actor);
        const HELD: [Status; 3] = [Status::Assigned, Status::OnHold, Status::HelpAnswered];
        match cmd {
            Command::CustomerMessage {
                id,
                text,
                open,
                assistant,
                ..
            } => {
                let Actor::Contact(contact) = actor else {
                    return Err(MErr::Forbidden);
                };
                match self.conv.as_mut() {
                    None => {
                        let open = open.as_ref().expect("checked above");
                        self.conv = Some(MConv {
                            contact: open.contact_id.to_string(),
                            closed: false,
                            ended: false,
                            spam: false,
                            bot_active: true,
                            owner: None,
                            rating: None,
                            page: None,
                        });
                        out.push(MEv::Opened);
                    }
                    Some(c) => {
                        if c.contact != contact.as_str() {
                            return Err(MErr::Forbidden);
                        }
                        if c.ended {
                            return Err(MErr::SessionEnded);
                        }
                        if c.closed {
                            c.closed = false;
                            out.push(MEv::Reopened);
                        }
                    }
                }
                self.msgs.push(MMsg {
                    id: id.to_string(),
                    status: Status::Pending,
                    assignee: None,
                    help: None,
                    hold_until: None,
                });
                out.push(MEv::Created(id.to_string()));
                let c = self.conv();
                if let Some(a) = assistant.as_ref().filter(|_| c.bot_active && !c.spam) {
                    self.bot(a, self.msgs.len() - 1, text, out);
                }
            }
            Command::Assign {
                message_id,
                agent_id,
            } => {
                let (me, sup) = model_agent(actor)?;
                let i = self.find(message_id)?;
                match self.msgs[i].status {
                    // Any agent to itself; supervisor/admin to anyone.
                    Status::Pending => {
                        if !sup && agent_id.as_str() != me {
                            return Err(MErr::Forbidden);
                        }
                    }
                    // Assign help: supervisor/admin only; `help` is kept.
                    Status::HelpRequested => {
                        if !sup {
                            return Err(MErr::Forbidden);
                        }
                    }
                    s => return Err(MErr::Transition(s)),
                }
                self.set(
                    i,
                    Status::Assigned,
                    Some(agent_id.to_string()),
                    &by,
                    None,
                    out,
                );
                self.owner_if_none(&agent_id.0, &by, out);
                self.bot_active(false, &by, out);
            }
            Command::Unassign { message_id } => {
                let (me, sup) = model_agent(actor)?;
                let i = self.find(message_id)?;
                let m = &self.msgs[i];
                if !HELD.contains(&m.status) {
                    return Err(MErr::Transition(m.status));
                }
                if m.assignee.as_deref() != Some(&me) && !sup {
                    return Err(MErr::Forbidden);
                }
                self.set(i, Status::Pending, None, &by, None, out);
            }
            Command::Hold { message_id, until } => {
                let (me, _) = model_agent(actor)?;
                let i = self.find(message_id)?;
                let m = &self.msgs[i];
                if !matches!(m.status, Status::Assigned | Status::HelpAnswered) {
                    return Err(MErr::Transition(m.status));
                }
                if m.assignee.as_deref() != Some(&me) {
                    return Err(MErr::Forbidden);
                }
                let assignee = m.assignee.clone();
                self.set(i, Status::OnHold, assignee, &by, *until, out);
            }
            Command::RequestHelp {
                message_id,
                question,
            } => {
                let (me, _) = model_agent(actor)?;
                let i = self.find(message_id)?;
                let m = &self.msgs[i];
                if !HELD.contains(&m.status) {
                    return Err(MErr::Transition(m.status));
                }
                if m.assignee.as_deref() != Some(&me) {
                    return Err(MErr::Forbidden);
                }
                self.set(i, Status::HelpRequested, None, &by, None, out);
                self.msgs[i].help = Some(Help {
                    requested_by: me,
                    question: question.clone(),
                    answer: None,
                });
            }
            Command::AnswerHelp {
                message_id,
                answer,
                requester_present,
            } => {
                let (me, sup) = model_agent(actor)?;
                let i = self.find(message_id)?;
                let m = &self.msgs[i];
                let requester = match (&m.status, &m.help) {
                    (Status::Assigned, Some(h)) if h.answer.is_none() => h.requested_by.clone(),
                    (s, _) => return Err(MErr::Transition(*s)),
                };
                if m.assignee.as_deref() != Some(&me) && !sup {
                    return Err(MErr::Forbidden);
                }
                if *requester_present {
                    self.set(i, Status::HelpAnswered, Some(requester), &by, None, out);
                } else {
                    self.set(i, Status::Pending, None, &by, None, out);
                }
                if let Some(h) = self.msgs[i].help.as_mut() {
                    h.answer = Some(answer.clone());
                }
            }
            Command::Archive { message_id } => {
                let (me, _) = model_agent(actor)?;
                let i = self.find(message_id)?;
                let m = &self.msgs[i];
                if !HELD.contains(&m.status) {
                    return Err(MErr::Transition(m.status));
                }
                if m.assignee.as_deref() != Some(&me) {
                    return Err(MErr::Forbidden);
                }
                let assignee = m.assignee.clone();
                self.set(i, Status::Archived, assignee, &by, None, out);
            }
            Command::Reopen { message_id } => {
                model_agent(actor)?;
                let i = self.find(message_id)?;
                let s = self.msgs[i].status;
                if !matches!(s, Status::Answered | Status::Archived) {
                    return Err(MErr::Transition(s));
                }
                self.set(i, Status::Pending, None, &by, None, out);
                let c = self.conv.as_mut().expect("a message has a conversation");
                if c.closed {
                    c.closed = false;
                    out.push(MEv::Reopened);
                }
            }
            Command::Reply { .. } => {
                let (me, _) = model_agent(actor)?;
                if self.conv().ended {
                    return Err(MErr::SessionEnded);
                }
                out.push(MEv::Reply(format!("agent:{me}")));
                for i in 0..self.msgs.len() {
                    let m = &self.msgs[i];
                    if m.status == Status::Pending {
                        self.set(i, Status::Assigned, Some(me.clone()), &by, None, out);
                        self.set(i, Status::Answered, Some(me.clone()), &by, None, out);
                    } else if HELD.contains(&m.status) && m.assignee.as_deref() == Some(&me) {
                        self.set(i, Status::Answered, Some(me.clone()), &by, None, out);
                    }
                }
                self.owner_if_none(&me, &by, out);
                self.bot_active(false, &by, out);
            }
            Command::Close { .. } => {
                model_agent(actor)?;
                if self.conv().closed {
                    return Err(MErr::Conflict);
                }
                for i in 0..self.msgs.len() {
                    let m = &self.msgs[i];
                    if !matches!(m.status, Status::Answered | Status::Archived) {
                        let assignee = m.assignee.clone();
                        self.set(i, Status::Archived, assignee, &by, None, out);
                    }
                }
                self.conv().closed = true;
                out.push(MEv::Closed(by.clone()));
                self.bot_active(true, &by, out);
            }
            Command::AutoClose {
                last_seq,
                latest_seq,
                ..
            } => {
                // Only the hub, an open conversation that is not spam, unchanged since it
                // was found idle, with no message waiting for the team.
                if !matches!(actor, Actor::System) {
                    return Err(MErr::Forbidden);
                }
                let c = self.conv();
                if c.closed || c.spam || last_seq != latest_seq {
                    return Err(MErr::Conflict);
                }
                if self
                    .msgs
                    .iter()
                    .any(|m| !matches!(m.status, Status::Answered | Status::Archived))
                {
                    return Err(MErr::Conflict);
                }
                self.conv().closed = true;
                out.push(MEv::Closed("system".into()));
                self.bot_active(true, "system", out);
            }
            Command::EndSession { .. } => {
                model_agent(actor)?;
                let c = self.conv();
                if c.ended {
                    return Err(MErr::Conflict);
                }
                c.ended = true;
                out.push(MEv::Ended(by));
            }
            // The rating extension: the conversation's own customer, once it is closed or
            // its session ended; the same rating again changes nothing.
            Command::Rate { score, comment } => {
                let c = self.conv();
                if !matches!(actor, Actor::Contact(k) if k.as_str() == c.contact) {
                    return Err(MErr::Forbidden);
                }
                if !c.closed && !c.ended {
                    return Err(MErr::Conflict);
                }
                let rating = Some((*score, comment.clone()));
                if c.rating != rating {
                    c.rating = rating;
                    out.push(MEv::Rated(*score));
                }
            }
            // The page extension: the conversation's customer; noted while open, active
            // and not spam, once per page in a row.
            Command::ViewPage { url, .. } => {
                let c = self.conv();
                if !matches!(actor, Actor::Contact(k) if k.as_str() == c.contact) {
                    return Err(MErr::Forbidden);
                }
                if !c.closed && !c.ended && !c.spam && c.page.as_deref() != Some(url.as_str()) {
                    c.page = Some(url.clone());
                    out.push(MEv::Page(url.clone()));
                }
            }
            Command::SetSpam { spam } => {
                let c = self.conv();
                if c.spam != *spam {
                    c.spam = *spam;
                    out.push(MEv::Spam(*spam, by));
                }
            }
            // The owner extension: a supervisor to anyone, the owner to anyone, an agent
            // to itself when nobody owns it; the same owner changes nothing.
            Command::SetOwner { agent_id } => {
                let (me, sup) = model_agent(actor)?;
                let c = self.conv();
                if c.owner.as_deref() != Some(agent_id.as_str()) {
                    let mine = c.owner.as_deref() == Some(me.as_str());
                    let free_for_me = c.owner.is_none() && agent_id.as_str() == me.as_str();
                    if !(sup || mine || free_for_me) {
                        return Err(MErr::Forbidden);
                    }
                    c.owner = Some(agent_id.to_string());
                    let open = !c.closed;
                    out.push(MEv::Owner(agent_id.to_string(), by.clone()));
                    if open {
                        self.bot_active(false, &by, out);
                    }
                }
            }
            Command::AutoAssign {
                message_id,
                agent_id,
            } => {
                // Only the hub assigns automatically, a pending message of a conversation
                // that is not spam; as an assignment by hand otherwise, by `system`.
                if !matches!(actor, Actor::System) {
                    return Err(MErr::Forbidden);
                }
                let i = self.find(message_id)?;
                if self.msgs[i].status != Status::Pending {
                    return Err(MErr::Transition(self.msgs[i].status));
                }
                if self.conv().spam {
                    return Err(MErr::Conflict);
                }
                let a = Some(agent_id.to_string());
                self.set(i, Status::Assigned, a, "system", None, out);
                self.owner_if_none(&agent_id.0, "system", out);
                self.bot_active(false, "system", out);
            }
            Command::Release {
                message_id,
                agent_id,
                agent_present,
                offline_since,
            } => {
                // Only the hub, a message assigned or help answered to that agent, who is
                // not present and had it when going offline, in a conversation neither
                // spam nor ended: back to pending. (Seqs start at 1: since 0 means the
                // agent went offline before anything happened.)
                if !matches!(actor, Actor::System) {
                    return Err(MErr::Forbidden);
                }
                let i = self.find(message_id)?;
                let m = &self.msgs[i];
                if !matches!(m.status, Status::Assigned | Status::HelpAnswered) {
                    return Err(MErr::Transition(m.status));
                }
                if m.assignee.as_deref() != Some(agent_id.as_str())
                    || *agent_present
                    || *offline_since == 0
                {
                    return Err(MErr::Conflict);
                }
                let c = self.conv();
                if c.spam || c.ended {
                    return Err(MErr::Conflict);
                }
                self.set(i, Status::Pending, None, "system", None, out);
            }
            Command::HoldExpired {
                message_id,
                until,
                assignee_present,
            } => {
                let i = self.find(message_id)?;
                let m = &self.msgs[i];
                // A stale timer (the message moved on, or was held again) does nothing.
                if m.status == Status::OnHold && m.hold_until == Some(*until) {
                    if *assignee_present {
                        let a = m.assignee.clone();
                        self.set(i, Status::Assigned, a, "system", None, out);
                    } else {
                        self.set(i, Status::Pending, None, "system", None, out);
                    }
                }
            }
            Command::Comment { .. } => unreachable!("not generated"),
        }
        Ok(())
    }

    /// §6.4, written from the protocol text: spam → transfer → rule → default → transfer.
    fn bot(&mut self, a: &Assistant, i: usize, text: &str, out: &mut Vec<MEv>) {
        let bot = format!("bot:{}", a.id.0);
        let lower = text.to_lowercase();
        let hit = |k: &String| {
            let k = k.trim().to_lowercase();
            !k.is_empty() && lower.contains(&k)
        };
        if a.spam_keywords.iter().any(hit) {
            self.conv().spam = true;
            out.push(MEv::Spam(true, bot));
            return;
        }
        self.set(i, Status::Assigned, Some(bot.clone()), &bot, None, out);
        let transfer = a.transfer_keywords.iter().any(hit)
            || (!a.rules.iter().any(|r| hit(&r.pattern)) && a.default_reply.is_none());
        if transfer {
            if a.transfer_reply.is_some() {
                out.push(MEv::Reply(format!("bot:{}", a.id.0)));
            }
            self.set(i, Status::Answered, Some(bot.clone()), &bot, None, out);
            self.set(i, Status::Pending, None, &bot, None, out);
            self.bot_active(false, &bot, out);
        } else {
            out.push(MEv::Reply(format!("bot:{}", a.id.0)));
            self.set(i, Status::Answered, Some(bot.clone()), &bot, None, out);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Generated cases.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Who {
    Agent(usize),
    /// The current assignee of the target message if it is one of our agents, else agent 0.
    Assignee,
    Contact(usize),
    System,
}

/// Which message an op targets.
#[derive(Clone, Copy, Debug)]
enum MsgSel {
    /// The message the previous message op targeted (or the newest), to follow lifecycles.
    Last,
    /// Any existing message, or (one time in n+1) a missing one.
    Any(Index),
}

#[derive(Clone, Copy, Debug)]
enum HoldArg {
    Forever,
    Future(i64),
    /// `until` already passed when the command runs (accepted: the edge validated it
    /// against the request's time; the hold ends when its timer fires, at once).
    Past(i64),
}

#[derive(Clone, Debug)]
enum Op {
    Customer {
        contact: usize,
        open: bool,
        text: usize,
    },
    Assign {
        who: Who,
        msg: MsgSel,
        to_self: bool,
        to: usize,
    },
    Unassign {
        who: Who,
        msg: MsgSel,
    },
    Hold {
        who: Who,
        msg: MsgSel,
        until: HoldArg,
    },
    RequestHelp {
        who: Who,
        msg: MsgSel,
    },
    AnswerHelp {
        who: Who,
        msg: MsgSel,
        present: bool,
    },
    Archive {
        who: Who,
        msg: MsgSel,
    },
    Reopen {
        who: Who,
        msg: MsgSel,
    },
    Reply {
        who: Who,
    },
    Close {
        who: Who,
    },
    EndSession {
        who: Who,
    },
    Spam {
        agent: usize,
        spam: bool,
    },
    Owner {
        who: Who,
        to_self: bool,
        to: usize,
    },
    HoldExpired {
        msg: MsgSel,
        matching: bool,
        present: bool,
    },
    AutoAssign {
        who: Who,
        msg: MsgSel,
        to: usize,
    },
    AutoClose {
        who: Who,
        stale: bool,
    },
    Release {
        who: Who,
        msg: MsgSel,
        /// The agent named: the message's assignee, or one of the three.
        of: Option<usize>,
        present: bool,
        /// The agent went offline before everything (the message was given to it later).
        before_all: bool,
    },
    Rate {
        who: Who,
        score: u8,
        comment: bool,
    },
    Page {
        who: Who,
        /// One of two pages.
        page: u8,
    },
}

#[derive(Clone, Debug)]
struct Case {
    roles: [Role; 3],
    /// No assistant, or one with (`default_reply`, `transfer_reply`) set or not.
    bot: Option<(bool, bool)>,
    /// Milliseconds that pass before each op, and the op.
    ops: Vec<(u16, Op)>,
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Agent), Just(Role::Supervisor), Just(Role::Admin)]
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        5 => Just(Who::Assignee),
        6 => (0..3usize).prop_map(Who::Agent),
        1 => (0..2usize).prop_map(Who::Contact),
        1 => Just(Who::System),
    ]
}

fn msg_sel() -> impl Strategy<Value = MsgSel> {
    prop_oneof![2 => Just(MsgSel::Last), 1 => any::<Index>().prop_map(MsgSel::Any)]
}

fn hold_arg() -> impl Strategy<Value = HoldArg> {
    prop_oneof![
        3 => Just(HoldArg::Forever),
        6 => (1..120_000i64).prop_map(HoldArg::Future),
        1 => (0..5_000i64).prop_map(HoldArg::Past),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prop::sample::select(vec![0usize, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
              prop::bool::weighted(0.9), 0..TEXTS.len())
            .prop_map(|(contact, open, text)| Op::Customer { contact, open, text }),
        14 => (who(), msg_sel(), prop::bool::weighted(0.6), 0..3usize)
            .prop_map(|(who, msg, to_self, to)| Op::Assign { who, msg, to_self, to }),
        6 => (who(), msg_sel()).prop_map(|(who, msg)| Op::Unassign { who, msg }),
        8 => (who(), msg_sel(), hold_arg())
            .prop_map(|(who, msg, until)| Op::Hold { who, msg, until }),
        10 => (who(), msg_sel()).prop_map(|(who, msg)| Op::RequestHelp { who, msg }),
        16 => (who(), msg_sel(), any::<bool>())
            .prop_map(|(who, msg, present)| Op::AnswerHelp { who, msg, present }),
        6 => (who(), msg_sel()).prop_map(|(who, msg)| Op::Archive { who, msg }),
        6 => (who(), msg_sel()).prop_map(|(who, msg)| Op::Reopen { who, msg }),
        3 => who().prop_map(|who| Op::Reply { who }),
        1 => who().prop_map(|who| Op::Close { who }),
        1 => who().prop_map(|who| Op::EndSession { who }),
        2 => (0..3usize, any::<bool>()).prop_map(|(agent, spam)| Op::Spam { agent, spam }),
        3 => (who(), prop::bool::weighted(0.5), 0..3usize)
            .prop_map(|(who, to_self, to)| Op::Owner { who, to_self, to }),
        6 => (msg_sel(), prop::bool::weighted(0.8), any::<bool>())
            .prop_map(|(msg, matching, present)| Op::HoldExpired { msg, matching, present }),
        4 => (prop_oneof![4 => Just(Who::System), 1 => who()], msg_sel(), 0..3usize)
            .prop_map(|(who, msg, to)| Op::AutoAssign { who, msg, to }),
        2 => (prop_oneof![4 => Just(Who::System), 1 => who()], prop::bool::weighted(0.2))
            .prop_map(|(who, stale)| Op::AutoClose { who, stale }),
        3 => (prop_oneof![4 => Just(Who::System), 1 => who()], msg_sel(),
              prop::option::weighted(0.2, 0..3usize), prop::bool::weighted(0.2),
              prop::bool::weighted(0.15))
            .prop_map(|(who, msg, of, present, before_all)| Op::Release { who, msg, of, present, before_all }),
        2 => (prop_oneof![3 => (0..2usize).prop_map(Who::Contact), 1 => who()], 1..=5u8, any::<bool>())
            .prop_map(|(who, score, comment)| Op::Rate { who, score, comment }),
        2 => (prop_oneof![3 => (0..2usize).prop_map(Who::Contact), 1 => who()], 0..2u8)
            .prop_map(|(who, page)| Op::Page { who, page }),
    ]
}

/// The first customer message, which opens the conversation (most cases start with one).
fn opening() -> impl Strategy<Value = Option<(u16, Op)>> {
    prop::option::weighted(
        0.9,
        (0..TEXTS.len()).prop_map(|text| {
            (
                0,
                Op::Customer {
                    contact: 0,
                    open: true,
                    text,
                },
            )
        }),
    )
}

fn case() -> impl Strategy<Value = Case> {
    (
        [role(), role(), role()],
        prop::option::weighted(0.3, (any::<bool>(), any::<bool>())),
        opening(),
        prop::collection::vec((0..5_000u16, op()), 1..70),
    )
        .prop_map(|(roles, bot, first, rest)| Case {
            roles,
            bot,
            ops: first.into_iter().chain(rest).collect(),
        })
}

fn assistant(default_reply: bool, transfer_reply: bool) -> Assistant {
    Assistant {
        id: AssistantId::from(BOT),
        name: "Bot".into(),
        status: "published".into(),
        channels: vec!["web".into()],
        rules: vec![Rule {
            pattern: "price".into(),
            reply: "See our pricing page.".into(),
        }],
        transfer_keywords: vec!["human".into()],
        transfer_reply: transfer_reply.then(|| "Connecting you to a human.".into()),
        spam_keywords: vec!["casino".into()],
        default_reply: default_reply.then(|| "We will get back to you.".into()),
    }
}

// ---------------------------------------------------------------------------------------
// The runner: drives the real domain and the model side by side and checks the properties.
// ---------------------------------------------------------------------------------------

struct World {
    roles: [Role; 3],
    assistant: Option<Assistant>,
    state: ConversationState,
    model: Model,
    /// Every event applied so far, and the same events after a JSON round trip.
    log: Vec<Event>,
    log_rt: Vec<Event>,
    seq: u64,
    now: Ts,
    next_id: usize,
    /// Every hold `until` handed out, for stale timers.
    holds: Vec<Ts>,
    /// `action:from:outcome` labels seen, for the coverage test.
    seen: BTreeMap<String, usize>,
    /// The focus: the message of the last op that changed one, followed through its
    /// lifecycle by `MsgSel::Last`.
    last: Option<MessageId>,
    /// The message the current op targets.
    targeted: Option<MessageId>,
    /// A store's snapshot of the conversation (head and runs, through JSON), written
    /// after every few ops that changed something: only the runs that changed since the
    /// last one.
    snapshot: Option<state::Snapshot>,
    runs: BTreeMap<u32, Vec<Message>>,
    changes: usize,
}

impl World {
    fn new(case: &Case) -> Self {
        World {
            roles: case.roles,
            assistant: case.bot.map(|(d, t)| assistant(d, t)),
            state: ConversationState::default(),
            model: Model::default(),
            log: Vec::new(),
            log_rt: Vec::new(),
            seq: 0,
            now: Ts(T0),
            next_id: 0,
            holds: Vec::new(),
            seen: BTreeMap::new(),
            last: None,
            targeted: None,
            snapshot: None,
            runs: BTreeMap::new(),
            changes: 0,
        }
    }

    fn agent(&self, i: usize) -> Actor {
        Actor::Agent {
            id: AgentId::from(AGENTS[i]),
            role: self.roles[i],
        }
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}", self.next_id)
    }

    /// The target message (remembered, to become the focus if the op succeeds).
    fn target(&mut self, msg: &MsgSel) -> (MessageId, Option<Message>) {
        let id = match msg {
            MsgSel::Last => self.last.clone(),
            MsgSel::Any(ix) => {
                let n = self.state.messages.len();
                self.state
                    .messages
                    .get(ix.index(n + 1))
                    .map(|m| m.id.clone())
            }
        };
        let id = id.unwrap_or_else(|| MessageId::from("missing"));
        self.targeted = Some(id.clone());
        let m = self.state.message(&id).cloned();
        (id, m)
    }

    fn actor(&self, who: Who, target: Option<&Message>) -> Actor {
        match who {
            Who::Agent(i) => self.agent(i),
            Who::Assignee => {
                let a = target.and_then(|m| m.assignee.as_deref());
                let i = AGENTS.iter().position(|x| Some(*x) == a).unwrap_or(0);
                self.agent(i)
            }
            Who::Contact(i) => Actor::Contact(ContactId::from(CONTACTS[i])),
            Who::System => Actor::System,
        }
    }

    /// Turns an op into a command, its actor and a label (`action:from`).
    fn resolve(&mut self, op: &Op) -> (Command, Actor, String) {
        let from = |m: Option<&Message>| m.map_or("missing", |m| m.status.as_str());
        match op {
            Op::Customer {
                contact,
                open,
                text,
            } => {
                let contact = ContactId::from(CONTACTS[*contact]);
                let cmd = Command::CustomerMessage {
                    id: MessageId::from(self.fresh("m")),
                    text: TEXTS[*text].to_string(),
                    open: open.then(|| OpenInfo {
                        conversation_id: ConversationId::from(CONV),
                        contact_id: contact.clone(),
                        channel: "web".into(),
                    }),
                    assistant: self.assistant.clone(),
                    bot_reply_id: ReplyId::from(self.fresh("r")),
                };
                if let Command::CustomerMessage { id, .. } = &cmd {
                    // A new message takes the focus only from one that is done.
                    let done = self
                        .last
                        .as_ref()
                        .and_then(|l| self.state.message(l))
                        .is_none_or(|m| !m.status.is_open());
                    if done {
                        self.targeted = Some(id.clone());
                    }
                }
                (cmd, Actor::Contact(contact), "customer".into())
            }
            Op::Assign {
                who,
                msg,
                to_self,
                to,
            } => {
                let (message_id, m) = self.target(msg);
                let actor = self.actor(*who, m.as_ref());
                let agent_id = match (&actor, to_self) {
                    (Actor::Agent { id, .. }, true) => id.clone(),
                    _ => AgentId::from(AGENTS[*to]),
                };
                let label = format!("assign:{}", from(m.as_ref()));
                (
                    Command::Assign {
                        message_id,
                        agent_id,
                    },
                    actor,
                    label,
                )
            }
            Op::AutoAssign { who, msg, to } => {
                let (message_id, m) = self.target(msg);
                let actor = self.actor(*who, m.as_ref());
                let label = format!("auto_assign:{}", from(m.as_ref()));
                let agent_id = AgentId::from(AGENTS[*to]);
                let cmd = Command::AutoAssign {
                    message_id,
                    agent_id,
                };
                (cmd, actor, label)
            }
            Op::Unassign { who, msg } => {
                let (message_id, m) = self.target(msg);
                let label = format!("unassign:{}", from(m.as_ref()));
                (
                    Command::Unassign { message_id },
                    self.actor(*who, m.as_ref()),
                    label,
                )
            }
            Op::Hold { who, msg, until } => {
                let (message_id, m) = self.target(msg);
                let actor = self.actor(*who, m.as_ref());
                let label = format!("hold:{}", from(m.as_ref()));
                let until = match until {
                    HoldArg::Forever => None,
                    HoldArg::Future(d) => Some(Ts(self.now.0 + d)),
                    HoldArg::Past(d) => Some(Ts(self.now.0 - d)),
                };
                self.holds.extend(until);
                (Command::Hold { message_id, until }, actor, label)
            }
            Op::RequestHelp { who, msg } => {
                let (message_id, m) = self.target(msg);
                let actor = self.actor(*who, m.as_ref());
                let label = format!("request_help:{}", from(m.as_ref()));
                let question = self.fresh("question ");
                (
                    Command::RequestHelp {
                        message_id,
                        question,
                    },
                    actor,
                    label,
                )
            }
            Op::AnswerHelp { who, msg, present } => {
                let (message_id, m) = self.target(msg);
                let actor = self.actor(*who, m.as_ref());
                let presence = if *present { "present" } else { "absent" };
                let label = format!("answer_help_{presence}:{}", from(m.as_ref()));
                let answer = self.fresh("answer ");
                let cmd = Command::AnswerHelp {
                    message_id,
                    answer,
                    requester_present: *present,
                };
                (cmd, actor, label)
            }
            Op::Archive { who, msg } => {
                let (message_id, m) = self.target(msg);
                let label = format!("archive:{}", from(m.as_ref()));
                (
                    Command::Archive { message_id },
                    self.actor(*who, m.as_ref()),
                    label,
                )
            }
            Op::Reopen { who, msg } => {
                let (message_id, m) = self.target(msg);
                let label = format!("reopen:{}", from(m.as_ref()));
                (
                    Command::Reopen { message_id },
                    self.actor(*who, m.as_ref()),
                    label,
                )
            }
            Op::Reply { who } => {
                let actor = self.actor(*who, None);
                let cmd = Command::Reply {
                    id: ReplyId::from(self.fresh("r")),
                    text: "hi".into(),
                };
                (cmd, actor, "reply".into())
            }
            Op::Close { who } => {
                let cmd = Command::Close { notes: None };
                (cmd, self.actor(*who, None), "close".into())
            }
            Op::Release {
                who,
                msg,
                of,
                present,
                before_all,
            } => {
                let (message_id, m) = self.target(msg);
                let actor = self.actor(*who, m.as_ref());
                let label = format!("release:{}", from(m.as_ref()));
                let agent_id = match of {
                    Some(i) => AgentId::from(AGENTS[*i]),
                    None => m
                        .as_ref()
                        .and_then(|m| m.assignee.clone())
                        .map(AgentId::from)
                        .unwrap_or_else(|| AgentId::from(AGENTS[0])),
                };
                let cmd = Command::Release {
                    message_id,
                    agent_id,
                    agent_present: *present,
                    offline_since: if *before_all { 0 } else { u64::MAX },
                };
                (cmd, actor, label)
            }
            Op::AutoClose { who, stale } => {
                let cmd = Command::AutoClose {
                    notes: "idle".into(),
                    last_seq: 7,
                    latest_seq: if *stale { 8 } else { 7 },
                };
                (cmd, self.actor(*who, None), "auto_close".into())
            }
            Op::EndSession { who } => {
                let cmd = Command::EndSession { reason: None };
                (cmd, self.actor(*who, None), "end_session".into())
            }
            Op::Rate {
                who,
                score,
                comment,
            } => {
                let cmd = Command::Rate {
                    score: *score,
                    comment: comment.then(|| "thanks".to_string()),
                };
                (cmd, self.actor(*who, None), "rate".into())
            }
            Op::Page { who, page } => {
                let cmd = Command::ViewPage {
                    url: format!("https://shop.example/{page}"),
                    title: None,
                };
                (cmd, self.actor(*who, None), "page".into())
            }
            Op::Spam { agent, spam } => {
                // The spam route is agent-only at the HTTP layer; the domain does not check.
                (
                    Command::SetSpam { spam: *spam },
                    self.agent(*agent),
                    "spam".into(),
                )
            }
            Op::Owner { who, to_self, to } => {
                let actor = self.actor(*who, None);
                let agent_id = match (&actor, to_self) {
                    (Actor::Agent { id, .. }, true) => id.clone(),
                    _ => AgentId::from(AGENTS[*to]),
                };
                (Command::SetOwner { agent_id }, actor, "owner".into())
            }
            Op::HoldExpired {
                msg,
                matching,
                present,
            } => {
                // A timer usually concerns a message that is on hold.
                let held: Vec<MessageId> = self
                    .state
                    .messages
                    .iter()
                    .filter(|m| m.hold_until.is_some())
                    .map(|m| m.id.clone())
                    .collect();
                let (message_id, m) = match msg {
                    MsgSel::Any(ix) if *matching && !held.is_empty() => {
                        let id = held[ix.index(held.len())].clone();
                        let m = self.state.message(&id).cloned();
                        (id, m)
                    }
                    _ => self.target(msg),
                };
                let label = format!("hold_expired:{}", from(m.as_ref()));
                let current = m.as_ref().and_then(|m| m.hold_until);
                let until = match (matching, current) {
                    (true, Some(u)) => u,
                    _ => {
                        let k = match msg {
                            MsgSel::Any(ix) => ix.index(self.holds.len().max(1)),
                            MsgSel::Last => self.holds.len().saturating_sub(1),
                        };
                        self.holds.get(k).copied().unwrap_or(Ts(T0 - 1))
                    }
                };
                // A timer fires when its time has come.
                self.now = self.now.max(until);
                let cmd = Command::HoldExpired {
                    message_id,
                    until,
                    assignee_present: *present,
                };
                (cmd, Actor::System, label)
            }
        }
    }

    fn step(&mut self, dt: u16, op: &Op) -> Result<(), TestCaseError> {
        self.now = Ts(self.now.0 + i64::from(dt));
        self.targeted = None;
        let (cmd, actor, label) = self.resolve(op);
        let now = self.now;
        let before = self.state.clone();
        let real = apply(&self.state, cmd.clone(), &actor, now);
        let expected = self.model.step(&cmd, &actor, now);
        let ctx = || format!("{cmd:?} by {actor:?}");
        match (real, expected) {
            (Err(e), Err(me)) => {
                prop_assert_eq!(merr(&e), me.clone(), "{}", ctx());
                *self
                    .seen
                    .entry(format!("{label}:{}", merr_label(&me)))
                    .or_default() += 1;
                // Property 2: a refusal changes nothing (and has no events to apply).
                prop_assert_eq!(&before.messages, &self.state.messages);
                prop_assert_eq!(&before.conversation, &self.state.conversation);
            }
            (Ok(bodies), Ok((model, mevs))) => {
                let outcome = if bodies.is_empty() { "noop" } else { "ok" };
                if !bodies.is_empty() && self.targeted.is_some() {
                    self.last = self.targeted.clone();
                }
                *self.seen.entry(format!("{label}:{outcome}")).or_default() += 1;
                let got: Vec<MEv> = bodies.iter().map(mev).collect();
                // Status changes in the exact order; the other events as a multiset.
                let status = |v: &[MEv]| -> Vec<MEv> {
                    v.iter()
                        .filter(|e| matches!(e, MEv::Status { .. }))
                        .cloned()
                        .collect()
                };
                let others = |v: &[MEv]| -> Vec<MEv> {
                    let mut o: Vec<MEv> = v
                        .iter()
                        .filter(|e| !matches!(e, MEv::Status { .. }))
                        .cloned()
                        .collect();
                    o.sort_by_key(|e| format!("{e:?}"));
                    o
                };
                prop_assert_eq!(status(&got), status(&mevs), "{}", ctx());
                prop_assert_eq!(others(&got), others(&mevs), "{}", ctx());
                let changed = !bodies.is_empty();
                for body in bodies {
                    self.apply_one(body)?;
                }
                self.model = model;
                if changed {
                    self.changes += 1;
                    if self.changes.is_multiple_of(3) {
                        self.write_snapshot();
                    }
                }
                if is_reply(&cmd) {
                    self.check_reply_rule(&actor)?;
                }
                if matches!(cmd, Command::Close { .. }) {
                    // Right after a close nothing is open (a later `reopen` of a message
                    // may leave a pending message in a closed conversation).
                    for m in &self.state.messages {
                        prop_assert!(!m.status.is_open(), "open after close: {:?}", m);
                    }
                }
            }
            (real, expected) => {
                return Err(TestCaseError::fail(format!(
                    "{}: domain {real:?} but model {expected:?}",
                    ctx()
                )))
            }
        }
        self.check_invariants()?;
        self.check_model()?;
        self.check_rebuild()?;
        Ok(())
    }

    /// Applies one emitted event, checking property 3 on status changes.
    fn apply_one(&mut self, body: EventBody) -> Result<(), TestCaseError> {
        self.seq += 1;
        let ev = Event::new(self.seq, Some(ConversationId::from(CONV)), self.now, body);
        if let EventBody::StatusChanged(ch) = &ev.body {
            let prev = self.state.message(&ch.message_id).map(|m| m.status);
            prop_assert_eq!(prev, Some(ch.from), "from of {:?}", ch);
        }
        self.state.apply_event(&ev);
        match &ev.body {
            EventBody::StatusChanged(ch) => {
                let m = self.state.message(&ch.message_id).expect("exists");
                prop_assert_eq!(m.status, ch.to);
                prop_assert_eq!(m.seq, ev.seq);
            }
            EventBody::MessageCreated { message } => {
                let m = self.state.message(&message.id).expect("created");
                prop_assert_eq!(m.status, Status::Pending);
            }
            _ => {}
        }
        let json = serde_json::to_string(&ev).expect("serializes");
        let back: Event = serde_json::from_str(&json).expect("deserializes");
        prop_assert_eq!(serde_json::to_string(&back).expect("serializes"), json);
        self.log.push(ev);
        self.log_rt.push(back);
        Ok(())
    }

    /// Property 4.
    fn check_reply_rule(&self, actor: &Actor) -> Result<(), TestCaseError> {
        let me = model_by(actor);
        for m in &self.state.messages {
            prop_assert!(m.status != Status::Pending, "pending after reply: {:?}", m);
            let held = matches!(
                m.status,
                Status::Assigned | Status::OnHold | Status::HelpAnswered
            );
            prop_assert!(
                !(held && m.assignee.as_deref() == Some(me.as_str())),
                "still held by the replier after reply: {:?}",
                m
            );
        }
        Ok(())
    }

    /// Property 1, part one: one status each, and what each status implies.
    fn check_invariants(&self) -> Result<(), TestCaseError> {
        for m in &self.state.messages {
            prop_assert_eq!(Status::ALL.iter().filter(|s| **s == m.status).count(), 1);
            prop_assert_eq!(self.state.message(&m.id), Some(&**m));
            if m.hold_until.is_some() {
                prop_assert_eq!(m.status, Status::OnHold, "{:?}", m);
            }
            match m.status {
                Status::Pending | Status::HelpRequested => {
                    prop_assert_eq!(&m.assignee, &None, "{:?}", m)
                }
                Status::Assigned | Status::OnHold | Status::HelpAnswered | Status::Answered => {
                    prop_assert!(m.assignee.is_some(), "{:?}", m)
                }
                Status::Archived => {}
            }
            if m.status == Status::OnHold {
                prop_assert!(
                    !m.assignee.as_deref().unwrap_or("").starts_with("bot:"),
                    "a bot holds {:?}",
                    m
                );
            }
            if m.status == Status::HelpRequested {
                prop_assert!(matches!(&m.help, Some(h) if h.answer.is_none()), "{:?}", m);
            }
            if m.status == Status::HelpAnswered {
                prop_assert!(matches!(&m.help, Some(h) if h.answer.is_some()), "{:?}", m);
            }
        }
        Ok(())
    }

    /// Property 1, part two: the model agrees with the real state.
    fn check_model(&self) -> Result<(), TestCaseError> {
        prop_assert_eq!(self.state.messages.len(), self.model.msgs.len());
        for (m, x) in self.state.messages.iter().zip(&self.model.msgs) {
            prop_assert_eq!(m.id.as_str(), x.id.as_str());
            prop_assert_eq!(m.status, x.status, "status of {}", x.id);
            prop_assert_eq!(&m.assignee, &x.assignee, "assignee of {}", x.id);
            prop_assert_eq!(&m.help, &x.help, "help of {}", x.id);
            prop_assert_eq!(m.hold_until, x.hold_until, "hold_until of {}", x.id);
        }
        match (&self.state.conversation, &self.model.conv) {
            (None, None) => {}
            (Some(c), Some(x)) => {
                prop_assert_eq!(c.contact_id.as_str(), x.contact.as_str());
                prop_assert_eq!(c.state == ConvState::Closed, x.closed);
                prop_assert_eq!(c.session == SessionState::Ended, x.ended);
                prop_assert_eq!(c.spam, x.spam);
                prop_assert_eq!(c.bot_active, x.bot_active);
                prop_assert_eq!(&c.owner, &x.owner);
            }
            (c, x) => {
                return Err(TestCaseError::fail(format!(
                    "conversation {c:?} vs model {x:?}"
                )))
            }
        }
        Ok(())
    }

    /// Writes a snapshot as the conversation actor does: the runs that changed.
    fn write_snapshot(&mut self) {
        let written = self.snapshot.as_ref().map(|s| s.seq);
        let (head, runs) = self.state.snapshot(self.seq, written);
        let json = serde_json::to_vec(&head).expect("head");
        self.snapshot = Some(serde_json::from_slice(&json).expect("head back"));
        for (r, run) in runs {
            let json = serde_json::to_vec(&run).expect("run");
            self.runs
                .insert(r, serde_json::from_slice(&json).expect("run back"));
        }
    }

    /// Property 5: replaying the log (as is, and after JSON) rebuilds the live state,
    /// and so does the last snapshot plus the events after it.
    fn check_rebuild(&self) -> Result<(), TestCaseError> {
        if let Some(head) = &self.snapshot {
            let count = head.message_count.unwrap_or(usize::MAX);
            let runs = self.runs.iter().map(|(r, run)| (*r, run.clone()));
            let messages = state::messages_from_runs(count, runs);
            prop_assert!(messages.is_some(), "runs do not add up to {count}");
            let after = head.seq;
            let mut st = ConversationState::from_snapshot(head.clone(), messages.unwrap());
            for ev in self.log_rt.iter().filter(|e| e.seq > after) {
                st.apply_event(ev);
            }
            prop_assert_eq!(&st.messages, &self.state.messages);
            prop_assert_eq!(&st.conversation, &self.state.conversation);
            prop_assert_eq!(st.first_reply_at, self.state.first_reply_at);
            prop_assert_eq!(st.first_closed_at, self.state.first_closed_at);
        }
        for log in [&self.log, &self.log_rt] {
            let mut fresh = ConversationState::default();
            for ev in log.iter() {
                fresh.apply_event(ev);
            }
            prop_assert_eq!(&fresh.messages, &self.state.messages);
            prop_assert_eq!(&fresh.conversation, &self.state.conversation);
            for m in &self.state.messages {
                prop_assert_eq!(fresh.message(&m.id), Some(&**m));
            }
        }
        Ok(())
    }
}

fn is_reply(cmd: &Command) -> bool {
    matches!(cmd, Command::Reply { .. })
}

fn run_case(case: &Case) -> Result<BTreeMap<String, usize>, TestCaseError> {
    let mut w = World::new(case);
    for (dt, op) in &case.ops {
        w.step(*dt, op)?;
    }
    Ok(w.seen)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1024,
        max_shrink_iters: 4096,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn status_machine_matches_the_reference_model(case in case()) {
        run_case(&case)?;
    }
}

/// The generator is not vacuous: over a fixed set of cases, every row of the §6.1 table
/// (and the refusals that matter) is exercised.
#[test]
fn generated_cases_cover_every_transition() {
    let mut runner = TestRunner::deterministic();
    let strategy = case();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..3000 {
        let c = strategy.new_tree(&mut runner).expect("case").current();
        for (k, n) in run_case(&c).unwrap_or_else(|e| panic!("{e}")) {
            *seen.entry(k).or_default() += n;
        }
    }
    let wanted = [
        "customer:ok",
        "customer:forbidden",
        "customer:session_ended",
        "customer:not_found",
        "assign:pending:ok",
        "assign:pending:forbidden",
        "assign:help_requested:ok",
        "assign:help_requested:forbidden",
        "assign:answered:invalid_transition",
        "assign:missing:not_found",
        "unassign:assigned:ok",
        "unassign:on_hold:ok",
        "unassign:help_answered:ok",
        "unassign:assigned:forbidden",
        "unassign:pending:invalid_transition",
        "hold:assigned:ok",
        "hold:help_answered:ok",
        "hold:assigned:forbidden",
        "hold:on_hold:invalid_transition",
        "request_help:assigned:ok",
        "request_help:on_hold:ok",
        "request_help:help_answered:ok",
        "request_help:assigned:forbidden",
        "request_help:help_requested:invalid_transition",
        "answer_help_present:assigned:ok",
        "answer_help_absent:assigned:ok",
        "answer_help_present:assigned:invalid_transition",
        "answer_help_absent:help_requested:invalid_transition",
        "archive:assigned:ok",
        "archive:on_hold:ok",
        "archive:help_answered:ok",
        "archive:assigned:forbidden",
        "archive:pending:invalid_transition",
        "reopen:answered:ok",
        "reopen:archived:ok",
        "reopen:pending:invalid_transition",
        "reply:ok",
        "reply:forbidden",
        "reply:session_ended",
        "close:ok",
        "close:conflict",
        "end_session:ok",
        "end_session:conflict",
        "spam:ok",
        "spam:noop",
        "hold_expired:on_hold:ok",
        "hold_expired:on_hold:noop",
        "rate:ok",
        "rate:noop",
        "rate:conflict",
        "rate:forbidden",
        "page:ok",
        "page:noop",
        "page:forbidden",
        "auto_assign:pending:ok",
        "auto_assign:pending:forbidden",
        "auto_assign:pending:conflict",
        "auto_assign:assigned:invalid_transition",
        "auto_assign:missing:not_found",
        "release:assigned:ok",
        "release:help_answered:ok",
        "release:assigned:conflict",
        "release:assigned:forbidden",
        "release:pending:invalid_transition",
        "release:missing:not_found",
        "auto_close:ok",
        "auto_close:conflict",
        "auto_close:forbidden",
    ];
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|w| !seen.contains_key(*w))
        .collect();
    assert!(
        missing.is_empty(),
        "never exercised: {missing:?}\nseen: {seen:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// Unit tests of tricky rows.
// ---------------------------------------------------------------------------------------

/// A conversation opened by contact c0 with message m1, plus helpers.
struct Fx {
    state: ConversationState,
    seq: u64,
    now: Ts,
}

fn agent(id: &str, role: Role) -> Actor {
    Actor::Agent {
        id: AgentId::from(id),
        role,
    }
}

fn mid(s: &str) -> MessageId {
    MessageId::from(s)
}

impl Fx {
    fn new() -> Self {
        let mut fx = Fx {
            state: ConversationState::default(),
            seq: 0,
            now: Ts(T0),
        };
        fx.customer("m1");
        fx
    }

    fn customer(&mut self, id: &str) {
        self.ok(
            Command::CustomerMessage {
                id: mid(id),
                text: "hello".into(),
                open: Some(OpenInfo {
                    conversation_id: ConversationId::from(CONV),
                    contact_id: ContactId::from("c0"),
                    channel: "web".into(),
                }),
                assistant: None,
                bot_reply_id: ReplyId::from("r0"),
            },
            &Actor::Contact(ContactId::from("c0")),
        );
    }

    fn run(&mut self, cmd: Command, actor: &Actor) -> Result<Vec<EventBody>, DomainError> {
        self.now = Ts(self.now.0 + 1000);
        let before = self.state.clone();
        match apply(&self.state, cmd, actor, self.now) {
            Ok(bodies) => {
                for b in &bodies {
                    self.seq += 1;
                    let ev = Event::new(
                        self.seq,
                        Some(ConversationId::from(CONV)),
                        self.now,
                        b.clone(),
                    );
                    self.state.apply_event(&ev);
                }
                Ok(bodies)
            }
            Err(e) => {
                assert_eq!(before.messages, self.state.messages);
                Err(e)
            }
        }
    }

    fn ok(&mut self, cmd: Command, actor: &Actor) -> Vec<EventBody> {
        let dbg = format!("{cmd:?} by {actor:?}");
        self.run(cmd, actor)
            .unwrap_or_else(|e| panic!("{dbg}: {e:?}"))
    }

    fn err(&mut self, cmd: Command, actor: &Actor) -> DomainError {
        let dbg = format!("{cmd:?} by {actor:?}");
        match self.run(cmd, actor) {
            Ok(evs) => panic!("{dbg} should be refused, emitted {evs:?}"),
            Err(e) => e,
        }
    }

    fn msg(&self, id: &str) -> &Message {
        self.state.message(&mid(id)).expect("message")
    }
}

fn assign(m: &str, to: &str) -> Command {
    Command::Assign {
        message_id: mid(m),
        agent_id: AgentId::from(to),
    }
}

fn answer_help(m: &str, present: bool) -> Command {
    Command::AnswerHelp {
        message_id: mid(m),
        answer: "do X".into(),
        requester_present: present,
    }
}

fn request_help(m: &str) -> Command {
    Command::RequestHelp {
        message_id: mid(m),
        question: "how?".into(),
    }
}

fn is_transition(e: &DomainError, s: Status) -> bool {
    matches!(e, DomainError::InvalidTransition { from, .. } if *from == s)
}

#[test]
fn answer_help_on_assigned_without_help_is_invalid_transition() {
    let mut fx = Fx::new();
    let a = agent("a", Role::Agent);
    let sup = agent("s", Role::Supervisor);
    fx.ok(assign("m1", "a"), &a);
    for who in [&a, &sup] {
        let e = fx.err(answer_help("m1", true), who);
        assert!(is_transition(&e, Status::Assigned), "{e:?}");
    }
    // Once answered, the same help cannot be answered again after a re-assignment.
    fx.ok(request_help("m1"), &a);
    fx.ok(assign("m1", "a"), &sup);
    fx.ok(answer_help("m1", true), &sup);
    assert_eq!(fx.msg("m1").status, Status::HelpAnswered);
    assert_eq!(fx.msg("m1").assignee.as_deref(), Some("a"));
    fx.ok(
        Command::Unassign {
            message_id: mid("m1"),
        },
        &a,
    );
    fx.ok(assign("m1", "a"), &a);
    let e = fx.err(answer_help("m1", true), &sup);
    assert!(is_transition(&e, Status::Assigned), "{e:?}");
}

#[test]
fn assign_help_requested_by_plain_agent_is_forbidden() {
    let mut fx = Fx::new();
    let a = agent("a", Role::Agent);
    let b = agent("b", Role::Agent);
    let admin = agent("root", Role::Admin);
    fx.ok(assign("m1", "a"), &a);
    fx.ok(request_help("m1"), &a);
    assert_eq!(fx.msg("m1").status, Status::HelpRequested);
    assert_eq!(fx.msg("m1").assignee, None);
    for (who, to) in [(&a, "a"), (&b, "b"), (&b, "a")] {
        let e = fx.err(assign("m1", to), who);
        assert!(matches!(e, DomainError::Forbidden(_)), "{e:?}");
    }
    // An admin may, to anyone; the help is kept.
    fx.ok(assign("m1", "b"), &admin);
    let m = fx.msg("m1");
    assert_eq!(
        (m.status, m.assignee.as_deref()),
        (Status::Assigned, Some("b"))
    );
    let help = m.help.as_ref().expect("help kept");
    assert_eq!(
        (help.requested_by.as_str(), help.answer.as_deref()),
        ("a", None)
    );
    // The requester is absent: back to pending, unassigned, with the answer recorded.
    fx.ok(answer_help("m1", false), &b);
    let m = fx.msg("m1");
    assert_eq!((m.status, m.assignee.as_deref()), (Status::Pending, None));
    assert_eq!(
        m.help.as_ref().and_then(|h| h.answer.as_deref()),
        Some("do X")
    );
}

#[test]
fn checks_run_404_then_409_then_403() {
    let mut fx = Fx::new();
    let a = agent("a", Role::Agent);
    let b = agent("b", Role::Agent);
    let contact = Actor::Contact(ContactId::from("c0"));
    // 404 first, whoever asks and whatever the action.
    for cmd in [
        assign("nope", "b"),
        Command::Archive {
            message_id: mid("nope"),
        },
        answer_help("nope", true),
    ] {
        let e = fx.err(cmd, &b);
        assert!(matches!(e, DomainError::NotFound(_)), "{e:?}");
    }
    // Pending: archive/hold are allowed for nobody → 409, even for a non-assignee.
    let e = fx.err(
        Command::Archive {
            message_id: mid("m1"),
        },
        &b,
    );
    assert!(is_transition(&e, Status::Pending), "{e:?}");
    let e = fx.err(
        Command::Hold {
            message_id: mid("m1"),
            until: None,
        },
        &b,
    );
    assert!(is_transition(&e, Status::Pending), "{e:?}");
    // Assigned to a: allowed from this status, but not for b → 403.
    fx.ok(assign("m1", "a"), &a);
    for cmd in [
        Command::Archive {
            message_id: mid("m1"),
        },
        Command::Hold {
            message_id: mid("m1"),
            until: None,
        },
        Command::Unassign {
            message_id: mid("m1"),
        },
        request_help("m1"),
    ] {
        let e = fx.err(cmd, &b);
        assert!(matches!(e, DomainError::Forbidden(_)), "{e:?}");
    }
    // Answered: a plain agent assigning someone else gets 409, not 403.
    fx.ok(
        Command::Reply {
            id: ReplyId::from("r1"),
            text: "hi".into(),
        },
        &a,
    );
    assert_eq!(fx.msg("m1").status, Status::Answered);
    let e = fx.err(assign("m1", "a"), &b);
    assert!(is_transition(&e, Status::Answered), "{e:?}");
    // 403 before session_ended / conflict.
    fx.ok(Command::EndSession { reason: None }, &a);
    let e = fx.err(
        Command::Reply {
            id: ReplyId::from("r2"),
            text: "x".into(),
        },
        &contact,
    );
    assert!(matches!(e, DomainError::Forbidden(_)), "{e:?}");
    let e = fx.err(
        Command::Reply {
            id: ReplyId::from("r2"),
            text: "x".into(),
        },
        &b,
    );
    assert_eq!(e, DomainError::SessionEnded);
    let e = fx.err(Command::EndSession { reason: None }, &contact);
    assert!(matches!(e, DomainError::Forbidden(_)), "{e:?}");
    let e = fx.err(Command::EndSession { reason: None }, &b);
    assert!(matches!(e, DomainError::Conflict(_)), "{e:?}");
}

#[test]
fn hold_expiry_returns_to_the_present_assignee_and_ignores_stale_timers() {
    let mut fx = Fx::new();
    let a = agent("a", Role::Agent);
    fx.ok(assign("m1", "a"), &a);
    let until = Ts(fx.now.0 + 60_000);
    fx.ok(
        Command::Hold {
            message_id: mid("m1"),
            until: Some(until),
        },
        &a,
    );
    assert_eq!(fx.msg("m1").hold_until, Some(until));
    // A timer for another hold does nothing.
    let stale = Command::HoldExpired {
        message_id: mid("m1"),
        until: Ts(until.0 - 1),
        assignee_present: true,
    };
    assert!(fx.ok(stale, &Actor::System).is_empty());
    let fire = |present| Command::HoldExpired {
        message_id: mid("m1"),
        until,
        assignee_present: present,
    };
    fx.ok(fire(true), &Actor::System);
    let m = fx.msg("m1");
    assert_eq!(
        (m.status, m.assignee.as_deref(), m.hold_until),
        (Status::Assigned, Some("a"), None)
    );
    fx.ok(
        Command::Hold {
            message_id: mid("m1"),
            until: Some(until),
        },
        &a,
    );
    fx.ok(fire(false), &Actor::System);
    let m = fx.msg("m1");
    assert_eq!((m.status, m.assignee.as_deref()), (Status::Pending, None));
}
