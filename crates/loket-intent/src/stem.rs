//! Snowball English (Porter2) stemming without allocation.
//!
//! [`english_stem`] stems one token of the crate's normalised text into a
//! stack buffer ([`StemBuf`]). It follows the Snowball English algorithm
//! (<https://snowballstem.org/algorithms/english/stemmer.html>) as shipped by
//! the `rust-stemmers` crate: the special-word exceptions, the `gener`,
//! `commun` and `arsen` prefixes of R1, and `y` marked as a consonant at the
//! start of a word and after a vowel.
//!
//! Contract, for any input bytes:
//!
//! - it never allocates, never panics and uses no `unsafe`;
//! - the stem is never longer than the token (every step of the algorithm
//!   replaces a suffix by one at most as long: step 1b deletes at least two
//!   letters before it may add an `e`);
//! - a token of at most [`MAX_STEM_TOKEN`] ASCII bytes without `'` is
//!   stemmed exactly as `rust_stemmers::Stemmer::create(Algorithm::English)`
//!   stems it (checked by the tests on every word of two chat corpora and on
//!   random words): every byte other than `a e i o u y` counts as a
//!   consonant (digits, `_`, `?`, upper case), and an upper-case `Y` is the
//!   marked consonant `y`, turned to `y` at the end when the word had a `y`
//!   marked;
//! - a token that is longer than [`MAX_STEM_TOKEN`] bytes, has a non-ASCII
//!   byte or has an apostrophe is returned unchanged (the reference stems
//!   such words; normalised text has no apostrophes, and the non-ASCII
//!   letters it keeps are not English).

/// Longest token (in bytes) that is stemmed; longer tokens are returned
/// unchanged.
pub const MAX_STEM_TOKEN: usize = 64;

/// Stack buffer a stem is written into. One buffer serves any number of
/// [`english_stem`] calls, one at a time.
#[derive(Clone, Debug)]
pub struct StemBuf {
    bytes: [u8; MAX_STEM_TOKEN],
}

impl StemBuf {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self { bytes: [0; MAX_STEM_TOKEN] }
    }
}

impl Default for StemBuf {
    fn default() -> Self {
        Self::new()
    }
}

/// The Porter2 (Snowball English) stem of `token`, a lowercase token of the
/// crate's normalised text.
///
/// Returns `token` itself (borrowed) when its stem equals it, when it is
/// shorter than three or longer than [`MAX_STEM_TOKEN`] bytes, or when it
/// contains a non-ASCII byte or an apostrophe; otherwise a slice of `buf`
/// holding the stem. Digits, `_` and other ASCII symbols are consonants to the
/// algorithm, as in the reference implementation (see the [module
/// docs](self)). The result is never longer than `token`. Never allocates and
/// never panics.
///
/// ```
/// use loket_intent::stem::{english_stem, StemBuf};
///
/// let mut buf = StemBuf::new();
/// assert_eq!(english_stem(b"generously", &mut buf), b"generous");
/// assert_eq!(english_stem(b"hoping", &mut buf), b"hope");
/// assert_eq!(english_stem(b"skies", &mut buf), b"sky");
/// assert_eq!(english_stem(b"covid19s", &mut buf), b"covid19");
/// ```
pub fn english_stem<'a>(token: &'a [u8], buf: &'a mut StemBuf) -> &'a [u8] {
    let n = token.len();
    if !(3..=MAX_STEM_TOKEN).contains(&n) || token.iter().any(|&c| !c.is_ascii() || c == b'\'') {
        return token;
    }
    if let Some(stem) = exception1(token) {
        return stem;
    }
    let Some(live) = buf.bytes.get_mut(..n) else {
        return token;
    };
    live.copy_from_slice(token);
    let len = stem_in_place(live);
    let stem = buf.bytes.get(..len).unwrap_or(token);
    if stem == token { token } else { stem }
}

