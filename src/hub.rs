//! The hub's shared services, and the use cases both edges (HTTP and WebSocket) call.

use crate::actors::conversation::{Exec, Idempotency, Outcome};
use crate::actors::presence::{PresenceActor, PresenceView};
use crate::actors::registry::Registry;
use crate::actors::timers::Timers;
use crate::auth::{self, AgentRecord, Directory, Principal};
use crate::bus::Bus;
use crate::config::Config;
use crate::domain::{
    Actor as Who, AgentId, Assistant, AssistantId, Command, ContactId, ConversationId, Message,
    MessageId, OpenInfo, ReplyId, Role,
};
use crate::error::ApiError;
use crate::sends::ContactSends;
use crate::store::clients::{ClientIdLookup, ClientIdSlot};
use crate::store::{keys, Batch, Store, StoreError};
use actix::prelude::*;
use dashmap::DashMap;
use std::sync::Arc;

/// Most characters in a message, reply or comment.
pub const MAX_TEXT_CHARS: usize = 4096;

/// Everything the edges share.
pub struct Hub {
    pub config: Config,
    pub store: Arc<Store>,
    pub bus: Arc<Bus>,
    pub directory: Directory,
    pub registry: Registry,
    pub presence: Arc<PresenceView>,
    pub presence_actor: Addr<PresenceActor>,
    pub timers: Timers,
    /// Automatic assignment (an extension, off until an admin turns it on).
    pub router: Arc<crate::actors::router::Router>,
    /// Closing idle conversations (an extension, off until an admin turns it on).
    pub closer: Arc<crate::actors::closer::Closer>,
    pub assistants: DashMap<AssistantId, Assistant>,
    /// Serialises the sends of one contact (conversation choice, idempotency), the
    /// repeats of one reply `client_id`, and edits of the agent and assistant registries.
    locks: crate::locks::NamedLocks,
    /// Agent commands running at once (`HUB_AGENT_INFLIGHT`).
    agent_slots: crate::locks::Admission,
    pub admin_token_created: Option<String>,
    pub limiter: crate::ratelimit::Limiter,
    /// What the hub remembers of the contacts that write (see `sends.rs`).
    pub sends: crate::sends::Sends,
    /// What the hub remembers of the agents' reply client ids (see `reply_ids.rs`).
    pub reply_ids: crate::reply_ids::ReplyIds,
    /// The team's saved replies, by id (a small table, read at start).
    pub saved_replies: DashMap<String, crate::domain::SavedReply>,
    /// The full-text index (`GET /api/search`), built behind the log.
    pub search: Arc<crate::store::search::SearchIndex>,
    /// The median first response in ms, and when it was read (the widget's availability
    /// reads it at most once a minute).
    pub typical_reply: std::sync::Mutex<Option<(std::time::Instant, Option<f64>)>>,
}

impl Hub {
    /// Opens the store and starts the actors. Must run inside an actix system.
    pub fn build(config: Config) -> Result<Arc<Hub>, StoreError> {
        let bus = Bus::new();
        let store = Store::open(&config.data, bus.clone(), config.store.clone())?;
        let directory = Directory::load(&store)?;
        let admin_token_created = bootstrap_admin(&store, &directory, &config)?;
        let presence = Arc::new(PresenceView::default());
        let automation = crate::actors::automation::load(&store)?;
        let router = Arc::new(crate::actors::router::Router::new(
            automation.auto_assign,
            automation.reassign_offline,
        ));
        let closer = Arc::new(crate::actors::closer::Closer::new(
            automation.auto_close_seconds,
        ));
        let presence_actor = PresenceActor::new(
            store.clone(),
            presence.clone(),
            config.presence_grace,
            router.clone(),
        )
        .start();
        bus.set_presence(presence_actor.clone());
        let assistants = DashMap::new();
        for a in store.scan_json::<Assistant>(keys::ASSISTANT)? {
            assistants.insert(a.id.clone(), a);
        }
        let saved_replies = DashMap::new();
        for r in store.scan_json::<crate::domain::SavedReply>(keys::SAVED_REPLY)? {
            saved_replies.insert(r.id.clone(), r);
        }
        let rate_limit = config.rate_limit;
        let agent_slots = crate::locks::Admission::new(config.agent_inflight);
        let search = if config.search {
            let head = bus.clone();
            crate::store::search::SearchIndex::start(
                &store,
                move || head.head(),
                config.search_block_events,
            )
        } else {
            Arc::new(crate::store::search::SearchIndex::off())
        };
        let hub = Arc::new(Hub {
            config,
            store,
            bus,
            directory,
            registry: Registry::default(),
            presence,
            presence_actor,
            timers: Timers::default(),
            router,
            closer,
            assistants,
            locks: Default::default(),
            agent_slots,
            sends: Default::default(),
            reply_ids: Default::default(),
            admin_token_created,
            limiter: crate::ratelimit::Limiter::new(rate_limit),
            search,
            saved_replies,
            typical_reply: Default::default(),
        });
        let armed = hub.timers.start(&hub)?;
        hub.router.start(&hub);
        hub.closer.start(&hub);
        tracing::info!(timers = armed, epoch = hub.store.epoch(), "Hub ready.");
        Ok(hub)
    }

