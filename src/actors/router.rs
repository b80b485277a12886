//! Automatic assignment (an extension, off until an admin turns it on with
//! `PATCH /api/automation {"auto_assign": true}`): the hub gives each pending customer
//! message to an agent who is online, as `system`, the way a supervisor would by hand.
//!
//! * **Continuity first**: a message goes to the online agent who already holds its
//!   conversation (a message of it in Mine or On hold), else to the conversation's owner
//!   if online with room, else to the online agent with the fewest conversations in hand
//!   (ties: the one who was given one longest ago).
//! * **Capacity** (`capacity` of an agent): the most conversations an agent holds at once
//!   (distinct conversations of its Mine and On hold messages, but for those whose
//!   session has ended); none means no limit, `0`
//!   means never assigned automatically. Admins, who run the hub, are given conversations
//!   only once they have a capacity. A further message of a conversation the agent
//!   already holds does not count against it.
//! * **Channels** (`channels` of an agent): past continuity, a message goes only to an
//!   agent given its conversation's channel (none set: every channel).
//! * Only `online` agents are chosen (never `away` nor `offline`); spam conversations are
//!   not in Pending, and a conversation whose session has ended is left to people: its
//!   customer can no longer be answered there.
//! * A message an agent hands back (unassign, by them or a supervisor) is not given to
//!   that agent again: to another online agent with room, else it waits in Pending.
//! * Nothing waits for room: a message nobody can take stays pending, and is given out
//!   when an agent comes online, frees a conversation or gets more capacity.
//!
//! The router keeps no copy of the inbox, only its round-robin clock and who handed back
//! which pending message: each sweep reads the oldest pending messages and the online
//! agents' folders from the store, then assigns through the conversations' actors (each
//! assignment is an ordinary durable command; a message that someone took meanwhile is
//! simply refused). Sweeps run one at a time, woken by any change that may matter (a
//! kick), and every 15 s while on.

