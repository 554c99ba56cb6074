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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use crate::features::{FeatureConfig, Group, for_each_feature, group_scale, squared_idf};
use crate::model::{Model, ModelData, ModelError, OOS_LABEL, Scratch};
use crate::normalize::normalize_into;

/// One labelled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// The message.
    pub text: String,
    /// Its intent label.
    pub label: String,
}

/// Errors reading training or evaluation data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("cannot open {path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error (in the message, so not also a `source`).
        reason: std::io::Error,
    },
    /// The header lacks a required column.
    #[error("{path}: the header has no `{column}` column (expected `text,label`)")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The missing column.
        column: &'static str,
    },
    /// A record could not be parsed.
    #[error("{path}:{line}: {message}")]
    Record {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
}

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

/// Reads a CSV file with a header naming (at least) `text` and `label`.
///
/// # Errors
/// [`DataError`] naming the file, line and field at fault.
pub fn read_csv(path: impl AsRef<Path>) -> Result<Vec<Example>, DataError> {
    let path = path.as_ref();
    let file = std::fs::File::open(path)
        .map_err(|reason| DataError::Io { path: path.to_owned(), reason })?;
    read_csv_from(std::io::BufReader::new(file), path)
}

/// As [`read_csv`], from any reader; `path` is only used in error messages.
///
/// # Errors
/// As [`read_csv`].
pub fn read_csv_from(reader: impl std::io::Read, path: &Path) -> Result<Vec<Example>, DataError> {
    let record_error =
        |line: u64, message: String| DataError::Record { path: path.to_owned(), line, message };
    let mut rdr = csv::ReaderBuilder::new().flexible(false).from_reader(reader);
    let headers = rdr.headers().map_err(|e| record_error(1, format!("bad header: {e}")))?.clone();
    let column = |name: &'static str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| DataError::MissingColumn { path: path.to_owned(), column: name })
    };
    let (text_col, label_col) = (column("text")?, column("label")?);
    let mut out = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = rdr.position().line();
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                return Err(record_error(line, e.to_string()));
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        let text = record.get(text_col).unwrap_or_default();
        let label = record.get(label_col).unwrap_or_default().trim();
        if label.is_empty() {
            return Err(record_error(line, "field `label` is empty".into()));
        }
        out.push(Example { text: text.to_owned(), label: label.to_owned() });
    }
    Ok(out)
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
    /// Retraining on all data after calibrating on a held-out slice.
    Retraining,
}

