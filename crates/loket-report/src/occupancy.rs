//! People's occupancy: the conversation-time people held over the
//! capacity-time they were staffed for, per agent, counted into the
//! 15-minute slot the time falls in.
//!
//! Each person has a clock: the conversations they hold now and the
//! conversations they could hold at once while staffed (0 while away or
//! offline). Between two changes both are constant, so the areas under them
//! (`held_ms`, `staffed_ms`, in conversation-milliseconds) grow linearly.
//! A change adds the areas since the previous one to the person's pending
//! sums; the sums go into the store, in the agent's, the team's and the
//! total group, when the slot ends. So a change costs one map lookup, and
//! the store is touched once per person per slot.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::group::GroupKey;
use crate::interval::SLOT_MS;
use crate::store::Store;

/// One person's occupancy clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AgentClock {
    team: u32,
    /// Conversations they can hold at once while staffed; 0 while not.
    capacity: u32,
    /// Conversations they hold now.
    holding: u32,
    /// The areas are counted up to this time; `None` until the meter's
    /// first time (a person registered before anything was measured starts
    /// counting there, not at time 0).
    since: Option<u64>,
    /// Conversation-ms held in `since`'s slot, not yet in the store.
    held_ms: u64,
    /// Capacity-ms staffed in `since`'s slot, not yet in the store.
    staffed_ms: u64,
}

/// Every person's clock, kept for every person ever seen (48 bytes each).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Staffing {
    #[serde(with = "crate::pairs")]
    agents: FxHashMap<u64, AgentClock>,
}

/// Pending areas of one person in one slot, for a report.
pub(crate) struct Pending {
    pub(crate) slot: u64,
    pub(crate) agent: u64,
    pub(crate) team: u32,
    pub(crate) held_ms: u64,
    pub(crate) staffed_ms: u64,
}

impl Staffing {
    /// From `at` (`None`: the meter's first time, if it has none yet), the
    /// person `agent` of `team` can hold `capacity` conversations at once
    /// (0: not staffed). Slots before `first_kept` are not counted.
    pub(crate) fn staff(
        &mut self,
        store: &mut Store,
        first_kept: u64,
        at: Option<u64>,
        agent: u64,
        team: u32,
        capacity: u32,
    ) {
        let clock = self.agents.entry(agent).or_default();
        if let Some(at) = at {
            count_until(clock, store, first_kept, agent, at);
            clock.since.get_or_insert(at);
        }
        if clock.team != team {
            // Time already counted stays with the old team.
            flush(clock, store, first_kept, agent);
            clock.team = team;
        }
        clock.capacity = capacity;
    }

    /// The person `agent` starts (`true`) or stops holding a conversation
    /// at `at`. A person never staffed holds with no capacity (and is
    /// counted in the no-team group until staffed).
    pub(crate) fn hold(
        &mut self,
        store: &mut Store,
        first_kept: u64,
        at: u64,
        agent: u64,
        starts: bool,
    ) {
        let clock = self.agents.entry(agent).or_default();
        if clock.since.is_none() {
            clock.since = Some(at);
        }
        count_until(clock, store, first_kept, agent, at);
        clock.holding =
            if starts { clock.holding.saturating_add(1) } else { clock.holding.saturating_sub(1) };
    }

    /// The meter's first time: clocks waiting for it start there.
    pub(crate) fn start(&mut self, at: u64) {
        for clock in self.agents.values_mut() {
            clock.since.get_or_insert(at);
        }
    }

    /// A new slot began at or before `now`: counts every clock up to `now`
    /// and stores what the ended slots hold, in agent order (so the store's
    /// groups appear in the same order however the map was built).
    pub(crate) fn roll(&mut self, store: &mut Store, first_kept: u64, now: u64) {
        let mut agents: Vec<u64> = self.agents.keys().copied().collect();
        agents.sort_unstable();
        for agent in agents {
            if let Some(clock) = self.agents.get_mut(&agent) {
                count_until(clock, store, first_kept, agent, now);
            }
        }
    }

    /// What is counted but not stored, up to `now` (which lies in the
    /// clocks' current slot), per person.
    pub(crate) fn pending(&self, now: u64) -> impl Iterator<Item = Pending> + '_ {
        self.agents.iter().filter_map(move |(&agent, clock)| {
            let since = clock.since?;
            let span = now.saturating_sub(since);
            let held_ms = clock.held_ms + span * u64::from(clock.holding);
            let staffed_ms = clock.staffed_ms + span * u64::from(clock.capacity);
            (held_ms > 0 || staffed_ms > 0).then_some(Pending {
                slot: since / SLOT_MS,
                agent,
                team: clock.team,
                held_ms,
                staffed_ms,
            })
        })
    }
}

