//! Decisions and state changes, each with its reason, for audit and display.

use serde::Serialize;

use loket_capacity::Channel;

use crate::config::Strategy;
use crate::ids::{AgentId, ConversationId, Language, SkillId, Timestamp};

/// Why a conversation went to an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum AssignReason {
    /// A message in a conversation the agent already holds.
    Sticky,
    /// The customer's last agent, within the affinity look-back.
    Affinity,
    /// Skill, language and capacity match, picked by the strategy.
    SkillMatch {
        /// The strategy that picked.
        strategy: Strategy,
    },
    /// The previous agent went away, offline or was removed.
    Reassignment,
    /// A bot conversation went to a human.
    Escalation,
    /// Requirements widened by this overflow step (0-based).
    Overflow {
        /// The step.
        step: u8,
    },
    /// A bot took it: the conversation starts with bots.
    BotFirst,
    /// A bot took it: the skill group is closed now.
    AfterHours,
    /// An explicit transfer by the platform.
    Transfer,
}

/// Why a conversation waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueReason {
    /// No eligible agent has room.
    NoEligibleAgent,
    /// Waiting for the customer's last agent, until the affinity wait ends.
    WaitingForPreferredAgent,
    /// A required skill group is closed and no bot can take it.
    OutsideBusinessHours,
    /// An escalation to a human, waiting for one.
    Escalation,
    /// The previous agent left and nobody else has room.
    Reassignment,
    /// An offer was declined or expired and nobody else has room.
    OfferNotTaken,
    /// Already waiting: a further message in a queued conversation.
    AlreadyQueued,
}

/// Why no agent could take a conversation that waits with
/// [`QueueReason::NoEligibleAgent`]: the first requirement, in this order,
/// that nobody in the pool (humans, or bots where overflow lets them in)
/// meets. Computed only when a conversation queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "code")]
pub enum Why {
    /// No agent of the pool is registered with a language.
    NoAgents,
    /// No agent has this skill at this proficiency or above (together with
    /// the required skills listed before it).
    NoSkill {
        /// The skill.
        skill: SkillId,
        /// The minimum proficiency asked for.
        level: u8,
    },
    /// Agents have the skills, but none speaks the language.
    NoLanguage {
        /// The conversation's language.
        language: Language,
    },
    /// Agents have the skills and the language, but all are away, offline
    /// or not responding.
    Unavailable,
    /// The available agents who qualify are all at capacity on the channel
    /// (or overall).
    AtCapacity {
        /// The conversation's channel.
        channel: Channel,
    },
    /// The only qualifying agent with room declined or missed the offer.
    Declined,
}

/// What triggered an escalation from bot to human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationTrigger {
    /// Buying intent crossed the threshold.
    BuyingIntent,
    /// The customer asked for a person.
    HumanRequest,
    /// The caller flagged doubt.
    Doubt,
    /// The caller flagged a complaint.
    Complaint,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum EventKind {
    /// The conversation is now held by `Event::agent`.
    Assigned {
        /// Why.
        #[serde(flatten)]
        reason: AssignReason,
        /// How long it waited in the queue, if it did.
        waited_ms: u64,
    },
    /// Offer mode: the conversation is offered to `Event::agent`, capacity reserved.
    Offered {
        /// Why this agent.
        #[serde(flatten)]
        reason: AssignReason,
        /// The offer lapses at this time.
        expires_at: Timestamp,
    },
    /// The agent accepted an offer.
    OfferAccepted,
    /// The agent declined an offer.
    OfferDeclined,
    /// An offer lapsed.
    OfferExpired,
    /// The conversation waits.
    Queued {
        /// Why.
        reason: QueueReason,
        /// How many conversations needing the same kind of agent (skills,
        /// language, channel) wait ahead of it: 0 = next in line.
        position: u32,
        /// Its priority in points, before aging.
        priority: u32,
        /// With [`QueueReason::NoEligibleAgent`]: which requirement nobody
        /// meets. `None` for every other reason. Not serialized here: it
        /// names skills by id, and outputs name them by name.
        #[serde(skip)]
        why: Option<Why>,
    },
    /// Requirements widened while waiting.
    OverflowStep {
        /// The step (0-based).
        step: u8,
    },
    /// A bot conversation is escalating to a human.
    Escalated {
        /// What triggered it.
        trigger: EscalationTrigger,
    },
    /// A required skill group is closed now.
    OutsideBusinessHours {
        /// The closed skill group.
        skill: SkillId,
    },
    /// The conversation closed; capacity returns after wrap-up.
    Closed,
    /// Wrap-up ended; the agent's capacity for this conversation is free.
    Released,
    /// The agent missed too many offers and no longer gets new work.
    AgentNotResponding,
    /// The conversation was erased with its customer's data
    /// ([`crate::Router::erase_customer`]): the router no longer knows it,
    /// and the capacity it held on `Event::agent`, if any, is free at once
    /// (no wrap-up).
    Erased,
}

