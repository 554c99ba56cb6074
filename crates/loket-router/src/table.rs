//! Sharded open-addressing tables keyed by 64-bit ids, laid out so that a
//! lookup costs one cache miss: the key sits in the (64-byte aligned) slot
//! it names, not in a separate array of control bytes.
//!
//! The router keeps its conversations and its customers' histories in
//! these. Both are looked up once or more per message, both outgrow the
//! CPU caches, and a SwissTable (`DashMap`) costs two dependent misses per
//! lookup (the control bytes, then the bucket) with buckets that straddle
//! cache lines. Here a lookup at its home slot costs one, and
//! [`Shards::prefetch`] can start that one before the lookup, without the
//! lock.
//!
//! Linear probing, at most 5/8 full, with backward-shift deletion: no
//! tombstones, so lookups never slow down with churn. The top
//! [`SHARD_BITS`] bits of a key's hash ([`crate::ids::spread`]) pick its
//! shard, the low bits its home slot.
//!
//! Invariants:
//! - every occupied slot is reachable from its home by probing forward
//!   without passing a vacant slot;
//! - a shard's slots are only read or written under its lock; the lock-free
//!   [`Shards::prefetch`] only ever prefetches an address computed from the
//!   mirrored table address, and never reads through it.

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;
use parking_lot::{Mutex, MutexGuard};

/// Shards: independent locks, so threads working on different keys rarely
/// meet (with four per CPU, `DashMap`'s default, two threads on a 2-core
/// machine would write the same lock one time in eight). A power of two.
const SHARDS: usize = 64;
const SHARD_BITS: u32 = SHARDS.trailing_zeros();
/// Slots a shard starts with. A power of two.
const INITIAL_SLOTS: usize = 16;

/// What a table stores: a slot that is either vacant ([`Default`]) or holds
/// one member under its key.
pub(crate) trait Slot: Default {
    /// The key of an occupied slot.
    fn key(&self) -> u64;
    /// Whether the slot holds nothing.
    fn is_vacant(&self) -> bool;
}

/// A key's hash: the top bits pick the shard, the low bits the home slot.
#[inline]
fn hash_of(key: u64) -> u64 {
    crate::ids::spread(key)
}

#[inline]
fn shard_of(hash: u64) -> usize {
    (hash >> (64 - SHARD_BITS)) as usize
}

/// One shard's table.
#[derive(Debug)]
pub(crate) struct Table<S> {
    /// A power of two long.
    slots: Vec<S>,
    len: usize,
}

impl<S: Slot> Table<S> {
    fn with_slots(slots: usize) -> Table<S> {
        debug_assert!(slots.is_power_of_two());
        Table { slots: std::iter::repeat_with(S::default).take(slots).collect(), len: 0 }
    }

    /// A table of `slots` slots holding `members` (occupied, distinct keys,
    /// few enough for the load limit).
    fn filled(slots: usize, members: impl IntoIterator<Item = S>) -> Table<S> {
        let mut table = Table::with_slots(slots);
        for slot in members {
            let hash = hash_of(slot.key());
            table.place(slot, hash);
            table.len += 1;
        }
        debug_assert!(table.len * 8 <= table.slots.len() * 5);
        table
    }

