//! Socket plumbing shared by every mode: connecting from a chosen 127.x source address,
//! the text tags that carry send times through the hub, and a cheap scanner for the
//! hub's event frames (consoles get every event, so they must not parse all of them).

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::StreamExt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;
pub type WsTx = SplitSink<Ws, Message>;
pub type WsRx = SplitStream<Ws>;

/// The source address for connection number `i` when spreading over `k` loopback
/// addresses (127.0.0.1 ..= 127.0.0.k), or none when the target is not loopback.
pub fn source_ip(target: &SocketAddr, i: usize, k: usize) -> Option<IpAddr> {
    match target.ip() {
        IpAddr::V4(v4) if v4.is_loopback() && k > 1 => {
            let n = (i % k) as u32 + 1;
            Some(IpAddr::V4(Ipv4Addr::from(0x7f00_0000u32 + n)))
        }
        _ => None,
    }
}

/// Opens a WebSocket to `addr` + `path`, bound to `src` when given.
pub async fn connect(
    addr: SocketAddr,
    host: &str,
    path: &str,
    src: Option<IpAddr>,
) -> Result<Ws, String> {
    let sock = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    if let Some(ip) = src {
        sock.bind(SocketAddr::new(ip, 0))
            .map_err(|e| format!("bind {ip}: {e}"))?;
    }
    let stream = tokio::time::timeout(Duration::from_secs(20), sock.connect(addr))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).ok();
    let cfg = WebSocketConfig {
        max_message_size: Some(64 << 20),
        max_frame_size: Some(64 << 20),
        ..Default::default()
    };
    let url = format!("ws://{host}{path}");
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(20),
        tokio_tungstenite::client_async_with_config(url, stream, Some(cfg)),
    )
    .await
    .map_err(|_| "handshake timed out".to_string())?
    .map_err(|e| format!("handshake: {e}"))?;
    Ok(ws)
}

/// Reads frames until a text frame arrives; `None` when the socket ends.
pub async fn next_text(rx: &mut WsRx) -> Option<Result<String, String>> {
    loop {
        match rx.next().await? {
            Ok(Message::Text(t)) => return Some(Ok(t)),
            Ok(Message::Close(c)) => {
                return Some(Err(match c {
                    Some(c) => format!("closed {} {}", u16::from(c.code), c.reason),
                    None => "closed".into(),
                }))
            }
            Ok(_) => continue,
            Err(e) => return Some(Err(format!("socket error: {e}"))),
        }
    }
}

/// The key of a customer message: (customer index, message number).
pub fn key(cust: u32, n: u32) -> u64 {
    ((cust as u64) << 32) | n as u64
}

/// The text of customer `cust`'s message `n`, intended at `us`.
pub fn customer_text(run: &str, cust: u32, n: u32, us: u64, words: &str) -> String {
    format!("lt|{run}|{cust}|{n}|{us}| {words}")
}

/// Reads a customer tag (`lt|run|cust|n|us|`) out of any text: (key, intended µs).
pub fn parse_tag(s: &str, run: &str) -> Option<(u64, u64)> {
    let i = memchr::memmem::find(s.as_bytes(), b"lt|")?;
    let mut it = s[i + 3..].splitn(5, '|');
    if it.next()? != run {
        return None;
    }
    let cust: u32 = it.next()?.parse().ok()?;
    let n: u32 = it.next()?.parse().ok()?;
    let us: u64 = it.next()?.parse().ok()?;
    Some((key(cust, n), us))
}

/// The text of an agent reply issued at `us`.
pub fn reply_text(run: &str, us: u64) -> String {
    format!("rp|{run}|{us}| Thanks for your message, we are on it.")
}

/// Reads a reply tag out of a reply text: the issue time in µs.
pub fn parse_reply_tag(s: &str, run: &str) -> Option<u64> {
    let i = memchr::memmem::find(s.as_bytes(), b"rp|")?;
    let mut it = s[i + 3..].splitn(3, '|');
    if it.next()? != run {
        return None;
    }
    it.next()?.parse().ok()
}

