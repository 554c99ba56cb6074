//! Unit tests of the model: the file format, scoring, the token cache and
//! the hand-off head.

use super::explain::explains;
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
        features: config,
        idf_squared: Vec::new(),
        labels: vec!["buy.price".into(), "service.track".into(), "oos".into()],
        buying: vec![true, false, false],
        oos_class: 2,
        oos_threshold: 0.2,
        temperature: 1.0,
        class_scale: vec![0.05; n],
        bias: vec![0.0; n],
        handoff_class_scale: Vec::new(),
        handoff_bias: Vec::new(),
        handoff_temperature: 1.0,
        handoff_threshold: 0.0,
        weights,
    }
}

/// [`tiny_model`] with a hand-off head: `twijfel` weighs for doubt,
/// `belachelijk` for a complaint, `medewerker` for a person, and the
/// bias for none.
pub(crate) fn tiny_handoff_model() -> ModelData {
    let mut m = tiny_model();
    let n = m.labels.len();
    let stride = row_stride(n + HANDOFF_CLASSES);
    let config = m.features;
    let mut weights = vec![0i8; config.buckets() * stride];
    for (b, row) in m.weights.chunks(row_stride(n)).enumerate() {
        weights[b * stride..b * stride + n].copy_from_slice(&row[..n]);
    }
    for (kind, word) in [
        (HandoffKind::Doubt, "twijfel"),
        (HandoffKind::Complaint, "belachelijk"),
        (HandoffKind::Human, "medewerker"),
    ] {
        for_each_feature(word, &config, |b, g| {
            if g == Group::Word {
                weights[b as usize * stride + n + kind.index()] = 100;
            }
        });
    }
    m.weights = weights;
    m.handoff_class_scale = vec![0.05; HANDOFF_CLASSES];
    m.handoff_bias = vec![1.0, 0.0, 0.0, 0.0];
    m.handoff_temperature = 2.0;
    m.handoff_threshold = 0.5;
    m
}

#[test]
fn the_handoff_head_judges_and_explains() {
    let model = Model::load(&tiny_handoff_model().to_bytes().unwrap()).unwrap();
    assert!(model.has_handoff_head());
    assert_eq!(model.n_classes(), 3, "hand-off classes are not intents");
    assert_eq!(model.handoff_threshold(), 0.5);
    let mut scratch = Scratch::new();
    for (text, kind, word) in [
        ("ik twijfel nog", HandoffKind::Doubt, "twijfel"),
        ("dit is belachelijk", HandoffKind::Complaint, "belachelijk"),
        ("een medewerker graag", HandoffKind::Human, "medewerker"),
    ] {
        let (score, handoff) = model.score_explained(text, &mut scratch);
        assert_eq!(handoff.kind, kind, "{text}");
        assert!(handoff.p >= 0.5 && handoff.p <= 1.0, "{text}: {handoff:?}");
        assert_eq!(handoff.words.iter().next(), Some(word), "{text}: {handoff:?}");
        assert_eq!(HandoffKind::from_signals(score.signals), Some(kind));
        assert!(score.signals.contains(kind.signal() | Signals::HANDOFF_JUDGED));
        // The plain score carries the same judgement.
        assert_eq!(model.score(text, &mut scratch), score);
    }
    // (With 256 buckets, "wat" shares a bucket with a doubt feature.)
    let (score, handoff) = model.score_explained("prijs van het pakket", &mut scratch);
    assert_eq!(handoff.kind, HandoffKind::None);
    assert!(handoff.p < 0.5 && handoff.words.is_empty(), "{handoff:?}");
    assert_eq!(score.signals.lexicon(), Signals(score.signals.0 & !Signals::HANDOFF_JUDGED.0));
    assert_eq!(HandoffKind::from_signals(score.signals), Some(HandoffKind::None));
    // Raw scores and probabilities agree with the judgement.
    let raw = model.handoff_scores("ik twijfel nog", &mut scratch);
    let p = model.handoff_probabilities(&raw);
    assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4, "{p:?}");
    assert!(p[HandoffKind::Doubt.index()] > p[HandoffKind::None.index()]);
    // A model without the head judges nothing.
    let plain = Model::load(&tiny_model().to_bytes().unwrap()).unwrap();
    let (score, handoff) = plain.score_explained("ik twijfel nog", &mut scratch);
    assert_eq!(handoff, Handoff::default());
    assert!(!score.signals.contains(Signals::HANDOFF_JUDGED));
    assert_eq!(plain.handoff_probabilities(&raw), [0.0; HANDOFF_CLASSES]);
    assert_eq!(plain.handoff_scores("ik twijfel", &mut scratch), [0.0; HANDOFF_CLASSES]);
}

