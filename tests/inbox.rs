//! PROTOCOL §6.3: inbox folders, their counts as each caller sees them, ordering by
//! `seq` (highest first), `limit` and `before`.

mod common;

use common::{act_ok, id, sorted, Hub, Socket, ADMIN};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const FOLDERS: [&str; 8] = [
    "pending",
    "mine",
    "on_hold",
    "help_requests",
    "answered",
    "archived",
    "spam",
    "all",
];

fn inbox(hub: &Hub, token: &str, query: &str) -> Value {
    let (s, b) = hub.get(&format!("/api/inbox?{query}"), token);
    assert_eq!(s, 200, "{query}: {b}");
    b
}

/// The ids of an inbox answer's items, in the order given.
fn item_ids(b: &Value) -> Vec<String> {
    b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

/// The ids of a folder's items, in the order given.
fn folder(hub: &Hub, token: &str, f: &str) -> Vec<String> {
    let b = inbox(hub, token, &format!("folder={f}&limit=500"));
    let items = b["items"].as_array().unwrap();
    let seqs: Vec<u64> = items.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "{f}: seq highest first: {seqs:?}"
    );
    item_ids(&b)
}

fn counts(hub: &Hub, token: &str) -> BTreeMap<String, u64> {
    let b = inbox(hub, token, "folder=all");
    let c = b["counts"]
        .as_object()
        .unwrap_or_else(|| panic!("no counts: {b}"));
    for f in FOLDERS {
        assert!(c.contains_key(f), "counts lack {f}: {b}");
    }
    c.iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

/// One message in each status, spread over several conversations, for three agents.
struct Floor {
    hub: Hub,
    alice: (String, String),
    bob: (String, String),
    sue: (String, String),
    pending: String,
    alice_assigned: String,
    bob_assigned: String,
    alice_hold: String,
    bob_hold: String,
    alice_asked: String,
    bob_asked: String,
    answered: String,
    archived: String,
    spam: Vec<String>,
}

fn floor() -> Floor {
    let hub = Hub::start();
    let alice = hub.agent("Alice", "agent");
    let bob = hub.agent("Bob", "agent");
    let sue = hub.agent("Sue", "supervisor");

    let (_, a) = hub.contact();
    let pending = id(&hub.say(&a, "p"));
    let alice_assigned = id(&hub.say(&a, "a1"));
    let bob_assigned = id(&hub.say(&a, "a2"));
    let alice_hold = id(&hub.say(&a, "h1"));
    let bob_hold = id(&hub.say(&a, "h2"));
    let alice_asked = id(&hub.say(&a, "q1"));
    let bob_asked = id(&hub.say(&a, "q2"));
    act_ok(&hub, &alice.1, &alice_assigned, "assign", json!({}));
    act_ok(&hub, &bob.1, &bob_assigned, "assign", json!({}));
    act_ok(&hub, &alice.1, &alice_hold, "assign", json!({}));
    act_ok(&hub, &alice.1, &alice_hold, "hold", json!({}));
    act_ok(&hub, &bob.1, &bob_hold, "assign", json!({}));
    act_ok(
        &hub,
        &bob.1,
        &bob_hold,
        "hold",
        json!({"until": "2099-01-01T00:00:00.000Z"}),
    );
    act_ok(&hub, &alice.1, &alice_asked, "assign", json!({}));
    act_ok(
        &hub,
        &alice.1,
        &alice_asked,
        "request-help",
        json!({"question": "?"}),
    );
    act_ok(&hub, &bob.1, &bob_asked, "assign", json!({}));
    act_ok(
        &hub,
        &bob.1,
        &bob_asked,
        "request-help",
        json!({"question": "?"}),
    );

    let (_, b) = hub.contact();
    let m = hub.say(&b, "answer me");
    let (s, r) = hub.post(
        &format!(
            "/api/conversations/{}/replies",
            m["conversation_id"].as_str().unwrap()
        ),
        &sue.1,
        json!({"text": "done"}),
    );
    assert_eq!(s, 201, "{r}");
    let answered = id(&m);

    let (_, c) = hub.contact();
    let archived = id(&hub.say(&c, "archive me"));
    act_ok(&hub, &alice.1, &archived, "assign", json!({}));
    act_ok(&hub, &alice.1, &archived, "archive", json!({}));

    let (_, d) = hub.contact();
    let s1 = hub.say(&d, "buy cheap pills");
    let s2 = hub.say(&d, "really cheap");
    let (s, r) = hub.post(
        &format!(
            "/api/conversations/{}/spam",
            s1["conversation_id"].as_str().unwrap()
        ),
        &sue.1,
        json!({"spam": true}),
    );
    assert_eq!(s, 200, "{r}");

    Floor {
        hub,
        alice,
        bob,
        sue,
        pending,
        alice_assigned,
        bob_assigned,
        alice_hold,
        bob_hold,
        alice_asked,
        bob_asked,
        answered,
        archived,
        spam: vec![id(&s1), id(&s2)],
    }
}

#[test]
fn shared_folders_hold_the_same_messages_for_everyone() {
    let f = floor();
    for token in [&f.alice.1, &f.bob.1, &f.sue.1, &ADMIN.to_string()] {
        assert_eq!(
            folder(&f.hub, token, "pending"),
            vec![f.pending.clone()],
            "spam is left out of pending"
        );
        assert_eq!(folder(&f.hub, token, "answered"), vec![f.answered.clone()]);
        assert_eq!(folder(&f.hub, token, "archived"), vec![f.archived.clone()]);
        assert_eq!(
            sorted(folder(&f.hub, token, "spam")),
            sorted(f.spam.clone())
        );
        let all = folder(&f.hub, token, "all");
        assert_eq!(all.len(), 11, "every customer message: {all:?}");
        let mut expect = vec![
            f.pending.clone(),
            f.alice_assigned.clone(),
            f.bob_assigned.clone(),
            f.alice_hold.clone(),
            f.bob_hold.clone(),
            f.alice_asked.clone(),
            f.bob_asked.clone(),
            f.answered.clone(),
            f.archived.clone(),
        ];
        expect.extend(f.spam.clone());
        assert_eq!(sorted(all), sorted(expect));
    }
}

#[test]
fn mine_and_on_hold_are_per_agent() {
    let f = floor();
    assert_eq!(
        folder(&f.hub, &f.alice.1, "mine"),
        vec![f.alice_assigned.clone()]
    );
    assert_eq!(
        folder(&f.hub, &f.bob.1, "mine"),
        vec![f.bob_assigned.clone()]
    );
    assert_eq!(folder(&f.hub, &f.sue.1, "mine"), Vec::<String>::new());
    assert_eq!(
        folder(&f.hub, &f.alice.1, "on_hold"),
        vec![f.alice_hold.clone()]
    );
    assert_eq!(
        folder(&f.hub, &f.bob.1, "on_hold"),
        vec![f.bob_hold.clone()]
    );
    assert_eq!(folder(&f.hub, &f.sue.1, "on_hold"), Vec::<String>::new());
    assert_eq!(folder(&f.hub, ADMIN, "on_hold"), Vec::<String>::new());
}

#[test]
fn help_requests_supervisors_see_all_agents_see_their_own() {
    let f = floor();
    assert_eq!(
        folder(&f.hub, &f.alice.1, "help_requests"),
        vec![f.alice_asked.clone()]
    );
    assert_eq!(
        folder(&f.hub, &f.bob.1, "help_requests"),
        vec![f.bob_asked.clone()]
    );
    let both = sorted(vec![f.alice_asked.clone(), f.bob_asked.clone()]);
    assert_eq!(sorted(folder(&f.hub, &f.sue.1, "help_requests")), both);
    assert_eq!(sorted(folder(&f.hub, ADMIN, "help_requests")), both);
}

#[test]
fn counts_have_every_folder_as_the_caller_sees_it() {
    let f = floor();
    let shared = |c: &BTreeMap<String, u64>| {
        assert_eq!(c["pending"], 1, "{c:?}");
        assert_eq!(c["answered"], 1, "{c:?}");
        assert_eq!(c["archived"], 1, "{c:?}");
        assert_eq!(c["spam"], 2, "{c:?}");
        assert_eq!(c["all"], 11, "{c:?}");
    };
    let c = counts(&f.hub, &f.alice.1);
    shared(&c);
    assert_eq!(
        (c["mine"], c["on_hold"], c["help_requests"]),
        (1, 1, 1),
        "alice {c:?}"
    );
    let c = counts(&f.hub, &f.bob.1);
    shared(&c);
    assert_eq!(
        (c["mine"], c["on_hold"], c["help_requests"]),
        (1, 1, 1),
        "bob {c:?}"
    );
    let c = counts(&f.hub, &f.sue.1);
    shared(&c);
    assert_eq!(
        (c["mine"], c["on_hold"], c["help_requests"]),
        (0, 0, 2),
        "sue {c:?}"
    );
    // The counts agree with the folders themselves, whichever folder is asked for.
    for fo in FOLDERS {
        let b = inbox(&f.hub, &f.sue.1, &format!("folder={fo}&limit=500"));
        assert_eq!(b["counts"]["all"], 11);
        assert_eq!(
            b["items"].as_array().unwrap().len() as u64,
            b["counts"][fo].as_u64().unwrap(),
            "{fo}: {b}"
        );
    }
}

#[test]
fn folders_follow_the_message_as_it_moves() {
    let f = floor();
    let hub = &f.hub;
    // Sue takes Alice's help request: it leaves help_requests and lands in Sue's mine.
    act_ok(hub, &f.sue.1, &f.alice_asked, "assign", json!({}));
    assert_eq!(
        folder(hub, &f.alice.1, "help_requests"),
        Vec::<String>::new()
    );
    assert_eq!(folder(hub, &f.sue.1, "mine"), vec![f.alice_asked.clone()]);
    // Answering with Alice offline sends it back to pending.
    act_ok(
        hub,
        &f.sue.1,
        &f.alice_asked,
        "answer-help",
        json!({"answer": "ok"}),
    );
    assert_eq!(folder(hub, &f.sue.1, "mine"), Vec::<String>::new());
    assert!(folder(hub, &f.bob.1, "pending").contains(&f.alice_asked));
    // Alice's hold ends early by unassigning.
    act_ok(hub, &f.alice.1, &f.alice_hold, "unassign", json!({}));
    assert_eq!(folder(hub, &f.alice.1, "on_hold"), Vec::<String>::new());
    // Un-spamming moves the spam messages to pending.
    let (_, m) = hub.get("/api/inbox?folder=spam", ADMIN);
    let conv = m["items"][0]["conversation_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = hub.post(
        &format!("/api/conversations/{conv}/spam"),
        &f.sue.1,
        json!({"spam": false}),
    );
    assert_eq!(s, 200);
    assert_eq!(folder(hub, ADMIN, "spam"), Vec::<String>::new());
    let pending = folder(hub, ADMIN, "pending");
    for s in &f.spam {
        assert!(pending.contains(s), "{s} back in pending: {pending:?}");
    }
    let c = counts(hub, &f.alice.1);
    assert_eq!(
        (c["pending"], c["spam"], c["on_hold"], c["all"]),
        (5, 0, 0, 11),
        "{c:?}"
    );
}

#[test]
fn a_help_answered_message_is_in_the_requesters_mine() {
    let hub = Hub::start();
    let alice = hub.agent("Alice", "agent");
    let sue = hub.agent("Sue", "supervisor");
    let _console: Socket = {
        let (sock, _) = hub.console(&alice.1, None);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !hub.get("/api/agents", ADMIN).1["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == alice.0.as_str() && a["presence"] == "online")
        {
            assert!(Instant::now() < deadline, "alice never online");
            std::thread::sleep(Duration::from_millis(20));
        }
        sock
    };
    let (_, c) = hub.contact();
    let m = id(&hub.say(&c, "hi"));
    act_ok(&hub, &alice.1, &m, "assign", json!({}));
    act_ok(&hub, &alice.1, &m, "request-help", json!({"question": "?"}));
    act_ok(&hub, &sue.1, &m, "assign", json!({}));
    let got = act_ok(&hub, &sue.1, &m, "answer-help", json!({"answer": "!"}));
    assert_eq!(got["status"], "help_answered");
    assert_eq!(folder(&hub, &alice.1, "mine"), vec![m.clone()]);
    assert_eq!(folder(&hub, &sue.1, "mine"), Vec::<String>::new());
    assert_eq!(counts(&hub, &alice.1)["mine"], 1);
}

#[test]
fn items_are_ordered_by_their_latest_seq_not_by_creation() {
    let hub = Hub::start();
    let (_, alice) = hub.agent("Alice", "agent");
    let (_, c) = hub.contact();
    let m1 = id(&hub.say(&c, "1"));
    let m2 = id(&hub.say(&c, "2"));
    let m3 = id(&hub.say(&c, "3"));
    assert_eq!(
        folder(&hub, &alice, "pending"),
        vec![m3.clone(), m2.clone(), m1.clone()]
    );
    // Touching m1 gives it the newest seq.
    act_ok(&hub, &alice, &m1, "assign", json!({}));
    let back = act_ok(&hub, &alice, &m1, "unassign", json!({}));
    let pending = inbox(&hub, &alice, "folder=pending");
    assert_eq!(pending["items"][0]["id"], m1.as_str());
    assert_eq!(
        pending["items"][0]["seq"], back["seq"],
        "the item is the message as it now stands"
    );
    assert_eq!(
        folder(&hub, &alice, "pending"),
        vec![m1.clone(), m3.clone(), m2.clone()]
    );
    assert_eq!(folder(&hub, &alice, "all"), vec![m1, m3, m2]);
}

#[test]
fn limit_defaults_to_50_and_before_pages_through_every_message_once() {
    let hub = Hub::start();
    let (_, alice) = hub.agent("Alice", "agent");
    let (_, c) = hub.contact();
    let mut sent: Vec<String> = (0..57)
        .map(|i| id(&hub.say(&c, &format!("msg {i}"))))
        .collect();

    let b = inbox(&hub, &alice, "folder=pending");
    let items = b["items"].as_array().unwrap();
    assert_eq!(items.len(), 50, "default limit");
    assert_eq!(b["counts"]["pending"], 57, "counts are not limited");
    assert_eq!(items[0]["id"], sent[56].as_str(), "newest first");

    // Page with `before` = the last seq seen.
    let mut seen: Vec<String> = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let q = match before {
            Some(s) => format!("folder=pending&limit=10&before={s}"),
            None => "folder=pending&limit=10".to_string(),
        };
        let b = inbox(&hub, &alice, &q);
        let items = b["items"].as_array().unwrap();
        assert!(items.len() <= 10);
        if items.is_empty() {
            break;
        }
        for m in items {
            let s = m["seq"].as_u64().unwrap();
            if let Some(b) = before {
                assert!(s < b, "before={b} keeps seq < {b}, got {s}");
            }
            seen.push(id(m));
        }
        before = Some(items.last().unwrap()["seq"].as_u64().unwrap());
    }
    assert_eq!(seen.len(), 57, "every message exactly once");
    sent.reverse();
    assert_eq!(seen, sent);
}

/// An extension: `order=oldest` lists a folder first come, first served, and `after`
/// pages it.
#[test]
fn order_oldest_lists_first_come_first_and_after_pages_through_every_message_once() {
    let hub = Hub::start();
    let (_, alice) = hub.agent("Alice", "agent");
    let (_, c) = hub.contact();
    let sent: Vec<String> = (0..23)
        .map(|i| id(&hub.say(&c, &format!("msg {i}"))))
        .collect();
    let mut seen: Vec<String> = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let q = match after {
            Some(s) => format!("folder=pending&order=oldest&limit=10&after={s}"),
            None => "folder=pending&order=oldest&limit=10".to_string(),
        };
        let b = inbox(&hub, &alice, &q);
        assert_eq!(b["counts"]["pending"], 23, "{q}");
        let items = b["items"].as_array().unwrap();
        assert!(items.len() <= 10);
        let Some(last) = items.last() else { break };
        for m in items {
            let s = m["seq"].as_u64().unwrap();
            assert!(
                after.is_none_or(|a| s > a),
                "after={after:?} keeps seq > it, got {s}"
            );
            seen.push(id(m));
        }
        after = Some(last["seq"].as_u64().unwrap());
    }
    assert_eq!(seen, sent, "every message once, oldest first");
    // `order=newest` is the default order; the two cursors do not mix.
    assert_eq!(
        item_ids(&inbox(&hub, &alice, "folder=pending&order=newest&limit=3")),
        item_ids(&inbox(&hub, &alice, "folder=pending&limit=3"))
    );
    for bad in [
        "folder=pending&order=random",
        "folder=pending&order=oldest&before=5",
        "folder=pending&after=5",
        "folder=pending&order=oldest&after=x",
    ] {
        let (s, b) = hub.get(&format!("/api/inbox?{bad}"), &alice);
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (400, Some("invalid")),
            "{bad}: {b}"
        );
    }
}

