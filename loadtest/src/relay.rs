//! A bare WebSocket relay with the hub's frame shapes and no logic or storage: every
//! `send` from a widget socket gets a sequence number, is broadcast to every console
//! as `message.created`, and is acked. It shows what this machine can move at all.
//! A console that falls 4,096 frames behind is closed with 1008, like the hub does;
//! there is nothing to replay, so a resume answers `reset`.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

struct State {
    /// Held while numbering and broadcasting, so consoles get frames in seq order.
    seq: Mutex<u64>,
    head: AtomicU64,
    tx: broadcast::Sender<Arc<String>>,
}

/// Serves until killed; prints `listening on http://HOST:PORT` once ready.
pub async fn serve(addr: &str) -> Result<(), String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("bind {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on http://{local}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let (tx, _) = broadcast::channel(4096);
    let st = Arc::new(State {
        seq: Mutex::new(0),
        head: AtomicU64::new(0),
        tx,
    });
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("relay: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(conn(stream, st.clone()));
    }
}

async fn conn(stream: TcpStream, st: Arc<State>) {
    let path = Arc::new(Mutex::new(String::new()));
    let p2 = path.clone();
    // The callback's signature is tungstenite's; its error type is not ours to shrink.
    #[allow(clippy::result_large_err)]
    let cb = move |req: &Request, resp: Response| {
        *p2.lock().unwrap() = req.uri().path().to_string();
        Ok(resp)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, cb).await else {
        return;
    };
    let agent = path.lock().unwrap().starts_with("/ws/agent");
    let (mut tx, mut rx) = ws.split();
    // The hello.
    let hello = loop {
        match rx.next().await {
            Some(Ok(Message::Text(t))) => break t,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
            Some(Ok(_)) => continue,
        }
    };
    let h: Value = serde_json::from_str(&hello).unwrap_or(Value::Null);
    if h["type"] != "hello" {
        let _ = tx
            .send(Message::Text(
                json!({"type": "error", "code": "invalid", "message": "hello expected"})
                    .to_string(),
            ))
            .await;
        return;
    }
    if agent {
        // Subscribe under the lock so that the welcome's seq is exactly where we start.
        let (mut sub, head) = {
            let g = st.seq.lock().unwrap();
            (st.tx.subscribe(), *g)
        };
        let since = h["since"].as_u64();
        let mut w =
            json!({"type": "welcome", "agent_id": h["token"], "seq": head, "epoch": "relay"});
        if since.is_some_and(|s| s != head) {
            w["reset"] = json!(true);
        }
        if tx.send(Message::Text(w.to_string())).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                m = sub.recv() => match m {
                    Ok(first) => {
                        // Whatever else is waiting goes in the same write, as the hub
                        // writes a commit's events to a console: one write per frame
                        // (210,000 a second at 10,000 msg/s and 21 consoles) made the
                        // relay's consoles fall behind long before the machine did.
                        let mut next: Result<_, broadcast::error::TryRecvError> = Ok(first);
                        let lagged = loop {
                            match next {
                                Ok(f) => {
                                    if tx.feed(Message::Text(f.as_str().to_string())).await.is_err() {
                                        return;
                                    }
                                }
                                Err(broadcast::error::TryRecvError::Lagged(_)) => break true,
                                Err(_) => break false,
                            }
                            next = sub.try_recv();
                        };
                        if tx.flush().await.is_err() {
                            return;
                        }
                        if lagged {
                            return close_too_slow(&mut tx).await;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        return close_too_slow(&mut tx).await;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                m = rx.next() => match m {
                    Some(Ok(Message::Text(t))) => {
                        if t.contains("\"ping\"") && tx.send(Message::Text(r#"{"type":"pong"}"#.into())).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                }
            }
        }
    } else {
        let head = st.head.load(Ordering::Relaxed);
        let who = h["token"].as_str().unwrap_or("anon").to_string();
        let w = json!({"type": "welcome", "contact_id": who, "seq": head, "epoch": "relay"});
        if tx.send(Message::Text(w.to_string())).await.is_err() {
            return;
        }
        let conv = format!("c-{who}");
        while let Some(m) = rx.next().await {
            let t = match m {
                Ok(Message::Text(t)) => t,
                Ok(Message::Close(_)) | Err(_) => return,
                Ok(_) => continue,
            };
            let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
            match v["type"].as_str() {
                Some("send") => {
                    let text = v["text"].as_str().unwrap_or("");
                    let text_json = serde_json::to_string(text).unwrap_or_default();
                    let at = now_rfc3339ish();
                    let seq = {
                        let mut g = st.seq.lock().unwrap();
                        *g += 1;
                        let seq = *g;
                        let frame = format!(
                            r#"{{"type":"event","seq":{seq},"kind":"message.created","data":{{"message":{{"id":"r{seq}","conversation_id":"{conv}","text":{text_json},"at":"{at}","seq":{seq}}}}},"conversation_id":"{conv}","at":"{at}"}}"#
                        );
                        let _ = st.tx.send(Arc::new(frame));
                        st.head.store(seq, Ordering::Relaxed);
                        seq
                    };
                    let ack = json!({
                        "type": "ack", "client_id": v["client_id"],
                        "message": {"id": format!("r{seq}"), "conversation_id": conv, "text": text, "at": at, "seq": seq},
                    });
                    if tx.send(Message::Text(ack.to_string())).await.is_err() {
                        return;
                    }
                }
                Some("ping") => {
                    if tx
                        .send(Message::Text(r#"{"type":"pong"}"#.into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                _ => {
                    let e = json!({"type": "error", "code": "invalid", "message": "unknown frame"});
                    if tx.send(Message::Text(e.to_string())).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Closes a console that fell 4,096 frames behind with 1008, as the hub does.
async fn close_too_slow<S>(tx: &mut S)
where
    S: futures_util::Sink<Message> + Unpin,
{
    let _ = tx
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Policy,
            reason: "too slow; resume with since".into(),
        })))
        .await;
}

/// Seconds.millis since the epoch; the relay does not need calendar dates.
fn now_rfc3339ish() -> String {
    let us = crate::stats::now_us();
    format!("{}.{:03}", us / 1_000_000, (us / 1000) % 1000)
}
