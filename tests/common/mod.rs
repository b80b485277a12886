//! Black-box test harness: spawns the real `hub` binary on port 0 with a fresh data
//! directory and talks to it only over HTTP and WebSockets.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tungstenite::{stream::MaybeTlsStream, Message as WsMessage, WebSocket};

/// The admin token every test hub starts with.
pub const ADMIN: &str = "test-admin-token";

/// A running hub process.
pub struct Hub {
    pub url: String,
    pub addr: String,
    pub data: PathBuf,
    _dir: Option<tempfile::TempDir>,
    child: Child,
    env: Vec<(String, String)>,
}

impl Hub {
    /// Whether the hub process holds the TCP connection whose far end is the local
    /// port `client_port` (its socket's inode among its open files, `/proc`).
    pub fn holds_connection_from(&self, client_port: u16) -> bool {
        let hub_port: u16 = self.addr.rsplit(':').next().unwrap().parse().unwrap();
        let port = |a: &str| u16::from_str_radix(a.rsplit(':').next().unwrap_or(""), 16).ok();
        let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        let inode = tcp.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 9 && port(f[1]) == Some(hub_port) && port(f[2]) == Some(client_port))
                .then(|| f[9].to_string())
        });
        let Some(inode) = inode else {
            return false;
        };
        let want = format!("socket:[{inode}]");
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| {
                d.flatten().any(|e| {
                    std::fs::read_link(e.path())
                        .map(|l| l.to_string_lossy() == want)
                        .unwrap_or(false)
                })
            })
            .unwrap_or(false)
    }

    /// A hub with default settings (rate limits off, presence grace 0).
    pub fn start() -> Hub {
        Hub::start_with(&[])
    }

    /// A hub with extra environment variables.
    pub fn start_with(env: &[(&str, &str)]) -> Hub {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (child, addr) = spawn(&data, "127.0.0.1:0", &env);
        Hub {
            url: format!("http://{addr}"),
            addr,
            data,
            _dir: Some(dir),
            child,
            env,
        }
    }

    /// A hub on a given data directory (kept by the caller).
    pub fn start_on(data: &std::path::Path, env: &[(&str, &str)]) -> Hub {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let data = data.to_path_buf();
        let (child, addr) = spawn(&data, "127.0.0.1:0", &env);
        Hub {
            url: format!("http://{addr}"),
            addr,
            data,
            _dir: None,
            child,
            env,
        }
    }

    /// Kills the process at once (SIGKILL), like a crash.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited cleanly.
    pub fn terminate(&mut self) -> bool {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.success();
            }
            assert!(Instant::now() < deadline, "hub did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Restarts the hub on the same data directory (and the same port if free).
    pub fn restart(&mut self) {
        self.kill9();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (child, addr) = spawn(&self.data, &self.addr, &self.env);
            if !addr.is_empty() {
                self.child = child;
                self.url = format!("http://{addr}");
                self.addr = addr;
                return;
            }
            assert!(Instant::now() < deadline, "hub did not restart");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends a request; returns (status, JSON body or Null).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.call_raw(method, path, token, body.map(|b| b.to_string()))
    }

    /// Sends a request with a raw body.
    pub fn call_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> (u16, Value) {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .build();
        let mut req = agent.request(method, &format!("{}{}", self.url, path));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let res = match body {
            Some(b) => req.set("Content-Type", "application/json").send_string(&b),
            None => req.call(),
        };
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: transport error {e}"),
        };
        let status = resp.status();
        // Not `into_string`: it stops at 10 MB, and long timelines are bigger.
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut resp.into_reader(), &mut text);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The `/metrics` text.
    pub fn metrics(&self) -> String {
        ureq::get(&format!("{}/metrics", self.url))
            .call()
            .unwrap()
            .into_string()
            .unwrap()
    }

    pub fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call("GET", path, Some(token), None)
    }

    pub fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(token), Some(body))
    }

    /// Creates an agent; returns (id, token).
    pub fn agent(&self, name: &str, role: &str) -> (String, String) {
        let (s, b) = self.post("/api/agents", ADMIN, json!({"name": name, "role": role}));
        assert_eq!(s, 201, "create agent: {b}");
        (
            b["id"].as_str().unwrap().into(),
            b["token"].as_str().unwrap().into(),
        )
    }

    /// Opens a widget session; returns (contact id, token).
    pub fn contact(&self) -> (String, String) {
        self.contact_on("web")
    }

    /// Opens a widget session on a channel; returns (contact id, token).
    pub fn contact_on(&self, channel: &str) -> (String, String) {
        let (s, b) = self.call(
            "POST",
            "/api/widget/session",
            None,
            Some(json!({"channel": channel})),
        );
        assert_eq!(s, 201, "widget session: {b}");
        (
            b["contact_id"].as_str().unwrap().into(),
            b["token"].as_str().unwrap().into(),
        )
    }

    /// A contact writes; returns the message (contact view).
    pub fn say(&self, contact_token: &str, text: &str) -> Value {
        let (s, b) = self.post("/api/widget/messages", contact_token, json!({"text": text}));
        assert_eq!(s, 201, "send: {b}");
        b["message"].clone()
    }

    /// The full message (agent view), found through the `all` folder.
    pub fn message(&self, agent_token: &str, id: &str) -> Value {
        let (s, b) = self.get("/api/inbox?folder=all&limit=500", agent_token);
        assert_eq!(s, 200, "{b}");
        b["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("message {id} not in the all folder"))
    }

    /// `POST /api/messages/{id}/{action}`.
    pub fn act(&self, token: &str, id: &str, action: &str, body: Value) -> (u16, Value) {
        self.post(&format!("/api/messages/{id}/{action}"), token, body)
    }

    /// Opens a WebSocket (`/ws/agent` or `/ws/widget`) and sends `hello`.
    pub fn socket(&self, path: &str, hello: Value) -> Socket {
        let mut s = Socket::connect(&format!("ws://{}{}", self.addr, path));
        s.send(hello);
        s
    }

    /// An agent console: connects and waits for `welcome`.
    pub fn console(&self, token: &str, since: Option<u64>) -> (Socket, Value) {
        let mut hello = json!({"type": "hello", "token": token});
        if let Some(s) = since {
            hello["since"] = json!(s);
        }
        let mut s = self.socket("/ws/agent", hello);
        let w = s.recv_type("welcome");
        (s, w)
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(data: &PathBuf, addr: &str, env: &[(String, String)]) -> (Child, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hub"));
    cmd.env("HUB_ADDR", addr)
        .env("HUB_DATA", data)
        .env("HUB_ADMIN_TOKEN", ADMIN)
        .env("HUB_RATE_LIMIT", "off")
        .env("HUB_PRESENCE_GRACE_MS", "0")
        .env(
            "RUST_LOG",
            std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .stderr(if std::env::var("TEST_LOG").is_ok() {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
    for (k, v) in env {
        cmd.env(k, v);
    }
    // `TEST_STDERR=closed`: stderr is a pipe whose reader is gone at once (a log
    // collector that died), so that every log line the hub writes fails.
    let stderr_closed = env.iter().any(|(k, v)| k == "TEST_STDERR" && v == "closed");
    if stderr_closed {
        cmd.stderr(Stdio::piped());
    }
    let mut child = cmd.spawn().expect("spawn hub");
    drop(child.stderr.take());
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(a) = line.strip_prefix("listening on http://") {
                let _ = tx.send(a.to_string());
            }
        }
    });
    // A big store's first start after a long run replays sled's log (minutes at the
    // scale test's size): HUB_TEST_START_SECS raises the wait.
    let wait = std::env::var("HUB_TEST_START_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    match rx.recv_timeout(Duration::from_secs(wait)) {
        Ok(addr) => (child, addr),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            (child, String::new())
        }
    }
}

/// A blocking WebSocket client with a receive timeout.
pub struct Socket {
    pub ws: WebSocket<MaybeTlsStream<TcpStream>>,
}

/// How long a test waits for an expected frame before failing.
pub const WAIT: Duration = Duration::from_secs(10);

impl Socket {
    pub fn connect(url: &str) -> Socket {
        let (ws, _) = tungstenite::connect(url).expect("ws connect");
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
        }
        Socket { ws }
    }

    pub fn send(&mut self, v: Value) {
        self.ws
            .send(WsMessage::Text(v.to_string()))
            .expect("ws send");
    }

    pub fn send_raw(&mut self, m: WsMessage) {
        self.ws.send(m).expect("ws send");
    }

    /// The next frame within `timeout`: Some(text JSON), or a close/none.
    pub fn next(&mut self, timeout: Duration) -> Frame {
        let deadline = Instant::now() + timeout;
        loop {
            match self.ws.read() {
                Ok(WsMessage::Text(t)) => {
                    return Frame::Json(serde_json::from_str(&t).expect("json frame"))
                }
                Ok(WsMessage::Close(c)) => return Frame::Closed(c.map(|c| u16::from(c.code))),
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if Instant::now() >= deadline {
                        return Frame::Timeout;
                    }
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Frame::Closed(None)
                }
                Err(e) => return Frame::Error(e.to_string()),
            }
        }
    }

    /// The next JSON frame; panics on timeout or close.
    pub fn recv(&mut self) -> Value {
        match self.next(WAIT) {
            Frame::Json(v) => v,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// Skips frames until one of type `t`.
    pub fn recv_type(&mut self, t: &str) -> Value {
        loop {
            let v = self.recv();
            if v["type"] == t {
                return v;
            }
        }
    }

    /// Skips frames until an event of kind `kind` satisfying `pred`.
    pub fn recv_event(&mut self, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let v = self.recv();
            if v["type"] == "event" && v["kind"] == kind && pred(&v) {
                return v;
            }
        }
    }

    /// Waits for the server to close the socket; returns the close code.
    pub fn closed(&mut self) -> Option<u16> {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.next(Duration::from_millis(500)) {
                Frame::Closed(c) => return c,
                Frame::Error(_) => return None,
                _ if Instant::now() > deadline => panic!("socket not closed"),
                _ => {}
            }
        }
    }
}

