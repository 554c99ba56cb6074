//! Who served a customer last: the memory behind customer affinity.

use crate::ids::Timestamp;

/// How many agents a customer's history remembers.
pub(crate) const HISTORY: usize = 4;

/// The agents (by slot) who last took one customer's conversations, most
/// recent first, each slot once, at most [`HISTORY`] of them.
///
/// Slots stand for agents: a slot is never reused, so a slot in a history
/// always names the agent that was served from it. A removed agent's slot is
/// never eligible again; registered again, the agent gets a new slot, and
/// its old one keeps its place in histories until it drops out.
///
/// 56 bytes, so a map entry with its 8-byte customer key takes 64 (half of
/// the 112-byte entries before, and one cache line where the map's table is
/// 64-byte aligned).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct History {
    slots: [u32; HISTORY],
    at_ms: [u64; HISTORY],
    len: u8,
}

const _: () = assert!(std::mem::size_of::<(u64, History)>() == 64);

impl History {
    /// Remembers that `slot` took a conversation at `at`: it moves to the
    /// front, and the least recent agent drops out of a full history.
    pub(crate) fn remember(&mut self, slot: u32, at: Timestamp) {
        let len = usize::from(self.len);
        // Everything before the slot's old place (or the whole history, the
        // last entry dropping out when full) shifts back by one.
        let end = match self.slots[..len].iter().position(|&s| s == slot) {
            Some(index) => index,
            None if len == HISTORY => HISTORY - 1,
            None => {
                self.len += 1;
                len
            }
        };
        self.slots.copy_within(0..end, 1);
        self.at_ms.copy_within(0..end, 1);
        self.slots[0] = slot;
        self.at_ms[0] = at.0;
    }

    /// Appends a less recent entry (restoring a snapshot, most recent
    /// first). False when the history is full; the caller checks for
    /// duplicates.
    pub(crate) fn push_oldest(&mut self, slot: u32, at: Timestamp) -> bool {
        let len = usize::from(self.len);
        if len == HISTORY {
            return false;
        }
        self.slots[len] = slot;
        self.at_ms[len] = at.0;
        self.len += 1;
        true
    }

    /// The entries, most recent first: `(slot, when it took a conversation)`.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, Timestamp)> + '_ {
        let len = usize::from(self.len);
        self.slots[..len].iter().zip(&self.at_ms[..len]).map(|(&slot, &at)| (slot, Timestamp(at)))
    }

    /// When the most recent agent took a conversation, if any did.
    pub(crate) fn last_served_at(&self) -> Option<Timestamp> {
        (self.len > 0).then(|| Timestamp(self.at_ms[0]))
    }

    /// Number of agents remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether no agent is remembered.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `slot` is in the history.
    pub(crate) fn contains(&self, slot: u32) -> bool {
        self.slots[..usize::from(self.len)].contains(&slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entries(history: &History) -> Vec<(u32, u64)> {
        history.iter().map(|(slot, at)| (slot, at.0)).collect()
    }

    #[test]
    fn the_latest_agent_comes_first_and_appears_once() {
        let mut history = History::default();
        assert_eq!(history.last_served_at(), None);
        history.remember(7, Timestamp(1));
        history.remember(8, Timestamp(2));
        history.remember(7, Timestamp(3));
        assert_eq!(entries(&history), [(7, 3), (8, 2)]);
        assert_eq!(history.last_served_at(), Some(Timestamp(3)));
        assert!(history.contains(8) && !history.contains(9));
    }

    #[test]
    fn a_full_history_forgets_the_least_recent_agent() {
        let mut history = History::default();
        for slot in 0..5 {
            history.remember(slot, Timestamp(u64::from(slot)));
        }
        assert_eq!(entries(&history), [(4, 4), (3, 3), (2, 2), (1, 1)]);
        // An agent already in a full history moves up; nobody drops out.
        history.remember(2, Timestamp(9));
        assert_eq!(entries(&history), [(2, 9), (4, 4), (3, 3), (1, 1)]);
    }

    #[test]
    fn restoring_appends_until_full() {
        let mut history = History::default();
        for slot in 0..4 {
            assert!(history.push_oldest(slot, Timestamp(10 - u64::from(slot))));
        }
        assert!(!history.push_oldest(9, Timestamp(0)));
        assert_eq!(entries(&history), [(0, 10), (1, 9), (2, 8), (3, 7)]);
    }

    proptest! {
        /// Against a plain list model: move-to-front, unique, at most four.
        #[test]
        fn remember_matches_a_move_to_front_list(ops in prop::collection::vec((0u32..6, 0u64..1000), 0..40)) {
            let mut history = History::default();
            let mut model: Vec<(u32, u64)> = Vec::new();
            for (slot, at) in ops {
                history.remember(slot, Timestamp(at));
                model.retain(|&(s, _)| s != slot);
                model.insert(0, (slot, at));
                model.truncate(HISTORY);
                prop_assert_eq!(entries(&history), model.clone());
            }
        }
    }
}
