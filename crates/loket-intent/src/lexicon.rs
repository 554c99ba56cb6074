//! One hash table for the lexicons (token signals, token pairs, language
//! votes), built once on first use: a token costs one hash and usually one
//! probe, where a `match` over hundreds of strings costs a chain of
//! comparisons. [`analyse`] does signals and language in one pass.

use std::sync::LazyLock;

use crate::language::{self, DUTCH_WORDS, ENGLISH_WORDS, Language};
use crate::signals::{self, PAIR_SIGNALS, Signals, TOKEN_SIGNALS};

/// What the lexicon knows about a token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Signals the token sets.
    pub signals: Signals,
    /// Language vote: 1 Dutch, -1 English, 0 none.
    pub language: i8,
    /// The token is the first of a listed pair.
    pub starts_pair: bool,
}

/// A key: a token, or two tokens (`first`, then `second` after a space).
#[derive(Clone, Copy)]
struct Key {
    first: &'static str,
    second: Option<&'static str>,
}

struct Table {
    /// Open addressing, linear probing; `None` is an empty slot.
    slots: Vec<Option<(u64, Key, Entry)>>,
    mask: usize,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Hash of a token; a pair hashes as the token, a space, and the second token.
fn pair_hash(first_hash: u64, second: &[u8]) -> u64 {
    fnv(fnv(first_hash, b" "), second)
}

fn slot(h: u64, mask: usize) -> usize {
    (h ^ (h >> 29)) as usize & mask
}

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    let words = TOKEN_SIGNALS.iter().map(|(_, w)| w.len()).sum::<usize>()
        + PAIR_SIGNALS.iter().map(|(_, w)| w.len()).sum::<usize>()
        + DUTCH_WORDS.len()
        + ENGLISH_WORDS.len();
    let size = (words * 4).next_power_of_two();
    let mut table = Table { slots: vec![None; size], mask: size - 1 };
    let mut insert = |key: Key, update: &dyn Fn(&mut Entry)| {
        let h = match key.second {
            None => fnv(FNV_OFFSET, key.first.as_bytes()),
            Some(second) => pair_hash(fnv(FNV_OFFSET, key.first.as_bytes()), second.as_bytes()),
        };
        let mut i = slot(h, table.mask);
        loop {
            match &mut table.slots[i] {
                Some((_, k, entry)) if k.first == key.first && k.second == key.second => {
                    update(entry);
                    return;
                }
                Some(_) => i = (i + 1) & table.mask,
                empty @ None => {
                    let mut entry = Entry::default();
                    update(&mut entry);
                    *empty = Some((h, key, entry));
                    return;
                }
            }
        }
    };
    let single = |w| Key { first: w, second: None };
    for &(signal, list) in TOKEN_SIGNALS {
        for &w in list {
            insert(single(w), &|e| e.signals |= signal);
        }
    }
    for &(signal, list) in PAIR_SIGNALS {
        for &(a, b) in list {
            let key = Key { first: a, second: Some(b) };
            insert(key, &|e| e.signals |= signal);
            insert(single(a), &|e| e.starts_pair = true);
        }
    }
    for &w in DUTCH_WORDS {
        insert(single(w), &|e| e.language = 1);
    }
    for &w in ENGLISH_WORDS {
        insert(single(w), &|e| e.language = -1);
    }
    table
});

fn probe(h: u64, matches: impl Fn(&Key) -> bool) -> Entry {
    let table = &*TABLE;
    let mut i = slot(h, table.mask);
    // The table is at most a quarter full, so probing ends at an empty slot.
    loop {
        match &table.slots[i] {
            None => return Entry::default(),
            // Compare the full hash first: most mismatches end there.
            Some((kh, k, entry)) if *kh == h && matches(k) => return *entry,
            Some(_) => i = (i + 1) & table.mask,
        }
    }
}

/// Looks a normalised token up.
#[cfg(test)]
pub(crate) fn lookup(token: &str) -> Entry {
    probe(fnv(FNV_OFFSET, token.as_bytes()), |k| k.second.is_none() && k.first == token)
}

