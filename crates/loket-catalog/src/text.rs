//! Text analysis shared by indexing and querying: folding, word splitting,
//! stop words, Dutch and English plural and diminutive rules and snowball
//! stems. Compounds are split in [`crate::compound`].
//!
//! Every function here is pure and total: any string in, words out. Rules
//! *generate candidates*; the caller keeps only the candidates its lexicon
//! knows, so over-generation costs a hash lookup and never a wrong match.

use std::collections::HashSet;
use std::sync::LazyLock;

use rust_stemmers::{Algorithm, Stemmer};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Words longer than this are cut: no product word is this long, and it
/// bounds the work a hostile query can cause.
pub(crate) const MAX_WORD_BYTES: usize = 48;

/// Splits `text` into lowercase, diacritic-free words and appends them to `out`.
///
/// Letters and digits form words; apostrophes inside a word are dropped
/// (`appel's` becomes `appels`); everything else separates words.
pub fn words_into(text: &str, out: &mut Vec<String>) {
    let mut current = String::new();
    let flush = |current: &mut String, out: &mut Vec<String>| {
        if !current.is_empty() {
            let mut word = std::mem::take(current);
            if word.len() > MAX_WORD_BYTES {
                let mut cut = MAX_WORD_BYTES;
                while !word.is_char_boundary(cut) {
                    cut -= 1;
                }
                word.truncate(cut);
            }
            out.push(word);
        }
    };
    for c in text.chars() {
        if c.is_ascii() {
            if c.is_ascii_alphanumeric() {
                current.push(c.to_ascii_lowercase());
            } else if c == '\'' && !current.is_empty() {
                // `appel's`, `olijf'je`: keep the word whole.
            } else {
                flush(&mut current, out);
            }
        } else if c == '\u{2019}' && !current.is_empty() {
            // Typographic apostrophe, as above.
        } else {
            // Lowercase first, then decompose and drop the marks, so the
            // output is stable: folding it again changes nothing.
            let mut any = false;
            for d in c.to_lowercase().nfd() {
                if is_combining_mark(d) {
                    continue;
                }
                if d.is_alphanumeric() {
                    any = true;
                    current.push(d);
                }
            }
            if !any && !is_combining_mark(c) {
                flush(&mut current, out);
            }
        }
    }
    flush(&mut current, out);
}

/// Convenience wrapper around [`words_into`].
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    words_into(text, &mut out);
    out
}

/// Dutch and English function words and the question frames customers wrap
/// around a product ("hebben jullie nog ... op voorraad?", "do you have ...
/// in stock"). Product words never appear here.
const STOP_WORDS: &[&str] = &[
    // Dutch.
    "aan",
    "al",
    "alle",
    "als",
    "bent",
    "beschikbaar",
    "bestellen",
    "bij",
    "bijvoorbeeld",
    "dag",
    "dan",
    "dank",
    "dat",
    "de",
    "den",
    "der",
    "deze",
    "die",
    "dit",
    "doe",
    "doen",
    "dus",
    "een",
    "eens",
    "en",
    "er",
    "erg",
    "euro",
    "even",
    "ga",
    "gaan",
    "geen",
    "graag",
    "goedemiddag",
    "goedemorgen",
    "goedenavond",
    "had",
    "hallo",
    "heb",
    "hebben",
    "hebt",
    "heeft",
    "hem",
    "het",
    "hey",
    "hi",
    "hier",
    "hij",
    "hoe",
    "hoeveel",
    "hoi",
    "hun",
    "ik",
    "in",
    "is",
    "ja",
    "je",
    "jij",
    "jouw",
    "julie",
    "jullie",
    "kan",
    "kopen",
    "kost",
    "kosten",
    "krijgen",
    "kun",
    "kunnen",
    "kunt",
    "leverbaar",
    "liefst",
    "maar",
    "me",
    "meer",
    "met",
    "mij",
    "mijn",
    "moet",
    "na",
    "naar",
    "nee",
    "niet",
    "nog",
    "nu",
    "of",
    "om",
    "ook",
    "op",
    "over",
    "prijs",
    "te",
    "tot",
    "u",
    "uw",
    "van",
    "verkopen",
    "verkoop",
    "verkrijgbaar",
    "voor",
    "voorraad",
    "vraag",
    "vragen",
    "waar",
    "wanneer",
    "was",
    "wat",
    "we",
    "weer",
    "wel",
    "welke",
    "wij",
    "wil",
    "willen",
    "wilt",
    "winkel",
    "zijn",
    "zo",
    "zoek",
    "zoeken",
    "zou",
    "zouden",
    // English.
    "a",
    "about",
    "am",
    "an",
    "and",
    "any",
    "anything",
    "are",
    "at",
    "available",
    "be",
    "buy",
    "can",
    "could",
    "do",
    "does",
    "for",
    "from",
    "get",
    "got",
    "have",
    "hello",
    "hey",
    "how",
    "i",
    "im",
    "is",
    "it",
    "looking",
    "many",
    "me",
    "much",
    "my",
    "need",
    "of",
    "on",
    "or",
    "order",
    "please",
    "price",
    "sell",
    "selling",
    "some",
    "still",
    "stock",
    "the",
    "there",
    "thanks",
    "to",
    "want",
    "what",
    "which",
    "with",
    "would",
    "you",
    "your",
];

