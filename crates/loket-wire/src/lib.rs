//! The binary ingest protocol of the `loketd` daemon.
//!
//! A client opens a TCP connection, says [`Hello`] with a bearer token, gets
//! a [`Welcome`] naming its tenant and the server's limits, and then streams
//! [`MessageBatch`]es, and (from version 3) [`ReplyBatch`]es and
//! [`OrderBatch`]es for the reports. The server answers every batch with
//! exactly one [`Ack`] (the batch is durable and applied) or one
//! [`ErrorFrame`].
//!
//! # Frames, byte by byte
//!
//! Every frame is a 4-byte length prefix and a body; all integers are
//! little-endian:
//!
//! ```text
//! offset  size   field
//! 0       4      N: body length, u32 LE, 1 ..= max_frame_bytes
//! 4       1      frame type
//! 5       N - 1  payload, by type:
//! ```
//!
//! | type | frame     | direction | payload |
//! |------|-----------|-----------|---------|
//! | 1    | `Hello`   | client → server, first frame | `u16` version, string token |
//! | 2    | `Welcome` | server → client | string tenant, `u32` max_frame_bytes, `u32` max_batch_messages |
//! | 3    | `Batch`   | client → server | rkyv archive of [`MessageBatch`] (the rest of the body) |
//! | 4    | `Ack`     | server → client | `u64` batch_id, `u32` accepted, `u64` last_seq |
//! | 5    | `Error`   | server → client | `u64` batch_id (0 if none), string code, string message |
//! | 6    | `Replies` | client → server, version 3 | rkyv archive of [`ReplyBatch`] (the rest of the body) |
//! | 7    | `Orders`  | client → server, version 3 | rkyv archive of [`OrderBatch`] (the rest of the body) |
//!
//! A *string* is a `u32` byte length followed by that many bytes of UTF-8.
//! A payload must end exactly after its last field: trailing bytes are an
//! error. So every frame has exactly one encoding, and
//! `encode_frame(decode_frame(bytes))` gives the same bytes back.
//!
//! A `Batch` payload is the archive [`rkyv`] 0.8 writes for a
//! [`MessageBatch`] with `rkyv::to_bytes::<rkyv::rancor::Error>` (its default
//! format: little-endian, aligned, 32-bit relative pointers, the root at the
//! end). The decoder copies it into a 16-byte-aligned buffer, checks it with
//! bytecheck, then checks the rules bytecheck cannot ([`validate_batch`]);
//! after that [`BatchFrame::archived`] reads it in place, without
//! deserializing. A reader that receives payloads straight into an
//! [`rkyv::util::AlignedVec`] can skip the copy with
//! [`BatchFrame::from_aligned`].
//!
//! `Replies` and `Orders` payloads are archives of [`ReplyBatch`] and
//! [`OrderBatch`] in the same format, checked the same way (bytecheck,
//! then [`validate_replies`] / [`validate_orders`]) and then read out into
//! owned batches: [`ReplyBatchFrame::batch`], [`OrderBatchFrame::batch`].
//!
//! ## Example: a `Hello`
//!
//! ```
//! use loket_wire::{Frame, Hello, Limits, decode_frame, encode_frame};
//!
//! let mut bytes = Vec::new();
//! encode_frame(&Frame::Hello(Hello { version: 1, token: "t0k".into() }), &mut bytes).unwrap();
//! assert_eq!(bytes, [10, 0, 0, 0, 1, 1, 0, 3, 0, 0, 0, b't', b'0', b'k']);
//! let (frame, used) = decode_frame(&bytes, &Limits::default()).unwrap().unwrap();
//! assert_eq!(used, bytes.len());
//! assert!(matches!(frame, Frame::Hello(h) if h.token == "t0k"));
//! ```
//!
//! # Message fields
//!
//! `channel` ([`channel`], the order of `loket_capacity::Channel`): chat = 0,
//! whatsapp = 1, messenger = 2, sms = 3, email = 4, voice = 5.
//! `language` ([`language`]): 0 = detect, 1 = nl, 2 = en. `text`: at most
//! `max_text_bytes` bytes. A batch holds 1 ..= `max_batch_messages`
//! messages. A broken rule is a [`WireError::InvalidMessage`] naming the
//! message's index and the field.
//!
//! # Reply and order fields
//!
//! A [`WireReply`] is `conversation_id`, `agent_id` (both ids) and `at_ms`
//! (`Option<u64>`, ms since the Unix epoch; `None` means the server's time
//! when it applies the reply). A [`WireOrder`] is `conversation_id`,
//! `value_minor` (`i64`, hundredths of the currency, 0 or more),
//! `currency` (three ASCII letters, any case) and `at_ms` as for replies.
//! A batch holds 1 ..= `max_batch_messages` items. A broken rule is a
//! [`WireError::InvalidItem`] naming the item's index and the field.
//!
//! # Limits
//!
//! [`Limits`], with their defaults: `max_frame_bytes` (4 MiB) bounds the
//! body length N; a larger prefix is rejected from its 4 bytes alone,
//! before any of the body is buffered. `max_batch_messages` (10,000), which
//! bounds replies and orders per batch too; `max_text_bytes` (4,096). The server announces the first two in its
//! `Welcome`.
//!
//! # Error codes
//!
//! The `code` of an `Error` frame is one of [`codes`]: `bad_frame`,
//! `frame_too_large`, `bad_batch`, `unauthorized`, `unsupported_version`,
//! `rate_limited`, `shutting_down`, `internal`. After `bad_frame`,
//! `frame_too_large`, `unauthorized` and `unsupported_version` the server
//! closes the connection (the byte stream cannot be trusted, or the client
//! may not go on). `bad_batch` and `rate_limited` reject one batch, named by
//! `batch_id`; the connection stays usable.
//!
//! # Versions
//!
//! A client names the version it speaks in `Hello`; a server answers a
//! version outside [`MIN_PROTOCOL_VERSION`] ..= [`PROTOCOL_VERSION`] with
//! `unsupported_version`. Version 3 adds frame types 6 and 7 and changes
//! nothing else, so a version-2 client keeps working unchanged; a
//! version-3 client that meets a version-2 server (`unsupported_version`)
//! may say `Hello` again with version 2 on a new connection and send only
//! message batches. A server refuses `Replies` and `Orders` frames on a
//! version-2 connection with `bad_frame`.
//!
//! # Ordering and pipelining
//!
//! A client may send many batches without waiting for acks (pipelining);
//! the server answers them in the order it received them, one `Ack` or
//! `Error` each. A batch without an answer when the connection ends was not
//! made durable. [`Ack::last_seq`] is the tenant's event sequence number
//! after the batch's decisions, so it never decreases along a connection.
//!
//! # Code
//!
//! [`decode_frame`] and [`encode_frame`] / [`encode_batch`] are plain sync
//! functions; [`FrameCodec`] wraps them as a tokio-util `Decoder` and
//! `Encoder` for `Framed`, and [`ServerCodec`] does the same for servers
//! that answer a bad batch and read on.

