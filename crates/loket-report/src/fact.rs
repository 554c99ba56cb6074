//! The input: what happened to a conversation, when.
//!
//! A [`Fact`] is independent of the router's types: `loketd` and `loket
//! report` map the router's events (message, assignment, escalation, close)
//! and the new inputs (`reply`, `order`) into facts. Every key is an integer
//! the caller already has (the router's conversation, agent and team
//! integers, a queue's number); only intents are interned here
//! ([`crate::Meter::intern_intent`]) because SLA rules match intent prefixes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One thing that happened to one conversation at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    /// When, in milliseconds since the Unix epoch (UTC). Facts are fed in
    /// time order; equal times are fine.
    pub at: u64,
    /// The conversation, as the router's integer.
    pub conversation: u64,
    /// What happened.
    pub kind: FactKind,
}

/// What happened. See `docs/reports.md` for how each kind moves the clocks.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FactKind {
    /// The customer wrote. The first one opens the conversation and fixes
    /// its groups (channel, queue, language, intent, buying-intent band,
    /// tier); later ones only move the next-reply clock.
    CustomerMessage(CustomerMessage),
    /// The conversation was given to an agent (human or bot).
    Assigned {
        /// The agent, as the router's integer.
        agent: u64,
        /// The agent's team.
        team: u32,
        /// Whether the agent is a person (false: a bot).
        human: bool,
    },
    /// A bot handed the conversation over to people (escalation).
    HandedOff,
    /// An agent (human or bot) sent the customer a message.
    Reply {
        /// The agent, as the router's integer.
        agent: u64,
        /// The agent's team.
        team: u32,
        /// Whether the agent is a person (false: a bot).
        human: bool,
    },
    /// The conversation led to a purchase.
    Order {
        /// The order's value.
        value: Money,
    },
    /// The conversation ended.
    Closed,
}

/// What a customer message tells about the conversation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomerMessage {
    /// The channel it came in on.
    pub channel: Channel,
    /// The customer's language.
    pub language: Language,
    /// Customer tier, 0 and up.
    pub tier: u8,
    /// The scored intent, interned with [`crate::Meter::intern_intent`]
    /// ([`IntentId::NONE`] when there is none).
    pub intent: IntentId,
    /// Buying intent, 0..=1; out-of-range values and NaN fall in the
    /// nearest band (NaN in the lowest).
    pub buying_intent: f32,
    /// The skill set the conversation needs, as the caller numbers it
    /// (the queue it waits in).
    pub queue: u32,
}

/// A channel: the six of `loket-capacity`, the crate that defines them for
/// the router too (it holds no router type).
pub use loket_capacity::Channel;

/// A two-letter language code (lowercase ASCII).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Language(pub [u8; 2]);

impl Language {
    /// Dutch.
    pub const NL: Language = Language(*b"nl");
    /// English.
    pub const EN: Language = Language(*b"en");
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &byte in &self.0 {
            // Bytes that are not printable ASCII show as '?', never garble output.
            let shown = if byte.is_ascii_graphic() { byte as char } else { '?' };
            write!(f, "{shown}")?;
        }
        Ok(())
    }
}

/// An intent, interned per meter; 0 is "no intent".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IntentId(pub u32);

impl IntentId {
    /// No intent (the empty name).
    pub const NONE: IntentId = IntentId(0);
}

/// An amount of money in minor units (cents) of a currency.
///
/// Sums are kept as integers so no total depends on the order in which
/// amounts were added. The edge converts a decimal `value` such as `49.95`
/// with [`Money::from_decimal`]; reports show major units, assuming two
/// decimals for every currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// The amount in hundredths of the currency.
    pub minor: i64,
    /// The currency.
    pub currency: Currency,
}

impl Money {
    /// `value` in major units (49.95), rounded to the nearest cent; `None`
    /// when it is not finite or does not fit.
    pub fn from_decimal(value: f64, currency: Currency) -> Option<Money> {
        let cents = (value * 100.0).round();
        if !cents.is_finite() || cents.abs() >= 9.0e18 {
            return None;
        }
        Some(Money { minor: cents as i64, currency })
    }
}

/// A three-letter ISO 4217 currency code, uppercase ASCII.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Currency([u8; 3]);

impl Currency {
    /// The euro.
    pub const EUR: Currency = Currency(*b"EUR");

    /// Parses three ASCII letters (any case); `None` otherwise.
    pub fn parse(code: &str) -> Option<Currency> {
        let bytes: [u8; 3] = code.as_bytes().try_into().ok()?;
        if !bytes.iter().all(u8::is_ascii_alphabetic) {
            return None;
        }
        Some(Currency(bytes.map(|b| b.to_ascii_uppercase())))
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters get in (parse and the constants); a value
        // deserialised from a damaged snapshot shows as "???".
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}
