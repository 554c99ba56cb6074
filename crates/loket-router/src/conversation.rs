//! Conversations and the messages that drive them.

use loket_capacity::Channel;
use serde::{Deserialize, Serialize};

use crate::ids::{
    AgentId, ConversationId, CustomerId, Language, Requirements, SkillLevel, Timestamp,
};

/// Handoff signals a caller attaches to a message (from the intent scorer or
/// its own rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Signals {
    /// The customer asks for a person.
    pub human_request: bool,
    /// The customer is in doubt (a purchase may be slipping away).
    pub doubt: bool,
    /// The customer complains.
    pub complaint: bool,
}

/// One inbound customer message, as the router needs it (the text stays with
/// the caller). Building one never allocates for up to four required skills.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The conversation; a new id opens a conversation.
    pub conversation: ConversationId,
    /// The customer; read from the first message of a conversation (later
    /// messages do not change it).
    pub customer: CustomerId,
    /// The channel it came in on.
    pub channel: Channel,
    /// The customer's language.
    pub language: Language,
    /// Skills the conversation needs; read from the first message of a
    /// conversation (later messages do not change them). Minimums are
    /// clamped to 1..=10; a skill listed twice counts at its higher minimum.
    pub required: Requirements,
    /// Customer tier, 0 (default) and up; higher waits less.
    pub tier: u8,
    /// Buying intent of this message, 0..=1 (out-of-range values are clamped).
    pub buying_intent: f32,
    /// Handoff signals.
    pub signals: Signals,
}

impl Message {
    /// A plain message with no requirements, tier 0, no intent or signals.
    pub fn new(
        conversation: ConversationId,
        customer: CustomerId,
        channel: Channel,
        language: Language,
    ) -> Message {
        Message {
            conversation,
            customer,
            channel,
            language,
            required: Requirements::new(),
            tier: 0,
            buying_intent: 0.0,
            signals: Signals::default(),
        }
    }
}

/// Where a conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationState {
    /// Handled by a bot agent.
    Bot,
    /// Waiting for an agent (a bot may hold it meanwhile, while escalating).
    Queued,
    /// Offered to an agent, capacity reserved, awaiting accept.
    Offered,
    /// Held by a human agent.
    Assigned,
    /// Closed; the agent's capacity returns when wrap-up ends.
    WrapUp,
    /// Closed and released; about to be forgotten.
    Closed,
}

/// The agent holding a conversation's capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Holder {
    pub(crate) slot: u32,
    pub(crate) agent: AgentId,
}

/// The router's record of one open conversation.
///
/// `repr(C)`, in this order, for [`crate::conversations`]: behind the 8-byte
/// id, the fields up to `generation` fill the slot's first cache line.
/// They are what a message in an open conversation, a close and a sticky
/// decision read; the rest are read when placing or queueing.
#[derive(Debug, Clone)]
#[repr(C)]
pub(crate) struct Conversation {
    pub(crate) state: ConversationState,
    pub(crate) channel: Channel,
    pub(crate) language: Language,
    pub(crate) tier: u8,
    pub(crate) overflow_step: u8,
    pub(crate) escalated: bool,
    /// Declined, reassigned or escalated: goes ahead in the queue.
    pub(crate) boosted: bool,
    pub(crate) messages: u32,
    pub(crate) buying_intent: f32,
    pub(crate) holder: Option<Holder>,
    pub(crate) customer: CustomerId,
    /// Bumped on every state change; timers and backlog entries carry it and
    /// are ignored when stale. The high 32 bits are the incarnation, unique
    /// per router, so a conversation id that closes and opens again never
    /// matches a stale entry of its earlier life.
    pub(crate) generation: u64,
    pub(crate) last_message_at: Timestamp,
    pub(crate) created_at: Timestamp,
    pub(crate) required: Requirements,
    /// First time it entered the queue (overflow steps count from here).
    pub(crate) first_queued_at: Option<Timestamp>,
    /// The agent that last declined or missed an offer, skipped on re-route.
    pub(crate) excluded: Option<u32>,
}

/// The first-line fields end where the second line starts (the slot's id
/// comes first).
const _: () = assert!(std::mem::offset_of!(Conversation, last_message_at) + 8 == 64);

impl Conversation {
    pub(crate) fn new(message: &Message, now: Timestamp, incarnation: u32) -> Conversation {
        Conversation {
            customer: message.customer,
            channel: message.channel,
            language: message.language,
            state: ConversationState::Queued,
            holder: None,
            required: normalise_requirements(&message.required),
            tier: message.tier,
            overflow_step: 0,
            escalated: false,
            boosted: false,
            buying_intent: clamp_unit(message.buying_intent),
            created_at: now,
            last_message_at: now,
            first_queued_at: None,
            excluded: None,
            generation: u64::from(incarnation) << 32,
            messages: 1,
        }
    }

    pub(crate) fn bump(&mut self) -> u64 {
        let incarnation = self.generation & !0xFFFF_FFFF;
        self.generation = incarnation | u64::from((self.generation as u32).wrapping_add(1));
        self.generation
    }
}

/// Minimums are 1..=10 (a 0 would let agents without the skill in) and
/// each skill counts once, at its highest minimum.
fn normalise_requirements(required: &Requirements) -> Requirements {
    let mut normalised = Requirements::new();
    for requirement in required {
        let level = requirement.level.clamp(1, 10);
        match normalised.iter_mut().find(|r| r.skill == requirement.skill) {
            Some(existing) => existing.level = existing.level.max(level),
            None => normalised.push(SkillLevel { skill: requirement.skill, level }),
        }
    }
    normalised
}

pub(crate) fn clamp_unit(value: f32) -> f32 {
    if value.is_nan() { 0.0 } else { value.clamp(0.0, 1.0) }
}

/// A read-only view of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversationView {
    /// Its id.
    pub id: ConversationId,
    /// The customer.
    pub customer: CustomerId,
    /// Channel.
    pub channel: Channel,
    /// Language.
    pub language: Language,
    /// State.
    pub state: ConversationState,
    /// The agent holding it, if any.
    pub agent: Option<AgentId>,
    /// Required skills as currently in force (after overflow).
    pub required: Requirements,
    /// Overflow steps applied.
    pub overflow_step: u8,
    /// Escalated from bot to human.
    pub escalated: bool,
    /// Latest buying intent.
    pub buying_intent: f32,
    /// Created.
    pub created_at: Timestamp,
    /// Last message.
    pub last_message_at: Timestamp,
    /// Messages seen.
    pub messages: u32,
}
