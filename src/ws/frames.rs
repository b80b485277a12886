//! The wire frames of the sockets (PROTOCOL §5, §7), and the store replay that turns
//! logged events back into the frames a socket may see.

use crate::bus::{contact_frame, event_frame};
use crate::domain::{ContactId, Event, EventBody};
use crate::store::{Store, StoreError};
use bytes::Bytes;
use serde::Deserialize;
use std::collections::HashMap;

/// A frame from a client, once its `type` is known.
#[derive(Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Hello {
        token: Option<String>,
        #[serde(default, deserialize_with = "since_seq")]
        since: Option<u64>,
        epoch: Option<String>,
        /// An extension: the socket also receives `typing` frames (see [`ClientFrame::Typing`]).
        #[serde(default)]
        typing: Option<bool>,
    },
    Ping,
    Presence {
        status: String,
    },
    Send {
        text: String,
        client_id: Option<String>,
    },
    /// An extension: someone is typing (or stopped). A widget's says nothing else; a
    /// console's names the conversation and whether it writes a `reply` (the default)
    /// or a `comment`. Not an event: no seq, not stored, not replayed.
    Typing {
        active: bool,
        #[serde(default)]
        conversation_id: Option<String>,
        #[serde(default)]
        kind: Option<String>,
    },
}

/// The frame types a client may send.
const CLIENT_TYPES: [&str; 5] = ["hello", "ping", "presence", "send", "typing"];

/// A hello's `since`: a non-negative integer. One past what 64 bits hold (a client
/// may write it as `1e20`) counts as `u64::MAX`, i.e. newer than the head: `reset`
/// (PROTOCOL §7), like any other `since` past the head.
fn since_seq<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(v) = n.as_u64() {
        return Ok(Some(v));
    }
    match n.as_f64() {
        Some(f) if f >= 0.0 && f.fract() == 0.0 => Ok(Some(if f >= u64::MAX as f64 {
            u64::MAX
        } else {
            f as u64
        })),
        _ => Err(D::Error::custom("since must be a non-negative integer")),
    }
}

/// Why a client frame could not be read.
#[derive(Debug, PartialEq)]
pub enum FrameError {
    /// Not JSON (serde's reason), or not an object with a string `type` (`None`).
    NotJson(Option<String>),
    /// A `type` this hub does not know.
    UnknownType(String),
    /// A known `type` other than `send` and `hello` with missing or mistyped fields.
    BadFields(String),
    /// A `hello` with a missing or mistyped field, and its token when that is a string:
    /// a token that is not good (absent, not a string, unknown) closes with 4401 all the
    /// same (§7), before the other fields are faulted.
    BadHello {
        reason: String,
        token: Option<String>,
    },
    /// A `send` with missing or mistyped fields, and its `client_id` when that is a
    /// string (an error in a `send` names it, §5).
    BadSend {
        reason: String,
        client_id: Option<String>,
    },
}

impl FrameError {
    /// A human message for the error frame.
    pub fn message(&self) -> String {
        match self {
            FrameError::NotJson(None) => "frames must be JSON objects with a \"type\"".into(),
            FrameError::NotJson(Some(reason)) => format!("not JSON: {reason}"),
            FrameError::UnknownType(t) => format!("unknown frame type {t:?}"),
            FrameError::BadFields(reason)
            | FrameError::BadSend { reason, .. }
            | FrameError::BadHello { reason, .. } => {
                format!("invalid frame: {reason}")
            }
        }
    }
}

/// Parses a client frame.
pub fn parse(text: &str) -> Result<ClientFrame, FrameError> {
    // A well-formed object parses straight into its type; anything else goes the long
    // way, which tells what is wrong. (Only objects: serde would also read an
    // internally tagged enum from an array.)
    if text.trim_start().starts_with('{') {
        if let Ok(frame) = serde_json::from_str::<ClientFrame>(text) {
            return Ok(frame);
        }
    }
    parse_slow(text)
}

/// Parses a client frame through a `serde_json::Value`, naming what is wrong with it.
fn parse_slow(text: &str) -> Result<ClientFrame, FrameError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| FrameError::NotJson(Some(e.to_string())))?;
    let t = v
        .get("type")
        .and_then(|t| t.as_str())
        .ok_or(FrameError::NotJson(None))?
        .to_string();
    if !CLIENT_TYPES.contains(&t.as_str()) {
        return Err(FrameError::UnknownType(t));
    }
    let string = |key: &str| v.get(key).and_then(|c| c.as_str()).map(str::to_string);
    let (send_client_id, hello_token) = (
        (t == "send").then(|| string("client_id")),
        (t == "hello").then(|| string("token")),
    );
    serde_json::from_value(v).map_err(|e| match (send_client_id, hello_token) {
        (Some(client_id), _) => FrameError::BadSend {
            reason: e.to_string(),
            client_id,
        },
        (_, Some(token)) => FrameError::BadHello {
            reason: e.to_string(),
            token,
        },
        _ => FrameError::BadFields(e.to_string()),
    })
}

