//! One WebSocket actor per connection, for both consoles (`/ws/agent`) and widgets
//! (`/ws/widget`). The first frame must be `hello`; after `welcome` the socket replays
//! what the client missed (from the store) and then streams live events from its
//! bounded bus queue. The actor is only polled when the connection can take more
//! output, so a client that stops reading stops draining its queue and is cut off by
//! the bus (PROTOCOL §7) instead of growing memory.

use super::context::WsContext;
use super::frames::{self, ClientFrame, FrameError};
use crate::actors::presence::{Connect, Disconnect, SetAway};
use crate::auth::Principal;
use crate::bus::{Frames, SubState};
use crate::domain::{AgentId, ContactId};
use crate::error::ApiError;
use crate::hub::Hub;
use actix::prelude::*;
use actix_http::ws::{self, Item};
use bytestring::ByteString;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod typing;
use typing::{TypingTarget, TypingThrottle};

/// How often the server pings (at most; see [`Socket::heartbeat`]).
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A socket that has not said hello by then is closed.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Custom close code for a refused hello token.
const CLOSE_UNAUTHORIZED: u16 = 4401;

/// Which socket this is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Agent,
    Widget,
}

impl Kind {
    /// Whether `who` (a token's owner) may open this kind of socket.
    fn admits(self, who: &Result<Option<Principal>, ApiError>) -> bool {
        matches!(
            (self, who),
            (Kind::Agent, Ok(Some(Principal::Agent { .. })))
                | (Kind::Widget, Ok(Some(Principal::Contact { .. })))
        )
    }
}

/// What a hello asks for once its token is checked.
enum Hello {
    /// A welcome, replaying from `since` if the `epoch` matches.
    Welcome {
        since: Option<u64>,
        epoch: Option<String>,
        typing: bool,
    },
    /// Nothing: another field was malformed (this says how). A good token gets
    /// `invalid` and 1008; any other the 4401 a bad token gets (§7, and §3's order).
    Refuse(String),
}

enum Phase {
    AwaitHello,
    Authenticating,
    Ready,
}

/// A connected console or widget.
pub struct Socket {
    hub: Arc<Hub>,
    kind: Kind,
    phase: Phase,
    agent: Option<AgentId>,
    contact: Option<(ContactId, String)>,
    sub: Option<(u64, Arc<SubState>)>,
    last_heard: Instant,
    /// The last heartbeat found the peer silent for longer than the silence; the next
    /// one closes the socket if it still is (see [`Socket::tick`]).
    silent_before: bool,
    last_sent: u64,
    ip: Option<std::net::IpAddr>,
    /// A fragmented message being reassembled (RFC 6455 §5.4): whether it is text, and
    /// its bytes so far.
    fragments: Option<(bool, bytes::BytesMut)>,
    /// Closes the socket on shutdown until it subscribes (see `started`).
    shutdown_watch: Option<SpawnHandle>,
    /// How often this socket's `typing` frames are passed on.
    typing: TypingThrottle,
    /// What this socket said it is typing in, while it is: told as stopped when the
    /// socket moves elsewhere or closes.
    typing_now: Option<TypingTarget>,
    /// The conversation a console last typed in, as read then: its contact and whether
    /// its session is active (read again after `typing::READ_AGAIN`).
    typing_conversation: Option<(String, ContactId, bool, Instant)>,
}

impl Socket {
    /// A socket waiting for its `hello`.
    pub fn new(hub: Arc<Hub>, kind: Kind, ip: Option<std::net::IpAddr>) -> Self {
        Socket {
            hub,
            kind,
            phase: Phase::AwaitHello,
            agent: None,
            contact: None,
            sub: None,
            last_heard: Instant::now(),
            silent_before: false,
            last_sent: 0,
            ip,
            fragments: None,
            shutdown_watch: None,
            typing: TypingThrottle::new(),
            typing_now: None,
            typing_conversation: None,
        }
    }

