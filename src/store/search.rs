//! Full-text search (an extension, `GET /api/search`): which messages, replies, comments,
//! closing notes, end-of-session reasons, help questions and answers, and which
//! customers' names and e-mail addresses hold the words an agent types.
//!
//! The index is derived data, built behind the hub from its event log, never on the
//! commit path: a thread (`hub-search`, nice 19, idle I/O class) reads the events past
//! its checkpoint, keeps their postings (term → seqs) in memory, where they are searched,
//! and writes them as blocks — a key `p` + term + 0 + first seq per term and block —
//! into a sled database of its own (`DATA/search-index`), each with the checkpoint in
//! the same batch. While the log grows fast it gives way (see [`BUSY_EVENTS`]). A crash
//! loses what was in memory, which the thread reads again from the log past the
//! checkpoint it finds; an index that cannot be read is rebuilt from the log. A search
//! waits (up to a second) for the index to reach the seqs committed before it, so what
//! was just acknowledged is found.
//!
//! Words are folded the same way on both sides: NFKD, combining marks dropped, lower
//! case, split on anything that is not a letter or a digit ("Remboursé" and
//! "rembourse" are one word; an e-mail address is its parts). A query matches an item
//! when each of its words starts a word of the item ("remb dupont" finds "Dupont asks
//! for a remboursement"), newest first.

use super::{Store, StoreError};
use crate::domain::{Event, EventBody};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::Duration;
use unicode_normalization::UnicodeNormalization;

/// Longest word kept, in characters (a longer one is indexed by its start).
const MAX_WORD: usize = 40;
/// Events read from the log at a time; [`BATCH_BEHIND`] when it is far behind.
const BATCH: usize = 512;
const BATCH_BEHIND: usize = 8_192;
/// The postings of the events read are kept in memory (searched there) and written as
/// one block — a key per term, holding the term's seqs of the block — once this many
/// events were read, or [`BLOCK_AGE`] after the first of them: a key per term and block
/// instead of one per term and event.
pub const BLOCK_EVENTS: usize = 16_384;
const BLOCK_AGE: Duration = Duration::from_secs(10);
/// While the log grows faster than this (events a second), the index gives way to the
/// live traffic: it reads the log only for a search that waits, and its blocks wait in
/// memory, up to [`BUSY_BLOCKS`] blocks' worth (a block's writes queue on the device
/// before the commits' syncs).
const BUSY_EVENTS: u64 = 1_000;
const BUSY_BLOCKS: usize = 16;
/// Words shorter than this are indexed under their own postings and under every start
/// of 2 letters or more (`PREFIXES`): a query word of 2 or 3 letters reads one complete
/// list instead of merging every word it starts.
const PREFIXES: std::ops::RangeInclusive<usize> = 2..=3;
/// Most words of one prefix (4 letters or more) merged for a search; past that the
/// answer says `partial`.
const MAX_EXPANSION: usize = 1_024;
/// Most candidates one request examines before it answers with `next_before`.
const MAX_EXAMINED: usize = 2_000;
/// Most words a query may have.
pub const MAX_QUERY_WORDS: usize = 8;

const POSTING: u8 = b'p';
const CHECKPOINT: &[u8] = b"mindexed";
const EPOCH: &[u8] = b"mepoch";
/// The index's layout; an index of another layout is rebuilt.
const VERSION: &[u8] = b"mversion";
const LAYOUT: &[u8] = b"3";

/// The index and its thread's progress.
pub struct SearchIndex {
    tree: OnceLock<sled::Tree>,
    /// The seq up to which every event is indexed.
    progress: tokio::sync::watch::Sender<u64>,
    /// Set to wake the thread before its next look at the log.
    wake: (Mutex<bool>, Condvar),
    /// The highest seq a search waits for: the thread looks at the log again until the
    /// bus's head (which moves just after a commit's answers) reaches it.
    wanted: AtomicU64,
    /// The postings not written yet.
    tail: Mutex<Tail>,
    /// [`BLOCK_EVENTS`], unless set otherwise (`HUB_SEARCH_BLOCK_EVENTS`).
    block_events: usize,
}