#[test]
fn limit_is_honoured_and_a_huge_limit_is_accepted() {
    let hub = Hub::start();
    let (_, alice) = hub.agent("Alice", "agent");
    let (_, c) = hub.contact();
    let ids: Vec<String> = (0..3).map(|i| id(&hub.say(&c, &format!("m{i}")))).collect();
    let b = inbox(&hub, &alice, "folder=all&limit=2");
    assert_eq!(item_ids(&b), vec![ids[2].clone(), ids[1].clone()]);
    assert_eq!(b["counts"]["all"], 3);
    let b = inbox(&hub, &alice, "folder=all&limit=100000");
    assert_eq!(
        b["items"].as_array().unwrap().len(),
        3,
        "a limit over 500 counts as 500"
    );
    let b = inbox(&hub, &alice, "folder=all&limit=1");
    assert_eq!(b["items"].as_array().unwrap().len(), 1);
    // Past what 64 bits hold, a limit still counts as 500 and `before` keeps everything.
    let huge = "18446744073709551616000";
    let b = inbox(&hub, &alice, &format!("folder=all&limit={huge}"));
    assert_eq!(b["items"].as_array().unwrap().len(), 3);
    let b = inbox(&hub, &alice, &format!("folder=all&before={huge}&limit=2"));
    assert_eq!(item_ids(&b), vec![ids[2].clone(), ids[1].clone()]);
}

