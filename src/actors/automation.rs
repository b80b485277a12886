//! The team's automation settings (an extension): `GET /api/automation` (any agent) and
//! `PATCH /api/automation` (admin), both answering
//! `{"auto_assign": bool, "reassign_offline": bool, "auto_close_seconds": n | null}`. Kept
//! in the store's metadata; all are off until an admin turns them on.
//!
//! * `auto_assign`: pending customer messages are given to online agents
//!   ([`super::router`]).
//! * `reassign_offline`: the messages an agent holds in Mine go back to Pending when the
//!   agent goes offline, for someone present ([`super::router`]).
//! * `auto_close_seconds`: an open conversation with no message waiting for the team and
//!   no event for that long is closed by the hub ([`super::closer`]).

use crate::store::{keys, Batch, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The settings as stored and shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Automation {
    #[serde(default)]
    pub auto_assign: bool,
    #[serde(default)]
    pub reassign_offline: bool,
    #[serde(default)]
    pub auto_close_seconds: Option<u64>,
}

/// The longest `auto_close_seconds` taken: a year.
pub const AUTO_CLOSE_MAX_SECONDS: u64 = 366 * 24 * 3600;

const KEY: &[u8] = b"automation";

/// The stored settings (all off when none).
pub fn load(store: &Store) -> Result<Automation, StoreError> {
    Ok(store
        .get_json::<Automation>(keys::META, &[KEY])?
        .unwrap_or_default())
}

/// Stores `a` durably.
pub async fn save(store: &Arc<Store>, a: &Automation) -> Result<(), StoreError> {
    let mut b = Batch::default();
    b.put_json(keys::META, &[KEY], a);
    store.commit(b).await
}

/// A change asked for: each field absent (unchanged) or given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Patch {
    pub auto_assign: Option<bool>,
    pub reassign_offline: Option<bool>,
    pub auto_close_seconds: Option<Option<u64>>,
}

impl Patch {
    /// Reads a `PATCH` body: an object of known fields only, each of its type
    /// (`auto_close_seconds` a whole number of seconds from 1 to a year, or null).
    pub fn parse(v: &serde_json::Value) -> Result<Patch, String> {
        let obj = v
            .as_object()
            .ok_or("the body must be an object of settings")?;
        let mut p = Patch::default();
        for (k, v) in obj {
            match k.as_str() {
                "auto_assign" => {
                    p.auto_assign = Some(v.as_bool().ok_or("auto_assign must be true or false")?)
                }
                "reassign_offline" => {
                    p.reassign_offline = Some(
                        v.as_bool()
                            .ok_or("reassign_offline must be true or false")?,
                    )
                }
                "auto_close_seconds" => {
                    p.auto_close_seconds = Some(match v {
                        serde_json::Value::Null => None,
                        v => Some(
                            v.as_u64()
                                .filter(|n| (1..=AUTO_CLOSE_MAX_SECONDS).contains(n))
                                .ok_or(
                                    "auto_close_seconds must be a whole number of seconds from 1 to 31622400, or null",
                                )?,
                        ),
                    })
                }
                other => return Err(format!("unknown setting {other:?}")),
            }
        }
        Ok(p)
    }

    /// `a` with this change.
    pub fn apply(&self, mut a: Automation) -> Automation {
        if let Some(on) = self.auto_assign {
            a.auto_assign = on;
        }
        if let Some(on) = self.reassign_offline {
            a.reassign_offline = on;
        }
        if let Some(after) = self.auto_close_seconds {
            a.auto_close_seconds = after;
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let a = Automation {
            auto_assign: true,
            reassign_offline: false,
            auto_close_seconds: Some(3600),
        };
        let p = Patch::parse(&json!({"auto_close_seconds": null})).unwrap();
        assert_eq!(
            p.apply(a),
            Automation {
                auto_assign: true,
                reassign_offline: false,
                auto_close_seconds: None
            }
        );
        let p = Patch::parse(&json!({"reassign_offline": true})).unwrap();
        assert_eq!(
            p.apply(a),
            Automation {
                reassign_offline: true,
                ..a
            }
        );
        assert_eq!(Patch::parse(&json!({})).unwrap().apply(a), a);
        for bad in [
            json!([]),
            json!({"auto_assign": "yes"}),
            json!({"reassign_offline": null}),
            json!({"auto_close_seconds": 0}),
            json!({"auto_close_seconds": -5}),
            json!({"auto_close_seconds": 1.5}),
            json!({"auto_close_seconds": AUTO_CLOSE_MAX_SECONDS + 1}),
            json!({"auto_close": 60}),
        ] {
            assert!(Patch::parse(&bad).is_err(), "{bad}");
        }
    }
}