/// Trains a model on `train`, calibrating on `val` when given (see the module
/// documentation). Deterministic for a given configuration.
///
/// # Errors
/// [`TrainError`] for empty data, too many labels or bad hyperparameters.
pub fn train(
    train: &[Example],
    val: Option<&[Example]>,
    config: &TrainConfig,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<ModelData, TrainError> {
    if !config.features.is_valid() {
        return Err(TrainError::Config("feature configuration out of range".into()));
    }
    if !(config.c.is_finite() && config.c > 0.0) {
        return Err(TrainError::Config("C must be positive".into()));
    }
    if train.is_empty() {
        return Err(TrainError::Empty);
    }
    match val {
        Some(val) if !val.is_empty() => {
            let mut data = fit(train, config, progress)?;
            calibrate(&mut data, val, config, progress)?;
            if !config.refit {
                return Ok(data);
            }
            progress(Progress::Retraining);
            let all: Vec<Example> = train.iter().chain(val).cloned().collect();
            let mut full = fit(&all, config, progress)?;
            full.temperature = data.temperature;
            full.oos_threshold = data.oos_threshold;
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
            calibrate(&mut data, &calib_part, config, progress)?;
            progress(Progress::Retraining);
            let mut full = fit(train, config, progress)?;
            full.temperature = data.temperature;
            full.oos_threshold = data.oos_threshold;
            Ok(full)
        }
    }
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
pub fn stratified_split(
    examples: &[Example],
    fraction: f32,
    seed: u64,
) -> (Vec<Example>, Vec<Example>) {
    let mut by_label: BTreeMap<&str, Vec<&Example>> = BTreeMap::new();
    for e in examples {
        by_label.entry(&e.label).or_default().push(e);
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
pub fn stratified_folds(examples: &[Example], k: usize, seed: u64) -> Vec<Vec<usize>> {
    let k = k.max(2);
    let mut by_label: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, e) in examples.iter().enumerate() {
        by_label.entry(&e.label).or_default().push(i);
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
fn featurise(examples: &[Example], config: &FeatureConfig, use_idf: bool) -> Matrix {
    let mut norm = String::new();
    let idf_squared: Vec<f32> = if use_idf {
        // Pass 1: document frequencies.
        let mut df = vec![0u32; config.buckets()];
        let mut last_row = vec![u32::MAX; config.buckets()];
        for (r, e) in examples.iter().enumerate() {
            let r = r as u32;
            normalize_into(&e.text, &mut norm);
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
        normalize_into(&e.text, &mut norm);
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

/// Trains the classifier and quantises it; temperature 1, threshold 0.
fn fit(
    examples: &[Example],
    config: &TrainConfig,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<ModelData, TrainError> {
    let labels: Vec<String> = {
        let mut l: Vec<String> = examples.iter().map(|e| e.label.clone()).collect();
        l.sort();
        l.dedup();
        l
    };
    if labels.len() > crate::model::MAX_CLASSES {
        return Err(TrainError::TooManyClasses(labels.len()));
    }
    let index: BTreeMap<&str, u32> =
        labels.iter().enumerate().map(|(i, l)| (l.as_str(), i as u32)).collect();
    let y: Vec<u32> = examples.iter().map(|e| index[e.label.as_str()]).collect();
    let matrix = featurise(examples, &config.features, config.idf);
    let n_features = matrix.buckets.len();
    progress(Progress::Featurised {
        examples: examples.len(),
        features: n_features,
        classes: labels.len(),
    });
    let done = AtomicUsize::new(0);
    let total = labels.len();
    let mut class_weights: Vec<Vec<f32>> = (0..labels.len())
        .into_par_iter()
        .map(|class| {
            let w = train_binary(&matrix, &y, class as u32, config, n_features);
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress(Progress::ClassDone { done: d, total });
            w
        })
        .collect();

    // Quantise per class: the largest weight maps to 127.
    let n = labels.len();
    let buckets = config.features.buckets();
    let stride = crate::model::row_stride(n);
    let mut weights = vec![0i8; buckets * stride];
    let mut class_scale = Vec::with_capacity(n);
    let mut bias = Vec::with_capacity(n);
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
    let buying = labels
        .iter()
        .map(|l| !config.buying_prefix.is_empty() && l.starts_with(&config.buying_prefix))
        .collect();
    let oos_class = labels.iter().position(|l| l == OOS_LABEL).map_or(u32::MAX, |i| i as u32);
    let f = &config.features;
    Ok(ModelData {
        description: config.description.clone(),
        bucket_bits: f.bucket_bits,
        char_min: f.char_min,
        char_max: f.char_max,
        word_weight: f.word_weight,
        char_weight: f.char_weight,
        pair_tokens: f.pair_tokens,
        feature_flags: f.flags(),
        idf_squared: matrix.idf_squared,
        labels,
        buying,
        oos_class,
        oos_threshold: 0.0,
        temperature: 1.0,
        class_scale,
        bias,
        weights,
    })
}

/// Dual coordinate descent for the L2-regularised squared-hinge SVM of one
/// class against the rest. Returns the weights by compact feature id, with
/// the bias last.
fn train_binary(
    m: &Matrix,
    y: &[u32],
    class: u32,
    config: &TrainConfig,
    n_features: usize,
) -> Vec<f32> {
    let n = y.len();
    let diag = 0.5 / config.c;
    let mut w = vec![0.0f32; n_features + 1];
    let mut alpha = vec![0.0f32; n];
    let sign: Vec<f32> = y.iter().map(|&l| if l == class { 1.0 } else { -1.0 }).collect();
    // The bias is a feature of constant value 1 (regularised, as in LIBLINEAR).
    let qd: Vec<f32> = m.sqnorm.iter().map(|&s| s + 1.0 + diag).collect();
    let mut active: Vec<usize> = (0..n).collect();
    let mut rng = SplitMix64(config.seed.wrapping_mul(0x9e37_79b9).wrapping_add(u64::from(class)));
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
            if active.len() == n {
                break;
            }
            active = (0..n).collect();
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

fn calibrate(
    data: &mut ModelData,
    held_out: &[Example],
    config: &TrainConfig,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(), TrainError> {
    let model = Model::load(&data.to_bytes()?)?;
    let labels: Vec<&str> = model.labels().collect();
    let mut scratch = Scratch::new();
    // Class scores of every held-out example, and the gold class (None: oos
    // or a label the model does not know).
    let mut rows: Vec<(Vec<f32>, Option<usize>)> = Vec::with_capacity(held_out.len());
    for e in held_out {
        let scores = model.class_scores(&e.text, &mut scratch).to_vec();
        let gold = labels.iter().position(|&l| l == e.label);
        rows.push((scores, gold));
    }
    let nll = |t: f32| -> f64 {
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
    };
    // Golden-section search on log T over [0.05, 200].
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
    let t = ((lo + hi) / 2.0).exp() as f32;
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
        if e.label == OOS_LABEL {
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

/// Evaluation results.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// Fraction of examples whose predicted label equals the gold label
    /// (`oos` included as a label).
    pub accuracy: f64,
    /// Accuracy over the examples whose gold label is not `oos`.
    pub in_scope_accuracy: f64,
    /// Unweighted mean F1 over the labels seen in gold or predictions.
    pub macro_f1: f64,
    /// Number of examples.
    pub n: usize,
    /// Fraction of `oos` examples predicted `oos`; None without `oos` rows.
    pub oos_recall: Option<f64>,
    /// Messages scored per second by one thread (the scoring loop only).
    pub msgs_per_sec: f64,
}

/// Scores every example with `model` on this thread, timing only the scoring
/// loop (repeated until it has run for 200 ms), and computes the metrics.
pub fn evaluate(model: &Model, examples: &[Example]) -> Metrics {
    let mut scratch = Scratch::new();
    // Warm the scratch buffers so the timed loop does not allocate.
    if let Some(e) = examples.first() {
        model.score(&e.text, &mut scratch);
    }
    let mut predicted = Vec::with_capacity(examples.len());
    let start = Instant::now();
    for e in examples {
        predicted.push(model.score(&e.text, &mut scratch).intent);
    }
    let mut elapsed = start.elapsed().as_secs_f64();
    let mut scored = examples.len();
    // Small files time too briefly to measure: repeat the loop (results are
    // identical) until at least 200 ms have been measured.
    while elapsed < 0.2 && !examples.is_empty() {
        let start = Instant::now();
        for e in examples {
            std::hint::black_box(model.score(&e.text, &mut scratch));
        }
        elapsed += start.elapsed().as_secs_f64();
        scored += examples.len();
    }
    let n = examples.len();
    let mut correct = 0usize;
    let (mut in_n, mut in_ok, mut oos_n, mut oos_ok) = (0usize, 0usize, 0usize, 0usize);
    // label -> (tp, fp, fn)
    let mut per: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for (e, &p) in examples.iter().zip(&predicted) {
        let pl = model.label(p);
        let gold = e.label.as_str();
        let ok = pl == gold;
        correct += usize::from(ok);
        if gold == OOS_LABEL {
            oos_n += 1;
            oos_ok += usize::from(ok);
        } else {
            in_n += 1;
            in_ok += usize::from(ok);
        }
        if ok {
            per.entry(gold).or_default().0 += 1;
        } else {
            per.entry(pl).or_default().1 += 1;
            per.entry(gold).or_default().2 += 1;
        }
    }
    let f1s: Vec<f64> = per
        .values()
        .map(|&(tp, fp, fn_)| {
            let denom = 2 * tp + fp + fn_;
            if denom == 0 { 0.0 } else { 2.0 * tp as f64 / denom as f64 }
        })
        .collect();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Metrics {
        accuracy: ratio(correct, n),
        in_scope_accuracy: ratio(in_ok, in_n),
        macro_f1: if f1s.is_empty() { 0.0 } else { f1s.iter().sum::<f64>() / f1s.len() as f64 },
        n,
        oos_recall: (oos_n > 0).then(|| ratio(oos_ok, oos_n)),
        msgs_per_sec: if elapsed > 0.0 { scored as f64 / elapsed } else { 0.0 },
    }
}

/// Area under the ROC curve of `scores` for the positives in `labels`
/// (ties count one half). None unless both classes are present.
pub fn auc(scores: &[f32], labels: &[bool]) -> Option<f64> {
    let mut pairs: Vec<(f32, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let pos = labels.iter().filter(|&&l| l).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    // Rank-sum (Mann-Whitney U) with average ranks for ties.
    let mut rank_sum = 0.0f64;
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            j += 1;
        }
        let avg_rank = (i + j + 1) as f64 / 2.0; // ranks are 1-based
        rank_sum += avg_rank * pairs[i..j].iter().filter(|p| p.1).count() as f64;
        i = j;
    }
    let u = rank_sum - (pos * (pos + 1)) as f64 / 2.0;
    Some(u / (pos as f64 * neg as f64))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scratch;

    fn ex(text: &str, label: &str) -> Example {
        Example { text: text.into(), label: label.into() }
    }

    fn toy() -> Vec<Example> {
        let mut v = Vec::new();
        for (i, item) in ["jas", "broek", "schoen", "tas", "jurk", "shirt"].iter().enumerate() {
            v.push(ex(&format!("wat kost de {item}"), "buy.price"));
            v.push(ex(&format!("hoeveel kost deze {item} {i}"), "buy.price"));
            v.push(ex(&format!("waar is mijn {item} bestelling"), "service.track"));
            v.push(ex(&format!("mijn {item} pakket is nog niet bezorgd"), "service.track"));
            v.push(ex(&format!("ik wil mijn {item} retour sturen"), "service.return"));
            v.push(ex(&format!("hoe kan ik de {item} terugsturen"), "service.return"));
        }
        v
    }

    fn small_config() -> TrainConfig {
        TrainConfig {
            features: FeatureConfig { bucket_bits: 12, ..FeatureConfig::default() },
            ..TrainConfig::default()
        }
    }

    #[test]
    fn learns_a_toy_problem_deterministically() {
        let data = toy();
        let a = train(&data, None, &small_config(), &|_| {}).unwrap();
        let b = train(&data, None, &small_config(), &|_| {}).unwrap();
        assert_eq!(a, b);
        let model = Model::load(&a.to_bytes().unwrap()).unwrap();
        let m = evaluate(&model, &data);
        assert!(m.accuracy > 0.95, "{m:?}");
        let mut s = Scratch::new();
        let score = model.score("wat kost die jas", &mut s);
        assert_eq!(model.label(score.intent), "buy.price");
        assert!(score.buying_intent > 0.5);
        let score = model.score("mijn pakket is niet bezorgd", &mut s);
        assert_eq!(model.label(score.intent), "service.track");
        assert!(score.buying_intent < 0.5);
    }

    #[test]
    fn feature_groups_are_normalised_with_and_without_idf() {
        let data = [ex("card lost", "a"), ex("card", "b"), ex("money sent", "b")];
        let config =
            FeatureConfig { bucket_bits: 16, content_pairs: true, ..FeatureConfig::default() };
        for use_idf in [false, true] {
            let m = featurise(&data, &config, use_idf);
            // No bucket repeats within "card lost", so each group has
            // length exactly its weight: the row's squared norm is 1 + 1.
            assert!((m.sqnorm[0] - 2.0).abs() < 1e-4, "idf {use_idf}: {}", m.sqnorm[0]);
            assert_eq!(m.idf_squared.len(), if use_idf { config.buckets() } else { 0 });
        }
        let m = featurise(&data, &config, true);
        let idf_of = |word: &str| {
            let mut unigram = None;
            for_each_feature(word, &config, |b, g| {
                if g == Group::Word && unigram.is_none() {
                    unigram = Some(b);
                }
            });
            let id = m.buckets.iter().position(|&b| Some(b) == unigram).unwrap();
            m.idf[id]
        };
        // `card` is in two of the three examples, `lost` in one.
        assert!((idf_of("card") - ((4.0f32 / 3.0).ln() + 1.0)).abs() < 1e-5);
        assert!((idf_of("lost") - (2.0f32.ln() + 1.0)).abs() < 1e-5);
    }

    #[test]
    fn the_scorer_sees_the_trainers_feature_values() {
        let config = every_option_config(12);
        let data = toy();
        let model_data = fit(&data, &config, &|_| {}).unwrap();
        let model = Model::load(&model_data.to_bytes().unwrap()).unwrap();
        let m = featurise(&data, &config.features, true);
        let n = model.n_classes();
        let stride = crate::model::row_stride(n);
        let mut scratch = Scratch::new();
        for (i, e) in data.iter().enumerate() {
            // score[c] = bias[c] + scale[c] * sum over features of
            // value / idf * quantised weight (the idf is in the weight).
            let (ids, values) = m.row(i);
            let expected: Vec<f32> = (0..n)
                .map(|c| {
                    let sum: f32 = ids
                        .iter()
                        .zip(values)
                        .map(|(&id, &v)| {
                            let q =
                                model_data.weights[m.buckets[id as usize] as usize * stride + c];
                            v / m.idf[id as usize] * f32::from(q)
                        })
                        .sum();
                    model_data.bias[c] + model_data.class_scale[c] * sum
                })
                .collect();
            let got = model.class_scores(&e.text, &mut scratch);
            for (c, (&g, &x)) in got.iter().zip(&expected).enumerate() {
                assert!(
                    (g - x).abs() <= 1e-4 * (1.0 + x.abs()),
                    "{}: class {c}: {g} vs {x}",
                    e.text
                );
            }
        }
    }

    #[test]
    fn learns_with_every_feature_option_and_idf() {
        let config = every_option_config(12);
        let data = toy();
        let a = train(&data, None, &config, &|_| {}).unwrap();
        assert_eq!(a, train(&data, None, &config, &|_| {}).unwrap());
        assert_eq!(a.feature_flags, FeatureConfig::KNOWN_FLAGS);
        let model = Model::load(&a.to_bytes().unwrap()).unwrap();
        assert_eq!(model.feature_config(), config.features);
        let m = evaluate(&model, &data);
        assert!(m.accuracy > 0.95, "{m:?}");
    }

    #[test]
    fn threshold_is_calibrated_with_oos_rows() {
        let data = toy();
        let mut val = toy();
        for t in ["het weer in parijs", "speel muziek af", "hoe oud is de maan", "zet een wekker"] {
            val.push(ex(t, OOS_LABEL));
        }
        let d = train(&data, Some(&val), &small_config(), &|_| {}).unwrap();
        assert!(d.temperature > 0.0);
        assert!((0.0..=1.0).contains(&d.oos_threshold));
        let model = Model::load(&d.to_bytes().unwrap()).unwrap();
        let m = evaluate(&model, &val);
        assert!(m.oos_recall.is_some());
        assert!(m.in_scope_accuracy >= 0.95 - f64::from(small_config().max_inscope_loss));
    }

    #[test]
    fn csv_errors_name_the_line() {
        let ok = "text,label\nhallo,greet\n\"a, b\",x\n";
        let v = read_csv_from(ok.as_bytes(), Path::new("t.csv")).unwrap();
        assert_eq!(v, vec![ex("hallo", "greet"), ex("a, b", "x")]);
        let missing = "message,label\nhallo,greet\n";
        assert!(matches!(
            read_csv_from(missing.as_bytes(), Path::new("t.csv")),
            Err(DataError::MissingColumn { column: "text", .. })
        ));
        let ragged = "text,label\nhallo,greet\nonly one field\n";
        let err = read_csv_from(ragged.as_bytes(), Path::new("t.csv")).unwrap_err();
        assert!(err.to_string().starts_with("t.csv:3:"), "{err}");
        let empty_label = "text,label\nhallo,\n";
        let err = read_csv_from(empty_label.as_bytes(), Path::new("t.csv")).unwrap_err();
        assert!(err.to_string().contains("t.csv:2:") && err.to_string().contains("label"), "{err}");
    }

    #[test]
    fn auc_matches_definition() {
        assert_eq!(auc(&[0.1, 0.9], &[false, true]), Some(1.0));
        assert_eq!(auc(&[0.9, 0.1], &[false, true]), Some(0.0));
        assert_eq!(auc(&[0.5, 0.5], &[false, true]), Some(0.5));
        assert_eq!(auc(&[0.5], &[true]), None);
        let a = auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert!((a - 0.75).abs() < 1e-12);
    }

    #[test]
    fn folds_partition_the_data() {
        let data = toy();
        let folds = stratified_folds(&data, 3, 7);
        let mut all: Vec<usize> = folds.concat();
        all.sort_unstable();
        assert_eq!(all, (0..data.len()).collect::<Vec<_>>());
        let (keep, held) = stratified_split(&data, 0.2, 1);
        assert_eq!(keep.len() + held.len(), data.len());
        assert!(!held.is_empty());
    }
}