    fn send_json(ctx: &mut WsContext<Self>, v: serde_json::Value) {
        ctx.text(v.to_string());
    }

    fn error(ctx: &mut WsContext<Self>, code: &str, message: &str) {
        Self::send_json(
            ctx,
            json!({"type": "error", "code": code, "message": message}),
        );
    }

    /// An error answering a `send`: it names the frame's `client_id` (null without one).
    fn send_error(ctx: &mut WsContext<Self>, code: &str, message: &str, client_id: Option<String>) {
        Self::send_json(
            ctx,
            json!({"type": "error", "code": code, "message": message, "client_id": client_id}),
        );
    }

    /// How often to ping and mark the socket alive: a quarter of the silence allowed,
    /// at most [`HEARTBEAT`].
    pub fn heartbeat(silence: Duration) -> Duration {
        (silence / 4).clamp(Duration::from_millis(10), HEARTBEAT)
    }

    /// A random delay in `[0, period)`.
    pub fn jitter(period: Duration) -> Duration {
        use rand::Rng;
        let micros = period.as_micros().max(1) as u64;
        Duration::from_micros(rand::thread_rng().gen_range(0..micros))
    }

    /// Whether the bus cut this socket off (a slow client, PROTOCOL §7).
    fn cut_off(&self) -> bool {
        self.sub
            .as_ref()
            .is_some_and(|(_, state)| state.overflowed.load(Ordering::Relaxed))
    }

    /// One heartbeat: marks the socket alive for the bus, drops a peer silent for too
    /// long, pings.
    fn tick(&mut self, ctx: &mut WsContext<Self>, silence: Duration) {
        if self.cut_off() {
            // The bus cut us off: the live stream closes with 1008 once what was
            // queued before is sent (PROTOCOL §7), whatever else is also true.
            return;
        }
        if let Some((_, state)) = &self.sub {
            state.touch();
        }
        // Silent at two heartbeats in a row: the actor runs only once what it queued is
        // out, so after a client worked through a long queue (a replay) its frames of
        // meanwhile are read in the same turn as this tick, and only then tell it spoke.
        let silent = self.last_heard.elapsed() > silence;
        if silent && self.silent_before {
            return Self::close(ctx, ws::CloseCode::Away, "silent for too long");
        }
        self.silent_before = silent;
        ctx.ping(b"");
    }

    fn close(ctx: &mut WsContext<Self>, code: ws::CloseCode, why: &str) {
        ctx.close(Some(ws::CloseReason {
            code,
            description: Some(why.to_string()),
        }));
        ctx.stop();
    }

    /// Sends an event's frame (encoded once for every socket) unless it was sent.
    fn push(&mut self, seq: u64, frame: bytes::Bytes, ctx: &mut WsContext<Self>) {
        if seq == crate::bus::SIGNAL {
            return ctx.wire(frame);
        }
        if seq <= self.last_sent {
            return;
        }
        self.last_sent = seq;
        ctx.wire(frame);
    }

