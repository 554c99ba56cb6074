//! Frames: their types, the sync decoder and the sync encoders.

use bytes::BufMut;

use crate::WireError;
use crate::batch::{BatchFrame, MessageBatch, archive};
use crate::measures::{
    OrderBatch, OrderBatchFrame, ReplyBatch, ReplyBatchFrame, archive_orders, archive_replies,
};

/// Bytes of the length prefix in front of every frame body.
pub const LENGTH_PREFIX: usize = 4;

/// The limits a decoder enforces. Servers announce `max_frame_bytes` and
/// `max_batch_messages` in their [`Welcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame body (type byte plus payload, the length prefix's
    /// value) accepted. Default 4 MiB.
    pub max_frame_bytes: u32,
    /// Most messages in one batch. Default 10,000.
    pub max_batch_messages: u32,
    /// Longest message text, in bytes of UTF-8. Default 4,096.
    pub max_text_bytes: u32,
}

impl Limits {
    /// 4 MiB.
    pub const DEFAULT_MAX_FRAME_BYTES: u32 = 4 * 1024 * 1024;
    /// 10,000.
    pub const DEFAULT_MAX_BATCH_MESSAGES: u32 = 10_000;
    /// 4,096.
    pub const DEFAULT_MAX_TEXT_BYTES: u32 = 4096;
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_frame_bytes: Limits::DEFAULT_MAX_FRAME_BYTES,
            max_batch_messages: Limits::DEFAULT_MAX_BATCH_MESSAGES,
            max_text_bytes: Limits::DEFAULT_MAX_TEXT_BYTES,
        }
    }
}

/// The type byte of each frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    /// Client → server, first frame: protocol version and bearer token.
    Hello = 1,
    /// Server → client, answer to `Hello`: the tenant and the limits.
    Welcome = 2,
    /// Client → server: an rkyv archive of a [`MessageBatch`].
    Batch = 3,
    /// Server → client: a batch is durable and routed.
    Ack = 4,
    /// Server → client: a batch, or the connection, failed.
    Error = 5,
    /// Client → server, protocol version 3: an rkyv archive of a
    /// [`ReplyBatch`].
    Replies = 6,
    /// Client → server, protocol version 3: an rkyv archive of an
    /// [`OrderBatch`].
    Orders = 7,
}

impl FrameType {
    /// The frame type of a type byte, if any.
    pub fn from_u8(byte: u8) -> Option<FrameType> {
        Some(match byte {
            1 => FrameType::Hello,
            2 => FrameType::Welcome,
            3 => FrameType::Batch,
            4 => FrameType::Ack,
            5 => FrameType::Error,
            6 => FrameType::Replies,
            7 => FrameType::Orders,
            _ => return None,
        })
    }

    /// The first protocol version that has this frame type: 3 for
    /// `Replies` and `Orders`, [`crate::MIN_PROTOCOL_VERSION`] for the rest.
    pub fn since_version(self) -> u16 {
        match self {
            FrameType::Replies | FrameType::Orders => 3,
            _ => crate::MIN_PROTOCOL_VERSION,
        }
    }

    /// The name used in error messages: `"hello"`, `"welcome"`, ...
    pub fn name(self) -> &'static str {
        match self {
            FrameType::Hello => "hello",
            FrameType::Welcome => "welcome",
            FrameType::Batch => "batch",
            FrameType::Ack => "ack",
            FrameType::Error => "error",
            FrameType::Replies => "replies",
            FrameType::Orders => "orders",
        }
    }
}

/// The first frame a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The protocol version the client speaks; [`crate::PROTOCOL_VERSION`].
    pub version: u16,
    /// Bearer token; names the tenant.
    pub token: String,
}

/// The server's answer to a good [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// The tenant the token names.
    pub tenant: String,
    /// The server's frame body limit; larger frames close the connection.
    pub max_frame_bytes: u32,
    /// The server's limit on messages per batch.
    pub max_batch_messages: u32,
}

/// A batch was made durable and routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The batch.
    pub batch_id: u64,
    /// How many of its messages were accepted.
    pub accepted: u32,
    /// The tenant's event sequence number after this batch's decisions.
    pub last_seq: u64,
}