static STOP_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| STOP_WORDS.iter().copied().collect());

/// Whether `word` (already folded by [`words_into`]) is a stop word or part
/// of a question frame.
pub fn is_stop_word(word: &str) -> bool {
    STOP_SET.contains(word)
}

fn is_vowel(b: u8) -> bool {
    matches!(b, b'a' | b'e' | b'i' | b'o' | b'u' | b'y')
}

/// Pushes `candidate` unless it is too short or already present.
fn push_candidate(out: &mut Vec<String>, candidate: String) {
    if candidate.len() >= 2 && !out.contains(&candidate) {
        out.push(candidate);
    }
}

/// Singular candidates for a Dutch stem left after removing a plural `-en`
/// (`bom` from `bomen`, `bess` from `bessen`, `olijv` from `olijven`).
fn dutch_en_stem(stem: &str, out: &mut Vec<String>) {
    let b = stem.as_bytes();
    let n = b.len();
    if n < 2 || !stem.is_ascii() {
        push_candidate(out, stem.to_owned());
        return;
    }
    // Devoicing at the end of the singular: olijven -> olijf, rozen -> roos.
    let devoiced = match b[n - 1] {
        b'v' => Some(format!("{}f", &stem[..n - 1])),
        b'z' => Some(format!("{}s", &stem[..n - 1])),
        _ => None,
    };
    for base in std::iter::once(stem.to_owned()).chain(devoiced) {
        let bb = base.as_bytes();
        let m = bb.len();
        // Double consonant: bessen -> bes, mossen -> mos.
        if m >= 3 && bb[m - 1] == bb[m - 2] && !is_vowel(bb[m - 1]) {
            push_candidate(out, base[..m - 1].to_owned());
        }
        // Open syllable: bomen -> boom, peren -> peer, bananen -> banaan;
        // before the stem itself, which a single vowel there makes unlikely
        // (`bom` would be `bommen`).
        if m >= 3
            && !is_vowel(bb[m - 1])
            && matches!(bb[m - 2], b'a' | b'e' | b'o' | b'u')
            && !is_vowel(bb[m - 3])
        {
            let mut lengthened = String::with_capacity(m + 1);
            lengthened.push_str(&base[..m - 1]);
            lengthened.push(bb[m - 2] as char);
            lengthened.push(bb[m - 1] as char);
            push_candidate(out, lengthened);
        }
        push_candidate(out, base);
    }
}

/// Base-form candidates for a word: Dutch plurals (`-en`, `-s`), Dutch
/// diminutives (`-je`, `-tje`, `-pje`, `-etje` and their plurals in `-s`),
/// and English plurals (`-s`, `-es`, `-ies`, `-ves`). The word itself is not
/// included. Candidates are in order of preference.
pub fn base_forms(word: &str, out: &mut Vec<String>) {
    out.clear();
    if word.len() < 4 || !word.is_ascii() {
        return;
    }
    let w = word;
    // Diminutives, possibly plural: boompjes -> boompje -> boom.
    let dim = w.strip_suffix('s').filter(|s| s.ends_with("je")).unwrap_or(w);
    if dim.ends_with("je") && dim.len() >= 5 {
        if let Some(stem) = dim.strip_suffix("etje") {
            // balletje -> bal, bloemetje -> bloem.
            let b = stem.as_bytes();
            if b.len() >= 3 && b[b.len() - 1] == b[b.len() - 2] {
                push_candidate(out, stem[..stem.len() - 1].to_owned());
            }
            push_candidate(out, stem.to_owned());
        }
        if let Some(stem) = dim.strip_suffix("tje") {
            push_candidate(out, stem.to_owned());
        }
        if let Some(stem) = dim.strip_suffix("pje") {
            push_candidate(out, stem.to_owned());
        }
        if let Some(stem) = dim.strip_suffix("je") {
            push_candidate(out, stem.to_owned());
        }
        if dim.len() != w.len() {
            push_candidate(out, dim.to_owned());
        }
    }
    // English -ies, -ves, -es.
    if let Some(stem) = w.strip_suffix("ies") {
        push_candidate(out, format!("{stem}y"));
    }
    if let Some(stem) = w.strip_suffix("ves") {
        push_candidate(out, format!("{stem}f"));
        push_candidate(out, format!("{stem}fe"));
    }
    // Dutch -eren (bladeren -> blad) and -en.
    if let Some(stem) = w.strip_suffix("eren") {
        push_candidate(out, stem.to_owned());
    }
    if let Some(stem) = w.strip_suffix("en")
        && stem.len() >= 2
    {
        dutch_en_stem(stem, out);
    }
    // Dutch -s before English -es: dames -> dame, not dam.
    if let Some(stem) = w.strip_suffix('s')
        && !stem.ends_with('s')
    {
        push_candidate(out, stem.to_owned());
    }
    if let Some(stem) = w.strip_suffix("es") {
        push_candidate(out, stem.to_owned());
    }
}