#[test]
fn a_limit_over_500_returns_500() {
    let hub = Hub::start();
    let (_, alice) = hub.agent("Alice", "agent");
    // 4 contacts in parallel to fill the inbox faster.
    let url = hub.url.clone();
    let tokens: Vec<String> = (0..4).map(|_| hub.contact().1).collect();
    let threads: Vec<_> = tokens
        .into_iter()
        .map(|t| {
            let url = url.clone();
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(30))
                    .build();
                for i in 0..126 {
                    let r = agent
                        .post(&format!("{url}/api/widget/messages"))
                        .set("Authorization", &format!("Bearer {t}"))
                        .send_json(json!({"text": format!("bulk {i}")}))
                        .expect("send");
                    assert_eq!(r.status(), 201);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let b = inbox(&hub, &alice, "folder=all&limit=100000");
    assert_eq!(b["counts"]["all"], 504);
    assert_eq!(b["items"].as_array().unwrap().len(), 500);
    let b = inbox(&hub, &alice, "folder=all&limit=501");
    assert_eq!(b["items"].as_array().unwrap().len(), 500);
}

#[test]
fn an_unknown_folder_or_a_bad_limit_is_a_bad_request() {
    let hub = Hub::start();
    let (_, alice) = hub.agent("Alice", "agent");
    for q in [
        "folder=everything",
        "folder=MINE",
        "folder=all&limit=ten",
        "folder=all&limit=",
        "folder=all&limit=1e3",
        "folder=all&before=-1",
        "folder=all&before=12x",
    ] {
        let (s, b) = hub.get(&format!("/api/inbox?{q}"), &alice);
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (400, Some("invalid")),
            "{q}: {b}"
        );
    }
}

#[test]
fn the_inbox_is_for_agents_only() {
    let hub = Hub::start();
    let (s, b) = hub.call("GET", "/api/inbox?folder=all", None, None);
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{b}"
    );
    let (_, c) = hub.contact();
    let (s, b) = hub.get("/api/inbox?folder=everything", &c);
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "403 before the bad folder: {b}"
    );
}

