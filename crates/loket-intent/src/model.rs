//! The model file format, loading, and the scoring hot path.
//!
//! # File format (version 3)
//!
//! ```text
//! offset  size  field
//!      0     8  magic  b"LKINTENT"
//!      8     4  format version, u32 little endian (= 3)
//!     12     4  CRC-32 (IEEE) of the payload, u32 little endian
//!     16     8  payload length in bytes, u64 little endian
//!     24     8  reserved, zero
//!     32     n  payload: an rkyv 0.8 archive of [`ModelData`]
//! ```
//!
//! Loading checks, in order: magic, version, length, checksum, the rkyv
//! archive (bytecheck validation, so no out-of-bounds pointer or invalid
//! value survives), and the model's own invariants (dimensions agree, floats
//! are finite). Only then is the archive accessed, in place: the weights are
//! never copied or deserialised.
//!
//! # Weight layout
//!
//! Weights are `i8`, feature-major: row `b` (one per hash bucket) holds the
//! weights of all classes for that bucket, contiguous and padded with zeros to
//! a multiple of 16 classes (the row *stride*), so a feature costs one
//! sequential read of `stride` bytes. Each class has its own dequantisation
//! scale. Scoring first hashes the message's features into bucket lists, then
//! sums their rows block by block (up to 128 classes at a time, held in registers as
//! `i16` and flushed to `i32` before they could overflow), separately for word
//! and character features, and computes
//! `score[c] = bias[c] + scale[c] * (sw * acc_word[c] + sc * acc_char[c])`
//! with the group scales `sw`, `sc` of [`group_scale`]: each group's weight
//! over the square root of its squared norm, which is its occurrence count
//! or, for a model trained with idf, the sum of its occurrences'
//! [`ModelData::idf_squared`] (the idf itself is folded into the weights).
//!
//! A token's character n-grams (and its lexicon facts) depend on the token
//! alone, so each [`Scratch`] caches, per token, the exact sum of its
//! character rows: a word seen before adds one row of `stride` sums instead
//! of reading some 25 scattered rows. The cache changes no score.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use rkyv::rancor;
use rkyv::util::AlignedVec;

use crate::features::{
    FeatureConfig, FeatureSink, char_features, for_each_token, group_scale, squared_idf, stem_hash,
};
use crate::language::Language;
use crate::lexicon::{self, Analysis, TokenFacts};
use crate::normalize::normalize_into;
use crate::signals::Signals;

/// Magic bytes at the start of every model file.
pub const MAGIC: [u8; 8] = *b"LKINTENT";
/// The format version this build reads and writes.
///
/// Version 2 added [`ModelData::pair_tokens`] (word co-occurrence features);
/// version 3 added [`ModelData::feature_flags`] (stems, content pairs, the
/// negation token) and [`ModelData::idf_squared`] (idf-normalised groups).
/// Files of other versions are refused with
/// [`ModelError::UnsupportedVersion`]: retrain them (training is
/// deterministic).
pub const FORMAT_VERSION: u32 = 3;
/// Length of the header before the rkyv payload (a multiple of 16, so the
/// payload of a 16-aligned file is 16-aligned).
pub const HEADER_LEN: usize = 32;
/// The label reported for out-of-scope messages.
pub const OOS_LABEL: &str = "oos";
/// Most classes a model may have.
pub const MAX_CLASSES: usize = 4096;

/// Errors from loading or writing a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The bytes do not start with [`MAGIC`].
    #[error("not a loket intent model (the file does not start with the LKINTENT magic bytes)")]
    NotAModel,
    /// The file is shorter (or longer) than its header says.
    #[error("model file has the wrong length: header promises {expected} bytes, file has {actual}")]
    Truncated {
        /// Length promised by the header (header included).
        expected: u64,
        /// Actual length.
        actual: u64,
    },
    /// Written by a newer or older, incompatible build.
    #[error("unsupported model format version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// The payload does not match its checksum.
    #[error(
        "model checksum mismatch: header says {expected:#010x}, payload hashes to {actual:#010x}"
    )]
    Checksum {
        /// Checksum in the header.
        expected: u32,
        /// Checksum of the payload.
        actual: u32,
    },
    /// The payload is not a valid archive.
    #[error("model data is corrupt: {0}")]
    Corrupt(String),
    /// The archive is well formed but the model breaks an invariant.
    #[error("model is inconsistent: {0}")]
    Invalid(String),
    /// The model file could not be read or written.
    #[error("cannot open {path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error (in the message, so not also a `source`).
        reason: std::io::Error,
    },
}

/// Everything a model file stores. Produced by [`crate::train::train`];
/// written with [`ModelData::to_bytes`]; read back zero-copy by [`Model`].
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct ModelData {
    /// Free-form provenance (training command, data sizes).
    pub description: String,
    /// `log2` of the number of hash buckets.
    pub bucket_bits: u8,
    /// Shortest character n-gram.
    pub char_min: u8,
    /// Longest character n-gram.
    pub char_max: u8,
    /// Weight of the word feature group.
    pub word_weight: f32,
    /// Weight of the character feature group.
    pub char_weight: f32,
    /// Word co-occurrence pairs among this many leading tokens (0: none);
    /// see [`FeatureConfig::pair_tokens`].
    pub pair_tokens: u8,
    /// The boolean feature options ([`FeatureConfig::flags`]: stems, content
    /// pairs, negation token). A bit this build does not know makes the
    /// model invalid.
    pub feature_flags: u8,
    /// Per bucket, the square of the idf factor folded into its weights:
    /// a feature group's norm is the sum of these over its occurrences (see
    /// [`crate::features::group_scale`]). Empty for a model without idf,
    /// where every occurrence counts 1.
    pub idf_squared: Vec<f32>,
    /// Class labels, one per class.
    pub labels: Vec<String>,
    /// Per class: whether it is a buying (pre-purchase) intent.
    pub buying: Vec<bool>,
    /// Index of the class labelled [`OOS_LABEL`], or `u32::MAX`.
    pub oos_class: u32,
    /// Messages whose confidence is below this are out of scope.
    pub oos_threshold: f32,
    /// Softmax inverse temperature applied to the class scores.
    pub temperature: f32,
    /// Per class dequantisation scale of the weights.
    pub class_scale: Vec<f32>,
    /// Per class bias.
    pub bias: Vec<f32>,
    /// `2^bucket_bits * stride` quantised weights, feature-major, where
    /// `stride` is `labels.len()` rounded up to a multiple of 16 (see
    /// [`row_stride`]); padding weights are zero.
    pub weights: Vec<i8>,
}

