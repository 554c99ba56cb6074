//! Identifiers and small value types shared by every part of the router.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::RouterError;

/// An agent, as the embedding platform names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AgentId(pub u64);

/// A conversation, as the embedding platform names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConversationId(pub u64);

/// A customer, as the embedding platform names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CustomerId(pub u64);

/// A skill, interned by [`crate::Router::skill`]; dense from zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SkillId(pub u16);

/// Milliseconds since the Unix epoch, from the router's [`crate::Clock`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// This instant plus `ms` milliseconds, saturating.
    #[inline]
    #[must_use]
    pub const fn plus_ms(self, ms: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self`, zero if `earlier` is later.
    #[inline]
    pub const fn since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// A language as its ISO 639-1 code (`nl`, `en`, ...), packed into two bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Language([u8; 2]);

impl Language {
    /// Dutch.
    pub const NL: Language = Language(*b"nl");
    /// English.
    pub const EN: Language = Language(*b"en");

    /// The two-letter code.
    pub fn as_str(&self) -> &str {
        // Constructed only from two ASCII lowercase letters.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl FromStr for Language {
    type Err = RouterError;

    /// Accepts a two-letter code in any case, and a region suffix (`nl-BE`).
    fn from_str(text: &str) -> Result<Language, RouterError> {
        let code = text.split(['-', '_']).next().unwrap_or("");
        match code.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Ok(Language([a.to_ascii_lowercase(), b.to_ascii_lowercase()]))
            }
            _ => Err(RouterError::InvalidLanguage(text.chars().take(32).collect())),
        }
    }
}

impl fmt::Debug for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Language({})", self.as_str())
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Language {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Language {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Language, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Proficiency in a skill, 1 (novice) to 10 (expert).
pub type Proficiency = u8;

/// A skill an agent has, or a conversation needs, with a proficiency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SkillLevel {
    /// The skill.
    pub skill: SkillId,
    /// For an agent: its proficiency. For a requirement: the minimum.
    pub level: Proficiency,
}

/// Conversation requirements: inline up to four skills, so building one never allocates.
pub type Requirements = smallvec::SmallVec<[SkillLevel; 4]>;

/// splitmix64's output function: a cheap, well-spread 64-bit hash of an id,
/// so sequential ids land far apart (tie origins, customer-table homes).
#[inline]
pub(crate) fn spread(id: u64) -> u64 {
    let mut z = id.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_parse_case_insensitively_with_regions() {
        assert_eq!("NL".parse::<Language>().unwrap(), Language::NL);
        assert_eq!("nl-BE".parse::<Language>().unwrap(), Language::NL);
        assert_eq!("en_GB".parse::<Language>().unwrap().as_str(), "en");
        assert!("dutch".parse::<Language>().is_err());
        assert!("".parse::<Language>().is_err());
        assert!("n1".parse::<Language>().is_err());
        assert!("é".parse::<Language>().is_err());
    }

    #[test]
    fn timestamps_saturate() {
        assert_eq!(Timestamp(5).since(Timestamp(9)), 0);
        assert_eq!(Timestamp(u64::MAX).plus_ms(1), Timestamp(u64::MAX));
    }
}
