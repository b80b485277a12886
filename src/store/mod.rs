//! The durable store: the only module that touches sled (0.34.7).
//!
//! One sled tree holds every table under a one-byte prefix (see [`keys`]), so a commit is
//! one atomic `apply_batch`. Commits go to a single writer thread that batches every
//! request waiting in its queue into one `apply_batch` + `flush` + `sync_data` (group
//! commit) and only then answers the requests and hands their events to the bus, in
//! `seq` order. Reads are blocking calls: callers run them off the async executor
//! (see [`Store::read`]).

pub mod clients;
pub mod index;
pub mod keys;
mod lazy;
pub mod log;
mod recovery;
pub mod search;
mod settings;
#[cfg(test)]
mod sled_patches;
mod writer;

use crate::bus::{Bus, Outgoing};
use crate::domain::state::{messages_from_runs, SnapshotRun, SNAPSHOT_RUN};
use crate::domain::{ContactId, Conversation, ConversationState, Event, Message, Snapshot};
use index::IndexEntry;
use serde::{de::DeserializeOwned, Serialize};
pub use settings::Settings;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::RwLock;
use tokio::sync::{mpsc, oneshot};

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("storage i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("the store is shutting down")]
    Closed,
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

/// A set of writes that become durable together, with the events to publish after.
#[derive(Default)]
pub struct Batch {
    events: Vec<(u64, Vec<u8>)>,
    puts: Vec<(Vec<u8>, Vec<u8>)>,
    /// Keys removed (after the puts of the same batch).
    removes: Vec<Vec<u8>>,
    /// Puts of records written behind the commit (`lazy.rs`).
    lazy: Vec<(Vec<u8>, Vec<u8>)>,
    index_del: Vec<IndexEntry>,
    index_put: Vec<(IndexEntry, Vec<u8>)>,
    outgoing: Vec<Outgoing>,
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    // An event or record is a few hundred bytes: sized once rather than grown from
    // serde_json's 128 by two or three reallocations.
    let mut out = Vec::with_capacity(512);
    // unwrap: our types serialise to JSON infallibly (string keys, no foreign maps).
    serde_json::to_writer(&mut out, v).expect("serialisable");
    out
}

impl Batch {
    /// Appends an event to the log and schedules its publication.
    /// `contact` owns the event's conversation (it may see some events).
    pub fn event(&mut self, ev: &Event, contact: Option<&ContactId>) {
        let bytes = json(ev);
        self.outgoing.push(Outgoing::new(ev, &bytes, contact));
        self.events.push((ev.seq, bytes));
    }

    /// Appends seqs to a conversation's log (its actor owns `log`).
    pub fn conversation_log(
        &mut self,
        conversation: &str,
        log: &mut log::ConvLog,
        seqs: impl IntoIterator<Item = u64>,
    ) {
        self.lazy.extend(log.append(conversation, seqs));
    }

    /// Writes a conversation's current state.
    pub fn put_conversation(&mut self, c: &Conversation) {
        self.puts.push((
            keys::key(keys::CONVERSATION, &[c.id.as_str().as_bytes()]),
            json(c),
        ));
    }

    /// Replaces index entries `old` with `new`; `value` is stored with each new entry.
    pub fn reindex(&mut self, old: Vec<IndexEntry>, new: Vec<IndexEntry>, value: &str) {
        self.reindex_by(old, new, |_| value.as_bytes().to_vec(), |_| false);
    }

    /// Replaces index entries `old` with `new`: removes those no longer there, adds (and
    /// counts) the new ones with `value_of`, and rewrites kept ones that `rewrite` names.
    fn reindex_by(
        &mut self,
        old: Vec<IndexEntry>,
        new: Vec<IndexEntry>,
        value_of: impl Fn(&IndexEntry) -> Vec<u8>,
        rewrite: impl Fn(&IndexEntry) -> bool,
    ) {
        for e in &old {
            if !new.contains(e) {
                self.index_del.push(e.clone());
            }
        }
        for e in new {
            if !old.contains(&e) {
                let v = value_of(&e);
                self.index_put.push((e, v));
            } else if rewrite(&e) && !e.name.starts_with(index::COUNT_ONLY) {
                self.puts
                    .push((keys::index_entry(&e.name, e.order, &e.id), value_of(&e)));
            }
        }
    }

    /// Replaces a message's index entries `old` with `new`. The `all` entry holds the
    /// message as it now stands; its other folder entries are ordered by the same seq, so
    /// they hold nothing and listings read the message from the `all` entry beside them
    /// (`indexed_message`); hold timers hold its conversation id.
    pub fn reindex_message(&mut self, old: Vec<IndexEntry>, new: Vec<IndexEntry>, m: &Message) {
        // A kept `all` entry has the same seq, so the same message; it is rewritten all
        // the same, so that it is never stale.
        self.reindex_by(
            old,
            new,
            |e| match e.name.as_str() {
                index::names::ALL => json(m),
                index::names::TIMERS => m.conversation_id.as_str().as_bytes().to_vec(),
                _ => Vec::new(),
            },
            |e| e.name == index::names::ALL,
        );
    }

    /// Records a contact's message `client_id` in the slot its lookup found.
    pub fn client_id(&mut self, slot: &clients::ClientIdSlot, client_id: &str, message: &str) {
        self.lazy.push(slot.with(client_id, message));
    }

    /// Records a new conversation among its contact's (`keys::CONTACT_CONV`).
    pub fn contact_conversation(&mut self, contact: &ContactId, conversation: &str) {
        self.puts.push((
            keys::contact_conversation(contact.as_str(), conversation),
            Vec::new(),
        ));
    }

    /// Writes a JSON record under `prefix` + `parts`.
    pub fn put_json<T: Serialize>(&mut self, prefix: u8, parts: &[&[u8]], v: &T) {
        self.puts.push((keys::key(prefix, parts), json(v)));
    }

    /// Removes the record under `prefix` + `parts` (a small table's row: saved replies,
    /// assistants), after the batch's puts.
    pub fn remove(&mut self, prefix: u8, parts: &[&[u8]]) {
        self.removes.push(keys::key(prefix, parts));
    }

    /// Records a conversation's snapshot: its head and the runs of messages written.
    pub fn snapshot(&mut self, conversation: &str, (head, runs): (Snapshot, Vec<SnapshotRun>)) {
        for (r, run) in runs {
            let k = keys::conversation_record(keys::SNAPSHOT_RUN, conversation, r);
            self.puts.push((k, json(&run)));
        }
        self.put_json(keys::SNAPSHOT, &[conversation.as_bytes()], &head);
    }

    /// Number of events in the batch.
    pub fn event_count(&self) -> usize {
        self.events.len()
    }
}

/// The big-endian u32 that ends `key` after `prefix` (a chunk or run number).
fn u32_after(key: &[u8], prefix: &[u8], what: &str) -> Result<u32, StoreError> {
    key.get(prefix.len()..)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt(what.into()))
}

