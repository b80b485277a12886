//! A contact's message `client_id`s, packed. A send with a `client_id` must find any
//! earlier send of the contact with the same one, whatever its conversation, so the
//! pairs (client id → message id) are kept per contact: `J` + contact id + 0 + chunk
//! (u32) → entries `[len u16][client id][len u16][message id]…`, big-endian, a new chunk
//! once one holds [`CHUNK_BYTES`]. Most contacts hold one key where they held one per
//! message (`keys::IDEMPOTENCY`, which stores written before keep and which replies
//! still use); sled 0.34 costs memory and boot time per key (see `log.rs`).
//!
//! The first send of a contact since the hub started reads every chunk of the contact
//! ([`summarize`]: ≈ 70 KB at 1,000 messages); the hub then remembers the client ids'
//! fingerprints and the slot (`sends.rs`), and only a fingerprint match reads them again
//! ([`lookup`]). The hub serialises a contact's sends, so the slot is still the last
//! chunk's when its batch is written.

use super::keys;
use std::sync::Arc;

/// A chunk takes no more entries once it holds this many bytes.
pub const CHUNK_BYTES: usize = 1024;

/// Where a contact's next client id goes: its last chunk (when that has room) and the
/// entries it holds. Shared bytes: a send clones its contact's slot into the command
/// (and the command again for its actor), and a chunk holds up to [`CHUNK_BYTES`].
#[derive(Clone, Debug, PartialEq)]
pub struct ClientIdSlot {
    key: Arc<[u8]>,
    held: Arc<[u8]>,
}

impl ClientIdSlot {
    /// The first slot of a contact that has recorded nothing.
    pub fn first(contact: &str) -> ClientIdSlot {
        ClientIdSlot {
            key: chunk_key(&prefix(contact), 0).into(),
            held: Arc::new([]),
        }
    }

    /// The chunk key and its value with one more entry.
    pub fn with(&self, client_id: &str, message_id: &str) -> (Vec<u8>, Vec<u8>) {
        let mut v = Vec::with_capacity(self.held.len() + 4 + client_id.len() + message_id.len());
        v.extend_from_slice(&self.held);
        for part in [client_id, message_id] {
            let bytes = &part.as_bytes()[..part.len().min(u16::MAX as usize)];
            v.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            v.extend_from_slice(bytes);
        }
        (self.key.to_vec(), v)
    }

    /// Where the entry after `client_id` → `message_id` goes, once [`Self::with`]'s
    /// record is written: the same chunk, or the next one when this one is full.
    pub fn after(&self, client_id: &str, message_id: &str) -> ClientIdSlot {
        let (key, held) = self.with(client_id, message_id);
        if held.len() < CHUNK_BYTES {
            return ClientIdSlot {
                key: key.into(),
                held: held.into(),
            };
        }
        // The key ends with the chunk number after the contact's prefix.
        let prefix_len = key.len().saturating_sub(4);
        next_chunk(&key[..prefix_len], &key)
    }
}

/// What a contact's chunks say about a client id.
#[derive(Debug, PartialEq)]
pub enum ClientIdLookup {
    /// The message an earlier send with it created.
    Sent(String),
    /// Never sent: where to record it.
    New(ClientIdSlot),
}

/// The prefix every chunk of `contact` starts with.
pub(super) fn prefix(contact: &str) -> Vec<u8> {
    keys::key(keys::CLIENT_IDS, &[contact.as_bytes(), b""])
}

/// Looks `client_id` up in a contact's chunks, given as (key, value) in key order.
pub(super) fn lookup<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    contact: &str,
    client_id: &str,
    chunks: impl IntoIterator<Item = (K, V)>,
) -> ClientIdLookup {
    let mut sent = None;
    let slot = scan(contact, chunks, |c, m| {
        if c == client_id.as_bytes() {
            sent = Some(String::from_utf8_lossy(m).into_owned());
            false
        } else {
            true
        }
    });
    match (sent, slot) {
        (Some(m), _) => ClientIdLookup::Sent(m),
        // `scan` only stops early when `sent` was set.
        (None, slot) => ClientIdLookup::New(slot.unwrap_or_else(|| ClientIdSlot::first(contact))),
    }
}

/// Every client id a contact's chunks hold, as fingerprints, and where its next one
/// goes: what the hub keeps in memory for a contact that writes (`Hub::customer_send`).
#[derive(Clone, Debug, PartialEq)]
pub struct ClientIds {
    pub fingerprints: Vec<u64>,
    pub slot: ClientIdSlot,
}

/// [`ClientIds`] of a contact's chunks, given as (key, value) in key order.
pub(super) fn summarize<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    contact: &str,
    chunks: impl IntoIterator<Item = (K, V)>,
) -> ClientIds {
    let mut fingerprints = Vec::new();
    let slot = scan(contact, chunks, |c, _| {
        fingerprints.push(fingerprint_bytes(c));
        true
    })
    .unwrap_or_else(|| ClientIdSlot::first(contact));
    ClientIds { fingerprints, slot }
}

/// A client id's fingerprint (64-bit SipHash): equal ids have equal fingerprints; two
/// ids rarely share one, and a shared one only costs a look in the store.
pub fn fingerprint(client_id: &str) -> u64 {
    fingerprint_bytes(client_id.as_bytes())
}

pub(super) fn fingerprint_bytes(client_id: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    client_id.hash(&mut h);
    h.finish()
}