impl ModelData {
    /// The feature configuration (flag bits this build does not know are
    /// dropped here; [`ModelData::to_bytes`] refuses them).
    pub fn feature_config(&self) -> FeatureConfig {
        let config = FeatureConfig {
            bucket_bits: self.bucket_bits,
            char_min: self.char_min,
            char_max: self.char_max,
            word_weight: self.word_weight,
            char_weight: self.char_weight,
            pair_tokens: self.pair_tokens,
            ..FeatureConfig::default()
        };
        config.with_flags(self.feature_flags & FeatureConfig::KNOWN_FLAGS).unwrap_or(config)
    }

    /// Serialises into a model file (header and payload).
    ///
    /// # Errors
    /// [`ModelError::Invalid`] when the model breaks an invariant.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelError> {
        check_invariants(&View {
            config: self.feature_config(),
            feature_flags: self.feature_flags,
            idf_squared: &self.idf_squared,
            labels: self.labels.len(),
            buying: self.buying.len(),
            oos_class: self.oos_class,
            oos_threshold: self.oos_threshold,
            temperature: self.temperature,
            class_scale: &self.class_scale,
            bias: &self.bias,
            weights: self.weights.len(),
        })?;
        let payload = rkyv::to_bytes::<rancor::Error>(self)
            .map_err(|e| ModelError::Invalid(format!("cannot serialise: {e}")))?;
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&[0u8; 8]);
        out.extend_from_slice(&payload);
        Ok(out)
    }
}

/// What [`check_invariants`] needs, from either the native or the archived form.
struct View<'a, F> {
    config: FeatureConfig,
    feature_flags: u8,
    idf_squared: &'a [f32],
    labels: usize,
    buying: usize,
    oos_class: u32,
    oos_threshold: f32,
    temperature: f32,
    class_scale: &'a [F],
    bias: &'a [F],
    weights: usize,
}

fn check_invariants<F: Copy + Into<f32>>(v: &View<'_, F>) -> Result<(), ModelError> {
    let invalid = |what: &str| Err(ModelError::Invalid(what.to_owned()));
    if !v.config.is_valid() {
        return invalid("feature configuration out of range");
    }
    if v.feature_flags & !FeatureConfig::KNOWN_FLAGS != 0 {
        return Err(ModelError::Invalid(format!(
            "unknown feature flags {:#04x} (this build knows {:#04x})",
            v.feature_flags,
            FeatureConfig::KNOWN_FLAGS
        )));
    }
    if !v.idf_squared.is_empty() && v.idf_squared.len() != v.config.buckets() {
        return invalid("idf table size is neither 0 nor the number of buckets");
    }
    // Trained factors are at least 1, so a group's scale never exceeds its
    // weight (as without idf).
    if !v.idf_squared.iter().all(|&x| (1.0..1e6).contains(&x)) {
        return invalid("idf factors must be finite, at least 1 and below 1e3");
    }
    let n = v.labels;
    if n == 0 || n > MAX_CLASSES {
        return invalid("number of classes must be between 1 and 4096");
    }
    if v.buying.max(v.class_scale.len()).max(v.bias.len()) != n
        || v.buying.min(v.class_scale.len()).min(v.bias.len()) != n
    {
        return invalid("per-class arrays disagree with the number of labels");
    }
    if Some(v.weights) != v.config.buckets().checked_mul(row_stride(n)) {
        return invalid("weight table size is not buckets x row stride");
    }
    if v.oos_class != u32::MAX && v.oos_class as usize >= n {
        return invalid("oos class index out of range");
    }
    if !(0.0..=1.0).contains(&v.oos_threshold) {
        return invalid("oos threshold outside [0, 1]");
    }
    if !(v.temperature.is_finite() && v.temperature > 0.0) {
        return invalid("temperature must be finite and positive");
    }
    let finite = |xs: &[F]| xs.iter().all(|&x| x.into().is_finite() && x.into().abs() < 1e6);
    if !finite(v.class_scale) || !finite(v.bias) {
        return invalid("scales and biases must be finite and below 1e6");
    }
    Ok(())
}

/// Length of one weight row for `n_classes` classes: rounded up to a
/// multiple of 16 so the accumulation kernel needs no remainder loop.
pub const fn row_stride(n_classes: usize) -> usize {
    n_classes.div_ceil(16) * 16
}

/// Identifies a class of a [`Model`], or out-of-scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IntentId(pub u16);

impl IntentId {
    /// Out of scope: no class fits, or the model's `oos` class won.
    pub const OOS: IntentId = IntentId(u16::MAX);

    /// Whether this is [`IntentId::OOS`].
    pub fn is_oos(self) -> bool {
        self == IntentId::OOS
    }
}

/// The result of scoring one message. `Copy`, allocation-free.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// The predicted intent ([`Model::label`] names it).
    pub intent: IntentId,
    /// Probability of the most likely class, in `[0, 1]` (also when the
    /// message is out of scope: then it is the probability that was too low).
    pub confidence: f32,
    /// Probability that the customer is about to buy, in `[0, 1]`.
    pub buying_intent: f32,
    /// Dutch, English or unknown.
    pub language: Language,
    /// Topic and handoff signals from the lexicon.
    pub signals: Signals,
}

/// Per-thread working memory for [`Model::score`]. Reuse one per thread:
/// after the first few messages, scoring allocates nothing.
///
/// A scratch also caches, per token, the summed character-feature rows of
/// the model it last scored with (and, for a model that stems words, the
/// token's stem), so a word it has seen before costs one row read instead
/// of one per character n-gram. The cache is exact (scores
/// are bit-identical with or without it) and is only allocated once the
/// scratch has scored 64 messages with the same model, so a scratch used for
/// a handful of messages stays small.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    text: String,
    word_buckets: Vec<u32>,
    char_buckets: Vec<u32>,
    acc_word: Vec<i32>,
    acc_char: Vec<i32>,
    scores: Vec<f32>,
    exps: Vec<f32>,
    tokens: TokenCache,
}

impl Scratch {
    /// Empty scratch space; it grows to fit the model and the messages.
    pub fn new() -> Scratch {
        Scratch::default()
    }

    /// Scratch space that never caches tokens: every message is scored
    /// from its n-grams (for tests and comparisons; slower).
    pub fn without_token_cache() -> Scratch {
        Scratch { tokens: TokenCache { disabled: true, ..TokenCache::default() }, ..Scratch::new() }
    }

    /// The normalised text of the last scored message.
    pub fn normalized(&self) -> &str {
        &self.text
    }

    /// How many tokens were found in the token cache, and how many were
    /// looked up, since this scratch was made.
    pub fn token_cache_hits(&self) -> (u64, u64) {
        (self.tokens.hits, self.tokens.lookups)
    }
}

