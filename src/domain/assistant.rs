//! Assistants (bots): their definition and the pure decision of how one handles a
//! customer message (PROTOCOL §6.4).

use super::ids::AssistantId;
use crate::auth::caseless;
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

/// Whether `needle` (blanks around it ignored) is in `haystack`, whose case is folded
/// already ([`caseless`]).
fn contains_ci(haystack: &str, needle: &str) -> bool {
    let n = caseless(needle.trim());
    !n.is_empty() && haystack.contains(&n)
}

impl Assistant {
    /// Decides, by case-insensitive substring match, in the order of PROTOCOL §6.4; of
    /// several rules that match, the first one listed answers.
    pub fn decide(&self, text: &str) -> BotDecision {
        let lower = caseless(text);
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

#[cfg(test)]
mod tests {
    use super::{Assistant, BotDecision, Rule};

    fn assistant(rules: &[(&str, &str)], spam: &[&str]) -> Assistant {
        Assistant {
            id: "a".to_string().into(),
            name: "Bot".into(),
            status: "published".into(),
            channels: vec!["web".into()],
            rules: rules
                .iter()
                .map(|(m, r)| Rule {
                    pattern: m.to_string(),
                    reply: r.to_string(),
                })
                .collect(),
            transfer_keywords: vec![],
            transfer_reply: None,
            spam_keywords: spam.iter().map(|k| k.to_string()).collect(),
            default_reply: Some("default".into()),
        }
    }

    #[test]
    fn matching_folds_case_whole_and_the_first_listed_rule_answers() {
        let a = assistant(
            &[
                ("refund", "first"),
                ("refund policy", "second"),
                ("straße", "street"),
            ],
            &[" Casino ", "GROẞGEWINN"],
        );
        let reply = |t: &str| match a.decide(t) {
            BotDecision::Reply(r) => r,
            other => panic!("{t}: {other:?}"),
        };
        assert_eq!(reply("Your REFUND POLICY?"), "first");
        // Capitals that are two letters: "ß" is "SS".
        assert_eq!(reply("which STRASSE"), "street");
        assert_eq!(reply("welche Straße"), "street");
        assert_eq!(reply("STRAẞE 5"), "street");
        assert_eq!(reply("nothing"), "default");
        assert_eq!(a.decide("CASINO bonus"), BotDecision::Spam);
        assert_eq!(a.decide("ein großgewinn"), BotDecision::Spam);
        assert_eq!(a.decide("EIN GROSSGEWINN"), BotDecision::Spam);
    }

    #[test]
    fn matching_reads_letters_however_they_are_spelled_in_unicode() {
        // The rule with a precomposed "é"; customers with "e" and a combining accent
        // (NFD), or full-width letters from an East Asian keyboard.
        let a = assistant(&[("caf\u{e9}", "coffee"), ("sos", "help")], &[]);
        let reply = |t: &str| match a.decide(t) {
            BotDecision::Reply(r) => r,
            other => panic!("{t}: {other:?}"),
        };
        assert_eq!(reply("un cafe\u{301} ?"), "coffee");
        assert_eq!(reply("UN CAFE\u{301}"), "coffee");
        assert_eq!(reply("ＳＯＳ"), "help");
        assert_eq!(reply("cafe"), "default");
    }
}
