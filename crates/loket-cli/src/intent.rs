//! `loket intent train | eval | cv`: train, evaluate and cross-validate intent models.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use loket_intent::train::{self, HandoffCounts, Progress, Row};
use loket_intent::{FeatureConfig, HandoffKind, Model, Scratch, TrainConfig};
use serde_json::json;

/// Train and evaluate intent models.
#[derive(Debug, clap::Subcommand)]
pub enum IntentCommand {
    /// Train a model from CSV files (header `text,label`).
    Train(TrainArgs),
    /// Evaluate a model on CSV files; the last line of output is a JSON object.
    Eval(EvalArgs),
    /// Stratified k-fold cross-validation of the training settings on CSV files.
    Cv(CvArgs),
}

/// Hyperparameters shared by `train` and `cv`.
#[derive(Debug, clap::Args)]
pub struct HyperArgs {
    /// Seed for shuffling and the calibration split (same seed, same model).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Most passes of coordinate descent per class.
    #[arg(long, default_value_t = 60)]
    epochs: u32,
    /// SVM cost parameter C (higher: less regularisation).
    #[arg(long, default_value_t = 1.0)]
    c: f32,
    /// log2 of the number of hash buckets.
    #[arg(long, default_value_t = FeatureConfig::default().bucket_bits)]
    bucket_bits: u8,
    /// Shortest character n-gram.
    #[arg(long, default_value_t = FeatureConfig::default().char_min)]
    char_min: u8,
    /// Longest character n-gram.
    #[arg(long, default_value_t = FeatureConfig::default().char_max)]
    char_max: u8,
    /// Weight of the word n-gram group.
    #[arg(long, default_value_t = FeatureConfig::default().word_weight)]
    word_weight: f32,
    /// Weight of the character n-gram group.
    #[arg(long, default_value_t = FeatureConfig::default().char_weight)]
    char_weight: f32,
    /// Word co-occurrence pairs (every unordered pair of distinct words,
    /// adjacent or not) among this many leading tokens; 0 disables them.
    #[arg(long, default_value_t = FeatureConfig::default().pair_tokens)]
    pair_tokens: u8,
    /// Labels starting with this prefix are buying intents.
    #[arg(long, default_value = "buy.")]
    buying_prefix: String,
    /// Most in-scope accuracy (fraction) the out-of-scope threshold may cost
    /// on the validation data.
    #[arg(long, default_value_t = 0.003)]
    max_inscope_loss: f32,
    /// Word features from English Porter2 stems (character n-grams keep
    /// the raw words).
    #[arg(long)]
    stem_words: bool,
    /// Co-occurrence pairs among content words only (English stop words
    /// take no part).
    #[arg(long)]
    content_pairs: bool,
    /// A `not` word feature after English negations (`dont`, `cant`, `no`, ...).
    #[arg(long)]
    negation_token: bool,
    /// Weight features by inverse document frequency and normalise each
    /// feature group to the length of its weight (`--word-weight`,
    /// `--char-weight`) under those weights.
    #[arg(long)]
    idf: bool,
    /// After calibrating on --val, retrain on training plus validation data.
    #[arg(long)]
    refit: bool,
    /// SVM cost parameter C of the hand-off head (trained when the data
    /// has a `handoff` column).
    #[arg(long, default_value_t = TrainConfig::default().handoff_c)]
    handoff_c: f32,
    /// Most of the plain (`handoff` none) calibration rows the hand-off
    /// threshold may hand off (a fraction).
    #[arg(long, default_value_t = TrainConfig::default().handoff_max_false)]
    handoff_max_false: f32,
    /// Without --val, calibrate the hand-off head on out-of-fold scores of
    /// this many folds of the training data (below 2: on the calibration
    /// slice).
    #[arg(long, default_value_t = TrainConfig::default().handoff_calibration_folds)]
    handoff_folds: usize,
}

