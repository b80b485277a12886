//! A contact's message `client_id`s, packed. A send with a `client_id` must find any
//! earlier send of the contact with the same one, whatever its conversation, so the
//! pairs (client id → message id) are kept per contact: `J` + contact id + 0 + chunk
//! (u32) → entries `[len u16][client id][len u16][message id]…`, big-endian, a new chunk
//! once one holds [`CHUNK_BYTES`]. Most contacts hold one key where they held one per
//! message (`keys::IDEMPOTENCY`, which stores written before keep and which replies
//! still use); sled 0.34 costs memory and boot time per key (see `log.rs`).
//!
//! A send reads every chunk of its contact, so a contact with thousands of messages
//! pays for reading them (≈ 70 KB at 1,000 messages). The hub serialises a contact's
//! sends, so the chunk read by a send is still the last one when its batch is written.

use super::keys;

/// A chunk takes no more entries once it holds this many bytes.
pub const CHUNK_BYTES: usize = 1024;

/// Where a contact's next client id goes: its last chunk (when that has room) and the
/// entries it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientIdSlot {
    key: Vec<u8>,
    held: Vec<u8>,
}

impl ClientIdSlot {
    /// The chunk key and its value with one more entry.
    pub fn with(&self, client_id: &str, message_id: &str) -> (Vec<u8>, Vec<u8>) {
        let mut v = Vec::with_capacity(self.held.len() + 4 + client_id.len() + message_id.len());
        v.extend_from_slice(&self.held);
        for part in [client_id, message_id] {
            let bytes = &part.as_bytes()[..part.len().min(u16::MAX as usize)];
            v.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            v.extend_from_slice(bytes);
        }
        (self.key.clone(), v)
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
    let prefix = prefix(contact);
    // Only the last chunk can take more entries: the others are read, never copied.
    let mut last: Option<(K, V, bool)> = None;
    for (k, v) in chunks {
        let (entries, whole) = decode(v.as_ref());
        if !whole {
            tracing::error!(contact, "Unreadable client id record; starting a new one.");
        }
        if let Some((_, m)) = entries.iter().find(|(c, _)| *c == client_id.as_bytes()) {
            return ClientIdLookup::Sent(String::from_utf8_lossy(m).into_owned());
        }
        last = Some((k, v, whole));
    }
    let slot = match last {
        None => ClientIdSlot {
            key: chunk_key(&prefix, 0),
            held: Vec::new(),
        },
        Some((key, held, true)) if held.as_ref().len() < CHUNK_BYTES => ClientIdSlot {
            key: key.as_ref().to_vec(),
            held: held.as_ref().to_vec(),
        },
        Some((key, _, _)) => {
            let n = key
                .as_ref()
                .get(prefix.len()..)
                .and_then(|n| n.try_into().ok())
                .map(u32::from_be_bytes)
                .unwrap_or(0);
            ClientIdSlot {
                key: chunk_key(&prefix, n.saturating_add(1)),
                held: Vec::new(),
            }
        }
    };
    ClientIdLookup::New(slot)
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