/// A conversation as the store restores it (see [`Store::load_conversation`]).
pub struct LoadedConversation {
    pub state: ConversationState,
    /// The tail of its log of event seqs.
    pub log: log::ConvLog,
    /// The seq of the snapshot whose message runs are stored, if any.
    pub written: Option<u64>,
    /// Its latest event's seq (0: none).
    pub last: u64,
}

struct Request {
    batch: Batch,
    done: oneshot::Sender<Result<(), String>>,
    /// When it entered the writer's queue (`hub_durable_wait_seconds`).
    queued: std::time::Instant,
}

/// Resolves once a sent batch is durable (or failed).
pub type Durable = oneshot::Receiver<Result<(), String>>;

/// A reserved place in the writer's queue: allocate seqs and send without awaiting,
/// so that seqs are handed out in (almost) queue order.
pub struct Ticket {
    permit: mpsc::OwnedPermit<Request>,
    store: Arc<Store>,
}

impl Ticket {
    /// Allocates `n` consecutive seqs and returns the first.
    pub fn alloc(&self, n: usize) -> u64 {
        self.store.next_seq.fetch_add(n as u64, Ordering::SeqCst)
    }

    /// Sends the batch; the receiver resolves once it is durable.
    pub fn send(self, batch: Batch) -> Durable {
        let (done, rx) = oneshot::channel();
        self.permit.send(Request {
            batch,
            done,
            queued: std::time::Instant::now(),
        });
        rx
    }
}

/// The durable store. Cheap to share behind an `Arc`.
pub struct Store {
    dir: PathBuf,
    settings: Settings,
    /// The open database; `None` while it is being reopened after a failure.
    inner: RwLock<Option<Arc<Inner>>>,
    next_seq: AtomicU64,
    /// The highest seq of a successful commit, set before its answers go out (the bus's
    /// head moves after them): whoever holds an answer may wait for this.
    committed: AtomicU64,
    epoch: String,
    /// Whether `keys::CONTACT_CONV` lists every conversation. Stores created before it
    /// was kept lack the entries of their older conversations until a background pass
    /// (`build_contact_index`) has written them.
    contact_index: AtomicBool,
    tx: mpsc::Sender<Request>,
    healthy: AtomicBool,
    /// The latest values of records written behind the commit (`lazy.rs`): readers of
    /// those tables merge it over sled, holding its read lock across their scan.
    overlay: RwLock<lazy::Overlay>,
    /// Journal records not yet removed (`lazy.rs`), as the writer last left them.
    journal_records: AtomicU64,
    /// Odd while the writer applies a commit, bumped before and after: a read that sees
    /// the same even value on both sides saw no commit half-way ([`Store::consistent`]).
    applies: AtomicU64,
    /// Held for writing while a commit is applied; [`Store::consistent`] holds it for
    /// reading when it could not read between commits.
    apply_gate: RwLock<()>,
}

/// How many times [`Store::consistent`] reads between commits before it holds the
/// writer off instead.
const OPTIMISTIC_READS: usize = 4;

/// What [`Store::begin_apply`] returns: the commit is visible to readers as a whole
/// once it is dropped.
pub(crate) struct Applying<'a> {
    store: &'a Store,
    _gate: std::sync::RwLockWriteGuard<'a, ()>,
}

impl Drop for Applying<'_> {
    fn drop(&mut self) {
        self.store.applies.fetch_add(1, Ordering::Release);
    }
}

