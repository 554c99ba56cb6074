//! The JSON shapes of agents, events and decisions.
//!
//! Identifiers are the platform's own strings (numbers are accepted and read
//! as their decimal text); skills are names with a proficiency.

use std::collections::BTreeMap;
use std::fmt;

use loket_router::{AgentKind, Channel, EventKind, Presence, Signals};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// An identifier as written: a string, or an integer read as its decimal text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ExternalId(pub String);

impl<'de> Deserialize<'de> for ExternalId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ExternalId, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = ExternalId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-empty string or a non-negative integer id")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<ExternalId, E> {
                if value.is_empty() || value.len() > MAX_ID_LEN {
                    return Err(E::custom(format_args!(
                        "ids are 1 to {MAX_ID_LEN} bytes, got {}",
                        value.len()
                    )));
                }
                Ok(ExternalId(value.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<ExternalId, E> {
                Ok(ExternalId(value.to_string()))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<ExternalId, E> {
                if value < 0 {
                    return Err(E::custom("ids may not be negative"));
                }
                Ok(ExternalId(value.to_string()))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

/// The longest identifier accepted, in bytes.
pub const MAX_ID_LEN: usize = 256;

/// Capacity as written: any channel left out is 0; `total` left out is the
/// sum of the channels. Values are checked (no negatives, at most 255 per
/// channel and 65,535 in total) when applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityLine {
    /// Live chat.
    pub chat: Option<i64>,
    /// WhatsApp.
    pub whatsapp: Option<i64>,
    /// Messenger.
    pub messenger: Option<i64>,
    /// SMS.
    pub sms: Option<i64>,
    /// Email.
    pub email: Option<i64>,
    /// Voice.
    pub voice: Option<i64>,
    /// Overall cap.
    pub total: Option<i64>,
}

/// Why a [`CapacityLine`] does not fit the router's limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CapacityError {
    /// The field at fault: `chat`, ..., `voice` or `total`.
    pub field: &'static str,
    /// What is wrong with its value.
    pub message: String,
}

impl CapacityLine {
    /// Largest capacity of one channel.
    pub const MAX_PER_CHANNEL: i64 = 255;
    /// Largest overall capacity.
    pub const MAX_TOTAL: i64 = 65_535;

    /// The capacity as the router takes it: channels left out are 0, a
    /// `total` left out is the sum of the channels (at most
    /// [`CapacityLine::MAX_TOTAL`]). A negative value, or one above
    /// [`CapacityLine::MAX_PER_CHANNEL`] (a channel) or
    /// [`CapacityLine::MAX_TOTAL`] (the total), is an error naming the field.
    pub fn to_capacity(&self) -> Result<loket_router::Capacity, CapacityError> {
        let check = |value: Option<i64>, field: &'static str, max: i64| match value {
            None => Ok(0),
            Some(v) if v < 0 => {
                Err(CapacityError { field, message: format!("negative capacity {v}") })
            }
            Some(v) if v > max => Err(CapacityError {
                field,
                message: format!("capacity {v} is more than the maximum {max}"),
            }),
            Some(v) => Ok(v as u32),
        };
        let per_channel = Self::MAX_PER_CHANNEL;
        let mut capacity = loket_router::Capacity {
            chat: check(self.chat, "chat", per_channel)?,
            whatsapp: check(self.whatsapp, "whatsapp", per_channel)?,
            messenger: check(self.messenger, "messenger", per_channel)?,
            sms: check(self.sms, "sms", per_channel)?,
            email: check(self.email, "email", per_channel)?,
            voice: check(self.voice, "voice", per_channel)?,
            total: 0,
        };
        capacity.total = match self.total {
            Some(_) => check(self.total, "total", Self::MAX_TOTAL)?,
            None => (capacity.chat
                + capacity.whatsapp
                + capacity.messenger
                + capacity.sms
                + capacity.email
                + capacity.voice)
                .min(Self::MAX_TOTAL as u32),
        };
        Ok(capacity)
    }
}

/// One line of `agents.jsonl`, and the body of an `agent` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentLine {
    /// The agent's id.
    pub id: ExternalId,
    /// `human` (default) or `bot`.
    #[serde(default)]
    pub kind: AgentKind,
    /// Skill name to proficiency 1..=10.
    #[serde(default)]
    pub skills: BTreeMap<String, i64>,
    /// Language codes, e.g. `["nl", "en"]`.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Capacity; left out, the router's default (chat 3, WhatsApp 5,
    /// Messenger 5, SMS 5, email 8, voice 1, total 10).
    #[serde(default)]
    pub capacity: Option<CapacityLine>,
    /// Presence; left out, `available`.
    #[serde(default)]
    pub presence: Option<Presence>,
    /// Team label.
    #[serde(default)]
    pub team: Option<String>,
    /// Tenant label.
    #[serde(default)]
    pub tenant: Option<String>,
}

