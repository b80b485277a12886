//! NATS mode: the same fan-out against `nats-server` over its WebSocket listener.
//! Customers `PUB support.msgs` and then `PING`: the `PONG` (the server has processed
//! the PUB, in order) is the ack. Consoles `SUB support.msgs`. NATS has no global
//! sequence, so a console checks that it gets each customer's messages contiguously
//! (n = previous + 1, per publisher order) and that every console got the same count.

use crate::config::{tally, Checks, Target};
use crate::consoles::{Handle, Report, Shared, Who};
use crate::driver::{Cmd, Ctx};
use crate::stats::{self, now_us};
use crate::wire::{self, WsRx, WsTx};
use futures_util::{SinkExt, StreamExt};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

const SUBJECT: &str = "support.msgs";

/// Starts `nats-server` with a WebSocket listener on a free port.
pub async fn spawn_server() -> Result<(tokio::process::Child, String, PathBuf), String> {
    let exe = [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ]
    .iter()
    .find(|p| std::path::Path::new(p).exists())
    .map(|p| p.to_string())
    .unwrap_or_else(|| "nats-server".into());
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        l.local_addr().map_err(|e| e.to_string())?.port()
    };
    let dir = std::env::temp_dir().join(format!("loadtest-nats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let conf = dir.join("nats.conf");
    std::fs::write(
        &conf,
        format!(
            "listen: \"127.0.0.1:-1\"\nmax_payload: 65536\nwrite_deadline: \"10s\"\n\
             websocket {{\n  listen: \"127.0.0.1:{port}\"\n  no_tls: true\n  compression: false\n}}\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let child = tokio::process::Command::new(&exe)
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("start {exe} (apt-get install nats-server): {e}"))?;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok((child, format!("http://127.0.0.1:{port}"), dir));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("nats-server did not open its WebSocket port".into())
}

/// A NATS protocol reader over WebSocket frames (ops may span or share frames).
#[derive(Default)]
struct Parser {
    buf: Vec<u8>,
}

enum Op {
    Msg(Vec<u8>),
    Ping,
    Pong,
    Err(String),
    Other,
}

impl Parser {
    fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    fn next(&mut self) -> Option<Op> {
        let end = self.buf.windows(2).position(|w| w == b"\r\n")?;
        let line = String::from_utf8_lossy(&self.buf[..end]).to_string();
        if let Some(rest) = line.strip_prefix("MSG ") {
            let len: usize = rest.split_whitespace().last()?.parse().ok()?;
            if self.buf.len() < end + 2 + len + 2 {
                return None;
            }
            let payload = self.buf[end + 2..end + 2 + len].to_vec();
            self.buf.drain(..end + 2 + len + 2);
            return Some(Op::Msg(payload));
        }
        self.buf.drain(..end + 2);
        Some(match line.as_str() {
            "PING" => Op::Ping,
            "PONG" => Op::Pong,
            l if l.starts_with("-ERR") => Op::Err(l.to_string()),
            _ => Op::Other,
        })
    }
}

async fn nats_connect(
    addr: std::net::SocketAddr,
    host: &str,
    src: Option<std::net::IpAddr>,
) -> Result<(WsTx, WsRx, Parser), String> {
    let ws = wire::connect(addr, host, "/", src).await?;
    let (mut tx, rx) = ws.split();
    let connect = r#"CONNECT {"verbose":false,"pedantic":false,"protocol":1,"echo":false,"lang":"rust","version":"0"}"#;
    tx.send(Message::Binary(format!("{connect}\r\n").into_bytes()))
        .await
        .map_err(|e| e.to_string())?;
    Ok((tx, rx, Parser::default()))
}

/// The next ops of a frame, or an error when the socket ends.
async fn read_ops(rx: &mut WsRx, p: &mut Parser) -> Result<Vec<Op>, String> {
    loop {
        match rx.next().await {
            Some(Ok(Message::Binary(b))) => p.push(&b),
            Some(Ok(Message::Text(t))) => p.push(t.as_bytes()),
            Some(Ok(Message::Close(_))) | None => return Err("closed".into()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
        }
        let mut ops = Vec::new();
        while let Some(op) = p.next() {
            ops.push(op);
        }
        if !ops.is_empty() {
            return Ok(ops);
        }
    }
}

/// One NATS customer.
pub async fn customer(ctx: Arc<Ctx>, idx: u32, mut rx: mpsc::UnboundedReceiver<Cmd>, at: Instant) {
    tokio::time::sleep_until(at.into()).await;
    let run = ctx.cfg.run.clone();
    // n -> intended µs, in publish order; each PONG acks the oldest.
    let mut inflight: VecDeque<(u32, u64)> = VecDeque::new();
    let mut acked: Vec<u64> = Vec::new();
    let src = wire::source_ip(&ctx.addr, idx as usize, ctx.cfg.source_ips);
    let mut conn: Option<(WsTx, WsRx, Parser)> = None;
    loop {
        if conn.is_none() {
            let t = Instant::now();
            match nats_connect(ctx.addr, &ctx.host, src).await {
                Ok(mut c) => {
                    ctx.stats.rec("ws_connect", t.elapsed().as_micros() as u64);
                    ctx.connected.fetch_add(1, Ordering::Relaxed);
                    // Publish again what was not acknowledged (NATS has no idempotency).
                    let again: Vec<(u32, u64)> = inflight.iter().copied().collect();
                    for (n, us) in again {
                        ctx.stats.inc("resent");
                        let _ = c.0.send(Message::Binary(pub_frame(&run, idx, n, us))).await;
                    }
                    conn = Some(c);
                }
                Err(e) => {
                    ctx.stats.inc("connect_failures");
                    if ctx.stats.get("connect_failures") <= 3 {
                        eprintln!("customer {idx}: {e}");
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            }
        }
        let Some((tx, wrx, p)) = conn.as_mut() else {
            continue;
        };
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(Cmd::Send { n, us }) => {
                    inflight.push_back((n, us));
                    ctx.stats.inc("sent");
                    ctx.unacked.fetch_add(1, Ordering::Relaxed);
                    if tx.send(Message::Binary(pub_frame(&run, idx, n, us))).await.is_err() {
                        ctx.stats.inc("customer_reconnects");
                        conn = None;
                        ctx.connected.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                Some(Cmd::Churn) => {}
                Some(Cmd::Verify(done)) => {
                    if !inflight.is_empty() {
                        ctx.stats.add("unacked", inflight.len() as u64);
                    }
                    let _ = done.send(crate::driver::CustResult { acked, checks: Default::default() });
                    let _ = tx.send(Message::Close(None)).await;
                    return;
                }
                None => return,
            },
            ops = read_ops(wrx, p) => match ops {
                Ok(ops) => {
                    for op in ops {
                        match op {
                            Op::Pong => {
                                if let Some((n, us)) = inflight.pop_front() {
                                    let lat = now_us().saturating_sub(us);
                                    ctx.stats.rec("send_ack", lat);
                                    ctx.stats.rec("interval_ack", lat);
                                    ctx.stats.inc("acked");
                                    ctx.unacked.fetch_sub(1, Ordering::Relaxed);
                                    acked.push(wire::key(idx, n));
                                }
                            }
                            Op::Ping => {
                                let _ = tx.send(Message::Binary(b"PONG\r\n".to_vec())).await;
                            }
                            Op::Err(e) => {
                                ctx.stats.inc("send_errors");
                                eprintln!("customer {idx}: {e}");
                            }
                            _ => {}
                        }
                    }
                }
                Err(_) => {
                    ctx.stats.inc("customer_reconnects");
                    conn = None;
                    ctx.connected.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
    }
}

fn pub_frame(run: &str, idx: u32, n: u32, us: u64) -> Vec<u8> {
    let text = wire::customer_text(run, idx, n, us, "hello, where is my order 12345?");
    format!("PUB {SUBJECT} {}\r\n{text}\r\nPING\r\n", text.len()).into_bytes()
}

/// A NATS console: subscribes to every customer message.
pub fn start_console(shared: Arc<Shared>, who: Who) -> Handle {
    let last_seq = Arc::new(AtomicU64::new(0));
    let welcomed = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = oneshot::channel();
    let name = who.name.clone();
    let w = welcomed.clone();
    let ls = last_seq.clone();
    let join = tokio::spawn(console(shared, who, stop_rx, w, ls));
    Handle::new(
        name,
        last_seq,
        welcomed,
        Arc::new(AtomicU64::new(0)),
        stop_tx,
        join,
    )
}

async fn console(
    shared: Arc<Shared>,
    who: Who,
    mut stop: oneshot::Receiver<()>,
    welcomed: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
) -> Report {
    let mut rep = Report {
        name: who.name.clone(),
        ..Default::default()
    };
    let mut hist = stats::new_hist();
    let mut last_n: HashMap<u32, u32> = HashMap::new();
    debug_assert_eq!(shared.target, Target::Nats);
    'outer: loop {
        let t = Instant::now();
        let (mut tx, mut rx, mut p) = match nats_connect(shared.addr, &shared.host, None).await {
            Ok(c) => c,
            Err(e) => {
                shared.stats.inc("console_connect_failures");
                eprintln!("console {}: {e}", who.name);
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let sub = format!("SUB {SUBJECT} 1\r\nPING\r\n");
        if tx.send(Message::Binary(sub.into_bytes())).await.is_err() {
            continue;
        }
        loop {
            let ops = tokio::select! {
                _ = &mut stop => {
                    let _ = tx.send(Message::Close(None)).await;
                    break 'outer;
                }
                ops = read_ops(&mut rx, &mut p) => ops,
            };
            let Ok(ops) = ops else {
                rep.reconnects += 1;
                shared.stats.inc("console_reconnects");
                break;
            };
            for op in ops {
                match op {
                    Op::Msg(payload) => {
                        rep.events += 1;
                        let text = String::from_utf8_lossy(&payload);
                        let Some((key, us)) = wire::parse_tag(&text, &shared.run) else {
                            continue;
                        };
                        let lat = now_us().saturating_sub(us);
                        stats::record(&mut hist, lat);
                        shared.note_seen(key, Some(lat));
                        let (cust, n) = ((key >> 32) as u32, key as u32);
                        let expect = last_n.get(&cust).map(|l| l + 1).unwrap_or(0);
                        if n < expect {
                            rep.repeats += 1;
                        } else if n > expect {
                            rep.gaps += 1;
                            rep.missing += (n - expect) as u64;
                        }
                        if n != expect && rep.first_problem.is_none() {
                            rep.first_problem = Some(format!(
                                "customer {cust}: message {n} after {}",
                                expect as i64 - 1
                            ));
                        }
                        last_n.insert(cust, n.max(expect.saturating_sub(1)));
                        count.store(rep.events, Ordering::Relaxed);
                    }
                    Op::Ping => {
                        let _ = tx.send(Message::Binary(b"PONG\r\n".to_vec())).await;
                    }
                    Op::Pong => {
                        if !welcomed.swap(true, Ordering::SeqCst) {
                            shared
                                .stats
                                .rec("console_connect", t.elapsed().as_micros() as u64);
                        }
                    }
                    Op::Err(e) => eprintln!("console {}: {e}", who.name),
                    Op::Other => {}
                }
            }
        }
    }
    rep.last_seq = rep.events;
    rep.all = Some(hist);
    rep
}

/// Every console saw its stream contiguously per customer, and all saw as many.
pub fn check_consoles(reports: &[Report], checks: &mut Checks) {
    let most = reports.iter().map(|r| r.events).max().unwrap_or(0);
    for r in reports {
        tally(
            checks,
            "console.contiguous_per_customer",
            r.gaps == 0 && r.repeats == 0,
            || {
                format!(
                    "{}: {} gaps ({} missing), {} repeats; first: {}",
                    r.name,
                    r.gaps,
                    r.missing,
                    r.repeats,
                    r.first_problem.clone().unwrap_or_default()
                )
            },
        );
        tally(checks, "console.same_count", r.events == most, || {
            format!(
                "{}: {} messages, another console got {most}",
                r.name, r.events
            )
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ops_split_across_frames() {
        let mut p = Parser::default();
        p.push(b"INFO {}\r\nPING\r\nMSG support.msgs 1 5\r\nhel");
        assert!(matches!(p.next(), Some(Op::Other)));
        assert!(matches!(p.next(), Some(Op::Ping)));
        assert!(p.next().is_none());
        p.push(b"lo\r\nPONG\r\n");
        assert!(matches!(p.next(), Some(Op::Msg(m)) if m == b"hello"));
        assert!(matches!(p.next(), Some(Op::Pong)));
        assert!(p.next().is_none());
    }
}
