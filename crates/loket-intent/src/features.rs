//! Hashed features over normalised text.
//!
//! Two groups of features, each hashed into the same table of
//! `2^bucket_bits` buckets with its own seed:
//!
//! - **words**: every token, every pair of adjacent tokens (bigrams), and,
//!   when `pair_tokens > 0`, every unordered pair of distinct tokens among
//!   the first `pair_tokens` tokens of the message wherever they occur (word
//!   co-occurrence: `"card ... not ... arrived"` links `card` and `arrived`
//!   across the words between them, the degree-2 interactions a linear
//!   model cannot otherwise express). Per model, words may be taken as
//!   their English stems, pairs may skip stop words, and a `not` may follow
//!   each English negation (see [`FeatureConfig`]);
//! - **characters**: the byte n-grams of length `char_min..=char_max` of every
//!   token padded with a space on each side (`" jas "` gives `" j"`, `"ja"`,
//!   ... `"s "` for n = 2), which makes the model robust to typos and Dutch
//!   compounds. Only the first 64 bytes of a token give character n-grams.
//!
//! A message's feature vector counts occurrences per bucket; each group is
//! scaled by its weight over the square root of the number of occurrences
//! in that group (or, for a model trained with idf, of the sum of their
//! squared idf factors: [`group_scale`]), so that long and short messages
//! produce vectors of similar length. Training and scoring both go through
//! [`for_each_token`], so they can never disagree about what a feature is.

use crate::stem::{StemBuf, english_stem};

/// Feature group of a hashed feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Word unigram, bigram or co-occurrence pair (including the `not` of
    /// [`FeatureConfig::negation_token`]).
    Word,
    /// Character n-gram.
    Char,
}

/// Shape of the hashed feature space. Stored in every model file
/// ([`ModelData::features`](crate::ModelData::features)).
#[derive(Debug, Clone, Copy, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct FeatureConfig {
    /// The table has `2^bucket_bits` rows.
    pub bucket_bits: u8,
    /// Shortest character n-gram.
    pub char_min: u8,
    /// Longest character n-gram.
    pub char_max: u8,
    /// Weight of the word group.
    pub word_weight: f32,
    /// Weight of the character group.
    pub char_weight: f32,
    /// Word co-occurrence pairs are formed among this many leading words
    /// (0: none); an added `not` counts as a word. At most
    /// [`FeatureConfig::MAX_PAIR_TOKENS`], which bounds the pairs of a
    /// message to `n (n - 1) / 2`.
    pub pair_tokens: u8,
    /// Word features (unigrams, bigrams, pairs) are built from each token's
    /// English Porter2 stem ([`crate::stem::english_stem`]) instead of the
    /// token itself; character n-grams and the lexicon keep the raw token.
    pub stem_words: bool,
    /// Co-occurrence pairs are formed among content words only: English
    /// stop words ([`is_pair_stop_word`]) take no part, and do not count
    /// towards `pair_tokens`.
    pub content_pairs: bool,
    /// After an English negation (`dont`, `cant`, `never`, `no`, ... see
    /// [`is_negation`]) a word feature `not` follows, as if the message said
    /// it: contracted and plain negations then share their word features.
    pub negation_token: bool,
}

impl FeatureConfig {
    /// Smallest accepted `bucket_bits`.
    pub const MIN_BUCKET_BITS: u8 = 8;
    /// Largest accepted `bucket_bits`.
    pub const MAX_BUCKET_BITS: u8 = 24;
    /// Largest accepted `char_max`.
    pub const MAX_CHAR_N: u8 = 8;
    /// Largest accepted `pair_tokens`.
    pub const MAX_PAIR_TOKENS: u8 = 64;

    /// Bit of [`FeatureConfig::flags`] for `stem_words`.
    pub const FLAG_STEM_WORDS: u8 = 1;
    /// Bit of [`FeatureConfig::flags`] for `content_pairs`.
    pub const FLAG_CONTENT_PAIRS: u8 = 2;
    /// Bit of [`FeatureConfig::flags`] for `negation_token`.
    pub const FLAG_NEGATION_TOKEN: u8 = 4;
    /// Every defined flag bit.
    pub const KNOWN_FLAGS: u8 =
        Self::FLAG_STEM_WORDS | Self::FLAG_CONTENT_PAIRS | Self::FLAG_NEGATION_TOKEN;

