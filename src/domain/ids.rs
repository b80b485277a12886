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

/// What separates a conversation id from a message's number in that conversation.
const MESSAGE_IN: &str = ".m";

impl MessageId {
    /// The id of the `n`th customer message of `conversation` (1-based): it names its
    /// conversation, so that nothing has to be stored to find it (`conversation`).
    pub fn numbered(conversation: &ConversationId, n: usize) -> MessageId {
        MessageId(format!("{conversation}{MESSAGE_IN}{n}"))
    }

    /// The conversation a numbered id names; `None` for ids of stores written before
    /// numbered ids (they are found through their message row).
    pub fn conversation(&self) -> Option<ConversationId> {
        let (conv, n) = self.0.rsplit_once(MESSAGE_IN)?;
        let numbered = !conv.is_empty()
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
            && !conv.contains('/');
        numbered.then(|| ConversationId(conv.to_string()))
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_message_ids_name_their_conversation() {
        let c = ConversationId::from("c_0190ab12cd34ef56ab78");
        let m = MessageId::numbered(&c, 12);
        assert_eq!(m.as_str(), "c_0190ab12cd34ef56ab78.m12");
        assert_eq!(m.conversation(), Some(c));
        for legacy in [
            "m_0190ab12cd34ef56ab78",
            "x.m",
            ".m3",
            "c.m3a",
            "a/b.m1",
            "",
        ] {
            assert_eq!(MessageId::from(legacy).conversation(), None, "{legacy}");
        }
    }
}
