//! One event waiting in the outbox: what delivery needs (its sequence
//! number, type, conversation and JSON body) and its record format.

use bytes::Bytes;

use super::EVENT_TYPES;

/// An event spooled for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The tenant's sequence number of the event (its `webhook-id` is
    /// derived from it).
    pub seq: u64,
    /// When it happened, ms since the Unix epoch (tenant clock).
    pub at_ms: u64,
    /// Its index in [`EVENT_TYPES`].
    pub type_index: u8,
    /// The conversation, as the router's integer (lanes and erasure).
    pub conversation: Option<u64>,
    /// The request body, JSON.
    pub body: Bytes,
}

/// Why bytes are not an outbox record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// Shorter than the fixed header.
    #[error("an outbox record is at least {HEADER} bytes; this one is {0}")]
    Short(usize),
    /// An unknown format version.
    #[error("outbox record version {0} is unknown (this build reads 1)")]
    Version(u8),
    /// A type index past [`EVENT_TYPES`].
    #[error("outbox record names event type {0}, which does not exist")]
    Type(u8),
    /// The conversation flag is neither 0 nor 1.
    #[error("outbox record has conversation flag {0}; 0 or 1 expected")]
    Flag(u8),
    /// No conversation, but the conversation field is not zero.
    #[error("outbox record has no conversation but a conversation field of {0}")]
    StrayConversation(u64),
}

/// Version byte, seq, at, type, conversation flag, conversation.
const HEADER: usize = 1 + 8 + 8 + 1 + 1 + 8;
const VERSION: u8 = 1;

impl Entry {
    /// The event's type, as [`EVENT_TYPES`] names it.
    pub fn type_name(&self) -> &'static str {
        EVENT_TYPES.get(usize::from(self.type_index)).copied().unwrap_or("unknown")
    }

    /// The `webhook-id` of the event: the same on every attempt, unique per
    /// tenant.
    pub fn message_id(&self, tenant: &str) -> String {
        format!("msg_{tenant}_{}", self.seq)
    }

    /// Appends the record form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(HEADER + self.body.len());
        out.push(VERSION);
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.at_ms.to_le_bytes());
        out.push(self.type_index);
        out.push(u8::from(self.conversation.is_some()));
        out.extend_from_slice(&self.conversation.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&self.body);
    }

    /// Reads a record written by [`Entry::encode`].
    ///
    /// # Errors
    /// What makes `bytes` not a record; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Entry, EntryError> {
        if bytes.len() < HEADER {
            return Err(EntryError::Short(bytes.len()));
        }
        let (header, body) = bytes.split_at(HEADER);
        if header[0] != VERSION {
            return Err(EntryError::Version(header[0]));
        }
        let u64_at = |at: usize| {
            let mut word = [0; 8];
            word.copy_from_slice(&header[at..at + 8]);
            u64::from_le_bytes(word)
        };
        let type_index = header[17];
        if usize::from(type_index) >= EVENT_TYPES.len() {
            return Err(EntryError::Type(type_index));
        }
        let conversation = match header[18] {
            0 if u64_at(19) != 0 => return Err(EntryError::StrayConversation(u64_at(19))),
            0 => None,
            1 => Some(u64_at(19)),
            flag => return Err(EntryError::Flag(flag)),
        };
        Ok(Entry {
            seq: u64_at(1),
            at_ms: u64_at(9),
            type_index,
            conversation,
            body: Bytes::copy_from_slice(body),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(conversation: Option<u64>) -> Entry {
        Entry {
            seq: 42,
            at_ms: 1_796_610_659_944,
            type_index: 7,
            conversation,
            body: Bytes::from_static(br#"{"type":"escalated"}"#),
        }
    }

    #[test]
    fn records_read_back_as_written() {
        for conversation in [None, Some(0), Some(u64::MAX)] {
            let mut bytes = Vec::new();
            entry(conversation).encode(&mut bytes);
            assert_eq!(Entry::decode(&bytes), Ok(entry(conversation)));
        }
        assert_eq!(entry(None).type_name(), "escalated");
        assert_eq!(entry(None).message_id("shop"), "msg_shop_42");
    }

    #[test]
    fn damage_is_named() {
        let mut bytes = Vec::new();
        entry(Some(3)).encode(&mut bytes);
        assert_eq!(Entry::decode(&bytes[..10]), Err(EntryError::Short(10)));
        let mut wrong = bytes.clone();
        wrong[0] = 9;
        assert_eq!(Entry::decode(&wrong), Err(EntryError::Version(9)));
        let mut wrong = bytes.clone();
        wrong[17] = 15;
        assert_eq!(Entry::decode(&wrong), Err(EntryError::Type(15)));
        let mut wrong = bytes.clone();
        wrong[18] = 2;
        assert_eq!(Entry::decode(&wrong), Err(EntryError::Flag(2)));
        let mut wrong = bytes;
        wrong[18] = 0;
        assert_eq!(Entry::decode(&wrong), Err(EntryError::StrayConversation(3)));
    }
}
