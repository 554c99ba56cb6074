//! [`WireError`] and the stable error codes of the protocol.

use std::fmt;

/// The stable `code` strings of [`crate::ErrorFrame`]. Clients match on these;
/// they never change meaning. The message next to a code is for people.
pub mod codes {
    /// The bytes are not a well-formed frame (length 0, unknown type,
    /// truncated or trailing payload, a string that is not UTF-8), or a frame
    /// came out of order (a `Batch` before `Hello`, a second `Hello`). The
    /// server closes the connection after sending it.
    pub const BAD_FRAME: &str = "bad_frame";
    /// The length prefix exceeds the server's `max_frame_bytes`. Detected
    /// from the 4-byte prefix alone; the server closes the connection.
    pub const FRAME_TOO_LARGE: &str = "frame_too_large";
    /// A well-framed `Batch`, `Replies` or `Orders` frame whose archive
    /// fails validation or whose items break a limit (empty, too many, a bad
    /// id, channel or language, a text too long, a negative value, a bad
    /// currency), or a reply or order the tenant refuses (an unknown or
    /// closed conversation, an unknown agent, a tenant that does not
    /// measure). The batch is rejected; the connection stays usable.
    pub const BAD_BATCH: &str = "bad_batch";
    /// The `Hello` token names no tenant. The server closes the connection.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// The `Hello` version is not one the server speaks. The server closes
    /// the connection.
    pub const UNSUPPORTED_VERSION: &str = "unsupported_version";
    /// A message asks for a skill no agent of the tenant has ever had, and
    /// the tenant does not take new skills from messages. The batch is
    /// rejected whole; the connection stays usable.
    pub const UNKNOWN_SKILL: &str = "unknown_skill";
    /// The tenant is over its rate; the batch was not accepted and may be
    /// sent again later.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// The server is stopping; this batch was not accepted. No more acks
    /// follow on this connection.
    pub const SHUTTING_DOWN: &str = "shutting_down";
    /// In a cluster, this node does not lead the tenant; the batch was not
    /// accepted. The message names the node that does and its addresses.
    pub const NOT_LEADER: &str = "not_leader";
    /// The server failed for a reason of its own; the batch was not accepted.
    pub const INTERNAL: &str = "internal";
}