#[test]
fn the_spam_folder_holds_every_customer_message_of_a_spam_conversation_whatever_its_status() {
    let hub = Hub::start();
    let (_, alice) = hub.agent("Alice", "agent");
    let (_, c) = hub.contact();
    let answered = hub.say(&c, "one");
    let conv = answered["conversation_id"].as_str().unwrap().to_string();
    let (s, _) = hub.post(
        &format!("/api/conversations/{conv}/replies"),
        &alice,
        json!({"text": "hi"}),
    );
    assert_eq!(s, 201);
    let mine = id(&hub.say(&c, "two"));
    act_ok(&hub, &alice, &mine, "assign", json!({}));
    let pending = id(&hub.say(&c, "three"));
    let (s, _) = hub.post(
        &format!("/api/conversations/{conv}/spam"),
        &alice,
        json!({"spam": true}),
    );
    assert_eq!(s, 200);
    assert_eq!(
        sorted(folder(&hub, &alice, "spam")),
        sorted(vec![id(&answered), mine.clone(), pending.clone()])
    );
    assert_eq!(folder(&hub, &alice, "pending"), Vec::<String>::new());
    assert_eq!(folder(&hub, &alice, "all").len(), 3, "all keeps spam");
    // Setting spam to the value it has changes nothing.
    let (s, _) = hub.post(
        &format!("/api/conversations/{conv}/spam"),
        &alice,
        json!({"spam": true}),
    );
    assert_eq!(s, 200);
    assert_eq!(counts(&hub, &alice)["spam"], 3);
}