/// Walks every entry of a contact's chunks (key order) while `visit` returns true;
/// returns where the next entry goes, or `None` when `visit` stopped the walk.
fn scan<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    contact: &str,
    chunks: impl IntoIterator<Item = (K, V)>,
    mut visit: impl FnMut(&[u8], &[u8]) -> bool,
) -> Option<ClientIdSlot> {
    let prefix = prefix(contact);
    // Only the last chunk can take more entries: the others are read, never copied.
    let mut last: Option<(K, V, bool)> = None;
    for (k, v) in chunks {
        let (entries, whole) = decode(v.as_ref());
        if !whole {
            tracing::error!(contact, "Unreadable client id record; starting a new one.");
        }
        for (c, m) in entries {
            if !visit(c, m) {
                return None;
            }
        }
        last = Some((k, v, whole));
    }
    Some(match last {
        None => ClientIdSlot::first(contact),
        Some((key, held, true)) if held.as_ref().len() < CHUNK_BYTES => ClientIdSlot {
            key: key.as_ref().into(),
            held: held.as_ref().into(),
        },
        Some((key, _, _)) => next_chunk(&prefix, key.as_ref()),
    })
}

/// An empty slot in the chunk after `key`.
fn next_chunk(prefix: &[u8], key: &[u8]) -> ClientIdSlot {
    let n = key
        .get(prefix.len()..)
        .and_then(|n| n.try_into().ok())
        .map(u32::from_be_bytes)
        .unwrap_or(0);
    ClientIdSlot {
        key: chunk_key(prefix, n.saturating_add(1)).into(),
        held: Arc::new([]),
    }
}

fn chunk_key(prefix: &[u8], n: u32) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&n.to_be_bytes());
    k
}

/// A (client id, message id) entry of a chunk.
type Entry<'a> = (&'a [u8], &'a [u8]);

/// The entries of a chunk, and whether all of it was readable.
fn decode(mut v: &[u8]) -> (Vec<Entry<'_>>, bool) {
    fn part<'a>(v: &mut &'a [u8]) -> Option<&'a [u8]> {
        let len = u16::from_be_bytes(v.get(..2)?.try_into().ok()?) as usize;
        let bytes = v.get(2..2 + len)?;
        *v = &v[2 + len..];
        Some(bytes)
    }
    let mut out = Vec::new();
    while !v.is_empty() {
        let mut rest = v;
        match (part(&mut rest), part(&mut rest)) {
            (Some(c), Some(m)) => out.push((c, m)),
            _ => return (out, false),
        }
        v = rest;
    }
    (out, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records `n` client ids for contact `k1` the way sends do, returning the chunks.
    fn record(n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut chunks: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = Default::default();
        for i in 0..n {
            let cid = format!("client-{i}");
            match lookup("k1", &cid, chunks.clone()) {
                ClientIdLookup::New(slot) => {
                    let (k, v) = slot.with(&cid, &format!("c1.m{i}"));
                    chunks.insert(k, v);
                }
                ClientIdLookup::Sent(m) => panic!("{cid} found as {m} before it was sent"),
            }
        }
        chunks.into_iter().collect()
    }

    #[test]
    fn every_recorded_client_id_is_found_and_others_are_not() {
        let chunks = record(200);
        assert!(chunks.len() > 1, "200 entries fill several chunks");
        assert!(chunks.iter().all(|(_, v)| v.len() < CHUNK_BYTES + 64));
        for i in 0..200 {
            assert_eq!(
                lookup("k1", &format!("client-{i}"), chunks.clone()),
                ClientIdLookup::Sent(format!("c1.m{i}"))
            );
        }
        assert!(matches!(
            lookup("k1", "client-200", chunks),
            ClientIdLookup::New(_)
        ));
    }

    #[test]
    fn a_slot_advanced_in_memory_matches_the_one_read_from_the_chunks() {
        // What the hub remembers (`after`) must name the record a read would find,
        // across chunk boundaries too.
        let mut chunks: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = Default::default();
        let mut remembered = summarize("k1", chunks.clone());
        assert_eq!(remembered.slot, ClientIdSlot::first("k1"));
        for i in 0..100 {
            let cid = format!("client-{i}");
            let ClientIdLookup::New(read) = lookup("k1", &cid, chunks.clone()) else {
                panic!("{cid} was never sent");
            };
            assert_eq!(remembered.slot, read, "send {i}");
            let (k, v) = read.with(&cid, &format!("c1.m{i}"));
            chunks.insert(k, v);
            remembered.slot = remembered.slot.after(&cid, &format!("c1.m{i}"));
        }
        assert!(chunks.len() > 1, "100 entries fill several chunks");
        let read = summarize("k1", chunks);
        assert_eq!(read.slot, remembered.slot);
        assert_eq!(read.fingerprints.len(), 100);
        for i in 0..100 {
            assert!(read
                .fingerprints
                .contains(&fingerprint(&format!("client-{i}"))));
        }
        assert!(!read.fingerprints.contains(&fingerprint("client-100")));
    }

    #[test]
    fn a_contact_with_few_messages_has_one_chunk() {
        assert_eq!(record(10).len(), 1);
    }

    #[test]
    fn an_unreadable_chunk_is_left_alone_and_the_next_one_is_used() {
        let mut chunks = record(3);
        let readable = chunks[0].1.clone();
        chunks[0].1.extend_from_slice(&[0, 9, b'x']);
        assert_eq!(
            lookup("k1", "client-1", chunks.clone()),
            ClientIdLookup::Sent("c1.m1".into())
        );
        let ClientIdLookup::New(slot) = lookup("k1", "client-3", chunks.clone()) else {
            panic!("client-3 was never sent");
        };
        let (k, v) = slot.with("client-3", "c1.m3");
        assert_ne!(k, chunks[0].0, "the damaged chunk is not rewritten");
        assert_eq!(chunks[0].1[..readable.len()], readable[..]);
        chunks.push((k, v));
        assert_eq!(
            lookup("k1", "client-3", chunks),
            ClientIdLookup::Sent("c1.m3".into())
        );
    }
}
