//! The event bus: fans durable events out to the sockets allowed to see them.
//!
//! Each event is serialised once (by the store's batch) into an agent frame and, when a
//! contact may see it, a contact frame. Each socket has a bounded outbound queue
//! (PROTOCOL §7: 4,096 frames or 8 MiB); a socket that overflows is cut off — its
//! queue's sender is dropped and its `overflowed` flag set — so a slow client never
//! slows the writer or anyone else.

use crate::actors::presence::{Disconnect, PresenceActor};
use crate::domain::{
    AgentId, ContactId, ContactMessage, ConversationId, Event, EventBody, Message, Ts,
};
use actix::Addr;
use bytes::Bytes;
use std::collections::hash_map::{Entry, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::sync::{Mutex, OnceLock};
use tokio::sync::mpsc;

/// Most frames a socket may have queued.
pub const MAX_QUEUED_FRAMES: usize = 4096;
/// Most bytes a socket may have queued.
pub const MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;

/// One durable event, ready to send: its frames are whole WebSocket text frames
/// ([`wire`]), encoded where the event is made (the conversation's actor), so that the
/// group-commit writer, which publishes, only shares them.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub seq: u64,
    /// `{"type":"event",…}` for agent consoles (empty: none).
    pub agent_frame: Bytes,
    /// The contact who may see it, and its frame (contact view of objects).
    pub contact: Option<(ContactId, Bytes)>,
}

/// `{"type":"event",` + the event JSON without its opening brace.
pub fn event_frame(event_json: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(event_json.len() + 16);
    v.extend_from_slice(br#"{"type":"event","#);
    v.extend_from_slice(event_json.get(1..).unwrap_or(b"}"));
    Bytes::from(v)
}

/// The frame a contact receives for `ev`, if it may see it.
pub fn contact_frame(ev: &Event, agent_frame: &Bytes) -> Option<Bytes> {
    match &ev.body {
        EventBody::MessageCreated { message } => {
            let frame = ContactEventFrame {
                ty: "event",
                seq: ev.seq,
                kind: ev.body.kind(),
                conversation_id: ev.conversation_id.as_ref(),
                at: ev.at,
                data: ContactEventData {
                    message: message.for_contact(),
                },
            };
            // Serialising borrowed fields cannot fail (no maps with non-string keys).
            serde_json::to_vec(&frame).ok().map(Bytes::from)
        }
        EventBody::ReplyCreated { .. } | EventBody::SessionEnded { .. } => {
            Some(agent_frame.clone())
        }
        _ => None,
    }
}

/// The `ack` a widget receives for its message, serialised once from borrowed fields.
pub fn ack_frame(client_id: Option<&str>, message: &Message) -> String {
    let frame = AckFrame {
        ty: "ack",
        client_id,
        message: message.for_contact(),
    };
    // Serialising borrowed strings and numbers cannot fail.
    serde_json::to_string(&frame).unwrap_or_default()
}

#[derive(serde::Serialize)]
struct AckFrame<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    client_id: Option<&'a str>,
    message: ContactMessage<'a>,
}

/// A contact's `message.created` frame, serialised straight from borrowed fields (no
/// intermediate `serde_json::Value`).
#[derive(serde::Serialize)]
struct ContactEventFrame<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    seq: u64,
    kind: &'static str,
    conversation_id: Option<&'a ConversationId>,
    at: Ts,
    data: ContactEventData<'a>,
}

#[derive(serde::Serialize)]
struct ContactEventData<'a> {
    message: ContactMessage<'a>,
}

impl Outgoing {
    /// Builds the frames of `ev` (serialised as `json`); `contact` owns its conversation.
    pub fn new(ev: &Event, json: &[u8], contact: Option<&ContactId>) -> Self {
        let agent_frame = event_frame(json);
        let contact = contact.and_then(|c| {
            let frame = contact_frame(ev, &agent_frame)?;
            Some((c.clone(), wire(ev.seq, &frame)?))
        });
        Outgoing {
            seq: ev.seq,
            agent_frame: wire(ev.seq, &agent_frame).unwrap_or_default(),
            contact,
        }
    }
}