#[test]
fn bot_handled_messages_are_in_all_and_answered() {
    let hub = Hub::start();
    let (_, alice) = hub.agent("Alice", "agent");
    let (s, a) = hub.post(
        "/api/assistants",
        ADMIN,
        json!({"name": "Faq", "rules": [{"match": "hours", "reply": "9 to 5"}], "transfer_keywords": ["human"]}),
    );
    assert_eq!(s, 201, "{a}");
    let (s, b) = hub.post(
        &format!("/api/assistants/{}/publish", a["id"].as_str().unwrap()),
        ADMIN,
        json!({"channels": ["web"]}),
    );
    assert_eq!(s, 200, "{b}");
    let (_, c) = hub.contact();
    let m = id(&hub.say(&c, "what are your hours?"));
    let full = hub.message(&alice, &m);
    assert_eq!(full["status"], "answered", "{full}");
    assert_eq!(
        full["assignee"],
        format!("bot:{}", a["id"].as_str().unwrap())
    );
    assert_eq!(folder(&hub, &alice, "all"), vec![m.clone()]);
    assert_eq!(folder(&hub, &alice, "answered"), vec![m]);
    assert_eq!(counts(&hub, &alice)["pending"], 0);
}

#[test]
fn a_page_and_its_counts_agree_while_others_write() {
    // Each answer is one state of the store: with fewer items than the limit, a folder
    // holds exactly its page, even while messages arrive and move between folders.
    let hub = Hub::start();
    let (_, rita) = hub.agent("Rita", "agent");
    let contacts: Vec<String> = (0..4).map(|_| hub.contact().1).collect();
    let writing = std::sync::atomic::AtomicBool::new(true);
    let (reads, torn) = std::thread::scope(|sc| {
        let writers: Vec<_> = contacts
            .iter()
            .map(|k| {
                let (hub, rita) = (&hub, &rita);
                sc.spawn(move || {
                    for n in 0..90 {
                        let m = hub.say(k, &format!("message {n}"));
                        if n % 3 == 0 {
                            act_ok(hub, rita, &id(&m), "assign", json!({}));
                        }
                    }
                })
            })
            .collect();
        let reader = sc.spawn(|| {
            let (mut reads, mut torn) = (0, Vec::new());
            while writing.load(std::sync::atomic::Ordering::Relaxed) {
                for f in ["all", "pending", "mine"] {
                    let b = inbox(&hub, &rita, &format!("folder={f}&limit=500"));
                    let items = b["items"].as_array().unwrap().len() as u64;
                    let count = b["counts"][f].as_u64().unwrap();
                    if items != count {
                        torn.push(format!("{f}: {items} items, count {count}"));
                    }
                    reads += 1;
                }
            }
            (reads, torn)
        });
        for w in writers {
            w.join().unwrap();
        }
        writing.store(false, std::sync::atomic::Ordering::Relaxed);
        reader.join().unwrap()
    });
    eprintln!("{reads} reads beside the writers");
    assert!(
        reads >= 30,
        "the reader ran beside the writers: {reads} reads"
    );
    assert!(
        torn.is_empty(),
        "{} of {reads} answers torn: {torn:?}",
        torn.len()
    );
    let c = counts(&hub, &rita);
    assert_eq!((c["all"], c["mine"], c["pending"]), (360, 120, 240));
}