#[test]
fn explanations_skip_function_words_and_repeats() {
    let model = Model::load(&tiny_handoff_model().to_bytes().unwrap()).unwrap();
    let mut scratch = Scratch::new();
    let (_, h) = model.score_explained("twijfel twijfel de twijfel ?", &mut scratch);
    assert_eq!(h.words.iter().collect::<Vec<_>>(), ["twijfel"]);
    assert!(explains(b"twijfel") && explains("mag\u{e9}".as_bytes()));
    assert!(!explains(b"de") && !explains(b"?") && !explains(b"0000") && !explains(b""));
}

#[test]
fn bad_handoff_heads_are_refused() {
    assert!(tiny_handoff_model().to_bytes().is_ok());
    let mut m = tiny_handoff_model();
    m.handoff_bias.pop();
    assert!(matches!(m.to_bytes(), Err(ModelError::Invalid(_))));
    let mut m = tiny_handoff_model();
    m.handoff_class_scale.pop();
    m.handoff_bias.pop();
    assert!(matches!(m.to_bytes(), Err(ModelError::Invalid(_))), "three classes");
    let mut m = tiny_handoff_model();
    m.handoff_temperature = 0.0;
    assert!(matches!(m.to_bytes(), Err(ModelError::Invalid(_))));
    let mut m = tiny_handoff_model();
    m.handoff_threshold = 1.5;
    assert!(matches!(m.to_bytes(), Err(ModelError::Invalid(_))));
    let mut m = tiny_handoff_model();
    m.handoff_bias[2] = f32::NAN;
    assert!(matches!(m.to_bytes(), Err(ModelError::Invalid(_))));
    let mut m = tiny_handoff_model();
    m.weights.truncate(m.weights.len() - 16);
    let err = m.to_bytes().unwrap_err();
    assert!(err.to_string().contains("weight table"), "{err}");
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
    assert!(matches!(Model::load(&bytes[..bytes.len() - 1]), Err(ModelError::Truncated { .. })));
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
    m.features.char_max = FeatureConfig::MAX_CHAR_N + 1;
    let err = m.to_bytes().unwrap_err();
    assert!(err.to_string().contains("feature configuration out of range"), "{err}");
    let mut m = tiny_model();
    m.idf_squared = vec![1.0; 3];
    assert!(matches!(m.to_bytes(), Err(ModelError::Invalid(_))));
    let mut m = tiny_model();
    m.idf_squared = vec![1.0; m.features.buckets()];
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
            assert_eq!((cached.signals.lexicon(), cached.language), (signals, language), "{text}");
            let explained = model.score_explained(text, scratch);
            assert_eq!(explained, model.score_explained(text, &mut plain), "{text}");
            assert_eq!(explained.0, cached, "{text}");
            let a = model.handoff_scores(text, scratch);
            let b = model.handoff_scores(text, &mut plain);
            assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits), "{text}");
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
    let head = Model::load(&tiny_handoff_model().to_bytes().unwrap()).unwrap();
    let mut scratch = Scratch::new();
    // Alternate models with one scratch: entries never leak across.
    for model in [Model::builtin(), &tiny, Model::builtin(), &again, &head, &tiny, &head] {
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