    /// The boolean options as a bit set ([`FeatureConfig::FLAG_STEM_WORDS`]
    /// and the other `FLAG_*` bits).
    pub fn flags(&self) -> u8 {
        let bit = |on: bool, flag: u8| if on { flag } else { 0 };
        bit(self.stem_words, Self::FLAG_STEM_WORDS)
            | bit(self.content_pairs, Self::FLAG_CONTENT_PAIRS)
            | bit(self.negation_token, Self::FLAG_NEGATION_TOKEN)
    }

    /// This configuration with the boolean options of a bit set, or
    /// `None` when `flags` has a bit this build does not know.
    pub fn with_flags(self, flags: u8) -> Option<FeatureConfig> {
        if flags & !Self::KNOWN_FLAGS != 0 {
            return None;
        }
        Some(FeatureConfig {
            stem_words: flags & Self::FLAG_STEM_WORDS != 0,
            content_pairs: flags & Self::FLAG_CONTENT_PAIRS != 0,
            negation_token: flags & Self::FLAG_NEGATION_TOKEN != 0,
            ..self
        })
    }

    /// Number of buckets.
    pub fn buckets(&self) -> usize {
        1usize << self.bucket_bits
    }

    /// Whether the configuration is within the supported ranges (group
    /// weights finite and in `[0, 1000]`).
    pub fn is_valid(&self) -> bool {
        (Self::MIN_BUCKET_BITS..=Self::MAX_BUCKET_BITS).contains(&self.bucket_bits)
            && self.char_min >= 1
            && self.char_min <= self.char_max
            && self.char_max <= Self::MAX_CHAR_N
            && self.pair_tokens <= Self::MAX_PAIR_TOKENS
            && self.word_weight.is_finite()
            && self.char_weight.is_finite()
            && (0.0..=1e3).contains(&self.word_weight)
            && (0.0..=1e3).contains(&self.char_weight)
    }
}

impl Default for FeatureConfig {
    /// The configuration tuned on CLINC150 validation data and BANKING77
    /// cross-validation.
    fn default() -> Self {
        FeatureConfig {
            bucket_bits: 15,
            char_min: 2,
            char_max: 5,
            word_weight: 1.0,
            char_weight: 1.0,
            pair_tokens: 32,
            stem_words: false,
            content_pairs: false,
            negation_token: false,
        }
    }
}

const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const WORD_SEED: u64 = 0xcbf2_9ce4_8422_2325;
const PAIR_SEED: u64 = 0x9e37_79b9_7f4a_7c15;
const CHAR_SEED: u64 = 0x2545_f491_4f6c_dd1d;
const COOC_SEED: u64 = 0x3333_5678_9abc_def1;

/// Hash of the unordered pair of distinct word hashes `a`, `b`.
#[inline]
fn cooc(a: u64, b: u64) -> u64 {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    (lo ^ COOC_SEED).rotate_left(31).wrapping_mul(FNV_PRIME) ^ hi
}

#[inline]
const fn step(h: u64, byte: u8) -> u64 {
    (h ^ byte as u64).wrapping_mul(FNV_PRIME)
}

#[inline]
const fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed;
    let mut i = 0;
    while i < bytes.len() {
        h = step(h, bytes[i]);
        i += 1;
    }
    h
}

/// Reduction to `bits` bits by Fibonacci hashing: one multiply by 2^64/phi
/// spreads the FNV state's entropy into the top bits, which are kept.
#[inline]
fn bucket(h: u64, bits: u8) -> u32 {
    ((h ^ (h >> 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - u32::from(bits))) as u32
}

/// The per-occurrence value of a feature in a group with `weight` whose
/// occurrences have squared norm `norm_sq`: `weight / sqrt(norm_sq)`, or 0
/// for an empty group.
///
/// Without idf every occurrence has norm 1, so `norm_sq` is the group's
/// occurrence count; with idf it is the sum of the squared idf factors of
/// its occurrences, which scales every message's group to length `weight`.
#[inline]
pub fn group_scale(weight: f32, norm_sq: f32) -> f32 {
    if norm_sq > 0.0 { weight / norm_sq.sqrt() } else { 0.0 }
}

/// A bucket's term in its group's squared norm: its entry in a model's
/// per-bucket squared-idf table, or 1 when the table is empty (no idf).
/// Training and scoring both take it from here.
#[inline(always)]
pub fn squared_idf(idf_squared: &[f32], bucket: u32) -> f32 {
    idf_squared.get(bucket as usize).copied().unwrap_or(1.0)
}

/// Counts of feature occurrences per group in one message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeatureCounts {
    /// Word unigrams, bigrams and co-occurrence pairs.
    pub words: u32,
    /// Character n-grams.
    pub chars: u32,
}

