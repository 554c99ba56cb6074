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
pub(crate) struct Timers {
    pending: BTreeSet<TimerKey>,
}

impl Timers {
    pub(crate) fn insert(&mut self, key: TimerKey) {
        self.pending.insert(key);
    }

    pub(crate) fn cancel(&mut self, key: Option<TimerKey>) {
        if let Some(key) = key {
            self.pending.remove(&key);
        }
    }

    /// Removes and returns the earliest timer due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: u64) -> Option<TimerKey> {
        if self.pending.first()?.at <= now { self.pending.pop_first() } else { None }
    }

    /// When the earliest pending timer is due.
    pub(crate) fn next(&self) -> Option<u64> {
        self.pending.first().map(|key| key.at)
    }

    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }
}
