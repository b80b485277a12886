//! Tokens and who they belong to. Tokens carry 128 random bits (hex); only their SHA-256
//! is stored, and lookups go by hash (so a comparison never leaks a prefix). A contact's
//! token starts with its contact id (`k_….` + secret), so it is checked against the
//! hash in the contact's record, with no key of its own; contact tokens of stores
//! written before have no id in front and are found through `keys::TOKEN`.

use crate::domain::{AgentId, ContactId, Role};
use crate::error::ApiError;
use crate::store::{keys, Batch, Store, StoreError};
use dashmap::DashMap;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// A fresh id with a readable kind prefix (`c_…`, `m_…`): the creation time in
/// milliseconds (hex), then 64 random bits. Time-ordered ids keep new rows together in
/// the store's B-tree, so a group commit dirties few pages.
pub fn new_id(prefix: &str) -> String {
    let ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
    format!("{prefix}_{ms:012x}{}", random_hex(8))
}

/// A fresh bearer token (128 bits).
pub fn new_token() -> String {
    random_hex(16)
}

/// A fresh token for contact `id`: its id, a dot, then 128 random bits.
pub fn new_contact_token(id: &ContactId) -> String {
    format!("{id}.{}", new_token())
}

/// SHA-256 of a token, hex.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Who a token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    Agent { id: AgentId, role: Role },
    Contact { id: ContactId, channel: String },
}

/// A staff member as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AgentRecord {
    pub id: AgentId,
    pub name: String,
    pub role: Role,
    pub capacity: Option<u32>,
    /// The channels automatic assignment gives this agent (an extension); none: every
    /// channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    pub token_hash: String,
}

/// A customer as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContactRecord {
    pub id: ContactId,
    pub channel: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// The hash of the contact's token (`new_contact_token`); absent in stores written
    /// before, whose contact tokens have a `keys::TOKEN` record instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_hash: Option<String>,
}

impl ContactRecord {
    /// What agents see of a contact (never its token's hash).
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({"id": self.id, "name": self.name, "email": self.email, "channel": self.channel})
    }
}

/// What a token hash points to (contact tokens of stores written before).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum TokenRecord {
    Contact { id: ContactId },
}

/// Most contacts kept in the token cache; past that, an arbitrary one makes room (a miss
/// costs one store read), so a day with millions of contacts does not grow memory.
const CONTACT_CACHE: usize = 100_000;

/// The agents (few: all in memory) and a bounded cache of contacts.
#[derive(Default)]
pub struct Directory {
    agents: DashMap<AgentId, AgentRecord>,
    agent_tokens: DashMap<String, AgentId>,
    contacts: DashMap<String, ContactRecord>,
}

impl Directory {
    /// Loads every agent from the store (start-up; agents are a small table).
    pub fn load(store: &Store) -> Result<Directory, StoreError> {
        let d = Directory::default();
        for a in store.scan_json::<AgentRecord>(keys::AGENT)? {
            d.agent_tokens.insert(a.token_hash.clone(), a.id.clone());
            d.agents.insert(a.id.clone(), a);
        }
        Ok(d)
    }

    /// Adds an agent already written to the store to the in-memory maps.
    pub fn insert_loaded(&self, a: AgentRecord) {
        if let Some(old) = self.agents.get(&a.id).map(|o| o.token_hash.clone()) {
            self.agent_tokens.remove(&old);
        }
        self.agent_tokens.insert(a.token_hash.clone(), a.id.clone());
        self.agents.insert(a.id.clone(), a);
    }

    /// The agent with this id.
    pub fn agent(&self, id: &AgentId) -> Option<AgentRecord> {
        self.agents.get(id).map(|a| a.clone())
    }

    /// Whether the token whose hash is `token_hash` still signs agent `id` in (a token
    /// replaced since leaves the map in the same step the new one enters it).
    pub fn holds_agent_token(&self, id: &AgentId, token_hash: &str) -> bool {
        self.agent_tokens
            .get(token_hash)
            .is_some_and(|owner| *owner == *id)
    }

