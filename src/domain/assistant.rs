//! Assistants (bots): their definition and the pure decision of how one handles a
//! customer message (PROTOCOL §6.4).

use super::ids::AssistantId;
use serde::{Deserialize, Serialize};

/// One `match` → `reply` rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    #[serde(rename = "match")]
    pub pattern: String,
    pub reply: String,
}

/// An assistant as stored and shown by `GET /api/assistants`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assistant {
    pub id: AssistantId,
    pub name: String,
    /// `draft` or `published`.
    pub status: String,
    pub channels: Vec<String>,
    pub rules: Vec<Rule>,
    pub transfer_keywords: Vec<String>,
    pub transfer_reply: Option<String>,
    pub spam_keywords: Vec<String>,
    pub default_reply: Option<String>,
}

/// What an assistant does with a customer message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BotDecision {
    /// A spam keyword matched: mark the conversation spam, leave the message pending.
    Spam,
    /// Hand over to a human, optionally saying something first.
    Transfer { reply: Option<String> },
    /// Answer with this text.
    Reply(String),
}

fn contains_ci(haystack_lower: &str, needle: &str) -> bool {
    let n = needle.trim().to_lowercase();
    !n.is_empty() && haystack_lower.contains(&n)
}

impl Assistant {
    /// Decides, by case-insensitive substring match, in the order of PROTOCOL §6.4.
    pub fn decide(&self, text: &str) -> BotDecision {
        let lower = text.to_lowercase();
        if self.spam_keywords.iter().any(|k| contains_ci(&lower, k)) {
            return BotDecision::Spam;
        }
        if self
            .transfer_keywords
            .iter()
            .any(|k| contains_ci(&lower, k))
        {
            return BotDecision::Transfer {
                reply: self.transfer_reply.clone(),
            };
        }
        if let Some(rule) = self.rules.iter().find(|r| contains_ci(&lower, &r.pattern)) {
            return BotDecision::Reply(rule.reply.clone());
        }
        match &self.default_reply {
            Some(r) => BotDecision::Reply(r.clone()),
            None => BotDecision::Transfer {
                reply: self.transfer_reply.clone(),
            },
        }
    }
}
