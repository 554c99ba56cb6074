//! The aggregates: per 15-minute slot, per group, the [`Measures`].

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::group::GroupKey;
use crate::measures::Measures;

/// The groups of one slot, in the order they first appeared, with an index
/// by key. A conversation keeps the positions of its groups, so counting a
/// measure costs no lookup.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct SlotGroups {
    entries: Vec<(GroupKey, Measures)>,
    index: FxHashMap<GroupKey, u32>,
}

impl SlotGroups {
    /// The position of `key`'s measures, added (empty) when missing.
    pub(crate) fn position(&mut self, key: GroupKey) -> u32 {
        if let Some(&position) = self.index.get(&key) {
            return position;
        }
        let position = self.entries.len() as u32;
        self.entries.push((key, Measures::default()));
        self.index.insert(key, position);
        position
    }

    /// The measures at `position` (`None` only for a position no call to
    /// [`SlotGroups::position`] gave, e.g. from a damaged snapshot).
    pub(crate) fn at(&mut self, position: u32) -> Option<&mut Measures> {
        self.entries.get_mut(position as usize).map(|(_, measures)| measures)
    }

    /// Every group and its measures.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&GroupKey, &Measures)> {
        self.entries.iter().map(|(key, measures)| (key, measures))
    }
}

impl Serialize for SlotGroups {
    /// The entries in order; the index is rebuilt when read.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.entries.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SlotGroups {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<SlotGroups, D::Error> {
        let entries: Vec<(GroupKey, Measures)> = Vec::deserialize(deserializer)?;
        let mut index = FxHashMap::default();
        for (position, (key, _)) in entries.iter().enumerate() {
            if index.insert(*key, position as u32).is_some() {
                return Err(serde::de::Error::custom("a group appears twice in a slot"));
            }
        }
        Ok(SlotGroups { entries, index })
    }
}

/// Every retained slot's groups.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Store {
    slots: BTreeMap<u64, SlotGroups>,
}

impl Store {
    /// The groups of `slot`, created when missing.
    pub(crate) fn slot_mut(&mut self, slot: u64) -> &mut SlotGroups {
        self.slots.entry(slot).or_default()
    }

    /// The groups of `slot` if it is retained.
    pub(crate) fn existing_slot_mut(&mut self, slot: u64) -> Option<&mut SlotGroups> {
        self.slots.get_mut(&slot)
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
        self.slots.range(from..to).map(|(&slot, groups)| (slot, groups))
    }

    /// How many slots are held.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }
}
