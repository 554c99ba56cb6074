//! [`FrameCodec`]: the protocol as a tokio-util codec.

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::frame::{LENGTH_PREFIX, decode_frame, frame_len, write_frame};
use crate::{Frame, Limits, WireError};

/// Decodes [`Frame`]s from, and encodes them to, a byte stream, under
/// [`Limits`]. Use with `tokio_util::codec::Framed` on a TCP stream.
///
/// Decoding is [`decode_frame`]: an oversized length prefix fails before
/// any of its body is buffered, and the buffer never grows past one frame
/// of `max_frame_bytes` plus what the transport already delivered. A
/// decoded `Batch` holds its validated archive in an aligned buffer of its
/// own.
///
/// After an error the decoder's buffer is out of sync and the connection
/// should be closed, except for `bad_batch` errors
/// ([`WireError::is_recoverable`]): the codec has then already skipped the
/// bad frame, and the next `decode` starts at the next frame. `Framed`
/// treats every decoder error as the end of the stream, though: a server
/// that answers a bad batch and goes on uses [`ServerCodec`]. Encoding refuses frames whose body exceeds `max_frame_bytes`
/// ([`WireError::FrameTooLarge`]), so a peer with the same limits never
/// sees one.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameCodec {
    limits: Limits,
}

impl FrameCodec {
    /// A codec enforcing `limits`.
    pub fn new(limits: Limits) -> FrameCodec {
        FrameCodec { limits }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, WireError> {
        let decoded = decode_frame(src, &self.limits).inspect_err(|error| {
            // A bad batch is well framed: skip its bytes so the next call
            // starts at the next frame.
            if error.is_recoverable()
                && let Ok(Some(total)) = frame_len(src, &self.limits)
            {
                src.advance(total.min(src.len()));
            }
        });
        match decoded? {
            Some((frame, used)) => {
                src.advance(used);
                Ok(Some(frame))
            }
            None => {
                // Make room for the rest of the frame in one go.
                if let Some(total) = frame_len(src, &self.limits)? {
                    src.reserve(total.saturating_sub(src.len()));
                } else {
                    src.reserve(LENGTH_PREFIX);
                }
                Ok(None)
            }
        }
    }
}

impl Encoder<&Frame> for FrameCodec {
    type Error = WireError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), WireError> {
        let len = frame.encoded_len();
        if len <= LENGTH_PREFIX + self.limits.max_frame_bytes as usize {
            dst.reserve(len);
        }
        write_frame(frame, self.limits.max_frame_bytes, dst)
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = WireError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), WireError> {
        self.encode(&frame, dst)
    }
}

/// [`FrameCodec`] for servers: a bad batch (a `bad_batch` error,
/// [`WireError::is_recoverable`]) is an item, `Some(Err(error))`, with the
/// frame already skipped, so `Framed` goes on to the next frame; every
/// other error is a stream error, after which the connection should be
/// closed.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerCodec {
    inner: FrameCodec,
}

impl ServerCodec {
    /// A server codec enforcing `limits`.
    pub fn new(limits: Limits) -> ServerCodec {
        ServerCodec { inner: FrameCodec::new(limits) }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        self.inner.limits()
    }
}

impl Decoder for ServerCodec {
    type Item = Result<Frame, WireError>;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, WireError> {
        match self.inner.decode(src) {
            Ok(frame) => Ok(frame.map(Ok)),
            Err(error) if error.is_recoverable() => Ok(Some(Err(error))),
            Err(error) => Err(error),
        }
    }
}

impl Encoder<&Frame> for ServerCodec {
    type Error = WireError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), WireError> {
        self.inner.encode(frame, dst)
    }
}