/// An extension: `GET /api/agents?workload=true` says who has what, from the folders'
/// counts: each agent's Mine (assigned or help answered), On hold, and open help requests,
/// and the conversations of its Mine and On hold messages (what a capacity counts).
#[test]
fn the_team_list_tells_who_has_what_when_asked() {
    let hub = Hub::start();
    let (ann_id, ann) = hub.agent("Ann", "agent");
    let (bob_id, bob) = hub.agent("Bob", "agent");
    let (sue_id, sue) = hub.agent("Sue", "supervisor");
    let contacts: Vec<String> = (0..4).map(|_| hub.contact().1).collect();
    let msgs: Vec<String> = contacts
        .iter()
        .enumerate()
        .map(|(i, k)| id(&hub.say(k, &format!("question {i}"))))
        .collect();
    act_ok(&hub, &ann, &msgs[0], "assign", json!({}));
    // a second message of the same conversation: one more assigned, no more conversations
    let again = id(&hub.say(&contacts[0], "question 0, again"));
    act_ok(&hub, &ann, &again, "assign", json!({}));
    act_ok(&hub, &ann, &msgs[1], "assign", json!({}));
    act_ok(&hub, &ann, &msgs[1], "hold", json!({"for_seconds": 600}));
    act_ok(&hub, &bob, &msgs[2], "assign", json!({}));
    act_ok(
        &hub,
        &bob,
        &msgs[2],
        "request-help",
        json!({"question": "refund?"}),
    );
    act_ok(&hub, &sue, &msgs[3], "assign", json!({"agent_id": bob_id}));

    let (s, b) = hub.get("/api/agents?workload=true", &ann);
    assert_eq!(s, 200, "{b}");
    let load = |who: &str| {
        b["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == who)
            .map(|a| a["workload"].clone())
            .unwrap()
    };
    assert_eq!(
        load(&ann_id),
        json!({"assigned": 2, "on_hold": 1, "help_requested": 0, "conversations": 2})
    );
    assert_eq!(
        load(&bob_id),
        json!({"assigned": 1, "on_hold": 0, "help_requested": 1, "conversations": 1})
    );
    assert_eq!(
        load(&sue_id),
        json!({"assigned": 0, "on_hold": 0, "help_requested": 0, "conversations": 0})
    );
    // a help request answered is no longer open; unasked, §6's list is as it was
    act_ok(&hub, &sue, &msgs[2], "assign", json!({}));
    act_ok(
        &hub,
        &sue,
        &msgs[2],
        "answer-help",
        json!({"answer": "yes"}),
    );
    let (_, b) = hub.get("/api/agents?workload=1", ADMIN);
    let bob_load = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == bob_id.as_str())
        .unwrap()["workload"]
        .clone();
    // (Bob has no console open: the answered request went to Pending, §6.1)
    assert_eq!(
        bob_load,
        json!({"assigned": 1, "on_hold": 0, "help_requested": 0, "conversations": 1})
    );
    let (_, plain) = hub.get("/api/agents", ADMIN);
    assert!(plain["items"][0].get("workload").is_none(), "{plain}");
    let (s, b) = hub.get("/api/agents?workload=lots", ADMIN);
    assert_eq!((s, b["error"]["code"].as_str()), (400, Some("invalid")));
}