static DUTCH: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::Dutch));
static ENGLISH: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::English));

/// Snowball stems of `word` in Dutch and English, prefixed so the two
/// languages never collide (`n:` and `e:`).
pub fn stems(word: &str) -> [String; 2] {
    [format!("n:{}", DUTCH.stem(word)), format!("e:{}", ENGLISH.stem(word))]
}

/// Edit distance with adjacent transpositions counting as one edit (optimal
/// string alignment), on bytes, giving up early beyond `max`.
pub fn within_distance(a: &str, b: &str, max: usize) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > max {
        return false;
    }
    let n = b.len();
    let mut prev2 = vec![0usize; n + 1];
    let mut prev: Vec<usize> = (0..=n).collect();
    let mut cur = vec![0usize; n + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..=n {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
            row_min = row_min.min(v);
        }
        if row_min > max {
            return false;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[n] <= max
}

/// Typos allowed for a query word of this many characters, as Meilisearch
/// does: none below 5, one from 5, two from 9.
pub fn typo_budget(word: &str) -> u8 {
    match word.chars().count() {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_words(input: &str, expect: &[&str]) {
        assert_eq!(words(input), expect, "input {input:?}");
    }

    #[test]
    fn folds_case_diacritics_and_punctuation() {
        check_words("Olijfboom 'Olea europaea'", &["olijfboom", "olea", "europaea"]);
        check_words("Knieën, CAFÉ-crème!", &["knieen", "cafe", "creme"]);
        check_words("appel's  en peren?", &["appels", "en", "peren"]);
        check_words("", &[]);
    }

    fn forms(word: &str) -> Vec<String> {
        let mut out = Vec::new();
        base_forms(word, &mut out);
        out
    }

    #[test]
    fn dutch_plurals_and_diminutives() {
        assert!(forms("bomen").contains(&"boom".to_owned()));
        assert!(forms("bananen").contains(&"banaan".to_owned()));
        assert!(forms("bessen").contains(&"bes".to_owned()));
        assert!(forms("olijven").contains(&"olijf".to_owned()));
        assert!(forms("rozen").contains(&"roos".to_owned()));
        assert!(forms("appels").contains(&"appel".to_owned()));
        assert!(forms("boompje").contains(&"boom".to_owned()));
        assert!(forms("boompjes").contains(&"boom".to_owned()));
        assert!(forms("plantje").contains(&"plant".to_owned()));
        assert!(forms("bloemetje").contains(&"bloem".to_owned()));
        assert!(forms("berries").contains(&"berry".to_owned()));
        assert!(forms("trees").contains(&"tree".to_owned()));
    }

    #[test]
    fn distance_counts_transpositions_as_one() {
        assert!(within_distance("banaan", "baanan", 1));
        assert!(within_distance("citroen", "citorne", 2));
        assert!(!within_distance("citroen", "citorne", 1));
        assert!(within_distance("bananenboom", "bananeboom", 1));
        assert!(!within_distance("peer", "appel", 2));
    }

    #[test]
    fn typo_budget_follows_word_length() {
        assert_eq!(typo_budget("peer"), 0);
        assert_eq!(typo_budget("appel"), 1);
        assert_eq!(typo_budget("olijfboom"), 2);
    }

    #[test]
    fn question_frames_are_stop_words() {
        for w in words("hebben jullie nog op voorraad do you have in stock") {
            assert!(is_stop_word(&w), "{w}");
        }
        assert!(!is_stop_word("bananenbomen"));
        assert!(!is_stop_word("lemon"));
    }
}