impl Encoder<Frame> for ServerCodec {
    type Error = WireError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), WireError> {
        self.inner.encode(&frame, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ack, Hello, MessageBatch, WireMessage, codes, encode_batch, encode_frame};

    fn stream() -> (Vec<u8>, Vec<Frame>) {
        let frames = [
            Frame::Hello(Hello { version: 1, token: "demo-token".into() }),
            Frame::Ack(Ack { batch_id: 1, accepted: 2, last_seq: 3 }),
        ];
        let mut bytes = Vec::new();
        encode_frame(&frames[0], &mut bytes).unwrap();
        let batch = MessageBatch {
            batch_id: 5,
            messages: vec![WireMessage { text: "hoi".into(), ..WireMessage::default() }],
        };
        encode_batch(&batch, &mut bytes).unwrap();
        encode_frame(&frames[1], &mut bytes).unwrap();
        let (batch_frame, _) = {
            let start = frames[0].encoded_len();
            decode_frame(&bytes[start..], &Limits::default()).unwrap().unwrap()
        };
        (bytes, vec![frames[0].clone(), batch_frame, frames[1].clone()])
    }

    #[test]
    fn byte_at_a_time_gives_the_same_frames() {
        let (bytes, want) = stream();
        let mut codec = FrameCodec::new(Limits::default());
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &byte in &bytes {
            buf.extend_from_slice(&[byte]);
            while let Some(frame) = codec.decode(&mut buf).unwrap() {
                got.push(frame);
            }
        }
        assert_eq!(got, want);
        assert!(buf.is_empty());
    }

    #[test]
    fn an_oversized_prefix_fails_without_buffering_the_body() {
        let mut codec = FrameCodec::new(Limits { max_frame_bytes: 1024, ..Limits::default() });
        let mut buf = BytesMut::from(&1025u32.to_le_bytes()[..]);
        let error = codec.decode(&mut buf).unwrap_err();
        assert_eq!(error.code(), codes::FRAME_TOO_LARGE);
        // A frame at the limit makes room for exactly one frame.
        let mut buf = BytesMut::from(&1024u32.to_le_bytes()[..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(buf.capacity() >= 1028 && buf.capacity() < 4096);
    }

    #[test]
    fn a_bad_batch_is_skipped_and_the_server_codec_reads_on() {
        let mut bytes = Vec::new();
        let bad = MessageBatch {
            batch_id: 8,
            messages: vec![WireMessage { channel: 200, ..WireMessage::default() }],
        };
        encode_batch(&bad, &mut bytes).unwrap();
        let ack = Frame::Ack(Ack { batch_id: 9, accepted: 1, last_seq: 1 });
        encode_frame(&ack, &mut bytes).unwrap();

        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&bytes[..]);
        let error = codec.decode(&mut buf).unwrap_err();
        assert_eq!(error.batch_id(), Some(8));
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(ack.clone()));

        let mut codec = ServerCodec::new(Limits::default());
        let mut buf = BytesMut::from(&bytes[..]);
        let item = codec.decode(&mut buf).unwrap().unwrap();
        assert!(matches!(item, Err(WireError::InvalidMessage { batch_id: 8, index: 0, .. })));
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap().unwrap(), ack);
        // A framing error is a stream error.
        let mut buf = BytesMut::from(&[1u8, 0, 0, 0, 9][..]);
        assert!(codec.decode(&mut buf).is_err());
    }

    #[test]
    fn the_encoder_refuses_frames_over_the_limit() {
        let mut codec = FrameCodec::new(Limits { max_frame_bytes: 16, ..Limits::default() });
        let mut dst = BytesMut::new();
        let small = Frame::Hello(Hello { version: 1, token: "abc".into() });
        codec.encode(&small, &mut dst).unwrap();
        assert_eq!(dst.len(), small.encoded_len());
        let big = Frame::Hello(Hello { version: 1, token: "x".repeat(100) });
        let error = codec.encode(big, &mut dst).unwrap_err();
        assert!(matches!(error, WireError::FrameTooLarge { len: 107, max: 16 }));
        assert_eq!(dst.len(), small.encoded_len());
    }
}