/// A direct-mapped cache from token to the sum of its character-feature
/// rows, for one model (identified by [`Model`]'s load-time id).
///
/// Invariants: an occupied slot holds a token of at most
/// [`TokenCache::MAX_TOKEN`] bytes, its exact bytes, its number of character
/// features, and the exact `i16` sum of their weight rows: at most
/// [`TokenCache::MAX_ROWS`] rows of `i8`, so the sum stays within `i16`.
/// Entries are dropped whenever the model changes.
#[derive(Debug, Default, Clone)]
struct TokenCache {
    /// Never allocate or use the cache.
    disabled: bool,
    /// Id of the model the entries belong to (0: none yet).
    model: u64,
    /// Messages scored with `model`, counted up to [`TokenCache::WARM_UP`].
    scored: u32,
    /// Row length of `model`.
    stride: usize,
    /// Per slot: the [`TokenCache::key`] of its token (all zero: empty).
    keys: Vec<[u8; 32]>,
    /// Per slot: number of character features of the token.
    counts: Vec<u32>,
    /// Per slot: the squared norm of the token's character features (the
    /// sum of their [`ModelData::idf_squared`], or their count).
    norms: Vec<f32>,
    /// Per slot: the token's lexicon facts (signals, language votes).
    facts: Vec<TokenFacts>,
    /// Per slot: the hash of the token's stem (see [`stem_hash`]) when the
    /// model stems words, else 0.
    stems: Vec<u64>,
    /// Per slot: `stride` summed weights.
    sums: Vec<i16>,
    hits: u64,
    lookups: u64,
}

impl TokenCache {
    /// Longest token that is cached.
    const MAX_TOKEN: usize = 31;
    /// Most character n-grams a cached token can have: n-grams of lengths
    /// 1 to [`FeatureConfig::MAX_CHAR_N`] over `MAX_TOKEN + 2` padded bytes.
    /// Times 128 (the largest `|i8|`) it stays below `i16::MAX`.
    const MAX_ROWS: usize = 236;
    /// Messages a scratch scores with one model before it allocates a cache.
    /// ([`Scratch`]'s docs name the number: keep them in step.)
    const WARM_UP: u32 = 64;
    /// Memory budget of the row sums, in bytes (the slot count is the
    /// largest power of two that fits, at most [`TokenCache::MAX_SLOTS`]).
    const BUDGET_BYTES: usize = 4 << 20;
    const MAX_SLOTS: usize = 16_384;

    /// Prepares for scoring one message with `model`; returns whether the
    /// cache is in use for it.
    fn begin(&mut self, model: &Model) -> bool {
        if self.disabled {
            return false;
        }
        if self.model != model.id {
            self.model = model.id;
            self.scored = 0;
            self.keys = Vec::new();
            self.counts = Vec::new();
            self.norms = Vec::new();
            self.facts = Vec::new();
            self.stems = Vec::new();
            self.sums = Vec::new();
        }
        if self.scored < Self::WARM_UP {
            self.scored += 1;
            return false;
        }
        if self.keys.is_empty() {
            let stride = row_stride(model.n_classes);
            let slots = (Self::BUDGET_BYTES / (2 * stride)).clamp(1, Self::MAX_SLOTS);
            let slots = 1 << slots.ilog2();
            self.stride = stride;
            self.keys = vec![[0; 32]; slots];
            self.counts = vec![0; slots];
            self.norms = vec![0.0; slots];
            self.facts = vec![TokenFacts::default(); slots];
            self.stems = vec![0; slots];
            self.sums = vec![0; slots * stride];
        }
        true
    }

    /// The fixed-size key of a token of at most `MAX_TOKEN` bytes: its
    /// length, then its bytes, zero-padded (never all zero).
    #[inline(always)]
    fn key(token: &[u8]) -> [u8; 32] {
        let mut key = [0u8; 32];
        key[0] = token.len() as u8;
        key[1..=token.len()].copy_from_slice(token);
        key
    }

    /// The slot holding `token`, filled first when it holds something else:
    /// the token's character-feature row sum, count and squared norm (see
    /// [`Sink`]), its lexicon facts and, for a model that stems words, the
    /// hash of its stem. `hash` is the token's hash from [`for_each_token`]
    /// (which is also its [`lexicon::token_hash`]). Tokens longer than
    /// [`TokenCache::MAX_TOKEN`] bytes (and empty ones) return `None`.
    #[inline(always)]
    fn slot(
        &mut self,
        token: &[u8],
        hash: u64,
        config: &FeatureConfig,
        weights: &[i8],
        idf_squared: &[f32],
    ) -> Option<usize> {
        if token.is_empty() || token.len() > Self::MAX_TOKEN {
            return None;
        }
        let stride = self.stride;
        self.lookups += 1;
        let key = Self::key(token);
        let slot =
            (hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize & (self.keys.len() - 1);
        if self.keys[slot] == key {
            self.hits += 1;
            return Some(slot);
        }
        let sum = &mut self.sums[slot * stride..(slot + 1) * stride];
        sum.fill(0);
        let mut norm = 0.0f32;
        let count = char_features(token, config, |bucket| {
            norm += squared_idf(idf_squared, bucket);
            let offset = bucket as usize * stride;
            if let Some(row) = weights.get(offset..offset + stride) {
                for (s, &w) in sum.iter_mut().zip(row) {
                    *s += i16::from(w);
                }
            }
        });
        debug_assert!(count as usize <= Self::MAX_ROWS);
        self.keys[slot] = key;
        self.counts[slot] = count;
        self.norms[slot] = norm;
        self.facts[slot] = lexicon::token_facts(token, hash);
        self.stems[slot] = if config.stem_words { stem_hash(token) } else { 0 };
        Some(slot)
    }

    /// Adds the row sum of a slot from [`TokenCache::slot`] to `acc` and
    /// returns its feature count, squared norm and lexicon facts.
    #[inline(always)]
    fn add(&self, slot: usize, acc: &mut [i32]) -> (u32, f32, TokenFacts) {
        let sum = &self.sums[slot * self.stride..(slot + 1) * self.stride];
        for (a, &s) in acc.iter_mut().zip(sum) {
            *a += i32::from(s);
        }
        (self.counts[slot], self.norms[slot], self.facts[slot])
    }
}

enum Backing {
    Static(&'static [u8]),
    Owned(AlignedVec<16>),
}

/// A loaded, validated intent model. `Send + Sync`: share one behind an
/// `Arc` and give every thread its own [`Scratch`].
pub struct Model {
    /// Unique per loaded model in this process (never 0): keys the token
    /// caches of [`Scratch`]es.
    id: u64,
    backing: Backing,
    config: FeatureConfig,
    n_classes: usize,
    // Small per-class arrays are copied out of the archive at load time so the
    // hot path reads native floats; the weight table stays in place.
    class_scale: Vec<f32>,
    bias: Vec<f32>,
    /// See [`ModelData::idf_squared`] (empty: no idf).
    idf_squared: Vec<f32>,
    buying: Vec<bool>,
    /// 1.0 for buying classes, 0.0 otherwise (multiplied in the softmax sum).
    buying_mask: Vec<f32>,
    has_buying: bool,
    oos_class: Option<usize>,
    oos_threshold: f32,
    temperature: f32,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("classes", &self.n_classes)
            .field("config", &self.config)
            .field("oos_threshold", &self.oos_threshold)
            .field("temperature", &self.temperature)
            .field("bytes", &self.file_bytes().len())
            .finish()
    }
}

/// The embedded model's file, aligned so it can be read in place.
#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);

static BUILTIN_BYTES: &Aligned<[u8]> = &Aligned(*include_bytes!("../models/builtin.lkm"));

static BUILTIN: LazyLock<Model> = LazyLock::new(|| {
    // The embedded bytes are fixed at compile time and a test loads them, so
    // a failure here is a build defect, not an input error.
    Model::from_static(&BUILTIN_BYTES.0).expect("the embedded built-in model is valid")
});

impl Model {
    /// The built-in Dutch/English shop model (embedded in the binary,
    /// validated once on first use).
    pub fn builtin() -> &'static Model {
        &BUILTIN
    }