/// Frames (seq, WebSocket frame) queued for a socket at once: one publish's events it
/// may see. Every agent console receives the same batch (one allocation per publish,
/// not one queue operation per event and console), and a frame is checked as UTF-8
/// and encoded for the wire once ([`wire`], in [`Outgoing::new`]), not once per socket.
pub type Frames = Arc<[(u64, Bytes)]>;

/// Event `seq`'s frame as a WebSocket text frame, header included (serialised JSON
/// always is text; anything else is logged and skipped).
pub fn wire(seq: u64, frame: &[u8]) -> Option<Bytes> {
    match std::str::from_utf8(frame) {
        Ok(_) => Some(crate::ws::context::text_frame(frame)),
        Err(_) => {
            tracing::error!(seq, "Event frame is not UTF-8; skipped.");
            None
        }
    }
}

/// The bytes of a batch's frames (what a socket's queue counts).
fn size(frames: &[(u64, Bytes)]) -> usize {
    frames.iter().map(|(_, f)| f.len()).sum()
}

/// The receiving half of a socket's outbound queue.
pub struct Subscription {
    pub id: u64,
    pub rx: mpsc::Receiver<Frames>,
    pub state: Arc<SubState>,
}

/// Shared between the bus and the socket.
#[derive(Default)]
pub struct SubState {
    /// Frames and bytes queued and not yet taken by the socket (PROTOCOL §7 bounds both).
    pub queued_frames: AtomicUsize,
    pub queued_bytes: AtomicUsize,
    pub overflowed: AtomicBool,
    /// The agent's token was replaced: the console closes with 4401.
    pub revoked: AtomicBool,
    /// The socket asked for `typing` signals (its hello's `"typing": true`).
    pub typing: AtomicBool,
    /// Set by whoever first reports the socket gone (bus on overflow, or the socket).
    gone: AtomicBool,
    /// The agent of a console (presence follows its connection).
    agent: Option<AgentId>,
    /// When the socket last ran ([`SubState::touch`], [`clock_ms`]): a socket whose
    /// client stopped reading is not run at all once its connection's buffers are full
    /// (actix then stops polling it), so only the bus can see that it is stuck.
    alive_ms: AtomicU64,
}