    /// Every agent, sorted by name.
    pub fn agents(&self) -> Vec<AgentRecord> {
        let mut v: Vec<AgentRecord> = self.agents.iter().map(|a| a.value().clone()).collect();
        v.sort_by_key(|a| a.name.to_lowercase());
        v
    }

    /// The agent whose name matches, case-insensitively ([`caseless`]).
    pub fn agent_by_name(&self, name: &str) -> Option<AgentRecord> {
        let n = caseless(name);
        self.agents
            .iter()
            .find(|a| caseless(&a.name) == n)
            .map(|a| a.clone())
    }

    /// Records an agent durably, then in memory.
    pub async fn put_agent(&self, store: &Arc<Store>, a: AgentRecord) -> Result<(), StoreError> {
        let mut b = Batch::default();
        b.put_json(keys::AGENT, &[a.id.as_str().as_bytes()], &a);
        store.commit(b).await?;
        self.insert_loaded(a);
        Ok(())
    }

    fn cache_contact(&self, token_hash: String, c: ContactRecord) {
        if self.contacts.len() >= CONTACT_CACHE {
            let victim = self.contacts.iter().next().map(|e| e.key().clone());
            if let Some(k) = victim {
                self.contacts.remove(&k);
            }
        }
        self.contacts.insert(token_hash, c);
    }

    /// Records a new contact durably and returns its token.
    pub async fn put_contact(
        &self,
        store: &Arc<Store>,
        mut c: ContactRecord,
    ) -> Result<String, StoreError> {
        let token = new_contact_token(&c.id);
        let token_hash = hash_token(&token);
        c.token_hash = Some(token_hash.clone());
        let mut b = Batch::default();
        b.put_json(keys::CONTACT, &[c.id.as_str().as_bytes()], &c);
        store.commit(b).await?;
        self.cache_contact(token_hash, c);
        Ok(token)
    }

    /// Who owns `token`, if anyone.
    pub async fn resolve(
        &self,
        store: &Arc<Store>,
        token: &str,
    ) -> Result<Option<Principal>, ApiError> {
        let h = hash_token(token);
        if let Some(id) = self.agent_tokens.get(&h).map(|i| i.clone()) {
            if let Some(a) = self.agents.get(&id) {
                return Ok(Some(Principal::Agent {
                    id: a.id.clone(),
                    role: a.role,
                }));
            }
        }
        if let Some(c) = self.contacts.get(&h) {
            return Ok(Some(Principal::Contact {
                id: c.id.clone(),
                channel: c.channel.clone(),
            }));
        }
        let hh = h.clone();
        let named = token.split_once('.').map(|(id, _)| id.to_string());
        let found = store
            .read(move |s| {
                if let Some(id) = named {
                    let c = s.get_json::<ContactRecord>(keys::CONTACT, &[id.as_bytes()])?;
                    return Ok(c.filter(|c| c.token_hash.as_deref() == Some(hh.as_str())));
                }
                let Some(TokenRecord::Contact { id }) =
                    s.get_json::<TokenRecord>(keys::TOKEN, &[hh.as_bytes()])?
                else {
                    return Ok(None);
                };
                s.get_json::<ContactRecord>(keys::CONTACT, &[id.as_str().as_bytes()])
            })
            .await?;
        Ok(found.map(|c| {
            let p = Principal::Contact {
                id: c.id.clone(),
                channel: c.channel.clone(),
            };
            self.cache_contact(h, c);
            p
        }))
    }
}

/// The bearer token of a request, if any. `Authorization` is not a list (RFC 9110
/// §5.3): a request carrying it twice names no one token, and gets none (401).
pub fn bearer(req: &actix_web::HttpRequest) -> Option<&str> {
    crate::routes::single_header(req, actix_web::http::header::AUTHORIZATION)
        .ok()??
        .to_str()
        .ok()?
        .trim_start()
        .split_once(' ')
        // The scheme is case-insensitive (RFC 9110 §11.1).
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty())
}

