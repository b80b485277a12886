//! Records written behind the commit: a conversation's log tail (`keys::CONV_LOG`) and a
//! contact's client ids (`keys::CLIENT_IDS`).
//!
//! Each customer message rewrites one record of each, and those two keys land alone in
//! their leaves (the conversation's and the contact's, among thousands): in sled 0.34
//! each is a traversal, a copy of the leaf and a link, and together they were half of a
//! saturated commit's apply time (`group_commit` bench). So a commit writes them to a
//! *journal* instead: one record per commit, `w` + commit number + part, appended at the
//! end of its table (a run of keys in one leaf), holding the commit's (key, value)
//! pairs. The latest value of every such key lives in an in-memory [`Overlay`] that
//! readers merge over sled, and the writer copies values into their own keys later
//! (a *checkpoint*): in a commit, and between commits (the queue empty) while large
//! commits go on, the keys dirty for [`AGE_COMMITS`] journal records, or the oldest when
//! the overlay holds more than [`CAP`] keys; between commits after a small one, once any
//! key is that old, every key, and the journal is removed: it is *drained*. A key rewritten by many commits meanwhile is written once. Journal records
//! that no dirty key needs any more are removed in the same batch as the checkpoint that
//! made them useless. Only large commits (at least [`DEFER_MIN_PAIRS`] such records)
//! start a journal; smaller ones write in place, unless a journal record is left or a key
//! is dirty: then they journal too, until the journal is drained. (Until the fifteenth
//! session only the old keys were checkpointed between commits; under a steady load of
//! small commits, each adding young keys, the journal then stayed in use for good.)
//!
//! Durability is unchanged: a commit's journal record is in its own atomic batch, so
//! what was acknowledged is on disk. Opening the store ([`replay`]) applies every
//! journal record left, in order, and removes them, before anything reads.
//!
//! Readers see no mix of old and new: a checkpoint writes a key's overlay value (never a
//! value of the commit it rides in), and the writer drops checkpointed keys from the
//! overlay only after the batch is applied, under the overlay's write lock, while
//! readers hold its read lock across their sled scan.

use super::keys;
use std::collections::{BTreeMap, VecDeque};

/// A key is checkpointed once this many journal records were written after the one that
/// made it dirty.
pub const AGE_COMMITS: u64 = 32;
/// Keys checkpointed at most per commit for their age (the oldest first).
pub const PER_COMMIT: usize = 256;
/// Dirty keys held at most: past it a commit checkpoints the oldest whatever their age.
pub const CAP: usize = 16_384;
/// Keys one round between commits (or at a stop) checkpoints at most before the writer
/// looks at its queue again.
pub const IDLE_ROUND: usize = 256;
/// A commit with fewer deferred records than this (≈ 128 customer messages) writes them
/// in place (unless a key is dirty or a journal record is left). Measured with the
/// `group_commit` bench: deferring gains where commits are large (512 writers, ≈ 250 messages a
/// commit); at 64 writers (≈ 35 a commit) it lost 10–15 % in one hour and gained 5–9 %
/// in another; in the busy hour (≈ 2 a commit) deferring every commit cost 3–5 % of
/// the send → console p50. `HUB_STORE_DEFER_MIN_PAIRS` sets it
/// ([`super::Settings::defer_min_pairs`]; the crash loop uses a low value so that its
/// crashes land among journal records).
pub const DEFER_MIN_PAIRS: usize = 256;

/// Bytes of pairs per journal part (sled writes values past 128 KiB as files of their
/// own).
const PART_BYTES: usize = 2 * 1024;

/// The latest value of every dirty key, shared with readers.
#[derive(Default)]
pub struct Overlay {
    map: BTreeMap<Vec<u8>, Dirty>,
}

struct Dirty {
    value: Vec<u8>,
    /// The journal record that made the key dirty (its oldest one still needed).
    first: u64,
}

