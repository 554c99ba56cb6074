//! Chat-text normalisation.
//!
//! [`normalize_into`] turns a raw chat message into a canonical string of
//! tokens separated by single ASCII spaces:
//!
//! - letters are lowercased and Latin accents are folded (`ë` → `e`,
//!   `ß` → `ss`, `ĳ` → `ij`); other alphabetic scripts are kept, lowercased;
//! - runs of one letter longer than two are cut to two (`heeeel` → `heel`),
//!   which keeps Dutch double vowels and removes chat stretching;
//! - apostrophes vanish inside words (`don't` → `dont`, `auto's` → `autos`);
//! - a run of digits (with `.`/`,` inside it) becomes `0` when it has at most
//!   three digits before its first separator (sizes, quantities, prices like
//!   `49,95`) and `0000` otherwise (order numbers, postcodes, phone numbers);
//! - `€` becomes the token `euro`, and `?` and `!` are kept as tokens of
//!   their own because questions carry intent and exclamations frustration;
//! - emoji of anger, annoyance (eye rolls, facepalms), sadness and joy
//!   become `_angry`, `_annoyed`, `_sad` and `_happy`; other emoji,
//!   punctuation and symbols separate tokens;
//! - repeated `?`, `!` and repeated emoji tokens collapse into one.
//!
//! The output is idempotent: normalising it again changes nothing.
//! Input beyond [`MAX_INPUT_BYTES`] is ignored, which bounds the work per
//! message, and the output is cut to whole tokens within the same bound
//! (numbers and symbols can make it longer than its input), so that it is
//! never itself cut when normalised again.

/// Only the first this many bytes of a message are normalised (cut at a
/// character boundary). Chat messages are far shorter; the bound keeps the
/// cost of a pathological message flat.
pub const MAX_INPUT_BYTES: usize = 4096;

/// Normalises `text` into `out` (cleared first). Never allocates once `out`
/// has grown to the size of the longest message seen.
///
/// ```
/// let mut out = String::new();
/// loket_intent::normalize_into("Wat kóst déze jas?? 😡 Order #123456", &mut out);
/// assert_eq!(out, "wat kost deze jas ? _angry order 0000");
/// ```
pub fn normalize_into(text: &str, out: &mut String) {
    out.clear();
    let text = truncate(text, MAX_INPUT_BYTES);
    // The output is rarely longer than the input; growing it once up front
    // keeps the per-letter pushes off the reallocation path.
    out.reserve(text.len() + 8);
    let mut w = Writer { out, state: State::Start, last_char: '\0', run: 0, last_special: None };
    // Digits of the current number before its first separator (0: not in a number).
    let mut digits = 0usize;
    let mut after_separator = false;
    for ch in text.chars() {
        if digits > 0 {
            if ch.is_ascii_digit() {
                if !after_separator {
                    digits += 1;
                }
                continue;
            }
            if ch == '.' || ch == ',' {
                // Decimal or thousands separator: part of the number.
                after_separator = true;
                continue;
            }
            w.number(digits);
            digits = 0;
        }
        after_separator = false;
        if ch.is_ascii() {
            match ch {
                'a'..='z' | '_' => w.letter(ch),
                'A'..='Z' => w.letter(ch.to_ascii_lowercase()),
                '0'..='9' => digits = 1,
                '\'' | '`' => {}
                '?' => w.special("?"),
                '!' => w.special("!"),
                _ => w.separate(),
            }
            continue;
        }
        match ch {
            '\u{2019}' | '\u{2018}' | '\u{b4}' => {}
            '\u{20ac}' => w.special("euro"),
            '\u{ff1f}' => w.special("?"),
            '\u{ff01}' => w.special("!"),
            _ => {
                if let Some(folded) = fold(ch) {
                    w.letters(folded);
                } else if ch.is_alphabetic() {
                    for lower in ch.to_lowercase() {
                        if let Some(folded) = fold(lower) {
                            w.letters(folded);
                        } else if lower.is_alphabetic() {
                            w.letter(lower);
                        }
                    }
                } else if let Some(token) = emoji(ch) {
                    w.special(token);
                } else if ch.is_numeric() {
                    // Non-ASCII digits (Arabic-Indic, fullwidth): a short number.
                    w.number(1);
                } else {
                    w.separate();
                }
            }
        }
    }
    if digits > 0 {
        w.number(digits);
    }
    cut_to_whole_tokens(out, MAX_INPUT_BYTES);
}