    /// Records that the generated admin token was printed (PROTOCOL §2: printed once):
    /// the next start neither prints it nor replaces it.
    pub async fn admin_token_shown(&self) -> Result<(), StoreError> {
        if self.admin_token_created.is_none() {
            return Ok(());
        }
        self.store
            .read(|s| s.put_json_now(keys::META, &[ADMIN_TOKEN_UNSHOWN], &false))
            .await
    }

    /// Holds the named lock for the duration of `f`.
    pub async fn locked<T>(&self, name: String, f: impl std::future::Future<Output = T>) -> T {
        self.locks.run(name, f).await
    }

    /// Rate limits of a widget send: per contact and per client IP.
    pub fn allow_send(
        &self,
        contact: &ContactId,
        ip: Option<std::net::IpAddr>,
    ) -> Result<(), ApiError> {
        use crate::ratelimit::{CONTACT, CONTACT_GUARANTEED, IP};
        // The contact's own bucket first: a contact refused for flooding spends none of its
        // IP's budget, so one flooder cannot starve the other customers behind that IP.
        if !self.limiter.allow(&format!("c/{contact}"), CONTACT) {
            return Err(ApiError::RateLimited);
        }
        // Up to 5 messages/s a contact is never refused (PROTOCOL §2), however many
        // other customers share its address (an office, a mobile carrier's NAT): only
        // what it sends beyond that draws on the IP's budget.
        if self
            .limiter
            .allow(&format!("g/{contact}"), CONTACT_GUARANTEED)
        {
            return Ok(());
        }
        if !ip.is_none_or(|ip| self.limiter.allow(&format!("ip/{ip}"), IP)) {
            return Err(ApiError::RateLimited);
        }
        Ok(())
    }

    /// Who owns the bearer token.
    pub async fn principal(&self, token: Option<&str>) -> Result<Principal, ApiError> {
        let token = token.ok_or(ApiError::Unauthorized)?;
        self.directory
            .resolve(&self.store, token)
            .await?
            .ok_or(ApiError::Unauthorized)
    }

    /// The published assistant of a channel, if any.
    pub fn assistant_for(&self, channel: &str) -> Option<Assistant> {
        self.assistants
            .iter()
            .find(|a| a.status == "published" && a.channels.iter().any(|c| c == channel))
            .map(|a| a.clone())
    }

    /// The conversation a message belongs to.
    pub async fn conversation_of(&self, message: &MessageId) -> Result<ConversationId, ApiError> {
        if let Some(c) = message.conversation() {
            // Its actor answers 404 when the conversation holds no such message.
            return Ok(c);
        }
        let m = message.clone();
        self.store
            .read(move |s| s.get_json::<Message>(keys::MESSAGE, &[m.as_str().as_bytes()]))
            .await?
            .map(|m| m.conversation_id)
            .ok_or_else(|| ApiError::NotFound("message not found".into()))
    }

    /// Runs a command on a conversation.
    pub async fn exec(
        self: &Arc<Self>,
        conversation: &ConversationId,
        cmd: Command,
        who: Who,
        idempotency: Option<Idempotency>,
    ) -> Result<Outcome, ApiError> {
        // Admission: agents' commands take a slot, in arrival order; customers', the
        // bot's and timers' do not. An agent's console waits for its answer, a
        // customer's message arrives whether or not the hub keeps up: bounding the
        // first keeps the writer's queue, hence the customers' acks, short past
        // saturation (docs/DECISIONS.md, "Replies and bots").
        let _slot = match who {
            Who::Agent { .. } => self.agent_slots.enter().await,
            _ => None,
        };
        self.registry
            .exec(
                self,
                conversation,
                Exec {
                    cmd,
                    who,
                    idempotency,
                },
            )
            .await
    }