/// `text` with case and Unicode spelling folded away, for comparing names, mentions and
/// bot keywords as a reader would:
/// * compatibility-normalized first (NFKC): "Amélie" typed with a combining accent
///   (NFD, as some keyboards and macOS file names give it) is the "Amélie" of one
///   precomposed letter, and full-width "ＳＯＳ" is "SOS", and that without the characters that show nothing ([`invisible`]): "Zed" and "Zed"
///   with a zero-width space behind it are one name, and "casino" with a soft hyphen
///   inside is "casino" to a spam keyword;
/// * then lower, upper, then lower case again, so that letters whose capital is two
///   letters compare equal to them ("Straße" and "STRASSE"), which lower case alone
///   does not do, and so does the capital "ẞ", which upper case leaves as it is
///   ("STRAẞE"; upper then lower gave "straße" for it, "strasse" for "Straße");
/// * normalized again, as changing case can undo it ("İ" lowers to "i" and a
///   combining dot).
pub fn caseless(text: &str) -> String {
    use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};
    // Most text is ASCII, which NFKC leaves as it is and whose case folds one letter for
    // one (`cargo bench --bench hot_paths -- bot`: a 4,096-letter message 3 µs instead
    // of 80).
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    let spelled: std::borrow::Cow<str> =
        if is_nfkc_quick(text.chars()) == IsNormalized::Yes && !text.chars().any(invisible) {
            text.into()
        } else {
            text.nfkc()
                .filter(|c| !invisible(*c))
                .collect::<String>()
                .into()
        };
    let folded = spelled.to_lowercase().to_uppercase().to_lowercase();
    if is_nfkc_quick(folded.chars()) == IsNormalized::Yes {
        folded
    } else {
        folded.nfkc().collect()
    }
}

/// Characters that show nothing (Unicode's `Default_Ignorable_Code_Point`: zero-width
/// spaces and joiners, soft hyphens, bidirectional controls, variation selectors, tags,
/// fillers).
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{34f}'
            | '\u{61c}'
            | '\u{115f}'..='\u{1160}'
            | '\u{17b4}'..='\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{feff}'
            | '\u{ffa0}'
            | '\u{fff0}'..='\u{fff8}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0000}'..='\u{e0fff}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caseless_reads_what_a_reader_sees() {
        for (a, b) in [
            ("Straße", "STRASSE"),
            ("STRAẞE", "strasse"),
            ("Am\u{e9}lie", "AME\u{301}LIE"),
            ("ＳＯＳ", "sos"),
            ("Zed", "Zed\u{200b}"),
            ("ca\u{ad}sino", "CASINO"),
            ("\u{feff}Ann", "ann"),
            ("c\u{2066}asino", "casino"),
            ("Vic\u{202e}", "vic"),
            ("Vic\u{fe0f}\u{e0041}", "VIC"),
        ] {
            assert_eq!(caseless(a), caseless(b), "{a:?} and {b:?}");
        }
        for (a, b) in [("Zed", "Zeb"), ("Anne", "Ann"), ("Élise", "Elise")] {
            assert_ne!(caseless(a), caseless(b), "{a:?} and {b:?}");
        }
    }

    #[test]
    fn contact_cache_stays_bounded_and_keeps_the_newest() {
        let d = Directory::default();
        let rec = |i: usize| ContactRecord {
            id: ContactId::from(format!("k{i}")),
            channel: "web".into(),
            name: None,
            email: None,
            token_hash: None,
        };
        for i in 0..CONTACT_CACHE + 50 {
            d.cache_contact(format!("h{i}"), rec(i));
        }
        assert_eq!(d.contacts.len(), CONTACT_CACHE);
        let newest = CONTACT_CACHE + 49;
        assert_eq!(
            d.contacts.get(&format!("h{newest}")).map(|c| c.id.clone()),
            Some(ContactId::from(format!("k{newest}")))
        );
    }
}