/// A batch, or the connection, failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorFrame {
    /// The batch, or 0 when the error is not about one batch.
    pub batch_id: u64,
    /// A stable code from [`crate::codes`].
    pub code: String,
    /// A description for people.
    pub message: String,
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// See [`Hello`].
    Hello(Hello),
    /// See [`Welcome`].
    Welcome(Welcome),
    /// A validated batch; see [`BatchFrame`].
    Batch(BatchFrame),
    /// See [`Ack`].
    Ack(Ack),
    /// See [`ErrorFrame`].
    Error(ErrorFrame),
    /// A validated reply batch; see [`ReplyBatchFrame`].
    Replies(ReplyBatchFrame),
    /// A validated order batch; see [`OrderBatchFrame`].
    Orders(OrderBatchFrame),
}

impl Frame {
    /// The frame's type.
    pub fn frame_type(&self) -> FrameType {
        match self {
            Frame::Hello(_) => FrameType::Hello,
            Frame::Welcome(_) => FrameType::Welcome,
            Frame::Batch(_) => FrameType::Batch,
            Frame::Ack(_) => FrameType::Ack,
            Frame::Error(_) => FrameType::Error,
            Frame::Replies(_) => FrameType::Replies,
            Frame::Orders(_) => FrameType::Orders,
        }
    }

    /// An error frame for `error` (its [`WireError::code`], its message and
    /// its batch id, if known).
    pub fn from_error(error: &WireError) -> Frame {
        Frame::Error(ErrorFrame {
            batch_id: error.batch_id().unwrap_or(0),
            code: error.code().to_owned(),
            message: error.to_string(),
        })
    }

    /// The frame's encoded size: length prefix plus body.
    pub fn encoded_len(&self) -> usize {
        LENGTH_PREFIX + self.body_len()
    }

    fn body_len(&self) -> usize {
        1 + match self {
            Frame::Hello(h) => 2 + 4 + h.token.len(),
            Frame::Welcome(w) => 4 + w.tenant.len() + 4 + 4,
            Frame::Batch(b) => b.payload().len(),
            Frame::Ack(_) => 8 + 4 + 8,
            Frame::Error(e) => 8 + 4 + e.code.len() + 4 + e.message.len(),
            Frame::Replies(b) => b.payload().len(),
            Frame::Orders(b) => b.payload().len(),
        }
    }
}

/// Decodes the first frame of `buf` under `limits`.
///
/// Returns `Ok(None)` when `buf` holds only part of a frame (read more and
/// call again with the same bytes plus more), or the frame and the number
/// of bytes it took. A length prefix over `limits.max_frame_bytes` is an
/// error as soon as the 4 prefix bytes are there, before any of the body.
/// Never panics, whatever the bytes.
///
/// # Errors
/// [`WireError::FrameTooLarge`], [`WireError::EmptyFrame`],
/// [`WireError::UnknownFrameType`], [`WireError::Truncated`],
/// [`WireError::TrailingBytes`], [`WireError::BadUtf8`], and for batches
/// the errors of [`BatchFrame::from_payload`],
/// [`ReplyBatchFrame::from_payload`] and [`OrderBatchFrame::from_payload`]. After an error the stream is
/// out of sync, except for the `bad_batch` errors
/// ([`WireError::is_recoverable`]): the frame's bytes can then be skipped
/// with [`frame_len`].
pub fn decode_frame(buf: &[u8], limits: &Limits) -> Result<Option<(Frame, usize)>, WireError> {
    let Some(total) = frame_len(buf, limits)? else {
        return Ok(None);
    };
    let Some(body) = buf.get(LENGTH_PREFIX..total) else {
        return Ok(None);
    };
    let (&type_byte, payload) = body.split_first().ok_or(WireError::EmptyFrame)?;
    let frame_type = FrameType::from_u8(type_byte).ok_or(WireError::UnknownFrameType(type_byte))?;
    let mut r = Reader { buf: payload, frame: frame_type.name() };
    let frame = match frame_type {
        FrameType::Hello => {
            let version = r.u16("version")?;
            let token = r.string("token")?;
            Frame::Hello(Hello { version, token })
        }
        FrameType::Welcome => {
            let tenant = r.string("tenant")?;
            let max_frame_bytes = r.u32("max_frame_bytes")?;
            let max_batch_messages = r.u32("max_batch_messages")?;
            Frame::Welcome(Welcome { tenant, max_frame_bytes, max_batch_messages })
        }
        FrameType::Batch => {
            let payload = std::mem::take(&mut r.buf);
            Frame::Batch(BatchFrame::from_payload(payload, limits)?)
        }
        FrameType::Ack => {
            let batch_id = r.u64("batch_id")?;
            let accepted = r.u32("accepted")?;
            let last_seq = r.u64("last_seq")?;
            Frame::Ack(Ack { batch_id, accepted, last_seq })
        }
        FrameType::Error => {
            let batch_id = r.u64("batch_id")?;
            let code = r.string("code")?;
            let message = r.string("message")?;
            Frame::Error(ErrorFrame { batch_id, code, message })
        }
        FrameType::Replies => {
            let payload = std::mem::take(&mut r.buf);
            Frame::Replies(ReplyBatchFrame::from_payload(payload, limits)?)
        }
        FrameType::Orders => {
            let payload = std::mem::take(&mut r.buf);
            Frame::Orders(OrderBatchFrame::from_payload(payload, limits)?)
        }
    };
    r.finish()?;
    Ok(Some((frame, total)))
}

