//! The per-scratch token cache: per token, the exact sum of its character
//! rows, its lexicon facts and its stem hash.

use crate::features::{FeatureConfig, char_features, squared_idf, stem_hash};
use crate::lexicon::{self, TokenFacts};

use super::Model;

/// A direct-mapped cache from token to the sum of its character-feature
/// rows, for one model (identified by [`Model`]'s load-time id).
///
/// Invariants: an occupied slot holds a token of at most
/// [`TokenCache::MAX_TOKEN`] bytes, its exact bytes, its number of character
/// features, and the exact `i16` sum of their weight rows: at most
/// [`TokenCache::MAX_ROWS`] rows of `i8`, so the sum stays within `i16`.
/// Entries are dropped whenever the model changes.
#[derive(Debug, Default, Clone)]
pub(super) struct TokenCache {
    /// Never allocate or use the cache.
    pub(super) disabled: bool,
    /// Id of the model the entries belong to (0: none yet).
    pub(super) model: u64,
    /// Messages scored with `model`, counted up to [`TokenCache::WARM_UP`].
    pub(super) scored: u32,
    /// Row length of `model`.
    pub(super) stride: usize,
    /// Per slot: the [`TokenCache::key`] of its token (all zero: empty).
    pub(super) keys: Vec<[u8; 32]>,
    /// Per slot: number of character features of the token.
    pub(super) counts: Vec<u32>,
    /// Per slot: the squared norm of the token's character features (the
    /// sum of their [`ModelData::idf_squared`], or their count).
    pub(super) norms: Vec<f32>,
    /// Per slot: the token's lexicon facts (signals, language votes).
    pub(super) facts: Vec<TokenFacts>,
    /// Per slot: the hash of the token's stem (see [`stem_hash`]) when the
    /// model stems words, else 0.
    pub(super) stems: Vec<u64>,
    /// Per slot: `stride` summed weights.
    pub(super) sums: Vec<i16>,
    pub(super) hits: u64,
    pub(super) lookups: u64,
}

impl TokenCache {
    /// Longest token that is cached.
    pub(super) const MAX_TOKEN: usize = 31;
    /// Most character n-grams a cached token can have: n-grams of lengths
    /// 1 to [`FeatureConfig::MAX_CHAR_N`] over `MAX_TOKEN + 2` padded bytes.
    /// Times 128 (the largest `|i8|`) it stays below `i16::MAX`.
    pub(super) const MAX_ROWS: usize = 236;
    /// Messages a scratch scores with one model before it allocates a cache.
    /// ([`Scratch`]'s docs name the number: keep them in step.)
    pub(super) const WARM_UP: u32 = 64;
    /// Memory budget of the row sums, in bytes (the slot count is the
    /// largest power of two that fits, at most [`TokenCache::MAX_SLOTS`]).
    pub(super) const BUDGET_BYTES: usize = 4 << 20;
    pub(super) const MAX_SLOTS: usize = 16_384;

    /// Prepares for scoring one message with `model`; returns whether the
    /// cache is in use for it.
    pub(super) fn begin(&mut self, model: &Model) -> bool {
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
            let stride = model.stride;
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
    pub(super) fn key(token: &[u8]) -> [u8; 32] {
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
    pub(super) fn slot(
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
    pub(super) fn add(&self, slot: usize, acc: &mut [i32]) -> (u32, f32, TokenFacts) {
        let sum = &self.sums[slot * self.stride..(slot + 1) * self.stride];
        for (a, &s) in acc.iter_mut().zip(sum) {
            *a += i32::from(s);
        }
        (self.counts[slot], self.norms[slot], self.facts[slot])
    }
}
