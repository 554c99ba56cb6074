//! SLA timers: a set ordered by (instant, conversation, kind), so the same
//! facts always fire the same events in the same order.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// What a timer does when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum TimerKind {
    FirstReplyWarning,
    FirstReplyBreach,
    NextReplyWarning,
    NextReplyBreach,
}

/// A pending timer; the conversation keeps its key to cancel it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct TimerKey {
    pub(crate) at: u64,
    pub(crate) conversation: u64,
    pub(crate) kind: TimerKind,
}

/// The pending timers. A conversation has at most one per clock.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "BTreeSet<TimerKey>", into = "BTreeSet<TimerKey>")]
pub(crate) struct Timers {
    pending: BTreeSet<TimerKey>,
    /// No timer is due before this (a lower bound of the earliest; 0 after
    /// a restore), so most facts need not look into the set.
    quiet_before: u64,
}

impl From<BTreeSet<TimerKey>> for Timers {
    fn from(pending: BTreeSet<TimerKey>) -> Timers {
        Timers { pending, quiet_before: 0 }
    }
}

impl From<Timers> for BTreeSet<TimerKey> {
    fn from(timers: Timers) -> BTreeSet<TimerKey> {
        timers.pending
    }
}

impl Timers {
    pub(crate) fn insert(&mut self, key: TimerKey) {
        self.quiet_before = self.quiet_before.min(key.at);
        self.pending.insert(key);
    }

    /// Whether no timer can be due at or before `now`.
    pub(crate) fn quiet_at(&self, now: u64) -> bool {
        now < self.quiet_before
    }

    pub(crate) fn cancel(&mut self, key: Option<TimerKey>) {
        if let Some(key) = key {
            self.pending.remove(&key);
        }
    }

    /// Removes and returns the earliest timer due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: u64) -> Option<TimerKey> {
        let Some(first) = self.pending.first() else {
            self.quiet_before = u64::MAX;
            return None;
        };
        if first.at <= now {
            return self.pending.pop_first();
        }
        self.quiet_before = first.at;
        None
    }

    /// When the earliest pending timer is due.
    pub(crate) fn next(&self) -> Option<u64> {
        self.pending.first().map(|key| key.at)
    }

    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }
}
