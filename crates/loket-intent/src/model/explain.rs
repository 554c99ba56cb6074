//! The hand-off head at scoring time: the judgement from the head's class
//! scores, and the explanation (the words that weighed most for a kind).

use crate::features::{FeatureConfig, FeatureSink, char_features, for_each_token, stem_hash};
use crate::handoff::{HandoffKind, HandoffWords};
use crate::signals::Signals;

use super::kernel::exp_neg;
use super::token_cache::TokenCache;
use super::{HANDOFF_CLASSES, Model, Scratch};

impl Model {
    /// The raw class scores of the hand-off head ([`HandoffKind::ALL`]
    /// order), all zero for a model without one. Used for calibration and
    /// inspection.
    pub fn handoff_scores(&self, text: &str, scratch: &mut Scratch) -> [f32; HANDOFF_CLASSES] {
        self.compute_scores(text, scratch);
        scratch.handoff_scores
    }

    /// Probabilities of the hand-off classes for raw class scores from
    /// [`Model::handoff_scores`], at the model's temperature (all zero
    /// without a hand-off head).
    pub fn handoff_probabilities(&self, scores: &[f32; HANDOFF_CLASSES]) -> [f32; HANDOFF_CLASSES] {
        let Some(head) = &self.handoff else {
            return [0.0; HANDOFF_CLASSES];
        };
        softmax4(scores, head.temperature)
    }

    /// Sets `scratch.handoff` from `scratch.handoff_scores` and returns the
    /// judgement's signals (none without a hand-off head).
    #[inline(always)]
    pub(super) fn judge_handoff(&self, scratch: &mut Scratch) -> Signals {
        let Some(head) = &self.handoff else {
            scratch.handoff = (HandoffKind::None, 0.0);
            return Signals::NONE;
        };
        // The most likely of doubt, complaint and human (the first on a
        // tie), by raw score: the softmax keeps the order. Then only its
        // probability, one division.
        let s = &scratch.handoff_scores;
        let mut best = 1;
        for k in 2..HANDOFF_CLASSES {
            if s[k] > s[best] {
                best = k;
            }
        }
        let max = if s[0] > s[best] { s[0] } else { s[best] };
        let t = head.temperature;
        // One loop over the four lanes, so it vectorises.
        let mut e = [0.0f32; HANDOFF_CLASSES];
        for (e, &x) in e.iter_mut().zip(s) {
            *e = exp_neg(t * (x - max));
        }
        let z = e[0] + e[1] + e[2] + e[3];
        // z >= 1 for finite scores (the largest contributes exp(0)); the
        // check keeps anything else at 0.
        let p = if z >= 1.0 { (e[best] / z).clamp(0.0, 1.0) } else { 0.0 };
        let kind = if p >= head.threshold { HandoffKind::ALL[best] } else { HandoffKind::None };
        scratch.handoff = (kind, p);
        Signals::HANDOFF_JUDGED | kind.signal()
    }

    /// The (at most three) tokens of the message `scratch` last scored
    /// whose features add most to the class of `kind`, strongest first. Each
    /// token's share is its character n-grams, its unigram (and
    /// co-occurrence pairs) and half of each bigram it is part of, weighed
    /// by the group scales of the message; only tokens with a positive share
    /// count. The result does not depend on the token cache.
    pub(super) fn explain(&self, kind: HandoffKind, scratch: &mut Scratch) -> HandoffWords {
        let Scratch { text, tokens, group_scales, .. } = scratch;
        let cached = !tokens.disabled && tokens.model == self.id && !tokens.keys.is_empty();
        let mut sink = ExplainSink {
            config: &self.config,
            weights: self.archived().weights.as_slice(),
            idf_squared: &self.idf_squared,
            stride: self.stride,
            column: self.n_classes + kind.index(),
            scales: *group_scales,
            tokens: if cached { Some(tokens) } else { None },
            slot: None,
            word: 0,
            pending: None,
            top: [(0.0, &[]); HandoffWords::MAX_WORDS],
            n_top: 0,
        };
        for_each_token(text.as_str(), &self.config, &mut sink);
        sink.settle();
        let mut words = HandoffWords::default();
        for &(_, token) in &sink.top[..sink.n_top] {
            words.push(token);
        }
        words
    }
}

/// Softmax of four class scores at inverse temperature `t`; every result
/// is finite and in `[0, 1]` (all zero when the scores are not finite).
#[inline(always)]
fn softmax4(scores: &[f32; HANDOFF_CLASSES], t: f32) -> [f32; HANDOFF_CLASSES] {
    let max = scores.iter().fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    if !max.is_finite() {
        return [0.0; HANDOFF_CLASSES];
    }
    let e: [f32; HANDOFF_CLASSES] = std::array::from_fn(|k| exp_neg(t * (scores[k] - max)));
    // At least 1: the largest score contributes exp(0) = 1.
    let z: f32 = e.iter().sum();
    e.map(|x| (x / z).clamp(0.0, 1.0))
}

