//! [`Interner`]: one kind of id of one tenant, as router integers.
//!
//! # Layout
//!
//! A string id lives in one 64-byte entry of a hash table, with its hash and
//! its integer, and its text inline when it has at most [`INLINE`] bytes
//! (UUIDs, phone numbers and most platform ids do): finding an id costs the
//! table's control bytes and that one entry, and interning one allocates
//! nothing but table growth. The integer is
//! `TEXT_BASE + (generation << 32) + slot`: `slot` indexes a dense side array holding each slot's
//! generation and the hash of the id in it (so an integer finds its entry
//! without the text), and a released slot is reused, LIFO, with its
//! generation bumped, so an integer is never handed out twice while memory
//! stays proportional to the ids held.
//!
//! The table hashes with a per-process random key (`foldhash`): a platform
//! cannot choose ids that collide. Which integer an id gets depends only on
//! the calls made, never on hashing.

use std::fmt;
use std::sync::Arc;

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use serde::{Serialize, Serializer};

use crate::id::{Id, IdError, canonical_number, check_text};

/// The first integer handed to a string id. Decimal ids below it are their
/// own integers, so the two ranges never meet.
pub const TEXT_BASE: u64 = 1 << 63;

/// Ids of at most this many bytes are stored inline.
pub const INLINE: usize = 46;

/// A slot's generation stops here: the slot is then retired, never reused
/// (`generation << 32` must stay below `TEXT_BASE`).
const LAST_GENERATION: u32 = (1 << 31) - 1;

/// Ids of one kind as router integers; see the crate docs.
///
/// Not synchronised: one writer (a tenant's sequencer) owns it; wrap it in
/// a lock to share it with readers.
#[derive(Default)]
pub struct Interner {
    table: HashTable<Entry>,
    slots: Vec<Slot>,
    /// Released slots, reused last-in first-out.
    free: Vec<u32>,
    hasher: RandomState,
}

impl fmt::Debug for Interner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interner")
            .field("held", &self.table.len())
            .field("slots", &self.slots.len())
            .field("free", &self.free.len())
            .finish()
    }
}

/// One held string id.
#[repr(align(64))]
struct Entry {
    hash: u64,
    key: u64,
    text: Text,
}

/// An id's text: inline up to [`INLINE`] bytes.
enum Text {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl Text {
    fn new(text: &str) -> Text {
        if text.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            Text::Inline { len: text.len() as u8, bytes }
        } else {
            Text::Heap(text.into())
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Text::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Text::Heap(text) => text.as_bytes(),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // The bytes were copied from a `str` of exactly `len` bytes.
            Text::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Text::Heap(text) => text,
        }
    }
}

/// A slot of the side array: the generation of the integer it stands for
/// now, and (while held) the hash of its id.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    generation: u32,
    held: bool,
    hash: u64,
}

fn key_of(slot: u32, generation: u32) -> u64 {
    TEXT_BASE + (u64::from(generation) << 32) + u64::from(slot)
}

/// The slot and generation an integer names, if it is a string id's.
fn slot_of(key: u64) -> Option<(u32, u32)> {
    let offset = key.checked_sub(TEXT_BASE)?;
    Some((offset as u32, (offset >> 32) as u32))
}

/// An id as output carries it: the caller's own, cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Name {
    /// A decimal id.
    Number(u64),
    /// A string id.
    Text(Arc<str>),
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Name::Number(number) => write!(f, "{number}"),
            Name::Text(text) => f.write_str(text),
        }
    }
}

/// Always a string.
impl Serialize for Name {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Name::Number(number) => serializer.collect_str(number),
            Name::Text(text) => serializer.serialize_str(text),
        }
    }
}

/// An [`Interner`] as saved in a snapshot: enough to hand out the same
/// integers afterwards.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct SavedNames {
    /// Every slot's generation.
    pub generations: Vec<u32>,
    /// Released slots, in reuse order (the last is reused first).
    pub free: Vec<u32>,
    /// The string ids held, with their integers, in integer order.
    pub names: Vec<(u64, String)>,
}