    /// Loads a model file from bytes (copied once into an aligned buffer).
    ///
    /// # Errors
    /// A [`ModelError`] saying what is wrong with the bytes; never panics.
    pub fn load(bytes: &[u8]) -> Result<Model, ModelError> {
        let mut buf = AlignedVec::<16>::with_capacity(bytes.len());
        buf.extend_from_slice(bytes);
        Model::from_backing(Backing::Owned(buf))
    }

    /// Reads and loads a model file.
    ///
    /// # Errors
    /// [`ModelError::Io`] when the file cannot be read, otherwise as [`Model::load`].
    pub fn open(path: impl AsRef<Path>) -> Result<Model, ModelError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|reason| ModelError::Io { path: path.to_owned(), reason })?;
        Model::load(&bytes)
    }

    /// Loads a model from static bytes, in place when they are 16-aligned.
    ///
    /// # Errors
    /// As [`Model::load`].
    pub fn from_static(bytes: &'static [u8]) -> Result<Model, ModelError> {
        if bytes.as_ptr().align_offset(16) == 0 {
            Model::from_backing(Backing::Static(bytes))
        } else {
            Model::load(bytes)
        }
    }

    fn from_backing(backing: Backing) -> Result<Model, ModelError> {
        let bytes: &[u8] = match &backing {
            Backing::Static(b) => b,
            Backing::Owned(v) => v.as_slice(),
        };
        let payload = split_header(bytes)?;
        let data = rkyv::access::<ArchivedModelData, rancor::Error>(payload)
            .map_err(|e| ModelError::Corrupt(e.to_string()))?;
        let config = FeatureConfig {
            bucket_bits: data.bucket_bits,
            char_min: data.char_min,
            char_max: data.char_max,
            word_weight: data.word_weight.to_native(),
            char_weight: data.char_weight.to_native(),
            pair_tokens: data.pair_tokens,
            ..FeatureConfig::default()
        };
        let feature_flags = data.feature_flags;
        let idf_squared: Vec<f32> = data.idf_squared.iter().map(|x| x.to_native()).collect();
        let class_scale: Vec<f32> = data.class_scale.iter().map(|x| x.to_native()).collect();
        let bias: Vec<f32> = data.bias.iter().map(|x| x.to_native()).collect();
        check_invariants(&View {
            config,
            feature_flags,
            idf_squared: &idf_squared,
            labels: data.labels.len(),
            buying: data.buying.len(),
            oos_class: data.oos_class.to_native(),
            oos_threshold: data.oos_threshold.to_native(),
            temperature: data.temperature.to_native(),
            class_scale: &class_scale,
            bias: &bias,
            weights: data.weights.len(),
        })?;
        let config = config.with_flags(feature_flags).unwrap_or(config);
        let buying: Vec<bool> = data.buying.iter().copied().collect();
        let oos_class = match data.oos_class.to_native() {
            u32::MAX => None,
            c => Some(c as usize),
        };
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(Model {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            config,
            n_classes: data.labels.len(),
            has_buying: buying.iter().any(|&b| b),
            buying_mask: buying.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect(),
            buying,
            class_scale,
            bias,
            idf_squared,
            oos_class,
            oos_threshold: data.oos_threshold.to_native(),
            temperature: data.temperature.to_native(),
            backing,
        })
    }

    /// The complete model file.
    pub fn file_bytes(&self) -> &[u8] {
        match &self.backing {
            Backing::Static(b) => b,
            Backing::Owned(v) => v.as_slice(),
        }
    }

    fn archived(&self) -> &ArchivedModelData {
        let payload = &self.file_bytes()[HEADER_LEN..];
        // Safety: `from_backing` validated exactly these bytes with
        // `rkyv::access` (bytecheck) before constructing `self`, and the
        // backing buffer is immutable and owned (or 'static) for as long as
        // `self` lives.
        unsafe { rkyv::access_unchecked::<ArchivedModelData>(payload) }
    }

    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// The feature configuration.
    pub fn feature_config(&self) -> FeatureConfig {
        self.config
    }

    /// Whether the model was trained with idf (and re-normalises its feature
    /// groups with it).
    pub fn uses_idf(&self) -> bool {
        !self.idf_squared.is_empty()
    }

    /// Confidence below which a message is out of scope.
    pub fn oos_threshold(&self) -> f32 {
        self.oos_threshold
    }

    /// Softmax inverse temperature.
    pub fn temperature(&self) -> f32 {
        self.temperature
    }

    /// The provenance string stored at training time.
    pub fn description(&self) -> &str {
        self.archived().description.as_str()
    }

    /// Label of an intent; [`OOS_LABEL`] for [`IntentId::OOS`] or an id the
    /// model does not have.
    pub fn label(&self, id: IntentId) -> &str {
        self.archived().labels.get(usize::from(id.0)).map_or(OOS_LABEL, |l| l.as_str())
    }

    /// Looks up a class by label.
    pub fn intent_id(&self, label: &str) -> Option<IntentId> {
        self.archived().labels.iter().position(|l| l.as_str() == label).map(|i| IntentId(i as u16))
    }

    /// All class labels, by class index.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.archived().labels.iter().map(|l| l.as_str())
    }

    /// Whether a class is a buying intent.
    pub fn is_buying(&self, id: IntentId) -> bool {
        self.buying.get(usize::from(id.0)).copied().unwrap_or(false)
    }

    /// Scores one message: intent, confidence, buying intent, language and
    /// signals. Allocation-free once `scratch` has warmed up.
    pub fn score(&self, text: &str, scratch: &mut Scratch) -> Score {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // Safety: the CPU supports AVX2 and FMA (checked just above).
                return unsafe { self.score_avx2(text, scratch) };
            }
        }
        self.score_impl(text, scratch)
    }

    /// [`Model::score`] compiled for AVX2 and FMA (the softmax and the
    /// kernel vectorise twice as wide), chosen at run time.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn score_avx2(&self, text: &str, scratch: &mut Scratch) -> Score {
        self.score_impl(text, scratch)
    }

    #[inline(always)]
    fn score_impl(&self, text: &str, scratch: &mut Scratch) -> Score {
        let (best, confidence, p_buying, (signals, language)) = self.classify(text, scratch);
        let intent = match best {
            Some(c) if Some(c) != self.oos_class && confidence >= self.oos_threshold => {
                IntentId(c as u16)
            }
            _ => IntentId::OOS,
        };
        let buying_intent =
            if self.has_buying { p_buying } else { crate::buying::lexicon_score(signals) };
        Score {
            intent,
            confidence,
            buying_intent: buying_intent.clamp(0.0, 1.0),
            language,
            signals,
        }
    }

    /// The raw class scores (dequantised margins) of a message, by class
    /// index. Used for calibration and inspection.
    pub fn class_scores<'s>(&self, text: &str, scratch: &'s mut Scratch) -> &'s [f32] {
        self.compute_scores(text, scratch);
        &scratch.scores
    }

    /// Best class (None when the model saw no features and has no classes),
    /// its softmax probability, the summed probability of buying classes,
    /// and the message's lexicon signals and language.
    #[inline(always)]
    fn classify(
        &self,
        text: &str,
        scratch: &mut Scratch,
    ) -> (Option<usize>, f32, f32, (Signals, Language)) {
        let lexicon = self.compute_scores(text, scratch);
        let scores = &scratch.scores;
        // The maximum in 8 lanes (vectorises), then its first position.
        let mut max_lanes = [f32::NEG_INFINITY; 8];
        let mut chunks = scores.chunks_exact(8);
        for chunk in &mut chunks {
            for (m, &s) in max_lanes.iter_mut().zip(chunk) {
                *m = if s > *m { s } else { *m };
            }
        }
        for &s in chunks.remainder() {
            max_lanes[0] = if s > max_lanes[0] { s } else { max_lanes[0] };
        }
        let max = max_lanes.iter().fold(f32::NEG_INFINITY, |m, &s| if s > m { s } else { m });
        if !max.is_finite() {
            return (None, 0.0, 0.0, lexicon);
        }
        let Some(best) = scores.iter().position(|&s| s == max) else {
            return (None, 0.0, 0.0, lexicon);
        };
        let t = self.temperature;
        // Branch-free loops over arrays so they vectorise; sums in 8 lanes
        // because the compiler may not reorder a serial float sum.
        let exps = &mut scratch.exps;
        exps.clear();
        exps.extend(scores.iter().map(|&s| exp_neg(t * (s - max))));
        let mut z_lanes = [0.0f32; 8];
        let mut buy_lanes = [0.0f32; 8];
        let chunks = exps.chunks_exact(8).zip(self.buying_mask.chunks_exact(8));
        for (e, m) in chunks {
            for j in 0..8 {
                z_lanes[j] += e[j];
                buy_lanes[j] += e[j] * m[j];
            }
        }
        let tail = exps.len() / 8 * 8;
        for (e, m) in exps[tail..].iter().zip(&self.buying_mask[tail..]) {
            z_lanes[0] += e;
            buy_lanes[0] += e * m;
        }
        let z: f32 = z_lanes.iter().sum();
        let buy: f32 = buy_lanes.iter().sum();
        // z >= 1 because the best class contributes exp(0) = 1.
        (Some(best), 1.0 / z, buy / z, lexicon)
    }

    /// Fills `scratch.scores` and returns the message's lexicon signals and
    /// language (from the same walk over its tokens).
    #[inline(always)]
    fn compute_scores(&self, text: &str, scratch: &mut Scratch) -> (Signals, Language) {
        let n = self.n_classes;
        let stride = row_stride(n);
        let Scratch {
            text: norm,
            word_buckets,
            char_buckets,
            acc_word,
            acc_char,
            scores,
            exps: _,
            tokens,
        } = scratch;
        normalize_into(text, norm);
        word_buckets.clear();
        char_buckets.clear();
        acc_word.clear();
        acc_word.resize(stride, 0);
        acc_char.clear();
        acc_char.resize(stride, 0);
        let weights: &[i8] = self.archived().weights.as_slice();
        let prefetch = weights.len() > PREFETCH_ABOVE_BYTES;
        let cached = tokens.begin(self);
        let mut sink = Sink {
            config: &self.config,
            weights,
            idf_squared: &self.idf_squared,
            word_norm: 0.0,
            char_norm: 0.0,
            stride,
            prefetch,
            tokens: if cached { Some(tokens) } else { None },
            slot: None,
            word_buckets,
            char_buckets,
            acc_char,
            analysis: Analysis::default(),
        };
        for_each_token(norm, &self.config, &mut sink);
        let (word_norm, char_norm) = (sink.word_norm, sink.char_norm);
        let lexicon = sink.analysis.finish();
        kernel::accumulate(weights, stride, word_buckets, acc_word);
        kernel::accumulate(weights, stride, char_buckets, acc_char);
        let sw = group_scale(self.config.word_weight, word_norm);
        let sc = group_scale(self.config.char_weight, char_norm);
        scores.clear();
        scores.extend(
            acc_word
                .iter()
                .zip(acc_char.iter())
                .zip(self.class_scale.iter().zip(&self.bias))
                .map(|((&w, &c), (&scale, &bias))| bias + scale * (sw * w as f32 + sc * c as f32)),
        );
        lexicon
    }
}