impl Overlay {
    /// `stored` (the pairs under `prefix` in sled, ascending) with the overlay's
    /// values over them, ascending.
    pub fn merge(&self, prefix: &[u8], stored: Vec<Stored>) -> Vec<Stored> {
        let mut dirty = self
            .map
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .peekable();
        if dirty.peek().is_none() {
            return stored;
        }
        let mut out: BTreeMap<sled::IVec, sled::IVec> = stored.into_iter().collect();
        for (k, d) in dirty {
            out.insert(k.as_slice().into(), d.value.as_slice().into());
        }
        out.into_iter().collect()
    }

    /// Number of dirty keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub(super) fn clear(&mut self) {
        self.map.clear()
    }

    fn live(&self, first: u64, key: &[u8]) -> bool {
        self.map.get(key).is_some_and(|d| d.first == first)
    }
}

/// The journal key of part `part` of record `n`.
pub fn journal_key(n: u64, part: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(13);
    k.push(keys::JOURNAL);
    k.extend_from_slice(&n.to_be_bytes());
    k.extend_from_slice(&part.to_be_bytes());
    k
}

/// A key and its value.
pub type Pair = (Vec<u8>, Vec<u8>);

/// A key and its value as sled returns them.
pub type Stored = (sled::IVec, sled::IVec);

/// A decoded journal pair: the key, the bytes kept of its value before, the bytes added.
pub type Extension<'a> = (&'a [u8], usize, &'a [u8]);

/// Encodes pairs as `[key len u32][key][kept u32][len u32][bytes]…`, big-endian: the
/// value is the first `kept` bytes of the key's value before it, then `bytes` (`kept`
/// is 0 for a whole value). Records only grow at their end (a conversation's seqs, a
/// contact's client ids), so most pairs hold what was added. A key's pairs are
/// consecutive: the value before a pair is `prev`'s when it has the same key, else
/// `before`'s.
fn encode<'a>(
    pairs: &'a [Pair],
    prev: &mut Option<&'a Pair>,
    before: impl Fn(&[u8]) -> Option<&'a [u8]>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(PART_BYTES + PART_BYTES / 4);
    for pair in pairs {
        let (k, v) = pair;
        let base = match prev {
            Some((pk, pv)) if pk == k => Some(pv.as_slice()),
            _ => before(k),
        };
        let kept = base.filter(|b| v.starts_with(b)).map_or(0, |b| b.len());
        *prev = Some(pair);
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(&(kept as u32).to_be_bytes());
        out.extend_from_slice(&((v.len() - kept) as u32).to_be_bytes());
        out.extend_from_slice(&v[kept..]);
    }
    out
}

/// The pairs of each journal part: about `part_bytes` each, at least one pair.
fn cut(pairs: &[Pair], part_bytes: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < pairs.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < pairs.len() && (end == start || bytes < part_bytes) {
            bytes += pairs[end].0.len() + pairs[end].1.len() + 8;
            end += 1;
        }
        out.push(start..end);
        start = end;
    }
    out
}

