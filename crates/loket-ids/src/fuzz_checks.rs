//! Checks for the `ids` fuzz target; not part of the API.

use std::collections::BTreeMap;

use crate::{Id, Interner, TEXT_BASE};

/// The interner's allocation rule, written plainly: a string not held takes
/// the most recently freed slot (else a new one) at that slot's generation;
/// releasing bumps the generation and frees the slot.
#[derive(Default)]
struct Model {
    live: BTreeMap<String, u64>,
    generations: Vec<u64>,
    free: Vec<u64>,
}

impl Model {
    fn intern(&mut self, text: &str) -> u64 {
        if let Some(&key) = self.live.get(text) {
            return key;
        }
        let slot = self.free.pop().unwrap_or_else(|| {
            self.generations.push(0);
            self.generations.len() as u64 - 1
        });
        let key = TEXT_BASE + (self.generations[slot as usize] << 32) + slot;
        self.live.insert(text.to_owned(), key);
        key
    }

    fn release(&mut self, text: &str) -> u64 {
        let key = self.live.remove(text).expect("held");
        let slot = (key - TEXT_BASE) & 0xFFFF_FFFF;
        self.generations[slot as usize] += 1;
        self.free.push(slot);
        key
    }
}

/// Runs arbitrary bytes as a program of interner operations against a naive
/// model (a list of live strings with their integers) and as strings to
/// parse. Panics on any disagreement; never on any input otherwise.
///
/// Each operation is one byte of opcode and, for those that take one, one
/// byte of length and that many bytes of text (lossily UTF-8).
pub fn ids(data: &[u8]) {
    let mut interner = Interner::default();
    let mut model = Model::default();
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        let (text, tail) = match rest.split_first() {
            Some((&len, tail)) => tail.split_at(usize::from(len).min(tail.len())),
            None => (&[][..], rest),
        };
        let text = String::from_utf8_lossy(text).into_owned();
        match op % 6 {
            0 => {
                rest = tail;
                let parsed = text.parse::<Id>();
                let json = serde_json::from_str::<Id>(&serde_json::to_string(&text).unwrap());
                assert_eq!(parsed.is_ok(), json.is_ok(), "{text:?}");
                let Ok(id) = parsed else { continue };
                let key = interner.intern(&id);
                let expected = match crate::id::canonical_number(&text) {
                    Some(n) if n < TEXT_BASE => n,
                    _ => model.intern(&text),
                };
                assert_eq!(key, expected, "{text:?}");
                assert_eq!(interner.name(key).map(|n| n.to_string()), Some(text));
            }
            1 => {
                rest = tail;
                let found = interner.find_str(&text);
                let expected = match crate::id::canonical_number(&text) {
                    Some(n) if n < TEXT_BASE => Some(n),
                    _ => model.live.get(&text).copied(),
                };
                assert_eq!(found, expected, "{text:?}");
                if let Some(key) = found {
                    assert_eq!(interner.holds(key), key >= TEXT_BASE, "{text:?}");
                }
            }
            2 => {
                // Release the first live string in text order, if any.
                if let Some(text) = model.live.keys().next().cloned() {
                    let key = model.release(&text);
                    assert!(interner.release(key));
                    assert!(!interner.release(key), "released once");
                    assert!(!interner.holds(key), "released integers are not held");
                    assert_eq!(interner.find_str(&text), None);
                    assert_eq!(interner.name(key), None);
                }
            }
            3 => {
                let number = u64::from_le_bytes(
                    text.as_bytes()
                        .iter()
                        .chain([0u8; 8].iter())
                        .take(8)
                        .copied()
                        .collect::<Vec<_>>()
                        .try_into()
                        .unwrap_or([0; 8]),
                );
                rest = tail;
                let key = interner.intern(&Id::Number(number));
                if number < TEXT_BASE {
                    assert_eq!(key, number);
                } else {
                    assert_eq!(key, model.intern(&number.to_string()));
                }
            }
            4 => {
                let restored = Interner::restore(&interner.save()).expect("a save restores");
                assert_eq!(restored.save(), interner.save());
                interner = restored;
            }
            _ => {
                rest = tail;
                let _ = serde_json::from_str::<Id>(&text);
            }
        }
        assert_eq!(interner.len(), model.live.len());
    }
}