impl EventKind {
    /// Every kind's `type` as events are serialised, in [`EventKind::type_index`]
    /// order: the list outputs filter and count by.
    pub const TYPE_NAMES: [&'static str; 13] = [
        "assigned",
        "offered",
        "offer_accepted",
        "offer_declined",
        "offer_expired",
        "queued",
        "overflow_step",
        "escalated",
        "outside_business_hours",
        "closed",
        "released",
        "agent_not_responding",
        "erased",
    ];

    /// The kind's index in [`EventKind::TYPE_NAMES`].
    pub const fn type_index(&self) -> usize {
        match self {
            EventKind::Assigned { .. } => 0,
            EventKind::Offered { .. } => 1,
            EventKind::OfferAccepted => 2,
            EventKind::OfferDeclined => 3,
            EventKind::OfferExpired => 4,
            EventKind::Queued { .. } => 5,
            EventKind::OverflowStep { .. } => 6,
            EventKind::Escalated { .. } => 7,
            EventKind::OutsideBusinessHours { .. } => 8,
            EventKind::Closed => 9,
            EventKind::Released => 10,
            EventKind::AgentNotResponding => 11,
            EventKind::Erased => 12,
        }
    }

    /// The kind's `type`, as events are serialised.
    pub const fn type_name(&self) -> &'static str {
        Self::TYPE_NAMES[self.type_index()]
    }
}

/// One decision or state change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Event {
    /// When it happened, by the router's clock.
    pub at: Timestamp,
    /// The conversation concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation: Option<ConversationId>,
    /// The agent concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentId>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// Is this a decision that puts the conversation with an agent?
    pub fn is_assignment(&self) -> bool {
        matches!(self.kind, EventKind::Assigned { .. } | EventKind::Offered { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_the_serialised_types_in_index_order() {
        let kinds = [
            EventKind::Assigned { reason: AssignReason::Affinity, waited_ms: 0 },
            EventKind::Offered { reason: AssignReason::Affinity, expires_at: Timestamp(0) },
            EventKind::OfferAccepted,
            EventKind::OfferDeclined,
            EventKind::OfferExpired,
            EventKind::Queued {
                reason: QueueReason::NoEligibleAgent,
                position: 0,
                priority: 0,
                why: None,
            },
            EventKind::OverflowStep { step: 0 },
            EventKind::Escalated { trigger: EscalationTrigger::HumanRequest },
            EventKind::OutsideBusinessHours { skill: SkillId(0) },
            EventKind::Closed,
            EventKind::Released,
            EventKind::AgentNotResponding,
            EventKind::Erased,
        ];
        assert_eq!(kinds.len(), EventKind::TYPE_NAMES.len());
        for (index, kind) in kinds.iter().enumerate() {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json["type"], kind.type_name(), "{kind:?}");
            assert_eq!(kind.type_index(), index, "{kind:?}");
        }
    }
}
