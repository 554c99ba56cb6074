//! Agents as the platform describes them.

use loket_capacity::{Channel, Limits, MAX_PER_CHANNEL, MAX_TOTAL};
use serde::{Deserialize, Serialize};

use crate::error::RouterError;
use crate::ids::{AgentId, Language, SkillLevel};

/// A human or a bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentKind {
    /// A person.
    #[default]
    Human,
    /// An automated agent.
    Bot,
}

/// Whether an agent takes work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Takes new and existing conversations.
    Available,
    /// Away: takes nothing; its conversations are re-routed.
    Away,
    /// Logged out: takes nothing; its conversations are re-routed.
    #[default]
    Offline,
    /// Missed too many offers: keeps its conversations, gets no new ones
    /// until it is set available again.
    NotResponding,
}

impl Presence {
    /// Does an agent with this presence keep its open conversations?
    #[inline]
    pub const fn keeps_conversations(self) -> bool {
        matches!(self, Presence::Available | Presence::NotResponding)
    }

    pub(crate) const fn to_u8(self) -> u8 {
        match self {
            Presence::Available => 0,
            Presence::Away => 1,
            Presence::Offline => 2,
            Presence::NotResponding => 3,
        }
    }

    pub(crate) const fn from_u8(value: u8) -> Presence {
        match value {
            0 => Presence::Available,
            1 => Presence::Away,
            3 => Presence::NotResponding,
            _ => Presence::Offline,
        }
    }
}

/// How many conversations an agent holds at once: per channel and overall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Capacity {
    /// Live chat.
    pub chat: u32,
    /// WhatsApp.
    pub whatsapp: u32,
    /// Messenger.
    pub messenger: u32,
    /// SMS.
    pub sms: u32,
    /// Email.
    pub email: u32,
    /// Voice.
    pub voice: u32,
    /// Overall cap across channels.
    pub total: u32,
}

impl Default for Capacity {
    /// A typical service-desk agent: chat 3, WhatsApp 5, Messenger 5, SMS 5,
    /// email 8, voice 1, at most 10 at once.
    fn default() -> Self {
        Capacity { chat: 3, whatsapp: 5, messenger: 5, sms: 5, email: 8, voice: 1, total: 10 }
    }
}

impl Capacity {
    /// No capacity anywhere.
    pub const ZERO: Capacity =
        Capacity { chat: 0, whatsapp: 0, messenger: 0, sms: 0, email: 0, voice: 0, total: 0 };

    /// The limit for one channel.
    pub const fn channel(&self, channel: Channel) -> u32 {
        match channel {
            Channel::Chat => self.chat,
            Channel::Whatsapp => self.whatsapp,
            Channel::Messenger => self.messenger,
            Channel::Sms => self.sms,
            Channel::Email => self.email,
            Channel::Voice => self.voice,
        }
    }

    /// Packs and checks the limits.
    pub fn to_limits(&self) -> Result<Limits, RouterError> {
        let mut limits = Limits::new();
        for channel in Channel::ALL {
            let value = self.channel(channel);
            if value > MAX_PER_CHANNEL {
                return Err(RouterError::CapacityTooLarge {
                    field: channel.as_str(),
                    value,
                    max: MAX_PER_CHANNEL,
                });
            }
            limits = limits.with(channel, value);
        }
        if self.total > MAX_TOTAL {
            return Err(RouterError::CapacityTooLarge {
                field: "total",
                value: self.total,
                max: MAX_TOTAL,
            });
        }
        Ok(limits.with_total(self.total))
    }
}

/// Everything the router needs to know about an agent. Registering a spec
/// for a known id updates that agent in place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentSpec {
    /// The platform's id.
    pub id: AgentId,
    /// Human or bot.
    #[serde(default)]
    pub kind: AgentKind,
    /// Skills with proficiency 1..=10.
    #[serde(default)]
    pub skills: Vec<SkillLevel>,
    /// Languages spoken.
    #[serde(default)]
    pub languages: Vec<Language>,
    /// Capacity per channel and overall.
    #[serde(default)]
    pub capacity: Capacity,
    /// Presence.
    #[serde(default)]
    pub presence: Presence,
    /// Team, for the platform's reporting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Tenant, for the platform's reporting (a router serves one tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

impl AgentSpec {
    /// An available human with default capacity and no skills or languages.
    pub fn new(id: AgentId) -> AgentSpec {
        AgentSpec {
            id,
            kind: AgentKind::Human,
            skills: Vec::new(),
            languages: Vec::new(),
            capacity: Capacity::default(),
            presence: Presence::Available,
            team: None,
            tenant: None,
        }
    }

    /// Checks proficiencies and capacity; sorts and de-duplicates skills
    /// (the highest proficiency wins) and languages.
    pub(crate) fn normalise(mut self) -> Result<(AgentSpec, Limits), RouterError> {
        for skill in &self.skills {
            if !(1..=10).contains(&skill.level) {
                return Err(RouterError::InvalidProficiency(skill.level));
            }
        }
        self.skills.sort_by(|a, b| a.skill.cmp(&b.skill).then(b.level.cmp(&a.level)));
        self.skills.dedup_by_key(|s| s.skill);
        self.languages.sort();
        self.languages.dedup();
        let limits = self.capacity.to_limits()?;
        Ok((self, limits))
    }
}