/// Decodes a journal part; `None` when it is malformed.
pub fn decode(mut v: &[u8]) -> Option<Vec<Extension<'_>>> {
    let mut out = Vec::new();
    let word = |v: &[u8], at: usize| -> Option<usize> {
        Some(u32::from_be_bytes(v.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    while !v.is_empty() {
        let kl = word(v, 0)?;
        let k = v.get(4..4 + kl)?;
        v = &v[4 + kl..];
        let kept = word(v, 0)?;
        let len = word(v, 4)?;
        let bytes = v.get(8..8 + len)?;
        v = &v[8 + len..];
        out.push((k, kept, bytes));
    }
    Some(out)
}

/// Applies every journal record left in `tree` (in order: a later value of a key wins)
/// and removes them, in one batch. Returns the number of keys written.
pub fn replay(tree: &sled::Tree) -> Result<usize, sled::Error> {
    let mut latest: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut b = sled::Batch::default();
    let mut parts = 0usize;
    for kv in tree.scan_prefix([keys::JOURNAL]) {
        let (k, v) = kv?;
        match decode(&v) {
            Some(pairs) => {
                for (key, kept, bytes) in pairs {
                    let mut value = Vec::with_capacity(kept + bytes.len());
                    if kept > 0 {
                        // A pair that extends a value always follows that value's whole
                        // pair in the journal (`Lazy::plan`).
                        match latest.get(key).and_then(|b| b.get(..kept)) {
                            Some(b) => value.extend_from_slice(b),
                            None => {
                                tracing::error!(
                                    part = parts,
                                    "Journal pair without its base; skipped."
                                );
                                continue;
                            }
                        }
                    }
                    value.extend_from_slice(bytes);
                    latest.insert(key.to_vec(), value);
                }
            }
            // What it held is lost either way; the events themselves are in the log.
            None => tracing::error!(part = parts, "Unreadable journal record; skipped."),
        }
        b.remove(k);
        parts += 1;
    }
    if parts == 0 {
        return Ok(0);
    }
    let n = latest.len();
    for (k, v) in latest {
        b.insert(k, v);
    }
    tree.apply_batch(b)?;
    Ok(n)
}

/// What one commit does with the deferred records (see [`Lazy::plan`]).
#[derive(Default)]
pub(super) struct Plan {
    /// The journal record this commit writes, if it has pairs: its number and keys.
    record: Option<(u64, Vec<Vec<u8>>)>,
    /// Items taken off the front of the dirty queue (stale or checkpointed).
    consumed: usize,
    /// The keys checkpointed.
    checkpointed: Vec<Vec<u8>>,
    /// Journal records removed (off the front of the record list).
    dropped: usize,
    /// The pairs the journal record holds (the others were written in place).
    pairs: Vec<Pair>,
    /// Keys and bytes written (for the commit's figures).
    pub puts: usize,
    pub removes: usize,
    pub bytes: usize,
}

impl Plan {
    /// Whether it writes a journal record (the commit had deferred pairs).
    pub fn journals(&self) -> bool {
        self.record.is_some()
    }
}

/// When keys are checkpointed and how journal records are cut (the constants above;
/// tests make them small).
#[derive(Clone, Copy)]
pub(super) struct Limits {
    pub age: u64,
    pub per_commit: usize,
    pub cap: usize,
    pub idle_round: usize,
    pub part_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            age: AGE_COMMITS,
            per_commit: PER_COMMIT,
            cap: CAP,
            idle_round: IDLE_ROUND,
            part_bytes: PART_BYTES,
        }
    }
}

/// Which keys a round of checkpointing writes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Round {
    /// A commit's: the keys that are due (their age, the cap), at most
    /// [`Limits::per_commit`] for their age.
    Commit,
    /// Between commits while large commits go on: the keys that are due, at most
    /// [`Limits::idle_round`].
    Idle,
    /// Every key, at most [`Limits::idle_round`] a round: between commits once something
    /// is [`Lazy::due`] and commits are small again, and at a stop.
    Drain,
}

/// The writer's side: which keys are dirty since when, and which journal records exist.
#[derive(Default)]
pub(super) struct Lazy {
    limits: Limits,
    /// The next journal record's number.
    next: u64,
    /// (first, key) in the order keys became dirty; items whose key was checkpointed
    /// since are stale (the overlay no longer holds that `first` for it).
    dirty: VecDeque<(u64, Vec<u8>)>,
    /// Journal records written and not removed.
    records: VecDeque<Record>,
}

/// A journal record written and not removed.
struct Record {
    n: u64,
    /// Its parts' keys.
    parts: Vec<Vec<u8>>,
}