impl FeatureCounts {
    /// The per-occurrence value of a feature in each group of a model
    /// without idf: `weight / sqrt(count)`, or 0 for an empty group.
    pub fn scales(&self, config: &FeatureConfig) -> (f32, f32) {
        (
            group_scale(config.word_weight, self.words as f32),
            group_scale(config.char_weight, self.chars as f32),
        )
    }
}

/// Calls `emit(bucket, group)` for every feature occurrence of a normalised
/// message (see [`crate::normalize_into`]) and returns the counts per group.
///
/// `config` must be valid ([`FeatureConfig::is_valid`]); every bucket passed
/// to `emit` is below `config.buckets()`.
#[inline]
pub fn for_each_feature(
    normalized: &str,
    config: &FeatureConfig,
    emit: impl FnMut(u32, Group),
) -> FeatureCounts {
    struct Emit<'c, F> {
        config: &'c FeatureConfig,
        emit: F,
    }
    impl<F: FnMut(u32, Group)> FeatureSink<'_> for Emit<'_, F> {
        #[inline(always)]
        fn word(&mut self, bucket: u32) {
            (self.emit)(bucket, Group::Word);
        }
        #[inline(always)]
        fn token(&mut self, token: &[u8], _hash: u64) -> u32 {
            char_features(token, self.config, |bucket| (self.emit)(bucket, Group::Char))
        }
    }
    for_each_token(normalized, config, &mut Emit { config, emit })
}

/// The longest token prefix that gives character n-grams (longer tokens use
/// only their first this many bytes).
pub const MAX_CHAR_TOKEN: usize = 64;

/// Receives a message's features from [`for_each_token`]; `'t` is the
/// lifetime of the message text, which tokens borrow.
pub trait FeatureSink<'t> {
    /// One word feature (unigram or co-occurrence pair; bigrams too, unless
    /// the sink overrides [`FeatureSink::bigram`]).
    fn word(&mut self, bucket: u32);
    /// One bigram: the word feature of the previous word and the current
    /// one. The same as [`FeatureSink::word`] unless a sink tells them apart.
    #[inline(always)]
    fn bigram(&mut self, bucket: u32) {
        self.word(bucket);
    }
    /// For a model that stems words ([`FeatureConfig::stem_words`]): the
    /// hash its word features use for `token` (whose own hash is `hash`),
    /// which must equal [`stem_hash`]`(token)`. Called once per token,
    /// before its word features and its [`FeatureSink::token`] call; a sink
    /// may take it from a cache.
    #[inline(always)]
    fn stem_hash(&mut self, token: &'t [u8], hash: u64) -> u64 {
        let _ = hash;
        stem_hash(token)
    }
    /// One token, after its word features: must account for the token's
    /// character features (normally by calling [`char_features`]) and return
    /// how many there were. `hash` is a 64-bit hash of the token's bytes.
    fn token(&mut self, token: &'t [u8], hash: u64) -> u32;
}

/// The walk behind [`for_each_feature`], split by what depends on one token
/// alone: passes every word feature (unigrams, bigrams, co-occurrence pairs)
/// to `sink.word` and then each token, in order, to `sink.token`.
///
/// A token's character features depend on its bytes and `config` only, so a
/// sink may take them from a cache instead.
#[inline(always)]
pub fn for_each_token<'t>(
    normalized: &'t str,
    config: &FeatureConfig,
    sink: &mut impl FeatureSink<'t>,
) -> FeatureCounts {
    debug_assert!(config.is_valid());
    let mut counts = FeatureCounts::default();
    let mut words = WordWalk {
        bits: config.bucket_bits,
        prev: None,
        seen: [0; FeatureConfig::MAX_PAIR_TOKENS as usize],
        n_seen: 0,
        pair_tokens: usize::from(config.pair_tokens).min(FeatureConfig::MAX_PAIR_TOKENS.into()),
    };
    // Tokens are the non-empty runs between spaces (an ASCII byte, so
    // splitting the bytes never cuts a UTF-8 sequence).
    for bytes in normalized.as_bytes().split(|&b| b == b' ') {
        if bytes.is_empty() {
            continue;
        }
        let h = hash_bytes(WORD_SEED, bytes);
        let word = if config.stem_words { sink.stem_hash(bytes, h) } else { h };
        let pairs = !(config.content_pairs && is_pair_stop_word(bytes));
        counts.words += words.push(word, pairs, sink);
        if config.negation_token && is_negation(bytes) {
            counts.words += words.push(NOT_HASH, true, sink);
        }
        counts.chars += sink.token(bytes, h);
    }
    counts
}

