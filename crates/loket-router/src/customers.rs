//! The customer histories behind affinity: a sharded open-addressing table
//! that keeps each customer's key and history in one cache line.
//!
//! A new conversation looks up its customer's history before anything else
//! can be decided, and with a web shop's customers the table is far larger
//! than the CPU caches: the lookup is a cache miss on the hot path. A
//! SwissTable (`DashMap`) costs two dependent misses (the control bytes,
//! then the bucket). Here the key sits in the line it names, so a lookup at
//! its home slot costs one, and [`CustomerHistories::prefetch`] can start
//! that one before the router needs it: it computes the line's address
//! without the shard lock, from a mirror of the table's address.
//!
//! Linear probing, at most 5/8 full, with backward-shift deletion (no
//! tombstones, so lookups never slow down with churn).

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;

use crate::history::History;
use crate::ids::CustomerId;

/// Shards: independent locks, so threads routing different customers
/// rarely meet. A power of two.
const SHARDS: usize = 64;
const SHARD_BITS: u32 = SHARDS.trailing_zeros();
/// Slots a shard starts with. A power of two.
const INITIAL_SLOTS: usize = 16;

/// One customer's line: its id and history. A slot whose history is empty
/// is vacant (a stored history always names at least one agent).
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct Slot {
    customer: u64,
    history: History,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 64);

impl Slot {
    fn is_vacant(&self) -> bool {
        self.history.is_empty()
    }
}

/// The customers' histories, most recent agent first. `Send + Sync`; every
/// operation but [`CustomerHistories::prefetch`] locks one shard (or, for
/// the whole-table operations, one shard at a time).
#[derive(Debug)]
pub(crate) struct CustomerHistories {
    shards: Box<[CachePadded<Shard>]>,
}

#[derive(Debug)]
struct Shard {
    table: Mutex<Table>,
    /// The table's slots and mask, mirrored under the lock whenever the
    /// table is reallocated, for [`CustomerHistories::prefetch`]: it reads
    /// them without the lock and only ever prefetches the address they give.
    /// A stale or mismatched pair yields a useless prefetch, never a read.
    slots_mirror: AtomicPtr<Slot>,
    mask_mirror: AtomicUsize,
}

#[derive(Debug)]
struct Table {
    /// A power of two long.
    slots: Vec<Slot>,
    len: usize,
}

/// A customer's hash ([`crate::ids::spread`]). The top [`SHARD_BITS`] bits
/// pick the shard, the low bits the home slot.
#[inline]
fn spread(customer: CustomerId) -> u64 {
    crate::ids::spread(customer.0)
}

#[inline]
fn shard_of(hash: u64) -> usize {
    (hash >> (64 - SHARD_BITS)) as usize
}

impl Default for CustomerHistories {
    fn default() -> Self {
        let shards = (0..SHARDS)
            .map(|_| {
                let table = Table::with_slots(INITIAL_SLOTS);
                let shard = Shard {
                    slots_mirror: AtomicPtr::new(std::ptr::null_mut()),
                    mask_mirror: AtomicUsize::new(0),
                    table: Mutex::new(table),
                };
                shard.mirror(&mut shard.table.lock());
                CachePadded::new(shard)
            })
            .collect();
        CustomerHistories { shards }
    }
}

impl CustomerHistories {
    fn shard(&self, hash: u64) -> &Shard {
        &self.shards[shard_of(hash)]
    }

    /// Asks the CPU to start loading `customer`'s home line, so a lookup a
    /// little later finds it in cache. Takes no lock and reads no slot; a
    /// no-op off x86-64.
    #[inline]
    pub(crate) fn prefetch(&self, customer: CustomerId) {
        let hash = spread(customer);
        let shard = self.shard(hash);
        let slots = shard.slots_mirror.load(Ordering::Relaxed);
        let mask = shard.mask_mirror.load(Ordering::Relaxed);
        let home = slots.wrapping_add(hash as usize & mask);
        crate::prefetch::line(home.cast_const());
    }

