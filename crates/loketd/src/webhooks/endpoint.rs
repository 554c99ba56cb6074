//! One configured endpoint: what it wants, its lanes' cursors, its dead
//! letters and whether a 410 disabled it (the state its file keeps).

use std::collections::{BTreeSet, VecDeque};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::Entry;
use crate::config::WebhookConfig;

/// An event whose every attempt failed, kept for redelivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The `webhook-id` it was sent with.
    pub id: String,
    /// The tenant's sequence number of the event.
    pub seq: u64,
    /// The event's type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The conversation, as the router's integer (for erasure; not shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<u64>,
    /// Attempts made.
    pub attempts: u32,
    /// What the last attempt got.
    pub error: String,
    /// When it was given up, ms since the Unix epoch.
    pub failed_at_ms: u64,
    /// The request body.
    pub body: String,
}

/// An endpoint's durable state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Durable {
    /// Per lane: every event below it is delivered or dead.
    pub(super) cursors: Vec<u64>,
    /// Why it is disabled (an answer 410), if it is.
    pub(super) disabled: Option<String>,
    pub(super) dead: Vec<DeadLetter>,
}

/// What the API shows of an endpoint.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EndpointStatus {
    /// Its name.
    #[schema(example = "crm")]
    pub name: String,
    /// Where events go.
    #[schema(example = "https://crm.example.com/hooks/loket")]
    pub url: String,
    /// The event types it receives.
    pub events: Vec<String>,
    /// Whether it receives events (a 410 answer disables it).
    pub enabled: bool,
    /// Why it is disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Events waiting for it.
    pub pending: usize,
    /// Events in its dead-letter list.
    pub dead_letters: usize,
    /// The oldest event not yet delivered or dead: every event before it is.
    pub cursor: u64,
    /// What the last failed attempt got, if any since start-up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// One configured endpoint.
#[derive(Debug)]
pub struct Endpoint {
    /// Its configuration.
    pub config: WebhookConfig,
    /// Its name.
    pub name: String,
    /// The event types it wants ([`super::type_mask`]).
    pub mask: u32,
    pub(super) state: Mutex<EndpointState>,
    /// Woken when it is enabled again or dead letters are queued for
    /// redelivery.
    pub wake: Notify,
}

#[derive(Debug)]
pub(super) struct EndpointState {
    pub(super) durable: Durable,
    pub(super) dirty: bool,
    pub(super) redeliver: VecDeque<DeadLetter>,
    pub(super) last_error: Option<String>,
    /// Configured since the last start: its cursors wait for
    /// [`super::WebhookStore::begin`].
    pub(super) fresh: bool,
}

impl EndpointState {
    /// Dead letters, those queued for redelivery included.
    pub(super) fn dead_letter_count(&self) -> usize {
        self.durable.dead.len() + self.redeliver.len()
    }
}

impl Endpoint {
    /// The lane a conversation's events go through.
    pub fn lane_of(&self, entry: &Entry) -> usize {
        let lanes = self.config.lanes.max(1) as u64;
        entry.conversation.map_or(0, |c| (c.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % lanes)
            as usize
    }

    /// Whether it wants `entry`, in `lane`.
    pub fn wants(&self, entry: &Entry, lane: usize) -> bool {
        self.mask & (1 << entry.type_index) != 0 && self.lane_of(entry) == lane
    }

    /// Lane `lane`'s cursor.
    pub fn cursor(&self, lane: usize) -> u64 {
        self.state.lock().durable.cursors.get(lane).copied().unwrap_or(0)
    }

    /// Moves lane `lane`'s cursor to `to` (never back).
    pub fn advance(&self, lane: usize, to: u64) {
        let mut state = self.state.lock();
        if let Some(cursor) = state.durable.cursors.get_mut(lane)
            && *cursor < to
        {
            *cursor = to;
            state.dirty = true;
        }
    }

    /// Puts `letter` in the dead-letter list and, for an event of lane
    /// `lane`, moves the lane past it.
    pub fn bury(&self, lane: Option<usize>, letter: DeadLetter) {
        let mut state = self.state.lock();
        if let Some(cursor) = lane.and_then(|lane| state.durable.cursors.get_mut(lane)) {
            *cursor = (*cursor).max(letter.seq + 1);
        }
        state.last_error = Some(letter.error.clone());
        state.durable.dead.push(letter);
        state.dirty = true;
    }

    /// Notes a failed attempt.
    pub fn failed(&self, error: &str) {
        self.state.lock().last_error = Some(error.to_owned());
    }

    /// Why it is disabled, if it is.
    pub fn disabled(&self) -> Option<String> {
        self.state.lock().durable.disabled.clone()
    }

    /// Disables it (an answer 410): no events are kept for it until it is
    /// enabled again.
    pub fn disable(&self, reason: String) {
        let mut state = self.state.lock();
        if state.durable.disabled.is_none() {
            tracing::warn!(endpoint = %self.name, %reason, "webhook endpoint disabled");
            state.durable.disabled = Some(reason);
            state.dirty = true;
        }
    }

    /// Enables it again, with the events after `from` (no events were kept
    /// for it while disabled); whether it was disabled.
    pub(super) fn enable(&self, from: u64) -> bool {
        let was = {
            let mut state = self.state.lock();
            let was = state.durable.disabled.take().is_some();
            if was {
                state.durable.cursors.iter_mut().for_each(|cursor| *cursor = from);
                state.dirty = true;
            }
            was
        };
        self.wake.notify_waiters();
        was
    }

    /// How many dead letters it has (those queued for redelivery included).
    pub fn dead_letter_count(&self) -> usize {
        self.state.lock().dead_letter_count()
    }

    /// The dead letters, oldest first, at most `limit`.
    pub fn dead_letters(&self, limit: usize) -> Vec<DeadLetter> {
        self.state.lock().durable.dead.iter().take(limit).cloned().collect()
    }

    /// Moves the dead letters with the given ids (all of them with `None`)
    /// to the redelivery queue; how many.
    pub fn queue_redelivery(&self, ids: Option<&BTreeSet<String>>) -> usize {
        let queued = {
            let mut state = self.state.lock();
            let (taken, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut state.durable.dead)
                .into_iter()
                .partition(|letter| ids.is_none_or(|ids| ids.contains(&letter.id)));
            state.durable.dead = kept;
            // Still durable as dead letters until redelivered: a restart
            // puts the queue back in the list.
            state.redeliver.extend(taken);
            state.dirty = true;
            state.redeliver.len()
        };
        self.wake.notify_waiters();
        queued
    }

    /// The next dead letter to redeliver.
    pub fn next_redelivery(&self) -> Option<DeadLetter> {
        let mut state = self.state.lock();
        let letter = state.redeliver.pop_front();
        if letter.is_some() {
            state.dirty = true;
        }
        letter
    }

    pub(super) fn durable_with_queue(state: &EndpointState) -> Durable {
        let mut durable = state.durable.clone();
        durable.dead.extend(state.redeliver.iter().cloned());
        durable.dead.sort_by_key(|letter| letter.seq);
        durable
    }
}
