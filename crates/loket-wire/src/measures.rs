//! Reply and order batches: what happened after routing, for the reports.
//! The rkyv payloads of the `Replies` and `Orders` frames, and
//! [`ReplyBatchFrame`] / [`OrderBatchFrame`], payloads validated once.

use loket_ids::Id;
use rkyv::rancor;
use rkyv::util::AlignedVec;

use crate::{ItemProblem, Limits, WireError};

/// A batch of replies: agents (people or bots) sent customers a message.
/// On the wire it is the rkyv archive of this struct.
#[derive(
    Debug, Clone, PartialEq, Eq, Default, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[rkyv(derive(Debug))]
pub struct ReplyBatch {
    /// The client's id for the batch; comes back in its `Ack` or `Error`.
    pub batch_id: u64,
    /// The replies, 1 ..= `max_batch_messages` of them, applied in order.
    pub replies: Vec<WireReply>,
}

/// One reply, as `POST /v1/conversations/{id}/replies` takes it.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct WireReply {
    /// The conversation replied to.
    pub conversation_id: Id,
    /// The agent (person or bot) who replied.
    pub agent_id: Id,
    /// When it was sent, ms since the Unix epoch; `None`: the server's time
    /// when it applies the reply.
    pub at_ms: Option<u64>,
}

/// A batch of orders: conversations that led to a purchase. On the wire it
/// is the rkyv archive of this struct.
#[derive(
    Debug, Clone, PartialEq, Eq, Default, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[rkyv(derive(Debug))]
pub struct OrderBatch {
    /// The client's id for the batch; comes back in its `Ack` or `Error`.
    pub batch_id: u64,
    /// The orders, 1 ..= `max_batch_messages` of them, applied in order.
    pub orders: Vec<WireOrder>,
}

/// One order, as `POST /v1/conversations/{id}/orders` takes it.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct WireOrder {
    /// The conversation that led to the purchase.
    pub conversation_id: Id,
    /// The value in hundredths of the currency (`4995` is 49.95), 0 or more.
    pub value_minor: i64,
    /// ISO 4217 code: three ASCII letters, any case (`"EUR"`).
    pub currency: String,
    /// When, ms since the Unix epoch; `None`: the server's time when it
    /// applies the order.
    pub at_ms: Option<u64>,
}

/// Whether `code` is three ASCII letters, the currency rule of the HTTP API.
pub fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic())
}

/// The longest currency text an [`ItemProblem::Currency`] quotes.
const QUOTED_CURRENCY: usize = 16;

/// Checks the rules bytecheck cannot: 1 ..= `max_batch_messages` replies,
/// every id a valid id (1 to 128 bytes, no control characters).
///
/// # Errors
/// [`WireError::EmptyItems`], [`WireError::TooManyItems`] or
/// [`WireError::InvalidItem`] (naming the reply's index and the field) for
/// the first rule broken.
pub fn validate_replies(batch: &ArchivedReplyBatch, limits: &Limits) -> Result<(), WireError> {
    let batch_id = batch.batch_id.to_native();
    check_count(REPLIES, batch_id, batch.replies.len(), limits)?;
    for (index, reply) in batch.replies.iter().enumerate() {
        let problem = if let Err(error) = reply.conversation_id.check() {
            ItemProblem::Id { field: "conversation_id", error }
        } else if let Err(error) = reply.agent_id.check() {
            ItemProblem::Id { field: "agent_id", error }
        } else {
            continue;
        };
        return Err(WireError::InvalidItem { frame: REPLIES, batch_id, index, problem });
    }
    Ok(())
}