    /// A copy of `customer`'s history, if it has one.
    pub(crate) fn get(&self, customer: CustomerId) -> Option<History> {
        let hash = spread(customer);
        let table = self.shard(hash).table.lock();
        table.find(customer, hash).map(|index| table.slots[index].history)
    }

    /// Applies `change` to `customer`'s history, starting from an empty one
    /// if it has none. A history left empty is not stored.
    pub(crate) fn update(&self, customer: CustomerId, change: impl FnOnce(&mut History)) {
        let hash = spread(customer);
        let shard = self.shard(hash);
        let mut table = shard.table.lock();
        match table.find(customer, hash) {
            Some(index) => {
                change(&mut table.slots[index].history);
                if table.slots[index].is_vacant() {
                    table.remove_at(index);
                }
            }
            None => {
                let mut history = History::default();
                change(&mut history);
                if !history.is_empty() && table.insert_new(customer, hash, history) {
                    shard.mirror(&mut table);
                }
            }
        }
    }

    /// Stores `history` as `customer`'s, replacing any it had; an empty
    /// history removes the customer.
    pub(crate) fn insert(&self, customer: CustomerId, history: History) {
        self.update(customer, |stored| *stored = history);
    }

    /// Forgets `customer`.
    pub(crate) fn remove(&self, customer: CustomerId) {
        let hash = spread(customer);
        let mut table = self.shard(hash).table.lock();
        if let Some(index) = table.find(customer, hash) {
            table.remove_at(index);
        }
    }

    /// Keeps only the customers for which `keep` says yes, one shard at a
    /// time.
    pub(crate) fn retain(&self, mut keep: impl FnMut(CustomerId, &History) -> bool) {
        for shard in self.shards.iter() {
            let mut table = shard.table.lock();
            let kept: Vec<Slot> = table
                .slots
                .iter()
                .filter(|slot| !slot.is_vacant() && keep(CustomerId(slot.customer), &slot.history))
                .copied()
                .collect();
            if kept.len() == table.len {
                continue;
            }
            *table = Table::filled(Table::slots_for(kept.len()), kept);
            shard.mirror(&mut table);
        }
    }

    /// Every customer with its history, in no particular order (one shard
    /// at a time: not a consistent cut while other threads route).
    pub(crate) fn to_vec(&self) -> Vec<(CustomerId, History)> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            let table = shard.table.lock();
            all.extend(
                table
                    .slots
                    .iter()
                    .filter(|slot| !slot.is_vacant())
                    .map(|slot| (CustomerId(slot.customer), slot.history)),
            );
        }
        all
    }

    /// Number of customers with a history.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.table.lock().len).sum()
    }
}

impl Shard {
    /// Publishes the table's address for [`CustomerHistories::prefetch`].
    /// Called with the lock held (the `&mut` proves it) after every
    /// reallocation.
    fn mirror(&self, table: &mut Table) {
        self.slots_mirror.store(table.slots.as_mut_ptr(), Ordering::Relaxed);
        self.mask_mirror.store(table.slots.len() - 1, Ordering::Relaxed);
    }
}

impl Table {
    fn with_slots(slots: usize) -> Table {
        debug_assert!(slots.is_power_of_two());
        Table { slots: vec![Slot::default(); slots], len: 0 }
    }

    /// A table of `slots` slots holding `members` (occupied, distinct
    /// customers, few enough for the load limit).
    fn filled(slots: usize, members: impl IntoIterator<Item = Slot>) -> Table {
        let mut table = Table::with_slots(slots);
        for slot in members {
            table.place(slot, spread(CustomerId(slot.customer)));
            table.len += 1;
        }
        debug_assert!(table.len * 8 <= table.slots.len() * 5);
        table
    }

