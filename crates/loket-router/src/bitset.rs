//! A fixed-width set of agent slots: the building block of the eligibility indexes.

use std::sync::atomic::{AtomicU64, Ordering};

/// A set of agent slot numbers, one bit each.
///
/// Eligibility is the intersection of several sets (available, speaks the
/// language, has each required skill), computed a word at a time.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SlotSet {
    words: Vec<u64>,
    /// Number of slots in the set (kept by `insert` and `remove`).
    members: u32,
}

impl std::fmt::Debug for SlotSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl SlotSet {
    /// An empty set.
    pub fn new() -> SlotSet {
        SlotSet { words: Vec::new(), members: 0 }
    }

    /// Adds `slot`, growing as needed.
    pub fn insert(&mut self, slot: u32) {
        let word = slot as usize / 64;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let bit = 1 << (slot % 64);
        self.members += u32::from(self.words[word] & bit == 0);
        self.words[word] |= bit;
    }

    /// Removes `slot`.
    pub fn remove(&mut self, slot: u32) {
        if let Some(word) = self.words.get_mut(slot as usize / 64) {
            let bit = 1 << (slot % 64);
            self.members -= u32::from(*word & bit != 0);
            *word &= !bit;
        }
    }

    /// Is `slot` in the set?
    #[inline]
    pub fn contains(&self, slot: u32) -> bool {
        self.words.get(slot as usize / 64).is_some_and(|w| w & (1 << (slot % 64)) != 0)
    }

    /// Starts loading the word that holds `slot` into the cache (see
    /// [`crate::prefetch::line`]); reads nothing.
    #[inline]
    pub(crate) fn prefetch(&self, slot: u32) {
        crate::prefetch::line(self.words.as_ptr().wrapping_add(slot as usize / 64));
    }

    /// Number of slots in the set.
    #[inline]
    pub fn len(&self) -> usize {
        self.members as usize
    }

    /// The slots, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words
            .iter()
            .enumerate()
            .flat_map(|(index, &word)| Ones { word, base: index as u32 * 64 })
    }

    /// The words, for intersecting.
    #[inline]
    pub(crate) fn words(&self) -> &[u64] {
        &self.words
    }
}

/// The set bits of one word.
pub(crate) struct Ones {
    pub(crate) word: u64,
    pub(crate) base: u32,
}

impl Iterator for Ones {
    type Item = u32;

    #[inline]
    fn next(&mut self) -> Option<u32> {
        if self.word == 0 {
            return None;
        }
        let bit = self.word.trailing_zeros();
        self.word &= self.word - 1;
        Some(self.base + bit)
    }
}

