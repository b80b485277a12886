//! The store's own settings, read from the environment once, by [`crate::config::Config`].

use super::{lazy, recovery, writer};

/// How the store writes: only tests and measurements change these.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// `HUB_STORE_SNAPSHOT_MB`: log megabytes between two recovery snapshots (fractions
    /// allowed; `0`: none). See `recovery.rs`.
    pub snapshot_mb: f64,
    /// `HUB_STORE_CLEANING_LAG_MB`: log megabytes written after a segment becomes half
    /// dead before cleaning moves its live pages out (`0` cleans at once, as sled did).
    pub cleaning_lag_mb: f64,
    /// `HUB_STORE_DEFER_MIN_PAIRS`: a commit with fewer deferred records writes them in
    /// place (`0`: every commit defers). See `lazy.rs`.
    pub defer_min_pairs: usize,
    /// `HUB_CONSOLE_HOLD_COMMITS`: how many commits' consoles' frames the writer may hold
    /// for the next commit when one follows at once (`0`: none).
    pub console_hold_commits: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            snapshot_mb: recovery::DEFAULT_EVERY_MB,
            cleaning_lag_mb: writer::CLEANING_LAG_MB,
            defer_min_pairs: lazy::DEFER_MIN_PAIRS,
            console_hold_commits: writer::CONSOLE_HOLD_COMMITS,
        }
    }
}

impl Settings {
    /// The settings from `var` (the set, non-blank variables), defaults for those
    /// unset; a value that means nothing is an error that names its variable.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let d = Settings::default();
        Ok(Settings {
            snapshot_mb: megabytes(&var, "HUB_STORE_SNAPSHOT_MB", d.snapshot_mb)?,
            cleaning_lag_mb: megabytes(&var, "HUB_STORE_CLEANING_LAG_MB", d.cleaning_lag_mb)?,
            defer_min_pairs: whole(&var, "HUB_STORE_DEFER_MIN_PAIRS", d.defer_min_pairs)?,
            console_hold_commits: whole(&var, "HUB_CONSOLE_HOLD_COMMITS", d.console_hold_commits)?,
        })
    }

    /// The cleaning lag in bytes (`as` saturates: a huge value means "almost never").
    pub(super) fn cleaning_lag_bytes(&self) -> u64 {
        (self.cleaning_lag_mb * 1024.0 * 1024.0) as u64
    }
}

fn megabytes(var: &impl Fn(&str) -> Option<String>, k: &str, default: f64) -> Result<f64, String> {
    let Some(v) = var(k) else {
        return Ok(default);
    };
    match v.trim().parse::<f64>() {
        Ok(mb) if mb >= 0.0 && mb.is_finite() => Ok(mb),
        _ => Err(format!(
            "{k} must be a number of megabytes (0 or more), not {v:?}"
        )),
    }
}

fn whole<T: std::str::FromStr>(
    var: &impl Fn(&str) -> Option<String>,
    k: &str,
    default: T,
) -> Result<T, String> {
    let Some(v) = var(k) else {
        return Ok(default);
    };
    v.trim()
        .parse()
        .map_err(|_| format!("{k} must be a whole number (0 or more), not {v:?}"))
}