/// Where [`Model::compute_scores`] puts a message's features: word buckets
/// for the kernel; each token's character features from the token cache when
/// it is in use, or as buckets for the kernel; and each token's lexicon
/// facts into the message's [`Analysis`]. It also sums each group's squared
/// norm: per occurrence the bucket's [`ModelData::idf_squared`], or 1 when
/// the model has no idf (the sum is then the occurrence count).
struct Sink<'a> {
    config: &'a FeatureConfig,
    weights: &'a [i8],
    idf_squared: &'a [f32],
    word_norm: f32,
    char_norm: f32,
    stride: usize,
    /// Request each row as soon as its bucket is known: the rows are
    /// scattered over a table larger than the L2 cache, and the loads then
    /// overlap with hashing instead of stalling the kernel.
    prefetch: bool,
    tokens: Option<&'a mut TokenCache>,
    /// The cache slot [`FeatureSink::stem_hash`] found for the token that
    /// [`FeatureSink::token`] receives next.
    slot: Option<usize>,
    word_buckets: &'a mut Vec<u32>,
    char_buckets: &'a mut Vec<u32>,
    acc_char: &'a mut [i32],
    analysis: Analysis<'a>,
}

impl<'a> FeatureSink<'a> for Sink<'a> {
    #[inline(always)]
    fn word(&mut self, bucket: u32) {
        if self.prefetch {
            kernel::prefetch_row(self.weights, bucket as usize * self.stride, self.stride);
        }
        self.word_norm += squared_idf(self.idf_squared, bucket);
        self.word_buckets.push(bucket);
    }

    #[inline(always)]
    fn stem_hash(&mut self, token: &'a [u8], hash: u64) -> u64 {
        if let Some(cache) = self.tokens.as_deref_mut()
            && let Some(slot) = cache.slot(token, hash, self.config, self.weights, self.idf_squared)
        {
            self.slot = Some(slot);
            return cache.stems[slot];
        }
        stem_hash(token)
    }

    #[inline(always)]
    fn token(&mut self, token: &'a [u8], hash: u64) -> u32 {
        if let Some(cache) = self.tokens.as_deref_mut() {
            let slot = match self.slot.take() {
                Some(slot) => Some(slot),
                None => cache.slot(token, hash, self.config, self.weights, self.idf_squared),
            };
            if let Some(slot) = slot {
                let (count, norm, facts) = cache.add(slot, self.acc_char);
                self.char_norm += norm;
                self.analysis.push(token, hash, facts);
                return count;
            }
        }
        self.analysis.push(token, hash, lexicon::token_facts(token, hash));
        let Sink { weights, stride, prefetch, char_buckets, idf_squared, .. } = self;
        // Summed per token first, as the token cache does, so the cache
        // changes no bit of the score.
        let mut norm = 0.0f32;
        let count = char_features(token, self.config, |bucket| {
            norm += squared_idf(idf_squared, bucket);
            if *prefetch {
                kernel::prefetch_row(weights, bucket as usize * *stride, *stride);
            }
            char_buckets.push(bucket);
        });
        self.char_norm += norm;
        count
    }
}

