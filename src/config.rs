//! `HUB_*` environment variables → [`Config`] (PROTOCOL §2).

use std::path::PathBuf;
use std::time::Duration;

/// Everything the hub reads from its environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// `HUB_ADDR`: where to listen; port 0 picks a free port.
    pub addr: String,
    /// `HUB_DATA`: the sled directory.
    pub data: PathBuf,
    /// `HUB_ADMIN_TOKEN`: the admin's bearer token, if fixed by the operator.
    pub admin_token: Option<String>,
    /// `HUB_PRESENCE_GRACE_MS`: how long an agent stays online after its last console closes.
    pub presence_grace: Duration,
    /// `HUB_RATE_LIMIT=off` disables rate limits.
    pub rate_limit: bool,
    /// `HUB_ALLOWED_ORIGINS`: origins allowed on WebSocket upgrades (when set, instead of the
    /// hub's own) and on the widget API's CORS.
    pub allowed_origins: Vec<String>,
    /// `HUB_LOG_FORMAT=json` switches logs to JSON lines.
    pub log_json: bool,
    /// `HUB_SOCKET_SILENCE_MS` (default 60,000): a socket the hub has heard nothing from,
    /// or could not write to, for this long counts as gone.
    pub socket_silence: Duration,
    /// `HUB_AGENT_INFLIGHT`: most agent commands (replies, assignments, …) the hub runs at
    /// once; the others wait their turn in arrival order (`0`: no limit).
    pub agent_inflight: usize,
}

/// The default of `HUB_AGENT_INFLIGHT` (see `docs/DECISIONS.md`, "Replies and bots").
pub const AGENT_INFLIGHT: usize = 32;

/// Threads each of the hub's runtimes may start for blocking store reads
/// (`Store::read`; tokio's default is 512). Every thread that reads sled stays
/// registered with its memory reclamation (crossbeam-epoch) until it exits, 10 s after
/// its last task, and the writer walks that list each time it collects garbage: a burst
/// of first sends could leave hundreds of them behind (1,536 at most over the three
/// runtimes). A read past the limit waits for a thread; with 8 the busy hour's short
/// reads waited behind long ones (its p50 rose 10–25 %), with 64 it runs as with 512.
/// See `docs/DECISIONS.md`, "Group commit".
pub const BLOCKING_THREADS: usize = 64;

/// An origin as compared: lower case, without a trailing `/` or the scheme's default
/// port (browsers never send `:443` for https or `:80` for http, while a list may).
pub fn canonical_origin(origin: &str) -> String {
    let o = origin.trim_end_matches('/').to_ascii_lowercase();
    for (scheme, port) in [("https://", ":443"), ("http://", ":80")] {
        if o.starts_with(scheme) && o.ends_with(port) {
            return o[..o.len() - port.len()].to_string();
        }
    }
    o
}

impl Config {
    /// Whether `origin` is listed in `HUB_ALLOWED_ORIGINS` (or the list allows `*`).
    pub fn origin_listed(&self, origin: &str) -> bool {
        let origin = canonical_origin(origin);
        self.allowed_origins
            .iter()
            .any(|a| a == "*" || *a == origin)
    }

    /// Reads the environment, with PROTOCOL §2's defaults.
    pub fn from_env() -> Config {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Config {
            addr: var("HUB_ADDR").unwrap_or_else(|| "127.0.0.1:8080".into()),
            data: var("HUB_DATA").unwrap_or_else(|| "./data".into()).into(),
            admin_token: var("HUB_ADMIN_TOKEN"),
            presence_grace: Duration::from_millis(
                var("HUB_PRESENCE_GRACE_MS")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(10_000),
            ),
            rate_limit: var("HUB_RATE_LIMIT").map(|v| v != "off").unwrap_or(true),
            allowed_origins: var("HUB_ALLOWED_ORIGINS")
                .map(|v| {
                    v.split(',')
                        .map(|s| canonical_origin(s.trim()))
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            log_json: var("HUB_LOG_FORMAT").as_deref() == Some("json"),
            socket_silence: Duration::from_millis(
                var("HUB_SOCKET_SILENCE_MS")
                    .and_then(|v| v.parse().ok())
                    .filter(|ms| *ms > 0)
                    .unwrap_or(60_000),
            ),
            agent_inflight: var("HUB_AGENT_INFLIGHT")
                .and_then(|v| v.parse().ok())
                .unwrap_or(AGENT_INFLIGHT),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_origin;

    #[test]
    fn origins_compare_without_case_trailing_slash_or_default_port() {
        for (a, b) in [
            (
                "https://Support.Example.com/",
                "https://support.example.com",
            ),
            (
                "https://support.example.com:443",
                "https://support.example.com",
            ),
            ("http://a.com:80", "http://a.com"),
            ("http://a.com:8080", "http://a.com:8080"),
            ("https://a.com:80", "https://a.com:80"),
            ("http://a.com:443", "http://a.com:443"),
            ("*", "*"),
        ] {
            assert_eq!(canonical_origin(a), b, "{a}");
        }
    }
}