    fn on_text(&mut self, text: &str, ctx: &mut WsContext<Self>) {
        match self.phase {
            Phase::AwaitHello => match frames::parse(text) {
                Ok(ClientFrame::Hello {
                    token,
                    since,
                    epoch,
                    typing,
                }) => {
                    let typing = typing.unwrap_or(false);
                    self.hello(
                        token,
                        Hello::Welcome {
                            since,
                            epoch,
                            typing,
                        },
                        ctx,
                    )
                }
                Ok(_) => {
                    Self::error(ctx, "invalid", "the first frame must be a hello");
                    Self::close(ctx, ws::CloseCode::Policy, "hello expected");
                }
                Err(e) => match (e.message(), e) {
                    // A field is wrong: the token decides first (4401: absent, not a
                    // string, unknown, the other kind), else `invalid` and 1008.
                    (why, FrameError::BadHello { token, .. }) => {
                        self.hello(token, Hello::Refuse(why), ctx)
                    }
                    (why, _) => {
                        Self::error(ctx, "invalid", &why);
                        Self::close(ctx, ws::CloseCode::Policy, "hello expected");
                    }
                },
            },
            Phase::Authenticating => {
                Self::error(ctx, "invalid", "wait for the welcome");
            }
            Phase::Ready => match frames::parse(text) {
                Ok(ClientFrame::Ping) => Self::send_json(ctx, json!({"type": "pong"})),
                // A console the bus cut off counts as disconnected (§7): what it says
                // of presence, read only once it has caught up, no longer counts.
                Ok(ClientFrame::Presence { .. }) if self.cut_off() => {}
                Ok(ClientFrame::Presence { status }) => match (&self.agent, status.as_str()) {
                    // A change is a durable event for every console: it counts
                    // against the agent's action rate, like an HTTP action.
                    (Some(agent), "away" | "online")
                        if !self
                            .hub
                            .limiter
                            .allow(&format!("a/{agent}"), crate::ratelimit::AGENT) =>
                    {
                        Self::error(ctx, "rate_limited", &ApiError::RateLimited.to_string())
                    }
                    (Some(agent), "away" | "online") => {
                        self.hub.presence_actor.do_send(SetAway {
                            agent: agent.clone(),
                            away: status == "away",
                        });
                    }
                    (Some(_), _) => Self::error(ctx, "invalid", "status must be away or online"),
                    (None, _) => Self::error(ctx, "invalid", "presence is for agent consoles"),
                },
                Ok(ClientFrame::Send { text, client_id }) => {
                    self.customer_send(text, client_id, ctx)
                }
                Ok(ClientFrame::Typing {
                    active,
                    conversation_id,
                    kind,
                }) => self.on_typing(active, conversation_id, kind, ctx),
                Ok(ClientFrame::Hello { .. }) => Self::error(ctx, "invalid", "already said hello"),
                // A malformed `send` still gets its client id back (PROTOCOL §5), also
                // when the frame is not even JSON: it may be a send all the same.
                Err(e) => match &e {
                    FrameError::BadSend { client_id, .. } => {
                        Self::send_error(ctx, "invalid", &e.message(), client_id.clone())
                    }
                    FrameError::NotJson(_) => {
                        Self::send_error(ctx, "invalid", &e.message(), frames::scan_client_id(text))
                    }
                    _ => Self::error(ctx, "invalid", &e.message()),
                },
            },
        }
    }