impl Interner {
    fn hash(&self, text: &str) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(text)
    }

    /// The integer for `id`, handing out a new one to a string not held.
    pub fn intern(&mut self, id: &Id) -> u64 {
        self.intern_new(id).0
    }

    /// As [`Interner::intern`], saying whether the integer is new (the
    /// string was not held). Always `false` for a decimal id.
    pub fn intern_new(&mut self, id: &Id) -> (u64, bool) {
        match id {
            Id::Number(number) if *number < TEXT_BASE => (*number, false),
            Id::Number(number) => self.intern_text(&number.to_string()),
            Id::Text(text) => self.intern_str_new(text),
        }
    }

    /// As [`Interner::intern`], for a string id (not checked here).
    pub fn intern_str(&mut self, text: &str) -> u64 {
        self.intern_str_new(text).0
    }

    fn intern_str_new(&mut self, text: &str) -> (u64, bool) {
        match canonical_number(text) {
            Some(number) if number < TEXT_BASE => (number, false),
            _ => self.intern_text(text),
        }
    }

    fn intern_text(&mut self, text: &str) -> (u64, bool) {
        let hash = self.hash(text);
        if let Some(entry) =
            self.table.find(hash, |e| e.hash == hash && e.text.bytes() == text.as_bytes())
        {
            return (entry.key, false);
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        let state = &mut self.slots[slot as usize];
        state.held = true;
        state.hash = hash;
        let key = key_of(slot, state.generation);
        self.table.insert_unique(hash, Entry { hash, key, text: Text::new(text) }, |e| e.hash);
        (key, true)
    }

    /// The integer `id` has now, without handing out a new one: `None` for
    /// a string id not held.
    pub fn find(&self, id: &Id) -> Option<u64> {
        match id {
            Id::Number(number) if *number < TEXT_BASE => Some(*number),
            Id::Number(number) => self.find_text(&number.to_string()),
            Id::Text(text) => self.find_str(text),
        }
    }

    /// As [`Interner::find`], for a string id.
    pub fn find_str(&self, text: &str) -> Option<u64> {
        match canonical_number(text) {
            Some(number) if number < TEXT_BASE => Some(number),
            _ => self.find_text(text),
        }
    }

    fn find_text(&self, text: &str) -> Option<u64> {
        let hash = self.hash(text);
        self.table
            .find(hash, |e| e.hash == hash && e.text.bytes() == text.as_bytes())
            .map(|e| e.key)
    }

    /// Whether `key` is a string id's integer that is held now. A held
    /// integer names the same string as when it was handed out (released
    /// integers are never handed out again), so an integer found by
    /// [`Interner::find`] earlier, on another thread, still stands for its
    /// string exactly when this says so; costs one look at a dense array.
    pub fn holds(&self, key: u64) -> bool {
        self.held_slot(key).is_some()
    }

    /// The index of the slot `key` names, if it holds `key`'s generation
    /// now.
    fn held_slot(&self, key: u64) -> Option<usize> {
        let (slot, generation) = slot_of(key)?;
        let state = self.slots.get(slot as usize)?;
        (state.held && state.generation == generation).then_some(slot as usize)
    }

    fn entry(&self, key: u64) -> Option<&Entry> {
        let slot = self.held_slot(key)?;
        self.table.find(self.slots[slot].hash, |e| e.key == key)
    }

    /// The caller's id for `key`, borrowed: `None` for a string id's
    /// integer that is not (or no longer) held.
    pub fn name_ref(&self, key: u64) -> Option<NameRef<'_>> {
        if key < TEXT_BASE {
            Some(NameRef::Number(key))
        } else {
            self.entry(key).map(|e| NameRef::Text(e.text.as_str()))
        }
    }

    /// As [`Interner::name_ref`], owned.
    pub fn name(&self, key: u64) -> Option<Name> {
        self.name_ref(key).map(NameRef::to_name)
    }

    /// Forgets a string id's integer; the string gets a new one if it comes
    /// back. Returns whether something was held (always `false` for a
    /// decimal id, which holds nothing).
    pub fn release(&mut self, key: u64) -> bool {
        self.take(key).is_some()
    }

    /// As [`Interner::release`], handing back the string.
    pub fn take(&mut self, key: u64) -> Option<Box<str>> {
        let slot = self.held_slot(key)?;
        let state = &mut self.slots[slot];
        let found = self.table.find_entry(state.hash, |e| e.key == key).ok()?;
        let (entry, _) = found.remove();
        state.held = false;
        state.hash = 0;
        if state.generation < LAST_GENERATION {
            state.generation += 1;
            self.free.push(slot as u32);
        }
        Some(match entry.text {
            Text::Inline { .. } => entry.text.as_str().into(),
            Text::Heap(text) => text,
        })
    }

    /// String ids held now.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Holds no string id.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The string ids held and the slot state, for a snapshot.
    pub fn save(&self) -> SavedNames {
        let mut names: Vec<(u64, String)> =
            self.table.iter().map(|e| (e.key, e.text.as_str().to_owned())).collect();
        names.sort_unstable_by_key(|&(key, _)| key);
        SavedNames {
            generations: self.slots.iter().map(|s| s.generation).collect(),
            free: self.free.clone(),
            names,
        }
    }

    /// An interner as saved, checked: every name's integer names a slot at
    /// its generation, no slot or string twice, free slots hold nothing,
    /// every string a valid id that is not a decimal below [`TEXT_BASE`].
    ///
    /// # Errors
    /// A description of the first inconsistency.
    pub fn restore(saved: &SavedNames) -> Result<Interner, RestoreError> {
        let mut interner = Interner {
            slots: saved
                .generations
                .iter()
                .map(|&generation| Slot { generation, ..Slot::default() })
                .collect(),
            ..Interner::default()
        };
        for (key, text) in &saved.names {
            let bad = |message: String| RestoreError { key: *key, message };
            let (slot, generation) =
                slot_of(*key).ok_or_else(|| bad("below the string ids' range".to_owned()))?;
            let state = interner
                .slots
                .get(slot as usize)
                .copied()
                .ok_or_else(|| bad(format!("slot {slot} of {}", saved.generations.len())))?;
            if state.generation != generation || generation > LAST_GENERATION {
                return Err(bad(format!(
                    "generation {generation}, the slot is at {}",
                    state.generation
                )));
            }
            if state.held {
                return Err(bad("slot held twice".to_owned()));
            }
            check_text(text).map_err(|e: IdError| bad(e.to_string()))?;
            if canonical_number(text).is_some_and(|n| n < TEXT_BASE) {
                return Err(bad(format!("{text:?} is a number and needs no name")));
            }
            if interner.find_text(text).is_some() {
                return Err(bad(format!("{text:?} held twice")));
            }
            let hash = interner.hash(text);
            interner.slots[slot as usize].held = true;
            interner.slots[slot as usize].hash = hash;
            interner.table.insert_unique(
                hash,
                Entry { hash, key: *key, text: Text::new(text) },
                |e| e.hash,
            );
        }
        let mut seen = vec![false; interner.slots.len()];
        for &slot in &saved.free {
            let bad = |message: &str| RestoreError {
                key: key_of(slot, 0),
                message: format!("free slot {slot}: {message}"),
            };
            let state = interner.slots.get(slot as usize).ok_or_else(|| bad("no such slot"))?;
            if state.held || std::mem::replace(&mut seen[slot as usize], true) {
                return Err(bad("held, or listed twice"));
            }
        }
        interner.free = saved.free.clone();
        Ok(interner)
    }
}

