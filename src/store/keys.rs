//! Key layout of the one sled tree. Every table is a one-byte prefix, so that one
//! `apply_batch` writes events, rows, indexes and counters atomically. Numbers are
//! big-endian so that key order is numeric order.

/// `e` + seq → event JSON: the hub-wide log of stores written before the packed
/// layout (read only; see [`LOG`]).
pub const EVENT: u8 = b'e';
/// `E` + conversation id + 0 + seq → nothing: a conversation's events in stores
/// written before the packed layout (read only; see [`CONV_LOG`]).
pub const CONV_EVENT: u8 = b'E';
/// `g` + chunk → the events of seqs chunk×8 … chunk×8+7 (see `log.rs`).
pub const LOG: u8 = b'g';
/// `F` + conversation id + 0 + chunk (u32) → up to 32 of the conversation's seqs.
pub const CONV_LOG: u8 = b'F';
/// `r` + message id → Message JSON: the message rows of stores written before folder
/// entries held the message and message ids named their conversation (read only).
pub const MESSAGE: u8 = b'r';
/// `C` + conversation id → Conversation JSON.
pub const CONVERSATION: u8 = b'C';
/// `i` + index name + 0 + order + id → value (folder and list indexes, hold timers).
pub const INDEX: u8 = b'i';
/// `n` + index name → i64 count of the index's entries.
pub const COUNT: u8 = b'n';
/// `T` + sha256(token) → principal JSON: contact tokens of stores written before contact
/// tokens named their contact (now the hash is in the contact's record).
pub const TOKEN: u8 = b'T';
/// `K` + contact id → contact JSON.
pub const CONTACT: u8 = b'K';
/// `L` + contact id + 0 + channel → the contact's latest conversation id on that channel.
pub const LATEST: u8 = b'L';
/// `I` + scope + 0 + client id → idempotency record JSON: replies (scope `a/` + agent
/// id), and customer messages in stores written before [`CLIENT_IDS`] (scope `c/`).
pub const IDEMPOTENCY: u8 = b'I';
/// `J` + contact id + 0 + chunk (u32) → the contact's message client ids (`clients.rs`).
pub const CLIENT_IDS: u8 = b'J';
/// `k` + contact id + 0 + conversation id → nothing: a contact's conversations (all of
/// them when [`META`] `contact_index` is set, i.e. in stores created since).
pub const CONTACT_CONV: u8 = b'k';
/// `A` + agent id → agent JSON.
pub const AGENT: u8 = b'A';
/// `B` + assistant id → assistant JSON.
pub const ASSISTANT: u8 = b'B';
/// `R` + saved reply id → saved reply JSON (`routes/saved.rs`).
pub const SAVED_REPLY: u8 = b'R';
/// `S` + conversation id → snapshot of the conversation's state (see `Snapshot`).
pub const SNAPSHOT: u8 = b'S';
/// `s` + conversation id + 0 + run (u32) → a run of the snapshot's messages (JSON list).
pub const SNAPSHOT_RUN: u8 = b's';
/// `P` + agent id → last published presence.
pub const PRESENCE: u8 = b'P';
/// `w` + commit number (u64) + part (u32) → the (key, value) pairs of the records a
/// commit wrote behind it (`lazy.rs`); none once they are checkpointed.
pub const JOURNAL: u8 = b'w';
/// `m` + name → metadata (epoch, format version).
pub const META: u8 = b'm';

/// `prefix` + `parts` joined by 0 bytes.
pub fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    k.push(prefix);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p);
    }
    k
}

/// `table` + conversation id + 0: the prefix of a conversation's numbered records in
/// that table (its log records, its snapshot runs).
pub fn conversation_records(table: u8, conversation: &str) -> Vec<u8> {
    key(table, &[conversation.as_bytes(), b""])
}

/// Record `n` of them: the prefix and `n` (u32, big-endian).
pub fn conversation_record(table: u8, conversation: &str, n: u32) -> Vec<u8> {
    let mut k = conversation_records(table, conversation);
    k.extend_from_slice(&n.to_be_bytes());
    k
}

/// The log key of `seq`.
pub fn event(seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(EVENT);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The conversation-index key of `seq`.
pub fn conv_event(conversation: &str, seq: u64) -> Vec<u8> {
    let mut k = key(CONV_EVENT, &[conversation.as_bytes(), b""]);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The key listing `conversation` under `contact` ([`CONTACT_CONV`]).
pub fn contact_conversation(contact: &str, conversation: &str) -> Vec<u8> {
    key(CONTACT_CONV, &[contact.as_bytes(), conversation.as_bytes()])
}

/// The prefix of every conversation listed under `contact`.
pub fn contact_conversations(contact: &str) -> Vec<u8> {
    contact_conversation(contact, "")
}

/// An index entry key: `i` + name + 0 + order + id.
pub fn index_entry(name: &str, order: u64, id: &str) -> Vec<u8> {
    let mut k = index_prefix(name);
    k.extend_from_slice(&order.to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

/// The prefix of every entry of index `name`.
pub fn index_prefix(name: &str) -> Vec<u8> {
    key(INDEX, &[name.as_bytes(), b""])
}

/// Splits an index entry key after its prefix into (order, id).
pub fn split_index_entry(prefix_len: usize, key: &[u8]) -> Option<(u64, String)> {
    let rest = key.get(prefix_len..)?;
    if rest.len() < 8 {
        return None;
    }
    let (o, id) = rest.split_at(8);
    let order = u64::from_be_bytes(o.try_into().ok()?);
    Some((order, String::from_utf8_lossy(id).into_owned()))
}