/// Words stemmed as a whole, before the algorithm: their stem, which is the
/// word itself for the invariant ones.
fn exception1(word: &[u8]) -> Option<&[u8]> {
    Some(match word {
        b"skis" => b"ski",
        b"skies" => b"sky",
        b"dying" => b"die",
        b"lying" => b"lie",
        b"tying" => b"tie",
        b"idly" => b"idl",
        b"gently" => b"gentl",
        b"ugly" => b"ugli",
        b"early" => b"earli",
        b"only" => b"onli",
        b"singly" => b"singl",
        b"sky" | b"news" | b"howe" | b"atlas" | b"cosmos" | b"bias" | b"andes" => word,
        _ => return None,
    })
}

/// Words left as they are after step 1a.
fn is_exception2(word: &[u8]) -> bool {
    matches!(
        word,
        b"inning"
            | b"outing"
            | b"canning"
            | b"herring"
            | b"earring"
            | b"proceed"
            | b"exceed"
            | b"succeed"
    )
}

/// A vowel of the algorithm. A marked `Y` (consonant `y`) is not one.
const fn is_vowel(c: u8) -> bool {
    matches!(c, b'a' | b'e' | b'i' | b'o' | b'u' | b'y')
}

/// Whether `word` ends in a short syllable: consonant, vowel, consonant other
/// than `w`, `x` or `Y`; or, as the whole word, vowel and consonant.
fn ends_in_short_syllable(word: &[u8]) -> bool {
    match *word {
        [a, b] => is_vowel(a) && !is_vowel(b),
        [.., a, b, c] => {
            !is_vowel(a) && is_vowel(b) && !is_vowel(c) && !matches!(c, b'w' | b'x' | b'Y')
        }
        _ => false,
    }
}

/// Start of the region after the first consonant that follows a vowel at or
/// after `from`; `word.len()` when there is none.
fn region_after(word: &[u8], from: usize) -> usize {
    let tail = word.get(from..).unwrap_or_default();
    let Some(vowel) = tail.iter().position(|&c| is_vowel(c)) else {
        return word.len();
    };
    match tail.iter().skip(vowel).position(|&c| !is_vowel(c)) {
        Some(consonant) => from + vowel + consonant + 1,
        None => word.len(),
    }
}

/// What a suffix rule needs besides its region.
#[derive(Clone, Copy)]
enum Cond {
    Always,
    /// Preceded by `l` (`ogi`).
    AfterL,
    /// Preceded by a valid `li` ending: `c d e g h k m n r t`.
    AfterLiEnding,
    /// The suffix is in R2 (step 3's `ative`).
    InR2,
    /// Preceded by `s` or `t` (step 4's `ion`).
    AfterSOrT,
}

/// A suffix, its replacement and its condition. A rule list is ordered
/// longest suffix first, so the first match is the longest.
type Rule = (&'static [u8], &'static [u8], Cond);

const STEP2_L: &[Rule] = &[(b"ational", b"ate", Cond::Always), (b"tional", b"tion", Cond::Always)];
const STEP2_I: &[Rule] = &[
    (b"lessli", b"less", Cond::Always),
    (b"biliti", b"ble", Cond::Always),
    (b"entli", b"ent", Cond::Always),
    (b"aliti", b"al", Cond::Always),
    (b"ousli", b"ous", Cond::Always),
    (b"iviti", b"ive", Cond::Always),
    (b"fulli", b"ful", Cond::Always),
    (b"enci", b"ence", Cond::Always),
    (b"anci", b"ance", Cond::Always),
    (b"abli", b"able", Cond::Always),
    (b"alli", b"al", Cond::Always),
    (b"bli", b"ble", Cond::Always),
    (b"ogi", b"og", Cond::AfterL),
    (b"li", b"", Cond::AfterLiEnding),
];
const STEP2_R: &[Rule] = &[(b"izer", b"ize", Cond::Always), (b"ator", b"ate", Cond::Always)];
const STEP2_N: &[Rule] = &[(b"ization", b"ize", Cond::Always), (b"ation", b"ate", Cond::Always)];
const STEP2_M: &[Rule] = &[(b"alism", b"al", Cond::Always)];
const STEP2_S: &[Rule] = &[
    (b"fulness", b"ful", Cond::Always),
    (b"ousness", b"ous", Cond::Always),
    (b"iveness", b"ive", Cond::Always),
];