impl HyperArgs {
    /// The on/off options that are set, as command-line switches (each with
    /// a leading space), for a model's provenance.
    fn switches(&self) -> String {
        [
            (self.stem_words, " --stem-words"),
            (self.content_pairs, " --content-pairs"),
            (self.negation_token, " --negation-token"),
            (self.idf, " --idf"),
            (self.refit, " --refit"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, switch)| *switch)
        .collect()
    }

    fn config(&self, description: String) -> TrainConfig {
        TrainConfig {
            features: FeatureConfig {
                bucket_bits: self.bucket_bits,
                char_min: self.char_min,
                char_max: self.char_max,
                word_weight: self.word_weight,
                char_weight: self.char_weight,
                pair_tokens: self.pair_tokens,
                stem_words: self.stem_words,
                content_pairs: self.content_pairs,
                negation_token: self.negation_token,
            },
            c: self.c,
            max_epochs: self.epochs,
            seed: self.seed,
            buying_prefix: self.buying_prefix.clone(),
            max_inscope_loss: self.max_inscope_loss,
            idf: self.idf,
            refit: self.refit,
            handoff_c: self.handoff_c,
            handoff_max_false: self.handoff_max_false,
            handoff_calibration_folds: self.handoff_folds,
            description,
            ..TrainConfig::default()
        }
    }
}

/// `loket intent train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Training data (CSV, header `text,label`, optionally `handoff` and
    /// `language`); repeat to combine files.
    #[arg(long, required = true)]
    data: Vec<PathBuf>,
    /// Validation data for calibrating confidence and the out-of-scope
    /// threshold (`oos` rows); repeatable. Without it, a stratified 15% of
    /// the training data is held out for calibration, then the model is
    /// retrained on everything.
    #[arg(long)]
    val: Vec<PathBuf>,
    /// Where to write the model.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    hyper: HyperArgs,
}

/// `loket intent eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The model file.
    #[arg(long)]
    model: PathBuf,
    /// Evaluation data (CSV, header `text,label`, optionally `handoff` and
    /// `language`); repeat to combine files.
    #[arg(long, required = true)]
    data: Vec<PathBuf>,
}

/// `loket intent cv`.
#[derive(Debug, clap::Args)]
pub struct CvArgs {
    /// Data (CSV, header `text,label`); repeatable.
    #[arg(long, required = true)]
    data: Vec<PathBuf>,
    /// Number of folds.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    #[command(flatten)]
    hyper: HyperArgs,
}

/// Runs an `intent` subcommand.
pub fn run(command: IntentCommand) -> anyhow::Result<()> {
    match command {
        IntentCommand::Train(args) => run_train(args),
        IntentCommand::Eval(args) => run_eval(args),
        IntentCommand::Cv(args) => run_cv(args),
    }
}

fn read_all(paths: &[PathBuf]) -> anyhow::Result<Vec<Row>> {
    let mut all = Vec::new();
    for p in paths {
        let mut v = train::read_rows(p)?;
        all.append(&mut v);
    }
    Ok(all)
}

fn progress(event: Progress) {
    match event {
        Progress::Featurised { examples, features, classes } => eprintln!(
            "featurised {examples} examples: {features} hashed features, {classes} classes"
        ),
        Progress::ClassDone { done, total } => {
            // About ten lines per training run.
            if done == total || done % total.div_ceil(10) == 0 {
                eprintln!("trained {done}/{total} classes");
            }
        }
        Progress::Calibrated { temperature, oos_threshold } => {
            eprintln!("calibrated: temperature {temperature:.3}, oos threshold {oos_threshold:.4}")
        }
        Progress::HandoffCalibrated { temperature, threshold } => {
            eprintln!(
                "calibrated the hand-off head: temperature {temperature:.3}, threshold {threshold:.4}"
            )
        }
        Progress::Retraining => eprintln!("retraining on all data"),
    }
}

