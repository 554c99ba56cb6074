//! The groups a conversation is counted in, and the bands of buying intent
//! and first response.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::QueryError;
use crate::fact::{Channel, IntentId, Language};

/// A way of grouping conversations in a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Everything together.
    Total,
    /// By channel.
    Channel,
    /// By skill set (the queue).
    Queue,
    /// By the team of the first person who took the conversation.
    Team,
    /// By the first person who took the conversation.
    Agent,
    /// By language.
    Language,
    /// By the first message's intent.
    Intent,
    /// By the first message's buying intent: `0-0.3`, `0.3-0.7`, `0.7-1`.
    BuyingIntent,
    /// By customer tier.
    Tier,
}

impl Dimension {
    /// Every dimension.
    pub const ALL: [Dimension; 9] = [
        Dimension::Total,
        Dimension::Channel,
        Dimension::Queue,
        Dimension::Team,
        Dimension::Agent,
        Dimension::Language,
        Dimension::Intent,
        Dimension::BuyingIntent,
        Dimension::Tier,
    ];

    /// The name used in queries, JSON and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Total => "total",
            Dimension::Channel => "channel",
            Dimension::Queue => "queue",
            Dimension::Team => "team",
            Dimension::Agent => "agent",
            Dimension::Language => "language",
            Dimension::Intent => "intent",
            Dimension::BuyingIntent => "buying_intent",
            Dimension::Tier => "tier",
        }
    }
}

impl FromStr for Dimension {
    type Err = QueryError;

    /// The names of [`Dimension::as_str`]; `skill` means `queue`.
    fn from_str(name: &str) -> Result<Dimension, QueryError> {
        if name == "skill" {
            return Ok(Dimension::Queue);
        }
        Dimension::ALL
            .into_iter()
            .find(|dimension| dimension.as_str() == name)
            .ok_or_else(|| QueryError::UnknownDimension(name.to_owned()))
    }
}

/// One group: a dimension and its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GroupKey {
    /// Every conversation.
    Total,
    /// A channel.
    Channel(Channel),
    /// A skill set (queue).
    Queue(u32),
    /// A team.
    Team(u32),
    /// An agent.
    Agent(u64),
    /// A language.
    Language(Language),
    /// An intent.
    Intent(IntentId),
    /// A buying-intent band.
    BuyingIntent(BuyingBand),
    /// A customer tier.
    Tier(u8),
}

impl GroupKey {
    /// The dimension this group belongs to.
    pub fn dimension(&self) -> Dimension {
        match self {
            GroupKey::Total => Dimension::Total,
            GroupKey::Channel(_) => Dimension::Channel,
            GroupKey::Queue(_) => Dimension::Queue,
            GroupKey::Team(_) => Dimension::Team,
            GroupKey::Agent(_) => Dimension::Agent,
            GroupKey::Language(_) => Dimension::Language,
            GroupKey::Intent(_) => Dimension::Intent,
            GroupKey::BuyingIntent(_) => Dimension::BuyingIntent,
            GroupKey::Tier(_) => Dimension::Tier,
        }
    }
}

/// Buying intent in three bands: `[0, 0.3)`, `[0.3, 0.7)`, `[0.7, 1]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BuyingBand {
    /// Below 0.3 (and NaN).
    Low,
    /// 0.3 up to 0.7.
    Medium,
    /// 0.7 and up.
    High,
}

impl BuyingBand {
    /// The band of a buying intent score.
    pub fn of(score: f32) -> BuyingBand {
        if score >= 0.7 {
            BuyingBand::High
        } else if score >= 0.3 {
            BuyingBand::Medium
        } else {
            BuyingBand::Low
        }
    }

    /// `0-0.3`, `0.3-0.7` or `0.7-1`.
    pub fn as_str(self) -> &'static str {
        match self {
            BuyingBand::Low => "0-0.3",
            BuyingBand::Medium => "0.3-0.7",
            BuyingBand::High => "0.7-1",
        }
    }
}

/// The first-response bands of `conversion_by_first_response`: `<1m`,
/// `1-5m`, `5-15m`, `15-60m`, `>1h`. A band holds its lower bound (60,000
/// ms is `1-5m`); the last holds exactly one hour and more.
pub const RESPONSE_BAND_LIMITS_MS: [u64; 4] = [60_000, 300_000, 900_000, 3_600_000];

/// The index (0..5) of the first-response band of `first_response_ms`.
pub fn response_band(first_response_ms: u64) -> usize {
    RESPONSE_BAND_LIMITS_MS.iter().take_while(|&&limit| first_response_ms >= limit).count()
}