const STEP3_L: &[Rule] = &[
    (b"ational", b"ate", Cond::Always),
    (b"tional", b"tion", Cond::Always),
    (b"ical", b"ic", Cond::Always),
    (b"ful", b"", Cond::Always),
];
const STEP3_E: &[Rule] = &[
    (b"alize", b"al", Cond::Always),
    (b"icate", b"ic", Cond::Always),
    (b"ative", b"", Cond::InR2),
];
const STEP3_I: &[Rule] = &[(b"iciti", b"ic", Cond::Always)];
const STEP3_S: &[Rule] = &[(b"ness", b"", Cond::Always)];

const STEP4_L: &[Rule] = &[(b"al", b"", Cond::Always)];
const STEP4_E: &[Rule] = &[
    (b"ance", b"", Cond::Always),
    (b"ence", b"", Cond::Always),
    (b"able", b"", Cond::Always),
    (b"ible", b"", Cond::Always),
    (b"ate", b"", Cond::Always),
    (b"ive", b"", Cond::Always),
    (b"ize", b"", Cond::Always),
];
const STEP4_R: &[Rule] = &[(b"er", b"", Cond::Always)];
const STEP4_C: &[Rule] = &[(b"ic", b"", Cond::Always)];
const STEP4_T: &[Rule] = &[
    (b"ement", b"", Cond::Always),
    (b"ment", b"", Cond::Always),
    (b"ant", b"", Cond::Always),
    (b"ent", b"", Cond::Always),
];
const STEP4_M: &[Rule] = &[(b"ism", b"", Cond::Always)];
const STEP4_I: &[Rule] = &[(b"iti", b"", Cond::Always)];
const STEP4_S: &[Rule] = &[(b"ous", b"", Cond::Always)];
const STEP4_N: &[Rule] = &[(b"ion", b"", Cond::AfterSOrT)];

/// A word being stemmed in place: `bytes[..len]` is the live word. `len`
/// only shrinks, except that step 1b adds one `e` after deleting at least
/// two letters, so `len <= bytes.len()` always holds.
struct Word<'b> {
    bytes: &'b mut [u8],
    len: usize,
    /// Start of R1.
    p1: usize,
    /// Start of R2.
    p2: usize,
}

/// Stems `word` (at least three ASCII bytes, no apostrophe, not an
/// exception1 word) in place and returns the length of the stem.
fn stem_in_place(word: &mut [u8]) -> usize {
    // Prelude: `y` at the start or after a vowel is a consonant, `Y`.
    let mut y_found = false;
    let mut after_vowel = true;
    for c in word.iter_mut() {
        if *c == b'y' && after_vowel {
            *c = b'Y';
            y_found = true;
        }
        after_vowel = is_vowel(*c);
    }
    let p1 = if word.starts_with(b"gener") || word.starts_with(b"arsen") {
        5
    } else if word.starts_with(b"commun") {
        6
    } else {
        region_after(word, 0)
    };
    let p2 = region_after(word, p1);
    let len = word.len();
    let mut w = Word { bytes: word, len, p1, p2 };
    w.step_1a();
    if !is_exception2(w.live()) {
        w.step_1b();
        w.step_1c();
        w.step_2();
        w.step_3();
        w.step_4();
        w.step_5();
    }
    if y_found {
        for c in w.bytes.iter_mut().take(w.len) {
            if *c == b'Y' {
                *c = b'y';
            }
        }
    }
    w.len
}