impl Lazy {
    /// Adds this commit's writes to `b`: `pairs` (the commit's deferred puts, in request
    /// order) in a journal record, the checkpoint of the keys that `round` finds due, and
    /// the removal of journal records no dirty key needs. Changes nothing until
    /// [`Lazy::settle`]. The writer writes a small commit's pairs in place instead, but
    /// only while nothing is [`Lazy::pending`]: a key the journal still holds written in
    /// place would get an older value back from a replay.
    pub fn plan(
        &self,
        overlay: &Overlay,
        mut pairs: Vec<Pair>,
        round: Round,
        b: &mut sled::Batch,
    ) -> Plan {
        let mut plan = Plan::default();
        let n = self.next;
        let mut over = overlay.len();
        for (first, key) in &self.dirty {
            if !overlay.live(*first, key) {
                plan.consumed += 1;
                continue;
            }
            let l = &self.limits;
            let done = plan.checkpointed.len();
            let old = n.saturating_sub(*first) >= l.age;
            let due = match round {
                Round::Commit => over > l.cap || (old && done < l.per_commit),
                Round::Idle => (over > l.cap || old) && done < l.idle_round,
                Round::Drain => done < l.idle_round,
            };
            if !due {
                break;
            }
            let Some(d) = overlay.map.get(key) else {
                break;
            };
            plan.puts += 1;
            plan.bytes += key.len() + d.value.len();
            b.insert(key.as_slice(), d.value.as_slice());
            plan.checkpointed.push(key.clone());
            plan.consumed += 1;
            over -= 1;
        }
        if !pairs.is_empty() {
            // By key, a key's pairs in request order (a stable sort): the record's keys
            // are one run, and a pair's predecessor is the one before it.
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            // A pair extends the key's value before it: an earlier pair of this commit,
            // else the overlay's (whose whole value the journal holds from the record
            // that made the key dirty on), except for keys checkpointed here, whose
            // records may go with this batch.
            let mut checkpointed: Vec<&[u8]> =
                plan.checkpointed.iter().map(|k| k.as_slice()).collect();
            checkpointed.sort_unstable();
            let mut parts = Vec::new();
            let mut prev: Option<&Pair> = None;
            for (i, range) in cut(&pairs, self.limits.part_bytes).into_iter().enumerate() {
                let v = encode(&pairs[range], &mut prev, |k| {
                    if checkpointed.binary_search(&k).is_ok() {
                        return None;
                    }
                    overlay.map.get(k).map(|d| d.value.as_slice())
                });
                let k = journal_key(n, i as u32);
                plan.puts += 1;
                plan.bytes += v.len() + k.len();
                b.insert(k.as_slice(), v);
                parts.push(k);
            }
            plan.record = Some((n, parts));
        }
        plan.pairs = pairs;
        // The oldest record a dirty key still needs: the next live item's, or this
        // commit's own (a checkpointed key this commit writes again is dirty since it).
        let low = self
            .dirty
            .iter()
            .skip(plan.consumed)
            .find(|(first, key)| overlay.live(*first, key))
            .map(|(first, _)| *first)
            .unwrap_or(n)
            .min(n);
        for rec in &self.records {
            if rec.n >= low {
                break;
            }
            for k in &rec.parts {
                b.remove(k.as_slice());
                plan.removes += 1;
            }
            plan.dropped += 1;
        }
        plan
    }

    /// Records an applied plan: drops the checkpointed keys from the overlay, adds the
    /// commit's pairs to it, forgets the removed journal records.
    pub fn settle(&mut self, overlay: &mut Overlay, plan: Plan) {
        self.dirty.drain(..plan.consumed);
        for k in &plan.checkpointed {
            overlay.map.remove(k);
        }
        self.records.drain(..plan.dropped);
        let Some((n, parts)) = plan.record else {
            return;
        };
        self.records.push_back(Record { n, parts });
        self.next = n + 1;
        for (k, value) in plan.pairs {
            match overlay.map.get_mut(&k) {
                Some(d) => d.value = value,
                None => {
                    self.dirty.push_back((n, k.clone()));
                    overlay.map.insert(k, Dirty { value, first: n });
                }
            }
        }
    }