    /// The slot count that holds `len` members within the load limit.
    fn slots_for(len: usize) -> usize {
        (len.saturating_mul(8) / 5 + 1).next_power_of_two().max(INITIAL_SLOTS)
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The slot holding `key`, if any. `hash` is the key's.
    fn find(&self, key: u64, hash: u64) -> Option<usize> {
        let mask = self.mask();
        let mut index = hash as usize & mask;
        loop {
            let slot = &self.slots[index];
            if slot.is_vacant() {
                return None;
            }
            if slot.key() == key {
                return Some(index);
            }
            index = (index + 1) & mask;
        }
    }

    /// The slot at `index` (from [`Table::find`] or [`Table::insert_new`],
    /// with no insertion or removal since).
    fn at(&self, index: usize) -> &S {
        &self.slots[index]
    }

    /// The slot at `index`, to change it in place. It must keep its key and
    /// stay occupied; [`Table::remove_at`] empties slots.
    fn at_mut(&mut self, index: usize) -> &mut S {
        &mut self.slots[index]
    }

    /// Stores `slot`, whose key is known to be absent, growing first if the
    /// table would pass 5/8 full. Returns where it went and whether the
    /// table was reallocated.
    fn insert_new(&mut self, slot: S, hash: u64) -> (usize, bool) {
        debug_assert!(!slot.is_vacant());
        let grown = (self.len + 1) * 8 > self.slots.len() * 5;
        if grown {
            let members = std::mem::take(&mut self.slots);
            let doubled = members.len() * 2;
            *self = Table::filled(doubled, members.into_iter().filter(|slot| !slot.is_vacant()));
        }
        let index = self.place(slot, hash);
        self.len += 1;
        (index, grown)
    }

    /// Puts `slot` in the first vacant slot from its home on.
    fn place(&mut self, slot: S, hash: u64) -> usize {
        let mask = self.mask();
        let mut index = hash as usize & mask;
        while !self.slots[index].is_vacant() {
            index = (index + 1) & mask;
        }
        self.slots[index] = slot;
        index
    }

    /// Empties slot `hole` and moves later members of its probe run back,
    /// so every member stays reachable from its home without tombstones.
    /// Returns what the slot held.
    fn remove_at(&mut self, mut hole: usize) -> S {
        let removed = std::mem::take(&mut self.slots[hole]);
        let mask = self.mask();
        let mut next = hole;
        loop {
            next = (next + 1) & mask;
            if self.slots[next].is_vacant() {
                break;
            }
            let home = hash_of(self.slots[next].key()) as usize & mask;
            // `next` may fill the hole unless its home lies cyclically in
            // (hole, next]: then it must stay at or after its home.
            let distance_home = home.wrapping_sub(hole) & mask;
            let home_after_hole =
                distance_home != 0 && distance_home <= (next.wrapping_sub(hole) & mask);
            if !home_after_hole {
                self.slots.swap(hole, next);
                hole = next;
            }
        }
        self.len -= 1;
        removed
    }

    /// The occupied slots, in table order.
    fn members(&self) -> impl Iterator<Item = &S> {
        self.slots.iter().filter(|slot| !slot.is_vacant())
    }

    /// Keeps only the members for which `keep` says yes (asked once per
    /// member), then shrinks to fit. True when the table was rebuilt
    /// (reallocated): when anything was dropped.
    fn retain(&mut self, mut keep: impl FnMut(&S) -> bool) -> bool {
        // Which slots stay, in table order: the members `keep` accepts.
        let stays: Vec<bool> =
            self.slots.iter().map(|slot| !slot.is_vacant() && keep(slot)).collect();
        let kept = stays.iter().filter(|&&stays| stays).count();
        if kept == self.len {
            return false;
        }
        let slots = std::mem::take(&mut self.slots);
        *self = Table::filled(
            Table::<S>::slots_for(kept),
            slots.into_iter().zip(stays).filter_map(|(slot, stays)| stays.then_some(slot)),
        );
        true
    }
}

/// A table split in [`SHARDS`] shards, each behind its own lock.
/// `Send + Sync`; every operation but [`Shards::prefetch`] locks one shard
/// (or, for the whole-table operations, one shard at a time).
#[derive(Debug)]
pub(crate) struct Shards<S> {
    shards: Box<[CachePadded<Shard<S>>]>,
}

#[derive(Debug)]
struct Shard<S> {
    table: Mutex<Table<S>>,
    /// The table's slots and mask, mirrored under the lock whenever the
    /// table is reallocated, for [`Shards::prefetch`]: it reads them without
    /// the lock and only ever prefetches the address they give. A stale or
    /// mismatched pair yields a useless prefetch, never a read.
    slots_mirror: AtomicPtr<S>,
    mask_mirror: AtomicUsize,
}

impl<S> Shard<S> {
    /// Publishes the table's address for [`Shards::prefetch`]. Called with
    /// the lock held (the `&mut` proves it) after every reallocation.
    fn mirror(&self, table: &mut Table<S>) {
        self.slots_mirror.store(table.slots.as_mut_ptr(), Ordering::Relaxed);
        self.mask_mirror.store(table.slots.len() - 1, Ordering::Relaxed);
    }
}

impl<S: Slot> Default for Shards<S> {
    fn default() -> Self {
        let shards = (0..SHARDS)
            .map(|_| {
                let shard = Shard {
                    slots_mirror: AtomicPtr::new(std::ptr::null_mut()),
                    mask_mirror: AtomicUsize::new(0),
                    table: Mutex::new(Table::with_slots(INITIAL_SLOTS)),
                };
                shard.mirror(&mut shard.table.lock());
                CachePadded::new(shard)
            })
            .collect();
        Shards { shards }
    }
}

impl<S: Slot> Shards<S> {
    fn shard(&self, hash: u64) -> &Shard<S> {
        &self.shards[shard_of(hash)]
    }

