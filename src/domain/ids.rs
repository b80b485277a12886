//! Newtype ids and the time type of the domain. Ids are opaque strings on the wire.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::Arc;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Shared text: an id is cloned into every event, entry and frame that names it,
        /// so a clone is a reference count, not an allocation and a copy.
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Arc<str>);

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
                Self(Arc::from(s))
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(Arc::from(s))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(IdVisitor).map(Self)
            }
        }
    };
}

/// Reads an id from a string (borrowed or owned) without an intermediate `String`.
struct IdVisitor;

impl<'de> serde::de::Visitor<'de> for IdVisitor {
    type Value = Arc<str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an id string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Arc<str>, E> {
        Ok(Arc::from(v))
    }
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
        MessageId::from(format!("{conversation}{MESSAGE_IN}{n}"))
    }

    /// The conversation a numbered id names; `None` for ids of stores written before
    /// numbered ids (they are found through their message row).
    pub fn conversation(&self) -> Option<ConversationId> {
        let (conv, n) = self.0.rsplit_once(MESSAGE_IN)?;
        let numbered = !conv.is_empty()
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
            && !conv.contains('/');
        numbered.then(|| ConversationId::from(conv))
    }
}

/// A point in time, in milliseconds since the Unix epoch (UTC). On the wire it is an
/// RFC 3339 string with milliseconds, e.g. `2026-11-22T10:00:00.123Z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ts(pub i64);

impl Ts {
    /// RFC 3339 UTC text with milliseconds.
    pub fn to_rfc3339(self) -> String {
        match self.rfc3339_bytes() {
            // The bytes are ASCII digits and separators.
            Some(b) => String::from_utf8_lossy(&b).into_owned(),
            None => match chrono::DateTime::from_timestamp_millis(self.0) {
                Some(dt) => dt.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                None => "1970-01-01T00:00:00.000Z".to_string(),
            },
        }
    }

    /// The RFC 3339 text of a time in years 0000–9999, formatted on the stack: every
    /// event, message and frame carries several times, and chrono's formatting took
    /// ≈ 2 % of the socket threads at 10,000 messages/s. `None` outside those years.
    fn rfc3339_bytes(self) -> Option<[u8; 24]> {
        let days = self.0.div_euclid(86_400_000);
        let ms_of_day = self.0.rem_euclid(86_400_000);
        // Civil date from days since 1970-01-01 (H. Hinnant, "chrono-Compatible
        // Low-Level Date Algorithms").
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        if !(0..=9999).contains(&year) {
            return None;
        }
        let (h, rest) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
        let (mi, rest) = (rest / 60_000, rest % 60_000);
        let (sec, ms) = (rest / 1000, rest % 1000);
        let mut b = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut v: i64| {
            for i in (at..at + width).rev() {
                b[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, h);
        put(14, 2, mi);
        put(17, 2, sec);
        put(20, 3, ms);
        Some(b)
    }

    /// Parses RFC 3339 text (any offset) into a `Ts`; `None` for a time that could not
    /// be written back as RFC 3339 in UTC (a year past 9999 once the offset is applied:
    /// `9999-12-31T23:59:60Z`, `9999-12-31T23:00:00-01:00`), which stored in a record
    /// would make it unreadable.
    pub fn parse(s: &str) -> Option<Ts> {
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|dt| Ts(dt.timestamp_millis()))
            .filter(|t| t.rfc3339_bytes().is_some())
    }
}

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.rfc3339_bytes() {
            // ASCII: always UTF-8.
            Some(b) => s.serialize_str(std::str::from_utf8(&b).unwrap_or_default()),
            None => s.serialize_str(&self.to_rfc3339()),
        }
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

    #[test]
    fn times_are_formatted_as_chrono_does() {
        let chrono_text = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|dt| dt.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        };
        // Epoch, leap days, century rules, before 1970, the edges of the 4-digit years.
        let edges = [
            0,
            -1,
            1,
            951_782_400_000,   // 2000-02-29
            4_107_456_000_000, // 2100-02-28
            4_107_542_399_999, // 2100-02-28T23:59:59.999
            1_795_000_000_123,
            -62_167_219_200_000, // 0000-01-01
            253_402_300_799_999, // 9999-12-31T23:59:59.999
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let random = (0..100_000).map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 315_537_897_600_000) as i64 - 62_167_219_200_000
        });
        for ms in edges.into_iter().chain(random) {
            assert_eq!(Some(Ts(ms).to_rfc3339()), chrono_text(ms), "{ms}");
            let json = serde_json::to_string(&Ts(ms)).unwrap();
            assert_eq!(json, format!("\"{}\"", Ts(ms).to_rfc3339()));
            assert_eq!(Ts::parse(&Ts(ms).to_rfc3339()), Some(Ts(ms)));
        }
        // Outside 0000–9999 chrono's own text is kept.
        for ms in [-62_167_219_200_001, 253_402_300_800_000] {
            assert_eq!(Ts(ms).rfc3339_bytes(), None);
            assert_eq!(Some(Ts(ms).to_rfc3339()), chrono_text(ms));
        }
        // Text that lands outside them once in UTC is not a time the hub takes in.
        for text in [
            "9999-12-31T23:59:60Z",
            "9999-12-31T23:00:00-01:00",
            "0000-01-01T00:00:00+01:00",
        ] {
            assert_eq!(Ts::parse(text), None, "{text}");
        }
        assert_eq!(
            Ts::parse("9999-12-31T23:59:59.999Z"),
            Some(Ts(253_402_300_799_999))
        );
    }

    #[test]
    fn ids_are_plain_strings_on_the_wire() {
        let id = ConversationId::from("c_1");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"c_1\"");
        // Escaped text (an owned string) and a JSON value both read back.
        let escaped: ContactId = serde_json::from_str("\"k\\u00e9\\\"x\"").unwrap();
        assert_eq!(escaped.as_str(), "k\u{e9}\"x");
        let from_value: AgentId = serde_json::from_value(serde_json::json!("a_9")).unwrap();
        assert_eq!(from_value, AgentId::from("a_9"));
        assert!(serde_json::from_str::<MessageId>("7").is_err());
        assert!(serde_json::from_str::<MessageId>("null").is_err());
        // A clone shares the text.
        let copy = id.clone();
        assert!(Arc::ptr_eq(&id.0, &copy.0));
    }
}
