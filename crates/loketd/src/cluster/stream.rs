//! A tenant's journal stream: appending the leader's records with fencing,
//! reading them back.

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use bytes::Bytes;
use tokio::runtime::Handle;

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
    jetstream: jetstream::Context,
    stream: String,
    subject: String,
}

impl StreamLink {
    pub(crate) fn new(
        runtime: Handle,
        jetstream: jetstream::Context,
        stream: String,
        subject: String,
    ) -> StreamLink {
        StreamLink { runtime, jetstream, stream, subject }
    }

    fn nats(&self, error: impl std::fmt::Display) -> StreamError {
        StreamError::Nats { stream: self.stream.clone(), message: error.to_string() }
    }

    /// Appends `records` at sequences `first..`, each only on top of the
    /// one before it, and waits until JetStream has acknowledged all of
    /// them (stored on a quorum of its replicas). Publishes are pipelined;
    /// the first refusal is the answer. Blocks: call it off the runtime.
    pub fn append_blocking(&self, first: u64, records: &[Bytes]) -> Result<(), StreamError> {
        if records.is_empty() {
            return Ok(());
        }
        self.runtime.block_on(self.append(first, records))
    }

    async fn append(&self, first: u64, records: &[Bytes]) -> Result<(), StreamError> {
        let mut acks = Vec::with_capacity(records.len());
        for (offset, record) in (0u64..).zip(records) {
            let expected = first + offset - 1;
            let message = PublishMessage::build()
                .payload(record.clone())
                .expected_last_subject_sequence(expected);
            let ack = self
                .jetstream
                .send_publish(self.subject.clone(), message)
                .await
                .map_err(|error| self.publish_error(error, expected))?;
            acks.push((expected + 1, ack));
        }
        for (sequence, ack) in acks {
            let stored = ack.await.map_err(|error| self.publish_error(error, sequence - 1))?;
            if stored.sequence != sequence {
                return Err(StreamError::OutOfStep { expected: sequence, stored: stored.sequence });
            }
        }
        Ok(())
    }

    fn publish_error(&self, error: jetstream::context::PublishError, expected: u64) -> StreamError {
        match error.kind() {
            PublishErrorKind::WrongLastSequence => StreamError::Fenced { expected },
            _ => self.nats(error),
        }
    }

    /// The last sequence in the stream (0 when it is empty) and the first.
    pub async fn bounds(&self) -> Result<(u64, u64), StreamError> {
        let mut stream = self.jetstream.get_stream(&self.stream).await.map_err(|e| self.nats(e))?;
        let info = stream.info().await.map_err(|e| self.nats(e))?;
        Ok((info.state.first_sequence, info.state.last_sequence))
    }

    /// The record at `sequence`, or `None` past the end.
    pub async fn record(&self, sequence: u64) -> Result<Option<Bytes>, StreamError> {
        let (first, last) = self.bounds().await?;
        if sequence > last || sequence < first || last == 0 {
            return Ok(None);
        }
        let stream = self.jetstream.get_stream(&self.stream).await.map_err(|e| self.nats(e))?;
        let message = stream.get_raw_message(sequence).await.map_err(|e| self.nats(e))?;
        Ok(Some(message.payload))
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
