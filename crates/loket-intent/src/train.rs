//! Training, calibration and evaluation.
//!
//! The classifier is one-vs-rest linear SVMs with the squared hinge loss and
//! L2 regularisation, solved in the dual by coordinate descent with shrinking
//! (the method of LIBLINEAR's default solver), over the hashed word and
//! character features of [`crate::features`]. The classes are trained in
//! parallel (rayon); each class shuffles with its own generator seeded from
//! `(seed, class)`, so a seed gives the same model on any number of threads.
//!
//! After training, the weights are quantised to `i8` per class, and two
//! numbers are calibrated on held-out data (the `val` examples, or a
//! stratified slice of the training data when none are given, in which case
//! the final model is retrained on everything):
//!
//! - the softmax inverse temperature `T`, by minimising the negative
//!   log-likelihood;
//! - the out-of-scope threshold: when the held-out data has `oos` rows, the
//!   confidence threshold maximising in-scope accuracy plus oos recall among
//!   those that cost at most `max_inscope_loss` of in-scope accuracy;
//!   otherwise 0 (never reject).
//!
//! When some training rows carry a hand-off label ([`Row::handoff`]), the
//! model also gets a hand-off head ([`crate::handoff`]): four more
//! one-vs-rest SVMs (none, doubt, complaint, human) over the same features,
//! trained on the rows that have such a label (with their own cost,
//! [`TrainConfig::handoff_c`]), quantised per class like the intents, with
//! their own temperature and a threshold calibrated on the same held-out
//! data: the one with the best hand-off F1 among those that hand off at most
//! [`TrainConfig::handoff_max_false`] of the plain (`none`) rows. Rows
//! without a hand-off label train the intents only.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::features::{FeatureConfig, Group, for_each_feature, group_scale, squared_idf};
use crate::handoff::HandoffKind;
use crate::model::{HANDOFF_CLASSES, Model, ModelData, ModelError, OOS_LABEL, Scratch};
use crate::normalize::normalize_into;

mod data;
mod evaluate;
#[cfg(test)]
mod tests;

pub use data::{
    DataError, Example, Labelled, Row, read_csv, read_csv_from, read_rows, read_rows_from,
};
pub use evaluate::{HandoffCounts, HandoffMetrics, Metrics, Prf, auc, evaluate, evaluate_handoff};

/// Errors from training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// No training examples.
    #[error("no training examples")]
    Empty,
    /// Too many distinct labels.
    #[error("{0} distinct labels; a model holds at most 4096")]
    TooManyClasses(usize),
    /// Invalid hyperparameters.
    #[error("invalid training configuration: {0}")]
    Config(String),
    /// The trained model could not be built.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Hyperparameters of [`train`].
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Feature space.
    pub features: FeatureConfig,
    /// SVM cost parameter (inverse regularisation strength).
    pub c: f32,
    /// Most passes of coordinate descent per class.
    pub max_epochs: u32,
    /// Stopping tolerance on the projected gradient.
    pub tolerance: f32,
    /// Seed for shuffling and for the calibration split.
    pub seed: u64,
    /// Labels starting with this are buying intents.
    pub buying_prefix: String,
    /// Fraction of the training data held out for calibration when no
    /// validation data is given.
    pub calibration_fraction: f32,
    /// Most in-scope accuracy the out-of-scope threshold may cost.
    pub max_inscope_loss: f32,
    /// Scale every feature by its smoothed inverse document frequency
    /// `ln((1 + n) / (1 + df)) + 1` (folded into the stored weights), and
    /// normalise each feature group of a message to length `weight` under
    /// those factors (the model stores the squared factors per bucket).
    pub idf: bool,
    /// After calibrating on validation data, retrain on training plus
    /// validation data (keeping the calibrated temperature and threshold).
    pub refit: bool,
    /// SVM cost parameter of the hand-off head.
    pub handoff_c: f32,
    /// Most of the plain (`none`) calibration rows the hand-off threshold
    /// may hand off (a fraction).
    pub handoff_max_false: f32,
    /// Without validation data, the hand-off head is calibrated on
    /// out-of-fold scores of this many folds of the training data (below 2:
    /// on the calibration slice, as the intents).
    pub handoff_calibration_folds: usize,
    /// Provenance stored in the model.
    pub description: String,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            features: FeatureConfig::default(),
            c: 1.0,
            max_epochs: 60,
            tolerance: 0.1,
            seed: 1,
            buying_prefix: "buy.".into(),
            calibration_fraction: 0.15,
            max_inscope_loss: 0.003,
            idf: false,
            refit: false,
            handoff_c: 1.0,
            handoff_max_false: 0.04,
            handoff_calibration_folds: 5,
            description: String::new(),
        }
    }
}

