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
//!   model cannot otherwise express);
//! - **characters**: the byte n-grams of length `char_min..=char_max` of every
//!   token padded with a space on each side (`" jas "` gives `" j"`, `"ja"`,
//!   ... `"s "` for n = 2), which makes the model robust to typos and Dutch
//!   compounds. Only the first 64 bytes of a token give character n-grams.
//!
//! A message's feature vector counts occurrences per bucket; each group is
//! scaled by its weight over the square root of the number of occurrences
//! in that group, so that long and short messages produce vectors of similar
//! length. Training and scoring both go through [`for_each_feature`], so
//! they can never disagree about what a feature is.

/// Feature group of a hashed feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Word unigram or bigram.
    Word,
    /// Character n-gram.
    Char,
}

/// Shape of the hashed feature space. Stored in every model file.
#[derive(Debug, Clone, Copy, PartialEq)]
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
    /// Word co-occurrence pairs are formed among this many leading tokens
    /// (0: none). At most [`FeatureConfig::MAX_PAIR_TOKENS`], which bounds
    /// the pairs of a message to `n (n - 1) / 2`.
    pub pair_tokens: u8,
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
fn step(h: u64, byte: u8) -> u64 {
    (h ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
}

#[inline]
fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(seed, |h, &b| step(h, b))
}

/// Reduction to `bits` bits by Fibonacci hashing: one multiply by 2^64/phi
/// spreads the FNV state's entropy into the top bits, which are kept.
#[inline]
fn bucket(h: u64, bits: u8) -> u32 {
    ((h ^ (h >> 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - u32::from(bits))) as u32
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
    /// The per-occurrence value of a feature in each group:
    /// `weight / sqrt(count)`, or 0 for an empty group.
    pub fn scales(&self, config: &FeatureConfig) -> (f32, f32) {
        let s = |weight: f32, n: u32| {
            if n == 0 { 0.0 } else { weight / (n as f32).sqrt() }
        };
        (s(config.word_weight, self.words), s(config.char_weight, self.chars))
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
    /// One word feature (unigram, bigram or co-occurrence pair).
    fn word(&mut self, bucket: u32);
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
    let bits = config.bucket_bits;
    let mut counts = FeatureCounts::default();
    let mut prev: Option<u64> = None;
    // Hashes of the leading tokens, for co-occurrence pairs.
    let mut seen = [0u64; FeatureConfig::MAX_PAIR_TOKENS as usize];
    let mut n_seen = 0usize;
    let pair_tokens = usize::from(config.pair_tokens).min(seen.len());
    // Tokens are the non-empty runs between spaces (an ASCII byte, so
    // splitting the bytes never cuts a UTF-8 sequence).
    for bytes in normalized.as_bytes().split(|&b| b == b' ') {
        if bytes.is_empty() {
            continue;
        }
        let h = hash_bytes(WORD_SEED, bytes);
        sink.word(bucket(h, bits));
        counts.words += 1;
        if let Some(p) = prev {
            let pair = (p ^ PAIR_SEED).rotate_left(23).wrapping_mul(FNV_PRIME) ^ h;
            sink.word(bucket(pair, bits));
            counts.words += 1;
        }
        prev = Some(h);
        if n_seen < pair_tokens {
            for &p in &seen[..n_seen] {
                if p != h {
                    sink.word(bucket(cooc(p, h), bits));
                    counts.words += 1;
                }
            }
            seen[n_seen] = h;
            n_seen += 1;
        }
        counts.chars += sink.token(bytes, h);
    }
    counts
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