/// Cuts normalised text longer than `max` bytes after its last whole token
/// within `max` bytes (a token cut in two could normalise differently:
/// `0000` to `00` becomes `0`). A single token longer than `max` (letters
/// only, so any prefix of it is normalised) is cut at a character boundary.
fn cut_to_whole_tokens(out: &mut String, max: usize) {
    if out.len() <= max {
        return;
    }
    // The byte at `max` is a space exactly when the first `max` bytes end
    // with a whole token.
    match out.as_bytes()[..=max].iter().rposition(|&b| b == b' ') {
        Some(space) => out.truncate(space),
        None => {
            let end = truncate(out, max).len();
            out.truncate(end);
        }
    }
}

/// Cuts `text` to at most `max` bytes at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing written yet.
    Start,
    /// Inside a word made of letters.
    Word,
    /// A word, number or special token ended; the next one needs a space.
    Gap,
}

struct Writer<'a> {
    out: &'a mut String,
    state: State,
    last_char: char,
    run: u32,
    /// The last token, when it was a special one (`?`, emoji): repeats collapse.
    last_special: Option<&'static str>,
}

impl Writer<'_> {
    #[inline(always)]
    fn begin_token(&mut self) {
        if self.state != State::Start {
            self.out.push(' ');
        }
        self.run = 0;
        self.last_char = '\0';
    }

    #[inline(always)]
    fn letter(&mut self, ch: char) {
        if self.state != State::Word {
            self.begin_word();
        }
        if ch == self.last_char {
            self.run += 1;
            if self.run > 2 {
                return;
            }
        } else {
            self.last_char = ch;
            self.run = 1;
        }
        self.out.push(ch);
    }

    #[inline(never)]
    fn begin_word(&mut self) {
        self.begin_token();
        self.state = State::Word;
        self.last_special = None;
    }

    fn letters(&mut self, s: &str) {
        for ch in s.chars() {
            self.letter(ch);
        }
    }

    #[inline(always)]
    fn separate(&mut self) {
        if self.state == State::Word {
            self.state = State::Gap;
        }
    }

    fn number(&mut self, digits: usize) {
        self.begin_token();
        self.out.push_str(if digits <= 3 { "0" } else { "0000" });
        self.state = State::Gap;
        self.last_special = None;
    }

    fn special(&mut self, token: &'static str) {
        if self.last_special == Some(token) {
            // `???` or three angry faces say the same as one.
            self.state = State::Gap;
            return;
        }
        self.begin_token();
        self.out.push_str(token);
        self.state = State::Gap;
        self.last_special = Some(token);
    }
}

/// Accent folding for the Latin letters that occur in Dutch, English and the
/// neighbouring languages customers write in. Returns lowercase ASCII.
fn fold(ch: char) -> Option<&'static str> {
    Some(match ch {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => {
            "a"
        }
        'æ' | 'Æ' => "ae",
        'ç' | 'ć' | 'č' | 'Ç' | 'Ć' | 'Č' => "c",
        'ď' | 'đ' | 'Ď' | 'Đ' | 'ð' | 'Ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' | 'È' | 'É' | 'Ê' | 'Ë' | 'Ě' => {
            "e"
        }
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' | 'Ì' | 'Í' | 'Î' | 'Ï' | 'İ' => "i",
        'ĳ' | 'Ĳ' => "ij",
        'ł' | 'Ł' | 'ľ' | 'Ľ' => "l",
        'ñ' | 'ń' | 'ň' | 'Ñ' | 'Ń' | 'Ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => {
            "o"
        }
        'œ' | 'Œ' => "oe",
        'ř' | 'Ř' => "r",
        'ś' | 'š' | 'ş' | 'Ś' | 'Š' | 'Ş' => "s",
        'ß' | 'ẞ' => "ss",
        'ť' | 'Ť' | 'ţ' => "t",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ů' => "u",
        'ý' | 'ÿ' | 'Ý' | 'Ÿ' => "y",
        'ź' | 'ż' | 'ž' | 'Ź' | 'Ż' | 'Ž' => "z",
        'þ' | 'Þ' => "th",
        _ => return None,
    })
}