    fn hello(&mut self, token: Option<String>, ask: Hello, ctx: &mut WsContext<Self>) {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Self::close(
                ctx,
                ws::CloseCode::Other(CLOSE_UNAUTHORIZED),
                "unauthorized",
            );
        };
        self.phase = Phase::Authenticating;
        let hub = self.hub.clone();
        // Checked again as the console subscribes: the token may be replaced meanwhile.
        let token_hash = crate::auth::hash_token(&token);
        ctx.wait(
            async move { hub.directory.resolve(&hub.store, &token).await }
                .into_actor(self)
                .map(move |who, act, ctx| match ask {
                    Hello::Welcome {
                        since,
                        epoch,
                        typing,
                    } => act.welcome(who, &token_hash, since, epoch, typing, ctx),
                    // A good token: the hello's other fault answers (PROTOCOL §7).
                    Hello::Refuse(why) if act.kind.admits(&who) => {
                        Self::error(ctx, "invalid", &why);
                        Self::close(ctx, ws::CloseCode::Policy, "hello expected");
                    }
                    // Any other token is refused as `welcome` refuses it (4401).
                    Hello::Refuse(_) => act.welcome(who, &token_hash, None, None, false, ctx),
                }),
        );
    }

    fn welcome(
        &mut self,
        who: Result<Option<Principal>, ApiError>,
        token_hash: &str,
        since: Option<u64>,
        epoch: Option<String>,
        typing: bool,
        ctx: &mut WsContext<Self>,
    ) {
        let mut counted = None;
        let (subscription, head, mut welcome) = match (self.kind, who) {
            (Kind::Agent, Ok(Some(Principal::Agent { id, .. }))) => {
                // Counted before it is subscribed (queued at once): a `Disconnect` the
                // bus sends once it is (the token replaced, the console cut off) comes
                // after this `Connect`, and `stopped` balances it whenever the socket
                // ends, even before the welcome.
                let (tx, rx) = tokio::sync::oneshot::channel();
                self.hub.presence_actor.do_send(Connect {
                    agent: id.clone(),
                    counted: Some(tx),
                });
                // The token is checked again as the console subscribes, in one step with
                // a replacement's cut-off (`Bus::subscribe_agent_if`): a hello checked in
                // the instant the token was replaced is refused now, or cut off then.
                let directory = &self.hub.directory;
                let admitted = self
                    .hub
                    .bus
                    .subscribe_agent_if(&id, || directory.holds_agent_token(&id, token_hash));
                let Some((s, head)) = admitted else {
                    self.hub
                        .presence_actor
                        .do_send(Disconnect { agent: id.clone() });
                    tracing::info!(agent_id = %id, "Console refused: its token was replaced.");
                    return Self::close(
                        ctx,
                        ws::CloseCode::Other(CLOSE_UNAUTHORIZED),
                        "the token was replaced",
                    );
                };
                counted = Some(rx);
                let w = json!({"type": "welcome", "agent_id": id, "seq": head});
                self.agent = Some(id);
                (s, head, w)
            }
            (Kind::Widget, Ok(Some(Principal::Contact { id, channel }))) => {
                let (s, head) = self.hub.bus.subscribe_contact(&id);
                let w = json!({"type": "welcome", "contact_id": id, "seq": head});
                self.contact = Some((id, channel));
                (s, head, w)
            }
            (_, Err(ApiError::Unavailable(m))) => {
                Self::error(ctx, "unavailable", &m);
                return Self::close(ctx, ws::CloseCode::Again, "storage unavailable");
            }
            _ => {
                return Self::close(
                    ctx,
                    ws::CloseCode::Other(CLOSE_UNAUTHORIZED),
                    "unauthorized",
                )
            }
        };
        subscription.state.typing.store(typing, Ordering::Relaxed);
        self.sub = Some((subscription.id, subscription.state.clone()));
        // A client working through a long queue is alive although the actor, which
        // runs only once its queue is out, cannot tick meanwhile (`Bus::sweep`).
        let alive = subscription.state.clone();
        ctx.on_progress(move || alive.touch());
        // From now on the bus ends the socket's queue on shutdown.
        if let Some(watch) = self.shutdown_watch.take() {
            ctx.cancel_future(watch);
        }
        self.phase = Phase::Ready;
        self.last_sent = head;
        let store_epoch = self.hub.store.epoch().to_string();
        welcome["epoch"] = json!(store_epoch);
        let replay_from = match since {
            _ if epoch.as_deref().is_some_and(|e| e != store_epoch) => None,
            Some(s) if s > head || head - s > frames::REPLAY_MAX => None,
            other => other.map(Some).unwrap_or(Some(head)),
        };
        if replay_from.is_none() {
            welcome["reset"] = json!(true);
        }
        let state = subscription.state.clone();
        let live = tokio_stream(subscription.rx, state);
        match counted {
            // The welcome goes out once the console is counted: from then on the agent
            // shows present (GET /api/agents, help answers, hold expiries).
            Some(counted) => ctx.wait(
                counted
                    .into_actor(self)
                    .map(move |_, act, ctx| act.start(welcome, replay_from, head, live, ctx)),
            ),
            None => self.start(welcome, replay_from, head, live, ctx),
        }
    }

    /// Sends the welcome, replays what the client missed, then follows live events.
    fn start(
        &mut self,
        welcome: serde_json::Value,
        replay_from: Option<u64>,
        head: u64,
        live: impl futures_util::Stream<Item = Frames> + 'static,
        ctx: &mut WsContext<Self>,
    ) {
        Self::send_json(ctx, welcome);
        match replay_from {
            Some(since) if since < head => {
                self.last_sent = since;
                self.replay(since, head, Box::pin(live), ctx);
            }
            _ => {
                ctx.add_stream(live);
            }
        }
    }

    /// Replays the page of events after `after` (up to `head`), then the next page, then
    /// follows `live`. Each page is read once the one before has left the socket's queue
    /// (the actor runs only then, `context.rs`), so a client that stops reading holds
    /// about two pages in memory, not its whole replay; its live queue is bounded, and
    /// cut off when full, as a slow client's.
    ///
    /// The pages run beside the socket's other work, not instead of it: a long replay
    /// read slowly still gets its pings answered and its heartbeat (which tells the bus
    /// the socket is alive). Held as a `wait`, a replay longer than the silence made
    /// a reading console's agent offline and then closed it. Nothing else sends
    /// events meanwhile: the live stream is added once the last page is out.
    fn replay(&mut self, after: u64, head: u64, live: LiveStream, ctx: &mut WsContext<Self>) {
        let store = self.hub.store.clone();
        let contact = self.contact.as_ref().map(|c| c.0.clone());
        ctx.spawn(
            async move {
                store
                    .read(move |s| frames::replay_page(s, contact.as_ref(), after, head))
                    .await
            }
            .into_actor(self)
            .map(move |res, act, ctx| match res {
                Ok((frames, next)) => {
                    for (seq, f) in frames {
                        if let Some(f) = crate::bus::wire(seq, &f) {
                            act.push(seq, f, ctx);
                        }
                    }
                    if next < head {
                        act.replay(next, head, live, ctx);
                    } else {
                        act.last_sent = act.last_sent.max(head);
                        ctx.add_stream(live);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "Replay failed.");
                    Self::close(ctx, ws::CloseCode::Again, "replay failed; reconnect");
                }
            }),
        );
    }

    fn customer_send(
        &mut self,
        text: String,
        client_id: Option<String>,
        ctx: &mut WsContext<Self>,
    ) {
        let Some((contact, channel)) = self.contact.clone() else {
            // Not a frame agent consoles take: `invalid`, like an unknown type (§7).
            return Self::send_error(
                ctx,
                "invalid",
                "agent consoles do not send messages; reply over HTTP",
                client_id,
            );
        };
        let body = crate::routes::widget::SendBody { text, client_id };
        let cid = body.client_id.clone();
        if let Err(e) = crate::routes::widget::check_send(&body)
            .and_then(|_| self.hub.allow_send(&contact, self.ip))
        {
            return Self::send_error(ctx, e.code(), &e.to_string(), cid);
        }
        let hub = self.hub.clone();
        ctx.wait(
            async move {
                hub.customer_send(&contact, &channel, body.text, body.client_id)
                    .await
            }
            .into_actor(self)
            .map(move |res, _act, ctx| match res {
                Ok((m, _)) => ctx.text(crate::bus::ack_frame(cid.as_deref(), &m)),
                Err(e) => Self::send_error(ctx, e.code(), &e.to_string(), cid),
            }),
        );
    }
}