    /// Reads what `customer_send` needs of a contact: its client ids (unless `known`)
    /// and its latest conversation on `channel`, in one trip to the store.
    async fn load_sends(
        &self,
        contact: &ContactId,
        channel: &str,
        known: Option<ContactSends>,
    ) -> Result<ContactSends, ApiError> {
        let (c, ch) = (contact.clone(), channel.to_string());
        Ok(self
            .store
            .read(move |s| {
                let mut sends = match known {
                    Some(known) => known,
                    None => ContactSends::new(s.client_ids(c.as_str())?),
                };
                let latest = s.get_json::<ConversationId>(
                    keys::LATEST,
                    &[c.as_str().as_bytes(), ch.as_bytes()],
                )?;
                sends.set_latest(&ch, latest);
                Ok(sends)
            })
            .await?)
    }

    /// A contact writes (HTTP or socket). Returns the message and whether it is new
    /// (false: a repeat of `client_id`).
    pub async fn customer_send(
        self: &Arc<Self>,
        contact: &ContactId,
        channel: &str,
        text: String,
        client_id: Option<String>,
    ) -> Result<(Message, bool), ApiError> {
        let hub = self.clone();
        let contact = contact.clone();
        let channel = channel.to_string();
        // Boxed: the block is ≈ 3 KB, and passing it by value through `locked` and the
        // lock's `run` made the whole send a 10 KB future, copied at every move (a
        // socket's `ctx.wait` boxes and moves it again).
        let name = format!("c/{contact}");
        self.locked(
            name,
            Box::pin(async move {
                // What the hub remembers of the contact; else one trip to the store.
                let mut sends = match hub.sends.take(&contact) {
                    Some(s) if s.latest(&channel).is_some() => s,
                    known => hub.load_sends(&contact, &channel, known).await?,
                };
                let slot = match &client_id {
                    Some(cid) if sends.maybe_sent(cid) => {
                        // Perhaps a repeat: the store knows.
                        let (c, cid) = (contact.clone(), cid.clone());
                        let repeat =
                            match hub.store.read(move |s| earlier_send(s, &c, &cid)).await? {
                                Ok(Repeat::Created(m)) => Some(m),
                                // Its event not found: the conversation holds it.
                                Ok(Repeat::Held(conv, id)) => {
                                    Some(hub.registry.lookup(&hub, &conv, &id).await?.ok_or_else(
                                        || {
                                            StoreError::Corrupt(format!(
                                                "idempotency record names {id}"
                                            ))
                                        },
                                    )?)
                                }
                                // Another client id with the same fingerprint.
                                Err(slot) => {
                                    sends.slot = slot;
                                    None
                                }
                            };
                        if let Some(m) = repeat {
                            hub.sends.put(contact.clone(), sends);
                            return Ok((m, false));
                        }
                        Some(sends.slot.clone())
                    }
                    Some(_) => Some(sends.slot.clone()),
                    None => None,
                };
                let latest = sends.latest(&channel).flatten().cloned();
                let idem = slot
                    .zip(client_id.clone())
                    .map(|(slot, client_id)| Idempotency::ClientId { slot, client_id });
                let send = |open: Option<OpenInfo>| {
                    let assistant = hub.assistant_for(&channel);
                    // The id of the bot's reply, should there be one.
                    let bot_reply_id = ReplyId::from(match assistant {
                        Some(_) => auth::new_id("r"),
                        None => String::new(),
                    });
                    Command::CustomerMessage {
                        // The conversation's actor names it (`MessageId::numbered`).
                        id: MessageId::from(""),
                        text: text.clone(),
                        open,
                        assistant,
                        bot_reply_id,
                    }
                };
                let who = Who::Contact(contact.clone());
                let mut created = None;
                if let Some(conv) = latest {
                    match hub.exec(&conv, send(None), who.clone(), idem.clone()).await {
                        Ok(Outcome::Message(m)) => created = Some(m),
                        Ok(_) => return Err(ApiError::Unavailable("unexpected outcome".into())),
                        Err(ApiError::SessionEnded) | Err(ApiError::NotFound(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                let m = match created {
                    Some(m) => m,
                    None => {
                        let conv = ConversationId::from(auth::new_id("c"));
                        // A fresh id: its actor has nothing to read from the store.
                        hub.registry.start_new(&hub, &conv);
                        let open = OpenInfo {
                            conversation_id: conv.clone(),
                            contact_id: contact.clone(),
                            channel: channel.clone(),
                        };
                        match hub.exec(&conv, send(Some(open)), who, idem).await? {
                            Outcome::Message(m) => m,
                            _ => return Err(ApiError::Unavailable("unexpected outcome".into())),
                        }
                    }
                };
                // Durable: remember it for the contact's next send.
                sends.sent(&channel, client_id.as_deref(), &m);
                hub.sends.put(contact.clone(), sends);
                Ok((m, true))
            }),
        )
        .await
    }

    /// The first reply an agent made with `client_id` (its stored record), if any. Only
    /// a client id the agent may have used reads the store (`reply_ids.rs`).
    pub async fn earlier_reply(
        self: &Arc<Self>,
        scope: &str,
        client_id: &str,
    ) -> Result<Option<serde_json::Value>, ApiError> {
        let store = self.store.clone();
        let s = scope.to_string();
        let load = async move { store.read(move |st| st.idempotency_fingerprints(&s)).await };
        if !self.reply_ids.maybe_used(scope, client_id, load).await? {
            return Ok(None);
        }
        self.idempotency_record(scope, client_id).await
    }

    /// A stored idempotency record.
    pub async fn idempotency_record(
        &self,
        scope: &str,
        client_id: &str,
    ) -> Result<Option<serde_json::Value>, ApiError> {
        let (scope, cid) = (scope.to_string(), client_id.to_string());
        Ok(self
            .store
            .read(move |s| {
                s.get_json::<serde_json::Value>(
                    keys::IDEMPOTENCY,
                    &[scope.as_bytes(), cid.as_bytes()],
                )
            })
            .await?)
    }

    /// Creates an agent (admin only; names unique case-insensitively).
    pub async fn create_agent(
        self: &Arc<Self>,
        name: String,
        role: Role,
        capacity: Option<u32>,
    ) -> Result<(AgentRecord, String), ApiError> {
        let hub = self.clone();
        self.locked("agents".into(), async move {
            if hub.directory.agent_by_name(&name).is_some() {
                return Err(ApiError::Conflict(format!(
                    "an agent named {name:?} exists"
                )));
            }
            let token = auth::new_token();
            let rec = AgentRecord {
                id: AgentId::from(auth::new_id("a")),
                name,
                role,
                capacity,
                channels: None,
                token_hash: auth::hash_token(&token),
            };
            hub.directory.put_agent(&hub.store, rec.clone()).await?;
            Ok((rec, token))
        })
        .await
    }

    /// Replaces an agent's token (admin only): the old one stops working at once, and
    /// the agent's open consoles are closed with 4401. Returns the agent and the token.
    pub async fn new_agent_token(
        self: &Arc<Self>,
        id: AgentId,
    ) -> Result<(AgentRecord, String), ApiError> {
        let hub = self.clone();
        self.locked("agents".into(), async move {
            let Some(mut rec) = hub.directory.agent(&id) else {
                return Err(ApiError::NotFound("agent not found".into()));
            };
            // The admin whose token HUB_ADMIN_TOKEN sets gets that one back at every
            // start (§2): a replaced one would not last, so it is refused.
            if hub.config.admin_token.is_some() && rec.role == Role::Admin && rec.name == "admin" {
                return Err(ApiError::Conflict(
                    "this admin's token is set by HUB_ADMIN_TOKEN: change it there".into(),
                ));
            }
            let token = auth::new_token();
            rec.token_hash = auth::hash_token(&token);
            hub.directory.put_agent(&hub.store, rec.clone()).await?;
            let consoles = hub.bus.revoke_agent(&rec.id);
            tracing::info!(agent_id = %rec.id, consoles, "Agent token replaced.");
            Ok((rec, token))
        })
        .await
    }

    /// The automation settings (`GET`/`PATCH /api/automation`), as the router and the
    /// closer hold them.
    pub fn automation(&self) -> crate::actors::automation::Automation {
        crate::actors::automation::Automation {
            auto_assign: self.router.is_on(),
            reassign_offline: self.router.reassigns_offline(),
            auto_close_seconds: self.closer.after(),
        }
    }

    /// Changes the automation settings (admin only): stored, then applied.
    pub async fn set_automation(
        self: &Arc<Self>,
        patch: crate::actors::automation::Patch,
    ) -> Result<crate::actors::automation::Automation, ApiError> {
        let hub = self.clone();
        self.locked("automation".into(), async move {
            let next = patch.apply(hub.automation());
            crate::actors::automation::save(&hub.store, &next).await?;
            hub.router.set_on(next.auto_assign);
            let was = hub.router.reassigns_offline();
            hub.router.set_reassign_offline(next.reassign_offline);
            if !was {
                // Turned on: what the agents offline now hold goes back too.
                hub.router.hand_back_all_offline(&hub);
            }
            hub.closer.set(next.auto_close_seconds);
            Ok(next)
        })
        .await
    }

    /// Sets what automatic assignment gives an agent (admin only): its capacity and its
    /// channels, each when given (`Some`); automatic assignment looks again.
    pub async fn set_agent_routing(
        self: &Arc<Self>,
        id: AgentId,
        capacity: Option<Option<u32>>,
        channels: Option<Option<Vec<String>>>,
    ) -> Result<AgentRecord, ApiError> {
        let hub = self.clone();
        let rec = self
            .locked("agents".into(), async move {
                let Some(mut rec) = hub.directory.agent(&id) else {
                    return Err(ApiError::NotFound("agent not found".into()));
                };
                let before = (rec.capacity, rec.channels.clone());
                if let Some(c) = capacity {
                    rec.capacity = c;
                }
                if let Some(c) = channels {
                    rec.channels = c;
                }
                if (rec.capacity, rec.channels.clone()) != before {
                    hub.directory.put_agent(&hub.store, rec.clone()).await?;
                }
                Ok(rec)
            })
            .await?;
        self.router.kick();
        Ok(rec)
    }

    /// Stores an assistant durably, then in memory.
    pub async fn put_assistants(&self, list: Vec<Assistant>) -> Result<(), ApiError> {
        let mut b = Batch::default();
        for a in &list {
            b.put_json(keys::ASSISTANT, &[a.id.as_str().as_bytes()], a);
        }
        self.store.commit(b).await?;
        for a in list {
            self.assistants.insert(a.id.clone(), a);
        }
        Ok(())
    }
}

/// The metadata flag set while a generated admin token has not been printed yet.
const ADMIN_TOKEN_UNSHOWN: &[u8] = b"admin_token_unshown";

/// Makes sure the admin agent exists and its token is the configured one. Returns a
/// freshly generated token, to print once ([`Hub::admin_token_shown`] after).
fn bootstrap_admin(
    store: &Store,
    dir: &Directory,
    config: &Config,
) -> Result<Option<String>, StoreError> {
    let existing = dir
        .agents()
        .into_iter()
        .find(|a| a.role == Role::Admin && a.name == "admin");
    // A token generated by a start that died before printing it was never seen: it is
    // replaced by one that will be (only its hash is stored).
    let unshown = store
        .get_json::<bool>(keys::META, &[ADMIN_TOKEN_UNSHOWN])?
        .unwrap_or(false);
    let (token, generated) = match (&config.admin_token, &existing) {
        (Some(t), _) => (t.clone(), false),
        (None, Some(_)) if !unshown => return Ok(None),
        (None, _) => (auth::new_token(), true),
    };
    if generated {
        // Durable before the token's hash is: a crash in between generates anew.
        store.put_json_now(keys::META, &[ADMIN_TOKEN_UNSHOWN], &true)?;
    } else if unshown {
        store.put_json_now(keys::META, &[ADMIN_TOKEN_UNSHOWN], &false)?;
    }
    let capacity = existing.as_ref().and_then(|a| a.capacity);
    let channels = existing.as_ref().and_then(|a| a.channels.clone());
    let rec = AgentRecord {
        id: existing
            .map(|a| a.id)
            .unwrap_or_else(|| AgentId::from("admin")),
        name: "admin".into(),
        role: Role::Admin,
        capacity,
        channels,
        token_hash: auth::hash_token(&token),
    };
    store.put_json_now(keys::AGENT, &[rec.id.as_str().as_bytes()], &rec)?;
    dir.insert_loaded(rec);
    Ok(generated.then_some(token))
}

/// What an earlier send with the same `client_id` created.
enum Repeat {
    /// The message as it was created, with the `seq` of its `message.created`: what its
    /// contact saw of it, and what a repeated send answers (PROTOCOL §4; later changes,
    /// such as an assistant's answer, are not the contact's to see). Without that event,
    /// a store written before message ids named their conversation gives its row.
    Created(Message),
    /// A message whose `message.created` was not found: its conversation's actor holds it.
    Held(ConversationId, MessageId),
}

/// What a contact's earlier send with `client_id` created, else where to record it.
fn earlier_send(
    s: &Store,
    contact: &ContactId,
    client_id: &str,
) -> Result<Result<Repeat, ClientIdSlot>, StoreError> {
    let slot = match s.client_id(contact.as_str(), client_id)? {
        ClientIdLookup::Sent(id) => match repeat_of(s, MessageId::from(id))? {
            Some(repeat) => return Ok(Ok(repeat)),
            None => return Err(StoreError::Corrupt("client id names no message".into())),
        },
        ClientIdLookup::New(slot) => slot,
    };
    // Stores written before client ids were packed per contact hold one record each.
    let scope = format!("c/{contact}");
    let legacy = s.get_json::<serde_json::Value>(
        keys::IDEMPOTENCY,
        &[scope.as_bytes(), client_id.as_bytes()],
    )?;
    let id = legacy
        .as_ref()
        .and_then(|rec| rec.get("message_id"))
        .and_then(|v| v.as_str());
    if let Some(id) = id {
        if let Some(repeat) = repeat_of(s, MessageId::from(id))? {
            return Ok(Ok(repeat));
        }
    }
    Ok(Err(slot))
}

/// Where to find message `id` as it was created (its conversation's `message.created`).
fn repeat_of(s: &Store, id: MessageId) -> Result<Option<Repeat>, StoreError> {
    let (conv, row) = match id.conversation() {
        Some(conv) => (conv, None),
        None => match s.get_json::<Message>(keys::MESSAGE, &[id.as_str().as_bytes()])? {
            Some(m) => (m.conversation_id.clone(), Some(m)),
            None => return Ok(None),
        },
    };
    let created = s
        .conversation_events(conv.as_str())?
        .into_iter()
        .find_map(|e| match e.body {
            crate::domain::EventBody::MessageCreated { message } if message.id == id => {
                Some(message)
            }
            _ => None,
        });
    Ok(Some(match created.or(row) {
        Some(m) => Repeat::Created(m),
        None => Repeat::Held(conv, id),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PROTOCOL §2: a generated admin token is "printed once". A start that died after
    /// storing it and before printing it showed it to nobody: the next start replaces it
    /// and prints the new one; once printed, later starts print nothing.
    #[test]
    fn a_generated_admin_token_never_printed_is_replaced_by_one_that_is() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().display().to_string();
        let config = Config::from_vars(|k| (k == "HUB_DATA").then(|| data.clone())).unwrap();
        let store = rt
            .block_on(async { Store::open(dir.path(), Bus::new(), config.store.clone()) })
            .unwrap();
        let start = || {
            let dir = Directory::load(&store).unwrap();
            let token = bootstrap_admin(&store, &dir, &config).unwrap();
            let hash = dir.agent_by_name("admin").unwrap().token_hash;
            (token, hash)
        };
        // The first start generates one; it "dies" before printing it.
        let (first, hash) = start();
        let first = first.expect("generated");
        assert_eq!(hash, auth::hash_token(&first));
        // The next start replaces it: the first works no more.
        let (second, hash) = start();
        let second = second.expect("generated again");
        assert_ne!(first, second);
        assert_eq!(hash, auth::hash_token(&second));
        // Printed this time: later starts keep it and print nothing.
        store
            .put_json_now(keys::META, &[ADMIN_TOKEN_UNSHOWN], &false)
            .unwrap();
        let (third, hash) = start();
        assert_eq!(third, None);
        assert_eq!(hash, auth::hash_token(&second));
        // An operator's token replaces it, and is never printed.
        let config = Config::from_vars(|k| match k {
            "HUB_DATA" => Some(data.clone()),
            "HUB_ADMIN_TOKEN" => Some("operator".into()),
            _ => None,
        })
        .unwrap();
        let dir = Directory::load(&store).unwrap();
        assert_eq!(bootstrap_admin(&store, &dir, &config).unwrap(), None);
        assert_eq!(
            dir.agent_by_name("admin").unwrap().token_hash,
            auth::hash_token("operator")
        );
    }
}