/// Where [`Model::explain`] walks a message's features again: it sums, per
/// token, the weights of one hand-off class (column) in the token's word
/// features and character n-grams, and keeps the tokens with the largest
/// weighted sums. A bigram's weight is split between its two tokens, so
/// word sums count in half units.
struct ExplainSink<'a> {
    config: &'a FeatureConfig,
    weights: &'a [i8],
    idf_squared: &'a [f32],
    stride: usize,
    column: usize,
    /// The word and character group scales of the message.
    scales: (f32, f32),
    /// The scratch's token cache, when it holds this model's entries.
    tokens: Option<&'a mut TokenCache>,
    slot: Option<usize>,
    /// Half units of word weight of the token being walked.
    word: i32,
    /// The previous token (half word units, character sum): it still
    /// receives half of the next bigram.
    pending: Option<(&'a [u8], i32, i32)>,
    /// The best distinct tokens so far, strongest first.
    top: [(f32, &'a [u8]); HandoffWords::MAX_WORDS],
    n_top: usize,
}

impl<'a> ExplainSink<'a> {
    #[inline(always)]
    fn weight(&self, bucket: u32) -> i32 {
        self.weights.get(bucket as usize * self.stride + self.column).map_or(0, |&w| i32::from(w))
    }

    /// Offers the pending token to the best list: a token with a positive
    /// share that says something (see [`explains`]), once.
    fn settle(&mut self) {
        let Some((token, word, chars)) = self.pending.take() else {
            return;
        };
        let share = self.scales.0 * word as f32 * 0.5 + self.scales.1 * chars as f32;
        if share.is_nan() || share <= 0.0 || !explains(token) {
            return;
        }
        let top = &mut self.top[..self.n_top];
        if let Some(i) = top.iter().position(|&(_, t)| t == token) {
            // A repeated word counts once, at its larger share.
            if top[i].0 >= share {
                return;
            }
            top[i].0 = share;
            top[..=i].sort_by(|a, b| b.0.total_cmp(&a.0));
            return;
        }
        // Insert in order; ties keep the earlier token first.
        let mut i = self.n_top;
        while i > 0 && self.top[i - 1].0 < share {
            i -= 1;
        }
        if i >= self.top.len() {
            return;
        }
        let last = self.top.len() - 1;
        self.top.copy_within(i..last, i + 1);
        self.top[i] = (share, token);
        self.n_top = (self.n_top + 1).min(self.top.len());
    }
}

/// Whether a token may explain a hand-off: it has a letter and is not one
/// of the Dutch and English function words that weigh in through the
/// bigrams they are part of (`talk to`, `ik twijfel`) rather than on their
/// own.
pub(super) fn explains(token: &[u8]) -> bool {
    token.iter().any(|b| b.is_ascii_alphabetic() || *b >= 0x80)
        && !matches!(
            token,
            b"a" | b"an"
                | b"the"
                | b"to"
                | b"of"
                | b"and"
                | b"or"
                | b"for"
                | b"in"
                | b"on"
                | b"at"
                | b"is"
                | b"are"
                | b"be"
                | b"it"
                | b"this"
                | b"that"
                | b"i"
                | b"im"
                | b"me"
                | b"my"
                | b"you"
                | b"your"
                | b"with"
                | b"do"
                | b"so"
                | b"de"
                | b"het"
                | b"een"
                | b"en"
                | b"van"
                | b"voor"
                | b"op"
                | b"aan"
                | b"ik"
                | b"mij"
                | b"mijn"
                | b"je"
                | b"jij"
                | b"u"
                | b"uw"
                | b"dat"
                | b"die"
                | b"dit"
                | b"er"
                | b"met"
                | b"te"
                | b"om"
                | b"wel"
        )
}

impl<'a> FeatureSink<'a> for ExplainSink<'a> {
    fn word(&mut self, bucket: u32) {
        self.word += 2 * self.weight(bucket);
    }

    fn bigram(&mut self, bucket: u32) {
        let w = self.weight(bucket);
        self.word += w;
        if let Some(previous) = &mut self.pending {
            previous.1 += w;
        }
    }

    fn stem_hash(&mut self, token: &'a [u8], hash: u64) -> u64 {
        if let Some(cache) = self.tokens.as_deref_mut()
            && let Some(slot) = cache.slot(token, hash, self.config, self.weights, self.idf_squared)
        {
            self.slot = Some(slot);
            return cache.stems[slot];
        }
        stem_hash(token)
    }

    fn token(&mut self, token: &'a [u8], hash: u64) -> u32 {
        let slot = match (self.slot.take(), self.tokens.as_deref_mut()) {
            (Some(slot), _) => Some(slot),
            (None, Some(cache)) => {
                cache.slot(token, hash, self.config, self.weights, self.idf_squared)
            }
            (None, None) => None,
        };
        let mut chars = 0i32;
        let count = match (slot, self.tokens.as_deref()) {
            (Some(slot), Some(cache)) => {
                chars = cache.sums.get(slot * cache.stride + self.column).map_or(0, |&s| s.into());
                cache.counts[slot]
            }
            _ => char_features(token, self.config, |bucket| chars += self.weight(bucket)),
        };
        self.settle();
        self.pending = Some((token, std::mem::take(&mut self.word), chars));
        count
    }
}