/// What one token says on its own: the signals of its lexicon entry and
/// its stems, and its language votes (in quarter votes: 4 for a listed
/// word, letter patterns otherwise). A pure function of the token, so the
/// scorer may cache it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TokenFacts {
    pub signals: Signals,
    pub nl: i16,
    pub en: i16,
    /// The token is the first of a listed pair (else no pair starting with
    /// it needs a lookup).
    pub starts_pair: bool,
}

/// The hash the lexicon uses for a token: 64-bit FNV-1a, the same function
/// and seed as the word features' token hash, so the scorer hashes once.
pub(crate) fn token_hash(token: &[u8]) -> u64 {
    fnv(FNV_OFFSET, token)
}

/// The [`TokenFacts`] of a normalised token whose [`token_hash`] is `h`.
pub(crate) fn token_facts(token: &[u8], h: u64) -> TokenFacts {
    let entry = probe(h, |k| k.second.is_none() && k.first.as_bytes() == token);
    // Tokens of normalised text are UTF-8 (cut at ASCII spaces).
    let stems = std::str::from_utf8(token).map_or(Signals::NONE, signals::stem_signals);
    let (nl, en) = match entry.language {
        1 => (4, 0),
        -1 => (0, 4),
        _ => language::pattern_votes(token),
    };
    TokenFacts {
        signals: entry.signals | stems,
        nl: nl.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16,
        en: en.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16,
        starts_pair: entry.starts_pair,
    }
}

/// Signals and language of a message, fed one token at a time (in order)
/// with [`Analysis::push`]: the token's facts plus the pairs it forms with
/// the token before it.
#[derive(Debug, Default)]
pub(crate) struct Analysis<'t> {
    signals: Signals,
    nl: i32,
    en: i32,
    /// The previous token and its hash, when it starts a listed pair.
    prev: Option<(&'t [u8], u64)>,
}

impl<'t> Analysis<'t> {
    /// Adds the next token, its [`token_hash`] and its [`token_facts`].
    #[inline(always)]
    pub(crate) fn push(&mut self, token: &'t [u8], h: u64, facts: TokenFacts) {
        self.signals |= facts.signals;
        self.nl += i32::from(facts.nl);
        self.en += i32::from(facts.en);
        if let Some((p, ph)) = self.prev {
            let pair = probe(pair_hash(ph, token), |k| {
                k.first.as_bytes() == p && k.second.is_some_and(|s| s.as_bytes() == token)
            });
            self.signals |= pair.signals;
        }
        self.prev = facts.starts_pair.then_some((token, h));
    }

    /// The message's signals and language.
    pub(crate) fn finish(&self) -> (Signals, Language) {
        (self.signals, language::decide(self.nl, self.en))
    }
}

/// Signals and language of a normalised message, in one pass over its tokens.
pub(crate) fn analyse(normalized: &str) -> (Signals, Language) {
    let mut analysis = Analysis::default();
    for token in normalized.as_bytes().split(|&b| b == b' ') {
        if token.is_empty() {
            continue;
        }
        let h = token_hash(token);
        analysis.push(token, h, token_facts(token, h));
    }
    analysis.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_word_is_found() {
        for &(signal, list) in TOKEN_SIGNALS {
            for w in list {
                assert!(lookup(w).signals.contains(signal), "{w}");
            }
        }
        for w in DUTCH_WORDS {
            assert_eq!(lookup(w).language, 1, "{w}");
        }
        for w in ENGLISH_WORDS {
            assert_eq!(lookup(w).language, -1, "{w}");
        }
        for &(signal, list) in PAIR_SIGNALS {
            for (a, b) in list {
                assert!(analyse(&format!("{a} {b}")).0.contains(signal), "{a} {b}");
            }
        }
        assert_eq!(lookup("zzzz"), Entry::default());
        assert_eq!(lookup(""), Entry::default());
    }

    #[test]
    fn every_listed_pair_is_found() {
        for &(signal, list) in PAIR_SIGNALS {
            for &(a, b) in list {
                assert!(lookup(a).starts_pair, "{a}");
                let (signals, _) = analyse(&format!("zz {a} {b} zz"));
                assert!(signals.contains(signal), "{a} {b}");
            }
        }
    }

    #[test]
    fn word_lists_do_not_overlap() {
        for w in DUTCH_WORDS {
            assert!(!ENGLISH_WORDS.contains(w), "{w} is in both language lists");
        }
    }
}
