//! The presence actor: counts each agent's console connections and turns them into
//! `online` / `away` / `offline` (PROTOCOL §7), with a grace period after the last
//! console closes. It is the only writer of presence; everyone else reads the shared
//! snapshot ([`PresenceView`]) synchronously.

use crate::domain::{AgentId, EventBody};
use crate::store::{keys, Batch, Store};
use actix::prelude::*;
use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// An agent's presence as shown by `GET /api/agents`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceState {
    Online,
    Away,
    Offline,
}

impl PresenceState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceState::Online => "online",
            PresenceState::Away => "away",
            PresenceState::Offline => "offline",
        }
    }
}

/// Read-only view of everyone's presence.
#[derive(Default)]
pub struct PresenceView {
    map: DashMap<AgentId, PresenceState>,
    /// The seq of each agent's latest durable `presence.changed` (`u64::MAX` for an
    /// agent whose presence record, written before the seq was kept, has none).
    changed: DashMap<AgentId, u64>,
}

impl PresenceView {
    /// The agent's presence (offline when unknown).
    pub fn get(&self, agent: &str) -> PresenceState {
        self.map
            .get(&AgentId::from(agent))
            .map(|p| *p)
            .unwrap_or(PresenceState::Offline)
    }

    /// Present means online or away.
    pub fn is_present(&self, agent: &str) -> bool {
        self.get(agent) != PresenceState::Offline
    }

    /// For an agent shown offline: the seq of the event that took it offline, as far as
    /// it is durable (0 for an agent never seen present: it was offline all along). What
    /// changed after it happened while the agent was offline.
    pub fn offline_since(&self, agent: &str) -> u64 {
        self.changed
            .get(&AgentId::from(agent))
            .map(|s| *s)
            .unwrap_or(0)
    }

    /// Whether any agent is online (not away: someone there to answer now).
    pub fn anyone_online(&self) -> bool {
        self.map.iter().any(|p| *p == PresenceState::Online)
    }
}

#[derive(Default, Serialize, Deserialize)]
struct Record {
    presence: Option<PresenceState>,
    away: bool,
    /// The seq of the `presence.changed` that set `presence` (none in stores written
    /// before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
}

#[derive(Default)]
struct Agent {
    consoles: u32,
    away: bool,
    /// Bumped on every connect/disconnect: a grace timer only acts if it is unchanged.
    generation: u64,
}

/// Owns presence.
pub struct PresenceActor {
    store: Arc<Store>,
    view: Arc<PresenceView>,
    grace: Duration,
    agents: HashMap<AgentId, Agent>,
    /// Agents the store had present, shown offline already (a zero grace): their
    /// `presence.changed` is published once the actor runs.
    offline_at_boot: Vec<AgentId>,
    /// Told when an agent comes online (automatic assignment may give them work).
    router: Arc<crate::actors::router::Router>,
}

impl PresenceActor {
    /// Restores the last known presence; agents who were present go offline once the
    /// grace passes without a console.
    pub fn new(
        store: Arc<Store>,
        view: Arc<PresenceView>,
        grace: Duration,
        router: Arc<crate::actors::router::Router>,
    ) -> Self {
        let mut agents = HashMap::new();
        let mut offline_at_boot = Vec::new();
        for (id, rec) in store
            .scan_keyed_json::<Record>(keys::PRESENCE)
            .unwrap_or_default()
        {
            let id = AgentId::from(id);
            if rec.presence.is_some() {
                view.changed.insert(id.clone(), rec.seq.unwrap_or(u64::MAX));
            }
            match rec.presence {
                // With no grace they are offline from the first instant: nothing that
                // runs at boot (holds that fell due while the hub was down) may find
                // them present.
                Some(p) if p != PresenceState::Offline && grace.is_zero() => {
                    view.map.insert(id.clone(), PresenceState::Offline);
                    offline_at_boot.push(id.clone());
                }
                Some(p) => {
                    view.map.insert(id.clone(), p);
                }
                None => {}
            }
            agents.insert(
                id,
                Agent {
                    away: rec.away,
                    ..Agent::default()
                },
            );
        }
        PresenceActor {
            store,
            view,
            grace,
            agents,
            offline_at_boot,
            router,
        }
    }

    fn desired(&self, id: &AgentId) -> PresenceState {
        match self.agents.get(id) {
            Some(a) if a.consoles > 0 && a.away => PresenceState::Away,
            Some(a) if a.consoles > 0 => PresenceState::Online,
            _ => PresenceState::Offline,
        }
    }

