//! What the meter remembers of one conversation while it is open, and the
//! compact record it keeps after the close for the order attribution
//! window.

use serde::{Deserialize, Serialize};

use crate::fact::{Channel, IntentId, Language, Money};
use crate::group::{BuyingBand, GroupKey, response_band};
use crate::sla::SlaTargets;
use crate::timers::TimerKey;

/// The groups fixed by the first customer message.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ArrivalGroups {
    pub(crate) channel: Channel,
    pub(crate) queue: u32,
    pub(crate) language: Language,
    pub(crate) intent: IntentId,
    pub(crate) band: BuyingBand,
    pub(crate) tier: u8,
}

/// The first person who took (was assigned, or replied to) the
/// conversation: its agent and team groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Handler {
    pub(crate) agent: u64,
    pub(crate) team: u32,
}

/// What has been counted for the conversation so far, so that the agent
/// and team groups, which it joins only when a person takes it, can be
/// brought level with the others.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Tally {
    pub(crate) answered: bool,
    pub(crate) escalated: bool,
    pub(crate) converted: bool,
    pub(crate) breaches_first_reply: u32,
    pub(crate) breaches_next_reply: u32,
    pub(crate) revenue: Vec<Money>,
}

/// One conversation's clocks and counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Conversation {
    /// The first customer message's time.
    pub(crate) first_at: u64,
    /// The slot every measure of this conversation is counted in.
    pub(crate) slot: u64,
    pub(crate) groups: ArrivalGroups,
    /// Positions of the groups' measures in the slot: the seven arrival
    /// groups, then agent and team once a person took the conversation.
    pub(crate) positions: [u32; 9],
    pub(crate) handler: Option<Handler>,
    pub(crate) targets: SlaTargets,
    /// Start of the wait and first-response clocks: the first message or
    /// the latest hand-off; `None` while a bot holds the conversation.
    pub(crate) clock_start: Option<u64>,
    pub(crate) wait_recorded: bool,
    /// When a person was first assigned (handle time starts).
    pub(crate) human_assigned_at: Option<u64>,
    /// The first response once a person replied.
    pub(crate) first_response_ms: Option<u64>,
    /// The oldest customer message not yet answered by a person, once the
    /// first response is in.
    pub(crate) unanswered_since: Option<u64>,
    pub(crate) bot_held: bool,
    pub(crate) tally: Tally,
    pub(crate) first_reply_timer: Option<TimerKey>,
    pub(crate) next_reply_timer: Option<TimerKey>,
    /// Set at the close; the conversation then only takes orders.
    pub(crate) closed_at: Option<u64>,
}

impl Conversation {
    /// The seven groups fixed by the first message.
    pub(crate) fn arrival_keys(&self) -> [GroupKey; 7] {
        let groups = &self.groups;
        [
            GroupKey::Total,
            GroupKey::Channel(groups.channel),
            GroupKey::Queue(groups.queue),
            GroupKey::Language(groups.language),
            GroupKey::Intent(groups.intent),
            GroupKey::BuyingIntent(groups.band),
            GroupKey::Tier(groups.tier),
        ]
    }

    /// The positions of the groups the conversation is counted in now.
    pub(crate) fn counted_positions(&self) -> &[u32] {
        let counted = if self.handler.is_some() { 9 } else { 7 };
        &self.positions[..counted]
    }
}

/// What a closed conversation still needs while its order window runs: an
/// order counts a conversion (once) and revenue in the groups it was
/// counted in. About a quarter of an open conversation's size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Closed {
    pub(crate) closed_at: u64,
    /// The arrival slot its measures are counted in.
    pub(crate) slot: u64,
    /// Positions of its groups' measures in the slot; the first `counted`.
    pub(crate) positions: [u32; 9],
    pub(crate) counted: u8,
    pub(crate) converted: bool,
    /// The first-response band, if a person replied.
    pub(crate) band: Option<u8>,
}

impl Closed {
    /// The record of `conversation`, closed at `closed_at`.
    pub(crate) fn of(conversation: &Conversation, closed_at: u64) -> Closed {
        Closed {
            closed_at,
            slot: conversation.slot,
            positions: conversation.positions,
            counted: conversation.counted_positions().len() as u8,
            converted: conversation.tally.converted,
            band: conversation.first_response_ms.map(|ms| response_band(ms) as u8),
        }
    }

    /// The positions of the groups it is counted in.
    pub(crate) fn counted_positions(&self) -> &[u32] {
        &self.positions[..usize::from(self.counted).min(9)]
    }
}