/// Progress of [`train`], for display.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    /// Features extracted.
    Featurised {
        /// Examples.
        examples: usize,
        /// Distinct buckets in use.
        features: usize,
        /// Classes.
        classes: usize,
    },
    /// One more class is trained.
    ClassDone {
        /// Classes done so far.
        done: usize,
        /// Classes in total.
        total: usize,
    },
    /// Calibration finished.
    Calibrated {
        /// Softmax inverse temperature.
        temperature: f32,
        /// Out-of-scope threshold.
        oos_threshold: f32,
    },
    /// The hand-off head is calibrated.
    HandoffCalibrated {
        /// Softmax inverse temperature of the hand-off classes.
        temperature: f32,
        /// Probability a hand-off kind needs.
        threshold: f32,
    },
    /// Retraining on all data after calibrating on a held-out slice.
    Retraining,
}

/// Trains a model on `train`, calibrating on `val` when given (see the module
/// documentation). Deterministic for a given configuration. The model has a
/// hand-off head when some training rows have a hand-off label.
///
/// # Errors
/// [`TrainError`] for empty data, too many labels or bad hyperparameters.
pub fn train<E: Labelled>(
    train: &[E],
    val: Option<&[E]>,
    config: &TrainConfig,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<ModelData, TrainError> {
    if !config.features.is_valid() {
        return Err(TrainError::Config("feature configuration out of range".into()));
    }
    if !(config.c.is_finite() && config.c > 0.0) {
        return Err(TrainError::Config("C must be positive".into()));
    }
    if !(config.handoff_c.is_finite() && config.handoff_c > 0.0) {
        return Err(TrainError::Config("the hand-off head's C must be positive".into()));
    }
    if !(0.0..=1.0).contains(&config.handoff_max_false) {
        return Err(TrainError::Config("the hand-off false rate must be within [0, 1]".into()));
    }
    if train.is_empty() {
        return Err(TrainError::Empty);
    }
    match val {
        Some(val) if !val.is_empty() => {
            let mut data = fit(train, config, progress)?;
            calibrate(&mut data, val, config, true, progress)?;
            if !config.refit {
                return Ok(data);
            }
            progress(Progress::Retraining);
            let all: Vec<E> = train.iter().chain(val).cloned().collect();
            let mut full = fit(&all, config, progress)?;
            copy_calibration(&data, &mut full);
            Ok(full)
        }
        _ => {
            let (fit_part, calib_part) =
                stratified_split(train, config.calibration_fraction, config.seed);
            if calib_part.is_empty() {
                let mut data = fit(train, config, progress)?;
                data.temperature = 1.0;
                return Ok(data);
            }
            let mut data = fit(&fit_part, config, progress)?;
            let cross = config.handoff_calibration_folds >= 2
                && train.iter().any(|e| e.handoff().is_some());
            calibrate(&mut data, &calib_part, config, !cross, progress)?;
            if cross {
                let (temperature, threshold) = cross_calibrate_handoff(train, config)?;
                data.handoff_temperature = temperature;
                data.handoff_threshold = threshold;
                progress(Progress::HandoffCalibrated { temperature, threshold });
            }
            progress(Progress::Retraining);
            let mut full = fit(train, config, progress)?;
            copy_calibration(&data, &mut full);
            Ok(full)
        }
    }
}

/// The hand-off temperature and threshold from out-of-fold scores: every
/// row with a hand-off label is scored by a model trained on the other
/// [`TrainConfig::handoff_calibration_folds`] - 1 folds, so the calibration
/// sees all of them instead of one slice.
fn cross_calibrate_handoff<E: Labelled>(
    train: &[E],
    config: &TrainConfig,
) -> Result<(f32, f32), TrainError> {
    let folds = stratified_folds(train, config.handoff_calibration_folds, config.seed);
    let mut scored = Vec::new();
    let mut scratch = Scratch::new();
    for test in &folds {
        let mut in_test = vec![false; train.len()];
        for &i in test {
            in_test[i] = true;
        }
        let rest: Vec<E> =
            train.iter().zip(&in_test).filter(|(_, t)| !**t).map(|(e, _)| e.clone()).collect();
        let model = Model::load(&fit(&rest, config, &|_| {})?.to_bytes()?)?;
        for &i in test {
            if let Some(gold) = train[i].handoff() {
                scored.push((model.handoff_scores(train[i].text(), &mut scratch), gold));
            }
        }
    }
    Ok(calibrate_handoff(&scored, config.handoff_max_false))
}

/// Carries the calibrated numbers of `from` over to `to` (trained on more data).
fn copy_calibration(from: &ModelData, to: &mut ModelData) {
    to.temperature = from.temperature;
    to.oos_threshold = from.oos_threshold;
    to.handoff_temperature = from.handoff_temperature;
    to.handoff_threshold = from.handoff_threshold;
}

/// A configuration with every feature option and idf on, over
/// `2^bucket_bits` buckets: the models the tests and fuzz checks use to
/// cover those paths.
pub(crate) fn every_option_config(bucket_bits: u8) -> TrainConfig {
    TrainConfig {
        features: FeatureConfig {
            bucket_bits,
            stem_words: true,
            content_pairs: true,
            negation_token: true,
            ..FeatureConfig::default()
        },
        idf: true,
        ..TrainConfig::default()
    }
}

/// Splits off about `fraction` of every label's examples (at least one when a
/// label has three or more), deterministically for a seed.
pub fn stratified_split<E: Labelled>(examples: &[E], fraction: f32, seed: u64) -> (Vec<E>, Vec<E>) {
    let mut by_label: BTreeMap<&str, Vec<&E>> = BTreeMap::new();
    for e in examples {
        by_label.entry(e.label()).or_default().push(e);
    }
    let mut rng = SplitMix64(seed ^ 0x5151_5151);
    let (mut keep, mut held) = (Vec::new(), Vec::new());
    for group in by_label.values_mut() {
        rng.shuffle(group);
        let mut n_held = (group.len() as f32 * fraction.clamp(0.0, 0.9)).round() as usize;
        if n_held == 0 && group.len() >= 3 && fraction > 0.0 {
            n_held = 1;
        }
        for (i, e) in group.iter().enumerate() {
            if i < n_held {
                held.push((*e).clone());
            } else {
                keep.push((*e).clone());
            }
        }
    }
    (keep, held)
}

/// Splits examples into `k` stratified folds; fold `i` is the i-th test set.
pub fn stratified_folds<E: Labelled>(examples: &[E], k: usize, seed: u64) -> Vec<Vec<usize>> {
    let k = k.max(2);
    let mut by_label: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, e) in examples.iter().enumerate() {
        by_label.entry(e.label()).or_default().push(i);
    }
    let mut rng = SplitMix64(seed ^ 0xf01d);
    let mut folds = vec![Vec::new(); k];
    let mut next = 0usize;
    for group in by_label.values_mut() {
        rng.shuffle(group);
        for &i in group.iter() {
            folds[next % k].push(i);
            next += 1;
        }
    }
    folds
}

