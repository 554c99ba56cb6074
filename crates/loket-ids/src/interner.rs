//! [`Interner`]: one kind of id of one tenant, as router integers.

use std::fmt;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::{Serialize, Serializer};

use crate::id::{ArchivedId, Id, IdError, canonical_number, check_text};

/// The first integer handed to a string id. Decimal ids below it are their
/// own integers, so the two ranges never meet.
pub const TEXT_BASE: u64 = 1 << 63;

/// Ids of one kind as router integers; see the crate docs.
///
/// Not synchronised: one writer (a tenant's sequencer) owns it; wrap it in
/// a lock to share it with readers.
#[derive(Debug, Default)]
pub struct Interner {
    by_text: FxHashMap<Arc<str>, u64>,
    by_key: FxHashMap<u64, Arc<str>>,
    /// String ids handed an integer so far (released ones included): the
    /// next one gets `TEXT_BASE + next`.
    next: u64,
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

/// An [`Interner`] as saved in a snapshot.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct SavedNames {
    /// String ids handed an integer so far.
    pub next: u64,
    /// The string ids held, with their integers, in integer order.
    pub names: Vec<(u64, String)>,
}

impl Interner {
    /// The integer for `id`, handing out the next one to a string seen for
    /// the first time.
    pub fn intern(&mut self, id: &Id) -> u64 {
        match id {
            Id::Number(number) if *number < TEXT_BASE => *number,
            Id::Number(number) => self.intern_text(&number.to_string()),
            Id::Text(text) => self.intern_str(text),
        }
    }

    /// As [`Interner::intern`], on an archived id (no copy unless new).
    pub fn intern_archived(&mut self, id: &ArchivedId) -> u64 {
        match id {
            ArchivedId::Number(number) => self.intern(&Id::Number(number.to_native())),
            ArchivedId::Text(text) => self.intern_str(text.as_str()),
        }
    }

    /// As [`Interner::intern`], for a string id (not checked here).
    pub fn intern_str(&mut self, text: &str) -> u64 {
        match canonical_number(text) {
            Some(number) if number < TEXT_BASE => number,
            _ => self.intern_text(text),
        }
    }

    fn intern_text(&mut self, text: &str) -> u64 {
        self.intern_text_new(text).0
    }

    /// As [`Interner::intern`], saying whether the integer is new: a
    /// string seen for the first time since it was last released. Always
    /// `false` for a decimal id.
    pub fn intern_new(&mut self, id: &Id) -> (u64, bool) {
        match id {
            Id::Number(number) if *number < TEXT_BASE => (*number, false),
            Id::Number(number) => self.intern_text_new(&number.to_string()),
            Id::Text(text) => match canonical_number(text) {
                Some(number) if number < TEXT_BASE => (number, false),
                _ => self.intern_text_new(text),
            },
        }
    }

    fn intern_text_new(&mut self, text: &str) -> (u64, bool) {
        if let Some(&key) = self.by_text.get(text) {
            return (key, false);
        }
        let key = TEXT_BASE + self.next;
        self.next += 1;
        let text: Arc<str> = Arc::from(text);
        self.by_text.insert(text.clone(), key);
        self.by_key.insert(key, text);
        (key, true)
    }

    /// The integer `id` has now, without handing out a new one: `None` for
    /// a string id not held.
    pub fn find(&self, id: &Id) -> Option<u64> {
        match id {
            Id::Number(number) if *number < TEXT_BASE => Some(*number),
            Id::Number(number) => self.by_text.get(number.to_string().as_str()).copied(),
            Id::Text(text) => self.find_str(text),
        }
    }

    /// As [`Interner::find`], for a string id.
    pub fn find_str(&self, text: &str) -> Option<u64> {
        match canonical_number(text) {
            Some(number) if number < TEXT_BASE => Some(number),
            _ => self.by_text.get(text).copied(),
        }
    }

    /// The caller's id for `key`: `None` for a string id's integer that is
    /// not (or no longer) held.
    pub fn name(&self, key: u64) -> Option<Name> {
        if key < TEXT_BASE {
            Some(Name::Number(key))
        } else {
            self.by_key.get(&key).cloned().map(Name::Text)
        }
    }