#![deny(missing_docs)]

mod batch;
mod codec;
mod error;
mod frame;
mod measures;

pub use batch::{
    ArchivedMessageBatch, ArchivedWireMessage, ArchivedWireSkill, BatchFrame, MAX_SKILL_NAME,
    MessageBatch, WireMessage, WireSkill, validate_batch,
};
pub use codec::{FrameCodec, ServerCodec};
pub use error::{ItemProblem, MessageProblem, WireError, codes};
pub use frame::{
    Ack, ErrorFrame, Frame, FrameType, Hello, LENGTH_PREFIX, Limits, Welcome, decode_frame,
    encode_batch, encode_frame, encode_orders, encode_replies, frame_len,
};
pub use loket_ids::{ArchivedId, Id};
pub use measures::{
    ArchivedOrderBatch, ArchivedReplyBatch, ArchivedWireOrder, ArchivedWireReply, OrderBatch,
    OrderBatchFrame, ReplyBatch, ReplyBatchFrame, WireOrder, WireReply, is_currency_code,
    validate_orders, validate_replies,
};

/// The protocol version this crate speaks, sent in [`Hello::version`].
/// Version 3 added the `Replies` and `Orders` frames to version 2.
pub const PROTOCOL_VERSION: u16 = 3;

/// The oldest protocol version a server built with this crate still
/// accepts in a [`Hello`]: a version-2 client keeps working, without the
/// frames of version 3 ([`FrameType::since_version`]).
pub const MIN_PROTOCOL_VERSION: u16 = 2;

