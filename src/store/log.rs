//! The event log, packed: sled 0.34 splits a leaf at 16 keys and keeps one page-table
//! entry per leaf, so every key costs CPU at commit and memory and time at boot. The
//! hub-wide log is stored as one record per [`LOG_CHUNK`] consecutive seqs (written by
//! the group-commit writer, which rewrites the open chunk), and each conversation's list
//! of event seqs as one record per [`CONV_LOG_CHUNK`] seqs (written by the conversation's
//! actor). Stores written before this layout keep their one-key-per-event records
//! (`keys::EVENT`, `keys::CONV_EVENT`); readers read both, older ones first.

use super::keys;
use std::collections::BTreeMap;

/// Seqs per hub-wide log record.
pub const LOG_CHUNK: u64 = 8;
/// Seqs per conversation log record.
pub const CONV_LOG_CHUNK: usize = 32;

/// The log record key holding `seq`.
pub fn chunk_of(seq: u64) -> u64 {
    seq / LOG_CHUNK
}

/// `g` + chunk number.
pub fn chunk_key(chunk: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(keys::LOG);
    k.extend_from_slice(&chunk.to_be_bytes());
    k
}

/// Encodes events (ascending seq) as `[seq u64][len u32][bytes]…`, big-endian.
pub fn encode_chunk<'a>(events: impl Iterator<Item = (u64, &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (seq, bytes) in events {
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// Decodes a log record; `None` when it is malformed.
pub fn decode_chunk(mut v: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    let mut out = Vec::new();
    while !v.is_empty() {
        let seq = u64::from_be_bytes(v.get(..8)?.try_into().ok()?);
        let len = u32::from_be_bytes(v.get(8..12)?.try_into().ok()?) as usize;
        let bytes = v.get(12..12 + len)?;
        out.push((seq, bytes));
        v = &v[12 + len..];
    }
    Some(out)
}

/// The writer's copy of the log records that may still grow, so that adding an event
/// rewrites its record without reading it back.
#[derive(Default)]
pub struct OpenChunks {
    chunks: BTreeMap<u64, BTreeMap<u64, Vec<u8>>>,
}

impl OpenChunks {
    /// Adds an event; `load` reads the record from disk when it is not held.
    pub fn add<E>(
        &mut self,
        seq: u64,
        bytes: &[u8],
        load: impl FnOnce(u64) -> Result<BTreeMap<u64, Vec<u8>>, E>,
    ) -> Result<u64, E> {
        let c = chunk_of(seq);
        let chunk = match self.chunks.entry(c) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert(load(c)?),
        };
        chunk.insert(seq, bytes.to_vec());
        Ok(c)
    }

    /// The encoded record of chunk `c`.
    pub fn encoded(&self, c: u64) -> Vec<u8> {
        self.chunks
            .get(&c)
            .map(|m| encode_chunk(m.iter().map(|(s, b)| (*s, b.as_slice()))))
            .unwrap_or_default()
    }

    /// Forgets records whose every seq is below `next`: no event can join them.
    pub fn settle(&mut self, next: u64) {
        while let Some(entry) = self.chunks.first_entry() {
            if (*entry.key() + 1) * LOG_CHUNK > next {
                break;
            }
            entry.remove();
        }
    }

    /// Forgets everything (after a failed commit: the disk is the truth).
    pub fn clear(&mut self) {
        self.chunks.clear()
    }

    /// Number of records held.
    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    /// True when no record is held.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }
}

/// `F` + conversation id + 0 + chunk number (u32).
pub fn conv_chunk_key(conversation: &str, chunk: u32) -> Vec<u8> {
    keys::conversation_record(keys::CONV_LOG, conversation, chunk)
}

/// The prefix of a conversation's log records.
pub fn conv_prefix(conversation: &str) -> Vec<u8> {
    keys::conversation_records(keys::CONV_LOG, conversation)
}

/// Packs seqs as big-endian u64s.
pub fn encode_seqs(seqs: &[u64]) -> Vec<u8> {
    seqs.iter().flat_map(|s| s.to_be_bytes()).collect()
}

