//! Crate-level behaviour of `loket-intent`: the embedded model on Dutch and
//! English messages, the model file contract, and properties of
//! normalisation and scoring (the fuzz corpora are replayed by
//! `tests/fuzz_corpus.rs`).

use loket_intent::model::FORMAT_VERSION;
use loket_intent::train::{self, Example};
use loket_intent::{
    ConversationScore, Language, Model, ModelError, Scratch, Signals, TrainConfig, normalize_into,
};
use proptest::prelude::*;

/// Scores `text` with the built-in model.
fn score(text: &str) -> loket_intent::Score {
    let mut scratch = Scratch::new();
    Model::builtin().score(text, &mut scratch)
}

fn label(text: &str) -> String {
    Model::builtin().label(score(text).intent).to_owned()
}

#[test]
fn builtin_model_loads_and_is_small() {
    let model = Model::builtin();
    assert!(model.n_classes() >= 10);
    assert!(model.file_bytes().len() < 2 * 1024 * 1024);
    assert!(model.labels().any(|l| l.starts_with("buy.")));
    assert!(model.labels().any(|l| l.starts_with("service.")));
    // The embedded bytes survive a round trip through the public loader.
    let copy = Model::load(model.file_bytes()).expect("embedded model reloads");
    assert_eq!(copy.n_classes(), model.n_classes());
}

#[test]
fn buying_messages_score_high() {
    for text in [
        "kan ik met ideal betalen?",
        "wat kost deze jas",
        "is de zwarte nog op voorraad in maat 40",
        "valt deze broek klein?",
        "how much is the grey sofa",
        "do you have this in size 10",
        "can i pay with paypal",
        "which one is better for running",
    ] {
        let s = score(text);
        assert!(s.buying_intent > 0.5, "{text:?}: {s:?} ({})", label(text));
    }
}

#[test]
fn service_messages_score_low() {
    for text in [
        "waar blijft mijn pakket",
        "ik wil mijn bestelling annuleren",
        "wanneer krijg ik mijn geld terug",
        "where is my order",
        "i want to return these shoes",
        "my laptop wont turn on",
        "hoi",
    ] {
        let s = score(text);
        assert!(s.buying_intent < 0.5, "{text:?}: {s:?} ({})", label(text));
    }
}

#[test]
fn intents_of_clear_messages() {
    for (text, expect) in [
        ("waar blijft mijn pakket", "service.track"),
        ("ik wil een medewerker spreken", "service.human"),
        ("kan ik met ideal betalen?", "buy.payment"),
        ("i want to cancel my subscription", "service.cancel"),
        ("what are the shipping costs", "buy.delivery"),
    ] {
        assert_eq!(label(text), expect, "{text:?}");
    }
}

#[test]
fn handoff_signals_and_language() {
    let s = score("ik wil een medewerker spreken");
    assert!(s.signals.contains(Signals::HUMAN_REQUEST));
    assert_eq!(s.language, Language::Dutch);
    let s = score("this is ridiculous, worst service ever 😡");
    assert!(s.signals.contains(Signals::COMPLAINT));
    assert_eq!(s.language, Language::English);
    let s = score("twijfel nog tussen de m en de l");
    assert!(s.signals.contains(Signals::DOUBT));
}

#[test]
fn conversation_turning_to_buying_rises_then_cools() {
    let mut scratch = Scratch::new();
    let model = Model::builtin();
    let mut c = ConversationScore::new();
    let mut t = 0;
    for text in ["hoi", "mijn vorige bestelling is binnen", "bedankt"] {
        t += 20_000;
        c.update(model.score(text, &mut scratch).buying_intent, t);
    }
    let before = c.value_at(t);
    t += 20_000;
    c.update(model.score("hebben jullie die jas ook in maat l?", &mut scratch).buying_intent, t);
    t += 20_000;
    c.update(model.score("en wat kost hij dan", &mut scratch).buying_intent, t);
    let hot = c.value_at(t);
    assert!(hot > before + 0.3, "before {before}, after {hot}");
    assert!(c.value_at(t + 60 * 60 * 1000) < hot / 10.0);
}

#[test]
fn corrupt_and_foreign_files_are_typed_errors() {
    let good = Model::builtin().file_bytes().to_vec();
    assert!(matches!(Model::load(b"PK\x03\x04 a zip file"), Err(ModelError::NotAModel)));
    assert!(matches!(Model::load(&good[..good.len() / 2]), Err(ModelError::Truncated { .. })));
    let mut flipped = good.clone();
    let mid = good.len() / 2;
    flipped[mid] ^= 0xff;
    assert!(matches!(Model::load(&flipped), Err(ModelError::Checksum { .. })));
    let err = Model::open("/definitely/not/here.lkm").unwrap_err();
    assert!(matches!(err, ModelError::Io { .. }));
    assert!(err.to_string().contains("/definitely/not/here.lkm"));
}