/// Adds the areas from the clock's `since` up to `to`, storing each slot's
/// sums when the slot ends. Time in slots before `first_kept` is skipped.
fn count_until(clock: &mut AgentClock, store: &mut Store, first_kept: u64, agent: u64, to: u64) {
    let Some(mut since) = clock.since else { return };
    if to <= since {
        return;
    }
    if clock.holding == 0 && clock.capacity == 0 {
        // Nothing to count: what is pending stays with its slot until the
        // slot ends.
        if to / SLOT_MS != since / SLOT_MS {
            flush(clock, store, first_kept, agent);
        }
        clock.since = Some(to);
        return;
    }
    let kept_from = first_kept.saturating_mul(SLOT_MS);
    if since < kept_from {
        // Nothing before the retained slots is counted.
        clock.held_ms = 0;
        clock.staffed_ms = 0;
        since = kept_from.min(to);
    }
    while since < to {
        let slot_end = (since / SLOT_MS + 1).saturating_mul(SLOT_MS);
        let end = slot_end.min(to);
        let span = end - since;
        clock.held_ms = clock.held_ms.saturating_add(span.saturating_mul(u64::from(clock.holding)));
        clock.staffed_ms =
            clock.staffed_ms.saturating_add(span.saturating_mul(u64::from(clock.capacity)));
        if end == slot_end {
            clock.since = Some(since);
            flush(clock, store, first_kept, agent);
        }
        since = end;
    }
    clock.since = Some(to);
}

/// Stores the clock's pending sums in the slot of its `since`.
fn flush(clock: &mut AgentClock, store: &mut Store, first_kept: u64, agent: u64) {
    let (held_ms, staffed_ms) = (clock.held_ms, clock.staffed_ms);
    clock.held_ms = 0;
    clock.staffed_ms = 0;
    let Some(since) = clock.since else { return };
    let slot = since / SLOT_MS;
    if (held_ms == 0 && staffed_ms == 0) || slot < first_kept {
        return;
    }
    let groups = store.slot_mut(slot);
    for key in [GroupKey::Agent(agent), GroupKey::Team(clock.team), GroupKey::Total] {
        let position = groups.position(key);
        if let Some(measures) = groups.at(position) {
            measures.held_ms = measures.held_ms.saturating_add(held_ms);
            measures.staffed_ms = measures.staffed_ms.saturating_add(staffed_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(store: &Store, slot: u64, key: GroupKey) -> (u64, u64) {
        store
            .range(slot, slot + 1)
            .flat_map(|(_, groups)| groups.iter())
            .find(|(k, _)| **k == key)
            .map_or((0, 0), |(_, m)| (m.held_ms, m.staffed_ms))
    }

    #[test]
    fn areas_split_at_slot_ends_and_go_to_agent_team_and_total() {
        let (mut staffing, mut store) = (Staffing::default(), Store::default());
        // Staffed for 2 from 10 min into slot 0; holds one from 14 min to
        // 20 min: 1 min in slot 0, 5 in slot 1.
        let minute = 60_000;
        staffing.staff(&mut store, 0, Some(10 * minute), 7, 3, 2);
        staffing.hold(&mut store, 0, 14 * minute, 7, true);
        staffing.hold(&mut store, 0, 20 * minute, 7, false);
        staffing.roll(&mut store, 0, 30 * minute);
        for key in [GroupKey::Agent(7), GroupKey::Team(3), GroupKey::Total] {
            assert_eq!(stored(&store, 0, key), (minute, 2 * 5 * minute), "{key:?}");
            assert_eq!(stored(&store, 1, key), (5 * minute, 2 * 15 * minute), "{key:?}");
        }
        let pending: Vec<Pending> = staffing.pending(40 * minute).collect();
        assert_eq!(pending.len(), 1);
        assert_eq!((pending[0].slot, pending[0].held_ms), (2, 0));
        assert_eq!(pending[0].staffed_ms, 2 * 10 * minute);
    }

    #[test]
    fn a_person_registered_before_the_first_time_starts_there() {
        let (mut staffing, mut store) = (Staffing::default(), Store::default());
        staffing.staff(&mut store, 0, None, 1, 0, 1);
        let start = 1_000 * SLOT_MS + 5;
        staffing.start(start);
        let pending: Vec<Pending> = staffing.pending(start + 100).collect();
        assert_eq!(pending[0].staffed_ms, 100);
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn time_before_the_retained_slots_is_skipped() {
        let (mut staffing, mut store) = (Staffing::default(), Store::default());
        staffing.staff(&mut store, 0, Some(0), 1, 0, 1);
        // A jump of 100 slots with only the last 4 retained.
        staffing.roll(&mut store, 96, 100 * SLOT_MS);
        assert_eq!(store.len(), 4);
        staffing.staff(&mut store, 96, Some(100 * SLOT_MS + 10), 1, 0, 0);
        staffing.roll(&mut store, 97, 101 * SLOT_MS);
        assert_eq!(stored(&store, 100, GroupKey::Total), (0, 10));
        assert_eq!(store.len(), 5, "nothing staffed or held in slot 101");
    }
}
