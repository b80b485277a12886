//! Micro-benchmarks of the hot paths: the pure domain, event serialisation, and the
//! durable group commit (many concurrent writers sharing flushes).
//!
//! `cargo bench --bench hot_paths`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use hub::bus::{Bus, Outgoing};
use hub::domain::*;
use hub::store::clients::{ClientIdLookup, ClientIdSlot};
use hub::store::{Batch, Store};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Distinguishes the conversations of successive bench iterations.
static RUN: AtomicU64 = AtomicU64::new(0);

fn conversation_with(n: usize) -> ConversationState {
    let mut st = ConversationState::default();
    let contact = Actor::Contact(ContactId::from("k1"));
    for i in 0..n {
        let open = (i == 0).then(|| OpenInfo {
            conversation_id: ConversationId::from("c1"),
            contact_id: ContactId::from("k1"),
            channel: "web".into(),
        });
        let cmd = Command::CustomerMessage {
            id: MessageId::from(format!("m{i}")),
            text: "Hello, my order has not arrived yet".into(),
            open,
            assistant: None,
            bot_reply_id: ReplyId::from(format!("r{i}")),
        };
        let seq = (i * 2 + 1) as u64;
        for (j, body) in apply(&st, cmd, &contact, Ts(0))
            .unwrap()
            .into_iter()
            .enumerate()
        {
            st.apply_event(&Event::new(
                seq + j as u64,
                Some(ConversationId::from("c1")),
                Ts(0),
                body,
            ));
        }
    }
    st
}

