//! The customer histories behind affinity, one cache line per customer in
//! a [`crate::table`].
//!
//! A new conversation looks up its customer's history before anything else
//! can be decided, and with a web shop's customers the table is far larger
//! than the CPU caches: the lookup is a cache miss on the hot path. Each
//! customer's key and history share one 64-byte line, so the lookup costs
//! one miss, and [`CustomerHistories::prefetch`] starts it before the
//! router needs it.

use crate::history::History;
use crate::ids::CustomerId;
use crate::table::{Shards, Slot};

/// One customer's line: its id and history. A slot whose history is empty
/// is vacant (a stored history always names at least one agent).
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct CustomerSlot {
    customer: u64,
    history: History,
}

const _: () = assert!(std::mem::size_of::<CustomerSlot>() == 64);

impl Slot for CustomerSlot {
    fn key(&self) -> u64 {
        self.customer
    }

    fn is_vacant(&self) -> bool {
        self.history.is_empty()
    }
}

/// The customers' histories, most recent agent first. `Send + Sync`; every
/// operation but [`CustomerHistories::prefetch`] locks one shard (or, for
/// the whole-table operations, one shard at a time).
#[derive(Debug, Default)]
pub(crate) struct CustomerHistories {
    table: Shards<CustomerSlot>,
}

impl CustomerHistories {
    /// Asks the CPU to start loading `customer`'s home line, so a lookup a
    /// little later finds it in cache. Takes no lock and reads no slot.
    #[inline]
    pub(crate) fn prefetch(&self, customer: CustomerId) {
        self.table.prefetch(customer.0);
    }

    /// A copy of `customer`'s history, if it has one.
    pub(crate) fn get(&self, customer: CustomerId) -> Option<History> {
        let locked = self.table.lock(customer.0);
        locked.find().map(|index| locked.at(index).history)
    }

    /// Applies `change` to `customer`'s history, starting from an empty one
    /// if it has none. A history left empty is not stored.
    pub(crate) fn update(&self, customer: CustomerId, change: impl FnOnce(&mut History)) {
        let mut locked = self.table.lock(customer.0);
        match locked.find() {
            Some(index) => {
                change(&mut locked.at_mut(index).history);
                if locked.at(index).is_vacant() {
                    locked.remove(index);
                }
            }
            None => {
                let mut history = History::default();
                change(&mut history);
                if !history.is_empty() {
                    locked.insert(CustomerSlot { customer: customer.0, history });
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
        let mut locked = self.table.lock(customer.0);
        if let Some(index) = locked.find() {
            locked.remove(index);
        }
    }

    /// Keeps only the customers for which `keep` says yes, one shard at a
    /// time.
    pub(crate) fn retain(&self, mut keep: impl FnMut(CustomerId, &History) -> bool) {
        self.table.retain(|slot| keep(CustomerId(slot.customer), &slot.history));
    }

    /// Every customer with its history, in no particular order (one shard
    /// at a time: not a consistent cut while other threads route).
    pub(crate) fn to_vec(&self) -> Vec<(CustomerId, History)> {
        let mut all = Vec::new();
        self.table.for_each(|slot| all.push((CustomerId(slot.customer), slot.history)));
        all
    }

    /// Number of customers with a history.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
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

    proptest! {
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
