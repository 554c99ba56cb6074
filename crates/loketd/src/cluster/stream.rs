//! A tenant's journal stream: appending the leader's records with fencing,
//! reading them back.

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use std::time::Duration;

use bytes::Bytes;
use tokio::runtime::Handle;

use super::SnapshotShelf;

/// How long an append is retried through transient NATS failures (a
/// server lost, a stream leader re-elected) before the tenant stops.
pub const RETRY_FOR: Duration = Duration::from_secs(10);

/// Why records could not be appended to or read from the stream.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Another node appended first: this node no longer leads the tenant.
    #[error(
        "fenced: stream sequence {expected} is no longer the last record (another node leads the tenant)"
    )]
    Fenced {
        /// The sequence this node expected to be last.
        expected: u64,
    },
    /// JetStream acknowledged a record at another position than expected.
    #[error("stream out of step: record expected at sequence {expected}, stored at {stored}")]
    OutOfStep {
        /// Where it should be.
        expected: u64,
        /// Where JetStream put it.
        stored: u64,
    },
    /// NATS or JetStream failed (unreachable, timed out, no quorum, ...).
    #[error("stream {stream}: {message}")]
    Nats {
        /// The stream.
        stream: String,
        /// What NATS said.
        message: String,
    },
}

/// One tenant's stream, for threads outside the async runtime (the
/// tenant's syncer and start-up).
#[derive(Debug, Clone)]
pub struct StreamLink {
    runtime: Handle,
    /// This node's name: with the sequence, each record's message id.
    node: String,
    jetstream: jetstream::Context,
    stream: String,
    subject: String,
    snapshots: SnapshotShelf,
}

impl StreamLink {
    pub(crate) fn new(
        runtime: Handle,
        node: String,
        jetstream: jetstream::Context,
        stream: String,
        subject: String,
        snapshots: SnapshotShelf,
    ) -> StreamLink {
        StreamLink { runtime, node, jetstream, stream, subject, snapshots }
    }

    fn nats(&self, error: impl std::fmt::Display) -> StreamError {
        StreamError::Nats { stream: self.stream.clone(), message: error.to_string() }
    }

    /// Appends `records` at sequences `first..`, each only on top of the
    /// one before it, and waits until JetStream has acknowledged all of
    /// them (stored on a quorum of its replicas). Publishes are pipelined.
    /// A transient failure (a server lost, a timeout) is retried for up to
    /// `RETRY_FOR` (10 s) from the first record not acknowledged: each record
    /// carries a message id, so one JetStream stored before the failure is
    /// acknowledged again as a duplicate, not stored twice. A refused
    /// sequence (fencing) is final. Blocks: call it off the runtime.
    pub fn append_blocking(&self, first: u64, records: &[Bytes]) -> Result<(), StreamError> {
        if records.is_empty() {
            return Ok(());
        }
        self.runtime.block_on(async {
            let deadline = tokio::time::Instant::now() + RETRY_FOR;
            let mut acknowledged = 0;
            loop {
                match self.append_from(first, records, &mut acknowledged).await {
                    Ok(()) => return Ok(()),
                    Err(error @ (StreamError::Fenced { .. } | StreamError::OutOfStep { .. })) => {
                        return Err(error);
                    }
                    Err(error) if tokio::time::Instant::now() >= deadline => return Err(error),
                    Err(error) => {
                        tracing::warn!(stream = %self.stream, %error, "append failed; retrying");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        })
    }

    /// Publishes `records[*acknowledged..]` and counts the acknowledgements
    /// in order; the first failure is the answer.
    async fn append_from(
        &self,
        first: u64,
        records: &[Bytes],
        acknowledged: &mut usize,
    ) -> Result<(), StreamError> {
        let mut acks = Vec::with_capacity(records.len() - *acknowledged);
        let mut unsent = None;
        for (offset, record) in (0u64..).zip(records).skip(*acknowledged) {
            let sequence = first + offset;
            let message = PublishMessage::build()
                .payload(record.clone())
                .message_id(format!("{}-{sequence}", self.node))
                .expected_last_sequence(sequence - 1);
            match self.jetstream.send_publish(self.subject.clone(), message).await {
                Ok(ack) => acks.push((sequence, ack)),
                Err(error) => {
                    unsent = Some(self.publish_error(error, sequence - 1));
                    break;
                }
            }
        }
        // Those sent before a failure still count, in order.
        for (sequence, ack) in acks {
            let stored = ack.await.map_err(|error| self.publish_error(error, sequence - 1))?;
            if stored.sequence != sequence {
                return Err(StreamError::OutOfStep { expected: sequence, stored: stored.sequence });
            }
            *acknowledged += 1;
        }
        unsent.map_or(Ok(()), Err)
    }

    fn publish_error(&self, error: jetstream::context::PublishError, expected: u64) -> StreamError {
        let code = std::error::Error::source(&error)
            .and_then(|source| source.downcast_ref::<jetstream::Error>())
            .map(jetstream::Error::error_code);
        let wrong_sequence = error.kind() == PublishErrorKind::WrongLastSequence
            || code == Some(jetstream::ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT);
        if wrong_sequence { StreamError::Fenced { expected } } else { self.nats(error) }
    }

    /// The first sequence in the stream and the last (both 0 when nothing
    /// was ever appended; after a trim of everything, the first is the
    /// last plus one).
    pub async fn bounds(&self) -> Result<(u64, u64), StreamError> {
        let mut stream = self.jetstream.get_stream(&self.stream).await.map_err(|e| self.nats(e))?;
        let info = stream.info().await.map_err(|e| self.nats(e))?;
        Ok((info.state.first_sequence, info.state.last_sequence))
    }

    /// The record at `sequence`, or `None` past the end.
    pub async fn record(&self, sequence: u64) -> Result<Option<Bytes>, StreamError> {
        let mut stream = self.jetstream.get_stream(&self.stream).await.map_err(|e| self.nats(e))?;
        let state = &stream.info().await.map_err(|e| self.nats(e))?.state;
        let (first, last) = (state.first_sequence, state.last_sequence);
        if sequence > last || sequence < first || last == 0 {
            return Ok(None);
        }
        let message = stream.get_raw_message(sequence).await.map_err(|e| self.nats(e))?;
        Ok(Some(message.payload))
    }

    /// [`StreamLink::bounds`] for threads off the runtime.
    pub fn bounds_blocking(&self) -> Result<(u64, u64), StreamError> {
        self.runtime.block_on(self.bounds())
    }

    /// The tenant's snapshots in the object store.
    pub fn snapshots(&self) -> &SnapshotShelf {
        &self.snapshots
    }

    /// [`StreamLink::record`] for threads off the runtime.
    pub fn record_blocking(&self, sequence: u64) -> Result<Option<Bytes>, StreamError> {
        self.runtime.block_on(self.record(sequence))
    }

    /// The JetStream context (for the tail).
    pub(crate) fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// The stream's name.
    pub fn stream(&self) -> &str {
        &self.stream
    }
}