/// A borrowed [`Name`]: what readers serialize without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRef<'a> {
    /// A decimal id.
    Number(u64),
    /// A string id.
    Text(&'a str),
}

impl NameRef<'_> {
    /// The owned name.
    pub fn to_name(self) -> Name {
        match self {
            NameRef::Number(number) => Name::Number(number),
            NameRef::Text(text) => Name::Text(Arc::from(text)),
        }
    }
}

impl fmt::Display for NameRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameRef::Number(number) => write!(f, "{number}"),
            NameRef::Text(text) => f.write_str(text),
        }
    }
}

/// Always a string.
impl Serialize for NameRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            NameRef::Number(number) => serializer.collect_str(number),
            NameRef::Text(text) => serializer.serialize_str(text),
        }
    }
}

/// A saved interner that is not consistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("saved id {key}: {message}")]
pub struct RestoreError {
    /// The integer at fault.
    pub key: u64,
    /// What is wrong.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Entry>(), 64);
    }

    #[test]
    fn numbers_are_themselves_and_strings_get_slots() {
        let mut ids = Interner::default();
        assert_eq!(ids.intern(&Id::Number(7)), 7);
        assert_eq!(ids.intern_str("7"), 7);
        assert_eq!(ids.intern_str("07"), TEXT_BASE, "07 is a string");
        assert_eq!(ids.intern_str("anna"), TEXT_BASE + 1);
        assert_eq!(ids.intern_str("07"), TEXT_BASE);
        let huge = u64::MAX;
        assert_eq!(ids.intern(&Id::Number(huge)), TEXT_BASE + 2);
        assert_eq!(ids.intern_str(&huge.to_string()), TEXT_BASE + 2, "the same id");
        assert_eq!(ids.name(TEXT_BASE + 2).unwrap().to_string(), huge.to_string());
        assert_eq!(ids.len(), 3);
        assert_eq!(ids.name(7), Some(Name::Number(7)));
        assert_eq!(ids.find_str("nobody"), None);
        assert_eq!(ids.find(&Id::Number(9)), Some(9));
        let long = "x".repeat(100);
        let key = ids.intern_str(&long);
        assert_eq!(ids.name_ref(key), Some(NameRef::Text(long.as_str())), "stored on the heap");
    }

    #[test]
    fn a_released_slot_comes_back_with_a_new_integer() {
        let mut ids = Interner::default();
        let first = ids.intern_str("c-1");
        assert!(ids.holds(first));
        assert_eq!(ids.take(first).as_deref(), Some("c-1"));
        assert!(!ids.holds(first), "released");
        assert!(!ids.release(first));
        assert_eq!(ids.name(first), None);
        assert_eq!(ids.find_str("c-1"), None);
        let again = ids.intern_str("c-2");
        assert_eq!(again, first + (1 << 32), "the slot, one generation on");
        assert_eq!(ids.name(first), None, "the old integer names nothing");
        assert!(!ids.holds(first) && ids.holds(again), "only the new generation is held");
        assert!(!ids.holds(7) && !ids.holds(TEXT_BASE + 9), "decimal ids and unused slots");
        assert!(!ids.release(5), "decimal ids hold nothing");
    }

    #[test]
    fn save_and_restore_keep_integers_slots_and_reuse_order() {
        let mut ids = Interner::default();
        for text in ["a", "b", "c", "d"] {
            ids.intern_str(text);
        }
        ids.release(TEXT_BASE + 1);
        ids.release(TEXT_BASE + 3);
        let saved = ids.save();
        assert_eq!(saved.names, [(TEXT_BASE, "a".into()), (TEXT_BASE + 2, "c".into())]);
        let mut restored = Interner::restore(&saved).unwrap();
        assert_eq!(restored.find_str("c"), Some(TEXT_BASE + 2));
        assert_eq!(restored.intern_str("e"), ids.intern_str("e"), "the same reuse order");
        assert_eq!(restored.intern_str("f"), ids.intern_str("f"));
        assert_eq!(restored.intern_str("g"), ids.intern_str("g"));
    }

    #[test]
    fn inconsistent_saves_are_refused() {
        let one = |generations: Vec<u32>, free: Vec<u32>, names: Vec<(u64, &str)>| SavedNames {
            generations,
            free,
            names: names.into_iter().map(|(k, t)| (k, t.to_owned())).collect(),
        };
        let cases = [
            (one(vec![0], vec![], vec![(TEXT_BASE + 1, "a")]), "slot 1"),
            (one(vec![0], vec![], vec![(3, "a")]), "range"),
            (one(vec![1], vec![], vec![(TEXT_BASE, "a")]), "generation"),
            (one(vec![0, 0], vec![], vec![(TEXT_BASE, "12")]), "number"),
            (one(vec![0], vec![], vec![(TEXT_BASE, "")]), "empty"),
            (one(vec![0, 0], vec![], vec![(TEXT_BASE, "a"), (TEXT_BASE + 1, "a")]), "twice"),
            (one(vec![0], vec![0], vec![(TEXT_BASE, "a")]), "free slot"),
            (one(vec![0, 0], vec![1, 1], vec![]), "twice"),
            (one(vec![0], vec![4], vec![]), "no such slot"),
        ];
        for (saved, expected) in cases {
            let error = Interner::restore(&saved).unwrap_err().to_string();
            assert!(error.contains(expected), "{error} should say {expected}");
        }
    }
}