/// Weight tables larger than this are prefetched row by row while hashing.
const PREFETCH_ABOVE_BYTES: usize = 1 << 20;

/// The accumulation kernel: `acc[c] += sum over buckets b of weights[b * stride + c]`.
mod kernel {
    /// Rows summed in `i16` before flushing: 255 * 128 < 32767.
    const FLUSH: usize = 255;

    /// Hints the CPU to load `weights[offset..offset + len]` into the cache
    /// (its first, second and last cache line: the whole row up to 192
    /// bytes).
    #[inline(always)]
    pub(super) fn prefetch_row(weights: &[i8], offset: usize, len: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            if len == 0 || offset + len > weights.len() {
                return;
            }
            let row = weights[offset..].as_ptr();
            // Safety: prefetching is only a hint and never faults; the
            // pointers are within the row anyway. SSE is part of x86-64.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(row);
                _mm_prefetch::<_MM_HINT_T0>(row.add((len - 1).min(64)));
                _mm_prefetch::<_MM_HINT_T0>(row.add(len - 1));
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (weights, offset, len);
    }

    /// Adds the rows of `buckets` into `acc` (`acc.len() == stride`, a
    /// multiple of 16; every `b * stride + stride <= weights.len()`, which the
    /// model invariants guarantee for buckets from `for_each_feature`).
    pub(super) fn accumulate(weights: &[i8], stride: usize, buckets: &[u32], acc: &mut [i32]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // Safety: the CPU supports AVX2 (checked just above).
                unsafe { accumulate_avx2(weights, stride, buckets, acc) };
                return;
            }
        }
        accumulate_generic(weights, stride, buckets, acc);
    }

    /// The same code compiled for AVX2 (sign extension and 16 lanes per
    /// instruction), chosen at run time so the binary still runs on any x86-64.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn accumulate_avx2(weights: &[i8], stride: usize, buckets: &[u32], acc: &mut [i32]) {
        accumulate_generic(weights, stride, buckets, acc);
    }

    #[inline(always)]
    fn accumulate_generic(weights: &[i8], stride: usize, buckets: &[u32], acc: &mut [i32]) {
        // Rows up to 192 classes wide are summed in one pass, all classes
        // in registers at once, so each row is read once.
        macro_rules! one_pass {
            ($($w:literal)*) => {
                match stride {
                    $($w => return block::<$w>(weights, stride, 0, buckets, acc),)*
                    _ => {}
                }
            };
        }
        one_pass!(16 32 48 64 80 96 112 128 144 160 176 192);
        let mut start = 0;
        while start + 128 <= stride {
            block::<128>(weights, stride, start, buckets, acc);
            start += 128;
        }
        while start + 32 <= stride {
            block::<32>(weights, stride, start, buckets, acc);
            start += 32;
        }
        while start + 16 <= stride {
            block::<16>(weights, stride, start, buckets, acc);
            start += 16;
        }
    }

    /// Classes `start..start + W` for every bucket: a fixed-size block the
    /// compiler unrolls and keeps in vector registers.
    #[inline(always)]
    fn block<const W: usize>(
        weights: &[i8],
        stride: usize,
        start: usize,
        buckets: &[u32],
        acc: &mut [i32],
    ) {
        for chunk in buckets.chunks(FLUSH) {
            let mut local = [0i16; W];
            for &b in chunk {
                let offset = b as usize * stride + start;
                let Some(row) = weights.get(offset..offset + W) else {
                    continue;
                };
                let row: &[i8; W] = row.try_into().expect("slice of length W");
                for (l, &w) in local.iter_mut().zip(row) {
                    *l += i16::from(w);
                }
            }
            for (a, &l) in acc[start..start + W].iter_mut().zip(&local) {
                *a += i32::from(l);
            }
        }
    }
}

