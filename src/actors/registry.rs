//! Finds or starts the actor of a conversation. Actors start lazily, on first use, and
//! restore themselves from the store; boot never scans conversations.

use super::conversation::{ConversationActor, Exec, Lookup, Outcome, Retire};
use crate::domain::{self, ConversationId, MessageId};
use crate::error::ApiError;
use crate::hub::Hub;
use actix::dev::ToEnvelope;
use actix::prelude::*;
use std::sync::Arc;

/// Live conversation actors by id.
#[derive(Default)]
pub struct Registry {
    actors: crate::IdMap<ConversationId, Addr<ConversationActor>>,
}

impl Registry {
    fn addr(&self, hub: &Arc<Hub>, id: &ConversationId) -> Addr<ConversationActor> {
        if let Some(a) = self.actors.get(id) {
            if a.connected() {
                return a.clone();
            }
        }
        let mut entry = self
            .actors
            .entry(id.clone())
            .or_insert_with(|| ConversationActor::new(id.clone(), hub.clone()).start());
        if !entry.connected() {
            *entry = ConversationActor::new(id.clone(), hub.clone()).start();
        }
        entry.clone()
    }

    /// Starts the actor of a conversation the caller has just named and that the store
    /// therefore cannot hold: it starts empty instead of reading the store first.
    pub fn start_new(&self, hub: &Arc<Hub>, id: &ConversationId) {
        self.actors
            .entry(id.clone())
            .or_insert_with(|| ConversationActor::new_empty(id.clone(), hub.clone()).start());
    }

    /// Sends `msg` to the conversation's actor, starting it if needed (and again if it
    /// stopped meanwhile).
    async fn ask<M>(
        &self,
        hub: &Arc<Hub>,
        id: &ConversationId,
        msg: M,
    ) -> Result<M::Result, ApiError>
    where
        M: Message + Clone + Send + 'static,
        M::Result: Send,
        ConversationActor: Handler<M>,
        Context<ConversationActor>: ToEnvelope<ConversationActor, M>,
    {
        for _ in 0..3 {
            let addr = self.addr(hub, id);
            match addr.send(msg.clone()).await {
                Ok(res) => return Ok(res),
                Err(MailboxError::Closed) => self.forget(id, &addr),
                Err(MailboxError::Timeout) => break,
            }
        }
        Err(ApiError::Unavailable(
            "the conversation is busy; try again".into(),
        ))
    }

    /// Runs a command on the conversation's actor, starting it if needed.
    pub async fn exec(
        &self,
        hub: &Arc<Hub>,
        id: &ConversationId,
        exec: Exec,
    ) -> Result<Outcome, ApiError> {
        self.ask(hub, id, exec).await?
    }

    /// A message as its conversation's actor holds it (`None`: no such message).
    pub async fn lookup(
        &self,
        hub: &Arc<Hub>,
        id: &ConversationId,
        message: &MessageId,
    ) -> Result<Option<domain::Message>, ApiError> {
        self.ask(hub, id, Lookup(message.clone())).await
    }

    /// Forgets a stopped actor (only if it is still the registered one).
    pub fn forget(&self, id: &ConversationId, addr: &Addr<ConversationActor>) {
        self.actors.remove_if(id, |_, a| a == addr);
    }

    /// Stops a conversation's actor (if live) once its queued commands are done, to free
    /// its memory before the idle timeout (bulk imports, seeding).
    pub fn retire(&self, id: &ConversationId) {
        if let Some(a) = self.actors.get(id) {
            a.do_send(Retire);
        }
    }

    /// Number of live conversation actors.
    pub fn len(&self) -> usize {
        self.actors.len()
    }

    /// True when no conversation actor is live.
    pub fn is_empty(&self) -> bool {
        self.actors.is_empty()
    }
}
