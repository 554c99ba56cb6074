//! Dutch/English language detection for short chat messages.
//!
//! Short messages defeat character-statistics detectors, so this one votes
//! with function words and frequent chat words of each language (which make
//! up most of a short message), and falls back to letter patterns typical of
//! one language (`ij`, `oe`, `sch` against `th`, `wh`, `-ing`) for the rest.

use std::fmt;

/// Language of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Language {
    /// No evidence either way (empty, numbers only, another language).
    #[default]
    Unknown,
    /// Dutch.
    Dutch,
    /// English.
    English,
}

impl Language {
    /// ISO 639-1 code: `nl`, `en`, or `und` for unknown.
    pub fn code(self) -> &'static str {
        match self {
            Language::Unknown => "und",
            Language::Dutch => "nl",
            Language::English => "en",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Detects the language of a normalised message (see [`crate::normalize_into`]).
pub fn detect(normalized: &str) -> Language {
    crate::lexicon::analyse(normalized).1
}

/// The language with more votes (quarter votes), or unknown on a tie.
pub(crate) fn decide(nl: i32, en: i32) -> Language {
    match nl.cmp(&en) {
        std::cmp::Ordering::Greater => Language::Dutch,
        std::cmp::Ordering::Less => Language::English,
        std::cmp::Ordering::Equal => Language::Unknown,
    }
}

/// Words that vote Dutch. A few are shared with English (`me`, `we`,
/// `top`, `sorry`); they lean Dutch in shop chat, and the English list wins
/// wherever English words dominate.
pub(crate) const DUTCH_WORDS: &[&str] = &[
    "de",
    "het",
    "een",
    "ik",
    "je",
    "jij",
    "u",
    "uw",
    "mijn",
    "wij",
    "we",
    "ze",
    "zij",
    "niet",
    "geen",
    "wat",
    "hoe",
    "waar",
    "wanneer",
    "waarom",
    "welke",
    "kan",
    "kun",
    "kunt",
    "kunnen",
    "wil",
    "wilt",
    "willen",
    "heb",
    "hebt",
    "heeft",
    "hebben",
    "ben",
    "bent",
    "zijn",
    "was",
    "met",
    "voor",
    "van",
    "naar",
    "op",
    "aan",
    "bij",
    "nog",
    "al",
    "ook",
    "maar",
    "dat",
    "dit",
    "deze",
    "die",
    "er",
    "nu",
    "graag",
    "hallo",
    "hoi",
    "bedankt",
    "dank",
    "dankjewel",
    "ja",
    "nee",
    "jullie",
    "zou",
    "moet",
    "mag",
    "even",
    "wel",
    "dan",
    "als",
    "en",
    "te",
    "om",
    "bestelling",
    "pakket",
    "betalen",
    "maat",
    "verzending",
    "kost",
    "kosten",
    "prijs",
    "hoeveel",
    "wordt",
    "word",
    "gaat",
    "krijg",
    "krijgen",
    "terug",
    "morgen",
    "vandaag",
    "alvast",
    "iets",
    "iemand",
    "spreken",
    "helpen",
    "zit",
    "staat",
    "weet",
    "doe",
    "doen",
    "nodig",
    "klopt",
    "sorry",
    "oke",
    "top",
    "hele",
    "heel",
    "echt",
    "toch",
    "zo",
    "mij",
    "me",
    "jou",
    "hun",
    "onze",
    "ons",
    "hier",
    "daar",
    "hem",
    "haar",
];

/// Words that vote English.
pub(crate) const ENGLISH_WORDS: &[&str] = &[
    "ever",
    "really",
    "very",
    "too",
    "all",
    "only",
    "again",
    "worst",
    "good",
    "bad",
    "great",
    "something",
    "anything",
    "nothing",
    "who",
    "whats",
    "thats",
    "theres",
    "youre",
    "the",
    "a",
    "an",
    "i",
    "you",
    "your",
    "my",
    "are",
    "am",
    "not",
    "no",
    "what",
    "how",
    "where",
    "when",
    "why",
    "which",
    "can",
    "could",
    "would",
    "want",
    "have",
    "has",
    "had",
    "do",
    "does",
    "did",
    "dont",
    "to",
    "for",
    "and",
    "or",
    "with",
    "from",
    "on",
    "in",
    "at",
    "it",
    "its",
    "this",
    "that",
    "these",
    "those",
    "there",
    "yet",
    "still",
    "please",
    "pls",
    "plz",
    "thanks",
    "thank",
    "hello",
    "hi",
    "yes",
    "order",
    "package",
    "pay",
    "size",
    "much",
    "many",
    "get",
    "got",
    "will",
    "be",
    "been",
    "should",
    "any",
    "some",
    "they",
    "were",
    "im",
    "ive",
    "id",
    "cant",
    "wont",
    "doesnt",
    "didnt",
    "isnt",
    "if",
    "but",
    "just",
    "need",
    "like",
    "know",
    "help",
    "today",
    "tomorrow",
    "back",
    "about",
    "someone",
    "speak",
    "talk",
    "delivery",
    "price",
    "cost",
    "stock",
    "refund",
    "return",
    "cancel",
    "account",
    "buy",
    "here",
    "our",
    "us",
    "him",
    "her",
    "them",
];

/// Letter patterns, in quarter votes.
pub(crate) fn pattern_votes(t: &[u8]) -> (i32, i32) {
    let mut nl = 0;
    let mut en = 0;
    let mut prev = 0u8;
    let mut sch = false;
    for (i, &b) in t.iter().enumerate() {
        match (prev, b) {
            (b'i', b'j')
            | (b'o', b'e')
            | (b'u', b'i')
            | (b'a', b'a')
            | (b'u', b'u')
            | (b'e', b'u') => nl += 1,
            (b't', b'h')
            | (b'w', b'h')
            | (b's', b'h')
            | (b'e', b'a')
            | (b'a', b'y')
            | (b'o', b'y')
            | (b'a', b'w')
            | (b'o', b'w') => en += 1,
            (b'c', b'h') => sch |= i >= 2 && t[i - 2] == b's',
            _ => {}
        }
        prev = b;
    }
    if t.ends_with(b"ing") || t.ends_with(b"tion") || t.ends_with(b"ly") {
        en += 2;
    }
    if t.ends_with(b"en") || t.ends_with(b"tje") || t.ends_with(b"heid") || t.starts_with(b"ge") {
        nl += 2;
    }
    if sch {
        nl += 2;
    }
    (nl, en)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lang(text: &str) -> Language {
        let mut n = String::new();
        crate::normalize_into(text, &mut n);
        detect(&n)
    }

    #[test]
    fn detects_short_messages() {
        for nl in [
            "waar blijft mijn pakket",
            "kan ik met ideal betalen?",
            "ik wil een medewerker spreken",
            "heb je deze nog in maat 42",
            "wat kost verzending naar belgie",
            "bedankt!",
            "levertijd?",
        ] {
            assert_eq!(lang(nl), Language::Dutch, "{nl}");
        }
        for en in [
            "where is my package",
            "can i pay with paypal?",
            "i want to speak to a human",
            "do you have this in size 42",
            "how much is shipping to belgium",
            "thanks!",
            "shipping?",
        ] {
            assert_eq!(lang(en), Language::English, "{en}");
        }
    }

    #[test]
    fn no_evidence_is_unknown() {
        assert_eq!(lang(""), Language::Unknown);
        assert_eq!(lang("123 456"), Language::Unknown);
        assert_eq!(Language::Unknown.code(), "und");
        assert_eq!(Language::Dutch.to_string(), "nl");
    }
}