/// `exp(x)` for `x <= 0`, relative error below 2e-4 down to -80 (inputs
/// below -80, and NaN, give about 1.8e-35). Branch-free so the softmax loop
/// vectorises; libm's `exp` would dominate the cost of a 150-class model.
#[inline]
pub(crate) fn exp_neg(x: f32) -> f32 {
    // `max` maps NaN to -80, which `clamp` would not.
    #[allow(clippy::manual_clamp)]
    let x = x.max(-80.0).min(0.0);
    // exp(x) = 2^(x log2 e) = 2^i * 2^f with f in [0, 1). `floor` is a libm
    // call on baseline x86-64, so truncate and correct instead.
    let y = x * std::f32::consts::LOG2_E;
    // floor(y) without a float-to-int conversion (which does not vectorise
    // branch-free): adding 1.5 * 2^23 rounds to an integer held in the low
    // mantissa bits, for |y| < 2^22.
    const MAGIC: f32 = 12_582_912.0;
    let rounded = (y + MAGIC) - MAGIC;
    let floor = rounded - if rounded > y { 1.0 } else { 0.0 };
    let i = ((floor + MAGIC).to_bits() as i32) - (MAGIC.to_bits() as i32);
    let f = y - floor;
    // Degree-5 polynomial for 2^f on [0, 1).
    let p = 1.0
        + f * (std::f32::consts::LN_2
            + f * (0.240_226_5 + f * (0.055_504_11 + f * (0.009_618_13 + f * 0.001_333_55))));
    // i is in [-116, 0]: the exponent field stays in range.
    f32::from_bits(((i + 127) as u32) << 23) * p
}