/// Why bytes could not be decoded into a [`crate::Frame`], a batch broke a
/// limit, or a frame could not be encoded.
///
/// [`WireError::code`] gives the stable protocol code to send back in an
/// [`crate::ErrorFrame`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Reading or writing the transport failed (codec only).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The frame's length prefix (or, when encoding, its size) exceeds the limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The body length the prefix announced (or the encoded size).
        len: u64,
        /// The limit in force.
        max: u64,
    },
    /// A length prefix of 0: every frame has at least a type byte.
    #[error("empty frame: length 0")]
    EmptyFrame,
    /// The type byte names no frame.
    #[error("unknown frame type {0}")]
    UnknownFrameType(u8),
    /// The payload ended inside a field.
    #[error("{frame} frame truncated in field `{field}`")]
    Truncated {
        /// The frame type's name.
        frame: &'static str,
        /// The field that did not fit.
        field: &'static str,
    },
    /// The payload goes on after the frame's last field.
    #[error("{frame} frame has {extra} trailing bytes")]
    TrailingBytes {
        /// The frame type's name.
        frame: &'static str,
        /// How many bytes were left over.
        extra: usize,
    },
    /// A string field is not UTF-8.
    #[error("{frame} frame: field `{field}` is not UTF-8")]
    BadUtf8 {
        /// The frame type's name.
        frame: &'static str,
        /// The string field.
        field: &'static str,
    },
    /// The `Batch` payload is not a valid archive of a
    /// [`crate::MessageBatch`] (bytecheck's verdict).
    #[error("batch archive is invalid: {0}")]
    BadArchive(String),
    /// A batch with no messages.
    #[error("batch {batch_id} has no messages")]
    EmptyBatch {
        /// The batch.
        batch_id: u64,
    },
    /// A batch with more messages than `max_batch_messages`.
    #[error("batch {batch_id} has {count} messages, more than the limit of {max}")]
    TooManyMessages {
        /// The batch.
        batch_id: u64,
        /// Its message count.
        count: usize,
        /// The limit.
        max: u32,
    },
    /// One message of a batch breaks a rule.
    #[error("batch {batch_id}, message {index}: {problem}")]
    InvalidMessage {
        /// The batch.
        batch_id: u64,
        /// The message's index in the batch, from 0.
        index: usize,
        /// What is wrong, and in which field.
        problem: MessageProblem,
    },
    /// A `Replies` or `Orders` batch with no items.
    #[error("{frame} batch {batch_id} is empty")]
    EmptyItems {
        /// The frame type's name: `"replies"` or `"orders"`.
        frame: &'static str,
        /// The batch.
        batch_id: u64,
    },
    /// A `Replies` or `Orders` batch with more items than
    /// `max_batch_messages`.
    #[error("{frame} batch {batch_id} has {count} items, more than the limit of {max}")]
    TooManyItems {
        /// The frame type's name: `"replies"` or `"orders"`.
        frame: &'static str,
        /// The batch.
        batch_id: u64,
        /// Its item count.
        count: usize,
        /// The limit.
        max: u32,
    },
    /// One reply or order of a batch breaks a rule.
    #[error("{frame} batch {batch_id}, item {index}: {problem}")]
    InvalidItem {
        /// The frame type's name: `"replies"` or `"orders"`.
        frame: &'static str,
        /// The batch.
        batch_id: u64,
        /// The item's index in the batch, from 0.
        index: usize,
        /// What is wrong, and in which field.
        problem: ItemProblem,
    },
    /// Serializing a batch failed.
    #[error("cannot encode: {0}")]
    Encode(String),
}

impl WireError {
    /// The stable protocol code for this error (see [`codes`]); `"io"` for
    /// transport errors and `"encode"` for encoding failures, which never go
    /// on the wire.
    pub fn code(&self) -> &'static str {
        match self {
            WireError::Io(_) => "io",
            WireError::Encode(_) => "encode",
            WireError::FrameTooLarge { .. } => codes::FRAME_TOO_LARGE,
            WireError::EmptyFrame
            | WireError::UnknownFrameType(_)
            | WireError::Truncated { .. }
            | WireError::TrailingBytes { .. }
            | WireError::BadUtf8 { .. } => codes::BAD_FRAME,
            WireError::BadArchive(_)
            | WireError::EmptyBatch { .. }
            | WireError::TooManyMessages { .. }
            | WireError::InvalidMessage { .. }
            | WireError::EmptyItems { .. }
            | WireError::TooManyItems { .. }
            | WireError::InvalidItem { .. } => codes::BAD_BATCH,
        }
    }

    /// The batch the error is about, when the archive was readable far
    /// enough to know it.
    pub fn batch_id(&self) -> Option<u64> {
        match self {
            WireError::EmptyBatch { batch_id }
            | WireError::TooManyMessages { batch_id, .. }
            | WireError::InvalidMessage { batch_id, .. }
            | WireError::EmptyItems { batch_id, .. }
            | WireError::TooManyItems { batch_id, .. }
            | WireError::InvalidItem { batch_id, .. } => Some(*batch_id),
            _ => None,
        }
    }

    /// Whether the connection can go on after this error: only a batch that
    /// was well framed but invalid leaves the byte stream in sync.
    pub fn is_recoverable(&self) -> bool {
        self.code() == codes::BAD_BATCH
    }
}

/// What is wrong with one message of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageProblem {
    /// `conversation_id` or `customer_id` is not a valid id.
    Id {
        /// The field.
        field: &'static str,
        /// What is wrong.
        error: loket_ids::IdError,
    },
    /// A required skill has an empty or too long name, or a proficiency
    /// outside 1..=10.
    Skill {
        /// The skill's name (at most 64 characters of it).
        name: String,
        /// The proficiency given.
        level: u8,
    },
    /// `channel` is not one of [`crate::channel`]'s values.
    Channel(u8),
    /// `language` is not one of [`crate::language`]'s values.
    Language(u8),
    /// `text` is longer than `max_text_bytes`.
    TextTooLong {
        /// The text's length in bytes.
        len: usize,
        /// The limit.
        max: u32,
    },
}