/// The `channel` byte of a [`WireMessage`]; the same order as
/// `loket_capacity::Channel`.
pub mod channel {
    /// Live web chat.
    pub const CHAT: u8 = 0;
    /// WhatsApp.
    pub const WHATSAPP: u8 = 1;
    /// Facebook Messenger and similar social messaging.
    pub const MESSENGER: u8 = 2;
    /// SMS.
    pub const SMS: u8 = 3;
    /// Email.
    pub const EMAIL: u8 = 4;
    /// Voice calls.
    pub const VOICE: u8 = 5;
    /// Number of channels; valid values are `0..COUNT`.
    pub const COUNT: u8 = 6;

    const NAMES: [&str; COUNT as usize] =
        ["chat", "whatsapp", "messenger", "sms", "email", "voice"];

    /// The lower-case name of a channel (`"chat"`, `"whatsapp"`, ...), as in
    /// the HTTP API.
    pub fn name(channel: u8) -> Option<&'static str> {
        NAMES.get(channel as usize).copied()
    }

    /// The channel byte of a lower-case name.
    pub fn from_name(name: &str) -> Option<u8> {
        NAMES.iter().position(|n| *n == name).map(|i| i as u8)
    }
}

/// The `language` byte of a [`WireMessage`].
pub mod language {
    /// Unknown: the server detects it from the text.
    pub const DETECT: u8 = 0;
    /// Dutch.
    pub const NL: u8 = 1;
    /// English.
    pub const EN: u8 = 2;
    /// Number of values; valid values are `0..COUNT`.
    pub const COUNT: u8 = 3;

    /// The ISO 639-1 code (`"nl"`, `"en"`), or `None` for [`DETECT`] and
    /// invalid values.
    pub fn code(language: u8) -> Option<&'static str> {
        match language {
            NL => Some("nl"),
            EN => Some("en"),
            _ => None,
        }
    }
}

/// Checks for the fuzz target; not part of the API.
#[doc(hidden)]
pub mod fuzz_checks {
    use bytes::BytesMut;
    use tokio_util::codec::Decoder;

    use crate::{
        Frame, FrameCodec, Limits, decode_frame, encode_batch, encode_frame, encode_orders,
        encode_replies, frame_len, is_currency_code, validate_batch,
    };

    /// What decoding a byte string gave: the frames, and the errors (as
    /// text) in order, interleaved as `Err` entries.
    type Outcome = Vec<Result<Frame, String>>;

    /// Feeds arbitrary bytes through the sync decoder and through
    /// [`FrameCodec`] in chunks of sizes derived from the data, under the
    /// default limits and under small ones. Never panics; both paths must
    /// see the same frames and errors; every accepted batch passes
    /// validation; every accepted reply or order batch keeps the rules and
    /// survives re-serializing; every accepted frame encodes back to its
    /// exact bytes.
    pub fn frame_decoder(data: &[u8]) {
        let small = Limits { max_frame_bytes: 600, max_batch_messages: 3, max_text_bytes: 24 };
        for limits in [Limits::default(), small] {
            let whole = decode_whole(data, &limits);
            let chunked = decode_chunked(data, &limits);
            assert_eq!(whole, chunked, "chunked decoding differs from whole decoding");
        }
    }

    fn decode_whole(data: &[u8], limits: &Limits) -> Outcome {
        let mut outcome = Vec::new();
        let mut pos = 0;
        loop {
            let rest = &data[pos..];
            match decode_frame(rest, limits) {
                Ok(Some((frame, used))) => {
                    assert!(used > 0 && used <= rest.len());
                    check_frame(&frame, &rest[..used], limits);
                    outcome.push(Ok(frame));
                    pos += used;
                }
                Ok(None) => return outcome,
                Err(error) => {
                    let recoverable = error.is_recoverable();
                    outcome.push(Err(error.to_string()));
                    if !recoverable {
                        return outcome;
                    }
                    // A bad batch is well framed: skip it, as a server would.
                    let skip = frame_len(rest, limits).ok().flatten();
                    assert!(skip.is_some_and(|n| n <= rest.len()), "bad batch is framed");
                    pos += skip.unwrap_or(rest.len());
                }
            }
        }
    }