    /// True when a key is dirty or a journal record is left: what a [`Round::Drain`]
    /// works through. Otherwise a small commit writes in place without looking at the
    /// overlay.
    pub fn pending(&self) -> bool {
        !self.dirty.is_empty() || !self.records.is_empty()
    }

    /// Whether a commit writes its deferred records in place: a small one (`small`)
    /// while nothing is [`Lazy::pending`]. Otherwise it journals them ([`Lazy::plan`]).
    pub fn in_place(&self, small: bool) -> bool {
        small && !self.pending()
    }

    /// True when a key is due (its age, the cap), or a journal record is no longer
    /// needed: the writer then checkpoints between commits, the due keys while large
    /// commits go on ([`Round::Idle`]), every key once they are small again
    /// ([`Round::Drain`]). Checkpointing only what is due there left the journal in use
    /// for good under a steady load of small commits: each journals while anything is
    /// pending, and its keys were never all old at once (fifteenth session).
    pub fn due(&self, overlay: &Overlay) -> bool {
        let oldest = self
            .dirty
            .iter()
            .find(|(first, key)| overlay.live(*first, key));
        let low = oldest.map_or(self.next, |(first, _)| *first);
        overlay.len() > self.limits.cap
            || self.next.saturating_sub(low) >= self.limits.age
            || self.records.front().is_some_and(|rec| rec.n < low)
    }

    /// Journal records written and not removed.
    pub fn records(&self) -> u64 {
        self.records.len() as u64
    }

    /// Forgets everything (the store was reopened: its journal was replayed).
    pub fn reset(&mut self) {
        *self = Lazy {
            limits: self.limits,
            ..Lazy::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        /// A commit: per pair, a key and either bytes appended to its value or a new
        /// value (`fresh`).
        Commit(Vec<(u8, bool, u8)>, bool),
        /// The writer finds its queue empty while large commits go on.
        Idle,
        /// The writer finds its queue empty after a small commit; a request arrives
        /// after this many rounds.
        IdleDrain(u8),
        /// Everything checkpointed.
        Drain,
        /// The process dies: what the writer held in memory is gone; opening replays.
        Crash,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (
                prop::collection::vec((0u8..12, prop::bool::weighted(0.15), 1u8..40), 0..8),
                any::<bool>()
            )
                .prop_map(|(w, direct)| Op::Commit(w, direct)),
            1 => Just(Op::Idle),
            1 => (0u8..4).prop_map(Op::IdleDrain),
            1 => Just(Op::Drain),
            1 => Just(Op::Crash),
        ]
    }

    fn key(k: u8) -> Vec<u8> {
        vec![b'F', k]
    }