    /// The slot count that holds `len` customers within the load limit.
    fn slots_for(len: usize) -> usize {
        (len.saturating_mul(8) / 5 + 1).next_power_of_two().max(INITIAL_SLOTS)
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The slot holding `customer`, if any.
    fn find(&self, customer: CustomerId, hash: u64) -> Option<usize> {
        let mask = self.mask();
        let mut index = hash as usize & mask;
        loop {
            let slot = &self.slots[index];
            if slot.is_vacant() {
                return None;
            }
            if slot.customer == customer.0 {
                return Some(index);
            }
            index = (index + 1) & mask;
        }
    }

    /// Stores a customer known to be absent, growing first if the table
    /// would pass 5/8 full. True when the table was reallocated.
    fn insert_new(&mut self, customer: CustomerId, hash: u64, history: History) -> bool {
        debug_assert!(!history.is_empty());
        let grown = (self.len + 1) * 8 > self.slots.len() * 5;
        if grown {
            let members = std::mem::take(&mut self.slots);
            let doubled = members.len() * 2;
            *self = Table::filled(doubled, members.into_iter().filter(|slot| !slot.is_vacant()));
        }
        self.place(Slot { customer: customer.0, history }, hash);
        self.len += 1;
        grown
    }

    /// Puts `slot` in the first vacant slot from its home on.
    fn place(&mut self, slot: Slot, hash: u64) {
        let mask = self.mask();
        let mut index = hash as usize & mask;
        while !self.slots[index].is_vacant() {
            index = (index + 1) & mask;
        }
        self.slots[index] = slot;
    }

    /// Empties slot `index` and moves later members of its probe run back,
    /// so every member stays reachable from its home without tombstones.
    fn remove_at(&mut self, mut hole: usize) {
        let mask = self.mask();
        let mut next = hole;
        loop {
            next = (next + 1) & mask;
            if self.slots[next].is_vacant() {
                break;
            }
            let home = spread(CustomerId(self.slots[next].customer)) as usize & mask;
            // `next` may fill the hole unless its home lies cyclically in
            // (hole, next]: then it must stay at or after its home.
            let home_after_hole = (home.wrapping_sub(hole) & mask) != 0
                && (home.wrapping_sub(hole) & mask) <= (next.wrapping_sub(hole) & mask);
            if !home_after_hole {
                self.slots[hole] = self.slots[next];
                hole = next;
            }
        }
        self.slots[hole] = Slot::default();
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Timestamp;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn history_of(slot: u32, at: u64) -> History {
        let mut history = History::default();
        history.remember(slot, Timestamp(at));
        history
    }

    #[test]
    fn remembers_updates_and_forgets_customers() {
        let histories = CustomerHistories::default();
        assert_eq!(histories.get(CustomerId(7)), None);
        histories.update(CustomerId(7), |h| h.remember(3, Timestamp(10)));
        histories.update(CustomerId(7), |h| h.remember(4, Timestamp(20)));
        let history = histories.get(CustomerId(7)).unwrap();
        assert_eq!(history.iter().collect::<Vec<_>>(), [(4, Timestamp(20)), (3, Timestamp(10))]);
        assert_eq!(histories.len(), 1);
        histories.remove(CustomerId(7));
        assert_eq!(histories.get(CustomerId(7)), None);
        assert_eq!(histories.len(), 0);
        // An update that leaves the history empty stores nothing.
        histories.update(CustomerId(8), |_| {});
        assert_eq!(histories.len(), 0);
        histories.insert(CustomerId(9), History::default());
        assert_eq!(histories.get(CustomerId(9)), None);
    }

    #[test]
    fn grows_past_many_customers_and_prefetch_is_harmless() {
        let histories = CustomerHistories::default();
        for customer in 0..20_000u64 {
            histories.prefetch(CustomerId(customer));
            histories.insert(CustomerId(customer), history_of(customer as u32, customer));
        }
        assert_eq!(histories.len(), 20_000);
        for customer in (0..20_000u64).step_by(7) {
            let history = histories.get(CustomerId(customer)).unwrap();
            assert_eq!(history.last_served_at(), Some(Timestamp(customer)));
        }
        // u64::MAX and 0 are ordinary ids.
        histories.insert(CustomerId(u64::MAX), history_of(1, 1));
        assert!(histories.get(CustomerId(u64::MAX)).is_some());
        histories.retain(|customer, _| customer.0 % 2 == 0);
        assert_eq!(histories.len(), 10_000);
        assert!(histories.get(CustomerId(2)).is_some() && histories.get(CustomerId(3)).is_none());
        let mut all = histories.to_vec();
        all.sort_unstable_by_key(|(customer, _)| customer.0);
        assert_eq!(all.len(), 10_000);
        assert_eq!(all[1].0, CustomerId(2));
    }

    /// Tables of 16 slots with every id landing in a handful of homes:
    /// long probe runs that wrap around the end, where backward shifting
    /// is easiest to get wrong.
    #[test]
    fn removal_keeps_wrapped_probe_runs_reachable() {
        let mut table = Table::with_slots(16);
        // Ids whose home is one of the last two slots of a 16-slot table.
        let ids: Vec<u64> =
            (0..).filter(|&id| spread(CustomerId(id)) as usize & 15 >= 14).take(8).collect();
        for &id in &ids {
            table.insert_new(CustomerId(id), spread(CustomerId(id)), history_of(1, id));
        }
        assert_eq!(table.slots.len(), 16);
        for (removed, &id) in ids.iter().enumerate() {
            let index = table.find(CustomerId(id), spread(CustomerId(id))).unwrap();
            table.remove_at(index);
            for &other in &ids[removed + 1..] {
                assert!(table.find(CustomerId(other), spread(CustomerId(other))).is_some());
            }
            assert!(table.find(CustomerId(id), spread(CustomerId(id))).is_none());
        }
        assert_eq!(table.len, 0);
    }

    proptest! {
        /// One table against a `HashMap`, over ids that crowd its slots:
        /// inserts that grow it, removals from the middle of probe runs.
        #[test]
        fn a_table_matches_a_hash_map(ops in prop::collection::vec((any::<bool>(), 0u64..48), 0..300)) {
            let mut table = Table::with_slots(INITIAL_SLOTS);
            let mut model: HashMap<u64, u64> = HashMap::new();
            for (step, (insert, id)) in ops.into_iter().enumerate() {
                let customer = CustomerId(id);
                let hash = spread(customer);
                let found = table.find(customer, hash);
                prop_assert_eq!(found.is_some(), model.contains_key(&id));
                match (insert, found) {
                    (true, Some(index)) => {
                        table.slots[index].history = history_of(1, step as u64);
                        model.insert(id, step as u64);
                    }
                    (true, None) => {
                        table.insert_new(customer, hash, history_of(1, step as u64));
                        model.insert(id, step as u64);
                    }
                    (false, Some(index)) => {
                        table.remove_at(index);
                        model.remove(&id);
                    }
                    (false, None) => {}
                }
                prop_assert_eq!(table.len, model.len());
                prop_assert!(table.len * 8 <= table.slots.len() * 5);
                for id in 0..48 {
                    let customer = CustomerId(id);
                    let stored = table
                        .find(customer, spread(customer))
                        .and_then(|index| table.slots[index].history.last_served_at());
                    prop_assert_eq!(stored, model.get(&id).map(|&at| Timestamp(at)));
                }
            }
        }

        /// Against a `HashMap`: any mix of updates, removals and sweeps,
        /// over few enough ids that they collide and probe runs form.
        #[test]
        fn matches_a_hash_map(ops in prop::collection::vec((0u8..4, 0u64..64, 0u32..5), 0..400)) {
            let histories = CustomerHistories::default();
            let mut model: HashMap<u64, History> = HashMap::new();
            for (op, id, slot) in ops {
                let customer = CustomerId(id);
                match op {
                    0 | 1 => {
                        histories.update(customer, |h| h.remember(slot, Timestamp(u64::from(slot))));
                        model.entry(id).or_default().remember(slot, Timestamp(u64::from(slot)));
                    }
                    2 => {
                        histories.remove(customer);
                        model.remove(&id);
                    }
                    _ => {
                        histories.retain(|customer, h| !(customer.0 + h.len() as u64).is_multiple_of(3));
                        model.retain(|&id, h| !(id + h.len() as u64).is_multiple_of(3));
                    }
                }
                prop_assert_eq!(histories.len(), model.len());
                for id in 0..64 {
                    prop_assert_eq!(histories.get(CustomerId(id)), model.get(&id).copied());
                }
            }
        }
    }
}