/// A socket's live events, held while it is replayed.
type LiveStream = std::pin::Pin<Box<dyn futures_util::Stream<Item = Frames>>>;

/// The live queue as a stream of batches, releasing their budget as it drains.
fn tokio_stream(
    rx: tokio::sync::mpsc::Receiver<Frames>,
    state: Arc<SubState>,
) -> impl futures_util::Stream<Item = Frames> {
    futures_util::stream::unfold((rx, state), |(mut rx, state)| async move {
        let frames = rx.recv().await?;
        state.taken(&frames);
        Some((frames, (rx, state)))
    })
}

/// Live events for this socket (one publish's worth).
impl StreamHandler<Frames> for Socket {
    fn handle(&mut self, frames: Frames, ctx: &mut WsContext<Self>) {
        for (seq, frame) in frames.iter() {
            self.push(*seq, frame.clone(), ctx);
        }
    }

    fn finished(&mut self, ctx: &mut WsContext<Self>) {
        let revoked = self
            .sub
            .as_ref()
            .is_some_and(|(_, state)| state.revoked.load(Ordering::Relaxed));
        if revoked {
            // An admin replaced this agent's token: it no longer signs anyone in.
            Self::close(
                ctx,
                ws::CloseCode::Other(CLOSE_UNAUTHORIZED),
                "the token was replaced",
            );
        } else if self.hub.bus.is_shutting_down() {
            Self::close(
                ctx,
                ws::CloseCode::Away,
                "the hub is restarting; resume with since",
            );
        } else {
            // The bus dropped our queue: we fell behind (PROTOCOL §7).
            Self::close(ctx, ws::CloseCode::Policy, "too slow; resume with since");
        }
    }
}