    /// What a reader sees: sled under the overlay.
    fn read(tree: &sled::Tree, overlay: &Overlay) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let stored: Vec<_> = tree.scan_prefix(b"F").map(|kv| kv.unwrap()).collect();
        overlay
            .merge(b"F", stored)
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Readers see every committed value at once, and a crash at any point, then a
        /// replay, leaves every committed value in its own key and no journal.
        #[test]
        fn deferred_records_survive_crashes_and_read_through(
            ops in prop::collection::vec(op(), 1..120),
            age in 1u64..5,
            cap in 1usize..6,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let db = sled::Config::new().path(dir.path()).open().unwrap();
            let tree = db.open_tree("hub").unwrap();
            let limits = Limits { age, per_commit: 2, cap, idle_round: 3, part_bytes: 64 };
            let mut lazy = Lazy { limits, ..Lazy::default() };
            let mut overlay = Overlay::default();
            let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            let mut stamp = 0u8;
            for op in &ops {
                match op {
                    Op::Commit(writes, direct) => {
                        let mut pairs = Vec::new();
                        for &(k, fresh, n) in writes {
                            stamp = stamp.wrapping_add(1);
                            let mut v = if fresh {
                                Vec::new()
                            } else {
                                model.get(&key(k)).cloned().unwrap_or_default()
                            };
                            v.extend(std::iter::repeat_n(stamp, n as usize));
                            model.insert(key(k), v.clone());
                            pairs.push((key(k), v));
                        }
                        let mut b = sled::Batch::default();
                        if lazy.in_place(*direct) {
                            for (k, v) in pairs {
                                b.insert(k, v);
                            }
                            tree.apply_batch(b).unwrap();
                        } else {
                            let plan = lazy.plan(&overlay, pairs, Round::Commit, &mut b);
                            tree.apply_batch(b).unwrap();
                            lazy.settle(&mut overlay, plan);
                        }
                    }
                    Op::Idle => {
                        while lazy.due(&overlay) {
                            let mut b = sled::Batch::default();
                            let plan = lazy.plan(&overlay, Vec::new(), Round::Idle, &mut b);
                            tree.apply_batch(b).unwrap();
                            lazy.settle(&mut overlay, plan);
                        }
                        // What is left is younger than the age, and within the cap.
                        prop_assert!(overlay.map.len() <= cap);
                        prop_assert!(overlay.map.values().all(|d| lazy.next - d.first < age));
                    }
                    Op::IdleDrain(rounds) => {
                        if lazy.due(&overlay) {
                            let mut left = *rounds;
                            while lazy.pending() && left > 0 {
                                let mut b = sled::Batch::default();
                                let plan = lazy.plan(&overlay, Vec::new(), Round::Drain, &mut b);
                                tree.apply_batch(b).unwrap();
                                lazy.settle(&mut overlay, plan);
                                left -= 1;
                            }
                            if left > 0 {
                                // Not cut short: nothing is left behind the commit.
                                prop_assert!(!lazy.pending());
                                prop_assert_eq!(tree.scan_prefix([keys::JOURNAL]).count(), 0);
                            }
                        }
                    }
                    Op::Drain => {
                        while lazy.pending() {
                            let mut b = sled::Batch::default();
                            let plan = lazy.plan(&overlay, Vec::new(), Round::Drain, &mut b);
                            tree.apply_batch(b).unwrap();
                            lazy.settle(&mut overlay, plan);
                        }
                        prop_assert_eq!(tree.scan_prefix([keys::JOURNAL]).count(), 0);
                        prop_assert!(overlay.map.is_empty());
                    }
                    Op::Crash => {
                        lazy.reset();
                        overlay.clear();
                        replay(&tree).unwrap();
                        prop_assert_eq!(tree.scan_prefix([keys::JOURNAL]).count(), 0);
                    }
                }
                prop_assert_eq!(&read(&tree, &overlay), &model);
                // Dirty keys are bounded by the cap after every commit's checkpoint, but
                // for the keys the commit itself made dirty.
                prop_assert!(overlay.map.len() <= cap.max(12));
            }
            // A real reopen of the files, then the replay opening does.
            drop(tree);
            db.flush().unwrap();
            drop(db);
            let db = sled::Config::new().path(dir.path()).open().unwrap();
            let tree = db.open_tree("hub").unwrap();
            replay(&tree).unwrap();
            prop_assert_eq!(&read(&tree, &Overlay::default()), &model);
        }
    }

    #[test]
    fn a_journal_part_round_trips_whole_values_and_extensions() {
        let pairs = vec![
            (b"Fa".to_vec(), b"abc".to_vec()),
            (b"Fa".to_vec(), b"abcdef".to_vec()),
            (b"Fb".to_vec(), b"xyz".to_vec()),
        ];
        let v = encode(&pairs, &mut None, |_| None);
        let d = decode(&v).unwrap();
        assert_eq!(
            d,
            vec![
                (&b"Fa"[..], 0, &b"abc"[..]),
                (&b"Fa"[..], 3, &b"def"[..]),
                (&b"Fb"[..], 0, &b"xyz"[..]),
            ]
        );
        assert!(decode(&v[..v.len() - 1]).is_none());
    }
}