/// The `client_id` of a frame that did not parse, found the lenient way (the first
/// `"client_id"` key with a string value), so that the error answering what may be a
/// `send` still names it (PROTOCOL §5): a widget that cut its text inside a UTF-16 pair
/// sends JSON that serde refuses, and must still learn which send failed.
pub fn scan_client_id(text: &str) -> Option<String> {
    const KEY: &str = "\"client_id\"";
    let mut from = 0;
    while let Some(at) = text[from..].find(KEY) {
        let rest = text[from + at + KEY.len()..].trim_start();
        from += at + KEY.len();
        let Some(rest) = rest.strip_prefix(':') else {
            continue;
        };
        let rest = rest.trim_start();
        if !rest.starts_with('"') {
            return None;
        }
        // The string up to its closing quote (an escaped quote does not close it).
        let bytes = rest.as_bytes();
        let mut i = 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => return serde_json::from_str::<String>(&rest[..=i]).ok(),
                _ => i += 1,
            }
        }
        return None;
    }
    None
}

/// Most events a reconnecting socket is replayed; older `since` values get `reset`.
pub const REPLAY_MAX: u64 = 100_000;

/// What one page of a replay holds at most: a socket holds one page in its queue (and
/// the next one read), so that a client that stops reading while it is replayed costs
/// the hub about 2 MiB, not the whole replay (up to [`REPLAY_MAX`] events; PROTOCOL §7
/// bounds a socket's queue at 4,096 frames or 8 MiB).
pub const REPLAY_PAGE_FRAMES: usize = 1_024;
pub const REPLAY_PAGE_BYTES: usize = 1024 * 1024;

/// A page of a replay: frames in seq order, and the seq it ends at (`head` once done;
/// the next page starts after it).
pub type ReplayPage = (Vec<(u64, Bytes)>, u64);

/// The frames of events with `after < seq <= head` that the socket may see, one page
/// of them ([`REPLAY_PAGE_FRAMES`], [`REPLAY_PAGE_BYTES`]): all of them for an agent
/// console (`contact` = None), the contact's visible ones for a widget.
pub fn replay_page(
    store: &Store,
    contact: Option<&ContactId>,
    after: u64,
    head: u64,
) -> Result<ReplayPage, StoreError> {
    if let Some(contact) = contact {
        if let Some(conversations) = store.contact_conversations(contact.as_str())? {
            return replay_contact(store, &conversations, after, head);
        }
    }
    replay_scan(store, contact, after, head)
}

/// Whether a page is full.
fn page_full(frames: &[(u64, Bytes)], bytes: usize) -> bool {
    frames.len() >= REPLAY_PAGE_FRAMES || bytes >= REPLAY_PAGE_BYTES
}

/// A widget's replay from its contact's conversations: reads only their events.
fn replay_contact(
    store: &Store,
    conversations: &[String],
    after: u64,
    head: u64,
) -> Result<ReplayPage, StoreError> {
    let mut seqs = Vec::new();
    for c in conversations {
        seqs.extend(
            store
                .conversation_seqs_after(c, after)?
                .into_iter()
                .filter(|s| *s <= head),
        );
    }
    seqs.sort_unstable();
    let (mut out, mut bytes) = (Vec::new(), 0);
    for slice in seqs.chunks(256) {
        for ev in store.events(slice)? {
            if !ev.body.visible_to_contact() {
                continue;
            }
            // unwrap: events serialise to JSON infallibly, as when they were stored.
            let agent_frame = event_frame(&serde_json::to_vec(&ev).expect("serialisable"));
            if let Some(f) = contact_frame(&ev, &agent_frame) {
                bytes += f.len();
                out.push((ev.seq, f));
            }
        }
        if page_full(&out, bytes) {
            // unwrap: a full page came from a slice with seqs.
            return Ok((out, *slice.last().expect("a slice of seqs")));
        }
    }
    Ok((out, head))
}