/// Milliseconds since the first call: the clock of [`SubState::touch`].
pub fn clock_ms() -> u64 {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

impl SubState {
    /// The socket ran just now.
    pub fn touch(&self) {
        self.alive_ms.store(clock_ms(), Ordering::Relaxed);
    }

    /// True exactly once: the caller reports the disconnection.
    pub fn mark_gone(&self) -> bool {
        !self.gone.swap(true, Ordering::SeqCst)
    }

    /// The socket took `frames` off its queue.
    pub fn taken(&self, frames: &[(u64, Bytes)]) {
        let bytes = size(frames);
        self.queued_frames
            .fetch_sub(frames.len(), Ordering::Relaxed);
        self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }
}

struct Sub {
    tx: mpsc::Sender<Frames>,
    state: Arc<SubState>,
}

impl Sub {
    /// Queues a batch of `bytes` bytes; false when the socket overflowed and must be
    /// dropped.
    fn offer(&self, frames: &Frames, bytes: usize) -> bool {
        let queued = self
            .state
            .queued_frames
            .fetch_add(frames.len(), Ordering::Relaxed);
        let queued_bytes = self.state.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        if queued + frames.len() > MAX_QUEUED_FRAMES
            || queued_bytes + bytes > MAX_QUEUED_BYTES
            || self.tx.try_send(frames.clone()).is_err()
        {
            self.state.overflowed.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Queues a signal (a frame with no seq, [`SIGNAL`]) if the socket asked for them and
    /// has room for it: a signal is a hint, so a socket short of room misses it rather
    /// than being cut off for it.
    fn offer_signal(&self, frames: &Frames, bytes: usize) {
        let state = &self.state;
        if !state.typing.load(Ordering::Relaxed)
            || state.overflowed.load(Ordering::Relaxed)
            || state.queued_frames.load(Ordering::Relaxed) + frames.len() > MAX_QUEUED_FRAMES / 2
            || state.queued_bytes.load(Ordering::Relaxed) + bytes > MAX_QUEUED_BYTES / 2
        {
            return;
        }
        state
            .queued_frames
            .fetch_add(frames.len(), Ordering::Relaxed);
        state.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        if self.tx.try_send(frames.clone()).is_err() {
            state
                .queued_frames
                .fetch_sub(frames.len(), Ordering::Relaxed);
            state.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
    }
}

/// The seq of a signal: a frame that is no event (`typing`), neither stored nor
/// replayed, sent only to the sockets that asked for it.
pub const SIGNAL: u64 = 0;

/// A signal's JSON as a one-frame batch for the sockets' queues, and its bytes.
fn signal_frames(json: &[u8]) -> Option<(Frames, usize)> {
    let frame = wire(SIGNAL, json)?;
    let bytes = frame.len();
    Some((Arc::new([(SIGNAL, frame)]), bytes))
}

/// Who listens.
#[derive(Default)]
pub struct Bus {
    head: AtomicU64,
    next_id: AtomicU64,
    agents: crate::IdMap<u64, Sub>,
    contacts: crate::IdMap<ContactId, Vec<(u64, Sub)>>,
    /// Sockets cut off for overflowing since start (for metrics).
    pub dropped: AtomicU64,
    /// Held while publishing and while subscribing, so a new subscriber gets a head
    /// that splits the events exactly into "replay from the store" and "queued live".
    seam: Mutex<()>,
    presence: OnceLock<Addr<PresenceActor>>,
    shutting_down: AtomicBool,
    /// Wakes [`Bus::until_shutdown`]'s waiters.
    shutdown_notify: tokio::sync::Notify,
}

impl Bus {
    /// A new bus with no subscribers.
    pub fn new() -> Arc<Bus> {
        Arc::new(Bus::default())
    }

    /// The seq of the last published event.
    pub fn head(&self) -> u64 {
        self.head.load(Ordering::SeqCst)
    }

    pub(crate) fn set_head(&self, seq: u64) {
        self.head.store(seq, Ordering::SeqCst);
    }

    /// Lets the bus tell presence when a console is cut off.
    pub fn set_presence(&self, addr: Addr<PresenceActor>) {
        let _ = self.presence.set(addr);
    }

    fn channel(&self, agent: Option<AgentId>) -> (Sub, Subscription) {
        let (tx, rx) = mpsc::channel(MAX_QUEUED_FRAMES);
        let state = Arc::new(SubState {
            agent,
            alive_ms: AtomicU64::new(clock_ms()),
            ..SubState::default()
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        (
            Sub {
                tx,
                state: state.clone(),
            },
            Subscription { id, rx, state },
        )
    }

    /// Subscribes an agent console to every event. Returns the subscription and the
    /// head: every event up to it was published before, every later one will be queued.
    pub fn subscribe_agent(&self, agent: &AgentId) -> (Subscription, u64) {
        self.subscribe_agent_if(agent, || true)
            .expect("an admission that always holds")
    }

    /// [`Bus::subscribe_agent`], if `admitted()` (the console's token still signs the
    /// agent in) holds at that moment; `None` otherwise, with nothing subscribed.
    ///
    /// The check runs under the same lock as [`Bus::revoke_agent`]'s scan, and a token
    /// is replaced in the directory before that scan: either the check sees the new
    /// token (the console is refused), or the console is subscribed before the scan
    /// (which cuts it off). A console whose hello carried the old token, checked in the
    /// very instant of the replacement, can no longer stay subscribed.
    pub fn subscribe_agent_if(
        &self,
        agent: &AgentId,
        admitted: impl FnOnce() -> bool,
    ) -> Option<(Subscription, u64)> {
        let (sub, s) = self.channel(Some(agent.clone()));
        // unwrap: the lock only guards the subscribe/publish seam and never panics inside.
        let _seam = self.seam.lock().unwrap_or_else(|e| e.into_inner());
        if !admitted() {
            return None;
        }
        if !self.is_shutting_down() {
            self.agents.insert(s.id, sub);
        }
        Some((s, self.head()))
    }

    /// Subscribes a widget to its contact's visible events (see [`Bus::subscribe_agent`]).
    pub fn subscribe_contact(&self, contact: &ContactId) -> (Subscription, u64) {
        let (sub, s) = self.channel(None);
        let _seam = self.seam.lock().unwrap_or_else(|e| e.into_inner());
        if !self.is_shutting_down() {
            self.contacts
                .entry(contact.clone())
                .or_default()
                .push((s.id, sub));
        }
        (s, self.head())
    }

    fn cut_off(&self, state: &SubState) {
        state.overflowed.store(true, Ordering::Relaxed);
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.report_gone(state);
    }

    /// Tells presence that a console is gone, once (whoever reports it first).
    fn report_gone(&self, state: &SubState) {
        if let (Some(agent), Some(p)) = (&state.agent, self.presence.get()) {
            if state.mark_gone() {
                p.do_send(Disconnect {
                    agent: agent.clone(),
                });
            }
        }
    }

    /// Cuts off every console of `agent` (its token was replaced): their queues end, and
    /// each socket closes with 4401 (see `SubState::revoked`). Returns how many. Call it
    /// once the old token is out of the directory: a console subscribing meanwhile is
    /// either found here or refused ([`Bus::subscribe_agent_if`]).
    pub fn revoke_agent(&self, agent: &AgentId) -> usize {
        // The seam orders this scan with every subscription's token check.
        let _seam = self.seam.lock().unwrap_or_else(|e| e.into_inner());
        let ids: Vec<u64> = self
            .agents
            .iter()
            .filter(|s| s.value().state.agent.as_ref() == Some(agent))
            .map(|s| *s.key())
            .collect();
        let mut n = 0;
        for id in ids {
            if let Some((_, sub)) = self.agents.remove(&id) {
                sub.state.revoked.store(true, Ordering::Relaxed);
                self.report_gone(&sub.state);
                n += 1;
            }
        }
        n
    }

    /// Removes a subscription (socket closed).
    pub fn unsubscribe(&self, id: u64, contact: Option<&ContactId>) {
        match contact {
            None => {
                self.agents.remove(&id);
            }
            Some(c) => {
                let empty = match self.contacts.get_mut(c) {
                    Some(mut v) => {
                        v.retain(|(i, _)| *i != id);
                        v.is_empty()
                    }
                    None => false,
                };
                if empty {
                    self.contacts.remove_if(c, |_, v| v.is_empty());
                }
            }
        }
    }

    /// Ends every subscription (their sockets close with 1001) and refuses new ones.
    pub fn shutdown(&self) {
        let _seam = self.seam.lock().unwrap_or_else(|e| e.into_inner());
        self.shutting_down.store(true, Ordering::SeqCst);
        self.agents.clear();
        self.contacts.clear();
        self.shutdown_notify.notify_waiters();
    }

    /// Resolves once [`Bus::shutdown`] has run (at once if it has): sockets that are
    /// not subscribed yet (no `hello`) close on it.
    pub fn until_shutdown(self: &Arc<Self>) -> impl std::future::Future<Output = ()> {
        let bus = self.clone();
        async move {
            let notified = bus.shutdown_notify.notified();
            tokio::pin!(notified);
            // Registered before the flag is read: a shutdown in between still wakes it.
            notified.as_mut().enable();
            if !bus.is_shutting_down() {
                notified.await;
            }
        }
    }

    /// True once [`Bus::shutdown`] ran.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Number of connected agent and contact subscriptions.
    pub fn counts(&self) -> (usize, usize) {
        let contacts = self.contacts.iter().map(|e| e.value().len()).sum();
        (self.agents.len(), contacts)
    }

    /// Cuts off every socket that has not run for `stale` (see `SubState::alive_ms`), as
    /// if it had overflowed (PROTOCOL §7: a slow client counts as disconnected at once,
    /// presence follows, and it is closed with 1008 whenever it runs again). Returns how
    /// many.
    pub fn sweep(&self, stale: std::time::Duration) -> usize {
        let now = clock_ms();
        let stale_ms = stale.as_millis() as u64;
        let is_stale =
            |s: &Sub| now.saturating_sub(s.state.alive_ms.load(Ordering::Relaxed)) > stale_ms;
        // No seam lock: removing a subscription needs none (see `unsubscribe`), and a
        // scan of every socket must not hold up publishing.
        let dead: Vec<u64> = self
            .agents
            .iter()
            .filter(|a| is_stale(a.value()))
            .map(|a| *a.key())
            .collect();
        let mut n = 0;
        for id in dead {
            if let Some((_, sub)) = self.agents.remove(&id) {
                self.cut_off(&sub.state);
                n += 1;
            }
        }
        for mut subs in self.contacts.iter_mut() {
            subs.retain(|(_, s)| {
                if is_stale(s) {
                    self.cut_off(&s.state);
                    n += 1;
                    false
                } else {
                    true
                }
            });
        }
        self.contacts.retain(|_, v| !v.is_empty());
        if n > 0 {
            tracing::info!(sockets = n, "Cut off sockets that stopped reading.");
        }
        n
    }

    /// Sends a signal (a JSON frame, [`SIGNAL`]) to every agent console that asked for
    /// signals, but the subscription `except` (its sender).
    pub fn signal_agents(&self, json: &[u8], except: u64) {
        let Some((frames, bytes)) = signal_frames(json) else {
            return;
        };
        for a in self.agents.iter() {
            if *a.key() != except {
                a.value().offer_signal(&frames, bytes);
            }
        }
    }

    /// Sends a signal to the widget sockets of `contact` that asked for signals.
    pub fn signal_contact(&self, contact: &ContactId, json: &[u8]) {
        let Some((frames, bytes)) = signal_frames(json) else {
            return;
        };
        if let Some(subs) = self.contacts.get(contact) {
            for (_, s) in subs.iter() {
                s.offer_signal(&frames, bytes);
            }
        }
    }

    /// Delivers durable events, in seq order, to every subscriber allowed to see them.
    pub fn publish(&self, events: Vec<Outgoing>) {
        let frames = self.publish_contacts(events);
        self.publish_agents(frames);
    }

    /// The first half of [`Bus::publish`]: delivers `events` to the contacts' sockets and
    /// moves the head past them. Returns the consoles' frames, for
    /// [`Bus::publish_agents`], which may come after further publishes (the writer holds
    /// consoles' frames for one more commit when another follows at once: one write per
    /// console for both). A console that subscribes meanwhile gets a head past those
    /// frames: it replays them from the store, and skips them when they arrive live.
    pub fn publish_contacts(&self, events: Vec<Outgoing>) -> Vec<(u64, Bytes)> {
        let Some(last) = events.last().map(|e| e.seq) else {
            return Vec::new();
        };
        let _seam = self.seam.lock().unwrap_or_else(|e| e.into_inner());
        // Each contact's events of this publish, in seq order, as one batch (a
        // saturated commit holds hundreds of contacts: found by hash, not by a scan).
        let mut by_contact: Vec<(&ContactId, Vec<(u64, Bytes)>)> = Vec::new();
        let mut index: HashMap<&ContactId, usize> = HashMap::new();
        for e in &events {
            if let Some((contact, frame)) = &e.contact {
                let item = (e.seq, frame.clone());
                match index.entry(contact) {
                    Entry::Occupied(i) => by_contact[*i.get()].1.push(item),
                    Entry::Vacant(v) => {
                        v.insert(by_contact.len());
                        by_contact.push((contact, vec![item]));
                    }
                }
            }
        }
        for (contact, frames) in by_contact {
            if let Some(mut subs) = self.contacts.get_mut(contact) {
                let bytes = size(&frames);
                let frames: Frames = frames.into();
                subs.retain(|(_, s)| {
                    let ok = s.offer(&frames, bytes);
                    if !ok {
                        self.cut_off(&s.state);
                    }
                    ok
                });
            }
        }
        self.head.store(last, Ordering::SeqCst);
        events
            .into_iter()
            .filter(|e| !e.agent_frame.is_empty())
            .map(|e| (e.seq, e.agent_frame))
            .collect()
    }

    /// The second half of [`Bus::publish`]: delivers consoles' frames (in seq order, after
    /// their [`Bus::publish_contacts`]) to every agent console, as one batch.
    pub fn publish_agents(&self, frames: Vec<(u64, Bytes)>) {
        if frames.is_empty() {
            return;
        }
        let _seam = self.seam.lock().unwrap_or_else(|e| e.into_inner());
        if self.agents.is_empty() {
            return;
        }
        let frames: Frames = frames.into();
        let bytes = size(&frames);
        let mut dead_agents = Vec::new();
        for a in self.agents.iter() {
            if !a.value().offer(&frames, bytes) {
                dead_agents.push(*a.key());
            }
        }
        for id in dead_agents {
            if let Some((_, sub)) = self.agents.remove(&id) {
                self.cut_off(&sub.state);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MessageId, Status};
    use serde_json::{json, Value};

    fn message() -> Message {
        Message {
            id: MessageId::from("m1"),
            conversation_id: ConversationId::from("c1"),
            contact_id: ContactId::from("k1"),
            text: "Bonjour \"à\" vous\n\u{1F600} </script>".into(),
            at: Ts(1_700_000_000_123),
            seq: 7,
            status: Status::Pending,
            assignee: Some("a1".into()),
            help: None,
            hold_until: None,
        }
    }

    fn parse(b: &[u8]) -> Value {
        serde_json::from_slice(b).expect("a frame is JSON")
    }

    /// The typed frames say exactly what the `json!` values they replace said.
    #[test]
    fn contact_frames_match_their_documented_shape() {
        let m = message();
        let ev = Event::new(
            7,
            Some(m.conversation_id.clone()),
            m.at,
            EventBody::MessageCreated { message: m.clone() },
        );
        let json = serde_json::to_vec(&ev).unwrap();
        let out = Outgoing::new(&ev, &json, Some(&m.contact_id));
        let (who, frame) = out.contact.expect("the contact sees its own message");
        assert_eq!(who, m.contact_id);
        let expected = json!({
            "type": "event", "seq": 7, "kind": "message.created",
            "conversation_id": "c1", "at": m.at,
            "data": {"message": m.for_contact()},
        });
        let frame = crate::ws::context::text_payload(&frame);
        assert_eq!(parse(frame), expected);
        // The contact's view leaves out status and assignee.
        assert!(parse(frame)["data"]["message"].get("status").is_none());
        assert!(parse(frame)["data"]["message"].get("assignee").is_none());

        let ack = ack_frame(Some("c-42"), &m);
        assert_eq!(
            parse(ack.as_bytes()),
            json!({"type": "ack", "client_id": "c-42", "message": m.for_contact()})
        );
        let ack = ack_frame(None, &m);
        assert_eq!(
            parse(ack.as_bytes()),
            json!({"type": "ack", "client_id": null, "message": m.for_contact()})
        );
    }

    fn out(seq: u64, contact: Option<&str>) -> Outgoing {
        let frame = crate::ws::context::text_frame(format!("{{\"seq\":{seq}}}").as_bytes());
        Outgoing {
            seq,
            agent_frame: frame.clone(),
            contact: contact.map(|c| (ContactId::from(c), frame)),
        }
    }

    fn seqs(frames: &Frames) -> Vec<u64> {
        frames.iter().map(|(s, _)| *s).collect()
    }

    /// A publish reaches each socket as one batch: every event for consoles, only its
    /// contact's for a widget, in seq order, and the queue's budget is released when
    /// the socket takes the batch.
    #[test]
    fn a_publish_is_one_batch_per_socket_in_seq_order() {
        let bus = Bus::new();
        let (mut a1, _) = bus.subscribe_agent(&AgentId::from("a1"));
        let (mut a2, _) = bus.subscribe_agent(&AgentId::from("a2"));
        let (mut k1, _) = bus.subscribe_contact(&ContactId::from("k1"));
        let (mut k2, _) = bus.subscribe_contact(&ContactId::from("k2"));
        bus.publish(vec![
            out(1, Some("k1")),
            out(2, None),
            out(3, Some("k2")),
            out(4, Some("k1")),
        ]);
        assert_eq!(bus.head(), 4);
        for a in [&mut a1, &mut a2] {
            let batch = a.rx.try_recv().expect("one batch");
            assert_eq!(seqs(&batch), [1, 2, 3, 4]);
            assert!(a.rx.try_recv().is_err(), "a single batch per publish");
            assert_eq!(a.state.queued_frames.load(Ordering::Relaxed), 4);
            a.state.taken(&batch);
            assert_eq!(a.state.queued_frames.load(Ordering::Relaxed), 0);
            assert_eq!(a.state.queued_bytes.load(Ordering::Relaxed), 0);
        }
        let batch = k1.rx.try_recv().expect("k1's batch");
        assert_eq!(seqs(&batch), [1, 4]);
        assert_eq!(
            crate::ws::context::text_payload(&batch[1].1),
            br#"{"seq":4}"#
        );
        assert_eq!(seqs(&k2.rx.try_recv().expect("k2's batch")), [3]);
        assert!(k2.rx.try_recv().is_err());
        // A publish a contact has no part in queues nothing for it.
        bus.publish(vec![out(5, None)]);
        assert!(k1.rx.try_recv().is_err());
        assert_eq!(seqs(&a1.rx.try_recv().expect("console batch")), [5]);
    }

    /// The writer may hold consoles' frames for a commit: contacts are served and the
    /// head moves at once; consoles get the held frames, in order and in one batch, when
    /// they are released, and a console that subscribed meanwhile has a head past them.
    #[test]
    fn consoles_frames_can_follow_the_contacts_publish() {
        let bus = Bus::new();
        let (mut early, _) = bus.subscribe_agent(&AgentId::from("early"));
        let (mut k1, _) = bus.subscribe_contact(&ContactId::from("k1"));
        let mut held = bus.publish_contacts(vec![out(1, Some("k1")), out(2, None)]);
        assert_eq!(bus.head(), 2);
        assert_eq!(seqs(&k1.rx.try_recv().expect("the contact at once")), [1]);
        assert!(
            early.rx.try_recv().is_err(),
            "consoles wait for the release"
        );
        held.extend(bus.publish_contacts(vec![out(3, Some("k1"))]));
        assert_eq!(seqs(&k1.rx.try_recv().expect("the contact at once")), [3]);
        // Subscribing now: the head is past every held frame (replayed from the store).
        let (mut late, head) = bus.subscribe_agent(&AgentId::from("late"));
        assert_eq!(head, 3);
        bus.publish_agents(held);
        assert_eq!(seqs(&early.rx.try_recv().expect("one batch")), [1, 2, 3]);
        assert!(
            early.rx.try_recv().is_err(),
            "a single batch for both commits"
        );
        // The late console gets them too; its socket skips what its head covers.
        assert_eq!(seqs(&late.rx.try_recv().expect("one batch")), [1, 2, 3]);
        bus.publish_agents(Vec::new());
        assert!(
            early.rx.try_recv().is_err(),
            "nothing to release, nothing queued"
        );
    }

    fn directory_with(id: &str, token_hash: &str) -> crate::auth::Directory {
        let d = crate::auth::Directory::default();
        d.insert_loaded(record(id, token_hash));
        d
    }

    fn record(id: &str, token_hash: &str) -> crate::auth::AgentRecord {
        crate::auth::AgentRecord {
            id: AgentId::from(id),
            name: id.into(),
            role: crate::domain::Role::Agent,
            capacity: None,
            channels: None,
            token_hash: token_hash.into(),
        }
    }

    /// What `POST /api/agents/{id}/token` does (`Hub::new_agent_token`): the new token in
    /// the directory (the old one out), then the agent's consoles cut off.
    fn replace_token(bus: &Bus, d: &crate::auth::Directory, id: &str, new_hash: &str) -> usize {
        d.insert_loaded(record(id, new_hash));
        bus.revoke_agent(&AgentId::from(id))
    }

    /// The race of a console whose hello carried the old token, checked in the very
    /// instant the token was replaced: its check passed, then the replacement ran in
    /// full (finding no console to cut off), then the console subscribed. It is
    /// refused now; subscribed before the replacement, it is cut off by it.
    #[test]
    fn a_console_checked_as_its_token_is_replaced_is_refused_or_cut_off() {
        let bus = Bus::new();
        let d = directory_with("bob", "old");
        let bob = AgentId::from("bob");
        // The hello's token check (`Directory::resolve`) passes…
        assert!(d.holds_agent_token(&bob, "old"));
        // …the token is replaced before the console subscribes: nothing to cut off yet…
        assert_eq!(replace_token(&bus, &d, "bob", "new"), 0);
        // …and the subscription, checked again in one step with the cut-off, is refused.
        let late = bus.subscribe_agent_if(&bob, || d.holds_agent_token(&bob, "old"));
        assert!(
            late.is_none(),
            "a console with the old token stayed subscribed"
        );
        assert_eq!(bus.counts().0, 0);

        // The other order: subscribed first, then the replacement cuts it off (4401).
        let (mut early, _) = bus
            .subscribe_agent_if(&bob, || d.holds_agent_token(&bob, "new"))
            .expect("the current token subscribes");
        assert_eq!(replace_token(&bus, &d, "bob", "newer"), 1);
        assert!(early.state.revoked.load(Ordering::Relaxed));
        assert!(matches!(
            early.rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
        assert_eq!(bus.counts().0, 0);
        // Another agent's consoles are not touched.
        let (ann, _) = bus.subscribe_agent(&AgentId::from("ann"));
        assert_eq!(replace_token(&bus, &d, "bob", "newest"), 0);
        assert!(!ann.state.revoked.load(Ordering::Relaxed));
        assert_eq!(bus.counts().0, 1);
    }

    /// The same race run for real on two threads, many times: whichever comes first, a
    /// console admitted with the old token ends revoked, never subscribed and live.
    #[test]
    fn a_token_replaced_while_consoles_subscribe_leaves_none_with_the_old_one() {
        let bus = Bus::new();
        let d = Arc::new(directory_with("bob", "t0"));
        let bob = AgentId::from("bob");
        for round in 1..=2_000u32 {
            let old = format!("t{}", round - 1);
            let new = format!("t{round}");
            let barrier = Arc::new(std::sync::Barrier::new(2));
            let replacer = {
                let (bus, d, barrier, new) = (bus.clone(), d.clone(), barrier.clone(), new);
                std::thread::spawn(move || {
                    barrier.wait();
                    replace_token(&bus, &d, "bob", &new)
                })
            };
            barrier.wait();
            let sub = bus.subscribe_agent_if(&bob, || d.holds_agent_token(&bob, &old));
            let cut = replacer.join().expect("the replacement");
            match sub {
                None => assert_eq!(cut, 0, "round {round}"),
                Some((s, _)) => {
                    assert_eq!(cut, 1, "round {round}: subscribed and not cut off");
                    assert!(s.state.revoked.load(Ordering::Relaxed), "round {round}");
                }
            }
            assert_eq!(bus.counts().0, 0, "round {round}");
        }
    }

    /// PROTOCOL §7: a socket holds at most 4,096 frames; batches count by their frames.
    #[test]
    fn a_socket_is_cut_off_past_4096_queued_frames() {
        let bus = Bus::new();
        let (slow, _) = bus.subscribe_agent(&AgentId::from("slow"));
        let (mut reader, _) = bus.subscribe_agent(&AgentId::from("reader"));
        let mut seq = 0;
        // 4,096 frames in batches of 64: all queued.
        for _ in 0..MAX_QUEUED_FRAMES / 64 {
            let batch = (0..64)
                .map(|_| {
                    seq += 1;
                    out(seq, None)
                })
                .collect();
            bus.publish(batch);
            let got = reader.rx.try_recv().expect("the reader's batch");
            reader.state.taken(&got);
        }
        assert_eq!(bus.counts().0, 2);
        assert!(!slow.state.overflowed.load(Ordering::Relaxed));
        assert_eq!(slow.state.queued_frames.load(Ordering::Relaxed), 4096);
        // One frame more: the slow socket is cut off, the reader is not.
        bus.publish(vec![out(seq + 1, None)]);
        assert!(slow.state.overflowed.load(Ordering::Relaxed));
        assert_eq!(bus.counts().0, 1);
        assert_eq!(bus.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(
            seqs(&reader.rx.try_recv().expect("still served")),
            [seq + 1]
        );
    }
}