/// Training matrix in compressed sparse rows over compact feature ids.
struct Matrix {
    offsets: Vec<usize>,
    ids: Vec<u32>,
    values: Vec<f32>,
    /// Squared norm of each row (without the bias feature).
    sqnorm: Vec<f32>,
    /// Bucket of each compact id.
    buckets: Vec<u32>,
    /// Factor folded into the weights of each compact id (idf, or 1).
    idf: Vec<f32>,
    /// Per bucket, the squared idf (for [`ModelData::idf_squared`]); empty
    /// without idf.
    idf_squared: Vec<f32>,
}

impl Matrix {
    fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let r = self.offsets[i]..self.offsets[i + 1];
        (&self.ids[r.clone()], &self.values[r])
    }
}

/// Builds the training matrix with exactly the feature values the scorer
/// uses: per occurrence `group_scale(weight, norm) * idf`, summed per bucket,
/// where a group's squared norm is the sum of its occurrences' squared idf
/// (their count without idf), added up token by token as the scorer does.
///
/// With `use_idf`, a bucket's idf is the smoothed
/// `ln((1 + n) / (1 + df)) + 1` over the `n` examples, `df` of which contain
/// it: at least 1. A bucket no example contains (df = 0) has no weight, but at scoring time it still
/// counts in its group's norm with the largest idf, so a message full of
/// words the model never saw has its known features scaled down. Storing 0
/// for such buckets instead (dropping them from the norm) measured the same
/// on BANKING77 (5-fold, seeds 1-3: 91.52, 91.19, 91.41% against 91.53,
/// 91.21, 91.41%).
fn featurise<E: Labelled>(examples: &[E], config: &FeatureConfig, use_idf: bool) -> Matrix {
    let mut norm = String::new();
    let idf_squared: Vec<f32> = if use_idf {
        // Pass 1: document frequencies.
        let mut df = vec![0u32; config.buckets()];
        let mut last_row = vec![u32::MAX; config.buckets()];
        for (r, e) in examples.iter().enumerate() {
            let r = r as u32;
            normalize_into(e.text(), &mut norm);
            for_each_feature(&norm, config, |b, _| {
                if last_row[b as usize] != r {
                    last_row[b as usize] = r;
                    df[b as usize] += 1;
                }
            });
        }
        let n = examples.len() as f32;
        df.iter()
            .map(|&d| {
                let idf = ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0;
                idf * idf
            })
            .collect()
    } else {
        Vec::new()
    };
    let factor_squared = |b: u32| squared_idf(&idf_squared, b);

    // Pass 2: rows of merged values over compact ids.
    let mut compact = vec![u32::MAX; config.buckets()];
    let mut buckets = Vec::new();
    let mut offsets = vec![0usize];
    let (mut ids, mut values, mut sqnorm) = (Vec::new(), Vec::new(), Vec::new());
    let mut raw: Vec<(u32, Group)> = Vec::new();
    let mut row: Vec<(u32, f32)> = Vec::new();
    for e in examples {
        normalize_into(e.text(), &mut norm);
        raw.clear();
        for_each_feature(&norm, config, |b, g| raw.push((b, g)));
        // A token's character n-grams are one run between word features:
        // sum each run first, as the scorer's per-token sums (and its token
        // cache) do, so both get the same bits.
        let (mut word_norm, mut char_norm, mut token_norm) = (0.0f32, 0.0f32, 0.0f32);
        for &(b, g) in &raw {
            match g {
                Group::Word => {
                    char_norm += std::mem::take(&mut token_norm);
                    word_norm += factor_squared(b);
                }
                Group::Char => token_norm += factor_squared(b),
            }
        }
        char_norm += token_norm;
        let sw = group_scale(config.word_weight, word_norm);
        let sc = group_scale(config.char_weight, char_norm);
        row.clear();
        row.extend(raw.iter().map(|&(b, g)| {
            let scale = if g == Group::Word { sw } else { sc };
            (b, scale * factor_squared(b).sqrt())
        }));
        row.sort_unstable_by_key(|&(b, _)| b);
        let mut sq = 0.0f32;
        let mut i = 0;
        while i < row.len() {
            let b = row[i].0;
            let mut v = 0.0;
            while i < row.len() && row[i].0 == b {
                v += row[i].1;
                i += 1;
            }
            if v == 0.0 {
                continue;
            }
            let id = &mut compact[b as usize];
            if *id == u32::MAX {
                *id = buckets.len() as u32;
                buckets.push(b);
            }
            ids.push(*id);
            values.push(v);
            sq += v * v;
        }
        offsets.push(ids.len());
        sqnorm.push(sq);
    }
    let idf = buckets.iter().map(|&b| factor_squared(b).sqrt()).collect();
    Matrix { offsets, ids, values, sqnorm, buckets, idf, idf_squared }
}

