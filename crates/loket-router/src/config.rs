//! Routing policy: every knob the router reads, with defaults that suit a
//! typical web shop's service desk.

use loket_capacity::{CHANNELS, Channel};
use serde::{Deserialize, Serialize};

use crate::hours::BusinessHours;

/// How the router picks among eligible agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The agent with the lowest overall load (then the fewest on the channel).
    #[default]
    LeastLoaded,
    /// The agent whose last assignment is oldest.
    LongestIdle,
    /// The agent with the highest summed proficiency in the required skills.
    MostProficient,
    /// Agents in turn, in slot order, from where the last pick stopped.
    RoundRobin,
}

impl Strategy {
    /// The snake-case name used in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Strategy::LeastLoaded => "least_loaded",
            Strategy::LongestIdle => "longest_idle",
            Strategy::MostProficient => "most_proficient",
            Strategy::RoundRobin => "round_robin",
        }
    }
}

/// One step of overflow: how a waiting conversation's requirements widen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "widen")]
pub enum Widen {
    /// Lower every required minimum proficiency by this much (never below 1).
    LowerProficiency {
        /// How many levels.
        by: u8,
    },
    /// Replace the required skills by one overflow skill group.
    SkillGroup {
        /// The overflow group's skill name.
        skill: String,
    },
    /// Let a bot agent take it.
    Bot,
}

/// A widening applied once a conversation has waited `after_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverflowStep {
    /// Waiting time, from first queueing, after which this step applies.
    pub after_ms: u64,
    /// What widens.
    #[serde(flatten)]
    pub widen: Widen,
}

/// Offer mode: assignments are offers the agent must accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferPolicy {
    /// How long an offer holds capacity before it expires.
    pub timeout_ms: u64,
    /// After this many offers missed in a row (expired), the agent is set to
    /// not-responding.
    pub max_missed: u32,
}

/// When a bot conversation goes to a human.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EscalationPolicy {
    /// Buying intent at or above this escalates (0..=1; above 1 never).
    pub buying_intent_threshold: f32,
    /// Escalate when the customer asks for a person.
    pub on_human_request: bool,
    /// Escalate when the caller flags doubt.
    pub on_doubt: bool,
    /// Escalate when the caller flags a complaint.
    pub on_complaint: bool,
}

impl Default for EscalationPolicy {
    fn default() -> Self {
        EscalationPolicy {
            buying_intent_threshold: 0.7,
            on_human_request: true,
            on_doubt: true,
            on_complaint: true,
        }
    }
}

/// How waiting conversations are ordered.
///
/// A conversation's priority in points is `channel_urgency[channel] +
/// buying_intent * buying_intent_weight + tier * tier_weight`, plus
/// `escalation_boost` when escalated, reassigned or re-offered; and every `aging_ms_per_point` of waiting adds one point, so nothing
/// starves: a conversation that has waited long enough overtakes any newer one.
///
/// With `sla_aware`, time to breach orders the queue together with the
/// points: a waiting conversation's place is `first queued +
/// sla_first_reply_ms[channel] − points × aging_ms_per_point` (lower goes
/// first), where without it it is `first queued − points ×
/// aging_ms_per_point`. Among otherwise equal conversations the one whose
/// first-reply target runs out first goes first, whatever its channel; a
/// point still counts as `aging_ms_per_point` of time to breach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PriorityPolicy {
    /// Points per channel, indexed as [`Channel::ALL`].
    pub channel_urgency: [u32; CHANNELS],
    /// Points for a buying intent of 1.0.
    pub buying_intent_weight: u32,
    /// Points per customer tier level.
    pub tier_weight: u32,
    /// Points for an escalation, a declined or an expired offer, or a reassignment.
    pub escalation_boost: u32,
    /// Waiting this long adds one point.
    pub aging_ms_per_point: u64,
    /// Order by time to the first-reply SLA breach together with the points.
    pub sla_aware: bool,
    /// First-reply targets per channel (ms), indexed as [`Channel::ALL`]:
    /// 60 s chat, 20 s voice, 5 min WhatsApp, Messenger and SMS, 4 h e-mail
    /// (`loket-report`'s defaults; `loketd` and the command line set them
    /// from the reports' SLA defaults). Read only with `sla_aware`.
    pub sla_first_reply_ms: [u64; CHANNELS],
}

impl PriorityPolicy {
    /// The queue rank of a conversation first queued at `first_queued_ms`
    /// on `channel` with `points`: lower is served first (see the type's
    /// docs).
    pub fn rank(&self, first_queued_ms: u64, channel: Channel, points: u32) -> i64 {
        let aging = self.aging_ms_per_point.min(i64::MAX as u64 / 1_000_000) as i64;
        let mut rank = first_queued_ms.min(i64::MAX as u64 / 2) as i64;
        if self.sla_aware {
            rank += self.sla_first_reply_ms[channel.index()].min(i64::MAX as u64 / 4) as i64;
        }
        rank - i64::from(points) * aging
    }
}

impl Default for PriorityPolicy {
    fn default() -> Self {
        let mut channel_urgency = [0; CHANNELS];
        channel_urgency[Channel::Voice.index()] = 100;
        channel_urgency[Channel::Chat.index()] = 60;
        channel_urgency[Channel::Whatsapp.index()] = 40;
        channel_urgency[Channel::Messenger.index()] = 40;
        channel_urgency[Channel::Sms.index()] = 20;
        channel_urgency[Channel::Email.index()] = 0;
        PriorityPolicy {
            channel_urgency,
            buying_intent_weight: 50,
            tier_weight: 10,
            escalation_boost: 200,
            aging_ms_per_point: 1_000,
            sla_aware: false,
            sla_first_reply_ms: Channel::ALL.map(|channel| match channel {
                Channel::Chat => 60_000,
                Channel::Voice => 20_000,
                Channel::Whatsapp | Channel::Messenger | Channel::Sms => 300_000,
                Channel::Email => 4 * 3_600_000,
            }),
        }
    }
}

/// Opening hours for one skill group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkillHours {
    /// The skill (group) name.
    pub skill: String,
    /// Its hours.
    #[serde(flatten)]
    pub hours: BusinessHours,
}

/// The whole routing policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    /// Picks among eligible agents.
    pub strategy: Strategy,
    /// How far back a customer's last agent counts for affinity; 0 turns affinity off.
    pub affinity_lookback_ms: u64,
    /// How long a new conversation may wait for the customer's last agent when
    /// that agent is eligible but full; 0 means do not wait.
    pub affinity_wait_ms: u64,
    /// New conversations start with a bot agent when one is eligible.
    pub bot_first: bool,
    /// Escalation from bot to human.
    pub escalation: EscalationPolicy,
    /// Queue ordering.
    pub priority: PriorityPolicy,
    /// Overflow steps, in order of `after_ms`.
    pub overflow: Vec<OverflowStep>,
    /// Offer mode; `None` assigns directly.
    pub offers: Option<OfferPolicy>,
    /// After a close, the agent's capacity returns after this long.
    pub wrap_up_ms: u64,
    /// Skill groups with opening hours; skills not listed are always open.
    pub business_hours: Vec<SkillHours>,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            strategy: Strategy::LeastLoaded,
            affinity_lookback_ms: 30 * 24 * 3_600_000,
            affinity_wait_ms: 0,
            bot_first: false,
            escalation: EscalationPolicy::default(),
            priority: PriorityPolicy::default(),
            overflow: Vec::new(),
            offers: None,
            wrap_up_ms: 0,
            business_hours: Vec::new(),
        }
    }
}
