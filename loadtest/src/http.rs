//! A tiny keep-alive HTTP/1.1 client over tokio `TcpStream`: enough for the hub's JSON
//! API (Content-Length or chunked bodies), with a small connection pool per client.

use serde_json::Value;
use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One keep-alive connection.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A pooled client for one server.
pub struct Client {
    addr: SocketAddr,
    host: String,
    pool: Mutex<Vec<Conn>>,
}

/// An answer: status and parsed JSON body (`Value::Null` when empty or not JSON).
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The protocol error code, when the body has one.
    pub fn code(&self) -> String {
        self.body["error"]["code"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("http_{}", self.status))
    }
}

/// Splits `http://host:port[/...]` into a socket address and the `host:port` text.
pub fn parse_base(url: &str) -> Result<(SocketAddr, String), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("ws://"))
        .ok_or_else(|| format!("url must start with http:// or ws://: {url}"))?;
    let host = rest.split('/').next().unwrap_or(rest).to_string();
    use std::net::ToSocketAddrs;
    let addr = host
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .find(|a| a.is_ipv4())
        .ok_or_else(|| format!("no IPv4 address for {host}"))?;
    Ok((addr, host))
}

impl Client {
    /// A client for `addr` (sent as `Host: host`).
    pub fn new(addr: SocketAddr, host: String) -> Self {
        Client {
            addr,
            host,
            pool: Mutex::new(Vec::new()),
        }
    }

    /// Sends one request with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> io::Result<Answer> {
        let body = body.map(|b| b.to_string());
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n",
            self.host
        );
        if let Some(t) = token {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        match &body {
            Some(b) => req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            )),
            None if method == "GET" => req.push_str("\r\n"),
            None => req.push_str("Content-Length: 0\r\n\r\n"),
        }
        let pooled = self.pool.lock().unwrap().pop();
        let reused = pooled.is_some();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect().await?,
        };
        let res = tokio::time::timeout(REQUEST_TIMEOUT, conn.exchange(req.as_bytes())).await;
        let res = match res {
            Ok(r) => r,
            Err(_) => Err(Retry::Broken(io::Error::new(
                io::ErrorKind::TimedOut,
                "request timed out",
            ))),
        };
        let (status, raw, keep) = match res {
            Ok(r) => r,
            // A pooled connection the server closed while idle: retry once on a new one.
            Err(Retry::Idle(_)) if reused => {
                conn = self.connect().await?;
                match tokio::time::timeout(REQUEST_TIMEOUT, conn.exchange(req.as_bytes())).await {
                    Ok(Ok(r)) => r,
                    Ok(Err(Retry::Idle(e) | Retry::Broken(e))) => return Err(e),
                    Err(_) => {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "request timed out"))
                    }
                }
            }
            Err(Retry::Idle(e) | Retry::Broken(e)) => return Err(e),
        };
        if keep {
            self.pool.lock().unwrap().push(conn);
        }
        let body = if raw.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&raw).unwrap_or(Value::Null)
        };
        Ok(Answer { status, body })
    }

    async fn connect(&self) -> io::Result<Conn> {
        let stream = TcpStream::connect(self.addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(8192),
        })
    }
}

/// Why an exchange failed: before any answer byte (safe to retry on a fresh
/// connection when the old one was idle) or after.
enum Retry {
    Idle(io::Error),
    Broken(io::Error),
}

impl Conn {
    /// Writes the request and reads one answer: (status, body, keep-alive).
    async fn exchange(&mut self, req: &[u8]) -> Result<(u16, Vec<u8>, bool), Retry> {
        self.buf.clear();
        self.stream.write_all(req).await.map_err(Retry::Idle)?;
        // Headers.
        let (status, head_len, length, chunked, keep) = loop {
            let mut tmp = [0u8; 8192];
            let n = self.stream.read(&mut tmp).await.map_err(|e| {
                if self.buf.is_empty() {
                    Retry::Idle(e)
                } else {
                    Retry::Broken(e)
                }
            })?;
            if n == 0 {
                let e = io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed");
                return Err(if self.buf.is_empty() {
                    Retry::Idle(e)
                } else {
                    Retry::Broken(e)
                });
            }
            self.buf.extend_from_slice(&tmp[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&self.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = resp.code.unwrap_or(0);
                    let mut length = None;
                    let mut chunked = false;
                    let mut keep = resp.version == Some(1);
                    for h in resp.headers.iter() {
                        let v = String::from_utf8_lossy(h.value).to_ascii_lowercase();
                        if h.name.eq_ignore_ascii_case("content-length") {
                            length = v.trim().parse::<usize>().ok();
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            chunked = v.contains("chunked");
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            if v.contains("close") {
                                keep = false;
                            } else if v.contains("keep-alive") {
                                keep = true;
                            }
                        }
                    }
                    break (status, len, length, chunked, keep);
                }
                Ok(httparse::Status::Partial) => continue,
                Err(e) => {
                    return Err(Retry::Broken(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bad HTTP answer: {e}"),
                    )))
                }
            }
        };
        let mut rest: Vec<u8> = self.buf[head_len..].to_vec();
        let body = if chunked {
            self.read_chunked(&mut rest).await.map_err(Retry::Broken)?
        } else if let Some(len) = length {
            while rest.len() < len {
                self.fill(&mut rest).await.map_err(Retry::Broken)?;
            }
            rest.truncate(len);
            rest
        } else if status == 204 || status == 304 {
            Vec::new()
        } else {
            // Read to the end.
            loop {
                let mut tmp = [0u8; 8192];
                let n = self.stream.read(&mut tmp).await.map_err(Retry::Broken)?;
                if n == 0 {
                    break;
                }
                rest.extend_from_slice(&tmp[..n]);
            }
            return Ok((status, rest, false));
        };
        Ok((status, body, keep))
    }

    async fn fill(&mut self, into: &mut Vec<u8>) -> io::Result<()> {
        let mut tmp = [0u8; 16384];
        let n = self.stream.read(&mut tmp).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed mid-body",
            ));
        }
        into.extend_from_slice(&tmp[..n]);
        Ok(())
    }

    async fn read_chunked(&mut self, rest: &mut Vec<u8>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut pos = 0usize;
        loop {
            // Chunk size line.
            let line_end = loop {
                if let Some(i) = find(&rest[pos..], b"\r\n") {
                    break pos + i;
                }
                self.fill(rest).await?;
            };
            let line = String::from_utf8_lossy(&rest[pos..line_end]).to_string();
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            pos = line_end + 2;
            if size == 0 {
                // Trailer: read up to the final CRLF.
                loop {
                    if let Some(i) = find(&rest[pos..], b"\r\n") {
                        if i == 0 {
                            return Ok(out);
                        }
                        pos += i + 2;
                    } else {
                        self.fill(rest).await?;
                    }
                }
            }
            while rest.len() < pos + size + 2 {
                self.fill(rest).await?;
            }
            out.extend_from_slice(&rest[pos..pos + size]);
            pos += size + 2;
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