/// Calls `visit` for every slot in the intersection of `sets` (and of
/// `hint`, a set of atomic words read without ordering, if given), in
/// cyclic order from `start` (the members `>= start` ascending, then those
/// `< start` ascending), without allocating. Stops early when `visit`
/// returns `false`.
///
/// Each word is built from the sets in the order given, stopping at the
/// first that leaves it empty, and the hint last: pass the sparsest set
/// first and most words cost one load.
///
/// Always inlined, so that a caller's hint (or its absence) is a constant
/// and the per-word check for it folds away (selection scans with the idle
/// hint, then without).
#[inline(always)]
pub(crate) fn for_each_in_intersection_from(
    sets: &[&SlotSet],
    hint: Option<&[AtomicU64]>,
    start: u32,
    mut visit: impl FnMut(u32) -> bool,
) {
    let Some(width) = sets.iter().map(|s| s.words().len()).min() else {
        return;
    };
    let word_at = |index: usize| {
        let mut word = u64::MAX;
        for set in sets {
            word &= set.words()[index];
            if word == 0 {
                return 0;
            }
        }
        match hint {
            Some(words) => word & words.get(index).map_or(0, |w| w.load(Ordering::Relaxed)),
            None => word,
        }
    };
    let first = start as usize / 64;
    // Bits of the first word at or above `start` (all of them when the
    // start lies past the last word).
    let upper = if first < width { u64::MAX << (start % 64) } else { 0 };
    let passes = [(first, width, upper), (0, (first + 1).min(width), !upper)];
    for (from, to, first_mask) in passes {
        for index in from..to {
            let mut word = word_at(index);
            if index == first {
                word &= first_mask;
            }
            for slot in (Ones { word, base: index as u32 * 64 }) {
                if !visit(slot) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        #[test]
        fn intersection_matches_btreeset(
            a in proptest::collection::btree_set(0u32..500, 0..100),
            b in proptest::collection::btree_set(0u32..500, 0..100),
            c in proptest::collection::btree_set(0u32..500, 0..300),
        ) {
            let build = |s: &BTreeSet<u32>| { let mut set = SlotSet::new(); for &x in s { set.insert(x); } set };
            let (sa, sb, sc) = (build(&a), build(&b), build(&c));
            let mut got = Vec::new();
            for_each_in_intersection_from(&[&sa, &sb, &sc], None, 0, |slot| { got.push(slot); true });
            let want: Vec<u32> = a.iter().filter(|x| b.contains(x) && c.contains(x)).copied().collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn intersection_from_is_the_cyclic_order(
            a in proptest::collection::btree_set(0u32..500, 0..100),
            b in proptest::collection::btree_set(0u32..500, 0..300),
            start in 0u32..600,
        ) {
            let build = |s: &BTreeSet<u32>| { let mut set = SlotSet::new(); for &x in s { set.insert(x); } set };
            let (sa, sb) = (build(&a), build(&b));
            let mut got = Vec::new();
            for_each_in_intersection_from(&[&sa, &sb], None, start, |slot| { got.push(slot); true });
            let both: Vec<u32> = a.iter().filter(|x| b.contains(x)).copied().collect();
            let want: Vec<u32> = both.iter().filter(|&&x| x >= start).chain(both.iter().filter(|&&x| x < start)).copied().collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(sa.len(), a.len());
            prop_assert_eq!(sa.iter().collect::<Vec<_>>(), a.iter().copied().collect::<Vec<_>>());
        }
    }

    proptest! {
        #[test]
        fn len_counts_members_through_inserts_and_removes(
            ops in proptest::collection::vec((any::<bool>(), 0u32..300), 0..200),
        ) {
            let mut set = SlotSet::new();
            let mut model = BTreeSet::new();
            for (insert, slot) in ops {
                if insert {
                    set.insert(slot);
                    model.insert(slot);
                } else {
                    set.remove(slot);
                    model.remove(&slot);
                }
                prop_assert_eq!(set.len(), model.len());
            }
            let ones: usize = set.words().iter().map(|w| w.count_ones() as usize).sum();
            prop_assert_eq!(set.len(), ones);
        }

        #[test]
        fn the_hint_filters_whatever_the_set_order(
            a in proptest::collection::btree_set(0u32..300, 0..150),
            b in proptest::collection::btree_set(0u32..300, 0..150),
            hint in proptest::collection::btree_set(0u32..300, 0..150),
            start in 0u32..320,
        ) {
            let build = |s: &BTreeSet<u32>| { let mut set = SlotSet::new(); for &x in s { set.insert(x); } set };
            let (sa, sb) = (build(&a), build(&b));
            let words: Vec<AtomicU64> = (0..5)
                .map(|i| AtomicU64::new(hint.iter().filter(|&&x| x / 64 == i).fold(0, |w, &x| w | 1 << (x % 64))))
                .collect();
            let run = |sets: &[&SlotSet]| {
                let mut got = Vec::new();
                for_each_in_intersection_from(sets, Some(&words), start, |slot| { got.push(slot); true });
                got
            };
            let all: Vec<u32> = a.iter().filter(|x| b.contains(x) && hint.contains(x)).copied().collect();
            let want: Vec<u32> = all.iter().filter(|&&x| x >= start).chain(all.iter().filter(|&&x| x < start)).copied().collect();
            prop_assert_eq!(run(&[&sa, &sb]), want.clone());
            prop_assert_eq!(run(&[&sb, &sa]), want);
        }
    }

    #[test]
    fn remove_and_contains() {
        let mut set = SlotSet::new();
        set.insert(3);
        set.insert(130);
        assert!(set.contains(130) && set.contains(3) && !set.contains(4));
        set.remove(130);
        set.remove(9999);
        assert!(!set.contains(130));
        assert_eq!(set.len(), 1);
        let mut stopped = Vec::new();
        set.insert(5);
        for_each_in_intersection_from(&[&set], None, 0, |slot| {
            stopped.push(slot);
            false
        });
        assert_eq!(stopped, vec![3]);
    }
}