#[test]
fn a_trained_model_survives_the_file_round_trip() {
    let data: Vec<Example> = [
        ("wat kost dat", "buy.price"),
        ("hoeveel kost het", "buy.price"),
        ("prijs van de jas", "buy.price"),
        ("waar is mijn pakket", "service.track"),
        ("pakket niet ontvangen", "service.track"),
        ("wanneer komt mijn pakket", "service.track"),
    ]
    .iter()
    .map(|&(t, l)| Example { text: t.into(), label: l.into() })
    .collect();
    let config = TrainConfig {
        features: loket_intent::FeatureConfig { bucket_bits: 10, ..Default::default() },
        ..TrainConfig::default()
    };
    let model_data = train::train(&data, None, &config, &|_| {}).unwrap();
    let bytes = model_data.to_bytes().unwrap();
    let model = Model::load(&bytes).unwrap();
    let m = train::evaluate(&model, &data);
    assert_eq!(m.n, 6);
    assert!(m.accuracy > 0.8, "{m:?}");
}

proptest! {
    #[test]
    fn normalisation_is_idempotent(text in "\\PC{0,80}") {
        let mut once = String::new();
        normalize_into(&text, &mut once);
        let mut twice = String::new();
        normalize_into(&once, &mut twice);
        prop_assert_eq!(once, twice);
    }

    #[test]
    fn normalisation_is_idempotent_on_chat_text(text in "[a-zA-Z0-9 ëéïöü€?!.,'😡👍]{0,60}") {
        let mut once = String::new();
        normalize_into(&text, &mut once);
        let mut twice = String::new();
        normalize_into(&once, &mut twice);
        prop_assert!(!once.contains("  ") && !once.starts_with(' ') && !once.ends_with(' '));
        prop_assert_eq!(once, twice);
    }

    #[test]
    fn scores_are_in_range(text in "\\PC{0,120}") {
        let s = score(&text);
        prop_assert!(s.confidence.is_finite() && (0.0..=1.0).contains(&s.confidence));
        prop_assert!(s.buying_intent.is_finite() && (0.0..=1.0).contains(&s.buying_intent));
    }

    #[test]
    fn conversation_score_stays_in_range(
        updates in proptest::collection::vec((any::<f32>(), any::<u64>()), 0..20),
        at in any::<u64>(),
    ) {
        let mut c = ConversationScore::new();
        for (s, t) in updates {
            c.update(s, t);
        }
        let v = c.value_at(at);
        prop_assert!(v.is_finite() && (0.0..=1.0).contains(&v));
    }
}

/// Folds a 32-bit value into an FNV-1a digest.
fn fnv1a(digest: &mut u64, x: u32) {
    for byte in x.to_le_bytes() {
        *digest = (*digest ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
}

/// The built-in model's scores of fixed messages, bit for bit (every class
/// score, the intent, confidence, buying intent and hand-off probability),
/// as one digest: re-encoding the model file must change no score.
/// Retraining the built-in model on purpose changes the digest; the failure
/// prints the new one.
#[test]
fn builtin_scores_are_pinned() {
    const DIGEST: u64 = 0xbc81_3d55_a5d6_ac6e;
    let model = Model::builtin();
    let mut scratch = Scratch::new();
    let mut digest = 0xcbf2_9ce4_8422_2325;
    for text in [
        "",
        "hoi",
        "wat kost deze jas in maat 42?",
        "is de zwarte nog op voorraad",
        "waar blijft mijn pakket, ik wacht al een week",
        "ik twijfel tussen de blauwe en de grijze bank",
        "ik wil een medewerker spreken",
        "nog steeds niks ontvangen 😡😡",
        "how much is shipping to belgium",
        "can i pay with paypal?",
        "not sure whether the large or the medium fits",
        "third time my order is late, this is ridiculous",
        "can i talk to a real person please",
        "i want to cancel my order 123456",
    ] {
        let (score, handoff) = model.score_explained(text, &mut scratch);
        for x in [score.confidence, score.buying_intent, handoff.p] {
            fnv1a(&mut digest, x.to_bits());
        }
        fnv1a(&mut digest, u32::from(score.intent.0));
        for x in model.class_scores(text, &mut scratch) {
            fnv1a(&mut digest, x.to_bits());
        }
    }
    assert!(
        digest == DIGEST,
        "the built-in model's scores changed: digest {digest:#018x}, pinned {DIGEST:#018x}"
    );
}

/// A file of the previous format version (4, which stored the feature
/// options field by field) is refused with a message naming both versions.
#[test]
fn a_previous_version_model_is_refused_clearly() {
    let path =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus/intent_model_load/version_4");
    let err = Model::open(path).unwrap_err();
    assert!(matches!(err, ModelError::UnsupportedVersion { found: 4, supported: FORMAT_VERSION }));
    assert_eq!(
        err.to_string(),
        format!("unsupported model format version 4 (this build reads version {FORMAT_VERSION})")
    );
}