/// The hash the word features of a model that stems words use for `token`:
/// the hash of its English stem ([`english_stem`]).
#[inline]
pub fn stem_hash(token: &[u8]) -> u64 {
    let mut buf = StemBuf::new();
    hash_bytes(WORD_SEED, english_stem(token, &mut buf))
}

/// Hash of the word `not`, the word feature [`FeatureConfig::negation_token`] adds.
const NOT_HASH: u64 = hash_bytes(WORD_SEED, b"not");

/// The word features of a message so far: the previous word (for bigrams)
/// and the leading words that form co-occurrence pairs.
struct WordWalk {
    bits: u8,
    prev: Option<u64>,
    seen: [u64; FeatureConfig::MAX_PAIR_TOKENS as usize],
    n_seen: usize,
    pair_tokens: usize,
}

impl WordWalk {
    /// Emits the word features of the next word (hash `h`): its unigram,
    /// its bigram with the previous word, and, when `pairs` and fewer than
    /// `pair_tokens` words have paired yet, its pairs with every distinct
    /// earlier pairing word. Returns how many features it emitted.
    #[inline(always)]
    fn push<'t>(&mut self, h: u64, pairs: bool, sink: &mut impl FeatureSink<'t>) -> u32 {
        let bits = self.bits;
        sink.word(bucket(h, bits));
        let mut n = 1;
        if let Some(p) = self.prev {
            let pair = (p ^ PAIR_SEED).rotate_left(23).wrapping_mul(FNV_PRIME) ^ h;
            sink.bigram(bucket(pair, bits));
            n += 1;
        }
        self.prev = Some(h);
        if pairs && self.n_seen < self.pair_tokens {
            for &p in &self.seen[..self.n_seen] {
                if p != h {
                    sink.word(bucket(cooc(p, h), bits));
                    n += 1;
                }
            }
            self.seen[self.n_seen] = h;
            self.n_seen += 1;
        }
        n
    }
}

/// English words left out of co-occurrence pairs under
/// [`FeatureConfig::content_pairs`]: articles, pronouns, auxiliaries and
/// other function words that pair with everything and so say little.
pub fn is_pair_stop_word(token: &[u8]) -> bool {
    matches!(
        token,
        b"a" | b"an"
            | b"the"
            | b"my"
            | b"i"
            | b"me"
            | b"to"
            | b"is"
            | b"are"
            | b"was"
            | b"be"
            | b"been"
            | b"of"
            | b"for"
            | b"in"
            | b"on"
            | b"at"
            | b"it"
            | b"its"
            | b"this"
            | b"that"
            | b"and"
            | b"or"
            | b"do"
            | b"does"
            | b"did"
            | b"have"
            | b"has"
            | b"had"
            | b"am"
            | b"with"
            | b"from"
            | b"by"
            | b"so"
            | b"just"
            | b"please"
            | b"you"
            | b"your"
            | b"im"
            | b"some"
            | b"any"
            | b"there"
            | b"would"
            | b"could"
            | b"should"
            | b"will"
            | b"can"
            | b"if"
            | b"as"
            | b"we"
            | b"our"
            | b"us"
            | b"still"
            | b"get"
            | b"got"
    )
}

/// English negations (in normalised form, apostrophes dropped) that
/// [`FeatureConfig::negation_token`] follows with a `not`.
pub fn is_negation(token: &[u8]) -> bool {
    matches!(
        token,
        b"dont"
            | b"doesnt"
            | b"didnt"
            | b"isnt"
            | b"arent"
            | b"wasnt"
            | b"werent"
            | b"hasnt"
            | b"havent"
            | b"hadnt"
            | b"cant"
            | b"cannot"
            | b"couldnt"
            | b"wont"
            | b"wouldnt"
            | b"shouldnt"
            | b"aint"
            | b"never"
            | b"no"
    )
}

