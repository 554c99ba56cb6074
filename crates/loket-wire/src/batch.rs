//! Message batches: the rkyv payload of a `Batch` frame, and [`BatchFrame`],
//! a payload validated once and then read in place.

use loket_ids::Id;
use rkyv::rancor;
use rkyv::util::AlignedVec;

use crate::{Limits, MessageProblem, WireError, channel, language};

/// A batch of customer messages, as a client builds it. On the wire it is
/// an rkyv archive; the server reads it in place as [`ArchivedMessageBatch`].
#[derive(Debug, Clone, PartialEq, Eq, Default, rkyv::Archive, rkyv::Serialize)]
#[rkyv(derive(Debug))]
pub struct MessageBatch {
    /// The client's id for the batch; comes back in its `Ack` or `Error`.
    /// Unique per connection by convention (the server does not check).
    pub batch_id: u64,
    /// The messages, 1 ..= `max_batch_messages` of them.
    pub messages: Vec<WireMessage>,
}

/// One inbound customer message.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize)]
#[rkyv(derive(Debug))]
pub struct WireMessage {
    /// The conversation, as the platform names it; a new id opens a
    /// conversation. `Id::Number(n)` means the same as the text of `n`.
    pub conversation_id: Id,
    /// The customer, as the platform names them.
    pub customer_id: Id,
    /// The channel, one of [`channel`]'s values (`0..channel::COUNT`).
    pub channel: u8,
    /// The language, one of [`language`]'s values: 0 = detect, 1 = nl, 2 = en.
    pub language: u8,
    /// Customer tier, 0 (default) and up; higher waits less.
    pub tier: u8,
    /// The message text, at most `max_text_bytes` bytes of UTF-8.
    pub text: String,
    /// When the client sent it, microseconds since the Unix epoch on the
    /// client's clock (for latency figures only); 0 if unknown.
    pub sent_at_us: u64,
    /// Skills the conversation needs, besides those its intent maps to.
    pub skills: Vec<WireSkill>,
}

impl Default for WireMessage {
    fn default() -> WireMessage {
        WireMessage {
            conversation_id: Id::Number(0),
            customer_id: Id::Number(0),
            channel: 0,
            language: 0,
            tier: 0,
            text: String::new(),
            sent_at_us: 0,
            skills: Vec::new(),
        }
    }
}

/// A skill a message requires: its name and the minimum proficiency.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize)]
#[rkyv(derive(Debug))]
pub struct WireSkill {
    /// The skill's name, 1 to 64 bytes.
    pub name: String,
    /// Minimum proficiency, 1..=10.
    pub level: u8,
}

/// The longest skill name a message may carry, in bytes.
pub const MAX_SKILL_NAME: usize = 64;

/// Checks the rules bytecheck cannot: the batch is not empty and within
/// `max_batch_messages`, and every message's ids are valid ids (1 to 128
/// bytes, no control characters), its skills named (1 to
/// [`MAX_SKILL_NAME`] bytes) with a proficiency of 1..=10, and its channel,
/// language and text length in range. Errors name the message index and
/// the field.
///
/// # Errors
/// [`WireError::EmptyBatch`], [`WireError::TooManyMessages`] or
/// [`WireError::InvalidMessage`] for the first rule broken.
pub fn validate_batch(batch: &ArchivedMessageBatch, limits: &Limits) -> Result<(), WireError> {
    let batch_id = batch.batch_id.to_native();
    let count = batch.messages.len();
    if count == 0 {
        return Err(WireError::EmptyBatch { batch_id });
    }
    if count > limits.max_batch_messages as usize {
        return Err(WireError::TooManyMessages { batch_id, count, max: limits.max_batch_messages });
    }
    for (index, message) in batch.messages.iter().enumerate() {
        let bad_skill = message.skills.iter().find(|skill| {
            skill.name.is_empty()
                || skill.name.len() > MAX_SKILL_NAME
                || !(1..=10).contains(&skill.level)
        });
        let problem = if let Err(error) = message.conversation_id.check() {
            Some(MessageProblem::Id { field: "conversation_id", error })
        } else if let Err(error) = message.customer_id.check() {
            Some(MessageProblem::Id { field: "customer_id", error })
        } else if let Some(skill) = bad_skill {
            Some(MessageProblem::Skill {
                name: skill.name.as_str().chars().take(64).collect(),
                level: skill.level,
            })
        } else if message.channel >= channel::COUNT {
            Some(MessageProblem::Channel(message.channel))
        } else if message.language >= language::COUNT {
            Some(MessageProblem::Language(message.language))
        } else if message.text.len() > limits.max_text_bytes as usize {
            Some(MessageProblem::TextTooLong {
                len: message.text.len(),
                max: limits.max_text_bytes,
            })
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(WireError::InvalidMessage { batch_id, index, problem });
        }
    }
    Ok(())
}