    /// Asks the CPU to start loading `key`'s home line, so a lookup a little
    /// later finds it in cache. Takes no lock and reads no slot; a no-op off
    /// x86-64.
    #[inline]
    pub(crate) fn prefetch(&self, key: u64) {
        let hash = hash_of(key);
        let shard = self.shard(hash);
        let slots = shard.slots_mirror.load(Ordering::Relaxed);
        let mask = shard.mask_mirror.load(Ordering::Relaxed);
        crate::prefetch::line(slots.wrapping_add(hash as usize & mask).cast_const());
    }

    /// Locks `key`'s shard. The guard finds, inserts and removes `key` (and
    /// only `key`: other keys may live in other shards).
    #[inline]
    pub(crate) fn lock(&self, key: u64) -> Locked<'_, S> {
        let hash = hash_of(key);
        let shard = self.shard(hash);
        Locked { shard, table: shard.table.lock(), key, hash }
    }

    /// Keeps only the members for which `keep` says yes, one shard at a
    /// time.
    pub(crate) fn retain(&self, mut keep: impl FnMut(&S) -> bool) {
        for shard in self.shards.iter() {
            let mut table = shard.table.lock();
            if table.retain(&mut keep) {
                shard.mirror(&mut table);
            }
        }
    }

    /// Calls `visit` on every member, one shard at a time under its lock
    /// (not a consistent cut while other threads change the table).
    /// `visit` must not lock this table.
    pub(crate) fn for_each(&self, mut visit: impl FnMut(&S)) {
        for shard in self.shards.iter() {
            shard.table.lock().members().for_each(&mut visit);
        }
    }

    /// Number of members (one shard at a time).
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.table.lock().len).sum()
    }
}

/// One key's shard, locked: where that key is found, stored or removed.
pub(crate) struct Locked<'a, S> {
    shard: &'a Shard<S>,
    table: MutexGuard<'a, Table<S>>,
    key: u64,
    hash: u64,
}