    fn decode_chunked(data: &[u8], limits: &Limits) -> Outcome {
        let mut codec = FrameCodec::new(*limits);
        let mut outcome = Vec::new();
        let mut buf = BytesMut::new();
        let mut rng = data.iter().fold(0x9E37_79B9_7F4A_7C15_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
        }) | 1;
        let mut pos = 0;
        while pos < data.len() {
            // xorshift64: chunk sizes 1..=64, sometimes up to 4 KiB.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let size = if rng % 8 == 0 { rng % 4096 + 1 } else { rng % 64 + 1 } as usize;
            let end = data.len().min(pos + size);
            buf.extend_from_slice(&data[pos..end]);
            pos = end;
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(frame)) => outcome.push(Ok(frame)),
                    Ok(None) => break,
                    Err(error) => {
                        let recoverable = error.is_recoverable();
                        outcome.push(Err(error.to_string()));
                        if !recoverable {
                            return outcome;
                        }
                        // The codec skipped the bad batch's bytes already.
                    }
                }
            }
        }
        outcome
    }

    fn check_frame(frame: &Frame, bytes: &[u8], limits: &Limits) {
        let mut encoded = Vec::new();
        encode_frame(frame, &mut encoded).expect("a decoded frame encodes");
        assert_eq!(encoded, bytes, "encode(decode(x)) != x");
        assert_eq!(frame.encoded_len(), bytes.len());
        let unbounded = Limits { max_frame_bytes: u32::MAX, ..*limits };
        let max_items = limits.max_batch_messages as usize;
        if let Frame::Replies(replies) = frame {
            let batch = replies.batch();
            assert!((1..=max_items).contains(&batch.replies.len()));
            for reply in &batch.replies {
                assert!(reply.conversation_id.check().is_ok() && reply.agent_id.check().is_ok());
            }
            let mut again = Vec::new();
            encode_replies(batch, &mut again).expect("an accepted reply batch re-encodes");
            match decode_frame(&again, &unbounded) {
                Ok(Some((Frame::Replies(b), used))) => {
                    assert_eq!(used, again.len());
                    assert_eq!(b.batch(), batch);
                }
                other => panic!("re-encoded reply batch did not decode: {other:?}"),
            }
        }
        if let Frame::Orders(orders) = frame {
            let batch = orders.batch();
            assert!((1..=max_items).contains(&batch.orders.len()));
            for order in &batch.orders {
                assert!(order.conversation_id.check().is_ok());
                assert!(order.value_minor >= 0 && is_currency_code(&order.currency));
            }
            let mut again = Vec::new();
            encode_orders(batch, &mut again).expect("an accepted order batch re-encodes");
            match decode_frame(&again, &unbounded) {
                Ok(Some((Frame::Orders(b), used))) => {
                    assert_eq!(used, again.len());
                    assert_eq!(b.batch(), batch);
                }
                other => panic!("re-encoded order batch did not decode: {other:?}"),
            }
        }
        if let Frame::Batch(batch) = frame {
            validate_batch(batch.archived(), limits).expect("an accepted batch is valid");
            assert!(batch.message_count() >= 1);
            assert!(batch.message_count() <= limits.max_batch_messages as usize);
            // Re-serialized, the owned batch decodes to the same batch.
            let owned = batch.to_batch();
            let mut again = Vec::new();
            encode_batch(&owned, &mut again).expect("an accepted batch re-encodes");
            match decode_frame(&again, &unbounded) {
                Ok(Some((Frame::Batch(b), used))) => {
                    assert_eq!(used, again.len());
                    assert_eq!(b.to_batch(), owned);
                }
                other => panic!("re-encoded batch did not decode: {other:?}"),
            }
        }
    }
}
