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
    /// `HUB_SEARCH=off` builds no search index (`GET /api/search` then answers 503).
    pub search: bool,
    /// `HUB_SEARCH_BLOCK_EVENTS` (default 16,384): how many events' postings the search
    /// index keeps in memory before it writes them as one block (`store/search.rs`).
    pub search_block_events: usize,
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
    /// The store's settings (`HUB_STORE_*`, `HUB_CONSOLE_HOLD_COMMITS`).
    pub store: crate::store::Settings,
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

/// A switch that is on unless set to `off` (or `false`, `no`, `0`).
fn on_off(name: &str, v: Option<String>) -> Result<bool, String> {
    match v.map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(true),
        Some(v) if matches!(v.as_str(), "" | "on" | "true" | "yes" | "1") => Ok(true),
        Some(v) if matches!(v.as_str(), "off" | "false" | "no" | "0") => Ok(false),
        Some(v) => Err(format!("{name} must be off or on, not {v:?}")),
    }
}

impl Config {
    /// Whether `origin` is listed in `HUB_ALLOWED_ORIGINS` (or the list allows `*`).
    pub fn origin_listed(&self, origin: &str) -> bool {
        let origin = canonical_origin(origin);
        self.allowed_origins
            .iter()
            .any(|a| a == "*" || *a == origin)
    }

    /// Reads the environment, with PROTOCOL §2's defaults. A value that does not mean
    /// anything (`HUB_PRESENCE_GRACE_MS=abc`, `HUB_RATE_LIMIT=maybe`) is an error that
    /// names it: the hub refuses to start rather than run on a default the operator did
    /// not ask for.
    pub fn from_env() -> Result<Config, String> {
        Config::from_vars(|k| std::env::var(k).ok())
    }

    /// [`Config::from_env`] over any source of variables (tests).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let number = |k: &str, default: u64| -> Result<u64, String> {
            var(k).map_or(Ok(default), |v| {
                v.trim()
                    .parse()
                    .map_err(|_| format!("{k} must be a whole number (0 or more), not {v:?}"))
            })
        };
        let admin_token = get("HUB_ADMIN_TOKEN").filter(|v| !v.is_empty());
        if admin_token
            .as_deref()
            .is_some_and(|t| t.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            // It could not be sent in an `Authorization` header as it is.
            return Err("HUB_ADMIN_TOKEN must not contain spaces or control characters".into());
        }
        let socket_silence = number("HUB_SOCKET_SILENCE_MS", 60_000)?;
        if socket_silence == 0 {
            return Err("HUB_SOCKET_SILENCE_MS must be more than 0".into());
        }
        Ok(Config {
            addr: var("HUB_ADDR").unwrap_or_else(|| "127.0.0.1:8080".into()),
            data: var("HUB_DATA").unwrap_or_else(|| "./data".into()).into(),
            admin_token,
            presence_grace: Duration::from_millis(number("HUB_PRESENCE_GRACE_MS", 10_000)?),
            rate_limit: on_off("HUB_RATE_LIMIT", var("HUB_RATE_LIMIT"))?,
            search: on_off("HUB_SEARCH", var("HUB_SEARCH"))?,
            search_block_events: number(
                "HUB_SEARCH_BLOCK_EVENTS",
                crate::store::search::BLOCK_EVENTS as u64,
            )?
            .max(1) as usize,
            allowed_origins: var("HUB_ALLOWED_ORIGINS")
                .map(|v| {
                    v.split(',')
                        .map(|s| canonical_origin(s.trim()))
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            log_json: match var("HUB_LOG_FORMAT").map(|v| v.trim().to_ascii_lowercase()) {
                None => false,
                Some(v) if v == "json" => true,
                Some(v) if v == "human" || v == "text" => false,
                Some(v) => return Err(format!("HUB_LOG_FORMAT must be json or human, not {v:?}")),
            },
            socket_silence: Duration::from_millis(socket_silence),
            agent_inflight: number("HUB_AGENT_INFLIGHT", AGENT_INFLIGHT as u64)? as usize,
            store: crate::store::Settings::from_vars(var)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{canonical_origin, Config};

    fn config(vars: &[(&str, &str)]) -> Result<Config, String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn settings_read_with_defaults_and_refuse_what_means_nothing() {
        let c = config(&[]).unwrap();
        assert_eq!(
            (c.presence_grace.as_millis(), c.rate_limit, c.log_json),
            (10_000, true, false)
        );
        let c = config(&[
            ("HUB_PRESENCE_GRACE_MS", " 0 "),
            ("HUB_RATE_LIMIT", "OFF"),
            ("HUB_LOG_FORMAT", "json"),
        ])
        .unwrap();
        assert_eq!(
            (c.presence_grace.as_millis(), c.rate_limit, c.log_json),
            (0, false, true)
        );
        for off in ["off", "Off", "false", "no", "0"] {
            assert!(
                !config(&[("HUB_RATE_LIMIT", off)]).unwrap().rate_limit,
                "{off}"
            );
            assert!(!config(&[("HUB_SEARCH", off)]).unwrap().search, "{off}");
        }
        assert!(config(&[]).unwrap().search);
        // Empty counts as unset.
        assert!(config(&[("HUB_RATE_LIMIT", "")]).unwrap().rate_limit);
        for (k, v) in [
            ("HUB_PRESENCE_GRACE_MS", "abc"),
            ("HUB_PRESENCE_GRACE_MS", "-5"),
            ("HUB_PRESENCE_GRACE_MS", "1.5"),
            ("HUB_PRESENCE_GRACE_MS", "99999999999999999999999"),
            ("HUB_RATE_LIMIT", "maybe"),
            ("HUB_SEARCH", "sometimes"),
            ("HUB_LOG_FORMAT", "xml"),
            ("HUB_SOCKET_SILENCE_MS", "0"),
            ("HUB_SOCKET_SILENCE_MS", "soon"),
            ("HUB_AGENT_INFLIGHT", "-1"),
            ("HUB_STORE_SNAPSHOT_MB", "big"),
            ("HUB_STORE_CLEANING_LAG_MB", "-1"),
            ("HUB_CONSOLE_HOLD_COMMITS", "x"),
            ("HUB_STORE_DEFER_MIN_PAIRS", "1e3"),
            ("HUB_ADMIN_TOKEN", " "),
            ("HUB_ADMIN_TOKEN", "two words"),
        ] {
            let e = config(&[(k, v)]).expect_err(&format!("{k}={v}"));
            assert!(e.contains(k), "{e}");
        }
        let c = config(&[
            ("HUB_STORE_SNAPSHOT_MB", "0.05"),
            ("HUB_STORE_DEFER_MIN_PAIRS", " 2"),
        ])
        .unwrap();
        assert_eq!((c.store.snapshot_mb, c.store.defer_min_pairs), (0.05, 2));
        assert_eq!(
            config(&[]).unwrap().store,
            crate::store::Settings::default()
        );
    }

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