/// Unpacks seqs (a trailing partial number is ignored).
pub fn decode_seqs(v: &[u8]) -> Vec<u64> {
    v.chunks_exact(8)
        .map(|b| u64::from_be_bytes(b.try_into().unwrap_or([0; 8])))
        .collect()
}

/// The tail of a conversation's log: its last record, which the conversation's actor
/// extends with each commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConvLog {
    pub chunk: u32,
    pub seqs: Vec<u64>,
}

impl ConvLog {
    /// Appends `seqs` and returns the records to write: (key, value).
    pub fn append(
        &mut self,
        conversation: &str,
        seqs: impl IntoIterator<Item = u64>,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        let mut dirty = false;
        for s in seqs {
            if self.seqs.len() >= CONV_LOG_CHUNK {
                if dirty {
                    out.push((
                        conv_chunk_key(conversation, self.chunk),
                        encode_seqs(&self.seqs),
                    ));
                }
                self.chunk += 1;
                self.seqs.clear();
            }
            self.seqs.push(s);
            dirty = true;
        }
        if dirty {
            out.push((
                conv_chunk_key(conversation, self.chunk),
                encode_seqs(&self.seqs),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_and_reject_truncation() {
        let evs: Vec<(u64, Vec<u8>)> =
            vec![(8, b"{\"a\":1}".to_vec()), (9, vec![]), (15, b"x".to_vec())];
        let enc = encode_chunk(evs.iter().map(|(s, b)| (*s, b.as_slice())));
        let dec = decode_chunk(&enc).unwrap();
        assert_eq!(
            dec.iter()
                .map(|(s, b)| (*s, b.to_vec()))
                .collect::<Vec<_>>(),
            evs
        );
        assert!(decode_chunk(&enc[..enc.len() - 1]).is_none());
        assert_eq!(decode_chunk(&[]).unwrap(), vec![]);
    }

    #[test]
    fn open_chunks_load_once_and_settle_below_the_next_seq() {
        let mut o = OpenChunks::default();
        let mut loads = Vec::new();
        let c = o
            .add(7, b"a", |c| {
                loads.push(c);
                Ok::<_, ()>(BTreeMap::from([(6, b"z".to_vec())]))
            })
            .unwrap();
        assert_eq!(c, 0);
        o.add(8, b"b", |c| {
            loads.push(c);
            Ok::<_, ()>(BTreeMap::new())
        })
        .unwrap();
        o.add(9, b"c", |_| -> Result<_, ()> { panic!("chunk 1 is held") })
            .unwrap();
        assert!(o.add(16, b"d", |_| Err("disk")).is_err());
        assert_eq!(o.len(), 2, "a failed load holds nothing");
        assert_eq!(loads, [0, 1]);
        let rec = o.encoded(0);
        let dec = decode_chunk(&rec).unwrap();
        assert_eq!(dec, vec![(6, &b"z"[..]), (7, &b"a"[..])]);
        o.settle(8);
        assert_eq!(o.len(), 1, "chunk 0 (seqs 0..8) is complete");
        o.settle(15);
        assert_eq!(o.len(), 1, "seq 15 may still come");
        o.settle(16);
        assert!(o.is_empty());
    }

    #[test]
    fn a_conversation_log_fills_records_in_order() {
        let mut l = ConvLog::default();
        let w = l.append("c", 1..=3);
        assert_eq!(w, vec![(conv_chunk_key("c", 0), encode_seqs(&[1, 2, 3]))]);
        let w = l.append("c", 4..=(CONV_LOG_CHUNK as u64 + 2));
        assert_eq!(w.len(), 2);
        assert_eq!(decode_seqs(&w[0].1).len(), CONV_LOG_CHUNK);
        assert_eq!(w[1].0, conv_chunk_key("c", 1));
        assert_eq!(decode_seqs(&w[1].1), vec![33, 34]);
        assert_eq!(l.append("c", []), vec![]);
        // A full record is not written again when the next one starts.
        let mut full = ConvLog {
            chunk: 0,
            seqs: (1..=CONV_LOG_CHUNK as u64).collect(),
        };
        let w = full.append("c", [100]);
        assert_eq!(w, vec![(conv_chunk_key("c", 1), encode_seqs(&[100]))]);
    }
}
