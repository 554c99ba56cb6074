//! The JSON shapes of agents, events and decisions.
//!
//! Identifiers are the platform's own strings ([`Id`]: numbers are accepted
//! and mean their decimal text); skills are names with a proficiency.

use std::collections::BTreeMap;

use loket_ids::Id;
use loket_report::{SlaClock, SlaEventKind};
use loket_router::{AgentKind, Channel, EventKind, Language, Presence, Signals, SkillId, Why};
use serde::{Deserialize, Serialize};

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

/// One line of `agents.jsonl`, and the body of an `agent` event. Unknown
/// fields are refused (a misspelt `capcity` would otherwise pass silently).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentLine {
    /// The agent's id.
    pub id: Id,
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
    pub conversation: Id,
    /// Customer id.
    pub customer: Id,
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
    /// The message's intent as the platform or a scorer named it (for
    /// example `sales.product`); reports group by it. Left out: none.
    #[serde(default)]
    pub intent: Option<String>,
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

impl At {
    /// Milliseconds since the Unix epoch; text may be decimal milliseconds
    /// too (as query strings carry them). `None` for text that is neither,
    /// or a time before 1970.
    pub fn millis(&self) -> Option<u64> {
        match self {
            At::Millis(ms) => Some(*ms),
            At::Text(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
                text.parse().ok()
            }
            At::Text(text) => {
                let time = chrono::DateTime::parse_from_rfc3339(text).ok()?;
                u64::try_from(time.timestamp_millis()).ok()
            }
        }
    }
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
        conversation: Id,
    },
    /// An agent logs in or is updated (the full spec).
    Agent {
        /// The spec.
        agent: AgentLine,
    },
    /// An agent's presence changes.
    Presence {
        /// The agent.
        agent: Id,
        /// The new presence.
        presence: Presence,
    },
    /// An agent logs out (presence offline).
    Logout {
        /// The agent.
        agent: Id,
    },
    /// An agent's capacity changes.
    Capacity {
        /// The agent.
        agent: Id,
        /// The new capacity.
        capacity: CapacityLine,
    },
    /// An agent's skills are replaced.
    Skills {
        /// The agent.
        agent: Id,
        /// Skill name to proficiency.
        skills: BTreeMap<String, i64>,
    },
    /// An agent is removed.
    Remove {
        /// The agent.
        agent: Id,
    },
    /// An agent accepts an offer.
    Accept {
        /// The conversation.
        conversation: Id,
        /// The agent.
        agent: Id,
    },
    /// An agent declines an offer.
    Decline {
        /// The conversation.
        conversation: Id,
        /// The agent.
        agent: Id,
    },
    /// The platform moves a conversation to an agent.
    Transfer {
        /// The conversation.
        conversation: Id,
        /// The agent.
        agent: Id,
    },
    /// An agent (human or bot) sent the customer a message: stops the
    /// reply clocks (a bot's reply never stops a person's).
    Reply {
        /// The conversation.
        conversation: Id,
        /// The agent who replied.
        agent: Id,
    },
    /// The conversation led to a purchase; counts up to the reports'
    /// `order_window_ms` after the close.
    Order {
        /// The conversation.
        conversation: Id,
        /// The order's value in major units (`49.95`), 0 or more.
        value: f64,
        /// Its ISO 4217 currency code (`EUR`).
        currency: String,
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
    /// For `queued` with `no_eligible_agent`: which requirement nobody meets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<WhyRecord>,
}

/// One SLA event line of decision output: `sla_warning` or `sla_breached`
/// with the clock (`first_reply`, `next_reply`) and its target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlaRecord {
    /// The input line whose time made it fire.
    pub line: u64,
    /// When it became true, in milliseconds since the Unix epoch.
    pub at: u64,
    /// The conversation, as the platform names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation: Option<String>,
    /// `sla_warning` or `sla_breached`.
    #[serde(rename = "type")]
    pub kind: SlaEventKind,
    /// Which clock.
    pub clock: SlaClock,
    /// The target in milliseconds.
    pub target_ms: u64,
}

/// Why a conversation waits for an agent ([`Why`]), with names: `code` is
/// `no_agents`, `no_skill` (with `skill` and `level`), `no_language` (with
/// `language`), `unavailable`, `at_capacity` (with `channel`) or
/// `declined`; `message` says it in a sentence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhyRecord {
    /// What nobody meets.
    pub code: &'static str,
    /// For `no_skill`: the skill's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skill: Option<String>,
    /// For `no_skill`: the proficiency asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    /// For `no_language`: the conversation's language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    /// For `at_capacity`: the conversation's channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// One sentence for people.
    pub message: String,
}

impl WhyRecord {
    /// The record for `why`, naming skills with `skill_name`.
    pub fn new(why: Why, skill_name: impl Fn(SkillId) -> Option<String>) -> WhyRecord {
        let blank = WhyRecord {
            code: "",
            skill: None,
            level: None,
            language: None,
            channel: None,
            message: String::new(),
        };
        match why {
            Why::NoAgents => WhyRecord {
                code: "no_agents",
                message: "no agents are registered to take it".to_owned(),
                ..blank
            },
            Why::NoSkill { skill, level } => {
                let name = skill_name(skill).unwrap_or_else(|| format!("#{}", skill.0));
                WhyRecord {
                    code: "no_skill",
                    message: format!("no agent has skill {name} at level {level} or higher"),
                    skill: Some(name),
                    level: Some(level),
                    ..blank
                }
            }
            Why::NoLanguage { language } => WhyRecord {
                code: "no_language",
                message: format!("agents have the skills, but none speaks {language}"),
                language: Some(language),
                ..blank
            },
            Why::Unavailable => WhyRecord {
                code: "unavailable",
                message: "the agents who qualify are all away, offline or not responding"
                    .to_owned(),
                ..blank
            },
            Why::AtCapacity { channel } => WhyRecord {
                code: "at_capacity",
                message: format!("the agents who qualify are all at capacity on {channel}"),
                channel: Some(channel),
                ..blank
            },
            Why::Declined => WhyRecord {
                code: "declined",
                message: "the only agent with room declined or missed the offer".to_owned(),
                ..blank
            },
        }
    }

    /// The record for a queued event's why, if it has one.
    pub fn of(kind: &EventKind, skill_name: impl Fn(SkillId) -> Option<String>) -> Option<Self> {
        match kind {
            EventKind::Queued { why: Some(why), .. } => Some(WhyRecord::new(*why, skill_name)),
            _ => None,
        }
    }
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