/// A customer message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageLine {
    /// Conversation id; a new one opens a conversation.
    pub conversation: ExternalId,
    /// Customer id.
    pub customer: ExternalId,
    /// Channel.
    pub channel: Channel,
    /// Language code.
    pub language: String,
    /// Required skills: name to minimum proficiency.
    #[serde(default)]
    pub skills: BTreeMap<String, i64>,
    /// Customer tier, 0 and up.
    #[serde(default)]
    pub tier: Option<i64>,
    /// Buying intent 0..=1.
    #[serde(default)]
    pub buying_intent: Option<f64>,
    /// Handoff signals.
    #[serde(default)]
    pub signals: Signals,
    /// The text (kept for scoring; the router does not read it).
    #[serde(default)]
    pub text: Option<String>,
}

/// When an event happens: milliseconds since the Unix epoch, or RFC 3339.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum At {
    /// Milliseconds since the Unix epoch.
    Millis(u64),
    /// An RFC 3339 date-time such as `2026-11-23T09:00:00Z`.
    Text(String),
}

/// What an event does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    /// A customer message.
    Message(MessageLine),
    /// The platform closes a conversation.
    Close {
        /// The conversation.
        conversation: ExternalId,
    },
    /// An agent logs in or is updated (the full spec).
    Agent {
        /// The spec.
        agent: AgentLine,
    },
    /// An agent's presence changes.
    Presence {
        /// The agent.
        agent: ExternalId,
        /// The new presence.
        presence: Presence,
    },
    /// An agent logs out (presence offline).
    Logout {
        /// The agent.
        agent: ExternalId,
    },
    /// An agent's capacity changes.
    Capacity {
        /// The agent.
        agent: ExternalId,
        /// The new capacity.
        capacity: CapacityLine,
    },
    /// An agent's skills are replaced.
    Skills {
        /// The agent.
        agent: ExternalId,
        /// Skill name to proficiency.
        skills: BTreeMap<String, i64>,
    },
    /// An agent is removed.
    Remove {
        /// The agent.
        agent: ExternalId,
    },
    /// An agent accepts an offer.
    Accept {
        /// The conversation.
        conversation: ExternalId,
        /// The agent.
        agent: ExternalId,
    },
    /// An agent declines an offer.
    Decline {
        /// The conversation.
        conversation: ExternalId,
        /// The agent.
        agent: ExternalId,
    },
    /// The platform moves a conversation to an agent.
    Transfer {
        /// The conversation.
        conversation: ExternalId,
        /// The agent.
        agent: ExternalId,
    },
    /// Nothing but the passing of time (timers fire).
    Tick,
}

/// One line of `events.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventLine {
    /// When.
    pub at: At,
    /// What.
    #[serde(flatten)]
    pub body: EventBody,
}

/// One line of decision output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionRecord {
    /// The input line that caused it (0 for the agents file's start-up).
    pub line: u64,
    /// When, in milliseconds since the Unix epoch.
    pub at: u64,
    /// The conversation, as the platform names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation: Option<String>,
    /// The agent, as the platform names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// What happened and why.
    #[serde(flatten)]
    pub kind: EventKind,
    /// For `outside_business_hours`: the skill group's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skill_name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_lines_convert_with_checked_limits() {
        let line = CapacityLine { chat: Some(2), email: Some(3), ..CapacityLine::default() };
        let capacity = line.to_capacity().unwrap();
        assert_eq!((capacity.chat, capacity.email, capacity.total), (2, 3, 5));
        let capped = CapacityLine { total: Some(1), ..line.clone() }.to_capacity().unwrap();
        assert_eq!(capped.total, 1);
        let negative = CapacityLine { sms: Some(-1), ..CapacityLine::default() };
        let error = negative.to_capacity().unwrap_err();
        assert_eq!((error.field, error.to_string().as_str()), ("sms", "negative capacity -1"));
        let wide = CapacityLine { voice: Some(256), ..CapacityLine::default() };
        assert_eq!(wide.to_capacity().unwrap_err().field, "voice");
        let huge = CapacityLine { total: Some(65_536), ..CapacityLine::default() };
        assert_eq!(huge.to_capacity().unwrap_err().field, "total");
    }
}