/// The total size (prefix plus body) of the frame starting `buf`, from its
/// length prefix alone: `Ok(None)` while fewer than 4 bytes are there.
///
/// # Errors
/// [`WireError::FrameTooLarge`] when the prefix exceeds
/// `limits.max_frame_bytes`, [`WireError::EmptyFrame`] when it is 0.
pub fn frame_len(buf: &[u8], limits: &Limits) -> Result<Option<usize>, WireError> {
    let Some(prefix) = buf.first_chunk::<LENGTH_PREFIX>() else {
        return Ok(None);
    };
    let len = u32::from_le_bytes(*prefix);
    if len > limits.max_frame_bytes {
        return Err(WireError::FrameTooLarge {
            len: u64::from(len),
            max: u64::from(limits.max_frame_bytes),
        });
    }
    if len == 0 {
        return Err(WireError::EmptyFrame);
    }
    Ok(Some(LENGTH_PREFIX + len as usize))
}

/// Appends `frame`, prefix and body, to `out`. Does not check any
/// [`Limits`] (the codec's encoder does); only that the body fits the
/// 32-bit length prefix.
///
/// # Errors
/// [`WireError::FrameTooLarge`] for a body over `u32::MAX` bytes; `out` is
/// then unchanged.
pub fn encode_frame(frame: &Frame, out: &mut Vec<u8>) -> Result<(), WireError> {
    write_frame(frame, u32::MAX, out)
}

/// Serializes `batch` and appends it as a `Batch` frame to `out`, for
/// clients. Does not validate the batch against any [`Limits`]: the server
/// does (use [`BatchFrame::from_batch`] to check first).
///
/// # Errors
/// [`WireError::Encode`] if serialization fails, [`WireError::FrameTooLarge`]
/// for an archive over `u32::MAX - 1` bytes.
pub fn encode_batch(batch: &MessageBatch, out: &mut Vec<u8>) -> Result<(), WireError> {
    put_archive(FrameType::Batch, &archive(batch)?, out)
}

/// Serializes `batch` and appends it as a `Replies` frame to `out`, for
/// clients. Does not validate it (use [`ReplyBatchFrame::from_batch`]).
///
/// # Errors
/// As [`encode_batch`].
pub fn encode_replies(batch: &ReplyBatch, out: &mut Vec<u8>) -> Result<(), WireError> {
    put_archive(FrameType::Replies, &archive_replies(batch)?, out)
}

/// Serializes `batch` and appends it as an `Orders` frame to `out`, for
/// clients. Does not validate it (use [`OrderBatchFrame::from_batch`]).
///
/// # Errors
/// As [`encode_batch`].
pub fn encode_orders(batch: &OrderBatch, out: &mut Vec<u8>) -> Result<(), WireError> {
    put_archive(FrameType::Orders, &archive_orders(batch)?, out)
}

fn put_archive(frame_type: FrameType, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), WireError> {
    let body = body_len_u32(1 + bytes.len(), u32::MAX)?;
    out.reserve(LENGTH_PREFIX + body as usize);
    out.put_u32_le(body);
    out.put_u8(frame_type as u8);
    out.put_slice(bytes);
    Ok(())
}

