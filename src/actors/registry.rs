//! Finds or starts the actor of a conversation. Actors start lazily, on first use, and
//! restore themselves from the store; boot never scans conversations.

use super::conversation::{ConversationActor, Exec, Lookup, Outcome, Retire};
use crate::domain::{ConversationId, Message, MessageId};
use crate::error::ApiError;
use crate::hub::Hub;
use actix::prelude::*;
use dashmap::DashMap;
use std::sync::Arc;

/// Live conversation actors by id.
#[derive(Default)]
pub struct Registry {
    actors: DashMap<ConversationId, Addr<ConversationActor>>,
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

    /// Runs a command on the conversation's actor, starting it if needed.
    pub async fn exec(
        &self,
        hub: &Arc<Hub>,
        id: &ConversationId,
        exec: Exec,
    ) -> Result<Outcome, ApiError> {
        for _ in 0..3 {
            let addr = self.addr(hub, id);
            match addr.send(exec.clone()).await {
                Ok(res) => return res,
                Err(MailboxError::Closed) => self.forget(id, &addr),
                Err(MailboxError::Timeout) => break,
            }
        }
        Err(ApiError::Unavailable(
            "the conversation is busy; try again".into(),
        ))
    }

    /// A message as its conversation's actor holds it (`None`: no such message).
    pub async fn lookup(
        &self,
        hub: &Arc<Hub>,
        id: &ConversationId,
        message: &MessageId,
    ) -> Result<Option<Message>, ApiError> {
        for _ in 0..3 {
            let addr = self.addr(hub, id);
            match addr.send(Lookup(message.clone())).await {
                Ok(m) => return Ok(m),
                Err(MailboxError::Closed) => self.forget(id, &addr),
                Err(MailboxError::Timeout) => break,
            }
        }
        Err(ApiError::Unavailable(
            "the conversation is busy; try again".into(),
        ))
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
