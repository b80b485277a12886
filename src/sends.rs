//! What the hub remembers of the contacts that write, so that a send reads nothing from
//! the store: the fingerprints of every `client_id` the contact has used (PROTOCOL §5:
//! a repeat returns the first message), where its next one is recorded, and its latest
//! conversation per channel.
//!
//! Only `Hub::customer_send` reads or changes an entry, under the contact's lock, and it
//! takes the entry out while it works: a send that fails leaves no entry behind, so the
//! next one reads the store again. The one other writer is the widget session that
//! creates a contact: it puts the contact's empty entry before anyone has its token.
//! Bounded: past [`MAX_CONTACTS`] an arbitrary entry makes room.

use crate::domain::{ContactId, ConversationId, Message};
use crate::store::clients::{self, ClientIdSlot, ClientIds};
use std::collections::{HashMap, HashSet};

/// Most contacts remembered (≈ 1–2 KB each for a contact with a few dozen messages).
pub const MAX_CONTACTS: usize = 20_000;

/// One contact's sends.
#[derive(Debug)]
pub struct ContactSends {
    fingerprints: HashSet<u64>,
    /// Where the next client id is recorded.
    pub slot: ClientIdSlot,
    /// Latest conversation per channel (`None`: none yet); absent: not read yet.
    latest: HashMap<String, Option<ConversationId>>,
}

impl ContactSends {
    pub fn new(ids: ClientIds) -> ContactSends {
        ContactSends {
            fingerprints: ids.fingerprints.into_iter().collect(),
            slot: ids.slot,
            latest: HashMap::new(),
        }
    }

    /// A contact created just now, on `channel`: it has sent nothing and has no
    /// conversation, so its first send reads nothing from the store.
    pub fn fresh(contact: &ContactId, channel: &str) -> ContactSends {
        let mut s = ContactSends::new(ClientIds {
            fingerprints: Vec::new(),
            slot: ClientIdSlot::first(contact.as_str()),
        });
        s.set_latest(channel, None);
        s
    }

    /// False when the contact has certainly never sent `client_id`; true when it may
    /// have (the store tells).
    pub fn maybe_sent(&self, client_id: &str) -> bool {
        self.fingerprints.contains(&clients::fingerprint(client_id))
    }

    /// The latest conversation on `channel`, when known (`Some(None)`: there is none).
    pub fn latest(&self, channel: &str) -> Option<Option<&ConversationId>> {
        self.latest.get(channel).map(Option::as_ref)
    }

    pub fn set_latest(&mut self, channel: &str, conversation: Option<ConversationId>) {
        match self.latest.get_mut(channel) {
            // Most sends go on in the conversation they are remembered in.
            Some(known) if *known == conversation => {}
            Some(known) => *known = conversation,
            None => {
                self.latest.insert(channel.to_string(), conversation);
            }
        }
    }

    /// Notes a durable send: `m` was created with `client_id` (recorded in `slot`).
    pub fn sent(&mut self, channel: &str, client_id: Option<&str>, m: &Message) {
        if let Some(cid) = client_id {
            self.fingerprints.insert(clients::fingerprint(cid));
            self.slot = self.slot.after(cid, m.id.as_str());
        }
        self.set_latest(channel, Some(m.conversation_id.clone()));
    }
}

/// The remembered contacts.
#[derive(Default)]
pub struct Sends {
    contacts: crate::IdMap<ContactId, ContactSends>,
}

impl Sends {
    /// Takes a contact's entry out (the caller holds the contact's lock).
    pub fn take(&self, contact: &ContactId) -> Option<ContactSends> {
        self.contacts.remove(contact).map(|(_, s)| s)
    }

    /// Puts a contact's entry back.
    pub fn put(&self, contact: ContactId, sends: ContactSends) {
        if self.contacts.len() >= MAX_CONTACTS {
            let victim = self.contacts.iter().next().map(|e| e.key().clone());
            if let Some(k) = victim {
                self.contacts.remove(&k);
            }
        }
        self.contacts.insert(contact, sends);
    }

    /// Contacts remembered.
    pub fn len(&self) -> usize {
        self.contacts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.contacts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MessageId, Status, Ts};

    fn empty() -> ContactSends {
        ContactSends::new(ClientIds {
            fingerprints: vec![clients::fingerprint("old")],
            slot: clients::ClientIdSlot::first("k1"),
        })
    }

    #[test]
    fn a_send_is_remembered_with_its_conversation() {
        let mut s = empty();
        assert!(s.maybe_sent("old"));
        assert!(!s.maybe_sent("new"));
        assert_eq!(s.latest("web"), None, "not read yet");
        s.set_latest("web", None);
        assert_eq!(s.latest("web"), Some(None));
        let m = Message {
            id: MessageId::from("c1.m1"),
            conversation_id: ConversationId::from("c1"),
            contact_id: ContactId::from("k1"),
            text: "hi".into(),
            at: Ts(0),
            seq: 7,
            status: Status::Pending,
            assignee: None,
            help: None,
            hold_until: None,
        };
        let before = s.slot.clone();
        s.sent("web", Some("new"), &m);
        assert!(s.maybe_sent("new"));
        assert_eq!(s.latest("web"), Some(Some(&ConversationId::from("c1"))));
        assert_eq!(s.latest("mail"), None);
        assert_eq!(s.slot, before.after("new", "c1.m1"));
    }

    #[test]
    fn a_fresh_contact_is_known_to_have_sent_nothing() {
        let k = ContactId::from("k9");
        let s = ContactSends::fresh(&k, "web");
        assert_eq!(s.latest("web"), Some(None), "no conversation, and known");
        assert_eq!(s.latest("mail"), None);
        assert!(!s.maybe_sent("anything"));
        assert_eq!(s.slot, ClientIdSlot::first("k9"));
    }

    #[test]
    fn the_cache_is_bounded() {
        let sends = Sends::default();
        for i in 0..MAX_CONTACTS + 10 {
            sends.put(ContactId::from(format!("k{i}")), empty());
        }
        assert_eq!(sends.len(), MAX_CONTACTS);
        let last = ContactId::from(format!("k{}", MAX_CONTACTS + 9));
        assert!(sends.take(&last).is_some(), "the newest entry is kept");
        assert!(sends.take(&last).is_none(), "taken out");
    }
}
