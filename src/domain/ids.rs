//! Newtype ids and the time type of the domain. Ids are opaque strings on the wire.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_string())
            }
        }
    };
}

id_type!(
    /// A conversation: one thread with one contact on one channel.
    ConversationId
);
id_type!(
    /// A customer message.
    MessageId
);
id_type!(
    /// A brand reply (agent or bot).
    ReplyId
);
id_type!(
    /// An internal comment.
    CommentId
);
id_type!(
    /// A staff member.
    AgentId
);
id_type!(
    /// A customer, identified by a widget token.
    ContactId
);
id_type!(
    /// A bot.
    AssistantId
);

/// A point in time, in milliseconds since the Unix epoch (UTC). On the wire it is an
/// RFC 3339 string with milliseconds, e.g. `2026-11-22T10:00:00.123Z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ts(pub i64);

impl Ts {
    /// RFC 3339 UTC text with milliseconds.
    pub fn to_rfc3339(self) -> String {
        match chrono::DateTime::from_timestamp_millis(self.0) {
            Some(dt) => dt.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            None => "1970-01-01T00:00:00.000Z".to_string(),
        }
    }

    /// Parses RFC 3339 text (any offset) into a `Ts`.
    pub fn parse(s: &str) -> Option<Ts> {
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|dt| Ts(dt.timestamp_millis()))
    }
}

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Ts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ts::parse(&s).ok_or_else(|| serde::de::Error::custom("invalid RFC 3339 time"))
    }
}
