//! The journal's records: every state change of a tenant, as applied.
//!
//! A record is one [`Command`] with the tenant clock reading it was applied
//! at, encoded with rkyv and validated before access when read back.
//! Conversations, customers and agents are named by the platform's own ids
//! ([`Id`]); the sequencer interns them while applying, so replaying the
//! records rebuilds the same mapping to router integers.
//! Applying the same records in the same order to the same starting state
//! gives the same state and the same decisions: that is what makes the
//! journal a complete account of a tenant.

use loket_ids::Id;
use loket_seal::{Keyring, Purpose};
use rkyv::rancor;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

/// One journal record.
#[derive(Debug, Clone, PartialEq, Archive, Serialize, Deserialize)]
pub struct Record {
    /// The tenant clock (milliseconds since the Unix epoch) it applied at.
    pub at_ms: u64,
    /// What changed.
    pub command: Command,
}

/// A state change.
#[derive(Debug, Clone, PartialEq, Archive, Serialize, Deserialize)]
pub enum Command {
    /// Customer messages, scored, in arrival order.
    Messages(Vec<ScoredMessage>),
    /// Register or replace an agent.
    UpsertAgent(AgentRecord),
    /// Change an agent's presence (0 available, 1 away, 2 offline).
    SetPresence {
        /// The agent.
        agent: Id,
        /// The presence code.
        presence: u8,
    },
    /// Change an agent's capacity.
    SetCapacity {
        /// The agent.
        agent: Id,
        /// Chat, WhatsApp, Messenger, SMS, email, voice, total.
        capacity: [u32; 7],
    },
    /// Replace an agent's skills.
    SetSkills {
        /// The agent.
        agent: Id,
        /// Skill name and proficiency.
        skills: Vec<SkillRecord>,
    },
    /// Change an agent's skills, capacity and presence at once: every part
    /// given is checked before any applies.
    UpdateAgent {
        /// The agent.
        agent: Id,
        /// New skills (replacing all).
        skills: Option<Vec<SkillRecord>>,
        /// New capacity: chat, WhatsApp, Messenger, SMS, email, voice, total.
        capacity: Option<[u32; 7]>,
        /// New presence code (0 available, 1 away, 2 offline, 3 not responding).
        presence: Option<u8>,
    },
    /// Remove an agent (its conversations are re-routed).
    RemoveAgent {
        /// The agent.
        agent: Id,
    },
    /// Close a conversation.
    Close {
        /// The conversation.
        conversation: Id,
    },
    /// Hand a conversation to a named agent.
    Transfer {
        /// The conversation.
        conversation: Id,
        /// The agent.
        agent: Id,
    },
    /// An agent answers an offer.
    AnswerOffer {
        /// The conversation.
        conversation: Id,
        /// The agent.
        agent: Id,
        /// Accepted (or declined).
        accept: bool,
    },
    /// Timers that were due fired (offer expiry, wrap-up end, overflow, ...).
    Tick,
    /// Set a product's stock.
    SetStock {
        /// The product.
        sku: String,
        /// Units in stock.
        stock: i64,
    },
    /// Erase one customer's conversations and history (GDPR).
    EraseCustomer {
        /// The customer.
        customer: Id,
    },
    /// An agent (person or bot) sent the customer a message: measured, the
    /// router does not read it.
    Reply {
        /// The conversation.
        conversation: Id,
        /// The agent.
        agent: Id,
        /// When, as the platform says (ms); the record's time when left
        /// out. Never before the last thing measured.
        at_ms: Option<u64>,
    },
    /// The conversation led to a purchase: measured, up to the order window
    /// after its close.
    Order {
        /// The conversation.
        conversation: Id,
        /// The value in minor units (cents).
        value_minor: i64,
        /// ISO 4217 code, uppercase.
        currency: String,
        /// When, as the platform says (ms); the record's time when left out.
        at_ms: Option<u64>,
    },
}

/// A message with its scores, so replay routes exactly as live did even if
/// the scoring model has changed since.
#[derive(Debug, Clone, PartialEq, Archive, Serialize, Deserialize)]
pub struct ScoredMessage {
    /// Conversation id.
    pub conversation: Id,
    /// Customer id.
    pub customer: Id,
    /// Channel index (`loket_router::Channel::ALL` order).
    pub channel: u8,
    /// Language given by the platform: 0 none (detect), 1 Dutch, 2 English.
    pub language: u8,
    /// Customer tier.
    pub tier: u8,
    /// What the customer wrote, if the tenant keeps it (`store_text`);
    /// empty otherwise. Replay never needs it: the scores are here.
    pub text: String,
    /// Intent id in the tenant's model.
    pub intent: u16,
    /// Intent confidence.
    pub confidence: f32,
    /// The message's buying intent.
    pub buying_intent: f32,
    /// Detected language: 0 unknown, 1 Dutch, 2 English.
    pub detected_language: u8,
    /// Signal bits (`loket_intent::Signals`).
    pub signals: u32,
    /// Skills the platform requires, besides those the intent maps to.
    pub skills: Vec<SkillRecord>,
}

