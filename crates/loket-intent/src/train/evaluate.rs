//! Evaluation: intent accuracy and F1, buying-intent AUC, and hand-off
//! precision, recall and F1 per kind and language.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::handoff::HandoffKind;
use crate::model::{HANDOFF_CLASSES, Model, OOS_LABEL, Scratch};

use super::Labelled;

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
pub fn evaluate<E: Labelled>(model: &Model, examples: &[E]) -> Metrics {
    let mut scratch = Scratch::new();
    // Warm the scratch buffers so the timed loop does not allocate.
    if let Some(e) = examples.first() {
        model.score(e.text(), &mut scratch);
    }
    let mut predicted = Vec::with_capacity(examples.len());
    let start = Instant::now();
    for e in examples {
        predicted.push(model.score(e.text(), &mut scratch).intent);
    }
    let mut elapsed = start.elapsed().as_secs_f64();
    let mut scored = examples.len();
    // Small files time too briefly to measure: repeat the loop (results are
    // identical) until at least 200 ms have been measured.
    while elapsed < 0.2 && !examples.is_empty() {
        let start = Instant::now();
        for e in examples {
            std::hint::black_box(model.score(e.text(), &mut scratch));
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
        let gold = e.label();
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

/// Counts of hand-off judgements against hand-off labels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandoffCounts {
    /// Rows counted.
    pub n: usize,
    /// Per kind in [`HandoffKind::ALL`] order: true positives, false
    /// positives, false negatives (index 0, `none`, stays zero).
    pub kinds: [(usize, usize, usize); HANDOFF_CLASSES],
    /// Hand-off or not, whatever the kind: true positives, false
    /// positives, false negatives.
    pub any: (usize, usize, usize),
    /// Rows labelled `none` (plain).
    pub plain: usize,
    /// Plain rows that were handed off.
    pub false_handoffs: usize,
}

/// Precision, recall and F1 (each 0 when undefined), and the number of
/// gold positives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prf {
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F1.
    pub f1: f64,
    /// Gold positives.
    pub support: usize,
}

impl Prf {
    fn of((tp, fp, fn_): (usize, usize, usize)) -> Prf {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        Prf {
            precision: ratio(tp, tp + fp),
            recall: ratio(tp, tp + fn_),
            f1: ratio(2 * tp, 2 * tp + fp + fn_),
            support: tp + fn_,
        }
    }
}

impl HandoffCounts {
    /// Counts one row.
    pub fn add(&mut self, gold: HandoffKind, judged: HandoffKind) {
        self.n += 1;
        if gold == HandoffKind::None {
            self.plain += 1;
            self.false_handoffs += usize::from(judged != HandoffKind::None);
        }
        if judged == gold {
            if gold != HandoffKind::None {
                self.kinds[gold.index()].0 += 1;
            }
        } else {
            if judged != HandoffKind::None {
                self.kinds[judged.index()].1 += 1;
            }
            if gold != HandoffKind::None {
                self.kinds[gold.index()].2 += 1;
            }
        }
        match (gold != HandoffKind::None, judged != HandoffKind::None) {
            (true, true) => self.any.0 += 1,
            (false, true) => self.any.1 += 1,
            (true, false) => self.any.2 += 1,
            (false, false) => {}
        }
    }

    /// One kind (doubt, complaint or human).
    pub fn kind(&self, kind: HandoffKind) -> Prf {
        Prf::of(self.kinds[kind.index()])
    }

    /// Micro-averaged over the three kinds: a hand-off counts as right only
    /// with the right kind.
    pub fn micro(&self) -> Prf {
        let sum = self.kinds[1..].iter().fold((0, 0, 0), |a, k| (a.0 + k.0, a.1 + k.1, a.2 + k.2));
        Prf::of(sum)
    }

    /// Mean F1 of the three kinds.
    pub fn macro_f1(&self) -> f64 {
        HandoffKind::ALL[1..].iter().map(|&k| self.kind(k).f1).sum::<f64>() / 3.0
    }

    /// Hand-off or not, whatever the kind.
    pub fn any(&self) -> Prf {
        Prf::of(self.any)
    }

    /// The share of plain rows that were handed off (0 without plain rows).
    pub fn false_handoff_rate(&self) -> f64 {
        if self.plain == 0 { 0.0 } else { self.false_handoffs as f64 / self.plain as f64 }
    }
}

/// Hand-off judgements against the hand-off labels of a data set.
#[derive(Debug, Clone, PartialEq)]
pub struct HandoffMetrics {
    /// Every row with a hand-off label.
    pub all: HandoffCounts,
    /// Per language (the row's, or else the detected one): `nl`, `en`, `und`.
    pub by_language: BTreeMap<&'static str, HandoffCounts>,
    /// Whether the judgements came from the model's hand-off head (else
    /// from its lexicon signals, see [`HandoffKind::of`]).
    pub learned: bool,
}

/// Scores the rows that have a hand-off label and counts the hand-offs the
/// scores call for ([`HandoffKind::of`]: the hand-off head's judgement, or
/// the lexicon's for a model without one). `None` when no row has a
/// hand-off label.
pub fn evaluate_handoff<E: Labelled>(model: &Model, rows: &[E]) -> Option<HandoffMetrics> {
    let mut scratch = Scratch::new();
    let mut metrics = HandoffMetrics {
        all: HandoffCounts::default(),
        by_language: BTreeMap::new(),
        learned: model.has_handoff_head(),
    };
    for row in rows {
        let Some(gold) = row.handoff() else { continue };
        let score = model.score(row.text(), &mut scratch);
        let judged = HandoffKind::of(score.signals);
        let language = row.language().unwrap_or(score.language);
        metrics.all.add(gold, judged);
        metrics.by_language.entry(language.code()).or_default().add(gold, judged);
    }
    (metrics.all.n > 0).then_some(metrics)
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
