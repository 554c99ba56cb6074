//! Report intervals, aligned to UTC.
//!
//! The meter stores 15-minute slots only; an hour or a day is the merge of
//! its slots, which is exact because every stored measure is a count, an
//! integer sum or a histogram of counts.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::QueryError;

/// The length of a stored slot: 15 minutes.
pub const SLOT_MS: u64 = 15 * 60 * 1000;

/// A report interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Interval {
    /// 15 minutes.
    #[serde(rename = "15m")]
    Minutes15,
    /// An hour.
    #[serde(rename = "1h")]
    Hour,
    /// A UTC day.
    #[serde(rename = "1d")]
    Day,
}

impl Interval {
    /// Its length in milliseconds.
    pub fn millis(self) -> u64 {
        match self {
            Interval::Minutes15 => SLOT_MS,
            Interval::Hour => 3_600_000,
            Interval::Day => 86_400_000,
        }
    }

    /// The start of the interval holding `at` (epoch milliseconds).
    pub fn start_of(self, at: u64) -> u64 {
        at - at % self.millis()
    }

    /// `15m`, `1h` or `1d`.
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Minutes15 => "15m",
            Interval::Hour => "1h",
            Interval::Day => "1d",
        }
    }
}

impl FromStr for Interval {
    type Err = QueryError;

    fn from_str(name: &str) -> Result<Interval, QueryError> {
        [Interval::Minutes15, Interval::Hour, Interval::Day]
            .into_iter()
            .find(|interval| interval.as_str() == name)
            .ok_or_else(|| QueryError::UnknownInterval(name.to_owned()))
    }
}

/// The slot holding `at`.
pub(crate) fn slot_of(at: u64) -> u64 {
    at / SLOT_MS
}