/// The payload of a `Batch` frame, validated: bytecheck passed and the
/// batch keeps the [`Limits`] it was decoded with. Holds the archive in a
/// 16-byte-aligned buffer, so [`BatchFrame::archived`] reads it in place and
/// cannot fail.
#[derive(Clone)]
pub struct BatchFrame {
    bytes: AlignedVec<16>,
}

impl BatchFrame {
    /// Validates a payload by copying it into an aligned buffer (one
    /// `memcpy`; the bytes of a socket buffer have no alignment guarantee).
    ///
    /// # Errors
    /// [`WireError::BadArchive`] when bytecheck rejects the bytes, or the
    /// errors of [`validate_batch`].
    pub fn from_payload(payload: &[u8], limits: &Limits) -> Result<BatchFrame, WireError> {
        let mut bytes = AlignedVec::<16>::with_capacity(payload.len());
        bytes.extend_from_slice(payload);
        BatchFrame::from_aligned(bytes, limits)
    }

    /// Validates an archive that is already in an aligned buffer, without
    /// copying: the zero-copy path for a reader that reads frame payloads
    /// straight into an [`AlignedVec`].
    ///
    /// # Errors
    /// As [`BatchFrame::from_payload`].
    pub fn from_aligned(bytes: AlignedVec<16>, limits: &Limits) -> Result<BatchFrame, WireError> {
        let archived = rkyv::access::<ArchivedMessageBatch, rancor::Error>(&bytes)
            .map_err(|e| WireError::BadArchive(crate::error::archive_verdict(&e)))?;
        validate_batch(archived, limits)?;
        Ok(BatchFrame { bytes })
    }

    /// Serializes and validates `batch`.
    ///
    /// # Errors
    /// [`WireError::Encode`] if serialization fails, or the errors of
    /// [`validate_batch`].
    pub fn from_batch(batch: &MessageBatch, limits: &Limits) -> Result<BatchFrame, WireError> {
        BatchFrame::from_aligned(archive(batch)?, limits)
    }

    /// The validated batch, read in place.
    pub fn archived(&self) -> &ArchivedMessageBatch {
        // SAFETY: every constructor ran `rkyv::access` (bytecheck) on exactly
        // these bytes, which are 16-aligned, owned and never mutated after.
        unsafe { rkyv::access_unchecked::<ArchivedMessageBatch>(&self.bytes) }
    }

    /// The batch's id.
    pub fn batch_id(&self) -> u64 {
        self.archived().batch_id.to_native()
    }

    /// How many messages the batch holds (at least 1).
    pub fn message_count(&self) -> usize {
        self.archived().messages.len()
    }

    /// The archive bytes: the frame's payload.
    pub fn payload(&self) -> &[u8] {
        &self.bytes
    }

    /// An owned copy of the batch.
    pub fn to_batch(&self) -> MessageBatch {
        let archived = self.archived();
        MessageBatch {
            batch_id: archived.batch_id.to_native(),
            messages: archived
                .messages
                .iter()
                .map(|m| WireMessage {
                    conversation_id: m.conversation_id.to_id(),
                    customer_id: m.customer_id.to_id(),
                    channel: m.channel,
                    language: m.language,
                    tier: m.tier,
                    text: m.text.as_str().to_owned(),
                    sent_at_us: m.sent_at_us.to_native(),
                    skills: m
                        .skills
                        .iter()
                        .map(|s| WireSkill { name: s.name.as_str().to_owned(), level: s.level })
                        .collect(),
                })
                .collect(),
        }
    }
}