fn split_header(bytes: &[u8]) -> Result<&[u8], ModelError> {
    if bytes.len() < 8 || bytes[..8] != MAGIC {
        return Err(ModelError::NotAModel);
    }
    if bytes.len() < HEADER_LEN {
        return Err(ModelError::Truncated {
            expected: HEADER_LEN as u64,
            actual: bytes.len() as u64,
        });
    }
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let version = u32_at(8);
    if version != FORMAT_VERSION {
        return Err(ModelError::UnsupportedVersion { found: version, supported: FORMAT_VERSION });
    }
    let crc = u32_at(12);
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[16..24]);
    let len = u64::from_le_bytes(len);
    let expected = len.saturating_add(HEADER_LEN as u64);
    if expected != bytes.len() as u64 {
        return Err(ModelError::Truncated { expected, actual: bytes.len() as u64 });
    }
    let payload = &bytes[HEADER_LEN..];
    let actual = crc32fast::hash(payload);
    if actual != crc {
        return Err(ModelError::Checksum { expected: crc, actual });
    }
    Ok(payload)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::features::{Group, for_each_feature};

    pub(crate) fn tiny_model() -> ModelData {
        let config = FeatureConfig {
            bucket_bits: 8,
            char_min: 2,
            char_max: 3,
            word_weight: 1.0,
            char_weight: 0.5,
            pair_tokens: 0,
            ..FeatureConfig::default()
        };
        let n = 3;
        let stride = row_stride(n);
        let mut weights = vec![0i8; config.buckets() * stride];
        // Make the class of a word's bucket win for three words.
        for (class, word) in ["prijs", "pakket", "hallo"].iter().enumerate() {
            for_each_feature(word, &config, |b, g| {
                if g == Group::Word {
                    weights[b as usize * stride + class] = 100;
                }
            });
        }
        ModelData {
            description: "tiny".into(),
            bucket_bits: config.bucket_bits,
            char_min: config.char_min,
            char_max: config.char_max,
            word_weight: config.word_weight,
            char_weight: config.char_weight,
            pair_tokens: config.pair_tokens,
            feature_flags: 0,
            idf_squared: Vec::new(),
            labels: vec!["buy.price".into(), "service.track".into(), "oos".into()],
            buying: vec![true, false, false],
            oos_class: 2,
            oos_threshold: 0.2,
            temperature: 1.0,
            class_scale: vec![0.05; n],
            bias: vec![0.0; n],
            weights,
        }
    }

    #[test]
    fn round_trip_and_score() {
        let bytes = tiny_model().to_bytes().unwrap();
        let model = Model::load(&bytes).unwrap();
        assert_eq!(model.n_classes(), 3);
        assert_eq!(model.label(IntentId(1)), "service.track");
        assert_eq!(model.label(IntentId::OOS), "oos");
        assert_eq!(model.intent_id("buy.price"), Some(IntentId(0)));
        let mut scratch = Scratch::new();
        let s = model.score("Prijs?", &mut scratch);
        assert_eq!(s.intent, IntentId(0));
        assert!(s.buying_intent > 0.5);
        let s = model.score("pakket", &mut scratch);
        assert_eq!(s.intent, IntentId(1));
        assert!(s.buying_intent < 0.5);
        // The oos class wins: reported as OOS.
        let s = model.score("hallo", &mut scratch);
        assert!(s.intent.is_oos());
        // No features at all: uniform probabilities, below nothing but still in range.
        let s = model.score("", &mut scratch);
        assert!((s.confidence - 1.0 / 3.0).abs() < 1e-3);
    }

    #[test]
    fn header_errors_are_typed() {
        let bytes = tiny_model().to_bytes().unwrap();
        assert!(matches!(Model::load(b"hello world"), Err(ModelError::NotAModel)));
        assert!(matches!(Model::load(&bytes[..20]), Err(ModelError::Truncated { .. })));
        assert!(matches!(
            Model::load(&bytes[..bytes.len() - 1]),
            Err(ModelError::Truncated { .. })
        ));
        let mut v = bytes.clone();
        v[8] = 9;
        assert!(matches!(Model::load(&v), Err(ModelError::UnsupportedVersion { found: 9, .. })));
        let mut v = bytes.clone();
        let last = v.len() - 40;
        v[last] ^= 0x55;
        assert!(matches!(Model::load(&v), Err(ModelError::Checksum { .. })));
    }

    #[test]
    fn corrupt_payload_with_fixed_checksum_is_rejected() {
        let bytes = tiny_model().to_bytes().unwrap();
        // Flip bytes near the end (the root object and its relative pointers)
        // and recompute the checksum so the archive validation must catch it.
        for pos in (bytes.len() - 64)..bytes.len() {
            let mut v = bytes.clone();
            v[pos] = v[pos].wrapping_add(0x41);
            let crc = crc32fast::hash(&v[HEADER_LEN..]);
            v[12..16].copy_from_slice(&crc.to_le_bytes());
            // Either rejected with a typed error or still a valid model.
            if let Ok(model) = Model::load(&v) {
                let mut scratch = Scratch::new();
                let s = model.score("prijs pakket", &mut scratch);
                assert!((0.0..=1.0).contains(&s.confidence));
            }
        }
    }

    #[test]
    fn invalid_models_are_refused_on_write() {
        let mut m = tiny_model();
        m.weights.pop();
        assert!(matches!(m.to_bytes(), Err(ModelError::Invalid(_))));
        let mut m = tiny_model();
        m.temperature = f32::NAN;
        assert!(matches!(m.to_bytes(), Err(ModelError::Invalid(_))));
        let mut m = tiny_model();
        m.oos_class = 7;
        assert!(matches!(m.to_bytes(), Err(ModelError::Invalid(_))));
        let mut m = tiny_model();
        m.feature_flags = 0x80;
        let err = m.to_bytes().unwrap_err();
        assert!(err.to_string().contains("unknown feature flags 0x80"), "{err}");
        let mut m = tiny_model();
        m.idf_squared = vec![1.0; 3];
        assert!(matches!(m.to_bytes(), Err(ModelError::Invalid(_))));
        let mut m = tiny_model();
        m.idf_squared = vec![1.0; 1 << m.bucket_bits];
        assert!(m.to_bytes().is_ok());
        for bad in [f32::NAN, f32::INFINITY, 0.0, 0.5, 1e7] {
            m.idf_squared[7] = bad;
            assert!(matches!(m.to_bytes(), Err(ModelError::Invalid(_))), "{bad}");
        }
    }

    /// A small English model with every feature option and idf.
    pub(crate) fn english_idf_model() -> Model {
        let mut data = Vec::new();
        for item in ["card", "transfer", "payment", "refund", "account"] {
            for (label, text) in [
                ("declined", format!("my {item} was declined")),
                ("declined", format!("why dont my {item}s work")),
                ("pending", format!("the {item} is still pending")),
                ("pending", format!("{item} pending for days, hasnt arrived")),
                ("fee", format!("why was i charged a fee for the {item}")),
                ("fee", format!("extra charges on {item}s")),
            ] {
                data.push(crate::Example { text, label: label.into() });
            }
        }
        let config = crate::train::every_option_config(12);
        let data = crate::train(&data, None, &config, &|_| {}).unwrap();
        Model::load(&data.to_bytes().unwrap()).unwrap()
    }

    #[test]
    fn options_and_idf_survive_the_file_and_cache_exactly() {
        let model = english_idf_model();
        let config = model.feature_config();
        assert!(config.stem_words && config.content_pairs && config.negation_token);
        assert_eq!(model.idf_squared.len(), config.buckets());
        assert!(model.idf_squared.iter().all(|&x| x >= 1.0));
        let mut scratch = Scratch::new();
        assert_same_as_uncached(&model, &mut scratch, 2 * TokenCache::WARM_UP as usize / 10 + 3);
        let (hits, lookups) = scratch.token_cache_hits();
        assert!(lookups > 0 && hits * 2 > lookups, "{hits} of {lookups}");
        let s = model.score("my transfers are declined", &mut scratch);
        assert_eq!(model.label(s.intent), "declined");
        let s = model.score("fees on my payments", &mut scratch);
        assert_eq!(model.label(s.intent), "fee");
    }

    /// Messages with repeated, long, accented and unusual tokens.
    const CACHE_TEXTS: &[&str] = &[
        "wat kost deze jas in maat 43?",
        "Wat KOST deze jas?? prijs prijs prijs",
        "heeft u de bananenboom (Musa) op voorraad",
        "can i talk to a human please, this is taking forever",
        "where is my order #123456",
        "supercalifragilisticexpialidociousandevenlongerwords are rare",
        "ik twijfel tussen de blauwe en de groene, wat raad je aan",
        "kan ik met ideal betalen en wanneer wordt het bezorgd",
        "ik wil mijn abonnement opzeggen",
        "😡😡 nog steeds niet geleverd",
        "é ë ï ü ß straße",
        "",
        "a b c d e f g h i j k l m n o p q r s t u v w x y z",
        "my transfers werent arriving and the cards dont work, generously charged fees",
    ];

    /// Scores every text `rounds` times with `scratch` and checks each
    /// result against a scratch that never caches, bit for bit, and the
    /// signals and language against the lexicon's own pass.
    fn assert_same_as_uncached(model: &Model, scratch: &mut Scratch, rounds: usize) {
        let mut plain = Scratch::without_token_cache();
        for _ in 0..rounds {
            for text in CACHE_TEXTS {
                let cached = model.score(text, scratch);
                let uncached = model.score(text, &mut plain);
                assert_eq!(cached, uncached, "{text}");
                let (signals, language) = crate::lexicon::analyse(scratch.normalized());
                assert_eq!((cached.signals, cached.language), (signals, language), "{text}");
                let a = model.class_scores(text, scratch).to_vec();
                let b = model.class_scores(text, &mut plain).to_vec();
                assert_eq!(
                    a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    b.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn token_cache_is_exact() {
        let model = Model::builtin();
        let mut scratch = Scratch::new();
        // Enough rounds to pass the warm-up and then hit the cache.
        assert_same_as_uncached(model, &mut scratch, 2 * TokenCache::WARM_UP as usize / 10 + 3);
        let (hits, lookups) = scratch.token_cache_hits();
        assert!(lookups > 0 && hits * 2 > lookups, "{hits} of {lookups}");
        assert_eq!(Scratch::without_token_cache().token_cache_hits(), (0, 0));
    }

    #[test]
    fn token_cache_follows_the_model() {
        let tiny = Model::load(&tiny_model().to_bytes().unwrap()).unwrap();
        let again = Model::load(&tiny_model().to_bytes().unwrap()).unwrap();
        let mut scratch = Scratch::new();
        // Alternate models with one scratch: entries never leak across.
        for model in [Model::builtin(), &tiny, Model::builtin(), &again, &tiny] {
            assert_same_as_uncached(model, &mut scratch, 8);
        }
    }

    #[test]
    fn cached_token_sums_cannot_overflow() {
        // The most n-grams a cached token can have, at the widest n-gram
        // range a model file may ask for.
        let config = FeatureConfig {
            char_min: 1,
            char_max: FeatureConfig::MAX_CHAR_N,
            ..FeatureConfig::default()
        };
        let token = [b'x'; TokenCache::MAX_TOKEN];
        let rows = char_features(&token, &config, |_| {});
        assert_eq!(rows as usize, TokenCache::MAX_ROWS);
        assert!(TokenCache::MAX_ROWS * 128 <= i16::MAX as usize + 1);
    }

    #[test]
    fn exp_neg_is_accurate() {
        let mut x = -30.0f32;
        while x <= 0.0 {
            let rel = (exp_neg(x) - x.exp()).abs() / x.exp();
            assert!(rel < 2e-4, "x = {x}: {rel}");
            x += 0.013;
        }
        for x in [-100.0, f32::NAN, f32::NEG_INFINITY, f32::MIN] {
            assert!(exp_neg(x) >= 0.0 && exp_neg(x) < 1e-30);
        }
        assert!(exp_neg(f32::INFINITY) <= 1.0);
        assert!((exp_neg(0.0) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn model_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Model>();
    }
}