/// What a socket read gave.
#[derive(Debug)]
pub enum Frame {
    Json(Value),
    Closed(Option<u16>),
    Timeout,
    Error(String),
}

/// The `id` of a JSON object.
/// The value of a metrics series (`name{labels}` as printed) in a `/metrics` text.
pub fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in the metrics"))
        .parse()
        .unwrap_or_else(|e| panic!("{series}: {e}"))
}

pub fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// The `conversation_id` of a message.
pub fn conv_of(m: &Value) -> String {
    m["conversation_id"]
        .as_str()
        .expect("conversation_id")
        .to_string()
}

/// Asserts an error answer: status, code, and a human message.
pub fn assert_error(got: (u16, Value), status: u16, code: &str, what: &str) {
    assert_eq!(got.0, status, "{what}: {}", got.1);
    assert_eq!(got.1["error"]["code"], code, "{what}: {}", got.1);
    assert!(
        got.1["error"]["message"].is_string(),
        "{what}: error message: {}",
        got.1
    );
}

/// Polls `f` until it gives `Some`, for at most 10 s.
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A message action that must succeed; returns the message as it now stands.
pub fn act_ok(hub: &Hub, token: &str, msg: &str, action: &str, body: Value) -> Value {
    let (s, b) = hub.act(token, msg, action, body);
    assert_eq!(s, 200, "{action}: {b}");
    b["message"].clone()
}

/// `v`, sorted.
pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Reads a raw connection until `done` says the answer is whole, the peer closes, or a
/// read fails (its timeout); what was read, as text.
pub fn read_until(s: &mut impl std::io::Read, done: impl Fn(&[u8]) -> bool) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if done(&answer) {
            break;
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}