fn run_train(args: TrainArgs) -> anyhow::Result<()> {
    let data = read_all(&args.data)?;
    let val = read_all(&args.val)?;
    if data.is_empty() {
        bail!("no training examples in {:?}", args.data);
    }
    let description = format!(
        "loket intent train --data {} --seed {} --c {} --bucket-bits {} --char-min {} --char-max {} --word-weight {} --char-weight {} --pair-tokens {}",
        args.data
            .iter()
            .map(|p| p
                .file_name()
                .map_or_else(|| p.display().to_string(), |f| f.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" --data "),
        args.hyper.seed,
        args.hyper.c,
        args.hyper.bucket_bits,
        args.hyper.char_min,
        args.hyper.char_max,
        args.hyper.word_weight,
        args.hyper.char_weight,
        args.hyper.pair_tokens,
    ) + &args.hyper.switches()
        + &if data.iter().any(|r| r.handoff.is_some()) {
            format!(
                " --handoff-c {} --handoff-max-false {} --handoff-folds {}",
                args.hyper.handoff_c, args.hyper.handoff_max_false, args.hyper.handoff_folds
            )
        } else {
            String::new()
        };
    let config = args.hyper.config(description);
    eprintln!("training on {} examples ({} validation)", data.len(), val.len());
    let start = Instant::now();
    let model_data =
        train::train(&data, (!val.is_empty()).then_some(val.as_slice()), &config, &progress)?;
    let bytes = model_data.to_bytes()?;
    let secs = start.elapsed().as_secs_f64();
    std::fs::write(&args.out, &bytes)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!(
        "wrote {} ({} bytes, {} classes) in {secs:.1} s",
        args.out.display(),
        bytes.len(),
        model_data.labels.len()
    );
    if !val.is_empty() {
        let model = Model::load(&bytes)?;
        let m = train::evaluate(&model, &val);
        eprintln!(
            "validation: accuracy {:.4}, in-scope accuracy {:.4}, macro F1 {:.4}{}",
            m.accuracy,
            m.in_scope_accuracy,
            m.macro_f1,
            m.oos_recall.map(|r| format!(", oos recall {r:.4}")).unwrap_or_default()
        );
    }
    println!(
        "{}",
        json!({"model": args.out, "bytes": bytes.len(), "classes": model_data.labels.len(),
               "examples": data.len(), "train_seconds": round(secs)})
    );
    Ok(())
}

fn metrics_json(model: &Model, examples: &[Row]) -> serde_json::Value {
    let m = train::evaluate(model, examples);
    let mut obj = json!({
        "accuracy": round(m.accuracy),
        "macro_f1": round(m.macro_f1),
        "n": m.n,
        "msgs_per_sec": m.msgs_per_sec.round(),
        "in_scope_accuracy": round(m.in_scope_accuracy),
    });
    if let Some(r) = m.oos_recall {
        obj["oos_recall"] = json!(round(r));
    }
    // Buying-intent AUC when the data is labelled with buying intents.
    let buying_labels: Vec<bool> = examples.iter().map(|e| e.label.starts_with("buy.")).collect();
    if buying_labels.iter().any(|&b| b) {
        let mut scratch = Scratch::new();
        let scores: Vec<f32> =
            examples.iter().map(|e| model.score(&e.text, &mut scratch).buying_intent).collect();
        if let Some(auc) = train::auc(&scores, &buying_labels) {
            obj["buying_auc"] = json!(round(auc));
        }
    }
    if let Some(h) = train::evaluate_handoff(model, examples) {
        let mut handoff = counts_json(&h.all);
        handoff["source"] = json!(if h.learned { "model" } else { "lexicon" });
        handoff["languages"] = h
            .by_language
            .iter()
            .map(|(code, counts)| (code.to_string(), counts_json(counts)))
            .collect();
        obj["handoff"] = handoff;
    }
    obj
}

/// Hand-off precision, recall and F1 (over the kinds, per kind, and for
/// hand-off or not) and false hand-offs of plain rows.
fn counts_json(c: &HandoffCounts) -> serde_json::Value {
    let prf = |p: train::Prf| {
        json!({"precision": round(p.precision), "recall": round(p.recall), "f1": round(p.f1),
               "support": p.support})
    };
    let micro = c.micro();
    let any = c.any();
    json!({
        "n": c.n,
        "precision": round(micro.precision),
        "recall": round(micro.recall),
        "f1": round(micro.f1),
        "macro_f1": round(c.macro_f1()),
        "any": {"precision": round(any.precision), "recall": round(any.recall), "f1": round(any.f1)},
        "plain": c.plain,
        "false_handoffs": c.false_handoffs,
        "false_handoff_rate": round(c.false_handoff_rate()),
        "kinds": HandoffKind::ALL[1..]
            .iter()
            .map(|&k| (k.name().to_owned(), prf(c.kind(k))))
            .collect::<serde_json::Map<_, _>>(),
    })
}

fn run_eval(args: EvalArgs) -> anyhow::Result<()> {
    let model = Model::open(&args.model)?;
    let data = read_all(&args.data)?;
    if data.is_empty() {
        bail!("no examples in {:?}", args.data);
    }
    let obj = metrics_json(&model, &data);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "evaluated {} messages with {} ({} classes)",
        data.len(),
        args.model.display(),
        model.n_classes()
    )?;
    writeln!(out, "{obj}")?;
    Ok(())
}