/// The head of an event frame.
pub struct EvHead<'a> {
    pub seq: u64,
    pub kind: &'a str,
    pub conversation_id: Option<&'a str>,
}

/// Scans `{"type":"event","seq":N,"kind":"K",…,"conversation_id":C,"at":…}` without a
/// full parse; falls back to `None` for any other shape.
pub fn scan_event(s: &str) -> Option<EvHead<'_>> {
    let (seq, kind, _) = scan_seq_kind(s)?;
    const KEY: &str = r#""conversation_id":"#;
    static LAST_CONVERSATION: std::sync::OnceLock<memchr::memmem::FinderRev<'static>> =
        std::sync::OnceLock::new();
    let finder = LAST_CONVERSATION.get_or_init(|| memchr::memmem::FinderRev::new(KEY));
    let conversation_id = match finder.rfind(s.as_bytes()) {
        Some(i) => match s[i + KEY.len()..].strip_prefix('"') {
            Some(v) => Some(plain_str(v)?.0),
            None => None,
        },
        None => None,
    };
    Some(EvHead {
        seq,
        kind,
        conversation_id,
    })
}

/// An event frame's seq and kind, and what follows the kind.
fn scan_seq_kind(s: &str) -> Option<(u64, &str, &str)> {
    let rest = s.strip_prefix(r#"{"type":"event","seq":"#)?;
    let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
    let seq: u64 = rest[..digits].parse().ok()?;
    let rest = rest[digits..].strip_prefix(r#","kind":""#)?;
    let (kind, rest) = plain_str(rest)?;
    Some((seq, kind, rest))
}

/// A JSON string's text that starts `s` (just after its opening quote) and what follows
/// its closing quote; `None` when it holds an escape (the caller then parses the frame).
fn plain_str(s: &str) -> Option<(&str, &str)> {
    let end = memchr::memchr2(b'"', b'\\', s.as_bytes())?;
    (s.as_bytes()[end] == b'"').then(|| (&s[..end], &s[end + 1..]))
}

/// What a widget needs of the hub's `ack` frame.
pub struct AckHead<'a> {
    pub client_id: &'a str,
    pub message_id: &'a str,
}

/// Scans `{"type":"ack","client_id":"…","message":{"id":"…",…}}` without a full parse;
/// `None` for any other shape (a null client id, an error).
pub fn scan_ack(s: &str) -> Option<AckHead<'_>> {
    let rest = s.strip_prefix(r#"{"type":"ack","client_id":""#)?;
    let (client_id, rest) = plain_str(rest)?;
    let rest = rest.strip_prefix(r#","message":{"id":""#)?;
    let (message_id, _) = plain_str(rest)?;
    Some(AckHead {
        client_id,
        message_id,
    })
}

/// Scans a widget's `message.created` frame (`{"type":"event","seq":N,"kind":
/// "message.created",…,"data":{"message":{"id":"…",…}}}`): its seq and message id.
pub fn scan_message_created(s: &str) -> Option<(u64, &str)> {
    const KEY: &str = r#""data":{"message":{"id":""#;
    static DATA: std::sync::OnceLock<memchr::memmem::Finder<'static>> = std::sync::OnceLock::new();
    let (seq, kind, rest) = scan_seq_kind(s)?;
    if kind != "message.created" {
        return None;
    }
    let finder = DATA.get_or_init(|| memchr::memmem::Finder::new(KEY));
    let i = finder.find(rest.as_bytes())?;
    Some((seq, plain_str(&rest[i + KEY.len()..])?.0))
}

/// The same head from a parsed frame (the slow path).
pub fn head_of(v: &serde_json::Value) -> Option<(u64, String, Option<String>)> {
    if v["type"] != "event" {
        return None;
    }
    Some((
        v["seq"].as_u64()?,
        v["kind"].as_str()?.to_string(),
        v["conversation_id"].as_str().map(str::to_string),
    ))
}

/// A fast 64-bit hash of `bytes` folded into `h`, eight bytes at a time (a console's
/// stream hash, which every console computes for every event).
pub fn mix(h: u64, bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = h ^ (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        // unwrap: `chunks_exact(8)` yields slices of exactly eight bytes.
        let w = u64::from_le_bytes(c.try_into().unwrap());
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    let mut last = [0u8; 8];
    let tail = chunks.remainder();
    last[..tail.len()].copy_from_slice(tail);
    (h ^ u64::from_le_bytes(last))
        .wrapping_mul(K)
        .rotate_left(29)
}

/// A small, stable 64-bit hash (FNV-1a).
pub fn fnv(h: u64, bytes: &[u8]) -> u64 {
    let mut h = if h == 0 { 0xcbf2_9ce4_8422_2325 } else { h };
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_hub_event_frames() {
        let f = r#"{"type":"event","seq":42,"kind":"message.created","data":{"message":{"id":"m1","conversation_id":"c9","text":"lt|r1|7|3|1700000000000000| hi"}},"conversation_id":"c9","at":"2024-01-01T00:00:00.000Z"}"#;
        let h = scan_event(f).unwrap();
        assert_eq!(h.seq, 42);
        assert_eq!(h.kind, "message.created");
        assert_eq!(h.conversation_id, Some("c9"));
        assert_eq!(parse_tag(f, "r1"), Some((key(7, 3), 1_700_000_000_000_000)));
        assert_eq!(parse_tag(f, "r2"), None);
        let p = r#"{"type":"event","seq":43,"kind":"presence.changed","data":{"agent_id":"a","presence":"online"},"conversation_id":null,"at":"x"}"#;
        let h = scan_event(p).unwrap();
        assert_eq!((h.seq, h.conversation_id), (43, None));
        assert!(scan_event(r#"{"type":"pong"}"#).is_none());
    }

    #[test]
    fn scans_widget_acks_and_created_messages() {
        let a = r#"{"type":"ack","client_id":"r1-7-3","message":{"id":"c9.m3","conversation_id":"c9","contact_id":"k","text":"hi","at":"x","seq":5}}"#;
        let h = scan_ack(a).unwrap();
        assert_eq!((h.client_id, h.message_id), ("r1-7-3", "c9.m3"));
        // Shapes the scanner does not take are left to a full parse.
        assert!(scan_ack(r#"{"type":"ack","client_id":null,"message":{"id":"m"}}"#).is_none());
        assert!(scan_ack(r#"{"type":"ack","client_id":"a\"b","message":{"id":"m"}}"#).is_none());
        assert!(scan_ack(r#"{"type":"error","code":"invalid","client_id":"r1-7-3"}"#).is_none());
        let e = r#"{"type":"event","seq":12,"kind":"message.created","conversation_id":"c9","at":"x","data":{"message":{"id":"c9.m3","conversation_id":"c9","text":"lt|r1|7|3|1| hi"}}}"#;
        assert_eq!(scan_message_created(e), Some((12, "c9.m3")));
        let r = r#"{"type":"event","seq":13,"kind":"reply.created","data":{"reply":{"id":"r"}}}"#;
        assert_eq!(scan_message_created(r), None);
        assert_eq!(
            scan_event(r).map(|h| (h.seq, h.kind)),
            Some((13, "reply.created"))
        );
    }

    #[test]
    fn mix_tells_apart_what_it_hashes() {
        let a = mix(0, b"message.created");
        assert_eq!(a, mix(0, b"message.created"));
        assert_ne!(a, mix(0, b"message.createe"));
        assert_ne!(mix(0, b"ab"), mix(0, b"ab\0"));
        assert_ne!(mix(mix(0, b"a"), b"bc"), mix(mix(0, b"ab"), b"c"));
    }

    #[test]
    fn reply_tags_round_trip() {
        let t = reply_text("abc", 123);
        assert_eq!(parse_reply_tag(&t, "abc"), Some(123));
        assert_eq!(parse_reply_tag(&t, "abd"), None);
    }

    #[test]
    fn source_addresses_spread_over_loopback() {
        let t: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(source_ip(&t, 0, 4), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(source_ip(&t, 5, 4), Some("127.0.0.2".parse().unwrap()));
        assert_eq!(source_ip(&t, 5, 1), None);
    }
}