/// Terms → their seqs, ascending.
type Postings = BTreeMap<String, Vec<u64>>;

/// What the index holds in memory: the postings read since the last block written.
#[derive(Default)]
struct Tail {
    active: Postings,
    /// The seqs `active` covers (events with text or not, gaps) and when the first came.
    events: usize,
    since: Option<std::time::Instant>,
    /// A block being written: still read from here until it is in sled.
    frozen: Option<(Arc<Postings>, u64)>,
    /// Every seq up to this one is in sled's blocks; sled's postings above it (a block
    /// being written) are read from here.
    durable: u64,
}

/// One page of results.
pub struct Found {
    /// Matching events, newest first.
    pub events: Vec<Event>,
    /// Where the next page starts, when this one was cut short.
    pub next_before: Option<u64>,
    /// A query word starts more than [`MAX_EXPANSION`] words: only the first of them
    /// were searched.
    pub partial: bool,
}

/// Folds `text` for matching: NFKD, no combining marks, lower case, and the letters
/// that decomposition leaves whole spelt as they are typed without them (œ → oe,
/// ß → ss, final ς → σ, …; `static/console/search.js` folds the same way).
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text
        .nfkd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
    {
        match c {
            'ς' => out.push('σ'),
            'œ' => out.push_str("oe"),
            'æ' => out.push_str("ae"),
            'ß' => out.push_str("ss"),
            'þ' => out.push_str("th"),
            'ð' | 'đ' => out.push('d'),
            'ø' => out.push('o'),
            'ł' => out.push('l'),
            'ı' => out.push('i'),
            'ħ' => out.push('h'),
            c => out.push(c),
        }
    }
    out
}

/// The folded words of `text`, each cut to [`MAX_WORD`] characters.
pub fn words(text: &str) -> Vec<String> {
    // Folding first: a ligature or a full-width letter may fold into several.
    fold(text)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(MAX_WORD).collect())
        .collect()
}

/// The words of a query, in order, without repeats; words of one letter are dropped
/// (they would start most words).
pub fn query_words(q: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    words(q)
        .into_iter()
        .filter(|w| w.chars().count() >= 2)
        .filter(|w| seen.insert(w.clone()))
        .collect()
}

/// The texts of an event that search reads; `contact` names the customer of a
/// conversation that opened (its name and e-mail address).
fn texts(ev: &Event, contact: &dyn Fn(&str) -> Vec<String>) -> Vec<String> {
    match &ev.body {
        EventBody::MessageCreated { message } => vec![message.text.clone()],
        EventBody::ReplyCreated { reply } => vec![reply.text.clone()],
        EventBody::CommentCreated { comment } => vec![comment.text.clone()],
        EventBody::ConversationClosed { notes, .. } => notes.iter().cloned().collect(),
        EventBody::SessionEnded { reason, .. } => reason.iter().cloned().collect(),
        EventBody::Rated { comment, .. } => comment.iter().cloned().collect(),
        EventBody::StatusChanged(c) => c.question.iter().chain(&c.answer).cloned().collect(),
        EventBody::ConversationOpened { conversation } => contact(conversation.contact_id.as_str()),
        _ => vec![],
    }
}

