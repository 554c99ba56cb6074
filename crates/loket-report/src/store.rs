//! The aggregates: per 15-minute slot, per group, the [`Measures`].

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::group::GroupKey;
use crate::measures::Measures;

/// The groups of one slot.
pub(crate) type SlotGroups = FxHashMap<GroupKey, Measures>;

/// Every retained slot's groups.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Store {
    slots: BTreeMap<u64, Slot>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
struct Slot {
    #[serde(with = "crate::pairs")]
    groups: SlotGroups,
}

impl Store {
    /// The groups of `slot`, created when missing.
    pub(crate) fn slot_mut(&mut self, slot: u64) -> &mut SlotGroups {
        &mut self.slots.entry(slot).or_default().groups
    }

    /// The groups of `slot` if it is retained.
    pub(crate) fn existing_slot_mut(&mut self, slot: u64) -> Option<&mut SlotGroups> {
        self.slots.get_mut(&slot).map(|slot| &mut slot.groups)
    }

    /// Drops every slot before `first_kept`.
    pub(crate) fn drop_before(&mut self, first_kept: u64) {
        while let Some(entry) = self.slots.first_entry() {
            if *entry.key() >= first_kept {
                break;
            }
            entry.remove();
        }
    }

    /// The slots in `from..to`, in order.
    pub(crate) fn range(&self, from: u64, to: u64) -> impl Iterator<Item = (u64, &SlotGroups)> {
        self.slots.range(from..to).map(|(&slot, groups)| (slot, &groups.groups))
    }

    /// How many slots are held.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }
}