fn run_cv(args: CvArgs) -> anyhow::Result<()> {
    let data = read_all(&args.data)?;
    if data.len() < args.folds.max(2) {
        bail!(
            "need at least {} examples for {}-fold cross-validation",
            args.folds.max(2),
            args.folds
        );
    }
    let config = args.hyper.config("cross-validation".into());
    let folds = train::stratified_folds(&data, args.folds, args.hyper.seed);
    let mut out = std::io::stdout().lock();
    let (mut acc, mut f1, mut secs) = (Vec::new(), Vec::new(), Vec::new());
    let mut handoff_f1 = Vec::new();
    let mut handoff_false = Vec::new();
    for (k, test_idx) in folds.iter().enumerate() {
        let mut is_test = vec![false; data.len()];
        for &i in test_idx {
            is_test[i] = true;
        }
        let (train_part, test_part): (Vec<_>, Vec<_>) =
            data.iter().cloned().zip(&is_test).partition(|(_, t)| !**t);
        let train_part: Vec<Row> = train_part.into_iter().map(|(e, _)| e).collect();
        let test_part: Vec<Row> = test_part.into_iter().map(|(e, _)| e).collect();
        let start = Instant::now();
        let model_data = train::train(&train_part, None, &config, &|_| {})?;
        secs.push(start.elapsed().as_secs_f64());
        let model = Model::load(&model_data.to_bytes()?)?;
        let m = metrics_json(&model, &test_part);
        acc.push(m["accuracy"].as_f64().unwrap_or(0.0));
        f1.push(m["macro_f1"].as_f64().unwrap_or(0.0));
        if let Some(h) = m.get("handoff") {
            handoff_f1.push(h["f1"].as_f64().unwrap_or(0.0));
            handoff_false.push(h["false_handoff_rate"].as_f64().unwrap_or(0.0));
        }
        writeln!(out, "{}", json!({"fold": k, "train_seconds": round(secs[k]), "metrics": m}))?;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let mut summary = json!({"folds": folds.len(), "n": data.len(), "accuracy": round(mean(&acc)),
           "macro_f1": round(mean(&f1)), "train_seconds_mean": round(mean(&secs))});
    if !handoff_f1.is_empty() {
        summary["handoff_f1"] = json!(round(mean(&handoff_f1)));
        summary["handoff_false_rate"] = json!(round(mean(&handoff_false)));
    }
    writeln!(out, "{summary}")?;
    Ok(())
}

fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}