use crate::actors::presence::PresenceState;
use crate::domain::{Actor as Who, AgentId, Command, ConversationId, MessageId};
use crate::hub::Hub;
use crate::locks::lock;
use crate::store::index::names;
use crate::store::{Store, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Pending messages read per trip to the store (oldest first).
const PENDING_PAGE: usize = 100;
/// Most pages of Pending a sweep reads; the next sweep goes on from there (so that a
/// long queue of messages nobody can take, e.g. of ended sessions, never hides the
/// newer ones).
const MAX_PAGES: usize = 20;
/// After a sweep that found messages waiting and gave none out, the next waits at least
/// this long (a team that is full while messages keep arriving would otherwise sweep back
/// to back for nothing).
const IDLE_GAP: Duration = Duration::from_millis(200);
/// Most entries read of each of an agent's folders (Mine, On hold) to count its
/// conversations: an agent holding more counts as holding what was read, which is past
/// any capacity a team gives, and keeps a sweep's reads bounded (20 agents online at
/// 2,000 messages/s left assigned and unanswered, 33,000 in 20 s: sweeps read in 3.3 ms
/// at the median, 31 ms at p99).
const LOAD_READ: usize = 1_000;
/// Most hand-backs remembered (forgotten all at once past it; a sweep forgets those of
/// messages no longer pending).
const RETURNED_MAX: usize = 10_000;
/// A hand-back a sweep did not find pending is kept this long all the same: the
/// unassign that made it may have been committed after the sweep read Pending.
const RETURNED_KEEP: Duration = Duration::from_secs(60);
/// A sweep at least this often while on (a kick lost to a failed command is retried).
const PERIOD: Duration = Duration::from_secs(15);

/// Automatic assignment. See the module's documentation.
#[derive(Default)]
pub struct Router {
    started: AtomicBool,
    on: AtomicBool,
    /// `reassign_offline`: an agent who goes offline hands back its Mine.
    release: AtomicBool,
    /// Agents gone offline whose Mine is still to hand back, with the seq of the event
    /// that took each offline.
    offline: Mutex<Vec<(AgentId, u64)>>,
    wake: tokio::sync::Notify,
    /// When each agent was last given a conversation (a counter, for round robin).
    given: Mutex<HashMap<AgentId, u64>>,
    /// Messages an agent handed back (unassigned): not given to that agent again.
    /// (With when: a sweep forgets only those older than [`RETURNED_KEEP`] that it did
    /// not find pending, since one made while it read may not be in what it read.)
    returned: Mutex<HashMap<MessageId, (AgentId, std::time::Instant)>>,
    clock: AtomicU64,
    /// Where the next sweep starts in Pending (its order), if not at its start.
    cursor: Mutex<Option<u64>>,
}

impl Router {
    /// A router, on or off as the stored automation settings say (`auto_assign`,
    /// `reassign_offline`).
    pub fn new(on: bool, release: bool) -> Router {
        let r = Router::default();
        r.on.store(on, Ordering::Relaxed);
        r.release.store(release, Ordering::Relaxed);
        r
    }

    /// Binds the router to its hub and starts its loop (a first sweep at once).
    pub fn start(self: &Arc<Self>, hub: &Arc<Hub>) {
        if self.started.swap(true, Ordering::Relaxed) {
            return;
        }
        // Hand-backs cut short by a crash: whoever is offline at the start hands back
        // (those online before it go offline after the grace, and hand back then).
        self.hand_back_all_offline(hub);
        let (router, weak) = (self.clone(), Arc::downgrade(hub));
        actix_web::rt::spawn(async move {
            loop {
                let gone = std::mem::take(&mut *lock(&router.offline));
                if !gone.is_empty() {
                    let Some(hub) = weak.upgrade() else { return };
                    for (agent, since) in gone {
                        release(&hub, &agent, since).await;
                    }
                }
                if router.on.load(Ordering::Relaxed) {
                    let Some(hub) = weak.upgrade() else { return };
                    let (waiting, given) = sweep(&hub, &router).await;
                    if waiting > 0 && given == 0 {
                        drop(hub);
                        actix_web::rt::time::sleep(IDLE_GAP).await;
                    }
                }
                let _ = actix_web::rt::time::timeout(PERIOD, router.wake.notified()).await;
            }
        });
    }

    /// Whether automatic assignment is on.
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Turns it on or off (the caller stored the setting first); a sweep follows when on.
    pub fn set_on(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
        self.kick();
    }

    /// Whether an agent who goes offline hands back its Mine (`reassign_offline`).
    pub fn reassigns_offline(&self) -> bool {
        self.release.load(Ordering::Relaxed)
    }

    /// Turns `reassign_offline` on or off (the caller stored the setting first).
    pub fn set_reassign_offline(&self, on: bool) {
        self.release.store(on, Ordering::Relaxed);
    }

    /// With `reassign_offline` on: every agent offline now hands back what it held when
    /// it went offline (at the start, and when the setting is turned on). What was given
    /// to it by hand since stays.
    pub fn hand_back_all_offline(&self, hub: &Hub) {
        if !self.release.load(Ordering::Relaxed) {
            return;
        }
        for a in hub.directory.agents() {
            if hub.presence.get(a.id.as_str()) == PresenceState::Offline {
                let since = hub.presence.offline_since(a.id.as_str());
                self.went_offline(a.id, since);
            }
        }
    }

    /// `agent` went offline with event `since`: with `reassign_offline` on, the messages
    /// of its Mine go back to Pending soon (one at a time through their conversations,
    /// each refused if the agent is back meanwhile or got it after `since`).
    pub fn went_offline(&self, agent: AgentId, since: u64) {
        if self.release.load(Ordering::Relaxed) {
            lock(&self.offline).push((agent, since));
            self.wake.notify_one();
        }
    }

    /// Something that may let a pending message be given out happened: a sweep runs
    /// soon (kicks during a sweep make one more, never a queue of them).
    pub fn kick(&self) {
        if self.on.load(Ordering::Relaxed) {
            self.wake.notify_one();
        }
    }

    /// `agent` no longer holds `message` by an unassignment: the router gives it to
    /// someone else (or leaves it pending), not straight back.
    pub fn returned(&self, message: MessageId, agent: AgentId) {
        if self.on.load(Ordering::Relaxed) {
            let mut r = lock(&self.returned);
            if r.len() >= RETURNED_MAX {
                r.clear();
            }
            r.insert(message, (agent, std::time::Instant::now()));
        }
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// An online agent the router may choose.
struct Candidate {
    id: AgentId,
    capacity: Option<u32>,
    /// The channels it is given (none: every channel).
    channels: Option<Vec<String>>,
    /// The conversations it holds (Mine and On hold).
    holds: HashSet<ConversationId>,
}

impl Candidate {
    fn serves(&self, channel: &str) -> bool {
        self.channels
            .as_ref()
            .is_none_or(|list| list.iter().any(|c| c == channel))
    }

    fn has_room(&self) -> bool {
        self.capacity
            .map(|c| (self.holds.len() as u64) < u64::from(c))
            .unwrap_or(true)
    }
}

/// A pending message and what the router needs of its conversation.
struct Waiting {
    message: MessageId,
    conversation: ConversationId,
    owner: Option<String>,
    channel: String,
    ended: bool,
}

/// What one trip to the store reads: a page of Pending, and the agents' conversations
/// when asked.
struct Snapshot {
    waiting: Vec<Waiting>,
    /// The order of the page's last entry when the page was full (more may follow).
    next: Option<u64>,
    holds: Vec<HashSet<ConversationId>>,
}

/// The conversation of a folder entry: named by a numbered id, else by the message.
fn conversation_of(s: &Store, order: u64, id: &str, value: Vec<u8>) -> Option<ConversationId> {
    if let Some(c) = MessageId::from(id).conversation() {
        return Some(c);
    }
    let json = s.indexed_message(order, id, value).ok()??;
    let m: serde_json::Value = serde_json::from_slice(&json).ok()?;
    Some(ConversationId::from(m.get("conversation_id")?.as_str()?))
}

/// The conversations `agent` holds: those of its Mine and On hold messages whose
/// session is active (what its capacity counts; `GET /api/agents?workload=true` shows
/// it). A conversation whose session has ended frees its place at once, as Zendesk frees
/// an agent's messaging capacity (seeds, 002): its customer can no longer write there.
pub fn held_conversations(s: &Store, agent: &str) -> Result<HashSet<ConversationId>, StoreError> {
    let mut seen = HashSet::new();
    let mut set = HashSet::new();
    for folder in [names::mine(agent), names::on_hold(agent)] {
        for (order, id, value) in s.index_asc(&folder, None, LOAD_READ)? {
            let Some(c) = conversation_of(s, order, &id, value) else {
                continue;
            };
            if !seen.insert(c.clone()) {
                continue;
            }
            let active = s
                .conversation(c.as_str())?
                .is_some_and(|conv| conv.session != crate::domain::SessionState::Ended);
            if active {
                set.insert(c);
            }
        }
    }
    Ok(set)
}

fn read(s: &Store, after: Option<u64>, agents: &[AgentId]) -> Result<Snapshot, StoreError> {
    let page = s.index_asc(names::PENDING, after, PENDING_PAGE)?;
    let next = Store::next_after(&page, PENDING_PAGE);
    let mut convs: HashMap<ConversationId, Option<crate::domain::Conversation>> = HashMap::new();
    let mut waiting = Vec::with_capacity(page.len());
    for (order, id, value) in page {
        let Some(conversation) = conversation_of(s, order, &id, value) else {
            continue;
        };
        if !convs.contains_key(&conversation) {
            let c = s.conversation(conversation.as_str())?;
            convs.insert(conversation.clone(), c);
        }
        let Some(Some(c)) = convs.get(&conversation) else {
            continue;
        };
        waiting.push(Waiting {
            message: MessageId::from(id),
            owner: c.owner.clone(),
            channel: c.channel.clone(),
            ended: c.session == crate::domain::SessionState::Ended,
            conversation,
        });
    }
    let mut holds = Vec::with_capacity(agents.len());
    if !waiting.is_empty() {
        for a in agents {
            holds.push(held_conversations(s, a.as_str())?);
        }
    }
    Ok(Snapshot {
        waiting,
        next,
        holds,
    })
}

/// Mine entries read per trip to the store when an agent's messages are handed back.
const RELEASE_PAGE: usize = 500;

/// Hands back what `agent`, offline since event `since`, holds in Mine (assigned or help
/// answered): each message goes to Pending by `system`, unless its conversation refuses
/// (the agent is back, the message moved or was given to the agent after `since`, the
/// session ended, spam). On hold messages stay: their timer decides (§6.1), and one
/// without an end is parked on purpose.
async fn release(hub: &Arc<Hub>, agent: &AgentId, since: u64) {
    let mut after = None;
    let mut released = 0usize;
    loop {
        let who = agent.clone();
        let page = hub
            .store
            .read(move |s| {
                let page = s.index_asc(&names::mine(who.as_str()), after, RELEASE_PAGE)?;
                let next = Store::next_after(&page, RELEASE_PAGE);
                let held: Vec<(MessageId, ConversationId)> = page
                    .into_iter()
                    .filter_map(|(order, id, value)| {
                        let c = conversation_of(s, order, &id, value)?;
                        Some((MessageId::from(id), c))
                    })
                    .collect();
                Ok::<_, StoreError>((held, next))
            })
            .await;
        let (held, next) = match page {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(agent_id = %agent, error = %e, "Could not read an offline agent's messages.");
                return;
            }
        };
        let results = futures_util::future::join_all(held.iter().map(|(m, c)| {
            let cmd = Command::Release {
                message_id: m.clone(),
                agent_id: agent.clone(),
                agent_present: false,
                offline_since: since,
            };
            hub.exec(c, cmd, Who::System, None)
        }))
        .await;
        for ((m, _), res) in held.iter().zip(results) {
            match res {
                Ok(_) => {
                    released += 1;
                    crate::metrics::record_offline_release();
                }
                Err(e) => {
                    tracing::debug!(message_id = %m, error = %e, "Not handed back.")
                }
            }
        }
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    if released > 0 {
        tracing::info!(agent_id = %agent, released, "An offline agent's messages went back to Pending.");
    }
}

/// Gives out what can be given: Pending read oldest first, a page at a time, from where
/// the last sweep stopped, for at most [`MAX_PAGES`] pages. Returns how many messages
/// waited (in the pages read) and how many were given.
async fn sweep(hub: &Arc<Hub>, router: &Router) -> (usize, usize) {
    let mut candidates: Vec<Candidate> = hub
        .directory
        .agents()
        .into_iter()
        .filter(|a| match a.capacity {
            Some(c) => c > 0,
            None => a.role != crate::domain::Role::Admin,
        })
        .filter(|a| hub.presence.get(a.id.as_str()) == PresenceState::Online)
        .map(|a| Candidate {
            id: a.id,
            capacity: a.capacity,
            channels: a.channels,
            holds: HashSet::new(),
        })
        .collect();
    if candidates.is_empty() {
        return (0, 0);
    }
    let start = *lock(&router.cursor);
    let mut after = start;
    let mut holds_read = false;
    let mut seen: HashSet<MessageId> = HashSet::new();
    let mut given = 0usize;
    for _ in 0..MAX_PAGES {
        // The agents' conversations are read once, with the first page that has work;
        // then each choice counts for the next.
        let ids: Vec<AgentId> = match holds_read {
            false => candidates.iter().map(|c| c.id.clone()).collect(),
            true => Vec::new(),
        };
        let started = std::time::Instant::now();
        let snap = match hub.store.read(move |s| read(s, after, &ids)).await {
            Ok(snap) => snap,
            Err(e) => {
                tracing::warn!(error = %e, "Routing sweep could not read the store.");
                return (seen.len(), given);
            }
        };
        let read_took = started.elapsed();
        if !snap.holds.is_empty() {
            for (c, holds) in candidates.iter_mut().zip(snap.holds) {
                c.holds = holds;
            }
            holds_read = true;
        }
        seen.extend(snap.waiting.iter().map(|w| w.message.clone()));
        // Decide first (each choice counts for the next), then assign all at once: the
        // commands share group commits instead of waiting for one another's.
        let mut plan = Vec::new();
        for w in snap.waiting.into_iter().filter(|w| !w.ended) {
            let Some(i) = choose(router, &candidates, &w) else {
                continue;
            };
            let agent = candidates[i].id.clone();
            if candidates[i].holds.insert(w.conversation.clone()) {
                let t = router.tick();
                lock(&router.given).insert(agent.clone(), t);
            }
            plan.push((w, agent));
        }
        let results = futures_util::future::join_all(plan.iter().map(|(w, agent)| {
            let cmd = Command::AutoAssign {
                message_id: w.message.clone(),
                agent_id: agent.clone(),
            };
            hub.exec(&w.conversation, cmd, Who::System, None)
        }))
        .await;
        let mut page_given = 0usize;
        for ((w, agent), res) in plan.iter().zip(results) {
            match res {
                Ok(_) => {
                    page_given += 1;
                    lock(&router.returned).remove(&w.message);
                    crate::metrics::record_auto_assignment();
                    tracing::debug!(message_id = %w.message, agent_id = %agent, "Assigned automatically.");
                }
                // Taken, archived or marked spam since the read: nothing to do.
                Err(e) => {
                    tracing::debug!(message_id = %w.message, error = %e, "Not assigned automatically.")
                }
            }
        }
        given += page_given;
        tracing::debug!(
            planned = plan.len(),
            given = page_given,
            read_us = read_took.as_micros() as u64,
            took_us = started.elapsed().as_micros() as u64,
            "Routing sweep page."
        );
        match snap.next {
            Some(next) => after = Some(next),
            None => {
                // The end of Pending: the next sweep starts over. Read whole, it says
                // which hand-backs still matter.
                *lock(&router.cursor) = None;
                if start.is_none() {
                    lock(&router.returned)
                        .retain(|m, (_, at)| seen.contains(m) || at.elapsed() < RETURNED_KEEP);
                }
                return (seen.len(), given);
            }
        }
    }
    *lock(&router.cursor) = after;
    (seen.len(), given)
}

/// Who gets `w`, by the rules of the module's documentation (never the agent who handed
/// it back).
fn choose(router: &Router, candidates: &[Candidate], w: &Waiting) -> Option<usize> {
    let returned_by = lock(&router.returned)
        .get(&w.message)
        .map(|(a, _)| a.clone());
    let may = |c: &Candidate| Some(&c.id) != returned_by.as_ref();
    if let Some(i) = candidates
        .iter()
        .position(|c| may(c) && c.holds.contains(&w.conversation))
    {
        return Some(i);
    }
    // Past continuity, only agents given the conversation's channel.
    let may = |c: &Candidate| may(c) && c.serves(&w.channel);
    if let Some(i) = candidates
        .iter()
        .position(|c| may(c) && Some(c.id.as_str()) == w.owner.as_deref() && c.has_room())
    {
        return Some(i);
    }
    let given = lock(&router.given);
    candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| may(c) && c.has_room())
        .min_by_key(|(_, c)| (c.holds.len(), given.get(&c.id).copied().unwrap_or(0)))
        .map(|(i, _)| i)
}