/// Writes `frame` to `out` if its body is at most `max_body` bytes.
pub(crate) fn write_frame<B: BufMut>(
    frame: &Frame,
    max_body: u32,
    out: &mut B,
) -> Result<(), WireError> {
    let body = body_len_u32(frame.body_len(), max_body)?;
    out.put_u32_le(body);
    out.put_u8(frame.frame_type() as u8);
    match frame {
        Frame::Hello(h) => {
            out.put_u16_le(h.version);
            put_string(out, &h.token);
        }
        Frame::Welcome(w) => {
            put_string(out, &w.tenant);
            out.put_u32_le(w.max_frame_bytes);
            out.put_u32_le(w.max_batch_messages);
        }
        Frame::Batch(b) => out.put_slice(b.payload()),
        Frame::Ack(a) => {
            out.put_u64_le(a.batch_id);
            out.put_u32_le(a.accepted);
            out.put_u64_le(a.last_seq);
        }
        Frame::Error(e) => {
            out.put_u64_le(e.batch_id);
            put_string(out, &e.code);
            put_string(out, &e.message);
        }
        Frame::Replies(b) => out.put_slice(b.payload()),
        Frame::Orders(b) => out.put_slice(b.payload()),
    }
    Ok(())
}

fn body_len_u32(len: usize, max: u32) -> Result<u32, WireError> {
    match u32::try_from(len) {
        Ok(body) if body <= max => Ok(body),
        _ => Err(WireError::FrameTooLarge { len: len as u64, max: u64::from(max) }),
    }
}

/// A string: `u32` LE byte length, then the UTF-8 bytes. The caller has
/// checked the whole body fits in `u32`, so the length does too.
fn put_string<B: BufMut>(out: &mut B, s: &str) {
    out.put_u32_le(s.len() as u32);
    out.put_slice(s.as_bytes());
}

