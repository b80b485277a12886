//! Which index entries a message or conversation has. Folders (PROTOCOL §6.3) and
//! conversation lists (§6.2) are prefix scans of these; counts are kept per index.

use crate::domain::{ConvState, Conversation, Message, Status};

/// Index names starting with this are only counted: no entry is written, which saves
/// sled work on the hot path where only the number matters (stats).
pub const COUNT_ONLY: char = '#';

/// One entry of a named index, ordered by `order` (a seq, or a time for timers).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IndexEntry {
    pub name: String,
    pub order: u64,
    pub id: String,
}

/// Index names, shared by writers and readers.
pub mod names {
    pub const PENDING: &str = "pending";
    pub const HELP_ALL: &str = "help";
    pub const ANSWERED: &str = "answered";
    pub const ARCHIVED: &str = "archived";
    pub const SPAM: &str = "spam";
    pub const ALL: &str = "all";
    pub const TIMERS: &str = "timers";
    pub const CONV_OPEN: &str = "conv/open";
    pub const CONV_CLOSED: &str = "conv/closed";
    pub const CONV_SPAM: &str = "conv/spam";
    pub const CONV_ALL: &str = "conv/all";
    /// First-response times (order = milliseconds).
    pub const FIRST_RESPONSE: &str = "stats/first_response";
    /// Resolution times (order = milliseconds).
    pub const RESOLUTION: &str = "stats/resolution";

    /// Messages with status `s` (any conversation). Counted only (see [`super::COUNT_ONLY`]).
    pub fn status(s: &str) -> String {
        format!("#status/{s}")
    }
    /// Prefix of the per-channel counts.
    pub const CHANNEL_PREFIX: &str = "#channel/";
    /// Messages of conversations on `channel`. Counted only.
    pub fn channel(c: &str) -> String {
        format!("{CHANNEL_PREFIX}{c}")
    }

    /// Conversations their customer rated `score` (1 to 5). Counted only.
    pub fn rating(score: u8) -> String {
        format!("#rating/{score}")
    }

    /// Conversations (not spam) a bot replied in. Counted only.
    pub const BOT_ANSWERED: &str = "#bot/answered";
    /// Those of them no human took part in (nor handed over by the bot). Counted only.
    pub const BOT_ALONE: &str = "#bot/alone";

    /// Messages assigned (or help-answered) to `agent`.
    pub fn mine(agent: &str) -> String {
        format!("mine/{agent}")
    }
    /// Messages `agent` holds on hold.
    pub fn on_hold(agent: &str) -> String {
        format!("hold/{agent}")
    }
    /// Open help requests made by `agent`.
    pub fn help_by(agent: &str) -> String {
        format!("help/{agent}")
    }
    /// The comments that mention `agent` (an extension: `GET /api/mentions`).
    pub fn mentions(agent: &str) -> String {
        format!("mention/{agent}")
    }
}

fn entry(name: impl Into<String>, order: u64, id: &str) -> IndexEntry {
    IndexEntry {
        name: name.into(),
        order,
        id: id.to_string(),
    }
}

/// The index entries of a message in a conversation on `channel` whose spam flag is `spam`.
pub fn message_entries(m: &Message, spam: bool, channel: &str) -> Vec<IndexEntry> {
    let id = m.id.as_str();
    let mut v = vec![
        entry(names::ALL, m.seq, id),
        entry(names::status(m.status.as_str()), 0, id),
        entry(names::channel(channel), 0, id),
    ];
    if spam {
        v.push(entry(names::SPAM, m.seq, id));
    }
    let assignee = m.assignee.as_deref();
    match m.status {
        Status::Pending if !spam => v.push(entry(names::PENDING, m.seq, id)),
        Status::Pending => {}
        Status::Assigned | Status::HelpAnswered => {
            if let Some(a) = assignee {
                v.push(entry(names::mine(a), m.seq, id));
            }
        }
        Status::OnHold => {
            if let Some(a) = assignee {
                v.push(entry(names::on_hold(a), m.seq, id));
            }
            if let Some(until) = m.hold_until {
                v.push(entry(names::TIMERS, until.0.max(0) as u64, id));
            }
        }
        Status::HelpRequested => {
            v.push(entry(names::HELP_ALL, m.seq, id));
            if let Some(h) = &m.help {
                v.push(entry(names::help_by(&h.requested_by), m.seq, id));
            }
        }
        Status::Answered => v.push(entry(names::ANSWERED, m.seq, id)),
        Status::Archived => v.push(entry(names::ARCHIVED, m.seq, id)),
    }
    v
}

/// The index entries of a conversation (ordered by its `conversation.opened` seq).
pub fn conversation_entries(c: &Conversation) -> Vec<IndexEntry> {
    let id = c.id.as_str();
    let o = c.opened_seq;
    let group = if c.spam {
        names::CONV_SPAM
    } else if c.state == ConvState::Open {
        names::CONV_OPEN
    } else {
        names::CONV_CLOSED
    };
    vec![entry(names::CONV_ALL, o, id), entry(group, o, id)]
}

/// A comment's entry in the mentions of one agent it names, ordered by its seq.
pub fn mention_entry(agent: &str, seq: u64, comment: &str) -> IndexEntry {
    entry(names::mentions(agent), seq, comment)
}

/// A conversation's rating, counted under its score.
pub fn rating_entry(score: u8, conversation: &str) -> IndexEntry {
    entry(names::rating(score), 0, conversation)
}

/// A conversation's entries in the automation counts: a bot replied (not spam), and
/// did so alone.
pub fn bot_entries(
    bot_replied: bool,
    human_part: bool,
    spam: bool,
    conversation: &str,
) -> Vec<IndexEntry> {
    let mut out = Vec::new();
    if bot_replied && !spam {
        out.push(entry(names::BOT_ANSWERED, 0, conversation));
        if !human_part {
            out.push(entry(names::BOT_ALONE, 0, conversation));
        }
    }
    out
}

/// A duration sample (first response, resolution) of a conversation.
pub fn sample_entry(name: &str, millis: i64, conversation: &str) -> IndexEntry {
    entry(name, millis.max(0) as u64, conversation)
}