/// Trains the classifier (and the hand-off head, when some examples have a
/// hand-off label) and quantises it; temperatures 1, thresholds 0.
fn fit<E: Labelled>(
    examples: &[E],
    config: &TrainConfig,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<ModelData, TrainError> {
    let labels: Vec<String> = {
        let mut l: Vec<String> = examples.iter().map(|e| e.label().to_owned()).collect();
        l.sort();
        l.dedup();
        l
    };
    if labels.len() > crate::model::MAX_CLASSES {
        return Err(TrainError::TooManyClasses(labels.len()));
    }
    let index: BTreeMap<&str, u32> =
        labels.iter().enumerate().map(|(i, l)| (l.as_str(), i as u32)).collect();
    let y: Vec<u32> = examples.iter().map(|e| index[e.label()]).collect();
    let handoff: Vec<Option<HandoffKind>> = examples.iter().map(Labelled::handoff).collect();
    let n = labels.len();
    let n_handoff = if handoff.iter().any(Option::is_some) { HANDOFF_CLASSES } else { 0 };
    let matrix = featurise(examples, &config.features, config.idf);
    let n_features = matrix.buckets.len();
    progress(Progress::Featurised {
        examples: examples.len(),
        features: n_features,
        classes: n + n_handoff,
    });
    let done = AtomicUsize::new(0);
    let total = n + n_handoff;
    // Intent classes first, then the hand-off classes: one binary problem
    // each, +1 for the class, -1 for the rest, 0 for rows without a label.
    let mut class_weights: Vec<Vec<f32>> = (0..total)
        .into_par_iter()
        .map(|class| {
            let (targets, c, stream): (Vec<f32>, f32, u64) = if class < n {
                let t = y.iter().map(|&l| if l as usize == class { 1.0 } else { -1.0 }).collect();
                (t, config.c, class as u64)
            } else {
                let kind = HandoffKind::ALL[class - n];
                let t = handoff
                    .iter()
                    .map(|h| match h {
                        Some(h) if *h == kind => 1.0,
                        Some(_) => -1.0,
                        None => 0.0,
                    })
                    .collect();
                // Streams apart from any intent class's.
                (t, config.handoff_c, (crate::model::MAX_CLASSES + kind.index()) as u64)
            };
            let w = train_binary(&matrix, &targets, c, stream, config, n_features);
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress(Progress::ClassDone { done: d, total });
            w
        })
        .collect();

    // Quantise per class: the largest weight maps to 127.
    let buckets = config.features.buckets();
    let stride = crate::model::row_stride(total);
    let mut weights = vec![0i8; buckets * stride];
    let mut class_scale = Vec::with_capacity(total);
    let mut bias = Vec::with_capacity(total);
    for (c, w) in class_weights.iter_mut().enumerate() {
        // Fold the idf into the weights: score = sum count * scale * (w * idf).
        for (x, &f) in w.iter_mut().zip(&matrix.idf) {
            *x *= f;
        }
        let max = w[..n_features].iter().fold(0.0f32, |m, &x| m.max(x.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        class_scale.push(scale);
        bias.push(w[n_features]);
        for (id, &x) in w[..n_features].iter().enumerate() {
            let q = (x / scale).round().clamp(-127.0, 127.0) as i8;
            weights[matrix.buckets[id] as usize * stride + c] = q;
        }
    }
    let handoff_class_scale = class_scale.split_off(n);
    let handoff_bias = bias.split_off(n);
    let buying = labels
        .iter()
        .map(|l| !config.buying_prefix.is_empty() && l.starts_with(&config.buying_prefix))
        .collect();
    let oos_class = labels.iter().position(|l| l == OOS_LABEL).map_or(u32::MAX, |i| i as u32);
    Ok(ModelData {
        description: config.description.clone(),
        features: config.features,
        idf_squared: matrix.idf_squared,
        labels,
        buying,
        oos_class,
        oos_threshold: 0.0,
        temperature: 1.0,
        class_scale,
        bias,
        handoff_class_scale,
        handoff_bias,
        handoff_temperature: 1.0,
        handoff_threshold: 0.0,
        weights,
    })
}

/// Dual coordinate descent for the L2-regularised squared-hinge SVM of one
/// class against the rest, with cost `c`: `targets` holds +1 for the class,
/// -1 for the rest and 0 for rows that take no part. `stream` seeds the
/// shuffles (with the configured seed). Returns the weights by compact
/// feature id, with the bias last.
fn train_binary(
    m: &Matrix,
    targets: &[f32],
    c: f32,
    stream: u64,
    config: &TrainConfig,
    n_features: usize,
) -> Vec<f32> {
    let n = targets.len();
    let diag = 0.5 / c;
    let mut w = vec![0.0f32; n_features + 1];
    let mut alpha = vec![0.0f32; n];
    let sign = targets;
    // The bias is a feature of constant value 1 (regularised, as in LIBLINEAR).
    let qd: Vec<f32> = m.sqnorm.iter().map(|&s| s + 1.0 + diag).collect();
    let all: Vec<usize> = (0..n).filter(|&i| sign[i] != 0.0).collect();
    let mut active = all.clone();
    let mut rng = SplitMix64(config.seed.wrapping_mul(0x9e37_79b9).wrapping_add(stream));
    let (mut pg_max_old, mut pg_min_old) = (f32::INFINITY, f32::NEG_INFINITY);
    let eps = config.tolerance;
    for _ in 0..config.max_epochs {
        rng.shuffle(&mut active);
        let (mut pg_max, mut pg_min) = (f32::NEG_INFINITY, f32::INFINITY);
        let mut k = 0;
        while k < active.len() {
            let i = active[k];
            let (ids, vals) = m.row(i);
            let yi = sign[i];
            let mut dot = w[n_features];
            for (&id, &v) in ids.iter().zip(vals) {
                dot += w[id as usize] * v;
            }
            let g = yi * dot - 1.0 + diag * alpha[i];
            let mut pg = 0.0;
            if alpha[i] == 0.0 {
                if g > pg_max_old {
                    // Shrink: this example is safely outside the margin.
                    active.swap_remove(k);
                    continue;
                }
                if g < 0.0 {
                    pg = g;
                }
            } else {
                pg = g;
            }
            pg_max = pg_max.max(pg);
            pg_min = pg_min.min(pg);
            if pg.abs() > 1e-12 {
                let old = alpha[i];
                alpha[i] = (old - g / qd[i]).max(0.0);
                let d = (alpha[i] - old) * yi;
                for (&id, &v) in ids.iter().zip(vals) {
                    w[id as usize] += d * v;
                }
                w[n_features] += d;
            }
            k += 1;
        }
        if pg_max - pg_min <= eps {
            if active.len() == all.len() {
                break;
            }
            active.clone_from(&all);
            pg_max_old = f32::INFINITY;
            pg_min_old = f32::NEG_INFINITY;
            continue;
        }
        pg_max_old = if pg_max <= 0.0 { f32::INFINITY } else { pg_max };
        pg_min_old = if pg_min >= 0.0 { f32::NEG_INFINITY } else { pg_min };
    }
    let _ = pg_min_old;
    w
}

/// Calibrates the intents' temperature and out-of-scope threshold on
/// `held_out`, and the hand-off head's too when `handoff` is set.
fn calibrate<E: Labelled>(
    data: &mut ModelData,
    held_out: &[E],
    config: &TrainConfig,
    handoff: bool,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(), TrainError> {
    let model = Model::load(&data.to_bytes()?)?;
    let labels: Vec<&str> = model.labels().collect();
    let mut scratch = Scratch::new();
    // Class scores of every held-out example, and the gold class (None: oos
    // or a label the model does not know).
    let mut rows: Vec<(Vec<f32>, Option<usize>)> = Vec::with_capacity(held_out.len());
    for e in held_out {
        let scores = model.class_scores(e.text(), &mut scratch).to_vec();
        let gold = labels.iter().position(|&l| l == e.label());
        rows.push((scores, gold));
    }
    if handoff && model.has_handoff_head() {
        let scored: Vec<([f32; HANDOFF_CLASSES], HandoffKind)> = held_out
            .iter()
            .filter_map(|e| Some((model.handoff_scores(e.text(), &mut scratch), e.handoff()?)))
            .collect();
        let (temperature, threshold) = calibrate_handoff(&scored, config.handoff_max_false);
        data.handoff_temperature = temperature;
        data.handoff_threshold = threshold;
        progress(Progress::HandoffCalibrated { temperature, threshold });
    }
    let t = fit_temperature(|t| {
        let mut total = 0.0f64;
        let mut n = 0usize;
        for (s, gold) in &rows {
            let Some(g) = *gold else { continue };
            let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let z: f64 = s.iter().map(|&x| f64::from(t * (x - max)).exp()).sum();
            total += z.ln() - f64::from(t * (s[g] - max));
            n += 1;
        }
        if n == 0 { 0.0 } else { total / n as f64 }
    });
    data.temperature = t;

    // Threshold: predictions and confidences at temperature t.
    let oos_class = labels.iter().position(|&l| l == OOS_LABEL);
    let mut inscope: Vec<(f32, bool)> = Vec::new(); // (confidence, correct before rejection)
    let mut oos: Vec<(f32, bool)> = Vec::new(); // (confidence, predicted oos class)
    for ((s, gold), e) in rows.iter().zip(held_out) {
        let (best, max) = s
            .iter()
            .copied()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |acc, (i, x)| if x > acc.1 { (i, x) } else { acc });
        let z: f32 = s.iter().map(|&x| crate::model::exp_neg(t * (x - max))).sum();
        let conf = 1.0 / z;
        if e.label() == OOS_LABEL {
            oos.push((conf, Some(best) == oos_class));
        } else {
            inscope.push((conf, Some(best) == *gold && Some(best) != oos_class));
        }
    }
    let mut threshold = 0.0f32;
    if !oos.is_empty() && !inscope.is_empty() {
        let acc_at = |th: f32| {
            inscope.iter().filter(|&&(c, ok)| ok && c >= th).count() as f32 / inscope.len() as f32
        };
        let rec_at = |th: f32| {
            oos.iter().filter(|&&(c, is_oos)| is_oos || c < th).count() as f32 / oos.len() as f32
        };
        let base = acc_at(0.0);
        let mut best = base + rec_at(0.0);
        let mut candidates: Vec<f32> = inscope.iter().chain(&oos).map(|&(c, _)| c).collect();
        candidates.sort_by(f32::total_cmp);
        for &c in &candidates {
            // Reject everything strictly below c.
            let acc = acc_at(c);
            if base - acc > config.max_inscope_loss {
                break;
            }
            let objective = acc + rec_at(c);
            if objective > best {
                best = objective;
                threshold = c;
            }
        }
    }
    data.oos_threshold = threshold.clamp(0.0, 1.0);
    progress(Progress::Calibrated {
        temperature: data.temperature,
        oos_threshold: data.oos_threshold,
    });
    Ok(())
}

/// The softmax inverse temperature minimising `nll` (the mean negative
/// log-likelihood at a temperature): golden-section search on log T over
/// [0.05, 200].
fn fit_temperature(nll: impl Fn(f32) -> f64) -> f32 {
    let (mut lo, mut hi) = (0.05f64.ln(), 200f64.ln());
    let phi = 0.618_034f64;
    for _ in 0..60 {
        let a = hi - phi * (hi - lo);
        let b = lo + phi * (hi - lo);
        if nll(a.exp() as f32) < nll(b.exp() as f32) {
            hi = b;
        } else {
            lo = a;
        }
    }
    ((lo + hi) / 2.0).exp() as f32
}

/// The hand-off head's temperature and threshold from held-out raw class
/// scores and gold kinds: the temperature by likelihood, then, among the
/// thresholds that hand off at most `max_false` of the plain rows, the one
/// with the best hand-off F1 (the lowest such on a tie). Without data the
/// temperature is 1 and the threshold 0.5.
fn calibrate_handoff(rows: &[([f32; HANDOFF_CLASSES], HandoffKind)], max_false: f32) -> (f32, f32) {
    if rows.is_empty() {
        return (1.0, 0.5);
    }
    let t = fit_temperature(|t| {
        let mut total = 0.0f64;
        for (s, gold) in rows {
            let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let z: f64 = s.iter().map(|&x| f64::from(t * (x - max)).exp()).sum();
            total += z.ln() - f64::from(t * (s[gold.index()] - max));
        }
        total / rows.len() as f64
    });
    // Per row: the probability of its most likely hand-off kind, whether
    // that kind is right, and whether the row is plain.
    let mut judged: Vec<(f32, bool, HandoffKind)> = rows
        .iter()
        .map(|(s, gold)| {
            let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f64> = s.iter().map(|&x| f64::from(t * (x - max)).exp()).collect();
            let z: f64 = e.iter().sum();
            let best = (2..HANDOFF_CLASSES).fold(1, |b, k| if e[k] > e[b] { k } else { b });
            ((e[best] / z) as f32, HandoffKind::ALL[best] == *gold, *gold)
        })
        .collect();
    // Highest probability first: lowering the threshold past a row hands it off.
    judged.sort_by(|a, b| b.0.total_cmp(&a.0));
    let positives = judged.iter().filter(|r| r.2 != HandoffKind::None).count();
    let plain = judged.len() - positives;
    let (mut tp, mut fp, mut false_handoffs) = (0usize, 0usize, 0usize);
    // No hand-off at all: F1 0 (or 1 when nothing needs one).
    let mut best = (if positives == 0 { 1.0 } else { 0.0 }, 1.0f32);
    let mut i = 0;
    while i < judged.len() {
        // Rows with equal probability go in together.
        let p = judged[i].0;
        while i < judged.len() && judged[i].0 == p {
            let (_, right, gold) = judged[i];
            if right {
                tp += 1;
            } else {
                fp += 1;
            }
            false_handoffs += usize::from(gold == HandoffKind::None);
            i += 1;
        }
        if false_handoffs as f64 > f64::from(max_false) * plain as f64 {
            break;
        }
        // Micro F1 over the kinds: a hand-off of the wrong kind is a false
        // positive for one kind and a false negative for another.
        let f1 = 2.0 * tp as f64 / (tp + fp + positives) as f64;
        if f1 >= best.0 {
            best = (f1, p);
        }
    }
    (t, best.1.clamp(0.0, 1.0))
}

/// A small, fast, seedable generator (SplitMix64), so shuffles are the same
/// on every platform and version.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}
