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
    let i = s.find("lt|")?;
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
    let i = s.find("rp|")?;
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
    let rest = s.strip_prefix(r#"{"type":"event","seq":"#)?;
    let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
    let seq: u64 = rest[..digits].parse().ok()?;
    let rest = rest[digits..].strip_prefix(r#","kind":""#)?;
    let end = rest.find('"')?;
    let kind = &rest[..end];
    let conversation_id = match s.rfind(r#""conversation_id":"#) {
        Some(i) => {
            let v = &s[i + r#""conversation_id":"#.len()..];
            match v.strip_prefix('"') {
                Some(v) => Some(&v[..v.find('"')?]),
                None => None,
            }
        }
        None => None,
    };
    Some(EvHead {
        seq,
        kind,
        conversation_id,
    })
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
