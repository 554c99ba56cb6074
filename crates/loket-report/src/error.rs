//! Errors. An operation that returns one has changed nothing.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a fact (or a clock advance) was refused. The meter is unchanged and
/// the refusal is counted in [`crate::Rejections`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum FactError {
    /// The fact is older than a fact or advance already applied.
    #[error("fact at {at} ms is older than the meter's time {now} ms")]
    OutOfOrder {
        /// The fact's time.
        at: u64,
        /// The meter's time.
        now: u64,
    },
    /// No open conversation has this key (its first customer message was
    /// never seen, or it was closed and forgotten).
    #[error("conversation {0} is not open")]
    UnknownConversation(u64),
    /// The conversation is closed; only an order within the attribution
    /// window may still name it.
    #[error("conversation {0} is closed")]
    Closed(u64),
    /// The intent was never interned with this meter.
    #[error("intent {0} was not interned")]
    UnknownIntent(u32),
}

/// How many facts were refused, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejections {
    /// [`FactError::OutOfOrder`].
    pub out_of_order: u64,
    /// [`FactError::UnknownConversation`].
    pub unknown_conversation: u64,
    /// [`FactError::Closed`].
    pub closed: u64,
    /// [`FactError::UnknownIntent`].
    pub unknown_intent: u64,
    /// Updates that belonged to an interval already dropped by retention
    /// (accepted facts whose counts had nowhere to go).
    pub expired_interval: u64,
}

impl Rejections {
    pub(crate) fn count(&mut self, error: &FactError) {
        let counter = match error {
            FactError::OutOfOrder { .. } => &mut self.out_of_order,
            FactError::UnknownConversation(_) => &mut self.unknown_conversation,
            FactError::Closed(_) => &mut self.closed,
            FactError::UnknownIntent(_) => &mut self.unknown_intent,
        };
        *counter += 1;
    }
}

/// A configuration the meter cannot work with.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// An SLA target is zero.
    #[error("SLA target {0} is zero")]
    ZeroTarget(&'static str),
    /// The warning fraction is above 1000 permille.
    #[error("warning_permille {0} is above 1000")]
    WarningFraction(u16),
    /// Retention is shorter than one 15-minute interval.
    #[error("retention_ms {0} is shorter than one 15-minute interval")]
    Retention(u64),
    /// An SLA rule has an empty intent prefix (leave it out instead).
    #[error("SLA rule {0} has an empty intent_prefix")]
    EmptyPrefix(usize),
    /// The opening hours name an unknown time zone or hold an interval or
    /// holiday that does not parse.
    #[error("opening_hours: {0}")]
    OpeningHours(#[from] loket_hours::HoursError),
}

/// A report query the meter cannot answer.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum QueryError {
    /// `from` is not before `to`.
    #[error("from ({from}) must be before to ({to})")]
    EmptyRange {
        /// Start.
        from: u64,
        /// End.
        to: u64,
    },
    /// The interval name is not `15m`, `1h` or `1d`.
    #[error("unknown interval {0:?} (expected 15m, 1h or 1d)")]
    UnknownInterval(String),
    /// The group name is not a [`crate::Dimension`].
    #[error("unknown group {0:?}")]
    UnknownDimension(String),
}

/// An intent name that cannot be interned.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum IntentError {
    /// Longer than [`crate::MAX_INTENT_BYTES`].
    #[error("intent name is {0} bytes, more than the limit")]
    TooLong(usize),
    /// The meter already holds [`crate::MAX_INTENTS`] intents.
    #[error("too many intents")]
    TooMany,
}