impl PartialEq for BatchFrame {
    fn eq(&self, other: &BatchFrame) -> bool {
        self.payload() == other.payload()
    }
}

impl Eq for BatchFrame {}

impl std::fmt::Debug for BatchFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchFrame")
            .field("batch_id", &self.batch_id())
            .field("messages", &self.message_count())
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// The rkyv archive of `batch`.
pub(crate) fn archive(batch: &MessageBatch) -> Result<AlignedVec<16>, WireError> {
    rkyv::to_bytes::<rancor::Error>(batch).map_err(|e| WireError::Encode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Frame, codes, decode_frame, encode_batch};
    use proptest::prelude::*;

    pub(crate) fn sample(messages: usize) -> MessageBatch {
        MessageBatch {
            batch_id: 99,
            messages: (0..messages)
                .map(|i| WireMessage {
                    conversation_id: if i % 2 == 0 {
                        Id::Number(1_000 + i as u64)
                    } else {
                        Id::Text(format!("conv-{i}"))
                    },
                    customer_id: Id::Text("+31612345678".into()),
                    channel: (i % 6) as u8,
                    language: (i % 3) as u8,
                    tier: 1,
                    text: if i % 2 == 0 {
                        "hebben jullie nog bananenbomen op voorraad?".into()
                    } else {
                        "ok".into()
                    },
                    sent_at_us: 1_700_000_000_000_000 + i as u64,
                    skills: vec![WireSkill { name: "plants".into(), level: 3 }],
                })
                .collect(),
        }
    }

    fn frame_bytes(batch: &MessageBatch) -> Vec<u8> {
        let mut out = Vec::new();
        encode_batch(batch, &mut out).unwrap();
        out
    }

    fn decode_batch(bytes: &[u8], limits: &Limits) -> Result<BatchFrame, WireError> {
        match decode_frame(bytes, limits)? {
            Some((Frame::Batch(batch), used)) => {
                assert_eq!(used, bytes.len());
                Ok(batch)
            }
            other => panic!("not a batch: {other:?}"),
        }
    }

    #[test]
    fn a_batch_is_read_in_place_after_one_validation() {
        let batch = sample(5);
        let bytes = frame_bytes(&batch);
        let frame = decode_batch(&bytes, &Limits::default()).unwrap();
        assert_eq!(frame.batch_id(), 99);
        assert_eq!(frame.message_count(), 5);
        let archived = frame.archived();
        assert_eq!(archived.messages[0].text.as_str(), batch.messages[0].text);
        assert_eq!(archived.messages[4].conversation_id.to_id(), Id::Number(1_004));
        assert_eq!(archived.messages[3].conversation_id.to_id(), Id::Text("conv-3".into()));
        assert_eq!(frame.to_batch(), batch);
        assert_eq!(&bytes[5..], frame.payload());
        assert_eq!(BatchFrame::from_batch(&batch, &Limits::default()).unwrap(), frame);
    }

    #[test]
    fn semantic_errors_name_the_message_and_the_field() {
        let limits = Limits::default();
        let mut batch = sample(4);
        batch.messages[2].channel = 6;
        let error = decode_batch(&frame_bytes(&batch), &limits).unwrap_err();
        assert!(matches!(
            error,
            WireError::InvalidMessage {
                batch_id: 99,
                index: 2,
                problem: MessageProblem::Channel(6)
            }
        ));
        assert_eq!(error.code(), codes::BAD_BATCH);
        assert_eq!(error.batch_id(), Some(99));
        assert!(error.is_recoverable());
        assert!(error.to_string().contains("message 2: field `channel`"), "{error}");

        let mut batch = sample(4);
        batch.messages[3].language = 3;
        let error = decode_batch(&frame_bytes(&batch), &limits).unwrap_err();
        let WireError::InvalidMessage { index: 3, problem, .. } = error else { panic!("{error}") };
        assert_eq!(problem.field(), "language");

        let mut batch = sample(4);
        batch.messages[1].text = "x".repeat(4097);
        let error = decode_batch(&frame_bytes(&batch), &limits).unwrap_err();
        assert!(matches!(
            error,
            WireError::InvalidMessage {
                index: 1,
                problem: MessageProblem::TextTooLong { len: 4097, max: 4096 },
                ..
            }
        ));
        batch.messages[1].text = "x".repeat(4096);
        assert!(decode_batch(&frame_bytes(&batch), &limits).is_ok());

        type Spoil = fn(&mut WireMessage);
        let problems: [(Spoil, &str); 5] = [
            (|m| m.conversation_id = Id::Text(String::new()), "conversation_id"),
            (|m| m.customer_id = Id::Text("a\nb".into()), "customer_id"),
            (|m| m.conversation_id = Id::Text("x".repeat(129)), "conversation_id"),
            (|m| m.skills[0].level = 11, "skills"),
            (|m| m.skills[0].name = String::new(), "skills"),
        ];
        for (spoil, field) in problems {
            let mut batch = sample(2);
            spoil(&mut batch.messages[1]);
            let error = decode_batch(&frame_bytes(&batch), &limits).unwrap_err();
            let WireError::InvalidMessage { index: 1, problem, .. } = &error else {
                panic!("{error}")
            };
            assert_eq!(problem.field(), field, "{error}");
            assert!(error.to_string().contains(&format!("field `{field}`")), "{error}");
        }
    }

    #[test]
    fn empty_and_overfull_batches_are_rejected() {
        let error = decode_batch(&frame_bytes(&sample(0)), &Limits::default()).unwrap_err();
        assert!(matches!(error, WireError::EmptyBatch { batch_id: 99 }));
        let limits = Limits { max_batch_messages: 3, ..Limits::default() };
        assert!(decode_batch(&frame_bytes(&sample(3)), &limits).is_ok());
        let error = decode_batch(&frame_bytes(&sample(4)), &limits).unwrap_err();
        assert!(matches!(error, WireError::TooManyMessages { count: 4, max: 3, .. }));
    }

    #[test]
    fn corrupted_archives_are_errors_never_panics() {
        let bytes = frame_bytes(&sample(3));
        let limits = Limits::default();
        for at in 5..bytes.len() {
            for flip in [0x01u8, 0x80, 0xFF] {
                let mut bad = bytes.clone();
                bad[at] ^= flip;
                // Either still valid (a byte of a number or text) or a bad batch.
                if let Err(error) = decode_batch(&bad, &limits) {
                    assert_eq!(error.code(), codes::BAD_BATCH, "{error}");
                }
            }
        }
        // Truncated payloads, length prefix adjusted to match.
        for len in 1..bytes.len() - 4 {
            let mut bad = (len as u32).to_le_bytes().to_vec();
            bad.extend_from_slice(&bytes[4..4 + len]);
            if let Err(error) = decode_batch(&bad, &limits) {
                assert_eq!(error.code(), codes::BAD_BATCH, "{error}");
            }
        }
    }

    fn arb_message() -> impl Strategy<Value = WireMessage> {
        let id =
            prop_oneof![any::<u64>().prop_map(Id::Number), "[a-z0-9-]{1,40}".prop_map(Id::Text)];
        (id.clone(), id, 0u8..6, 0u8..3, any::<u8>(), ".{0,40}", any::<u64>()).prop_map(
            |(conversation_id, customer_id, channel, language, tier, text, sent_at_us)| {
                WireMessage {
                    conversation_id,
                    customer_id,
                    channel,
                    language,
                    tier,
                    text,
                    sent_at_us,
                    skills: Vec::new(),
                }
            },
        )
    }

    proptest! {
        #[test]
        fn batches_round_trip(
            batch_id in any::<u64>(),
            messages in proptest::collection::vec(arb_message(), 1..40),
        ) {
            let batch = MessageBatch { batch_id, messages };
            let bytes = frame_bytes(&batch);
            let frame = decode_batch(&bytes, &Limits::default()).unwrap();
            prop_assert_eq!(frame.to_batch(), batch);
            let mut again = Vec::new();
            crate::encode_frame(&Frame::Batch(frame), &mut again).unwrap();
            prop_assert_eq!(again, bytes);
        }
    }
}