impl MessageProblem {
    /// The field at fault: `"conversation_id"`, `"customer_id"`,
    /// `"skills"`, `"channel"`, `"language"` or `"text"`.
    pub fn field(&self) -> &'static str {
        match self {
            MessageProblem::Id { field, .. } => field,
            MessageProblem::Skill { .. } => "skills",
            MessageProblem::Channel(_) => "channel",
            MessageProblem::Language(_) => "language",
            MessageProblem::TextTooLong { .. } => "text",
        }
    }
}

impl fmt::Display for MessageProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageProblem::Id { field, error } => write!(f, "field `{field}`: {error}"),
            MessageProblem::Skill { name, level } => write!(
                f,
                "field `skills`: skill {name:?} with proficiency {level} (names are 1 to {} bytes, proficiency 1..=10)",
                crate::batch::MAX_SKILL_NAME
            ),
            MessageProblem::Channel(value) => write!(
                f,
                "field `channel`: {value} is not a channel (0..={})",
                crate::channel::COUNT - 1
            ),
            MessageProblem::Language(value) => write!(
                f,
                "field `language`: {value} is not a language (0..={})",
                crate::language::COUNT - 1
            ),
            MessageProblem::TextTooLong { len, max } => {
                write!(f, "field `text`: {len} bytes, more than the limit of {max}")
            }
        }
    }
}

/// What is wrong with one reply or order of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ItemProblem {
    /// `conversation_id` or `agent_id` is not a valid id.
    Id {
        /// The field.
        field: &'static str,
        /// What is wrong.
        error: loket_ids::IdError,
    },
    /// An order's `value_minor` is negative.
    Value(i64),
    /// An order's `currency` is not three ASCII letters (at most 16
    /// characters of it).
    Currency(String),
}

impl ItemProblem {
    /// The field at fault: `"conversation_id"`, `"agent_id"`,
    /// `"value_minor"` or `"currency"`.
    pub fn field(&self) -> &'static str {
        match self {
            ItemProblem::Id { field, .. } => field,
            ItemProblem::Value(_) => "value_minor",
            ItemProblem::Currency(_) => "currency",
        }
    }
}

impl fmt::Display for ItemProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemProblem::Id { field, error } => write!(f, "field `{field}`: {error}"),
            ItemProblem::Value(value) => {
                write!(f, "field `value_minor`: {value} is not an amount of 0 or more")
            }
            ItemProblem::Currency(code) => {
                write!(f, "field `currency`: {code:?} is not a three-letter code")
            }
        }
    }
}

/// The text of bytecheck's verdict on an archive, for
/// [`WireError::BadArchive`], with the memory addresses it names (of the
/// receiving buffer, so they differ from run to run and tell the client
/// nothing) replaced by `0x…`: the same bytes always give the same error.
pub(crate) fn archive_verdict(error: &impl fmt::Display) -> String {
    let text = error.to_string();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("0x") {
        out.push_str(&rest[..at]);
        let digits = rest[at + 2..].bytes().take_while(u8::is_ascii_hexdigit).count();
        out.push_str(if digits > 0 { "0x…" } else { "0x" });
        rest = &rest[at + 2 + digits..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::archive_verdict;

    #[test]
    fn archive_verdicts_name_no_addresses() {
        let verdict = "subtree pointer overran range: ptr 0x00007ced89be05e8 size 192 in range \
                       0x00007ced09be04c0..0x00007ced09be05f0";
        assert_eq!(
            archive_verdict(&verdict),
            "subtree pointer overran range: ptr 0x… size 192 in range 0x…..0x…"
        );
        assert_eq!(archive_verdict(&"no address, 0x alone"), "no address, 0x alone");
    }
}
