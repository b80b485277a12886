//! Typing signals (an extension, `docs/DECISIONS.md` "Typing signals"): who types where,
//! passed from one socket's actor to the sockets that asked for them, never stored.

use super::{Socket, WsContext};
use crate::domain::ContactId;
use actix::prelude::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// How long a console's typing trusts what it read of the conversation (whether its
/// session is active, which decides whether the customer hears of a reply being typed).
const READ_AGAIN: Duration = Duration::from_secs(5);

/// Where a `typing` frame goes.
#[derive(Clone, PartialEq, Debug)]
pub(super) enum TypingTarget {
    /// A customer types in their conversation (a widget).
    Customer(ContactId),
    /// An agent types a reply (`comment: false`) or a comment in a conversation.
    Agent {
        conversation: String,
        contact: ContactId,
        comment: bool,
        /// The customer's widget hears of a reply while the session is active.
        to_customer: bool,
    },
}

/// Limits the `typing` frames a socket passes on: a repeat of what it last said within
/// a second is dropped (receivers keep a signal for 6 s; clients repeat it every 3 s
/// while typing), and at most [`TypingThrottle::RATE`] a second pass in all.
#[derive(Debug)]
pub(super) struct TypingThrottle {
    last: Option<(TypingTarget, bool, Instant)>,
    tokens: f64,
    refilled: Instant,
}

impl TypingThrottle {
    const RATE: f64 = 8.0;

    pub(super) fn new() -> Self {
        TypingThrottle {
            last: None,
            tokens: Self::RATE,
            refilled: Instant::now(),
        }
    }

    /// Whether a `typing` frame for `target` is passed on now.
    fn allow(&mut self, target: &TypingTarget, active: bool, now: Instant) -> bool {
        if let Some((t, a, at)) = &self.last {
            if t == target
                && *a == active
                && (!active || now.duration_since(*at) < Duration::from_secs(1))
            {
                return false;
            }
        }
        if !self.spend(now) {
            return false;
        }
        self.last = Some((target.clone(), active, now));
        true
    }

    /// Takes one of the [`TypingThrottle::RATE`] a second (a signal passed on, or a read
    /// of the conversation a console types in); false when none is left.
    fn spend(&mut self, now: Instant) -> bool {
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * Self::RATE).min(Self::RATE);
        self.refilled = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

impl Socket {
    /// A `typing` frame (an extension): passed on as a signal, at most as often as
    /// [`TypingThrottle`] allows, to the consoles that asked for signals and, for a
    /// console's reply, to the customer's widgets.
    pub(super) fn on_typing(
        &mut self,
        active: bool,
        conversation: Option<String>,
        kind: Option<String>,
        ctx: &mut WsContext<Self>,
    ) {
        if self.cut_off() {
            return;
        }
        if let Some((contact, _)) = &self.contact {
            let target = TypingTarget::Customer(contact.clone());
            return self.typing_to(target, active);
        }
        let comment = match kind.as_deref() {
            None | Some("reply") => false,
            Some("comment") => true,
            Some(_) => return Self::error(ctx, "invalid", "kind must be reply or comment"),
        };
        let Some(conversation) = conversation.filter(|c| !c.is_empty()) else {
            return Self::error(
                ctx,
                "invalid",
                "a console's typing names its conversation_id",
            );
        };
        match &self.typing_conversation {
            Some((id, contact, session, at))
                if *id == conversation && at.elapsed() < READ_AGAIN =>
            {
                let target = TypingTarget::Agent {
                    conversation,
                    contact: contact.clone(),
                    comment,
                    to_customer: *session && !comment,
                };
                self.typing_to(target, active)
            }
            // The conversation is read once (held as a `wait`, so that the frames after
            // this one follow it in order); reads count against the rate, so that typing
            // in ever other conversations cannot make a console read the store at will.
            _ if !self.typing.spend(Instant::now()) => {}
            _ => {
                let store = self.hub.store.clone();
                let id = conversation.clone();
                ctx.wait(
                    async move { store.read(move |s| s.conversation(&id)).await }
                        .into_actor(self)
                        .map(move |read, act, ctx| match read {
                            Ok(Some(c)) => {
                                let session = c.session == crate::domain::SessionState::Active;
                                act.typing_conversation = Some((
                                    conversation.clone(),
                                    c.contact_id,
                                    session,
                                    Instant::now(),
                                ));
                                act.on_typing(active, Some(conversation), kind, ctx);
                            }
                            Ok(None) => Self::error(ctx, "not_found", "conversation not found"),
                            Err(e) => Self::error(ctx, "unavailable", &e.to_string()),
                        }),
                );
            }
        }
    }

    /// Passes a typing signal on, if the throttle allows; a console that moves to
    /// another conversation (or from reply to comment) stops typing in the first.
    fn typing_to(&mut self, target: TypingTarget, active: bool) {
        if !self.typing.allow(&target, active, Instant::now()) {
            return;
        }
        if let Some(before) = self.typing_now.take() {
            if before != target {
                self.signal(&before, false);
            }
        }
        self.signal(&target, active);
        self.typing_now = active.then_some(target);
    }

    /// Sends one typing signal where it goes.
    pub(super) fn signal(&self, target: &TypingTarget, active: bool) {
        let except = self.sub.as_ref().map_or(u64::MAX, |(id, _)| *id);
        let bus = &self.hub.bus;
        match (target, &self.agent) {
            (TypingTarget::Customer(contact), _) => {
                let frame = json!({"type": "typing", "contact_id": contact, "active": active});
                bus.signal_agents(frame.to_string().as_bytes(), except);
            }
            (
                TypingTarget::Agent {
                    conversation,
                    contact,
                    comment,
                    to_customer,
                },
                Some(agent),
            ) => {
                let kind = if *comment { "comment" } else { "reply" };
                let frame = json!({"type": "typing", "conversation_id": conversation,
                    "contact_id": contact, "agent_id": agent, "kind": kind, "active": active});
                bus.signal_agents(frame.to_string().as_bytes(), except);
                if *to_customer {
                    let frame = json!({"type": "typing", "conversation_id": conversation,
                        "active": active});
                    bus.signal_contact(contact, frame.to_string().as_bytes());
                }
            }
            (TypingTarget::Agent { .. }, None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throttle_drops_repeats_within_a_second_and_passes_eight_a_second() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let a = TypingTarget::Customer(ContactId::from("k1"));
        let b = TypingTarget::Customer(ContactId::from("k2"));
        let mut t = TypingThrottle::new();
        t.refilled = t0;
        assert!(t.allow(&a, true, at(0)));
        assert!(!t.allow(&a, true, at(500)), "a repeat within a second");
        assert!(t.allow(&a, false, at(600)), "a change passes");
        assert!(!t.allow(&a, false, at(5_000)), "stopped twice is once");
        assert!(t.allow(&a, true, at(5_100)));
        assert!(t.allow(&a, true, at(6_200)), "typing again after a second");
        // A burst of changes: at most the tokens left, then one per 125 ms.
        let mut passed = 0;
        for i in 0..20 {
            if t.allow(if i % 2 == 0 { &b } else { &a }, true, at(7_300)) {
                passed += 1;
            }
        }
        assert_eq!(
            passed, 8,
            "a full bucket, no refill within the same instant"
        );
        assert!(!t.allow(&b, false, at(7_300)));
        assert!(t.allow(&b, false, at(7_430)), "one more token after 125 ms");
    }
}
