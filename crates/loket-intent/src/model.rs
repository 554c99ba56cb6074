//! The model file format, loading, and the scoring hot path.
//!
//! # File format (version 5)
//!
//! ```text
//! offset  size  field
//!      0     8  magic  b"LKINTENT"
//!      8     4  format version, u32 little endian (= 5)
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
//! sequential read of `stride` bytes. A model with a hand-off head
//! ([`crate::handoff`]) has four more classes after its intents in every
//! row (none, doubt, complaint, human): both heads share the features, the
//! walk over the tokens and the row reads (the built-in model's 18 intents
//! and 4 hand-off classes fit the 32 columns its 18 intents alone took). Each class has its own dequantisation
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

use std::path::Path;
use std::sync::LazyLock;

use rkyv::rancor;
use rkyv::util::AlignedVec;

use crate::features::{
    FeatureConfig, FeatureSink, char_features, for_each_token, group_scale, squared_idf, stem_hash,
};
use crate::handoff::{Handoff, HandoffKind, HandoffWords};
use crate::language::Language;
use crate::lexicon::{self, Analysis};
use crate::normalize::normalize_into;
use crate::signals::Signals;

mod explain;
mod format;
mod kernel;
#[cfg(test)]
pub(crate) mod tests;
mod token_cache;

use format::{ArchivedModelData, View, check_invariants, split_header};
pub use format::{
    FORMAT_VERSION, HANDOFF_CLASSES, HEADER_LEN, MAGIC, MAX_CLASSES, ModelData, ModelError,
    OOS_LABEL, row_stride,
};
use kernel::PREFETCH_ABOVE_BYTES;
pub(crate) use kernel::exp_neg;
use token_cache::TokenCache;

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
    /// Topic and handoff signals from the lexicon and, for a model with a
    /// hand-off head, its judgement ([`Signals::HANDOFF_JUDGED`] and the
    /// judged kind's bit; see [`crate::handoff`]).
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
    /// The hand-off head's class scores of the last message (zero without
    /// a head).
    handoff_scores: [f32; HANDOFF_CLASSES],
    /// The last message's hand-off judgement and the probability of its
    /// most likely hand-off kind.
    handoff: (HandoffKind, f32),
    /// The last message's word and character group scales.
    group_scales: (f32, f32),
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

/// A model's hand-off head, copied out of the archive at load time.
#[derive(Debug, Clone, Copy)]
struct HandoffHead {
    scale: [f32; HANDOFF_CLASSES],
    bias: [f32; HANDOFF_CLASSES],
    temperature: f32,
    threshold: f32,
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
    /// Row length: the intent and hand-off classes, rounded up to 16.
    stride: usize,
    /// The hand-off head, whose classes follow the intents in every row.
    handoff: Option<HandoffHead>,
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
            .field("handoff", &self.handoff)
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
        let config = rkyv::deserialize::<FeatureConfig, rancor::Error>(&data.features)
            .map_err(|e| ModelError::Corrupt(e.to_string()))?;
        let idf_squared: Vec<f32> = data.idf_squared.iter().map(|x| x.to_native()).collect();
        let class_scale: Vec<f32> = data.class_scale.iter().map(|x| x.to_native()).collect();
        let bias: Vec<f32> = data.bias.iter().map(|x| x.to_native()).collect();
        let handoff_class_scale: Vec<f32> =
            data.handoff_class_scale.iter().map(|x| x.to_native()).collect();
        let handoff_bias: Vec<f32> = data.handoff_bias.iter().map(|x| x.to_native()).collect();
        check_invariants(&View {
            config,
            idf_squared: &idf_squared,
            labels: data.labels.len(),
            buying: data.buying.len(),
            oos_class: data.oos_class.to_native(),
            oos_threshold: data.oos_threshold.to_native(),
            temperature: data.temperature.to_native(),
            class_scale: &class_scale,
            bias: &bias,
            handoff_class_scale: &handoff_class_scale,
            handoff_bias: &handoff_bias,
            handoff_temperature: data.handoff_temperature.to_native(),
            handoff_threshold: data.handoff_threshold.to_native(),
            weights: data.weights.len(),
        })?;
        let handoff = match (
            <[f32; HANDOFF_CLASSES]>::try_from(handoff_class_scale.as_slice()),
            <[f32; HANDOFF_CLASSES]>::try_from(handoff_bias.as_slice()),
        ) {
            (Ok(scale), Ok(bias)) => Some(HandoffHead {
                scale,
                bias,
                temperature: data.handoff_temperature.to_native(),
                threshold: data.handoff_threshold.to_native(),
            }),
            // The invariants allow only four or none.
            _ => None,
        };
        let n_classes = data.labels.len();
        let buying: Vec<bool> = data.buying.iter().copied().collect();
        let oos_class = match data.oos_class.to_native() {
            u32::MAX => None,
            c => Some(c as usize),
        };
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(Model {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            config,
            n_classes,
            stride: row_stride(n_classes + if handoff.is_some() { HANDOFF_CLASSES } else { 0 }),
            handoff,
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
        // SAFETY: `from_backing` validated exactly these bytes with
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

    /// Whether the model has a hand-off head ([`crate::handoff`]).
    pub fn has_handoff_head(&self) -> bool {
        self.handoff.is_some()
    }

    /// The probability a hand-off kind needs to be judged (1 without a
    /// hand-off head: nothing is).
    pub fn handoff_threshold(&self) -> f32 {
        self.handoff.map_or(1.0, |h| h.threshold)
    }

    /// Softmax inverse temperature of the hand-off head (1 without one).
    pub fn handoff_temperature(&self) -> f32 {
        self.handoff.map_or(1.0, |h| h.temperature)
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
    /// signals (with the hand-off judgement of a model that has a hand-off
    /// head: see [`crate::handoff`]). Allocation-free once `scratch` has
    /// warmed up.
    pub fn score(&self, text: &str, scratch: &mut Scratch) -> Score {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU supports AVX2 and FMA (checked just above).
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

    /// [`Model::score`], and the hand-off judgement with its probability
    /// and, for a hand-off, the words that weighed most for its kind (a
    /// second, lighter walk over the message's tokens, only for a hand-off).
    /// Allocation-free once `scratch` has warmed up.
    pub fn score_explained(&self, text: &str, scratch: &mut Scratch) -> (Score, Handoff) {
        let score = self.score(text, scratch);
        let (kind, p) = scratch.handoff;
        let mut handoff = Handoff { kind, p, words: HandoffWords::default() };
        if kind != HandoffKind::None {
            handoff.words = self.explain(kind, scratch);
        }
        (score, handoff)
    }

    #[inline(always)]
    fn score_impl(&self, text: &str, scratch: &mut Scratch) -> Score {
        let (best, confidence, p_buying, (signals, language)) = self.classify(text, scratch);
        let signals = signals | self.judge_handoff(scratch);
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
        let stride = self.stride;
        let Scratch {
            text: norm,
            word_buckets,
            char_buckets,
            acc_word,
            acc_char,
            scores,
            exps: _,
            tokens,
            handoff_scores,
            handoff: _,
            group_scales,
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
        *group_scales = (sw, sc);
        if let Some(head) = &self.handoff {
            let n = self.n_classes;
            let columns = n..n + HANDOFF_CLASSES;
            for (k, (&w, &c)) in
                acc_word[columns.clone()].iter().zip(&acc_char[columns]).enumerate()
            {
                handoff_scores[k] = head.bias[k] + head.scale[k] * (sw * w as f32 + sc * c as f32);
            }
        } else {
            *handoff_scores = [0.0; HANDOFF_CLASSES];
        }
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