fn domain(c: &mut Criterion) {
    let agent = Actor::Agent {
        id: AgentId::from("a1"),
        role: Role::Agent,
    };
    let contact = Actor::Contact(ContactId::from("k1"));
    let st = conversation_with(10);
    let mut g = c.benchmark_group("apply");
    g.throughput(Throughput::Elements(1));
    // A long-lived conversation too: a command must not cost in proportion to its length.
    let long = conversation_with(1000);
    for (n, conv, assign_name) in [
        (10, &st, "assign"),
        (1000, &long, "assign_in_1000_message_conversation"),
    ] {
        g.bench_function(
            format!("customer_message_in_{n}_message_conversation"),
            |b| {
                b.iter(|| {
                    apply(
                        conv,
                        Command::CustomerMessage {
                            id: MessageId::from("mx"),
                            text: "another one".into(),
                            open: None,
                            assistant: None,
                            bot_reply_id: ReplyId::from("rx"),
                        },
                        &contact,
                        Ts(1),
                    )
                    .unwrap()
                })
            },
        );
        g.bench_function(assign_name, |b| {
            b.iter(|| {
                apply(
                    conv,
                    Command::Assign {
                        message_id: MessageId::from(format!("m{}", n / 2)),
                        agent_id: AgentId::from("a1"),
                    },
                    &agent,
                    Ts(1),
                )
                .unwrap()
            })
        });
    }
    g.bench_function("reply_answering_10", |b| {
        b.iter(|| {
            apply(
                &st,
                Command::Reply {
                    id: ReplyId::from("r"),
                    text: "On it!".into(),
                },
                &agent,
                Ts(1),
            )
            .unwrap()
        })
    });
    g.finish();

    let ev = Event::new(
        42,
        Some(ConversationId::from("c1")),
        Ts(1_700_000_000_000),
        EventBody::MessageCreated {
            message: Message::clone(&st.messages[0]),
        },
    );
    let mut g = c.benchmark_group("serialise");
    g.throughput(Throughput::Elements(1));
    g.bench_function("message_created_event_json", |b| {
        b.iter(|| serde_json::to_vec(&ev).unwrap())
    });
    g.bench_function("batch_event_with_frames", |b| {
        b.iter_batched(
            Batch::default,
            |mut batch| {
                batch.event(&ev, Some(&ContactId::from("k1")));
                batch
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
    publish(c, &ev);
}

/// One publish of a saturated commit's events (≈ 270 customer messages from as many
/// contacts, `docs/DECISIONS.md`, "Group commit") to 20 consoles and those contacts'
/// widgets, each socket's queue drained after it.
fn publish(c: &mut Criterion, ev: &Event) {
    let bus = Bus::new();
    let n = 270;
    let mut consoles: Vec<_> = (0..20)
        .map(|i| bus.subscribe_agent(&AgentId::from(format!("a{i}"))).0)
        .collect();
    let contacts: Vec<ContactId> = (0..n)
        .map(|i| ContactId::from(format!("k_{i:032x}")))
        .collect();
    let mut widgets: Vec<_> = contacts
        .iter()
        .map(|k| bus.subscribe_contact(k).0)
        .collect();
    let json = serde_json::to_vec(ev).unwrap();
    let events: Vec<Outgoing> = contacts
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let mut e = ev.clone();
            e.seq = i as u64 + 1;
            Outgoing::new(&e, &json, Some(k))
        })
        .collect();
    let mut g = c.benchmark_group("publish");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("270_contacts_20_consoles", |b| {
        b.iter_batched(
            || events.clone(),
            |events| {
                bus.publish(events);
                for s in consoles.iter_mut().chain(widgets.iter_mut()) {
                    let mut rx = s.rx.try_recv();
                    while let Ok(frames) = rx {
                        s.state.taken(&frames);
                        rx = s.rx.try_recv();
                    }
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// Durable commits of one customer message each, from `writers` concurrent tasks; prints
/// each count's ack latency (from asking for a ticket to the durable answer) and what
/// went through sled's log.
fn commit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // The store reads of the hub's two worker runtimes (`config::BLOCKING_THREADS`).
        .max_blocking_threads(2 * hub::config::BLOCKING_THREADS)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Bus::new(), Default::default()).unwrap();
    let msg = Message::clone(&conversation_with(1).messages[0]);
    let mut g = c.benchmark_group("group_commit");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    // 256 last: each count's commits stay in the store and slow the next ones (a
    // bigger tree, more to clean), and 512 after 1 and 64 is what earlier figures were.
    for writers in [1usize, 64, 512, 256] {
        // Every request's wait, from its ticket to its durable answer (µs).
        let acks = std::sync::Arc::new(std::sync::Mutex::new(
            hdrhistogram::Histogram::<u64>::new(3).unwrap(),
        ));
        g.bench_function(format!("{writers}_writers"), |b| {
            b.iter_custom(|iters| {
                let store = store.clone();
                let msg = msg.clone();
                let acks = acks.clone();
                rt.block_on(async move {
                    let start = Instant::now();
                    let per = (iters as usize).div_ceil(writers);
                    let tasks: Vec<_> = (0..writers)
                        .map(|w| {
                            let store = store.clone();
                            let msg = msg.clone();
                            let acks = acks.clone();
                            tokio::spawn(async move {
                                let mut waits = hdrhistogram::Histogram::<u64>::new(3).unwrap();
                                // One conversation per writer, with its log's tail.
                                let mut log = hub::store::log::ConvLog::default();
                                let mut slot = ClientIdSlot::first("");
                                let conv = ConversationId::from(format!(
                                    "c{w}-{}",
                                    RUN.fetch_add(1, Ordering::Relaxed)
                                ));
                                for i in 0..per {
                                    let asked = Instant::now();
                                    let t = store.ticket().await.unwrap();
                                    let seq = t.alloc(1);
                                    let mut m = msg.clone();
                                    m.id = MessageId::from(format!("m{seq:016}"));
                                    m.conversation_id = conv.clone();
                                    let ev = Event::new(
                                        seq,
                                        Some(m.conversation_id.clone()),
                                        Ts(0),
                                        EventBody::MessageCreated { message: m.clone() },
                                    );
                                    let mut b = Batch::default();
                                    // What a customer message writes: the log, its
                                    // folder entries (holding the message) and counts,
                                    // and its client_id in its contact's record.
                                    b.event(&ev, Some(&m.contact_id));
                                    b.conversation_log(conv.as_str(), &mut log, [seq]);
                                    b.reindex_message(
                                        vec![],
                                        hub::store::index::message_entries(&m, false, "web"),
                                        &m,
                                    );
                                    // One contact at a time per writer (the hub
                                    // serialises a contact's sends), 10 messages
                                    // each, as in `tests/scale_restart.rs`. As in
                                    // `Hub::customer_send`, a contact's first send
                                    // reads its client ids from the store (on the
                                    // blocking pool), later ones use the slot the hub
                                    // remembers (`sends.rs`); the cost of contacts
                                    // with thousands of messages is the
                                    // `client_id_lookup` bench.
                                    if i % 10 == 0 {
                                        let contact = format!("{conv}-k{}", i / 10);
                                        let look = store.clone();
                                        let ids = tokio::task::spawn_blocking(move || {
                                            look.client_ids(&contact)
                                        })
                                        .await
                                        .unwrap()
                                        .unwrap();
                                        assert!(ids.fingerprints.is_empty(), "a new contact");
                                        slot = ids.slot;
                                    }
                                    b.client_id(&slot, m.id.as_str(), m.id.as_str());
                                    hub::store::wait(t.send(b)).await.unwrap();
                                    waits.record(asked.elapsed().as_micros() as u64).unwrap();
                                    slot = slot.after(m.id.as_str(), m.id.as_str());
                                }
                                acks.lock().unwrap().add(&waits).unwrap();
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                    start
                        .elapsed()
                        .mul_f64(iters as f64 / (per * writers) as f64)
                })
            })
        });
        let acks = acks.lock().unwrap();
        if acks.is_empty() {
            continue; // filtered out
        }
        println!(
            "{writers} writers: ack p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms ({} requests)",
            acks.value_at_quantile(0.5) as f64 / 1e3,
            acks.value_at_quantile(0.99) as f64 / 1e3,
            acks.value_at_quantile(0.999) as f64 / 1e3,
            acks.len()
        );
    }
    g.finish();
    let (commits, requests, seconds) = hub::metrics::METRICS.commit_totals();
    let commits = commits.max(1) as f64;
    println!(
        "group commit: {commits} commits, {:.1} requests per commit, {:.0} µs per commit",
        requests / commits,
        seconds * 1e6 / commits
    );
    let ([apply, flush, sync], puts, bytes) = hub::metrics::METRICS.commit_phase_totals();
    println!(
        "per commit: apply {:.0} µs, flush {:.0} µs, sync {:.0} µs; per request: {:.1} keys, {:.0} bytes",
        apply * 1e6 / commits,
        flush * 1e6 / commits,
        sync * 1e6 / commits,
        puts as f64 / requests.max(1.0),
        bytes as f64 / requests.max(1.0),
    );
    let [link, page, cleaning] = store.log_bytes_written();
    let per = |b: u64| b as f64 / requests.max(1.0);
    println!(
        "sled's log per request: {:.0} bytes of links, {:.0} of whole pages, {:.0} of cleaning",
        per(link),
        per(page),
        per(cleaning)
    );
}

/// Looking a new client id up among a contact's earlier ones (every send with a
/// `client_id` does), for contacts with few and with very many messages.
fn client_ids(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Bus::new(), Default::default()).unwrap();
    let mut g = c.benchmark_group("client_id_lookup");
    for n in [10usize, 1000, 10_000] {
        let contact = format!("k_contact_with_{n}");
        for i in 0..n {
            let cid = format!("{i:08}-6f1c-4e55-9a43-1d2e3f4a5b6c");
            let ClientIdLookup::New(slot) = store.client_id(&contact, &cid).unwrap() else {
                panic!("{cid} found before it was recorded");
            };
            let mut b = Batch::default();
            b.client_id(&slot, &cid, &format!("c_01a23b706843c32fc023f89bc214.m{i}"));
            rt.block_on(store.commit(b)).unwrap();
        }
        g.bench_function(format!("{n}_earlier"), |b| {
            b.iter(|| store.client_id(&contact, "a-new-client-id").unwrap())
        });
    }
    g.finish();
}

/// An assistant deciding on a customer message (every message on a channel with a
/// published assistant): 10 rules, 3 transfer and 3 spam keywords, every one of them
/// read with case and Unicode spelling folded (`auth::caseless`).
fn bot(c: &mut Criterion) {
    let words = |ws: &[&str]| ws.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    let a = Assistant {
        id: "a1".to_string().into(),
        name: "Bot".into(),
        status: "published".into(),
        channels: vec!["web".into()],
        rules: [
            "livraison",
            "remboursement",
            "horaires",
            "mot de passe",
            "facture",
            "adresse",
            "annuler",
            "retour",
            "garantie",
            "carte cadeau",
        ]
        .iter()
        .map(|m| Rule {
            pattern: m.to_string(),
            reply: format!("About {m}: see our help centre."),
        })
        .collect(),
        transfer_keywords: words(&["humain", "agent", "conseiller"]),
        transfer_reply: Some("A colleague takes over.".into()),
        spam_keywords: words(&["casino", "crypto", "viagra"]),
        default_reply: Some("Could you tell me more?".into()),
    };
    let mut g = c.benchmark_group("bot");
    for (name, text) in [
        (
            "ascii_60",
            "Hello, my parcel has not arrived yet, can you check it?".to_string(),
        ),
        (
            "french_60",
            "Bonjour, où en est ma livraison ? Je l'attends depuis été.".to_string(),
        ),
        ("ascii_4096", "x".repeat(4096)),
    ] {
        g.bench_function(format!("decide_{name}"), |b| b.iter(|| a.decide(&text)));
    }
    g.finish();
}

criterion_group!(benches, domain, commit, client_ids, bot);
criterion_main!(benches);