/// A bounds-checked reader over a control frame's payload.
struct Reader<'a> {
    buf: &'a [u8],
    frame: &'static str,
}

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], WireError> {
        let (head, rest) = self
            .buf
            .split_first_chunk::<N>()
            .ok_or(WireError::Truncated { frame: self.frame, field })?;
        self.buf = rest;
        Ok(*head)
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, WireError> {
        self.take::<2>(field).map(u16::from_le_bytes)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        self.take::<4>(field).map(u32::from_le_bytes)
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, WireError> {
        self.take::<8>(field).map(u64::from_le_bytes)
    }

    fn string(&mut self, field: &'static str) -> Result<String, WireError> {
        let len = self.u32(field)? as usize;
        if len > self.buf.len() {
            return Err(WireError::Truncated { frame: self.frame, field });
        }
        let (bytes, rest) = self.buf.split_at(len);
        self.buf = rest;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| WireError::BadUtf8 { frame: self.frame, field })
    }

    fn finish(self) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError::TrailingBytes { frame: self.frame, extra: self.buf.len() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes;

    fn controls() -> Vec<Frame> {
        vec![
            Frame::Hello(Hello { version: 1, token: "demo-token".into() }),
            Frame::Hello(Hello { version: u16::MAX, token: String::new() }),
            Frame::Welcome(Welcome {
                tenant: "tuincentrum-de-linde".into(),
                max_frame_bytes: 4 << 20,
                max_batch_messages: 10_000,
            }),
            Frame::Ack(Ack { batch_id: 7, accepted: 100, last_seq: u64::MAX }),
            Frame::Error(ErrorFrame {
                batch_id: 0,
                code: codes::UNAUTHORIZED.into(),
                message: "geen toegang: onbekend token ✗".into(),
            }),
        ]
    }

    fn encoded(frame: &Frame) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(frame, &mut out).unwrap();
        out
    }

    #[test]
    fn control_frames_round_trip_byte_for_byte() {
        for frame in controls() {
            let bytes = encoded(&frame);
            assert_eq!(bytes.len(), frame.encoded_len());
            let (decoded, used) = decode_frame(&bytes, &Limits::default()).unwrap().unwrap();
            assert_eq!(used, bytes.len());
            assert_eq!(decoded, frame);
            assert_eq!(encoded(&decoded), bytes);
        }
    }

    #[test]
    fn ack_layout_is_as_documented() {
        let bytes = encoded(&Frame::Ack(Ack { batch_id: 0x0102, accepted: 3, last_seq: 9 }));
        let mut want = vec![21, 0, 0, 0, 4];
        want.extend_from_slice(&0x0102u64.to_le_bytes());
        want.extend_from_slice(&3u32.to_le_bytes());
        want.extend_from_slice(&9u64.to_le_bytes());
        assert_eq!(bytes, want);
    }

    #[test]
    fn every_strict_prefix_is_incomplete() {
        for frame in controls() {
            let bytes = encoded(&frame);
            for end in 0..bytes.len() {
                assert!(decode_frame(&bytes[..end], &Limits::default()).unwrap().is_none());
            }
        }
    }

    #[test]
    fn frames_decode_one_after_another() {
        let mut bytes = Vec::new();
        for frame in controls() {
            encode_frame(&frame, &mut bytes).unwrap();
        }
        let mut pos = 0;
        let mut frames = Vec::new();
        while let Some((frame, used)) = decode_frame(&bytes[pos..], &Limits::default()).unwrap() {
            frames.push(frame);
            pos += used;
        }
        assert_eq!(pos, bytes.len());
        assert_eq!(frames, controls());
    }

    #[test]
    fn an_oversized_length_is_rejected_from_the_prefix_alone() {
        let limits = Limits::default();
        let prefix = (limits.max_frame_bytes + 1).to_le_bytes();
        let error = decode_frame(&prefix, &limits).unwrap_err();
        assert!(
            matches!(error, WireError::FrameTooLarge { len, .. } if len == 4 * 1024 * 1024 + 1)
        );
        assert_eq!(error.code(), codes::FRAME_TOO_LARGE);
        assert!(!error.is_recoverable());
        // Exactly at the limit is fine (incomplete, not an error).
        let at = limits.max_frame_bytes.to_le_bytes();
        assert!(decode_frame(&at, &limits).unwrap().is_none());
        assert!(matches!(
            decode_frame(&u32::MAX.to_le_bytes(), &limits),
            Err(WireError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn malformed_control_frames_are_bad_frames() {
        let limits = Limits::default();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![0, 0, 0, 0], "empty frame"),
            (vec![1, 0, 0, 0, 0], "unknown frame type 0"),
            (vec![1, 0, 0, 0, 8], "unknown frame type 8"),
            (vec![2, 0, 0, 0, 1, 1], "hello frame truncated in field `version`"),
            (vec![7, 0, 0, 0, 1, 1, 0, 9, 0, 0, 0], "hello frame truncated in field `token`"),
            (vec![8, 0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0xFF], "field `token` is not UTF-8"),
            (vec![9, 0, 0, 0, 1, 1, 0, 1, 0, 0, 0, b'a', b'b'], "hello frame has 1 trailing bytes"),
            (vec![5, 0, 0, 0, 4, 1, 2, 3, 4], "ack frame truncated in field `batch_id`"),
            (
                vec![13, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
                "truncated in field `last_seq`",
            ),
        ];
        for (bytes, want) in cases {
            let error = decode_frame(&bytes, &limits).unwrap_err();
            assert!(error.to_string().contains(want), "{error} lacks {want:?}");
            assert_eq!(error.code(), codes::BAD_FRAME);
            assert!(!error.is_recoverable());
        }
    }

    #[test]
    fn encoding_refuses_nothing_that_fits_and_from_error_keeps_the_code() {
        let error = WireError::EmptyBatch { batch_id: 42 };
        let Frame::Error(frame) = Frame::from_error(&error) else { panic!("an error frame") };
        assert_eq!((frame.batch_id, frame.code.as_str()), (42, codes::BAD_BATCH));
        assert_eq!(FrameType::from_u8(3), Some(FrameType::Batch));
        assert_eq!(FrameType::from_u8(0), None);
        assert_eq!(FrameType::from_u8(6), Some(FrameType::Replies));
        assert_eq!(FrameType::from_u8(7), Some(FrameType::Orders));
        assert_eq!(FrameType::Orders.since_version(), 3);
        assert_eq!(FrameType::Batch.since_version(), crate::MIN_PROTOCOL_VERSION);
    }
}
