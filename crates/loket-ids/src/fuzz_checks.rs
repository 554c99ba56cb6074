//! Checks for the `ids` fuzz target; not part of the API.

use std::collections::BTreeMap;

use crate::{Id, Interner, TEXT_BASE};

/// Runs arbitrary bytes as a program of interner operations against a naive
/// model (a list of live strings with their integers) and as strings to
/// parse. Panics on any disagreement; never on any input otherwise.
///
/// Each operation is one byte of opcode and, for those that take one, one
/// byte of length and that many bytes of text (lossily UTF-8).
pub fn ids(data: &[u8]) {
    let mut interner = Interner::default();
    // The model: live string ids and their integers, and the count handed out.
    let mut live: BTreeMap<String, u64> = BTreeMap::new();
    let mut next = 0u64;
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
                    _ => *live.entry(text.clone()).or_insert_with(|| {
                        next += 1;
                        TEXT_BASE + next - 1
                    }),
                };
                assert_eq!(key, expected, "{text:?}");
                assert_eq!(interner.name(key).map(|n| n.to_string()), Some(text));
            }
            1 => {
                rest = tail;
                let found = interner.find_str(&text);
                let expected = match crate::id::canonical_number(&text) {
                    Some(n) if n < TEXT_BASE => Some(n),
                    _ => live.get(&text).copied(),
                };
                assert_eq!(found, expected, "{text:?}");
            }
            2 => {
                // Release the oldest live string, if any.
                if let Some((text, key)) = live.iter().next().map(|(t, k)| (t.clone(), *k)) {
                    assert!(interner.release(key));
                    live.remove(&text);
                    assert_eq!(interner.find_str(&text), None);
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
                    let text = number.to_string();
                    let expected = *live.entry(text).or_insert_with(|| {
                        next += 1;
                        TEXT_BASE + next - 1
                    });
                    assert_eq!(key, expected);
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
        assert_eq!(interner.len(), live.len());
    }
}