/// Emoji that carry sentiment a contact centre cares about.
fn emoji(ch: char) -> Option<&'static str> {
    Some(match ch {
        '😠' | '😡' | '🤬' | '👿' | '💢' | '😤' | '🖕' | '👎' => "_angry",
        '🙄' | '🤦' | '😑' | '😐' | '🙃' | '😬' => "_annoyed",
        '😞' | '😢' | '😭' | '😔' | '☹' | '🙁' | '😟' | '😩' | '😫' | '😕' | '😒' => {
            "_sad"
        }
        '😀' | '😃' | '😄' | '😁' | '😊' | '🙂' | '😍' | '🥰' | '😘' | '👍' | '❤' | '♥' | '💯'
        | '🙏' | '🎉' | '😉' | '😂' | '🤩' | '👌' => "_happy",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        let mut out = String::new();
        normalize_into(s, &mut out);
        out
    }

    #[test]
    fn lowercases_folds_and_splits() {
        assert_eq!(norm("Héél  Mooi!!"), "heel mooi !");
        assert_eq!(norm("ÇA VA, Ëlla?"), "ca va ella ?");
        assert_eq!(norm("Straße"), "strasse");
        assert_eq!(norm("ĳsje"), "ijsje");
    }

    #[test]
    fn numbers_become_shape_tokens() {
        assert_eq!(norm("maat 42"), "maat 0");
        assert_eq!(norm("€49,95"), "euro 0");
        assert_eq!(norm("order 1234567"), "order 0000");
        assert_eq!(norm("1.234,56 euro"), "0 euro");
        assert_eq!(norm("06-12345678"), "0 0000");
        assert_eq!(norm("42cm"), "0 cm");
        assert_eq!(norm("mp3 speler"), "mp 0 speler");
    }

    #[test]
    fn chat_stretching_and_apostrophes() {
        assert_eq!(norm("heeeeellooo"), "heelloo");
        assert_eq!(norm("don't"), "dont");
        assert_eq!(norm("auto’s"), "autos");
        assert_eq!(norm("waarom???"), "waarom ?");
        assert_eq!(norm("? ?"), "?");
    }

    #[test]
    fn emoji_tokens() {
        assert_eq!(norm("nog steeds niks 😡😡😡"), "nog steeds niks _angry");
        assert_eq!(norm("top👍"), "top _happy");
        assert_eq!(norm("🚀 snel"), "snel");
        assert_eq!(norm("top hoor 🙄🙄"), "top hoor _annoyed");
        assert_eq!(norm("nog steeds niks!!! echt?!"), "nog steeds niks ! echt ? !");
    }

    #[test]
    fn empty_and_symbols_only() {
        assert_eq!(norm(""), "");
        assert_eq!(norm("!!! ... ---"), "!");
        assert_eq!(norm("... ---"), "");
    }

    #[test]
    fn long_input_is_bounded() {
        let long = "ë".repeat(MAX_INPUT_BYTES);
        let out = norm(&long);
        assert_eq!(out, "ee");
        let words = "ab ".repeat(10_000);
        assert!(norm(&words).len() <= MAX_INPUT_BYTES);
    }

    #[test]
    fn output_longer_than_its_input_is_cut_to_whole_tokens() {
        // Each `a1` (2 bytes) becomes `a 0 ` (4 bytes): the output would be
        // twice the bound, and normalising it again would cut it elsewhere.
        let text = "a1".repeat(MAX_INPUT_BYTES / 2);
        let once = norm(&text);
        assert!(once.len() <= MAX_INPUT_BYTES, "{}", once.len());
        assert!(once.ends_with(" 0") || once.ends_with(" a"), "{}", &once[once.len() - 8..]);
        assert_eq!(norm(&once), once);
        // Long numbers: a cut `0000` would come back as `0`.
        let text = "x12345".repeat(MAX_INPUT_BYTES / 6);
        let once = norm(&text);
        assert!(once.len() <= MAX_INPUT_BYTES);
        assert!(once.ends_with("0000") || once.ends_with('x'));
        assert_eq!(norm(&once), once);
        // One giant token is cut at a character boundary and stays put.
        let mut long = String::new();
        for i in 0..3000 {
            long.push(if i % 2 == 0 { 'ĳ' } else { 'a' });
        }
        let once = norm(&long);
        assert!(once.len() <= MAX_INPUT_BYTES);
        assert_eq!(norm(&once), once);
    }

    #[test]
    fn idempotent_on_examples() {
        for s in [
            "Wat kóst déze jas?? 😡 Order #123456",
            "İstanbul ǅemal ΣΟΦΙΑ",
            "x_y __ _angry _angry",
            "0 00 000 0000 ? ?? euro€",
            "aaa ßß ẞ ĳĳĳ",
        ] {
            let once = norm(s);
            assert_eq!(norm(&once), once, "input {s:?}");
        }
    }
}
