//! A conversation's customer messages, in order, shared between clones in chunks: every
//! command is decided on a clone of its conversation's state (see `apply`), so a clone
//! costs one reference count per [`CHUNK`] messages instead of one per message, and a
//! write copies only the chunk it touches.

use super::model::Message;
use std::fmt;
use std::sync::Arc;

/// Messages per shared chunk. A write to a clone copies its chunk, touching the
/// reference count of every message in it (in a cold conversation, a cache miss each),
/// and a clone touches one count per chunk: with 16, a command on a conversation of
/// fewer than ≈ 1,000 messages touches fewer than with 64 (until the twelfth session),
/// and a customer message, which writes the last chunk, 8 on average instead of 32.
const CHUNK: usize = 16;

type Chunk = Arc<Vec<Arc<Message>>>;

/// The messages in order (what [`Messages::iter`] returns).
pub type Iter<'a> = std::iter::FlatMap<
    std::slice::Iter<'a, Chunk>,
    std::slice::Iter<'a, Arc<Message>>,
    fn(&'a Chunk) -> std::slice::Iter<'a, Arc<Message>>,
>;

/// The messages, oldest first. Reads as a list: `len`, `get`, `[i]`, `iter`.
#[derive(Clone, Default)]
pub struct Messages {
    chunks: Vec<Chunk>,
    len: usize,
}

impl Messages {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, i: usize) -> Option<&Arc<Message>> {
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    /// Appends a message (copies the last chunk first when a clone shares it).
    pub fn push(&mut self, m: Arc<Message>) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => Arc::make_mut(last).push(m),
            // Grown as it fills, not allocated whole: most conversations are short.
            _ => self.chunks.push(Arc::new(vec![m])),
        }
        self.len += 1;
    }

    /// The message at `i`, to change in place (copied first where a clone shares it).
    ///
    /// Panics when `i` is out of bounds, like a slice.
    pub fn make_mut(&mut self, i: usize) -> &mut Message {
        Arc::make_mut(self.slot_mut(i))
    }

    /// Replaces the message at `i` (panics when out of bounds).
    pub fn set(&mut self, i: usize, m: Arc<Message>) {
        *self.slot_mut(i) = m;
    }

    /// The slot at `i`, its chunk copied first where a clone shares it.
    fn slot_mut(&mut self, i: usize) -> &mut Arc<Message> {
        assert!(i < self.len, "message {i} of {}", self.len);
        &mut Arc::make_mut(&mut self.chunks[i / CHUNK])[i % CHUNK]
    }

    pub fn iter(&self) -> Iter<'_> {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// The messages from position `start` on, with their positions, without walking
    /// the ones before.
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = (usize, &Arc<Message>)> + '_ {
        let first = start / CHUNK;
        self.chunks
            .iter()
            .enumerate()
            .skip(first)
            .flat_map(move |(c, chunk)| {
                let from = if c == first { start % CHUNK } else { 0 };
                chunk
                    .iter()
                    .enumerate()
                    .skip(from)
                    .map(move |(i, m)| (c * CHUNK + i, m))
            })
    }
}

impl std::ops::Index<usize> for Messages {
    type Output = Arc<Message>;

    fn index(&self, i: usize) -> &Arc<Message> {
        self.get(i)
            .unwrap_or_else(|| panic!("message {i} of {}", self.len))
    }
}

impl FromIterator<Arc<Message>> for Messages {
    fn from_iter<I: IntoIterator<Item = Arc<Message>>>(iter: I) -> Self {
        let mut out = Messages::default();
        for m in iter {
            out.push(m);
        }
        out
    }
}

impl<'a> IntoIterator for &'a Messages {
    type Item = &'a Arc<Message>;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Equal when they hold equal messages in the same order, however they are chunked.
impl PartialEq for Messages {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl fmt::Debug for Messages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ContactId, ConversationId, MessageId, Status, Ts};

    fn msg(i: usize) -> Arc<Message> {
        Arc::new(Message {
            id: MessageId::from(format!("m{i}")),
            conversation_id: ConversationId::from("c"),
            contact_id: ContactId::from("k"),
            text: format!("text {i}"),
            at: Ts(i as i64),
            seq: i as u64,
            status: Status::Pending,
            assignee: None,
            help: None,
            hold_until: None,
        })
    }

    #[test]
    fn reads_like_the_list_it_was_built_from() {
        for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5] {
            let list: Vec<Arc<Message>> = (0..n).map(msg).collect();
            let m: Messages = list.iter().cloned().collect();
            assert_eq!(m.len(), n);
            assert_eq!(m.is_empty(), n == 0);
            assert!(m.iter().eq(list.iter()), "n = {n}");
            assert!((&m).into_iter().eq(list.iter()), "n = {n}");
            for start in [
                0,
                1,
                CHUNK - 1,
                CHUNK,
                CHUNK + 3,
                n.saturating_sub(1),
                n,
                n + 7,
            ] {
                let got: Vec<(usize, &Arc<Message>)> = m.iter_from(start).collect();
                let want: Vec<(usize, &Arc<Message>)> =
                    list.iter().enumerate().skip(start).collect();
                assert_eq!(got, want, "n = {n}, start = {start}");
            }
            for (i, want) in list.iter().enumerate() {
                assert_eq!(&m[i], want);
                assert_eq!(m.get(i), Some(want));
            }
            assert_eq!(m.get(n), None);
        }
    }

    #[test]
    fn a_clone_shares_until_written_and_writes_stay_on_their_side() {
        let n = 3 * CHUNK + 3;
        let base: Messages = (0..n).map(msg).collect();
        let mut clone = base.clone();
        assert_eq!(clone, base);
        clone.make_mut(5).status = Status::Answered;
        clone.set(CHUNK + 1, msg(999));
        clone.push(msg(1000));
        // The original is untouched.
        assert_eq!(base.len(), n);
        assert_eq!(base[5].status, Status::Pending);
        assert_eq!(
            base[CHUNK + 1].id,
            MessageId::from(format!("m{}", CHUNK + 1))
        );
        // The clone has every change.
        assert_eq!(clone.len(), n + 1);
        assert_eq!(clone[5].status, Status::Answered);
        assert_eq!(clone[CHUNK + 1].id, MessageId::from("m999"));
        assert_eq!(clone[n].id, MessageId::from("m1000"));
        // Written chunks were copied; the one nobody wrote is still shared.
        assert!(!Arc::ptr_eq(&base.chunks[0], &clone.chunks[0]));
        assert!(!Arc::ptr_eq(&base.chunks[1], &clone.chunks[1]));
        assert!(Arc::ptr_eq(&base.chunks[2], &clone.chunks[2]));
        assert!(!Arc::ptr_eq(&base.chunks[3], &clone.chunks[3]));
        assert_ne!(clone, base);
        // Same messages, chunked the same or not, are equal; a change is seen.
        let mut rebuilt: Messages = clone.iter().cloned().collect();
        assert_eq!(rebuilt, clone);
        rebuilt.make_mut(0).text = "changed".into();
        assert_ne!(rebuilt, clone);
    }

    #[test]
    fn a_clone_of_a_long_conversation_shares_every_chunk() {
        let base: Messages = (0..10 * CHUNK).map(msg).collect();
        let clone = base.clone();
        for (a, b) in base.chunks.iter().zip(&clone.chunks) {
            assert!(Arc::ptr_eq(a, b));
        }
    }
}