/// Whether a stored event may hold text to index, read off its kind without parsing
/// (most events are status changes without a help question or answer).
fn may_have_text(json: &[u8]) -> bool {
    let kind = super::raw_kind(json);
    match kind {
        Some(b"message.status_changed") => {
            contains(json, br#""question":"#) || contains(json, br#""answer":"#)
        }
        Some(b"conversation.opened")
        | Some(b"message.created")
        | Some(b"reply.created")
        | Some(b"comment.created")
        | Some(b"conversation.closed")
        | Some(b"session.ended") => true,
        Some(b"conversation.rated") => contains(json, br#""comment":""#),
        Some(_) => false,
        None => true,
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn posting_key(word: &str, seq: u64) -> Vec<u8> {
    posting_key_bytes(word.as_bytes(), seq)
}

/// The word and seq of a posting key.
fn parse_posting(k: &[u8]) -> Option<(&[u8], u64)> {
    let body = k.strip_prefix(&[POSTING])?;
    let split = body.len().checked_sub(9)?;
    if body[split] != 0 {
        return None;
    }
    let seq = u64::from_be_bytes(body[split + 1..].try_into().ok()?);
    Some((&body[..split], seq))
}

impl SearchIndex {
    /// Starts the index of `store` in `data/search-index`, built by its own thread.
    pub fn start(
        store: &Arc<Store>,
        head: impl Fn() -> u64 + Send + 'static,
        block_events: usize,
    ) -> Arc<SearchIndex> {
        let index = Arc::new(SearchIndex {
            block_events,
            ..SearchIndex::off()
        });
        let dir = store.dir.join("search-index");
        let (me, weak) = (index.clone(), Arc::downgrade(store));
        let epoch = store.epoch().to_string();
        let spawned = std::thread::Builder::new()
            .name("hub-search".into())
            .spawn(move || {
                super::recovery::lowest_priority();
                me.run(&dir, &epoch, weak, head)
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "No search thread; search finds nothing new.");
        }
        index
    }

    /// An index that is never built (`HUB_SEARCH=off`): never [`ready`](Self::ready).
    pub fn off() -> SearchIndex {
        SearchIndex {
            tree: OnceLock::new(),
            progress: tokio::sync::watch::channel(0).0,
            wake: (Mutex::new(false), Condvar::new()),
            wanted: AtomicU64::new(0),
            tail: Mutex::new(Tail::default()),
            block_events: BLOCK_EVENTS,
        }
    }

    /// The seq up to which every event is indexed.
    pub fn indexed(&self) -> u64 {
        *self.progress.borrow()
    }

    /// Waits (at most `within`) until every event up to `seq` is indexed; false when
    /// the index is still behind.
    pub async fn caught_up(&self, seq: u64, within: Duration) -> bool {
        if self.ready() && self.indexed() >= seq {
            return true;
        }
        self.wanted.fetch_max(seq, Ordering::AcqRel);
        self.nudge();
        let mut rx = self.progress.subscribe();
        let waited = tokio::time::timeout(within, rx.wait_for(|s| *s >= seq && self.ready())).await;
        matches!(waited, Ok(Ok(_)))
    }

    /// Whether the index is open (searches before that find nothing to read).
    pub fn ready(&self) -> bool {
        self.tree.get().is_some()
    }

    fn nudge(&self) {
        let (lock, cv) = &self.wake;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_one();
    }

    fn sleep(&self, d: Duration) {
        let (lock, cv) = &self.wake;
        let mut woken = lock.lock().unwrap_or_else(|e| e.into_inner());
        if !*woken {
            woken = cv
                .wait_timeout(woken, d)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *woken = false;
    }

    /// The thread: opens the index, then follows the log while the store lives.
    fn run(&self, dir: &Path, epoch: &str, store: Weak<Store>, head: impl Fn() -> u64) {
        let mut failures = 0;
        let tree = loop {
            match open(dir, epoch) {
                Ok(t) => break t,
                Err(e) => {
                    // Only this process opens it (the store's lock keeps other hubs
                    // out), so a failure that lasts is the folder itself (a file in its
                    // place, unreadable files): it goes, and the index is built again.
                    failures += 1;
                    tracing::warn!(error = %e, failures, "Search index not open; retrying.");
                    if store.strong_count() == 0 {
                        return;
                    }
                    if failures == 3 {
                        tracing::warn!("Search index removed; rebuilding it from the log.");
                        let gone = match std::fs::metadata(dir) {
                            Ok(m) if m.is_dir() => std::fs::remove_dir_all(dir),
                            Ok(_) => std::fs::remove_file(dir),
                            Err(_) => Ok(()),
                        };
                        if let Err(e) = gone {
                            tracing::warn!(error = %e, "Search index not removed.");
                        }
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        };
        let mut done = match tree.get(CHECKPOINT) {
            Ok(Some(v)) => v.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0),
            _ => 0,
        };
        self.lock_tail().durable = done;
        // Ready before the progress that wakes the searches waiting for it.
        let _ = self.tree.set(tree.clone());
        self.progress.send_replace(done);
        tracing::info!(indexed = done, "Search index open.");
        let mut waiting_since: Option<std::time::Instant> = None;
        let mut busy = Busy::default();
        loop {
            let Some(store) = store.upgrade() else { return };
            let target = head();
            let busy = busy.rate(target) >= BUSY_EVENTS;
            if self.block_due(busy) {
                if let Err(e) = self.write_block(&tree) {
                    tracing::warn!(error = %e, indexed = done, "Search index block not written; retrying.");
                    drop(store);
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            }
            let wanted = self.wanted.load(Ordering::Acquire);
            if busy && wanted <= done && done < target {
                // Saturated: the log is read when it calms down, or for a search.
                drop(store);
                self.sleep(Duration::from_millis(100));
                continue;
            }
            if done >= target {
                drop(store);
                // A search waits for a seq whose commit has answered but whose events
                // the bus has not published yet: look again in a moment (for a second
                // at most: a seq that never comes must not keep this thread awake).
                if wanted > done {
                    let since = *waiting_since.get_or_insert_with(std::time::Instant::now);
                    if since.elapsed() < Duration::from_secs(1) {
                        std::thread::sleep(Duration::from_micros(200));
                        continue;
                    }
                }
                waiting_since = None;
                self.sleep(Duration::from_millis(500));
                continue;
            }
            waiting_since = None;
            match read_batch(&store, done, target) {
                Ok((last, postings)) => {
                    let mut t = self.lock_tail();
                    for (term, seqs) in postings {
                        t.active.entry(term).or_default().extend(seqs);
                    }
                    t.events += (last - done) as usize;
                    t.since.get_or_insert_with(std::time::Instant::now);
                    drop(t);
                    done = last;
                    self.progress.send_replace(done);
                }
                Err(e) => {
                    tracing::warn!(error = %e, indexed = done, "Search indexing failed; retrying.");
                    drop(store);
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    fn lock_tail(&self) -> std::sync::MutexGuard<'_, Tail> {
        self.tail.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the postings in memory should go to sled now (`busy`: the store is
    /// committing often).
    fn block_due(&self, busy: bool) -> bool {
        let t = self.lock_tail();
        t.frozen.is_some()
            || t.events >= BUSY_BLOCKS * self.block_events
            || (!busy
                && (t.events >= self.block_events
                    || (t.events > 0 && t.since.is_some_and(|s| s.elapsed() >= BLOCK_AGE))))
    }

    /// Writes the postings in memory as one block (a key per term: `p` + term + 0 +
    /// its first seq of the block → its seqs), with the checkpoint, in one batch. They
    /// are read from memory until it is applied.
    fn write_block(&self, tree: &sled::Tree) -> Result<(), StoreError> {
        let (block, last) = {
            let mut t = self.lock_tail();
            if t.frozen.is_none() {
                let active = std::mem::take(&mut t.active);
                let last = t.durable + t.events as u64;
                t.frozen = Some((Arc::new(active), last));
                t.events = 0;
                t.since = None;
            }
            t.frozen.clone().expect("frozen above")
        };
        let mut batch = sled::Batch::default();
        for (term, seqs) in block.iter() {
            batch.insert(posting_key(term, seqs[0]), encode_seqs(seqs));
        }
        batch.insert(CHECKPOINT, &last.to_be_bytes()[..]);
        tree.apply_batch(batch)?;
        let mut t = self.lock_tail();
        t.durable = last;
        t.frozen = None;
        tracing::debug!(
            indexed = last,
            terms = block.len(),
            "Search index block written."
        );
        Ok(())
    }

    /// The events after `before` (all when None) whose texts hold every word of
    /// `query` as the start of one of theirs, newest first, at most `limit`.
    pub fn search(
        &self,
        store: &Store,
        query: &[String],
        before: Option<u64>,
        limit: usize,
    ) -> Result<Found, StoreError> {
        let Some(tree) = self.tree.get() else {
            return Err(StoreError::Closed);
        };
        let before = before.unwrap_or(u64::MAX);
        // The longest word drives: it has the fewest words it starts, and likely the
        // fewest postings; the others are checked against each candidate's text.
        let Some(driver) = query.iter().max_by_key(|w| w.len()) else {
            return Ok(Found {
                events: vec![],
                next_before: None,
                partial: false,
            });
        };
        let mut merged = Merge::new(tree, &self.lock_tail(), driver, before)?;
        let partial = merged.partial;
        let (mut events, mut examined) = (Vec::new(), 0);
        let contact = |id: &str| contact_texts(store, id);
        while let Some(seq) = merged.next()? {
            examined += 1;
            if let Some(ev) = store.events(&[seq])?.pop() {
                let have: Vec<String> =
                    texts(&ev, &contact).iter().flat_map(|t| words(t)).collect();
                if query
                    .iter()
                    .all(|q| have.iter().any(|w| w.starts_with(q.as_str())))
                {
                    events.push(ev);
                }
            }
            if events.len() >= limit || examined >= MAX_EXAMINED {
                // More may follow (the last page ends when the postings do).
                let next_before = merged.peek()?.map(|_| seq);
                return Ok(Found {
                    events,
                    next_before,
                    partial,
                });
            }
        }
        Ok(Found {
            events,
            next_before: None,
            partial,
        })
    }
}

/// How fast the log grows, in events a second, sampled over the last second or so.
#[derive(Default)]
struct Busy {
    at: Option<(std::time::Instant, u64)>,
    rate: u64,
}

impl Busy {
    fn rate(&mut self, head: u64) -> u64 {
        match self.at {
            Some((at, before)) if at.elapsed() < Duration::from_secs(1) => {
                // (a burst within the second counts at once)
                self.rate = self.rate.max(head.saturating_sub(before));
            }
            Some((at, before)) => {
                let n = head.saturating_sub(before) as f64 / at.elapsed().as_secs_f64();
                self.rate = n as u64;
                self.at = Some((std::time::Instant::now(), head));
            }
            None => self.at = Some((std::time::Instant::now(), head)),
        }
        self.rate
    }
}

/// The customer's name and e-mail address, as the widget was told them.
fn contact_texts(store: &Store, id: &str) -> Vec<String> {
    match store.get_json::<crate::auth::ContactRecord>(super::keys::CONTACT, &[id.as_bytes()]) {
        Ok(Some(c)) => c.name.into_iter().chain(c.email).collect(),
        _ => vec![],
    }
}

/// Reads the events after `done` up to `target` (at most [`BATCH`] or
/// [`BATCH_BEHIND`]); returns the seq read up to and the postings of their texts.
fn read_batch(store: &Store, done: u64, target: u64) -> Result<(u64, Postings), StoreError> {
    let size = if target - done > BATCH_BEHIND as u64 {
        BATCH_BEHIND
    } else {
        BATCH
    };
    let chunk = store.events_after(done, size)?;
    let mut postings = Postings::new();
    let mut last = done;
    for (seq, json) in chunk {
        if seq > target {
            break;
        }
        last = seq;
        if !may_have_text(&json) {
            continue;
        }
        let Ok(ev) = serde_json::from_slice::<Event>(&json) else {
            // An event this build cannot read has no text it knows of.
            continue;
        };
        let contact = |id: &str| contact_texts(store, id);
        let mut seen = BTreeSet::new();
        for t in texts(&ev, &contact) {
            for w in words(&t) {
                for key in index_terms(&w) {
                    if seen.insert(key.to_string()) {
                        postings.entry(key.to_string()).or_default().push(seq);
                    }
                }
            }
        }
    }
    // (nothing past `done`: seqs a failed commit drew are never written)
    Ok((if last == done { target } else { last }, postings))
}

/// Seqs (ascending) as LEB128 deltas.
fn encode_seqs(seqs: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(seqs.len() * 2);
    let mut prev = 0u64;
    for &s in seqs {
        let mut d = s - prev;
        prev = s;
        loop {
            let b = (d & 0x7f) as u8;
            d >>= 7;
            if d == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
    }
    out
}

fn decode_seqs(bytes: &[u8]) -> Option<Vec<u64>> {
    let (mut out, mut prev, mut d, mut shift) = (Vec::new(), 0u64, 0u64, 0u32);
    for &b in bytes {
        if shift > 63 {
            return None;
        }
        d |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            prev = prev.checked_add(d)?;
            out.push(prev);
            d = 0;
            shift = 0;
        } else {
            shift += 7;
        }
    }
    (shift == 0).then_some(out)
}

/// What a word is indexed under: itself (2 letters or more) and its starts of
/// [`PREFIXES`] letters.
fn index_terms(word: &str) -> Vec<&str> {
    let n = word.chars().count();
    if n < 2 {
        return vec![];
    }
    let mut out: Vec<&str> = PREFIXES
        .filter(|&p| p < n)
        .filter_map(|p| word.char_indices().nth(p).map(|(i, _)| &word[..i]))
        .collect();
    out.push(word);
    out
}

/// Opens the index in `dir`; one made for another store, or that cannot be read, is
/// started again.
fn open(dir: &Path, epoch: &str) -> Result<sled::Tree, StoreError> {
    let tree = match open_db(dir) {
        Ok(t) => t,
        Err(StoreError::Sled(sled::Error::Corruption { .. }))
        | Err(StoreError::Sled(sled::Error::Unsupported(_))) => {
            tracing::warn!("Search index unreadable; rebuilding it from the log.");
            std::fs::remove_dir_all(dir)?;
            open_db(dir)?
        }
        Err(e) => return Err(e),
    };
    let same_store = tree
        .get(EPOCH)?
        .is_some_and(|e| e.as_ref() == epoch.as_bytes());
    let same_layout = tree.get(VERSION)?.is_some_and(|v| v.as_ref() == LAYOUT);
    if !(same_store && same_layout) {
        if tree.get(CHECKPOINT)?.is_some() {
            tracing::warn!(
                same_store,
                same_layout,
                "Search index of another store or layout; rebuilding it."
            );
        }
        tree.clear()?;
        tree.insert(EPOCH, epoch.as_bytes())?;
        tree.insert(VERSION, LAYOUT)?;
    }
    Ok(tree)
}

fn open_db(dir: &Path) -> Result<sled::Tree, StoreError> {
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(16 * 1024 * 1024)
        .flush_every_ms(Some(1000))
        .open()?;
    Ok(db.open_tree("search")?)
}

/// One term's seqs below `before`, newest first: those in memory, then sled's blocks
/// (only their seqs up to `durable`: a block being written is read from memory).
struct TermSeqs {
    mem: Vec<u64>,
    blocks: Option<sled::Iter>,
    block: Vec<u64>,
    before: u64,
    durable: u64,
}

impl TermSeqs {
    fn next(&mut self) -> Result<Option<u64>, StoreError> {
        while let Some(s) = self.mem.pop() {
            if s < self.before {
                return Ok(Some(s));
            }
        }
        loop {
            while let Some(s) = self.block.pop() {
                if s < self.before && s <= self.durable {
                    return Ok(Some(s));
                }
            }
            let Some(kv) = self.blocks.as_mut().and_then(|i| i.next_back()) else {
                return Ok(None);
            };
            let (_, v) = kv?;
            self.block = decode_seqs(&v)
                .ok_or_else(|| StoreError::Corrupt("unreadable search postings".into()))?;
        }
    }
}

/// The postings of every word that starts with a prefix, merged newest first.
struct Merge {
    terms: Vec<TermSeqs>,
    /// More words start with the prefix than were merged.
    partial: bool,
    heap: BinaryHeap<(u64, usize)>,
    last: Option<u64>,
}

impl Merge {
    fn new(tree: &sled::Tree, tail: &Tail, prefix: &str, before: u64) -> Result<Merge, StoreError> {
        // A word of up to 3 letters has one complete list (see `PREFIXES`); a longer
        // one, the lists of every word it starts, in sled or in memory.
        let mut words: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut partial = false;
        if prefix.chars().count() <= *PREFIXES.end() {
            words.insert(prefix.as_bytes().to_vec());
        } else {
            let mut from = posting_prefix(prefix);
            let mut end = from.clone();
            end.push(0xff);
            // The first key of each word in sled, then past all of that word's keys.
            while let Some(kv) = tree.range(from.clone()..end.clone()).next() {
                let (k, _) = kv?;
                let Some((word, _)) = parse_posting(&k) else {
                    break;
                };
                words.insert(word.to_vec());
                from = posting_prefix_bytes(word);
                from.push(1);
                if words.len() > MAX_EXPANSION {
                    break;
                }
            }
            let in_memory = tail
                .active
                .range(prefix.to_string()..)
                .chain(
                    tail.frozen
                        .iter()
                        .flat_map(|(f, _)| f.range(prefix.to_string()..)),
                )
                .map(|(w, _)| w)
                .take_while(|w| w.starts_with(prefix));
            for w in in_memory {
                words.insert(w.as_bytes().to_vec());
            }
            if words.len() > MAX_EXPANSION {
                partial = true;
                while words.len() > MAX_EXPANSION {
                    words.pop_last();
                }
            }
        }
        let mut terms = Vec::with_capacity(words.len());
        for w in words {
            let term = String::from_utf8_lossy(&w);
            // Frozen seqs come before the active ones (an older block).
            let mut mem: Vec<u64> = Vec::new();
            if let Some(seqs) = tail.frozen.as_ref().and_then(|(f, _)| f.get(term.as_ref())) {
                mem.extend(seqs);
            }
            if let Some(seqs) = tail.active.get(term.as_ref()) {
                mem.extend(seqs);
            }
            let lo = posting_key_bytes(&w, 0);
            let hi = posting_key_bytes(&w, before);
            terms.push(TermSeqs {
                mem,
                blocks: Some(tree.range(lo..hi)),
                block: Vec::new(),
                before,
                durable: tail.durable,
            });
        }
        let mut m = Merge {
            terms,
            partial,
            heap: BinaryHeap::new(),
            last: None,
        };
        for i in 0..m.terms.len() {
            m.pull(i)?;
        }
        Ok(m)
    }

    fn pull(&mut self, i: usize) -> Result<(), StoreError> {
        if let Some(seq) = self.terms[i].next()? {
            self.heap.push((seq, i));
        }
        Ok(())
    }

    fn peek(&mut self) -> Result<Option<u64>, StoreError> {
        while let Some(&(seq, i)) = self.heap.peek() {
            if Some(seq) != self.last {
                return Ok(Some(seq));
            }
            self.heap.pop();
            self.pull(i)?;
        }
        Ok(None)
    }

    /// The next seq, newest first, each once (several words may name one event).
    fn next(&mut self) -> Result<Option<u64>, StoreError> {
        let Some(seq) = self.peek()? else {
            return Ok(None);
        };
        self.last = Some(seq);
        Ok(Some(seq))
    }
}

fn posting_prefix(word: &str) -> Vec<u8> {
    posting_prefix_bytes(word.as_bytes())
}

fn posting_prefix_bytes(word: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(word.len() + 10);
    k.push(POSTING);
    k.extend_from_slice(word);
    k
}

fn posting_key_bytes(word: &[u8], seq: u64) -> Vec<u8> {
    let mut k = posting_prefix_bytes(word);
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_fold_accents_case_and_split_addresses() {
        let w = words("Remboursé, SVP: marie.Dupont@Example.com — Ça ﬁnit");
        assert_eq!(
            w,
            [
                "rembourse",
                "svp",
                "marie",
                "dupont",
                "example",
                "com",
                "ca",
                "finit"
            ]
        );
        let long = "x".repeat(100);
        assert_eq!(words(&long)[0].len(), MAX_WORD);
    }

    #[test]
    fn query_words_drop_single_letters_and_repeats() {
        assert_eq!(query_words("a Remb remb à b dupont"), ["remb", "dupont"]);
        assert!(query_words(" , ! ").is_empty());
    }

    #[test]
    fn posting_keys_read_back() {
        let k = posting_key("remboursement", 42);
        assert_eq!(parse_posting(&k), Some((&b"remboursement"[..], 42)));
        assert_eq!(parse_posting(b"mindexed"), None);
    }

    #[test]
    fn ratings_are_read_only_with_a_comment() {
        let rated = |c: &str| {
            format!(
                r#"{{"seq":9,"kind":"conversation.rated","data":{{"score":4,"comment":{c},"contact_id":"k1"}},"conversation_id":"c1","at":"2026-12-07T10:00:00.000Z"}}"#
            )
        };
        assert!(may_have_text(rated(r#""slow""#).as_bytes()));
        assert!(!may_have_text(rated("null").as_bytes()));
    }

    #[test]
    fn words_index_under_their_short_starts() {
        assert_eq!(index_terms("remboursement"), ["re", "rem", "remboursement"]);
        assert_eq!(index_terms("rem"), ["re", "rem"]);
        assert_eq!(index_terms("re"), ["re"]);
        assert!(index_terms("r").is_empty());
        assert_eq!(
            index_terms("élan"),
            ["él", "éla", "élan"],
            "by letters, not bytes"
        );
    }

    #[test]
    fn fold_spells_whole_letters_as_typed_without_them() {
        assert_eq!(
            words("ΟΔΟΣ οδός Cœur Straße Ærø Guðmundsdóttir Işık"),
            [
                "οδοσ",
                "οδοσ",
                "coeur",
                "strasse",
                "aero",
                "gudmundsdottir",
                "isik"
            ]
        );
    }

    #[test]
    fn seqs_encode_and_decode() {
        for seqs in [vec![], vec![1], vec![5, 6, 300, 70_000, u64::MAX / 2]] {
            assert_eq!(decode_seqs(&encode_seqs(&seqs)), Some(seqs));
        }
        assert_eq!(decode_seqs(&[0x80]), None, "cut short");
    }

    #[test]
    fn merge_gives_each_seq_once_newest_first_from_blocks_and_memory() {
        let dir = tempfile::tempdir().unwrap();
        let tree = open_db(dir.path()).unwrap();
        let index = SearchIndex::off();
        let add = |words: &[(&str, u64)]| {
            let mut t = index.lock_tail();
            for (w, s) in words {
                for term in index_terms(w) {
                    t.active.entry(term.to_string()).or_default().push(*s);
                }
                t.events = (*s - t.durable) as usize;
            }
        };
        // a block in sled, a block being written, and postings in memory
        add(&[
            ("rem", 1),
            ("rembourse", 3),
            ("remise", 5),
            ("rembourse", 5),
        ]);
        index.write_block(&tree).unwrap();
        add(&[("rez", 7), ("remb", 9)]);
        let collect = |prefix: &str, before: u64| {
            let mut m = Merge::new(&tree, &index.lock_tail(), prefix, before).unwrap();
            let mut out = vec![];
            while let Some(s) = m.next().unwrap() {
                out.push(s);
            }
            out
        };
        let check = |when: &str| {
            assert_eq!(collect("rem", u64::MAX), [9, 5, 3, 1], "{when}");
            assert_eq!(collect("remb", u64::MAX), [9, 5, 3], "{when}");
            assert_eq!(collect("remb", 9), [5, 3], "{when}");
            assert_eq!(collect("re", 4), [3, 1], "{when}");
            assert_eq!(collect("rembourse", u64::MAX), [5, 3], "{when}");
            assert_eq!(collect("zz", u64::MAX), Vec::<u64>::new(), "{when}");
            assert_eq!(collect("zzzz", u64::MAX), Vec::<u64>::new(), "{when}");
        };
        check("memory and sled");
        // frozen and already in sled, not yet marked durable: read once, from memory
        {
            let mut t = index.lock_tail();
            let active = std::mem::take(&mut t.active);
            let mut batch = sled::Batch::default();
            for (term, seqs) in &active {
                batch.insert(posting_key(term, seqs[0]), encode_seqs(seqs));
            }
            tree.apply_batch(batch).unwrap();
            t.frozen = Some((Arc::new(active), 9));
            t.events = 0;
        }
        check("a block being written");
        index.write_block(&tree).unwrap();
        assert!(index.lock_tail().active.is_empty());
        assert_eq!(index.lock_tail().durable, 9);
        check("all in sled");
        add(&[("rembourser", 11)]);
        assert_eq!(collect("rembourse", u64::MAX), [11, 5, 3]);
        assert_eq!(
            tree.get(CHECKPOINT).unwrap().unwrap().as_ref(),
            &9u64.to_be_bytes()
        );
    }
}