    /// Publishes `id`'s presence if it differs from what everyone sees.
    fn settle(&mut self, id: &AgentId, ctx: &mut Context<Self>) {
        let want = self.desired(id);
        let shown = self.view.get(id.as_str());
        if want == shown {
            return;
        }
        self.view.map.insert(id.clone(), want);
        self.publish(id, want, ctx);
        if want == PresenceState::Online {
            self.router.kick();
        }
    }

    /// Makes `want` durable as `id`'s presence, with its event.
    fn publish(&mut self, id: &AgentId, want: PresenceState, ctx: &mut Context<Self>) {
        let away = self.agents.get(id).map(|a| a.away).unwrap_or(false);
        let store = self.store.clone();
        let agent = id.clone();
        let fut = async move {
            let ticket = store.ticket().await?;
            let seq = ticket.alloc(1);
            let ev = crate::domain::Event::new(
                seq,
                None,
                crate::now(),
                EventBody::PresenceChanged {
                    agent_id: agent.clone(),
                    presence: want.as_str().to_string(),
                },
            );
            let mut b = Batch::default();
            b.event(&ev, None);
            b.put_json(
                keys::PRESENCE,
                &[agent.as_str().as_bytes()],
                &Record {
                    presence: Some(want),
                    away,
                    seq: Some(seq),
                },
            );
            crate::store::wait(ticket.send(b)).await.map(|()| seq)
        };
        let id = id.clone();
        ctx.wait(fut.into_actor(self).map(move |res, act, _| match res {
            Err(e) => tracing::error!(agent_id = %id, error = %e, "Presence change not saved."),
            Ok(seq) => {
                act.view.changed.insert(id.clone(), seq);
                // Once everyone can know the agent is gone, what they held then may go
                // back (`reassign_offline`; each message is refused if they are back
                // meanwhile, or if it was given to them afterwards).
                if want == PresenceState::Offline {
                    act.router.went_offline(id, seq);
                }
            }
        }));
    }

    fn schedule_offline(&mut self, id: AgentId, ctx: &mut Context<Self>) {
        let generation = self.agents.entry(id.clone()).or_default().generation;
        ctx.run_later(self.grace, move |act, ctx| {
            if act.agents.get(&id).map(|a| a.generation) == Some(generation) {
                act.settle(&id, ctx);
            }
        });
    }
}

impl Actor for PresenceActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let restored: Vec<AgentId> = self
            .view
            .map
            .iter()
            .filter(|e| *e.value() != PresenceState::Offline)
            .map(|e| e.key().clone())
            .collect();
        for id in restored {
            self.schedule_offline(id, ctx);
        }
        // Before any message: no console of theirs has connected yet.
        for id in std::mem::take(&mut self.offline_at_boot) {
            self.publish(&id, PresenceState::Offline, ctx);
        }
    }
}

/// A console of `agent` opened. Sent with `do_send`, which queues it at once whatever
/// the mailbox holds, so that a `Disconnect` sent for that console later (by the bus, from
/// another thread) always comes after it; `counted` is told once it is handled.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Connect {
    pub agent: AgentId,
    pub counted: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A console of `agent` closed (or was cut off).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    pub agent: AgentId,
}

/// The agent chose `away` (true) or `online` (false).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetAway {
    pub agent: AgentId,
    pub away: bool,
}

impl Handler<Connect> for PresenceActor {
    type Result = ();
    fn handle(&mut self, m: Connect, ctx: &mut Context<Self>) {
        let a = self.agents.entry(m.agent.clone()).or_default();
        a.consoles += 1;
        a.generation += 1;
        self.settle(&m.agent, ctx);
        if let Some(counted) = m.counted {
            let _ = counted.send(());
        }
    }
}

impl Handler<Disconnect> for PresenceActor {
    type Result = ();
    fn handle(&mut self, m: Disconnect, ctx: &mut Context<Self>) {
        let a = self.agents.entry(m.agent.clone()).or_default();
        a.consoles = a.consoles.saturating_sub(1);
        a.generation += 1;
        if a.consoles == 0 {
            if self.grace.is_zero() {
                self.settle(&m.agent, ctx);
            } else {
                self.schedule_offline(m.agent, ctx);
            }
        }
    }
}

impl Handler<SetAway> for PresenceActor {
    type Result = ();
    fn handle(&mut self, m: SetAway, ctx: &mut Context<Self>) {
        self.agents.entry(m.agent.clone()).or_default().away = m.away;
        self.settle(&m.agent, ctx);
    }
}