/// Checks the rules bytecheck cannot: 1 ..= `max_batch_messages` orders,
/// every conversation id a valid id, every value 0 or more and every
/// currency three ASCII letters.
///
/// # Errors
/// [`WireError::EmptyItems`], [`WireError::TooManyItems`] or
/// [`WireError::InvalidItem`] (naming the order's index and the field) for
/// the first rule broken.
pub fn validate_orders(batch: &ArchivedOrderBatch, limits: &Limits) -> Result<(), WireError> {
    let batch_id = batch.batch_id.to_native();
    check_count(ORDERS, batch_id, batch.orders.len(), limits)?;
    for (index, order) in batch.orders.iter().enumerate() {
        let value = order.value_minor.to_native();
        let problem = if let Err(error) = order.conversation_id.check() {
            ItemProblem::Id { field: "conversation_id", error }
        } else if value < 0 {
            ItemProblem::Value(value)
        } else if !is_currency_code(order.currency.as_str()) {
            ItemProblem::Currency(order.currency.as_str().chars().take(QUOTED_CURRENCY).collect())
        } else {
            continue;
        };
        return Err(WireError::InvalidItem { frame: ORDERS, batch_id, index, problem });
    }
    Ok(())
}

const REPLIES: &str = "replies";
const ORDERS: &str = "orders";

fn check_count(
    frame: &'static str,
    batch_id: u64,
    count: usize,
    limits: &Limits,
) -> Result<(), WireError> {
    if count == 0 {
        return Err(WireError::EmptyItems { frame, batch_id });
    }
    if count > limits.max_batch_messages as usize {
        return Err(WireError::TooManyItems {
            frame,
            batch_id,
            count,
            max: limits.max_batch_messages,
        });
    }
    Ok(())
}

/// The payload of a `Replies` frame, validated (bytecheck and
/// [`validate_replies`] under the [`Limits`] it was decoded with): the
/// archive's bytes, which encode it back exactly, and the batch they hold.
#[derive(Clone)]
pub struct ReplyBatchFrame {
    bytes: AlignedVec<16>,
    batch: ReplyBatch,
}

/// The payload of an `Orders` frame, validated (bytecheck and
/// [`validate_orders`] under the [`Limits`] it was decoded with): the
/// archive's bytes, which encode it back exactly, and the batch they hold.
#[derive(Clone)]
pub struct OrderBatchFrame {
    bytes: AlignedVec<16>,
    batch: OrderBatch,
}

macro_rules! batch_frame {
    ($frame:ident, $batch:ident, $archived:ident, $validate:ident, $items:ident, $name:expr) => {
        impl $frame {
            /// Validates a payload, copying it into an aligned buffer, and
            /// reads the batch out of it.
            ///
            /// # Errors
            /// [`WireError::BadArchive`] when bytecheck rejects the bytes,
            /// or the errors of the batch's validation.
            pub fn from_payload(payload: &[u8], limits: &Limits) -> Result<$frame, WireError> {
                let mut bytes = AlignedVec::<16>::with_capacity(payload.len());
                bytes.extend_from_slice(payload);
                $frame::from_aligned(bytes, limits)
            }

            /// As [`Self::from_payload`], for an archive already in an
            /// aligned buffer.
            ///
            /// # Errors
            /// As [`Self::from_payload`].
            pub fn from_aligned(
                bytes: AlignedVec<16>,
                limits: &Limits,
            ) -> Result<$frame, WireError> {
                let archived = rkyv::access::<$archived, rancor::Error>(&bytes).map_err(|e| {
                    WireError::BadArchive(format!(
                        "{} archive: {}",
                        $name,
                        crate::error::archive_verdict(&e)
                    ))
                })?;
                $validate(archived, limits)?;
                let batch = rkyv::deserialize::<$batch, rancor::Error>(archived).map_err(|e| {
                    WireError::BadArchive(format!(
                        "{} archive: {}",
                        $name,
                        crate::error::archive_verdict(&e)
                    ))
                })?;
                Ok($frame { bytes, batch })
            }

            /// Serializes and validates `batch`.
            ///
            /// # Errors
            /// [`WireError::Encode`] if serialization fails, or the errors
            /// of the batch's validation.
            pub fn from_batch(batch: &$batch, limits: &Limits) -> Result<$frame, WireError> {
                let bytes = rkyv::to_bytes::<rancor::Error>(batch)
                    .map_err(|e| WireError::Encode(e.to_string()))?;
                $frame::from_aligned(bytes, limits)
            }

            /// The validated batch.
            pub fn batch(&self) -> &$batch {
                &self.batch
            }

            /// The validated batch, owned.
            pub fn into_batch(self) -> $batch {
                self.batch
            }

            /// The batch's id.
            pub fn batch_id(&self) -> u64 {
                self.batch.batch_id
            }

            /// How many items the batch holds (at least 1).
            pub fn len(&self) -> usize {
                self.batch.$items.len()
            }

            /// Never true for a validated batch; for symmetry with
            /// [`Self::len`].
            pub fn is_empty(&self) -> bool {
                self.batch.$items.is_empty()
            }

            /// The archive bytes: the frame's payload.
            pub fn payload(&self) -> &[u8] {
                &self.bytes
            }
        }

        /// Equal payloads: equal batches.
        impl PartialEq for $frame {
            fn eq(&self, other: &$frame) -> bool {
                self.payload() == other.payload()
            }
        }

        impl Eq for $frame {}

        impl std::fmt::Debug for $frame {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($frame))
                    .field("batch_id", &self.batch.batch_id)
                    .field(stringify!($items), &self.batch.$items.len())
                    .field("bytes", &self.bytes.len())
                    .finish()
            }
        }
    };
}