impl Actor for Socket {
    type Context = WsContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // A peer silent for `HUB_SOCKET_SILENCE_MS` (60 s) is dropped. Generous: a client
        // answers pings only as it reads, so a slow reader's pongs wait behind its
        // backlog. A client that stops reading altogether stops this timer too (actix
        // runs the socket only while it can write to it): the bus cuts such a socket off
        // after the same time (`Bus::sweep`), from the `touch` of each tick.
        let silence = self.hub.config.socket_silence;
        let period = Self::heartbeat(silence);
        // The first tick at a random point of the period: sockets opened together (a
        // load's customers, every client reconnecting after a restart) would otherwise
        // ping in the same instant every period, thousands of writes at once.
        ctx.run_later(Self::jitter(period), move |act, ctx| {
            act.tick(ctx, silence);
            ctx.run_interval(period, move |act, ctx| act.tick(ctx, silence));
        });
        // On SIGTERM subscribed sockets close as the bus ends their queue; one that has
        // not said hello (or is being welcomed) closes here, rather than holding the
        // hub's exit until actix's shutdown timeout drops it without a close frame.
        self.shutdown_watch = Some(
            ctx.spawn(
                self.hub
                    .bus
                    .until_shutdown()
                    .into_actor(self)
                    .map(|_, act, ctx| {
                        if act.sub.is_none() {
                            Self::close(
                                ctx,
                                ws::CloseCode::Away,
                                "the hub is restarting; resume with since",
                            );
                        }
                    }),
            ),
        );
        ctx.run_later(HELLO_TIMEOUT, |act, ctx| {
            if matches!(act.phase, Phase::AwaitHello) {
                Self::error(ctx, "invalid", "no hello received");
                Self::close(ctx, ws::CloseCode::Policy, "hello expected");
            }
        });
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        // Whoever was told this socket types is told it stopped.
        if let Some(target) = self.typing_now.take() {
            self.signal(&target, false);
        }
        if let Some((id, state)) = self.sub.take() {
            self.hub
                .bus
                .unsubscribe(id, self.contact.as_ref().map(|c| &c.0));
            if let Some(agent) = &self.agent {
                if state.mark_gone() {
                    self.hub.presence_actor.do_send(Disconnect {
                        agent: agent.clone(),
                    });
                }
            }
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for Socket {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match msg {
            Ok(ws::Message::Text(t)) => self.on_text(&t, ctx),
            Ok(ws::Message::Binary(b)) => {
                if matches!(self.phase, Phase::AwaitHello) {
                    Self::error(ctx, "invalid", "the first frame must be a JSON hello");
                    Self::close(ctx, ws::CloseCode::Policy, "hello expected");
                } else {
                    // It may be a send all the same: name its client id (PROTOCOL §5).
                    let client_id = frames::scan_client_id(&String::from_utf8_lossy(&b));
                    Self::send_error(ctx, "invalid", "binary frames are not supported", client_id);
                }
            }
            Ok(ws::Message::Ping(p)) => ctx.pong(&p),
            Ok(ws::Message::Pong(_)) => {}
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(ws::Message::Continuation(item)) => self.on_fragment(item, ctx),
            Ok(ws::Message::Nop) => {}
            Err(ws::ProtocolError::Overflow) => {
                Self::close(ctx, ws::CloseCode::Size, "frame over 64 KiB")
            }
            Err(ws::ProtocolError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                Self::close(ctx, ws::CloseCode::Invalid, "text that is not UTF-8")
            }
            Err(ws::ProtocolError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidInput => {
                Self::close(ctx, ws::CloseCode::Protocol, &e.to_string())
            }
            // The connection itself failed: nobody to tell.
            Err(ws::ProtocolError::Io(e)) => {
                tracing::debug!(error = %e, "WebSocket connection error.");
                ctx.stop();
            }
            // Not a valid WebSocket frame (unmasked, unknown opcode, a continuation
            // out of place…): RFC 6455 §7.1.7, closed with 1002 and the reason.
            Err(e) => {
                tracing::debug!(error = %e, "WebSocket protocol error.");
                Self::close(ctx, ws::CloseCode::Protocol, &e.to_string());
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Socket {
    /// One fragment of a message (RFC 6455 §5.4): the whole message, once its last
    /// fragment is in, is handled like an unfragmented one, and its total size counts
    /// against the 64 KiB limit.
    fn on_fragment(&mut self, item: Item, ctx: &mut WsContext<Self>) {
        let (data, last) = match item {
            Item::FirstText(_) | Item::FirstBinary(_) if self.fragments.is_some() => {
                self.fragments = None;
                return Self::close(
                    ctx,
                    ws::CloseCode::Protocol,
                    "a new message began before the fragmented one ended",
                );
            }
            Item::FirstText(b) => {
                self.fragments = Some((true, bytes::BytesMut::new()));
                (b, false)
            }
            Item::FirstBinary(b) => {
                self.fragments = Some((false, bytes::BytesMut::new()));
                (b, false)
            }
            Item::Continue(b) => (b, false),
            Item::Last(b) => (b, true),
        };
        let Some((_, buf)) = self.fragments.as_mut() else {
            return Self::close(
                ctx,
                ws::CloseCode::Protocol,
                "a continuation frame without a first frame",
            );
        };
        if buf.len() + data.len() > super::MAX_FRAME {
            self.fragments = None;
            return Self::close(ctx, ws::CloseCode::Size, "message over 64 KiB");
        }
        buf.extend_from_slice(&data);
        if !last {
            return;
        }
        let Some((text, buf)) = self.fragments.take() else {
            return;
        };
        if !text {
            return self.handle(Ok(ws::Message::Binary(buf.freeze())), ctx);
        }
        match ByteString::try_from(buf.freeze()) {
            Ok(t) => self.handle(Ok(ws::Message::Text(t)), ctx),
            Err(_) => Self::close(ctx, ws::CloseCode::Invalid, "text that is not UTF-8"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_start_spread_over_their_period() {
        let period = Duration::from_secs(5);
        let firsts: Vec<Duration> = (0..1000).map(|_| Socket::jitter(period)).collect();
        assert!(firsts.iter().all(|d| *d < period));
        // Spread, not bunched: both halves of the period are used.
        let early = firsts.iter().filter(|d| **d < period / 2).count();
        assert!(
            (300..700).contains(&early),
            "{early} of 1000 in the first half"
        );
        assert_eq!(Socket::jitter(Duration::ZERO), Duration::ZERO);
    }
}
