//! Intent scoring throughput: the built-in shop model (with and without the
//! hand-off explanation), and a 150-class model
//! trained on CLINC150 at bench start (when the data is present; the model
//! is written to the target directory, never to the repository).
//!
//! `cargo bench -p loket-intent --bench intent`

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use loket_intent::train::{self, Example};
use loket_intent::{Model, Scratch, TrainConfig};

/// Dutch and English chat messages of typical length.
const MESSAGES: &[&str] = &[
    "kan ik met ideal betalen?",
    "waar blijft mijn pakket",
    "ik wil een medewerker spreken",
    "hebben jullie deze jas nog in maat l",
    "wat zijn de verzendkosten naar belgie",
    "valt deze broek klein of normaal",
    "how much is the grey sofa",
    "i want to cancel my order please",
    "do you have this in stock in the amsterdam store",
    "this is ridiculous, still no refund 😡",
    "is the pro version worth the extra money",
    "hoi, ik heb een vraag over mijn factuur",
];

fn bench_builtin(c: &mut Criterion) {
    let model = Model::builtin();
    let mut scratch = Scratch::new();
    let mut group = c.benchmark_group("intent");
    group.throughput(Throughput::Elements(MESSAGES.len() as u64));
    group.bench_function("builtin_score_12_msgs", |b| {
        b.iter(|| {
            for m in MESSAGES {
                black_box(model.score(black_box(m), &mut scratch));
            }
        })
    });
    // With the hand-off explanation: a second walk over the tokens of the
    // messages the model hands off.
    group.bench_function("builtin_score_explained_12_msgs", |b| {
        b.iter(|| {
            for m in MESSAGES {
                black_box(model.score_explained(black_box(m), &mut scratch));
            }
        })
    });
    group.finish();
}

fn clinc_model() -> Option<(Model, Vec<Example>)> {
    // The data sits next to the repository: `../shared/data` from its root.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/clinc150");
    let train_data = train::read_csv(dir.join("train.csv")).ok()?;
    let val = train::read_csv(dir.join("val.csv")).ok()?;
    // The README's CLINC150 model: no word co-occurrence pairs (they cost
    // about 45 weight rows per message for +0.2 points on validation).
    let features =
        loket_intent::FeatureConfig { pair_tokens: 0, ..loket_intent::FeatureConfig::default() };
    let config = TrainConfig { c: 1.0, features, ..TrainConfig::default() };
    let data = train::train(&train_data, Some(&val), &config, &|_| {}).ok()?;
    let bytes = data.to_bytes().ok()?;
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-clinc150.lkm");
    // Kept for inspection; failure to write does not matter for the bench.
    let _ = std::fs::write(&path, &bytes);
    let model = Model::load(&bytes).ok()?;
    Some((model, val))
}

fn bench_clinc(c: &mut Criterion) {
    let Some((model, val)) = clinc_model() else {
        eprintln!("CLINC150 data not found next to the repository: skipping the 150-class bench");
        return;
    };
    let texts: Vec<&str> = val.iter().take(1000).map(|e| e.text.as_str()).collect();
    let mut scratch = Scratch::new();
    let mut group = c.benchmark_group("intent");
    group.throughput(Throughput::Elements(texts.len() as u64));
    group.bench_function("clinc150_score_1000_msgs", |b| {
        b.iter(|| {
            for t in &texts {
                black_box(model.score(black_box(t), &mut scratch));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_builtin, bench_clinc);
criterion_main!(benches);