batch_frame!(ReplyBatchFrame, ReplyBatch, ArchivedReplyBatch, validate_replies, replies, REPLIES);
batch_frame!(OrderBatchFrame, OrderBatch, ArchivedOrderBatch, validate_orders, orders, ORDERS);

/// The rkyv archive of a reply batch.
pub(crate) fn archive_replies(batch: &ReplyBatch) -> Result<AlignedVec<16>, WireError> {
    rkyv::to_bytes::<rancor::Error>(batch).map_err(|e| WireError::Encode(e.to_string()))
}

/// The rkyv archive of an order batch.
pub(crate) fn archive_orders(batch: &OrderBatch) -> Result<AlignedVec<16>, WireError> {
    rkyv::to_bytes::<rancor::Error>(batch).map_err(|e| WireError::Encode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Frame, FrameType, codes, decode_frame, encode_orders, encode_replies};
    use proptest::prelude::*;

    fn replies(count: usize) -> ReplyBatch {
        ReplyBatch {
            batch_id: 41,
            replies: (0..count)
                .map(|i| WireReply {
                    conversation_id: if i % 2 == 0 {
                        Id::Number(1_000 + i as u64)
                    } else {
                        Id::Text(format!("conv-{i}"))
                    },
                    agent_id: Id::Text("anna".into()),
                    at_ms: (i % 3 != 0).then_some(1_764_000_000_000 + i as u64),
                })
                .collect(),
        }
    }

    fn orders(count: usize) -> OrderBatch {
        OrderBatch {
            batch_id: 42,
            orders: (0..count)
                .map(|i| WireOrder {
                    conversation_id: Id::Text(format!("WT-{i}")),
                    value_minor: 4_995 * i as i64,
                    currency: if i % 2 == 0 { "EUR".into() } else { "usd".into() },
                    at_ms: (i % 2 == 1).then_some(1_764_000_000_000),
                })
                .collect(),
        }
    }

    fn reply_bytes(batch: &ReplyBatch) -> Vec<u8> {
        let mut out = Vec::new();
        encode_replies(batch, &mut out).unwrap();
        out
    }

    fn order_bytes(batch: &OrderBatch) -> Vec<u8> {
        let mut out = Vec::new();
        encode_orders(batch, &mut out).unwrap();
        out
    }

    fn decode(bytes: &[u8], limits: &Limits) -> Result<Frame, WireError> {
        let (frame, used) = decode_frame(bytes, limits)?.expect("a whole frame");
        assert_eq!(used, bytes.len());
        Ok(frame)
    }

    #[test]
    fn reply_and_order_batches_round_trip_in_their_frames() {
        let batch = replies(5);
        let bytes = reply_bytes(&batch);
        assert_eq!(bytes[4], FrameType::Replies as u8);
        assert_eq!(bytes[4], 6);
        assert_eq!(u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize, bytes.len() - 4);
        let Frame::Replies(frame) = decode(&bytes, &Limits::default()).unwrap() else {
            panic!("not a reply batch")
        };
        assert_eq!((frame.batch_id(), frame.len()), (41, 5));
        assert_eq!(frame.batch(), &batch);
        assert_eq!(frame.payload(), &bytes[5..]);
        assert_eq!(ReplyBatchFrame::from_batch(&batch, &Limits::default()).unwrap(), frame);
        let mut again = Vec::new();
        crate::encode_frame(&Frame::Replies(frame.clone()), &mut again).unwrap();
        assert_eq!(again, bytes);
        assert_eq!(frame.into_batch(), batch);

        let batch = orders(4);
        let bytes = order_bytes(&batch);
        assert_eq!(bytes[4], 7);
        let Frame::Orders(frame) = decode(&bytes, &Limits::default()).unwrap() else {
            panic!("not an order batch")
        };
        assert_eq!((frame.batch_id(), frame.len()), (42, 4));
        assert_eq!(frame.batch(), &batch);
        assert_eq!(frame.batch().orders[3].value_minor, 14_985);
        let mut again = Vec::new();
        crate::encode_frame(&Frame::Orders(frame), &mut again).unwrap();
        assert_eq!(again, bytes);
    }

    #[test]
    fn broken_items_are_refused_naming_the_item_and_the_field() {
        let limits = Limits::default();
        type SpoilReply = fn(&mut WireReply);
        let cases: [(SpoilReply, &str); 3] = [
            (|r| r.conversation_id = Id::Text(String::new()), "conversation_id"),
            (|r| r.agent_id = Id::Text("a\nb".into()), "agent_id"),
            (|r| r.agent_id = Id::Text("x".repeat(129)), "agent_id"),
        ];
        for (spoil, field) in cases {
            let mut batch = replies(3);
            spoil(&mut batch.replies[2]);
            let error = decode(&reply_bytes(&batch), &limits).unwrap_err();
            let WireError::InvalidItem { frame: "replies", batch_id: 41, index: 2, problem } =
                &error
            else {
                panic!("{error}")
            };
            assert_eq!(problem.field(), field);
            assert_eq!(error.code(), codes::BAD_BATCH);
            assert_eq!(error.batch_id(), Some(41));
            assert!(error.is_recoverable());
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("replies batch 41, item 2: field `{field}`")),
                "{error}"
            );
        }

        type SpoilOrder = fn(&mut WireOrder);
        let cases: [(SpoilOrder, &str, &str); 5] = [
            (|o| o.conversation_id = Id::Text("tab\there".into()), "conversation_id", ""),
            (|o| o.value_minor = -1, "value_minor", "-1 is not an amount of 0 or more"),
            (|o| o.currency = "EURO".into(), "currency", "\"EURO\" is not a three-letter code"),
            (|o| o.currency = "E1R".into(), "currency", "E1R"),
            (|o| o.currency = "€".repeat(40), "currency", "is not a three-letter code"),
        ];
        for (spoil, field, says) in cases {
            let mut batch = orders(2);
            spoil(&mut batch.orders[1]);
            let error = decode(&order_bytes(&batch), &limits).unwrap_err();
            let WireError::InvalidItem { frame: "orders", batch_id: 42, index: 1, problem } =
                &error
            else {
                panic!("{error}")
            };
            assert_eq!(problem.field(), field);
            assert!(error.to_string().contains(says), "{error}");
            assert!(error.to_string().len() < 200, "a long currency is quoted short: {error}");
        }
        // A value of 0 and lower-case currencies are fine, as over HTTP.
        let mut batch = orders(1);
        batch.orders[0].currency = "eur".into();
        assert_eq!(batch.orders[0].value_minor, 0);
        assert!(decode(&order_bytes(&batch), &limits).is_ok());
    }

    #[test]
    fn empty_and_overfull_batches_are_refused() {
        let error = decode(&reply_bytes(&replies(0)), &Limits::default()).unwrap_err();
        assert!(matches!(error, WireError::EmptyItems { frame: "replies", batch_id: 41 }));
        assert_eq!(error.to_string(), "replies batch 41 is empty");
        let error = decode(&order_bytes(&orders(0)), &Limits::default()).unwrap_err();
        assert!(matches!(error, WireError::EmptyItems { frame: "orders", batch_id: 42 }));

        let limits = Limits { max_batch_messages: 3, ..Limits::default() };
        assert!(decode(&reply_bytes(&replies(3)), &limits).is_ok());
        let error = decode(&reply_bytes(&replies(4)), &limits).unwrap_err();
        assert!(matches!(error, WireError::TooManyItems { count: 4, max: 3, .. }), "{error}");
        let error = decode(&order_bytes(&orders(4)), &limits).unwrap_err();
        assert_eq!(error.to_string(), "orders batch 42 has 4 items, more than the limit of 3");
        assert_eq!(error.code(), codes::BAD_BATCH);
    }

    #[test]
    fn corrupted_archives_are_bad_batches_never_panics() {
        let limits = Limits::default();
        for bytes in [reply_bytes(&replies(3)), order_bytes(&orders(3))] {
            for at in 5..bytes.len() {
                for flip in [0x01u8, 0x80, 0xFF] {
                    let mut bad = bytes.clone();
                    bad[at] ^= flip;
                    if let Err(error) = decode(&bad, &limits) {
                        assert_eq!(error.code(), codes::BAD_BATCH, "{error}");
                    }
                }
            }
            for len in 1..bytes.len() - 4 {
                let mut bad = (len as u32).to_le_bytes().to_vec();
                bad.extend_from_slice(&bytes[4..4 + len]);
                if let Err(error) = decode(&bad, &limits) {
                    assert_eq!(error.code(), codes::BAD_BATCH, "{error}");
                }
            }
        }
        // A message batch sent as replies is refused, not misread.
        let mut bytes = Vec::new();
        crate::encode_batch(&crate::MessageBatch::default(), &mut bytes).unwrap();
        bytes[4] = FrameType::Replies as u8;
        let error = decode(&bytes, &limits).unwrap_err();
        assert_eq!(error.code(), codes::BAD_BATCH, "{error}");
    }

    fn arb_id() -> impl Strategy<Value = Id> {
        prop_oneof![any::<u64>().prop_map(Id::Number), "[a-z0-9+-]{1,40}".prop_map(Id::Text)]
    }

    proptest! {
        #[test]
        fn reply_batches_round_trip(
            batch_id in any::<u64>(),
            items in proptest::collection::vec(
                (arb_id(), arb_id(), proptest::option::of(any::<u64>())), 1..40),
        ) {
            let batch = ReplyBatch {
                batch_id,
                replies: items
                    .into_iter()
                    .map(|(conversation_id, agent_id, at_ms)| WireReply {
                        conversation_id,
                        agent_id,
                        at_ms,
                    })
                    .collect(),
            };
            let bytes = reply_bytes(&batch);
            let Frame::Replies(frame) = decode(&bytes, &Limits::default()).unwrap() else {
                panic!("not a reply batch")
            };
            prop_assert_eq!(frame.batch(), &batch);
        }

        #[test]
        fn order_batches_round_trip(
            batch_id in any::<u64>(),
            items in proptest::collection::vec(
                (arb_id(), 0..i64::MAX, "[A-Za-z]{3}", proptest::option::of(any::<u64>())),
                1..40,
            ),
        ) {
            let batch = OrderBatch {
                batch_id,
                orders: items
                    .into_iter()
                    .map(|(conversation_id, value_minor, currency, at_ms)| WireOrder {
                        conversation_id,
                        value_minor,
                        currency,
                        at_ms,
                    })
                    .collect(),
            };
            let bytes = order_bytes(&batch);
            let Frame::Orders(frame) = decode(&bytes, &Limits::default()).unwrap() else {
                panic!("not an order batch")
            };
            prop_assert_eq!(frame.batch(), &batch);
        }
    }
}
