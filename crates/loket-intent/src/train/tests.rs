//! Unit tests of training, calibration, the data readers and evaluation.

use std::path::Path;

use super::*;
use crate::Scratch;
use crate::language::Language;

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
    let config = FeatureConfig { bucket_bits: 16, content_pairs: true, ..FeatureConfig::default() };
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
                        let q = model_data.weights[m.buckets[id as usize] as usize * stride + c];
                        v / m.idf[id as usize] * f32::from(q)
                    })
                    .sum();
                model_data.bias[c] + model_data.class_scale[c] * sum
            })
            .collect();
        let got = model.class_scores(&e.text, &mut scratch);
        for (c, (&g, &x)) in got.iter().zip(&expected).enumerate() {
            assert!((g - x).abs() <= 1e-4 * (1.0 + x.abs()), "{}: class {c}: {g} vs {x}", e.text);
        }
    }
}

#[test]
fn learns_with_every_feature_option_and_idf() {
    let config = every_option_config(12);
    let data = toy();
    let a = train(&data, None, &config, &|_| {}).unwrap();
    assert_eq!(a, train(&data, None, &config, &|_| {}).unwrap());
    assert_eq!(a.features.flags(), FeatureConfig::KNOWN_FLAGS);
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

fn row(text: &str, label: &str, handoff: Option<HandoffKind>) -> Row {
    Row { text: text.into(), label: label.into(), handoff, language: None }
}

/// The toy intents, plain, and messages of each hand-off kind.
fn toy_rows() -> Vec<Row> {
    let mut v: Vec<Row> =
        toy().into_iter().map(|e| row(&e.text, &e.label, Some(HandoffKind::None))).collect();
    for item in ["jas", "broek", "schoen", "tas", "jurk", "shirt"] {
        let doubt = Some(HandoffKind::Doubt);
        let complaint = Some(HandoffKind::Complaint);
        let human = Some(HandoffKind::Human);
        v.push(row(&format!("ik twijfel over de {item}"), "buy.price", doubt));
        v.push(row(&format!("twijfel tussen twee maten {item}"), "buy.price", doubt));
        v.push(row(
            &format!("de {item} is nog steeds niet bezorgd belachelijk"),
            "service.track",
            complaint,
        ));
        v.push(row(&format!("waardeloos, de {item} pakket is kwijt"), "service.track", complaint));
        v.push(row(
            &format!("ik wil een medewerker spreken over de {item}"),
            "service.return",
            human,
        ));
        v.push(row(&format!("bel me terug over mijn {item} retour"), "service.return", human));
        // No hand-off label: trains the intents only.
        v.push(row(&format!("wat kost de {item} nu"), "buy.price", None));
    }
    v
}

#[test]
fn learns_a_handoff_head_deterministically() {
    let data = toy_rows();
    let a = train(&data, None, &small_config(), &|_| {}).unwrap();
    assert_eq!(a, train(&data, None, &small_config(), &|_| {}).unwrap());
    assert_eq!(a.handoff_class_scale.len(), HANDOFF_CLASSES);
    assert!((0.0..=1.0).contains(&a.handoff_threshold) && a.handoff_temperature > 0.0);
    let model = Model::load(&a.to_bytes().unwrap()).unwrap();
    assert!(model.has_handoff_head());
    let mut s = Scratch::new();
    for (text, kind) in [
        ("ik twijfel over de sjaal", HandoffKind::Doubt),
        ("mijn sjaal is nog steeds niet bezorgd, belachelijk", HandoffKind::Complaint),
        ("ik wil een medewerker spreken", HandoffKind::Human),
        ("wat kost de sjaal", HandoffKind::None),
    ] {
        let (score, handoff) = model.score_explained(text, &mut s);
        assert_eq!(handoff.kind, kind, "{text}: {handoff:?}");
        assert_eq!(HandoffKind::of(score.signals), kind, "{text}");
        if kind != HandoffKind::None {
            assert!(!handoff.words.is_empty(), "{text}: {handoff:?}");
        }
    }
    let m = evaluate_handoff(&model, &data).unwrap();
    assert!(m.learned);
    assert_eq!(m.all.n, data.iter().filter(|r| r.handoff.is_some()).count());
    assert!(m.all.micro().f1 > 0.9, "{m:?}");
    // The intents are unchanged in kind: the same labels, no hand-off
    // label among them.
    assert_eq!(model.n_classes(), 3);
    // Without hand-off labels there is no head, and the intents are
    // trained exactly as before.
    let examples: Vec<Example> = data.iter().cloned().map(Example::from).collect();
    let plain = train(&examples, None, &small_config(), &|_| {}).unwrap();
    assert!(plain.handoff_class_scale.is_empty() && plain.handoff_bias.is_empty());
    let model = Model::load(&plain.to_bytes().unwrap()).unwrap();
    assert!(!model.has_handoff_head());
    assert!(evaluate_handoff(&model, &examples).is_none());
    // Evaluated against labels, a model without a head is judged by
    // its lexicon signals.
    let lexicon = evaluate_handoff(&model, &data).unwrap();
    assert!(!lexicon.learned);
}

#[test]
fn handoff_calibration_keeps_false_handoffs_within_bounds() {
    let score = |none: f32, doubt: f32| [none, doubt, 0.0, 0.0];
    let mut rows = Vec::new();
    // Ten plain rows, two of them doubtful-looking, and ten doubts.
    for i in 0..10 {
        let x = i as f32 / 10.0;
        rows.push((score(2.0 - x, if i < 2 { 3.0 } else { 0.0 }), HandoffKind::None));
        rows.push((score(0.0, 1.0 + x), HandoffKind::Doubt));
    }
    let (t, strict) = calibrate_handoff(&rows, 0.0);
    assert!(t > 0.0);
    let (_, loose) = calibrate_handoff(&rows, 0.2);
    assert!(loose <= strict, "{loose} {strict}");
    // At the strict threshold no plain row is handed off.
    let probability = |s: &[f32; 4]| {
        let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f32> = s.iter().map(|&x| (t * (x - max)).exp()).collect();
        e[1] / e.iter().sum::<f32>()
    };
    for (s, gold) in &rows {
        if *gold == HandoffKind::None {
            assert!(probability(s) < strict, "{s:?}");
        }
    }
    assert_eq!(calibrate_handoff(&[], 0.1), (1.0, 0.5));
}

#[test]
fn handoff_counts_add_up() {
    use HandoffKind::{Complaint, Doubt, Human, None};
    let mut c = HandoffCounts::default();
    for (gold, judged) in [
        (Doubt, Doubt),
        (Doubt, None),
        (Complaint, Doubt),
        (Human, Human),
        (None, None),
        (None, Complaint),
    ] {
        c.add(gold, judged);
    }
    assert_eq!((c.n, c.plain, c.false_handoffs), (6, 2, 1));
    assert_eq!(c.kinds[Doubt.index()], (1, 1, 1));
    assert_eq!(c.kinds[Complaint.index()], (0, 1, 1));
    assert_eq!(c.kinds[Human.index()], (1, 0, 0));
    let micro = c.micro();
    // tp 2, fp 2, fn 2.
    assert!((micro.f1 - 0.5).abs() < 1e-12 && micro.support == 4, "{micro:?}");
    assert_eq!(c.any, (3, 1, 1));
    assert!((c.false_handoff_rate() - 0.5).abs() < 1e-12);
    assert!((c.macro_f1() - (0.5 + 0.0 + 1.0) / 3.0).abs() < 1e-12);
    assert_eq!(HandoffCounts::default().false_handoff_rate(), 0.0);
}

#[test]
fn rows_read_handoff_and_language_columns() {
    let csv = "text,label,handoff,language,domain\n\
               twijfel,buy.size,doubt,nl,fashion\n\
               \"hi, you\",service.greeting,none,en,x\n\
               geen label,service.track,,,x\n";
    let rows = read_rows_from(csv.as_bytes(), Path::new("h.csv")).unwrap();
    assert_eq!(rows[0].handoff, Some(HandoffKind::Doubt));
    assert_eq!(rows[0].language, Some(Language::Dutch));
    assert_eq!(rows[1].text, "hi, you");
    assert_eq!(rows[1].language, Some(Language::English));
    assert_eq!((rows[2].handoff, rows[2].language), (None, None));
    let bad = "text,label,handoff\nx,a,angry\n";
    let err = read_rows_from(bad.as_bytes(), Path::new("h.csv")).unwrap_err().to_string();
    assert!(err.starts_with("h.csv:2:") && err.contains("handoff"), "{err}");
    let bad = "text,label,language\nx,a,de\n";
    let err = read_rows_from(bad.as_bytes(), Path::new("h.csv")).unwrap_err().to_string();
    assert!(err.starts_with("h.csv:2:") && err.contains("language"), "{err}");
    // The plain reader keeps text and label.
    let examples = read_csv_from(csv.as_bytes(), Path::new("h.csv")).unwrap();
    assert_eq!(examples[0], ex("twijfel", "buy.size"));
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