/// Up to `limit` index entries (order, id, value) from `range`, in its order.
fn index_page(
    range: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
    prefix_len: usize,
    limit: usize,
) -> Result<Vec<(u64, String, Vec<u8>)>, StoreError> {
    let mut out = Vec::new();
    for kv in range {
        let (k, v) = kv?;
        if let Some((order, id)) = keys::split_index_entry(prefix_len, &k) {
            out.push((order, id, v.to_vec()));
        }
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// How long a failed store may take to close before the hub stops waiting for it.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Drops `inner` (sled flushes as it closes) on a thread of its own, waiting at most
/// `wait`. On a disk its own log filled, sled's closing flush can wait for good for a
/// log buffer nobody writes (eighteenth session, a black-box probe: the writer hung
/// there, holding the store's lock, and every request after the first 503 hung with
/// it). Past `wait` that thread is left behind, the store stays closed (its file lock
/// held) and requests answer 503 until the hub is restarted, rather than hang.
fn close_within(inner: Inner, wait: std::time::Duration) -> Result<(), StoreError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("hub-store-close".into())
        .spawn(move || {
            drop(inner);
            let _ = tx.send(());
        })?;
    rx.recv_timeout(wait).map_err(|_| {
        tracing::error!("The failed store did not close; restart the hub once the disk has room.");
        StoreError::Io(std::io::Error::other(
            "the failed store did not close in time",
        ))
    })
}

impl Store {
    /// Opens (or creates) the store in `dir` and starts its writer thread.
    pub fn open(dir: &Path, bus: Arc<Bus>, settings: Settings) -> Result<Arc<Store>, StoreError> {
        Store::open_with(dir, bus, settings, true)
    }

    /// [`Store::open`], and whether to build the contact index of a store created before
    /// it was kept (tests turn that off to read such a store as it is).
    fn open_with(
        dir: &Path,
        bus: Arc<Bus>,
        settings: Settings,
        build_contact_index: bool,
    ) -> Result<Arc<Store>, StoreError> {
        std::fs::create_dir_all(dir)?;
        let inner = Inner::open(dir, &settings)?;
        let tree = inner.tree.clone();
        let epoch_key = keys::key(keys::META, &[b"epoch"]);
        let contact_index_key = contact_index_marker();
        let epoch = match tree.get(&epoch_key)? {
            Some(v) => String::from_utf8_lossy(&v).into_owned(),
            None => {
                // A new store: every conversation it will hold is in its contact's index.
                let e = crate::auth::random_hex(8);
                tree.insert(&contact_index_key, COMPLETE)?;
                tree.insert(&epoch_key, e.as_bytes())?;
                inner.flush_and_sync()?;
                e
            }
        };
        let contact_index = tree.get(&contact_index_key)?.is_some();
        let last_legacy = tree
            .scan_prefix([keys::EVENT])
            .keys()
            .next_back()
            .transpose()?
            .and_then(|k| k.get(1..9).and_then(|b| b.try_into().ok()))
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        let last_packed = match tree.scan_prefix([keys::LOG]).next_back().transpose()? {
            Some((_, v)) => log_record(&v)?.last().map(|(s, _)| *s).unwrap_or(0),
            None => 0,
        };
        let last = last_legacy.max(last_packed);
        drop(tree);
        bus.set_head(last);
        let (tx, rx) = mpsc::channel(16 * 1024);
        let writer = writer::Writer::new(bus, last + 1, &settings);
        let store = Arc::new(Store {
            dir: dir.to_path_buf(),
            settings,
            inner: RwLock::new(Some(Arc::new(inner))),
            next_seq: AtomicU64::new(last + 1),
            committed: AtomicU64::new(last),
            epoch,
            contact_index: AtomicBool::new(contact_index),
            tx,
            healthy: AtomicBool::new(true),
            overlay: RwLock::new(lazy::Overlay::default()),
            journal_records: AtomicU64::new(0),
            applies: AtomicU64::new(0),
            apply_gate: RwLock::new(()),
        });
        writer::spawn(writer, rx, store.clone());
        if !contact_index && build_contact_index {
            let s = store.clone();
            std::thread::Builder::new()
                .name("hub-contact-index".into())
                .spawn(move || match s.build_contact_index() {
                    Ok(n) => tracing::info!(conversations = n, "Contact index built."),
                    // Widgets keep reading the hub-wide log; the next start tries again.
                    Err(e) => tracing::warn!(error = %e, "Contact index not built."),
                })?;
        }
        Ok(store)
    }

    /// Lists every conversation of a store created before the contact index under its
    /// contact, then marks the index complete. Runs once, beside the hub: conversations
    /// opened meanwhile are listed by their own batch, and a widget resuming meanwhile
    /// reads the hub-wide log. Returns how many conversations it listed.
    fn build_contact_index(&self) -> Result<usize, StoreError> {
        #[derive(serde::Deserialize)]
        struct Owner {
            id: String,
            contact_id: String,
        }
        let tree = self.tree()?;
        let (mut n, mut batch, mut in_batch) = (0, sled::Batch::default(), 0);
        for kv in tree.scan_prefix([keys::CONVERSATION]) {
            let (_, v) = kv?;
            let c: Owner =
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            batch.insert(keys::contact_conversation(&c.contact_id, &c.id), &[][..]);
            n += 1;
            in_batch += 1;
            if in_batch == 1000 {
                tree.apply_batch(std::mem::take(&mut batch))?;
                in_batch = 0;
            }
        }
        tree.apply_batch(batch)?;
        let inner = self.inner()?;
        // The entries are durable before the marker that says they are complete.
        inner.flush_and_sync()?;
        inner.tree.insert(contact_index_marker(), COMPLETE)?;
        inner.flush_and_sync()?;
        self.contact_index.store(true, Ordering::Release);
        Ok(n)
    }

    /// The open database, or `Closed` while it is being reopened.
    fn inner(&self) -> Result<Arc<Inner>, StoreError> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(StoreError::Closed)
    }

    fn tree(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.inner()?.tree.clone())
    }

    fn overlay(&self) -> std::sync::RwLockReadGuard<'_, lazy::Overlay> {
        self.overlay.read().unwrap_or_else(|e| e.into_inner())
    }

    fn overlay_mut(&self) -> std::sync::RwLockWriteGuard<'_, lazy::Overlay> {
        self.overlay.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The records under `prefix` of a table written behind the commit (`lazy.rs`), with
    /// the values not yet checkpointed over them.
    fn scan_lazy(&self, tree: &sled::Tree, prefix: &[u8]) -> Result<Vec<lazy::Stored>, StoreError> {
        // Held across the scan: the writer drops checkpointed keys only under its
        // write lock, so sled cannot show a key newer than the overlay read here.
        let overlay = self.overlay();
        let stored = tree.scan_prefix(prefix).collect::<Result<Vec<_>, _>>()?;
        Ok(overlay.merge(prefix, stored))
    }

    /// Drops the database and opens it again: sled stays failed after an I/O error
    /// (e.g. a full disk), so recovery needs a fresh instance. Called by the writer.
    fn reopen(&self) -> Result<(), StoreError> {
        let mut guard = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some(mut old) = guard.take() {
            // Wait (briefly) for readers to let go, so sled's file lock is released.
            for _ in 0..200 {
                match Arc::try_unwrap(old) {
                    Ok(inner) => {
                        close_within(inner, CLOSE_WAIT)?;
                        break;
                    }
                    Err(still) => {
                        old = still;
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                }
            }
        }
        let inner = Inner::open(&self.dir, &self.settings)?;
        *guard = Some(Arc::new(inner));
        drop(guard);
        // Opening replayed the journal: what it held is in sled, what it lacked was
        // never durable.
        self.overlay_mut().clear();
        tracing::warn!("Store reopened after a failure.");
        Ok(())
    }

    /// The highest seq a successful commit has answered (or is answering) for.
    pub fn committed(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    /// The random id of this data store, fixed for its whole life.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// False after a failed commit, until one succeeds again.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub(crate) fn set_healthy(&self, ok: bool) {
        self.healthy.store(ok, Ordering::Relaxed)
    }

    /// Waits for room in the writer's queue.
    pub async fn ticket(self: &Arc<Self>) -> Result<Ticket, StoreError> {
        let permit = self
            .tx
            .clone()
            .reserve_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(Ticket {
            permit,
            store: self.clone(),
        })
    }

    /// Commits a batch that carries no events (or whose seqs the caller allocated) and
    /// waits until it is durable.
    pub async fn commit(self: &Arc<Self>, batch: Batch) -> Result<(), StoreError> {
        let rx = self.ticket().await?.send(batch);
        wait(rx).await
    }

    /// Runs blocking reads on the blocking pool, off the async executor.
    pub async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let me = self.clone();
        let res = tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|_| StoreError::Closed)?;
        if matches!(res, Err(StoreError::Sled(_) | StoreError::Closed)) {
            // sled stays failed after an I/O error: have the writer reopen it.
            self.set_healthy(false);
            let (done, _) = oneshot::channel();
            let _ = self.tx.try_send(Request {
                batch: Batch::default(),
                done,
                queued: std::time::Instant::now(),
            });
        }
        res
    }

    /// [`Store::read`] for reads of several records that must agree with each other (an
    /// inbox page and its folders' counts): `f` sees either all of a group commit or none
    /// of it. It runs between commits when it can (retried when a commit was applied
    /// meanwhile), else holding the next commit back until it is done, so `f` must be a
    /// bounded read (no scan of a whole index or conversation).
    pub async fn read_consistent<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        F: Fn(&Store) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.read(move |s| s.consistent(&f)).await
    }

    /// Runs `f` on a state no commit is half-way through (see [`Store::read_consistent`]).
    fn consistent<T>(&self, f: &dyn Fn(&Store) -> Result<T, StoreError>) -> Result<T, StoreError> {
        for attempt in 0..OPTIMISTIC_READS {
            let before = self.applies.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::thread::yield_now();
                continue;
            }
            let out = f(self)?;
            std::sync::atomic::fence(Ordering::Acquire);
            if self.applies.load(Ordering::Relaxed) == before {
                crate::metrics::record_consistent_read(if attempt == 0 {
                    "first"
                } else {
                    "retried"
                });
                return Ok(out);
            }
        }
        // A poisoned gate only means a writer panicked while holding it: reading is safe.
        let _gate = self.apply_gate.read().unwrap_or_else(|e| e.into_inner());
        crate::metrics::record_consistent_read("held");
        f(self)
    }

    /// Called by the writer around applying a commit (and publishing what it deferred):
    /// [`Store::consistent`] readers never see part of it.
    pub(crate) fn begin_apply(&self) -> Applying<'_> {
        let gate = self.apply_gate.write().unwrap_or_else(|e| e.into_inner());
        self.applies.fetch_add(1, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Release);
        Applying {
            store: self,
            _gate: gate,
        }
    }

    /// A JSON record, if present.
    pub fn get_json<T: DeserializeOwned>(
        &self,
        prefix: u8,
        parts: &[&[u8]],
    ) -> Result<Option<T>, StoreError> {
        match self.tree()?.get(keys::key(prefix, parts))? {
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(e.to_string())),
            None => Ok(None),
        }
    }

    /// A conversation's record, if it exists.
    pub fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        self.get_json(keys::CONVERSATION, &[id.as_bytes()])
    }

    /// The message a contact's earlier send with `client_id` created, or where to
    /// record it.
    pub fn client_id(
        &self,
        contact: &str,
        client_id: &str,
    ) -> Result<clients::ClientIdLookup, StoreError> {
        let chunks = self.scan_lazy(&self.tree()?, &clients::prefix(contact))?;
        Ok(clients::lookup(contact, client_id, chunks))
    }

    /// Every client id a contact has sent messages with (its packed records, and the
    /// one-key records of stores written before them), as fingerprints, and where its
    /// next one goes.
    pub fn client_ids(&self, contact: &str) -> Result<clients::ClientIds, StoreError> {
        let tree = self.tree()?;
        let chunks = self.scan_lazy(&tree, &clients::prefix(contact))?;
        let mut ids = clients::summarize(contact, chunks);
        let scope = format!("c/{contact}");
        let legacy = keys::key(keys::IDEMPOTENCY, &[scope.as_bytes(), b""]);
        for kv in tree.scan_prefix(&legacy) {
            let (k, _) = kv?;
            if let Some(cid) = k.get(legacy.len()..) {
                ids.fingerprints.push(clients::fingerprint_bytes(cid));
            }
        }
        Ok(ids)
    }

    /// The client ids of every idempotency record of `scope` (an agent's replies), as
    /// fingerprints (`clients::fingerprint`).
    pub fn idempotency_fingerprints(&self, scope: &str) -> Result<Vec<u64>, StoreError> {
        let prefix = keys::key(keys::IDEMPOTENCY, &[scope.as_bytes(), b""]);
        let mut out = Vec::new();
        for kv in self.tree()?.scan_prefix(&prefix) {
            let (k, _) = kv?;
            if let Some(cid) = k.get(prefix.len()..) {
                out.push(clients::fingerprint_bytes(cid));
            }
        }
        Ok(out)
    }

    /// Every JSON record under a prefix (small tables only: agents, assistants).
    pub fn scan_json<T: DeserializeOwned>(&self, prefix: u8) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        for kv in self.tree()?.scan_prefix([prefix]) {
            let (_, v) = kv?;
            out.push(serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        }
        Ok(out)
    }

    /// Every JSON record under a prefix with the rest of its key (small tables only).
    pub fn scan_keyed_json<T: DeserializeOwned>(
        &self,
        prefix: u8,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.tree()?.scan_prefix([prefix]) {
            let (k, v) = kv?;
            let id = String::from_utf8_lossy(&k[1..]).into_owned();
            out.push((
                id,
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            ));
        }
        Ok(out)
    }

    /// Writes a small record at once, durably (start-up only: admin bootstrap).
    pub fn put_json_now<T: Serialize>(
        &self,
        prefix: u8,
        parts: &[&[u8]],
        v: &T,
    ) -> Result<(), StoreError> {
        let inner = self.inner()?;
        inner.tree.insert(keys::key(prefix, parts), json(v))?;
        inner.flush_and_sync()
    }

    /// The events of a conversation, oldest first.
    pub fn conversation_events(&self, conversation: &str) -> Result<Vec<Event>, StoreError> {
        self.conversation_events_after(conversation, 0)
    }

    /// The seqs of a conversation's events with seq > `after`, ascending, and the tail
    /// of its log (the record its actor extends next).
    fn conversation_seqs(
        &self,
        tree: &sled::Tree,
        conversation: &str,
        after: u64,
    ) -> Result<(Vec<u64>, log::ConvLog), StoreError> {
        let mut seqs = Vec::new();
        // Stores written before the packed layout: one key per event, all older.
        let prefix = keys::key(keys::CONV_EVENT, &[conversation.as_bytes(), b""]);
        let start = keys::conv_event(conversation, after.saturating_add(1));
        for k in tree.range(start..).keys() {
            let k = k?;
            if !k.starts_with(&prefix) {
                break;
            }
            if let Some(seq) = k
                .get(prefix.len()..)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
            {
                seqs.push(seq);
            }
        }
        let prefix = log::conv_prefix(conversation);
        let mut tail = log::ConvLog::default();
        for (k, v) in self.scan_lazy(tree, &prefix)? {
            let chunk = u32_after(&k, &prefix, "conversation log key")?;
            let record = log::decode_seqs(&v);
            seqs.extend(record.iter().copied().filter(|s| *s > after));
            tail = log::ConvLog {
                chunk,
                seqs: record,
            };
        }
        Ok((seqs, tail))
    }

    /// The events of the given seqs (ascending), skipping seqs that hold none.
    fn events_of(&self, tree: &sled::Tree, seqs: &[u64]) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::with_capacity(seqs.len());
        let mut held = None;
        for &seq in seqs {
            if let Some(ev) = with_raw_event(tree, &mut held, seq, parse_event)? {
                out.push(ev);
            }
        }
        Ok(out)
    }

    /// The events of a conversation with seq > `after`, oldest first.
    pub fn conversation_events_after(
        &self,
        conversation: &str,
        after: u64,
    ) -> Result<Vec<Event>, StoreError> {
        self.events(&self.conversation_seqs_after(conversation, after)?)
    }

    /// The latest event of a conversation: its seq and time (none for a conversation
    /// with no event).
    pub fn latest_event_of(
        &self,
        conversation: &str,
    ) -> Result<Option<(u64, crate::domain::Ts)>, StoreError> {
        let tree = self.tree()?;
        let (seqs, _) = self.conversation_seqs(&tree, conversation, 0)?;
        let Some(&seq) = seqs.last() else {
            return Ok(None);
        };
        Ok(self.events_of(&tree, &[seq])?.pop().map(|e| (seq, e.at)))
    }

    /// The latest event of a conversation of one of `kinds`, read from its newest event
    /// backwards: a conversation list's previews read only the end of each log. An
    /// event's kind is read off its stored JSON before it is parsed, so the status
    /// events after a conversation's latest message cost a look-up each, not a parse.
    pub fn last_conversation_event(
        &self,
        conversation: &str,
        kinds: &[&str],
    ) -> Result<Option<Event>, StoreError> {
        let tree = self.tree()?;
        let (seqs, _) = self.conversation_seqs(&tree, conversation, 0)?;
        let mut held = None;
        for &seq in seqs.iter().rev() {
            let found = with_raw_event(&tree, &mut held, seq, |json| {
                let wanted = |kind: &[u8]| kinds.iter().any(|k| k.as_bytes() == kind);
                if raw_kind(json).is_some_and(|kind| !wanted(kind)) {
                    return Ok(None);
                }
                let ev = parse_event(json)?;
                Ok(kinds.contains(&ev.body.kind()).then_some(ev))
            })?;
            if let Some(Some(ev)) = found {
                return Ok(Some(ev));
            }
        }
        Ok(None)
    }

    /// The seqs of a conversation's events after `after`, ascending (8 bytes each: a
    /// long conversation's list is read whole; its events are read by [`Store::events`]).
    pub fn conversation_seqs_after(
        &self,
        conversation: &str,
        after: u64,
    ) -> Result<Vec<u64>, StoreError> {
        let tree = self.tree()?;
        Ok(self.conversation_seqs(&tree, conversation, after)?.0)
    }

    /// The events with these seqs (ascending), as stored.
    pub fn events(&self, seqs: &[u64]) -> Result<Vec<Event>, StoreError> {
        let tree = self.tree()?;
        self.events_of(&tree, seqs)
    }

    /// The conversations of `contact`, or None when this store's index of them is not
    /// complete (a store created before the index was kept).
    pub fn contact_conversations(&self, contact: &str) -> Result<Option<Vec<String>>, StoreError> {
        if !self.contact_index.load(Ordering::Acquire) {
            return Ok(None);
        }
        let prefix = keys::contact_conversations(contact);
        let mut out = Vec::new();
        for k in self.tree()?.scan_prefix(&prefix).keys() {
            let k = k?;
            out.push(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
        }
        Ok(Some(out))
    }

    /// Rebuilds a conversation's state: its latest snapshot (if any), then the events
    /// after it; with the tail of its log, and the seq of the snapshot whose message
    /// runs are stored (`None` when there are none: the next snapshot writes every run).
    pub fn load_conversation(&self, conversation: &str) -> Result<LoadedConversation, StoreError> {
        let tree = self.tree()?;
        let snap = self.get_json::<Snapshot>(keys::SNAPSHOT, &[conversation.as_bytes()])?;
        let after = snap.as_ref().map(|s| s.seq).unwrap_or(0);
        let (mut st, written) = match snap {
            Some(mut head) => match head.message_count {
                Some(count) => {
                    let runs = self.snapshot_runs(&tree, conversation, count)?;
                    let seq = head.seq;
                    (ConversationState::from_snapshot(head, runs), Some(seq))
                }
                None => {
                    let messages = std::mem::take(&mut head.messages);
                    (ConversationState::from_snapshot(head, messages), None)
                }
            },
            None => (ConversationState::default(), None),
        };
        let (seqs, tail) = self.conversation_seqs(&tree, conversation, after)?;
        for ev in self.events_of(&tree, &seqs)? {
            st.apply_event(&ev);
        }
        Ok(LoadedConversation {
            state: st,
            log: tail,
            written,
            last: seqs.last().copied().unwrap_or(after),
        })
    }

    /// The `count` messages of a conversation's snapshot runs.
    fn snapshot_runs(
        &self,
        tree: &sled::Tree,
        conversation: &str,
        count: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let prefix = keys::conversation_records(keys::SNAPSHOT_RUN, conversation);
        let runs = tree
            .scan_prefix(&prefix)
            .take(count.div_ceil(SNAPSHOT_RUN))
            .map(|kv| {
                let (k, v) = kv?;
                let r = u32_after(&k, &prefix, "snapshot run key")?;
                let run: Vec<Message> =
                    serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                Ok((r, run))
            })
            .collect::<Result<Vec<SnapshotRun>, StoreError>>()?;
        messages_from_runs(count, runs).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "the snapshot runs of {conversation} do not hold its {count} messages"
            ))
        })
    }

    /// Up to `limit` raw events with seq > `after`, oldest first.
    pub fn events_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let tree = self.tree()?;
        let mut out = Vec::new();
        // Stores written before the packed layout: one key per event, all older.
        for kv in tree.range(keys::event(after + 1)..keys::event(u64::MAX)) {
            let (k, v) = kv?;
            let Some(seq) = k
                .get(1..9)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
            else {
                continue;
            };
            out.push((seq, v.to_vec()));
            if out.len() >= limit {
                return Ok(out);
            }
        }
        let from = log::chunk_key(log::chunk_of(after + 1));
        for kv in tree.range(from..=log::chunk_key(u64::MAX)) {
            let (_, v) = kv?;
            for (seq, bytes) in log_record(&v)? {
                if seq > after {
                    out.push((seq, bytes.to_vec()));
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Entries of index `name`, highest order first, with order < `before`.
    pub fn index_desc(
        &self,
        name: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, String, Vec<u8>)>, StoreError> {
        let prefix = keys::index_prefix(name);
        let mut end = prefix.clone();
        match before {
            Some(b) => end.extend_from_slice(&b.to_be_bytes()),
            None => end.extend_from_slice(&[0xff; 9]),
        }
        let range = self.tree()?.range(prefix.clone()..end).rev();
        index_page(range, prefix.len(), limit)
    }

    /// Where the page after `page` (as [`Store::index_asc`] gave it for `limit`)
    /// starts: its last order when it came back full, none when it was the last.
    pub fn next_after(page: &[(u64, String, Vec<u8>)], limit: usize) -> Option<u64> {
        (page.len() >= limit)
            .then(|| page.last().map(|(o, _, _)| *o))
            .flatten()
    }

    /// Up to `limit` entries of index `name` with order > `after` (all when `None`),
    /// lowest first.
    pub fn index_asc(
        &self,
        name: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, String, Vec<u8>)>, StoreError> {
        let prefix = keys::index_prefix(name);
        let mut start = prefix.clone();
        if let Some(a) = after {
            match a.checked_add(1) {
                Some(from) => start.extend_from_slice(&from.to_be_bytes()),
                None => return Ok(Vec::new()),
            }
        }
        let mut end = prefix.clone();
        end.extend_from_slice(&[0xff; 9]);
        index_page(self.tree()?.range(start..end), prefix.len(), limit)
    }

    /// Entries of index `name` with order <= `upto`, lowest first.
    pub fn index_upto(
        &self,
        name: &str,
        upto: u64,
    ) -> Result<Vec<(u64, String, Vec<u8>)>, StoreError> {
        let prefix = keys::index_prefix(name);
        let mut end = prefix.clone();
        end.extend_from_slice(&upto.saturating_add(1).to_be_bytes());
        let mut out = Vec::new();
        for kv in self.tree()?.range(prefix.clone()..end) {
            let (k, v) = kv?;
            if let Some((order, id)) = keys::split_index_entry(prefix.len(), &k) {
                out.push((order, id, v.to_vec()));
            }
        }
        Ok(out)
    }

    /// The JSON of the message of a folder entry (`order`, `id`, `value` as `index_desc`
    /// gives them): the `all` entry's value, read here unless it is this one; entries
    /// written before the `all` entry held the message name its conversation and are read
    /// through the message row. Parsing is left to the caller, outside any
    /// [`Store::consistent`] read.
    pub fn indexed_message(
        &self,
        order: u64,
        id: &str,
        value: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if value.first() == Some(&b'{') {
            return Ok(Some(value));
        }
        let key = if value.is_empty() {
            keys::index_entry(index::names::ALL, order, id)
        } else {
            keys::key(keys::MESSAGE, &[id.as_bytes()])
        };
        Ok(self.tree()?.get(key)?.map(|v| v.to_vec()))
    }

    /// Counts of every index whose name starts with `prefix` (name without the prefix).
    pub fn counts_with_prefix(&self, prefix: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let mut out = Vec::new();
        for kv in self
            .tree()?
            .scan_prefix(keys::key(keys::COUNT, &[prefix.as_bytes()]))
        {
            let (k, v) = kv?;
            let name = String::from_utf8_lossy(&k[1 + prefix.len()..]).into_owned();
            let n = v.as_ref().try_into().map(i64::from_be_bytes).unwrap_or(0);
            out.push((name, n));
        }
        Ok(out)
    }

    /// The quantiles (0..=1) of the orders of index `name`, interpolated linearly
    /// between the two nearest ranks (numpy's and spreadsheets' default, so that the
    /// 0.5 quantile is the median of an even count too); `None` when it is empty.
    pub fn quantiles(&self, name: &str, qs: &[f64]) -> Result<Vec<Option<f64>>, StoreError> {
        let n = self.count(name)?.max(0) as usize;
        if n == 0 {
            return Ok(vec![None; qs.len()]);
        }
        // Each quantile's position among the n orders, and the two ranks around it.
        let at: Vec<f64> = qs
            .iter()
            .map(|q| q.clamp(0.0, 1.0) * (n - 1) as f64)
            .collect();
        let last = at.iter().map(|h| h.ceil() as usize).max().unwrap_or(0);
        let prefix = keys::index_prefix(name);
        let mut orders = Vec::with_capacity(last + 1);
        for k in self.tree()?.scan_prefix(&prefix).keys().take(last + 1) {
            let k = k?;
            orders.push(keys::split_index_entry(prefix.len(), &k).map_or(0, |(o, _)| o));
        }
        Ok(at
            .iter()
            .map(|&h| {
                let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
                let (a, b) = (*orders.get(lo)? as f64, *orders.get(hi)? as f64);
                Some(a + (h - lo as f64) * (b - a))
            })
            .collect())
    }

    /// The number of entries of index `name`.
    pub fn count(&self, name: &str) -> Result<i64, StoreError> {
        Ok(self
            .tree()?
            .get(keys::key(keys::COUNT, &[name.as_bytes()]))?
            .and_then(|v| v.as_ref().try_into().ok().map(i64::from_be_bytes))
            .unwrap_or(0))
    }

    /// Bytes sled wrote to its log since the store opened: (updates linked to pages,
    /// whole pages, pages moved by segment cleaning); zeros while it is closed
    /// (`vendor/sled/PATCHES.md`, 16).
    pub fn log_bytes_written(&self) -> [u64; 3] {
        self.inner().map_or([0; 3], |i| i.db.log_bytes_written())
    }

    /// Records written behind the commit (`lazy.rs`): the keys whose latest value is
    /// only in the journal (and in memory), and the journal records left.
    pub fn deferred(&self) -> (usize, u64) {
        (
            self.overlay().len(),
            self.journal_records.load(Ordering::Relaxed),
        )
    }

    /// The length of sled's log file, in bytes (a blocking call; 0 while the store is
    /// closed).
    pub fn file_bytes(&self) -> u64 {
        self.inner()
            .ok()
            .and_then(|i| i.sync_file.metadata().ok())
            .map_or(0, |m| m.len())
    }
}

/// The `META` key set (to [`COMPLETE`]) in stores whose contact index
/// (`keys::CONTACT_CONV`) is complete.
fn contact_index_marker() -> Vec<u8> {
    keys::key(keys::META, &[b"contact_index"])
}
const COMPLETE: &[u8] = b"complete";

/// An open sled database: the one tree and the file to `sync_data`.
struct Inner {
    db: sled::Db,
    tree: sled::Tree,
    sync_file: std::fs::File,
}

impl Inner {
    /// Writes sled's log buffers and syncs the file: sled's own `flush` does not make
    /// them durable.
    fn flush_and_sync(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.sync_file.sync_data()?;
        Ok(())
    }

    fn open(dir: &Path, settings: &Settings) -> Result<Inner, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(256 * 1024 * 1024)
            .flush_every_ms(None)
            .mode(sled::Mode::HighThroughput)
            // The hub writes snapshots itself while it runs (`recovery.rs`): opening
            // then only reads (a crashed 1 M-conversation store wrote 85 MB first).
            .snapshot_at_open(!recovery::enabled(settings.snapshot_mb))
            .open()?;
        // Segment cleaning waits until this much log follows a segment that became
        // half dead (`Settings::cleaning_lag_mb`).
        db.set_cleaning_lag(settings.cleaning_lag_bytes());
        let tree = db.open_tree("hub")?;
        // sled's flush ends in sync_file_range (sled #1452), which neither flushes the
        // device's cache nor syncs metadata: every flush is followed by sync_data.
        let sync_file = std::fs::OpenOptions::new()
            .read(true)
            .open(dir.join("db"))?;
        let inner = Inner {
            db,
            tree,
            sync_file,
        };
        // What the last run wrote behind its commits (`lazy.rs`), before anything reads.
        let replayed = lazy::replay(&inner.tree)?;
        if replayed > 0 {
            inner.flush_and_sync()?;
            tracing::info!(keys = replayed, "Journal of deferred records replayed.");
        }
        Ok(inner)
    }
}

/// The events of a stored log record, or `Corrupt`.
/// The stored JSON of the event `seq`, handed to `f`: from its packed log record
/// (`held` keeps the last record read: a conversation's seqs often share one), else
/// from the one key per event of stores written before; None when no event has it.
fn with_raw_event<T>(
    tree: &sled::Tree,
    held: &mut Option<(u64, Option<sled::IVec>)>,
    seq: u64,
    f: impl FnOnce(&[u8]) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let c = log::chunk_of(seq);
    if held.as_ref().map(|(h, _)| *h) != Some(c) {
        *held = Some((c, tree.get(log::chunk_key(c))?));
    }
    if let Some(record) = held.as_ref().and_then(|(_, v)| v.as_deref()) {
        if let Some((_, json)) = log_record(record)?.into_iter().find(|(s, _)| *s == seq) {
            return f(json).map(Some);
        }
    }
    match tree.get(keys::event(seq))? {
        Some(json) => f(&json).map(Some),
        None => Ok(None),
    }
}

/// An event from its stored JSON.
fn parse_event(json: &[u8]) -> Result<Event, StoreError> {
    serde_json::from_slice(json).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The `kind` of an event as stored (`{"seq":…,"kind":"…",…}`), read without parsing
/// it; None when it is not where it is written (the event is then parsed).
fn raw_kind(json: &[u8]) -> Option<&[u8]> {
    const TAG: &[u8] = br#""kind":""#;
    let head = &json[..json.len().min(64)];
    let start = head.windows(TAG.len()).position(|w| w == TAG)? + TAG.len();
    let len = json[start..].iter().position(|&b| b == b'"')?;
    Some(&json[start..start + len])
}

fn log_record(v: &[u8]) -> Result<Vec<(u64, &[u8])>, StoreError> {
    log::decode_chunk(v).ok_or_else(|| StoreError::Corrupt("unreadable log record".into()))
}

/// Waits for a commit's durability.
pub async fn wait(rx: Durable) -> Result<(), StoreError> {
    match rx.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(StoreError::Io(std::io::Error::other(e))),
        Err(_) => Err(StoreError::Closed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ConversationId, EventBody, Ts};

    fn ev(seq: u64, conv: &str) -> Event {
        Event::new(
            seq,
            Some(ConversationId::from(conv)),
            Ts(seq as i64),
            EventBody::Bot {
                active: seq.is_multiple_of(2),
                by: "system".into(),
            },
        )
    }

    /// The seqs `events_after` returns.
    fn log_seqs(store: &Store, after: u64, limit: usize) -> Vec<u64> {
        store
            .events_after(after, limit)
            .unwrap()
            .iter()
            .map(|e| e.0)
            .collect()
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let dest = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy_dir(&e.path(), &dest);
            } else {
                std::fs::copy(e.path(), dest).unwrap();
            }
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Opens the store at `dir` once sled's I/O threads of an instance just dropped have
    /// let go of its file lock (they finish their last write after the drop: 1 open in
    /// 6 failed with "could not acquire lock" without this wait).
    fn open_once_released(rt: &tokio::runtime::Runtime, dir: &Path, bus: &Arc<Bus>) -> Arc<Store> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            // No background pass: a test that wants it runs `build_contact_index` itself.
            match rt
                .block_on(async { Store::open_with(dir, bus.clone(), Settings::default(), false) })
            {
                Ok(s) => return s,
                Err(StoreError::Sled(sled::Error::Io(e)))
                    if e.to_string().contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => panic!("open {}: {e}", dir.display()),
            }
        }
    }

    /// Commits events of `conv` through the writer, as the conversation's actor does.
    fn commit(
        rt: &tokio::runtime::Runtime,
        store: &Arc<Store>,
        log: &mut log::ConvLog,
        conv: &str,
        n: usize,
    ) -> Vec<u64> {
        rt.block_on(async {
            let t = store.ticket().await.unwrap();
            let base = t.alloc(n);
            let seqs: Vec<u64> = (base..base + n as u64).collect();
            let mut b = Batch::default();
            for s in &seqs {
                b.event(&ev(*s, conv), None);
            }
            b.conversation_log(conv, log, seqs.iter().copied());
            wait(t.send(b)).await.unwrap();
            seqs
        })
    }

    #[test]
    fn an_events_kind_is_read_off_its_stored_json() {
        for seq in [0, 7, u64::MAX] {
            let e = ev(seq, "c_1");
            assert_eq!(raw_kind(&json(&e)), Some(e.body.kind().as_bytes()));
        }
        assert_eq!(raw_kind(br#"{"seq":1}"#), None);
        assert_eq!(raw_kind(br#"{"seq":1,"kind":"unterminated"#), None);
    }

    #[test]
    fn a_large_commits_records_wait_in_the_journal_and_survive_a_kill() {
        let rt = runtime();
        let dir = tempfile::tempdir().unwrap();
        let store = open_once_released(&rt, dir.path(), &Bus::new());
        assert_eq!(store.deferred(), (0, 0));
        // One client id for each of 300 contacts: past the threshold of deferred
        // records, so one journal record holds them all.
        let n = 300;
        assert!(n >= lazy::DEFER_MIN_PAIRS);
        let mut b = Batch::default();
        for i in 0..n {
            let contact = format!("k{i}");
            b.client_id(
                &clients::ClientIdSlot::first(&contact),
                &format!("cid{i}"),
                &format!("m{i}"),
            );
        }
        rt.block_on(store.commit(b)).unwrap();
        // Nothing is due yet (one record, younger than the checkpoints' age).
        assert_eq!(store.deferred(), (n, 1));
        let sent = |s: &Store, i: usize| {
            s.client_id(&format!("k{i}"), &format!("cid{i}")).unwrap()
                == clients::ClientIdLookup::Sent(format!("m{i}"))
        };
        assert!((0..n).all(|i| sent(&store, i)), "read through the overlay");
        let in_place = store
            .tree()
            .unwrap()
            .scan_prefix([keys::CLIENT_IDS])
            .count();
        assert_eq!(in_place, 0, "the values are only in the journal");
        // A copy of the files, as after a kill -9: opening replays the journal.
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let reopened = open_once_released(&rt, copy.path(), &Bus::new());
        assert_eq!(reopened.deferred(), (0, 0));
        assert!((0..n).all(|i| sent(&reopened, i)), "replayed at open");
        let tree = reopened.tree().unwrap();
        assert_eq!(tree.scan_prefix([keys::CLIENT_IDS]).count(), n);
        assert_eq!(tree.scan_prefix([keys::JOURNAL]).count(), 0);
    }

    #[test]
    fn a_new_store_lists_each_contacts_conversations_and_an_earlier_one_does_not() {
        let rt = runtime();
        let (new, earlier) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // An earlier hub's store: it has an epoch, and no contact index.
        {
            let inner = Inner::open(earlier.path(), &Settings::default()).unwrap();
            inner
                .tree
                .insert(keys::key(keys::META, &[b"epoch"]), &b"0123456789abcdef"[..])
                .unwrap();
            inner.flush_and_sync().unwrap();
        }
        let bus = Bus::new();
        let store = open_once_released(&rt, earlier.path(), &bus);
        assert_eq!(store.epoch(), "0123456789abcdef");
        assert_eq!(store.contact_conversations("k1").unwrap(), None);
        drop(store);

        let store = open_once_released(&rt, new.path(), &Bus::new());
        assert_eq!(store.contact_conversations("k1").unwrap(), Some(vec![]));
        let (k1, k2) = (ContactId::from("k1"), ContactId::from("k2"));
        let mut b = Batch::default();
        b.contact_conversation(&k1, "c_b");
        b.contact_conversation(&k2, "c_x");
        b.contact_conversation(&k1, "c_a");
        rt.block_on(store.commit(b)).unwrap();
        assert_eq!(
            store.contact_conversations("k1").unwrap(),
            Some(vec!["c_a".to_string(), "c_b".to_string()])
        );
        assert_eq!(
            store.contact_conversations("k2").unwrap(),
            Some(vec!["c_x".to_string()])
        );
        // A contact id that begins another one sees none of its conversations.
        assert_eq!(store.contact_conversations("k").unwrap(), Some(vec![]));
    }

    #[test]
    fn an_earlier_store_gets_its_contact_index_built_once() {
        let rt = runtime();
        let dir = tempfile::tempdir().unwrap();
        // An earlier hub's store: an epoch, three conversations, no contact index.
        {
            let inner = Inner::open(dir.path(), &Settings::default()).unwrap();
            inner
                .tree
                .insert(keys::key(keys::META, &[b"epoch"]), &b"0123456789abcdef"[..])
                .unwrap();
            for (c, k) in [("c_a", "k1"), ("c_x", "k2"), ("c_c", "k1")] {
                let conv = serde_json::json!({"id": c, "contact_id": k, "channel": "web"});
                inner
                    .tree
                    .insert(keys::key(keys::CONVERSATION, &[c.as_bytes()]), json(&conv))
                    .unwrap();
            }
            inner.flush_and_sync().unwrap();
        }
        let store = open_once_released(&rt, dir.path(), &Bus::new());
        assert_eq!(store.contact_conversations("k1").unwrap(), None);
        // A conversation opened while the pass runs is listed by its own batch.
        let mut b = Batch::default();
        b.contact_conversation(&ContactId::from("k1"), "c_b");
        rt.block_on(store.commit(b)).unwrap();
        assert_eq!(store.build_contact_index().unwrap(), 3);
        let listed = |store: &Store| {
            (
                store.contact_conversations("k1").unwrap(),
                store.contact_conversations("k2").unwrap(),
            )
        };
        let want = (
            Some(vec!["c_a".to_string(), "c_b".into(), "c_c".into()]),
            Some(vec!["c_x".to_string()]),
        );
        assert_eq!(listed(&store), want);
        // The marker is durable: the next start (on a copy of the files, as after a
        // kill -9: the writer still holds the first instance) has a complete index
        // without a pass.
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let store = open_once_released(&rt, copy.path(), &Bus::new());
        assert_eq!(listed(&store), want);
    }

    #[test]
    fn packed_log_reads_after_the_legacy_one_and_survives_reopen() {
        let rt = runtime();
        let dir = tempfile::tempdir().unwrap();
        // A store written before the packed layout: seqs 1..=5, one key per event.
        {
            let inner = Inner::open(dir.path(), &Settings::default()).unwrap();
            for s in 1..=5u64 {
                let conv = if s.is_multiple_of(2) { "a" } else { "b" };
                inner
                    .tree
                    .insert(keys::event(s), json(&ev(s, conv)))
                    .unwrap();
                inner
                    .tree
                    .insert(keys::conv_event(conv, s), &[] as &[u8])
                    .unwrap();
            }
            inner.db.flush().unwrap();
        }
        let bus = Bus::new();
        let store = open_once_released(&rt, dir.path(), &bus);
        assert_eq!(bus.head(), 5, "head from the legacy log");
        let mut log_a = store.load_conversation("a").unwrap().log;
        assert_eq!(log_a, log::ConvLog::default());
        // 40 more events of `a` (two records of its log), 3 of `b`, interleaved.
        let mut log_b = store.load_conversation("b").unwrap().log;
        let mut want_a = vec![2, 4];
        let mut want_b = vec![1, 3, 5];
        for round in 0..4 {
            want_a.extend(commit(&rt, &store, &mut log_a, "a", 10));
            if round < 3 {
                want_b.extend(commit(&rt, &store, &mut log_b, "b", 1));
            }
        }
        let seqs = |conv: &str, after: u64| -> Vec<u64> {
            store
                .conversation_events_after(conv, after)
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect()
        };
        assert_eq!(seqs("a", 0), want_a);
        assert_eq!(seqs("b", 0), want_b);
        assert_eq!(
            seqs("a", 30),
            want_a
                .iter()
                .copied()
                .filter(|s| *s > 30)
                .collect::<Vec<_>>()
        );
        assert_eq!(log_seqs(&store, 0, 1000), (1..=48).collect::<Vec<_>>());
        assert_eq!(
            log_seqs(&store, 3, 4),
            vec![4, 5, 6, 7],
            "a page across both layouts"
        );
        assert_eq!(log_seqs(&store, 9, 3), vec![10, 11, 12]);
        // Reopened (a copy of the files, as after a kill -9: the writer still holds the
        // first instance): the head comes from the packed log, and the next event joins
        // the partly filled record (seq 49 shares a record with 48).
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let bus = Bus::new();
        let store = rt
            .block_on(async { Store::open(copy.path(), bus.clone(), Settings::default()) })
            .unwrap();
        assert_eq!(bus.head(), 48);
        let mut log_a = store.load_conversation("a").unwrap().log;
        assert_eq!(log_a.chunk, 1, "the tail is the second record of a's log");
        want_a.extend(commit(&rt, &store, &mut log_a, "a", 1));
        assert_eq!(want_a.last(), Some(&49));
        assert_eq!(log_seqs(&store, 40, 1000), (41..=49).collect::<Vec<_>>());
        let st = store.conversation_events_after("a", 0).unwrap();
        assert_eq!(st.iter().map(|e| e.seq).collect::<Vec<_>>(), want_a);
    }
}
