//! [`Id`]: an identifier as a caller sends it.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The longest id accepted, in bytes of UTF-8.
pub const MAX_ID_BYTES: usize = 128;

/// A conversation, customer or agent id as the platform names it.
///
/// `Number(n)` means the same as `Text` of `n`'s decimal digits (but the
/// derived `Eq`, `Hash` and `Ord` compare the variants as they are: compare
/// ids through [`Id::as_number`] or an [`crate::Interner`]). A `Text` id
/// is 1 to [`MAX_ID_BYTES`] bytes without control characters: parsing,
/// deserializing and [`Id::check`] enforce that; building the variant
/// directly does not, so code that takes ids from outside checks them.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[rkyv(derive(Debug))]
pub enum Id {
    /// A non-negative integer id.
    Number(u64),
    /// A string id.
    Text(String),
}

/// Why a string is not an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The empty string.
    #[error("an id may not be empty")]
    Empty,
    /// More than [`MAX_ID_BYTES`] bytes.
    #[error("an id is at most {MAX_ID_BYTES} bytes; this one has {0}")]
    TooLong(usize),
    /// A control character (a newline, a tab, NUL, ...).
    #[error("an id may not contain control characters ({character:?} at byte {at})")]
    ControlCharacter {
        /// The character.
        character: char,
        /// Its byte offset.
        at: usize,
    },
    /// A negative number.
    #[error("an id may not be a negative number")]
    Negative,
}

/// Checks that `text` may be an id: 1 to [`MAX_ID_BYTES`] bytes, no
/// control characters.
///
/// # Errors
/// The first rule `text` breaks.
pub fn check_text(text: &str) -> Result<(), IdError> {
    if text.is_empty() {
        return Err(IdError::Empty);
    }
    if text.len() > MAX_ID_BYTES {
        return Err(IdError::TooLong(text.len()));
    }
    // Most ids are ASCII: check bytes, and only look at characters when a
    // byte is a control byte or not ASCII (ingest checks every message's ids).
    let suspicious = |b: &u8| *b < 0x20 || *b >= 0x7F;
    if !text.as_bytes().iter().any(suspicious) {
        return Ok(());
    }
    match text.char_indices().find(|(_, c)| c.is_control()) {
        Some((at, character)) => Err(IdError::ControlCharacter { character, at }),
        None => Ok(()),
    }
}

/// The value of `text` if it is a decimal number written the one way
/// `u64::to_string` writes it (no sign, no leading zero, no spaces).
pub(crate) fn canonical_number(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    let canonical = !bytes.is_empty()
        && bytes.len() <= 20
        && bytes.iter().all(u8::is_ascii_digit)
        && (bytes[0] != b'0' || bytes.len() == 1);
    if canonical { text.parse().ok() } else { None }
}

impl Id {
    /// Checks a `Text` id (a `Number` is always valid).
    ///
    /// # Errors
    /// As [`check_text`].
    pub fn check(&self) -> Result<(), IdError> {
        match self {
            Id::Number(_) => Ok(()),
            Id::Text(text) => check_text(text),
        }
    }

    /// The id as a number, if it is one: a `Number`, or a `Text` of
    /// canonical decimal digits.
    pub fn as_number(&self) -> Option<u64> {
        match self {
            Id::Number(number) => Some(*number),
            Id::Text(text) => canonical_number(text),
        }
    }
}

impl ArchivedId {
    /// As [`Id::check`], on the archived form (zero-copy ingest).
    ///
    /// # Errors
    /// As [`check_text`].
    pub fn check(&self) -> Result<(), IdError> {
        match self {
            ArchivedId::Number(_) => Ok(()),
            ArchivedId::Text(text) => check_text(text.as_str()),
        }
    }

    /// The owned id.
    pub fn to_id(&self) -> Id {
        match self {
            ArchivedId::Number(number) => Id::Number(number.to_native()),
            ArchivedId::Text(text) => Id::Text(text.as_str().to_owned()),
        }
    }
}

impl FromStr for Id {
    type Err = IdError;

    /// A string id (checked). `"42"` parses as `Text("42")`, which means the
    /// same as `Number(42)`.
    fn from_str(text: &str) -> Result<Id, IdError> {
        check_text(text)?;
        Ok(Id::Text(text.to_owned()))
    }
}

impl From<u64> for Id {
    fn from(number: u64) -> Id {
        Id::Number(number)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Number(number) => write!(f, "{number}"),
            Id::Text(text) => f.write_str(text),
        }
    }
}

/// Always a string: ids are strings, a number is its decimal text.
impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Id, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "an id: a string of 1 to {MAX_ID_BYTES} bytes without control characters, \
                     or a non-negative integer"
                )
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Id, E> {
                value.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Id, E> {
                Ok(Id::Number(value))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Id, E> {
                u64::try_from(value).map(Id::Number).map_err(|_| E::custom(IdError::Negative))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_checked() {
        assert_eq!("".parse::<Id>(), Err(IdError::Empty));
        assert_eq!("x".repeat(129).parse::<Id>(), Err(IdError::TooLong(129)));
        assert!("x".repeat(128).parse::<Id>().is_ok());
        assert_eq!("a\nb".parse::<Id>(), Err(IdError::ControlCharacter { character: '\n', at: 1 }));
        assert!("klant 42 — 💐".parse::<Id>().is_ok(), "spaces and any script are fine");
        assert!("\u{7f}".parse::<Id>().is_err(), "DEL is a control character");
    }

    #[test]
    fn json_takes_strings_and_non_negative_integers() {
        let id: Id = serde_json::from_str("\"WT-1\"").unwrap();
        assert_eq!(id, Id::Text("WT-1".into()));
        assert_eq!(serde_json::from_str::<Id>("7").unwrap(), Id::Number(7));
        let negative = serde_json::from_str::<Id>("-1").unwrap_err().to_string();
        assert!(negative.contains("negative"), "{negative}");
        assert!(serde_json::from_str::<Id>("1.5").is_err());
        assert!(serde_json::from_str::<Id>("\"\"").is_err());
        assert_eq!(serde_json::to_string(&Id::Number(7)).unwrap(), "\"7\"");
    }

    #[test]
    fn only_canonical_decimals_are_numbers() {
        for (text, number) in [
            ("0", Some(0)),
            ("42", Some(42)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("042", None),
            ("+42", None),
            (" 42", None),
            ("4 2", None),
            ("", None),
        ] {
            assert_eq!(canonical_number(text), number, "{text:?}");
        }
    }
}