    /// Forgets a string id's integer; the string gets a new one if it comes
    /// back. Returns whether something was held (always `false` for a
    /// decimal id, which holds nothing).
    pub fn release(&mut self, key: u64) -> bool {
        self.take(key).is_some()
    }

    /// As [`Interner::release`], handing back the string.
    pub fn take(&mut self, key: u64) -> Option<Arc<str>> {
        let text = self.by_key.remove(&key)?;
        self.by_text.remove(&text);
        Some(text)
    }

    /// String ids held now.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Holds no string id.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The string ids held, for a snapshot.
    pub fn save(&self) -> SavedNames {
        let mut names: Vec<(u64, String)> =
            self.by_key.iter().map(|(&key, text)| (key, text.to_string())).collect();
        names.sort_unstable_by_key(|&(key, _)| key);
        SavedNames { next: self.next, names }
    }

    /// An interner as saved, checked: every integer within what was handed
    /// out, no integer or string twice, every string a valid id that is not
    /// a decimal below [`TEXT_BASE`].
    ///
    /// # Errors
    /// A description of the first inconsistency.
    pub fn restore(saved: &SavedNames) -> Result<Interner, RestoreError> {
        let mut interner = Interner { next: saved.next, ..Interner::default() };
        for (key, text) in &saved.names {
            let bad = |message: String| RestoreError { key: *key, message };
            if *key < TEXT_BASE || key - TEXT_BASE >= saved.next {
                return Err(bad(format!("outside the {} handed out", saved.next)));
            }
            check_text(text).map_err(|e: IdError| bad(e.to_string()))?;
            if canonical_number(text).is_some_and(|n| n < TEXT_BASE) {
                return Err(bad(format!("{text:?} is a number and needs no name")));
            }
            let text: Arc<str> = Arc::from(text.as_str());
            if interner.by_key.insert(*key, text.clone()).is_some()
                || interner.by_text.insert(text, *key).is_some()
            {
                return Err(bad("held twice".to_owned()));
            }
        }
        Ok(interner)
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
    fn numbers_are_themselves_and_strings_count_up() {
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
    }

    #[test]
    fn a_released_string_comes_back_with_a_new_integer() {
        let mut ids = Interner::default();
        let first = ids.intern_str("c-1");
        assert!(ids.release(first));
        assert!(!ids.release(first));
        assert_eq!(ids.name(first), None);
        assert_eq!(ids.find_str("c-1"), None);
        assert_eq!(ids.intern_str("c-1"), first + 1);
        assert!(!ids.release(5), "decimal ids hold nothing");
    }

    #[test]
    fn save_and_restore_keep_integers_and_the_counter() {
        let mut ids = Interner::default();
        for text in ["a", "b", "c"] {
            ids.intern_str(text);
        }
        ids.release(TEXT_BASE + 1);
        let saved = ids.save();
        assert_eq!(saved.names, [(TEXT_BASE, "a".into()), (TEXT_BASE + 2, "c".into())]);
        let mut restored = Interner::restore(&saved).unwrap();
        assert_eq!(restored.find_str("c"), Some(TEXT_BASE + 2));
        assert_eq!(restored.intern_str("b"), TEXT_BASE + 3);
    }

    #[test]
    fn inconsistent_saves_are_refused() {
        let cases = [
            (SavedNames { next: 1, names: vec![(TEXT_BASE + 1, "a".into())] }, "outside"),
            (SavedNames { next: 1, names: vec![(3, "a".into())] }, "outside"),
            (SavedNames { next: 2, names: vec![(TEXT_BASE, "12".into())] }, "number"),
            (SavedNames { next: 2, names: vec![(TEXT_BASE, String::new())] }, "empty"),
            (
                SavedNames {
                    next: 2,
                    names: vec![(TEXT_BASE, "a".into()), (TEXT_BASE + 1, "a".into())],
                },
                "twice",
            ),
            (
                SavedNames {
                    next: 2,
                    names: vec![(TEXT_BASE, "a".into()), (TEXT_BASE, "b".into())],
                },
                "twice",
            ),
        ];
        for (saved, expected) in cases {
            let error = Interner::restore(&saved).unwrap_err().to_string();
            assert!(error.contains(expected), "{error} should say {expected}");
        }
    }
}