impl Word<'_> {
    fn live(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    fn ends(&self, suffix: &[u8]) -> bool {
        self.live().ends_with(suffix)
    }

    /// The byte before position `i`, if any.
    fn before(&self, i: usize) -> Option<u8> {
        i.checked_sub(1).and_then(|j| self.live().get(j)).copied()
    }

    /// Replaces the last `cut` bytes by `with`, which is at most as long.
    fn replace(&mut self, cut: usize, with: &[u8]) {
        let start = self.len.saturating_sub(cut);
        let end = start + with.len();
        if end <= self.len
            && let Some(dst) = self.bytes.get_mut(start..end)
        {
            dst.copy_from_slice(with);
            self.len = end;
        }
    }

    /// Appends an `e` (room was made by a deletion).
    fn push_e(&mut self) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = b'e';
            self.len += 1;
        }
    }

    /// Applies the longest matching rule of `rules` if its suffix starts at or
    /// after `region` and its condition holds.
    fn apply(&mut self, rules: &[Rule], region: usize) {
        let Some(&(suffix, with, cond)) = rules.iter().find(|rule| self.ends(rule.0)) else {
            return;
        };
        let start = self.len - suffix.len();
        if start < region {
            return;
        }
        let holds = match cond {
            Cond::Always => true,
            Cond::AfterL => self.before(start) == Some(b'l'),
            Cond::AfterLiEnding => matches!(
                self.before(start),
                Some(b'c' | b'd' | b'e' | b'g' | b'h' | b'k' | b'm' | b'n' | b'r' | b't')
            ),
            Cond::InR2 => start >= self.p2,
            Cond::AfterSOrT => matches!(self.before(start), Some(b's' | b't')),
        };
        if holds {
            self.replace(suffix.len(), with);
        }
    }

    fn last(&self) -> u8 {
        self.live().last().copied().unwrap_or(0)
    }

    fn step_1a(&mut self) {
        if self.ends(b"sses") {
            self.len -= 2;
        } else if self.ends(b"ied") || self.ends(b"ies") {
            // `i` after at least two letters (`cries` → `cri`), else `ie`
            // (`ties` → `tie`): the first one or two letters of the suffix.
            self.len -= if self.len > 4 { 2 } else { 1 };
        } else if self.ends(b"us") || self.ends(b"ss") {
        } else if self.ends(b"s") {
            // Deleted when a vowel precedes the letter before the `s`.
            let before = self.live().get(..self.len.saturating_sub(2)).unwrap_or_default();
            if before.iter().any(|&c| is_vowel(c)) {
                self.len -= 1;
            }
        }
    }

    fn step_1b(&mut self) {
        let eed = if self.ends(b"eedly") {
            5
        } else if self.ends(b"eed") {
            3
        } else {
            0
        };
        if eed > 0 {
            if self.len - eed >= self.p1 {
                self.replace(eed, b"ee");
            }
            return;
        }
        let cut = if self.ends(b"ingly") {
            5
        } else if self.ends(b"edly") {
            4
        } else if self.ends(b"ing") {
            3
        } else if self.ends(b"ed") {
            2
        } else {
            return;
        };
        let stem = self.len - cut;
        if !self.live().iter().take(stem).any(|&c| is_vowel(c)) {
            return;
        }
        self.len = stem;
        if self.ends(b"at") || self.ends(b"bl") || self.ends(b"iz") {
            self.push_e();
        } else if let [.., a, b] = *self.live()
            && a == b
            && matches!(a, b'b' | b'd' | b'f' | b'g' | b'm' | b'n' | b'p' | b'r' | b't')
        {
            self.len -= 1;
        } else if self.len == self.p1 && ends_in_short_syllable(self.live()) {
            self.push_e();
        }
    }

    fn step_1c(&mut self) {
        // `y` after a consonant that is not the first letter becomes `i`.
        if let [_, .., c, y] = self.live()
            && matches!(y, b'y' | b'Y')
            && !is_vowel(*c)
        {
            let i = self.len - 1;
            if let Some(slot) = self.bytes.get_mut(i) {
                *slot = b'i';
            }
        }
    }

    fn step_2(&mut self) {
        let rules = match self.last() {
            b'l' => STEP2_L,
            b'i' => STEP2_I,
            b'r' => STEP2_R,
            b'n' => STEP2_N,
            b'm' => STEP2_M,
            b's' => STEP2_S,
            _ => return,
        };
        self.apply(rules, self.p1);
    }

    fn step_3(&mut self) {
        let rules = match self.last() {
            b'l' => STEP3_L,
            b'e' => STEP3_E,
            b'i' => STEP3_I,
            b's' => STEP3_S,
            _ => return,
        };
        self.apply(rules, self.p1);
    }

    fn step_4(&mut self) {
        let rules = match self.last() {
            b'l' => STEP4_L,
            b'e' => STEP4_E,
            b'r' => STEP4_R,
            b'c' => STEP4_C,
            b't' => STEP4_T,
            b'm' => STEP4_M,
            b'i' => STEP4_I,
            b's' => STEP4_S,
            b'n' => STEP4_N,
            _ => return,
        };
        self.apply(rules, self.p2);
    }

    fn step_5(&mut self) {
        let Some(start) = self.len.checked_sub(1) else {
            return;
        };
        let delete = match self.last() {
            b'e' => {
                start >= self.p2
                    || (start >= self.p1
                        && !ends_in_short_syllable(self.live().get(..start).unwrap_or_default()))
            }
            b'l' => start >= self.p2 && self.before(start) == Some(b'l'),
            _ => false,
        };
        if delete {
            self.len = start;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_stemmers::{Algorithm, Stemmer};

    /// The distinct words of the `text` column of CLINC150 (train, val,
    /// oos_train, oos_val) and BANKING77 (train), lowercased and split at every
    /// byte that is not an ASCII letter or digit, up to 30 bytes long; plus
    /// classic Porter2 test words (exceptions, R1 prefixes, one word or more
    /// per suffix rule, digits and `_`). One per line, sorted.
    const WORDS: &str = include_str!("stem_words.txt");

    fn stem(token: &str) -> String {
        let mut buf = StemBuf::new();
        String::from_utf8(english_stem(token.as_bytes(), &mut buf).to_vec()).unwrap()
    }

    fn reference(token: &str) -> String {
        Stemmer::create(Algorithm::English).stem(token).into_owned()
    }

    #[test]
    fn documented_examples() {
        for (word, expected) in [
            ("consign", "consign"),
            ("consigned", "consign"),
            ("consolingly", "consol"),
            ("knightly", "knight"),
            ("caresses", "caress"),
            ("ponies", "poni"),
            ("ties", "tie"),
            ("cries", "cri"),
            ("gaps", "gap"),
            ("gas", "gas"),
            ("kiwis", "kiwi"),
            ("agreed", "agre"),
            ("feed", "feed"),
            ("hopping", "hop"),
            ("hoping", "hope"),
            ("luxuriating", "luxuri"),
            ("cry", "cri"),
            ("by", "by"),
            ("saying", "say"),
            ("yelling", "yell"),
            ("generously", "generous"),
            ("communism", "communism"),
            ("arsenal", "arsenal"),
            ("relational", "relat"),
            ("skies", "sky"),
            ("dying", "die"),
            ("early", "earli"),
            ("news", "news"),
            ("innings", "inning"),
            ("proceeded", "proceed"),
            ("succeeds", "succeed"),
            ("mp3s", "mp3s"),
            ("covid19s", "covid19"),
            ("under_scored", "under_scor"),
            ("?", "?"),
        ] {
            assert_eq!(stem(word), expected, "stem of {word:?}");
            assert_eq!(reference(word), expected, "reference stem of {word:?}");
        }
    }

    #[test]
    fn unchanged_tokens_are_borrowed() {
        let mut buf = StemBuf::default();
        for token in [&b"consign"[..], b"ab", b"news", b"caf\xc3\xa9s", b"it's", &[b'a'; 65]] {
            let out = english_stem(token, &mut buf);
            assert!(std::ptr::eq(out, token), "{token:?} was copied");
        }
        let long = "nationalizations".repeat(5);
        assert!(long.len() > MAX_STEM_TOKEN);
        assert_eq!(english_stem(long.as_bytes(), &mut buf), long.as_bytes());
        let at_limit = &long[..MAX_STEM_TOKEN];
        assert_eq!(stem(at_limit), reference(at_limit));
    }

    #[test]
    fn agrees_with_rust_stemmers_on_the_word_list() {
        let stemmer = Stemmer::create(Algorithm::English);
        let mut buf = StemBuf::new();
        let mut words = 0;
        let mut mismatches = Vec::new();
        for word in WORDS.lines() {
            words += 1;
            let ours = english_stem(word.as_bytes(), &mut buf);
            let theirs = stemmer.stem(word);
            if ours != theirs.as_bytes() {
                mismatches.push(format!("{word}: {:?} != {theirs}", String::from_utf8_lossy(ours)));
            }
        }
        assert!(words > 6_000, "word list has {words} words");
        assert!(mismatches.is_empty(), "{} mismatches: {mismatches:#?}", mismatches.len());
    }

    /// Lowercase words built from letters and common suffixes, cut to at most
    /// 19 bytes.
    fn suffixed_word() -> impl Strategy<Value = String> {
        const PIECES: &[&str] = &[
            "ing", "ingly", "ed", "edly", "eed", "eedly", "ly", "li", "s", "es", "ies", "ied",
            "sses", "ss", "us", "y", "ational", "tional", "ation", "ator", "ization", "izer",
            "ness", "ful", "fulness", "ousness", "iveness", "ousli", "entli", "alli", "abli",
            "bli", "ogi", "enci", "anci", "aliti", "iviti", "biliti", "alism", "alize", "icate",
            "iciti", "ical", "ative", "al", "ance", "ence", "er", "ic", "able", "ible", "ant",
            "ement", "ment", "ent", "ism", "ate", "iti", "ous", "ive", "ize", "ion", "sion",
            "tion", "e", "ll", "at", "bl", "iz", "bb", "dd", "ff", "gg", "mm", "nn", "pp", "rr",
            "tt", "ay", "oy", "yy", "gener", "commun", "arsen", "inning", "outing", "exceed",
        ];
        let piece = prop_oneof![
            3 => proptest::char::range('a', 'z').prop_map(String::from),
            1 => proptest::sample::select(PIECES).prop_map(String::from),
        ];
        proptest::collection::vec(piece, 0..8).prop_map(|pieces| {
            let mut word = pieces.concat();
            word.truncate(19);
            word
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Lowercase words, biased toward the suffixes the algorithm handles.
        #[test]
        fn agrees_with_rust_stemmers_on_suffixed_words(word in suffixed_word()) {
            prop_assert_eq!(stem(&word), reference(&word));
        }

        /// Uniform lowercase words, which reach the rare branches.
        #[test]
        fn agrees_with_rust_stemmers_on_random_words(word in "[a-z]{0,20}") {
            prop_assert_eq!(stem(&word), reference(&word));
        }

        /// Digits, `_`, `?`, upper case and other ASCII count as consonants,
        /// as in the reference.
        #[test]
        fn agrees_with_rust_stemmers_on_ascii(
            bytes in proptest::collection::vec(
                prop_oneof![4 => b'a'..=b'z', 1 => 0u8..0x80, 1 => Just(b'y'), 1 => b'0'..=b'9'],
                0..=MAX_STEM_TOKEN,
            )
        ) {
            let word: String = bytes.iter().map(|&b| char::from(b)).filter(|&c| c != '\'').collect();
            prop_assert_eq!(stem(&word), reference(&word));
        }

        /// Any bytes: no panic, never longer than the token, and the token
        /// itself when it is not stemmed.
        #[test]
        fn never_panics_nor_grows(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let mut buf = StemBuf::new();
            let out = english_stem(&bytes, &mut buf);
            prop_assert!(out.len() <= bytes.len());
            if bytes.len() > MAX_STEM_TOKEN || !bytes.is_ascii() || bytes.contains(&b'\'') {
                prop_assert!(std::ptr::eq(out, &bytes[..]));
            }
        }
    }
}