/// Replay by reading the hub-wide log: every event for a console; for a widget in a
/// store without a complete contact index, the events of the contact's conversations.
fn replay_scan(
    store: &Store,
    contact: Option<&ContactId>,
    mut after: u64,
    head: u64,
) -> Result<ReplayPage, StoreError> {
    let (mut out, mut bytes) = (Vec::new(), 0);
    let mut owners: HashMap<String, Option<ContactId>> = HashMap::new();
    while after < head {
        if page_full(&out, bytes) {
            return Ok((out, after));
        }
        let chunk = store.events_after(after, 256)?;
        if chunk.is_empty() {
            break;
        }
        for (seq, json) in chunk {
            if seq > head {
                return Ok((out, head));
            }
            after = seq;
            let agent_frame = event_frame(&json);
            let Some(contact) = contact else {
                bytes += agent_frame.len();
                out.push((seq, agent_frame));
                continue;
            };
            let ev: Event =
                serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if !ev.body.visible_to_contact() {
                continue;
            }
            let owner = match (&ev.body, &ev.conversation_id) {
                (EventBody::MessageCreated { message }, _) => Some(message.contact_id.clone()),
                (_, Some(c)) => {
                    if !owners.contains_key(c.as_str()) {
                        let conv = store.conversation(c.as_str())?;
                        owners.insert(c.to_string(), conv.map(|c| c.contact_id));
                    }
                    owners.get(c.as_str()).cloned().flatten()
                }
                _ => None,
            };
            if owner.as_ref() == Some(contact) {
                if let Some(f) = contact_frame(&ev, &agent_frame) {
                    bytes += f.len();
                    out.push((seq, f));
                }
            }
        }
    }
    Ok((out, head))
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(|f| serde_json::json!(f)),
            ".{0,20}".prop_map(serde_json::Value::from),
            prop_oneof![
                Just("hello"),
                Just("ping"),
                Just("send"),
                Just("presence"),
                Just("typing")
            ]
            .prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("type".to_string()),
                        Just("token".to_string()),
                        Just("since".to_string()),
                        Just("text".to_string()),
                        Just("status".to_string()),
                        Just("active".to_string()),
                        Just("typing".to_string()),
                        ".{0,8}"
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 5000, failure_persistence: None, ..ProptestConfig::default() })]

        /// Arbitrary text never panics the frame parser.
        #[test]
        fn any_text_parses_or_errors(s in ".{0,200}") {
            let _ = parse(&s);
        }

        /// JSON-shaped frames with random fields and types never panic, and a frame
        /// whose type is unknown is reported as such.
        #[test]
        fn any_json_frame_parses_or_errors(v in json_value()) {
            let text = v.to_string();
            match parse(&text) {
                Ok(_) => prop_assert!(v.get("type").and_then(|t| t.as_str()).is_some()),
                Err(FrameError::UnknownType(t)) => prop_assert!(!CLIENT_TYPES.contains(&t.as_str())),
                Err(_) => {}
            }
        }

        /// The direct parse gives what the parse through a `Value` gives: the same
        /// frame, or the same kind of error (its text may differ).
        #[test]
        fn fast_path_agrees_with_the_value_path(v in json_value(), pad in " {0,2}") {
            let text = format!("{pad}{v}");
            match (parse(&text), parse_slow(&text)) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(FrameError::BadFields(_)), Err(FrameError::BadFields(_))) => {}
                (Err(FrameError::BadSend { client_id: a, .. }), Err(FrameError::BadSend { client_id: b, .. })) => prop_assert_eq!(a, b),
                (Err(FrameError::BadHello { token: a, .. }), Err(FrameError::BadHello { token: b, .. })) => prop_assert_eq!(a, b),
                (a, b) => prop_assert_eq!(a, b),
            }
        }
    }

    #[test]
    fn frames_read_as_documented() {
        assert_eq!(
            parse(r#"{"type":"send","text":"hi","client_id":"c1"}"#),
            Ok(ClientFrame::Send {
                text: "hi".into(),
                client_id: Some("c1".into())
            })
        );
        assert_eq!(parse(r#" {"type":"ping"}"#), Ok(ClientFrame::Ping));
        assert_eq!(
            parse(r#"{"type":"typing","active":true,"conversation_id":"c1","kind":"comment"}"#),
            Ok(ClientFrame::Typing {
                active: true,
                conversation_id: Some("c1".into()),
                kind: Some("comment".into())
            })
        );
        assert_eq!(
            parse(r#"{"type":"typing","active":false}"#),
            Ok(ClientFrame::Typing {
                active: false,
                conversation_id: None,
                kind: None
            })
        );
        assert!(matches!(
            parse(r#"{"type":"typing","active":"yes"}"#),
            Err(FrameError::BadFields(_))
        ));
        assert!(matches!(
            parse(r#"{"type":"hello","token":"t","typing":true}"#),
            Ok(ClientFrame::Hello {
                typing: Some(true),
                ..
            })
        ));
        // An array is not a frame, even one serde could read as a tagged enum.
        assert_eq!(parse(r#"["ping"]"#), Err(FrameError::NotJson(None)));
        assert_eq!(
            parse(r#"{"type":"nope"}"#),
            Err(FrameError::UnknownType("nope".into()))
        );
        assert!(matches!(
            parse(r#"{"type":"send"}"#),
            Err(FrameError::BadSend {
                client_id: None,
                ..
            })
        ));
        assert!(matches!(
            parse(r#"{"type":"send","text":5,"client_id":"c2"}"#),
            Err(FrameError::BadSend { client_id: Some(c), .. }) if c == "c2"
        ));
        // A token that is not a string: no token (4401, whatever else is wrong).
        assert!(matches!(
            parse(r#"{"type":"hello","token":5}"#),
            Err(FrameError::BadHello { token: None, .. })
        ));
        // Another field mistyped: the token is kept, to be checked first.
        assert!(matches!(
            parse(r#"{"type":"hello","token":"t","since":-1}"#),
            Err(FrameError::BadHello { token: Some(t), .. }) if t == "t"
        ));
        assert!(matches!(
            parse(r#"{"type":"hello","epoch":5}"#),
            Err(FrameError::BadHello { token: None, .. })
        ));
        // A repeated key: the last one counts, as it did when every frame went through
        // a `Value`.
        assert_eq!(
            parse(r#"{"type":"send","text":"a","text":"b"}"#),
            Ok(ClientFrame::Send {
                text: "b".into(),
                client_id: None
            })
        );
    }
}