/// An agent as registered.
#[derive(Debug, Clone, PartialEq, Archive, Serialize, Deserialize)]
pub struct AgentRecord {
    /// Id.
    pub id: Id,
    /// Bot (or human).
    pub bot: bool,
    /// Skills.
    pub skills: Vec<SkillRecord>,
    /// Language codes.
    pub languages: Vec<String>,
    /// Chat, WhatsApp, Messenger, SMS, email, voice, total.
    pub capacity: [u32; 7],
    /// Presence code (0 available, 1 away, 2 offline).
    pub presence: u8,
    /// Team.
    pub team: Option<String>,
}

/// A skill by name with a proficiency.
#[derive(Debug, Clone, PartialEq, Archive, Serialize, Deserialize)]
pub struct SkillRecord {
    /// Skill name.
    pub name: String,
    /// Proficiency 1..=10.
    pub level: u8,
}

/// A record as the journal takes it: see [`Record::encode_sealed`].
#[derive(Debug)]
pub enum Encoded {
    /// Encoded, for a tenant that does not encrypt.
    Plain(AlignedVec),
    /// Encoded and sealed.
    Sealed(Vec<u8>),
}

impl std::ops::Deref for Encoded {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Encoded::Plain(bytes) => bytes,
            Encoded::Sealed(bytes) => bytes,
        }
    }
}

/// A journal record that cannot be read back.
#[derive(Debug, thiserror::Error)]
#[error("journal record {lsn} does not decode: {message}")]
pub struct DecodeError {
    /// Its position.
    pub lsn: u64,
    /// What is wrong.
    pub message: String,
}

impl Record {
    /// Encodes for the journal.
    pub fn encode(&self) -> AlignedVec {
        // Serialising owned, well-formed values into memory cannot fail.
        rkyv::to_bytes::<rancor::Error>(self).expect("in-memory rkyv serialisation")
    }

    /// Encodes for the journal, sealed with `keyring` when the tenant has
    /// one (without one, the encoding itself, not a copy).
    ///
    /// # Errors
    /// Sealing failed (the cryptographic library had no randomness).
    pub fn encode_sealed(
        &self,
        keyring: Option<&Keyring>,
    ) -> Result<Encoded, loket_seal::SealError> {
        let plain = self.encode();
        match keyring {
            Some(keyring) => keyring.sealed(Purpose::JournalRecord, &plain).map(Encoded::Sealed),
            None => Ok(Encoded::Plain(plain)),
        }
    }

    /// Opens (with `keyring`, if the payload is sealed) and decodes a
    /// journal payload. A sealed payload without the key that sealed it is
    /// an error naming that key, never garbage.
    pub fn open(lsn: u64, bytes: &[u8], keyring: Option<&Keyring>) -> Result<Record, DecodeError> {
        let opened = loket_seal::open(keyring, Purpose::JournalRecord, bytes)
            .map_err(|error| DecodeError { lsn, message: error.to_string() })?;
        Record::decode(lsn, opened.bytes())
    }

    /// Validates and decodes a journal payload.
    pub fn decode(lsn: u64, bytes: &[u8]) -> Result<Record, DecodeError> {
        let mut aligned = AlignedVec::<16>::with_capacity(bytes.len());
        aligned.extend_from_slice(bytes);
        rkyv::from_bytes::<Record, rancor::Error>(&aligned)
            .map_err(|error| DecodeError { lsn, message: error.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_garbage_is_an_error() {
        let record = Record {
            at_ms: 42,
            command: Command::Messages(vec![ScoredMessage {
                conversation: Id::Text("c-1".into()),
                customer: Id::Number(2),
                channel: 0,
                language: 1,
                tier: 0,
                text: "heeft u de bananenboom?".to_owned(),
                intent: 3,
                confidence: 0.9,
                buying_intent: 0.8,
                detected_language: 1,
                signals: 4,
                skills: vec![SkillRecord { name: "plants".into(), level: 3 }],
            }]),
        };
        let bytes = record.encode();
        assert_eq!(Record::decode(0, &bytes).unwrap(), record);
        let error = Record::decode(7, &bytes[..bytes.len() / 2]).unwrap_err();
        assert_eq!(error.lsn, 7);
        assert!(Record::decode(1, &[0xFF; 40]).is_err());
    }
}