/// Calls `emit(bucket)` for every character n-gram of one token (length
/// `char_min..=char_max` over the token padded with a space on each side,
/// first [`MAX_CHAR_TOKEN`] bytes only) and returns how many there were.
#[inline(always)]
pub fn char_features(token: &[u8], config: &FeatureConfig, mut emit: impl FnMut(u32)) -> u32 {
    let bits = config.bucket_bits;
    let (cmin, cmax) = (usize::from(config.char_min), usize::from(config.char_max));
    // " token " in a padded copy on the stack.
    let mut padded = [b' '; MAX_CHAR_TOKEN + 2];
    let len = token.len().min(MAX_CHAR_TOKEN);
    padded[1..=len].copy_from_slice(&token[..len]);
    let padded = &padded[..len + 2];
    let mut n_features = 0;
    for start in 0..padded.len() {
        let window = &padded[start..padded.len().min(start + cmax)];
        let mut h = CHAR_SEED;
        for (n, &b) in window.iter().enumerate() {
            h = step(h, b);
            if n + 1 >= cmin {
                emit(bucket(h, bits));
                n_features += 1;
            }
        }
    }
    n_features
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(text: &str, config: &FeatureConfig) -> (Vec<(u32, Group)>, FeatureCounts) {
        let mut v = Vec::new();
        let counts = for_each_feature(text, config, |b, g| v.push((b, g)));
        (v, counts)
    }

    #[test]
    fn counts_match_definition() {
        let config = FeatureConfig {
            bucket_bits: 12,
            char_min: 2,
            char_max: 3,
            word_weight: 1.0,
            char_weight: 1.0,
            pair_tokens: 0,
            ..FeatureConfig::default()
        };
        // "ab cd": 2 unigrams + 1 bigram; " ab " has 3 bigrams + 2 trigrams, same for cd.
        let (v, counts) = collect("ab cd", &config);
        assert_eq!(counts, FeatureCounts { words: 3, chars: 10 });
        assert_eq!(v.len(), 13);
        assert!(v.iter().all(|&(b, _)| (b as usize) < config.buckets()));
        // With pairs: "ab cd ab" adds ab-cd, cd-ab (the same unordered pair)
        // and no ab-ab pair.
        let pairs = FeatureConfig { pair_tokens: 8, ..config };
        let (_, without) = collect("ab cd ab", &config);
        let (v, with) = collect("ab cd ab", &pairs);
        assert_eq!(with.words, without.words + 2);
        let word: Vec<u32> = v.iter().filter(|f| f.1 == Group::Word).map(|f| f.0).collect();
        assert_eq!(word.len(), 7);
        assert_eq!(word.iter().filter(|&&b| b == word[3]).count(), 2, "{word:?}");
    }

    #[test]
    fn pairs_are_bounded_by_pair_tokens() {
        let config = FeatureConfig { pair_tokens: 4, ..FeatureConfig::default() };
        let text = (0..100).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
        let (_, counts) = collect(&text, &config);
        // 100 unigrams + 99 bigrams + 4 * 3 / 2 pairs.
        assert_eq!(counts.words, 100 + 99 + 6);
        let max = FeatureConfig { pair_tokens: FeatureConfig::MAX_PAIR_TOKENS, ..config };
        assert!(max.is_valid());
        assert!(
            !FeatureConfig { pair_tokens: FeatureConfig::MAX_PAIR_TOKENS + 1, ..config }.is_valid()
        );
    }

    fn word_buckets(text: &str, config: &FeatureConfig) -> Vec<u32> {
        let (v, _) = collect(text, config);
        v.into_iter().filter(|f| f.1 == Group::Word).map(|f| f.0).collect()
    }

    fn char_buckets(text: &str, config: &FeatureConfig) -> Vec<u32> {
        let (v, _) = collect(text, config);
        v.into_iter().filter(|f| f.1 == Group::Char).map(|f| f.0).collect()
    }

    #[test]
    fn stemmed_words_share_word_features_but_keep_their_characters() {
        let plain = FeatureConfig { pair_tokens: 0, ..FeatureConfig::default() };
        let stemmed = FeatureConfig { stem_words: true, ..plain };
        assert_ne!(word_buckets("transferring", &plain), word_buckets("transfers", &plain));
        assert_eq!(word_buckets("transferring", &stemmed), word_buckets("transfers", &stemmed));
        assert_eq!(word_buckets("transfer", &stemmed), word_buckets("transfers", &stemmed));
        // Bigrams are over stems too.
        assert_eq!(
            word_buckets("cards declined", &stemmed),
            word_buckets("card declining", &stemmed)
        );
        // Characters come from the raw token either way.
        assert_eq!(char_buckets("transferring", &stemmed), char_buckets("transferring", &plain));
    }

    #[test]
    fn content_pairs_leave_stop_words_out() {
        let all = FeatureConfig { pair_tokens: 32, ..FeatureConfig::default() };
        let content = FeatureConfig { content_pairs: true, ..all };
        // "my card is lost": 4 unigrams + 3 bigrams, and pairs among 4 words
        // (6) or among the content words card and lost (1).
        assert_eq!(collect("my card is lost", &all).1.words, 4 + 3 + 6);
        assert_eq!(collect("my card is lost", &content).1.words, 4 + 3 + 1);
        // Stop words do not use up the pair budget.
        let narrow = FeatureConfig { pair_tokens: 2, ..content };
        assert_eq!(collect("the a an card lost", &narrow).1.words, 5 + 4 + 1);
        assert!(is_pair_stop_word(b"the") && !is_pair_stop_word(b"card"));
    }

    #[test]
    fn negations_are_followed_by_not() {
        let base = FeatureConfig { pair_tokens: 0, ..FeatureConfig::default() };
        let neg = FeatureConfig { negation_token: true, ..base };
        // "dont work": dont, not, work + 2 bigrams.
        assert_eq!(collect("dont work", &neg).1.words, 5);
        assert_eq!(collect("dont work", &base).1.words, 3);
        // The contracted and the plain negation share the `not` unigram and
        // the `not work` bigram.
        let contracted = word_buckets("dont work", &neg);
        let plain = word_buckets("do not work", &neg);
        let shared = contracted.iter().filter(|b| plain.contains(b)).count();
        assert!(shared >= 3, "{contracted:?} {plain:?}");
        // No character features for the added word.
        assert_eq!(collect("dont work", &neg).1.chars, collect("dont work", &base).1.chars);
        assert!(is_negation(b"cant") && !is_negation(b"not"));
    }

    #[test]
    fn flags_round_trip_and_unknown_bits_are_refused() {
        for flags in 0..=FeatureConfig::KNOWN_FLAGS {
            let config = FeatureConfig::default().with_flags(flags).unwrap();
            assert_eq!(config.flags(), flags);
        }
        assert!(FeatureConfig::default().with_flags(8).is_none());
        assert!(FeatureConfig::default().with_flags(0x80).is_none());
    }

    #[test]
    fn group_scale_is_weight_over_the_norm() {
        assert_eq!(group_scale(2.0, 4.0), 1.0);
        assert_eq!(group_scale(1.0, 0.0), 0.0);
        let counts = FeatureCounts { words: 9, chars: 0 };
        assert_eq!(counts.scales(&FeatureConfig::default()), (1.0 / 3.0, 0.0));
    }

    #[test]
    fn token_hash_is_the_lexicon_hash() {
        // The scorer hashes each token once and passes it to the lexicon.
        for token in ["prijs", "ij", "", "straße", "0000"] {
            assert_eq!(
                hash_bytes(WORD_SEED, token.as_bytes()),
                crate::lexicon::token_hash(token.as_bytes())
            );
        }
    }

    #[test]
    fn empty_text_has_no_features() {
        let (v, counts) = collect("", &FeatureConfig::default());
        assert!(v.is_empty());
        assert_eq!(counts, FeatureCounts::default());
        assert_eq!(counts.scales(&FeatureConfig::default()), (0.0, 0.0));
    }

    #[test]
    fn bigram_order_matters_and_groups_differ() {
        let config = FeatureConfig::default();
        let (ab, _) = collect("a b", &config);
        let (ba, _) = collect("b a", &config);
        let bigram = |v: &[(u32, Group)]| v.iter().filter(|f| f.1 == Group::Word).nth(2).copied();
        assert_ne!(bigram(&ab), bigram(&ba));
    }

    #[test]
    fn single_char_token_is_still_covered() {
        let config = FeatureConfig { char_min: 4, char_max: 5, ..FeatureConfig::default() };
        // " ? " is only three bytes long: no character n-gram of length 4 or 5.
        let (_, counts) = collect("?", &config);
        assert_eq!(counts, FeatureCounts { words: 1, chars: 0 });
    }
}