/// An extension: `conversations=true` adds the items' conversations, so that a row can say
/// its session ended; §6.3's answer is unchanged without it.
#[test]
fn an_inbox_page_brings_its_conversations_when_asked() {
    let hub = Hub::start();
    let (_, ann) = hub.agent("Ann", "agent");
    let (_, k1) = hub.contact();
    let (_, k2) = hub.contact();
    let m1 = hub.say(&k1, "first");
    let m2 = hub.say(&k2, "second");
    let (c1, c2) = (
        m1["conversation_id"].as_str().unwrap().to_string(),
        m2["conversation_id"].as_str().unwrap().to_string(),
    );
    let (s, b) = hub.post(
        &format!("/api/conversations/{c1}/end-session"),
        &ann,
        json!({}),
    );
    assert_eq!(s, 200, "{b}");
    let plain = inbox(&hub, &ann, "folder=pending");
    assert!(plain.get("conversations").is_none(), "{plain}");
    let b = inbox(&hub, &ann, "folder=pending&conversations=true");
    assert_eq!(b["items"], plain["items"]);
    let convs = b["conversations"].as_object().unwrap();
    assert_eq!(convs.len(), 2, "{b}");
    assert_eq!(convs[&c1]["session"], "ended");
    assert_eq!(convs[&c2]["session"], "active");
    assert_eq!(convs[&c2]["id"], c2.as_str());
    let (s, b) = hub.get("/api/inbox?conversations=perhaps", &ann);
    assert_eq!((s, b["error"]["code"].as_str()), (400, Some("invalid")));
}