impl<S: Slot> Locked<'_, S> {
    /// The slot holding the key, if any.
    #[inline]
    pub(crate) fn find(&self) -> Option<usize> {
        self.table.find(self.key, self.hash)
    }

    /// The slot at `index`, from [`Locked::find`] or [`Locked::insert`]
    /// with nothing removed or inserted since.
    #[inline]
    pub(crate) fn at(&self, index: usize) -> &S {
        self.table.at(index)
    }

    /// The slot at `index` (as for [`Locked::at`]), to change in place: it
    /// must keep the key and stay occupied.
    #[inline]
    pub(crate) fn at_mut(&mut self, index: usize) -> &mut S {
        self.table.at_mut(index)
    }

    /// Stores `slot`, which holds the key, known to be absent. Returns
    /// where it went.
    pub(crate) fn insert(&mut self, slot: S) -> usize {
        debug_assert_eq!(slot.key(), self.key);
        let (index, grown) = self.table.insert_new(slot, self.hash);
        if grown {
            self.shard.mirror(&mut self.table);
        }
        index
    }

    /// Removes the member at `index` (as for [`Locked::at`]) and returns
    /// its slot.
    pub(crate) fn remove(&mut self, index: usize) -> S {
        self.table.remove_at(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// A test member: a key and a value, vacant when the value is 0.
    #[derive(Debug, Clone, Copy, Default, PartialEq)]
    struct Pair {
        key: u64,
        value: u64,
    }

    impl Slot for Pair {
        fn key(&self) -> u64 {
            self.key
        }
        fn is_vacant(&self) -> bool {
            self.value == 0
        }
    }

    fn get(shards: &Shards<Pair>, key: u64) -> Option<u64> {
        let locked = shards.lock(key);
        locked.find().map(|index| locked.at(index).value)
    }

    /// Tables of 16 slots with every key landing in a handful of homes:
    /// long probe runs that wrap around the end, where backward shifting
    /// is easiest to get wrong.
    #[test]
    fn removal_keeps_wrapped_probe_runs_reachable() {
        let mut table = Table::<Pair>::with_slots(16);
        // Keys whose home is one of the last two slots of a 16-slot table.
        let keys: Vec<u64> =
            (0..).filter(|&key| hash_of(key) as usize & 15 >= 14).take(8).collect();
        for &key in &keys {
            table.insert_new(Pair { key, value: key + 1 }, hash_of(key));
        }
        assert_eq!(table.slots.len(), 16);
        for (removed, &key) in keys.iter().enumerate() {
            let index = table.find(key, hash_of(key)).unwrap();
            assert_eq!(table.remove_at(index), Pair { key, value: key + 1 });
            for &other in &keys[removed + 1..] {
                assert!(table.find(other, hash_of(other)).is_some());
            }
            assert!(table.find(key, hash_of(key)).is_none());
        }
        assert_eq!(table.len, 0);
    }

    #[test]
    fn grows_past_many_keys_and_prefetch_is_harmless() {
        let shards = Shards::<Pair>::default();
        for key in 0..20_000u64 {
            shards.prefetch(key);
            let mut locked = shards.lock(key);
            assert!(locked.find().is_none());
            let index = locked.insert(Pair { key, value: key + 1 });
            assert_eq!(locked.at(index).key, key);
        }
        assert_eq!(shards.len(), 20_000);
        for key in (0..20_000u64).step_by(7) {
            assert_eq!(get(&shards, key), Some(key + 1));
        }
        // u64::MAX and 0 are ordinary keys.
        shards.lock(u64::MAX).insert(Pair { key: u64::MAX, value: 1 });
        assert_eq!(get(&shards, u64::MAX), Some(1));
        shards.retain(|pair| pair.key % 2 == 0);
        assert_eq!(shards.len(), 10_000);
        assert!(get(&shards, 2).is_some() && get(&shards, 3).is_none());
        assert_eq!(get(&shards, u64::MAX), None);
        let mut seen = 0;
        shards.for_each(|pair| {
            assert!(pair.key % 2 == 0);
            seen += 1;
        });
        assert_eq!(seen, 10_000);
    }

    proptest! {
        /// One table against a `HashMap`, over keys that crowd its slots:
        /// inserts that grow it, removals from the middle of probe runs.
        #[test]
        fn a_table_matches_a_hash_map(ops in prop::collection::vec((any::<bool>(), 0u64..48), 0..300)) {
            let mut table = Table::<Pair>::with_slots(INITIAL_SLOTS);
            let mut model: HashMap<u64, u64> = HashMap::new();
            for (step, (insert, key)) in ops.into_iter().enumerate() {
                let value = step as u64 + 1;
                let found = table.find(key, hash_of(key));
                prop_assert_eq!(found.is_some(), model.contains_key(&key));
                match (insert, found) {
                    (true, Some(index)) => {
                        table.at_mut(index).value = value;
                        model.insert(key, value);
                    }
                    (true, None) => {
                        table.insert_new(Pair { key, value }, hash_of(key));
                        model.insert(key, value);
                    }
                    (false, Some(index)) => {
                        let removed = table.remove_at(index);
                        prop_assert_eq!(Some(removed.value), model.remove(&key));
                    }
                    (false, None) => {}
                }
                prop_assert_eq!(table.len, model.len());
                prop_assert!(table.len * 8 <= table.slots.len() * 5);
                for key in 0..48 {
                    let stored = table.find(key, hash_of(key)).map(|index| table.at(index).value);
                    prop_assert_eq!(stored, model.get(&key).copied());
                }
            }
        }

        /// The sharded table against a `HashMap`: inserts, updates,
        /// removals and sweeps.
        #[test]
        fn shards_match_a_hash_map(ops in prop::collection::vec((0u8..4, 0u64..64, 1u64..5), 0..400)) {
            let shards = Shards::<Pair>::default();
            let mut model: HashMap<u64, u64> = HashMap::new();
            for (op, key, value) in ops {
                match op {
                    0 | 1 => {
                        let mut locked = shards.lock(key);
                        match locked.find() {
                            Some(index) => locked.at_mut(index).value = value,
                            None => {
                                locked.insert(Pair { key, value });
                            }
                        }
                        model.insert(key, value);
                    }
                    2 => {
                        let mut locked = shards.lock(key);
                        if let Some(index) = locked.find() {
                            locked.remove(index);
                        }
                        model.remove(&key);
                    }
                    _ => {
                        shards.retain(|pair| !(pair.key + pair.value).is_multiple_of(3));
                        model.retain(|&key, &mut value| !(key + value).is_multiple_of(3));
                    }
                }
                prop_assert_eq!(shards.len(), model.len());
                for key in 0..64 {
                    prop_assert_eq!(get(&shards, key), model.get(&key).copied());
                }
            }
        }
    }
}
