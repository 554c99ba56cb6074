//! What is stored per slot and group: counts, integer sums and histograms,
//! so that merging slots is exact and no stored value depends on the order
//! in which facts were counted.

use serde::{Deserialize, Serialize};

use crate::fact::{Currency, Money};
use crate::histogram::Histogram;

/// The measures of one group in one slot (or, merged, in any span).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measures {
    /// Conversations that arrived (for agent and team groups: that a
    /// person of the group took).
    pub offered: u64,
    /// Conversations that got a reply (human or bot) before closing.
    pub answered: u64,
    /// Conversations closed before any reply.
    pub abandoned: u64,
    /// Abandoned within `short_abandon_ms` of the first message.
    pub short_abandoned: u64,
    /// Service level's numerator: first response within target, or
    /// resolved by a bot without ever waiting for a person.
    pub answered_in_target: u64,
    /// Start (first message or hand-off) to a person's assignment.
    pub wait_ms: Histogram,
    /// Start to a person's first reply.
    pub first_response_ms: Histogram,
    /// Oldest unanswered customer message to a person's next reply.
    pub next_reply_ms: Histogram,
    /// First message to close.
    pub resolution_ms: Histogram,
    /// Sum of first human assignment to close.
    pub handle_ms_sum: u64,
    /// How many conversations `handle_ms_sum` adds up.
    pub handle_count: u64,
    /// First-reply SLA breaches.
    pub breaches_first_reply: u64,
    /// Next-reply SLA breaches.
    pub breaches_next_reply: u64,
    /// Conversations a bot handed to people.
    pub escalations: u64,
    /// Conversations closed after only bot replies and no hand-off.
    pub bot_resolved: u64,
    /// Conversations with at least one order.
    pub conversions: u64,
    /// Order values in minor units, per currency, sorted by currency.
    pub revenue: Vec<(Currency, i64)>,
    /// Per first-response band: conversations with a first response in it.
    pub band_conversations: [u64; 5],
    /// Per first-response band: those of them with an order.
    pub band_conversions: [u64; 5],
    /// Conversation-milliseconds people held conversations (agent, team
    /// and total groups only), counted in the slot the time falls in.
    #[serde(default)]
    pub held_ms: u64,
    /// Capacity-milliseconds people were staffed for: the conversations
    /// they could hold at once, times the time they were available.
    #[serde(default)]
    pub staffed_ms: u64,
    /// The clocks in business hours, once one stopped with opening hours
    /// configured (kept apart so that meters without opening hours store
    /// nothing for them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business: Option<Box<BusinessClocks>>,
}

/// The business-hours twins of the clocks: each the open time (per the
/// configured opening hours) between the clock's start and stop.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessClocks {
    /// `wait_ms` in business hours.
    pub wait_ms: Histogram,
    /// `first_response_ms` in business hours.
    pub first_response_ms: Histogram,
    /// `next_reply_ms` in business hours.
    pub next_reply_ms: Histogram,
    /// `resolution_ms` in business hours.
    pub resolution_ms: Histogram,
    /// Sum of handle times in business hours.
    pub handle_ms_sum: u64,
    /// How many handle times `handle_ms_sum` adds up.
    pub handle_count: u64,
}

impl BusinessClocks {
    /// Adds everything `other` counted.
    pub fn merge(&mut self, other: &BusinessClocks) {
        self.wait_ms.merge(&other.wait_ms);
        self.first_response_ms.merge(&other.first_response_ms);
        self.next_reply_ms.merge(&other.next_reply_ms);
        self.resolution_ms.merge(&other.resolution_ms);
        self.handle_ms_sum = self.handle_ms_sum.saturating_add(other.handle_ms_sum);
        self.handle_count += other.handle_count;
    }
}

impl Measures {
    /// Adds an order's value to the revenue.
    pub fn add_revenue(&mut self, value: Money) {
        match self.revenue.binary_search_by_key(&value.currency, |&(c, _)| c) {
            Ok(at) => self.revenue[at].1 = self.revenue[at].1.saturating_add(value.minor),
            Err(at) => self.revenue.insert(at, (value.currency, value.minor)),
        }
    }

    /// Adds everything `other` counted.
    pub fn merge(&mut self, other: &Measures) {
        self.offered += other.offered;
        self.answered += other.answered;
        self.abandoned += other.abandoned;
        self.short_abandoned += other.short_abandoned;
        self.answered_in_target += other.answered_in_target;
        self.wait_ms.merge(&other.wait_ms);
        self.first_response_ms.merge(&other.first_response_ms);
        self.next_reply_ms.merge(&other.next_reply_ms);
        self.resolution_ms.merge(&other.resolution_ms);
        self.handle_ms_sum = self.handle_ms_sum.saturating_add(other.handle_ms_sum);
        self.handle_count += other.handle_count;
        self.breaches_first_reply += other.breaches_first_reply;
        self.breaches_next_reply += other.breaches_next_reply;
        self.escalations += other.escalations;
        self.bot_resolved += other.bot_resolved;
        self.conversions += other.conversions;
        for &(currency, minor) in &other.revenue {
            self.add_revenue(Money { minor, currency });
        }
        self.held_ms = self.held_ms.saturating_add(other.held_ms);
        self.staffed_ms = self.staffed_ms.saturating_add(other.staffed_ms);
        for band in 0..5 {
            self.band_conversations[band] += other.band_conversations[band];
            self.band_conversions[band] += other.band_conversions[band];
        }
        if let Some(business) = &other.business {
            self.business_mut().merge(business);
        }
    }

    /// The business-hours clocks, added (empty) when missing.
    pub fn business_mut(&mut self) -> &mut BusinessClocks {
        self.business.get_or_insert_default()
    }
}
