//! The router's error type.

use crate::ids::{AgentId, ConversationId};
use crate::snapshot::SnapshotError;

/// Everything a router operation can refuse. No operation that returns an
/// error has changed any state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouterError {
    /// No agent with this id is registered.
    #[error("unknown agent {}", .0.0)]
    UnknownAgent(AgentId),
    /// No open conversation with this id.
    #[error("unknown conversation {}", .0.0)]
    UnknownConversation(ConversationId),
    /// A language code that is not two letters.
    #[error("invalid language code {0:?}: expected two letters such as \"nl\" or \"en\"")]
    InvalidLanguage(String),
    /// A capacity outside what the router can hold.
    #[error("capacity for {field} is {value}, more than the maximum {max}")]
    CapacityTooLarge {
        /// The channel name or `total`.
        field: &'static str,
        /// The value given.
        value: u32,
        /// The largest allowed.
        max: u32,
    },
    /// A proficiency outside 1..=10.
    #[error("proficiency {0} is outside 1..=10")]
    InvalidProficiency(u8),
    /// More distinct skills than a `SkillId` can name.
    #[error("too many distinct skills (at most 65,535)")]
    TooManySkills,
    /// More agents than the router's slot space.
    #[error("too many agents (at most {0})")]
    TooManyAgents(u32),
    /// The conversation has no pending offer for this agent.
    #[error("conversation {} has no pending offer for agent {}", .conversation.0, .agent.0)]
    NoSuchOffer {
        /// The conversation.
        conversation: ConversationId,
        /// The agent.
        agent: AgentId,
    },
    /// The agent cannot take this conversation (transfer target offline, full or unskilled).
    #[error("agent {} cannot take conversation {}: {why}", .agent.0, .conversation.0)]
    AgentCannotTake {
        /// The conversation.
        conversation: ConversationId,
        /// The agent.
        agent: AgentId,
        /// Why not.
        why: &'static str,
    },
    /// A business-hours time zone that is not in the tz database.
    #[error("unknown time zone {0:?}")]
    UnknownTimeZone(String),
    /// Opening hours that do not parse.
    #[error("invalid opening hours {0:?}: expected HH:MM-HH:MM")]
    InvalidHours(String),
    /// A snapshot that cannot be restored (see [`crate::RouterBuilder::restore`]).
    #[error("invalid snapshot: {0}")]
    Snapshot(#[from] SnapshotError),
}
