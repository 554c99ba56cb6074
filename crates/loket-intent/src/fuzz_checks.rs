//! Invariant checks run by the fuzz targets and replayed over the checked-in
//! corpora by the tests. They panic only on a real bug.

use crate::handoff::HandoffKind;
use crate::model::{Model, Scratch};
use crate::normalize::normalize_into;

/// Arbitrary bytes (lossy UTF-8) through normalisation and scoring with the
/// built-in model and with a model that uses every feature option and idf
/// ([`options_model`]), both with a hand-off head: never panics,
/// normalisation is idempotent, every score and hand-off probability is
/// finite and in `[0, 1]`, the judgement in the signals is the explained
/// one, explained words are tokens of the normalised text, and a scratch
/// whose token cache is warm (and full of earlier inputs' tokens) scores and
/// explains exactly like one without a cache. The stemmer also takes the raw
/// bytes as one token.
pub fn intent_score(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut once = String::new();
    normalize_into(&text, &mut once);
    let mut twice = String::new();
    normalize_into(&once, &mut twice);
    assert_eq!(once, twice, "normalisation is not idempotent for {text:?}");
    assert!(!once.starts_with(' ') && !once.ends_with(' ') && !once.contains("  "));

    let mut buf = crate::stem::StemBuf::new();
    let stem = crate::stem::english_stem(data, &mut buf);
    assert!(stem.len() <= data.len(), "a stem longer than its token");

    thread_local! {
        static WARM: std::cell::RefCell<[Scratch; 2]> = std::cell::RefCell::new({
            let mut warm = [Scratch::new(), Scratch::new()];
            for i in 0..100 {
                Model::builtin().score(&format!("warm up {i}"), &mut warm[0]);
                options_model().score(&format!("warm up {i}"), &mut warm[1]);
            }
            warm
        });
    }
    for (i, model) in [Model::builtin(), options_model()].into_iter().enumerate() {
        let mut scratch = Scratch::without_token_cache();
        let score = model.score(&text, &mut scratch);
        let cached = WARM.with(|warm| model.score(&text, &mut warm.borrow_mut()[i]));
        assert_eq!(cached, score, "the token cache changed the score of {text:?}");
        let (explained, handoff) = model.score_explained(&text, &mut scratch);
        let cached = WARM.with(|warm| model.score_explained(&text, &mut warm.borrow_mut()[i]));
        assert_eq!(
            cached,
            (explained, handoff),
            "the token cache changed the hand-off of {text:?}"
        );
        assert_eq!(explained, score);
        assert!(model.has_handoff_head());
        assert_eq!(HandoffKind::from_signals(score.signals), Some(handoff.kind), "{text:?}");
        assert!(handoff.p.is_finite() && (0.0..=1.0).contains(&handoff.p), "p = {}", handoff.p);
        assert_eq!(handoff.kind == HandoffKind::None, handoff.p < model.handoff_threshold());
        let tokens: Vec<&str> = scratch.normalized().split(' ').collect();
        for word in handoff.words.iter() {
            assert!(
                tokens.contains(&word),
                "{word:?} is not a token of {:?}",
                scratch.normalized()
            );
        }
        for (name, v) in [("confidence", score.confidence), ("buying_intent", score.buying_intent)]
        {
            assert!(v.is_finite() && (0.0..=1.0).contains(&v), "{name} = {v} for {text:?}");
        }
        assert!(score.intent.is_oos() || usize::from(score.intent.0) < model.n_classes());
        let mut conversation = crate::ConversationScore::new();
        conversation.update(score.buying_intent, u64::from(data.first().copied().unwrap_or(0)));
        let v = conversation.value_at(1_000);
        assert!(v.is_finite() && (0.0..=1.0).contains(&v));
    }
}

/// A small English model with stems, content pairs, the negation token,
/// idf and a hand-off head, trained once per process from a few inline
/// examples.
pub fn options_model() -> &'static Model {
    static MODEL: std::sync::LazyLock<Model> = std::sync::LazyLock::new(|| {
        let rows = [
            ("how much does the jacket cost", "buy.price", "none"),
            ("whats the price of these shoes", "buy.price", "none"),
            ("is it worth the money or not, im not sure", "buy.price", "doubt"),
            ("is it in stock in size 43", "buy.stock", "none"),
            ("dont you have it in blue anymore", "buy.stock", "none"),
            ("torn between 43 and 44, which should i take", "buy.stock", "doubt"),
            ("where is my order", "service.track", "none"),
            ("my parcel hasnt arrived yet", "service.track", "none"),
            ("still nothing after three weeks, this is ridiculous", "service.track", "complaint"),
            ("i want to return the coat", "service.return", "none"),
            ("returning items that dont fit", "service.return", "none"),
            ("can someone call me about the return", "service.return", "human"),
            ("let me talk to a real person", "service.return", "human"),
        ];
        let data: Vec<crate::Row> = rows
            .iter()
            .map(|(t, l, h)| crate::Row {
                text: (*t).into(),
                label: (*l).into(),
                handoff: HandoffKind::from_name(h),
                language: None,
            })
            .collect();
        let config = crate::train::every_option_config(10);
        // Fixed inline data and a valid configuration: a failure is a bug in
        // training, which the fuzz target should report.
        let data = crate::train(&data, None, &config, &|_| {}).expect("training the options model");
        Model::load(&data.to_bytes().expect("a trained model is valid")).expect("it loads")
    });
    &MODEL
}

/// Arbitrary bytes as a model file: loading never panics; when it succeeds,
/// scoring a few messages stays in range.
pub fn intent_model_load(data: &[u8]) {
    let Ok(model) = Model::load(data) else {
        return;
    };
    let mut scratch = Scratch::new();
    for text in ["", "wat kost deze jas?", "where is my order 123456", "😡😡", "ik twijfel"] {
        let (score, handoff) = model.score_explained(text, &mut scratch);
        assert!(score.confidence.is_finite() && (0.0..=1.0).contains(&score.confidence));
        assert!(score.buying_intent.is_finite() && (0.0..=1.0).contains(&score.buying_intent));
        assert!(handoff.p.is_finite() && (0.0..=1.0).contains(&handoff.p));
        let _ = model.label(score.intent);
    }
}

/// Arbitrary bytes as a training-data CSV file ([`crate::train::read_rows_from`]
/// and [`crate::train::read_csv_from`]): reading never panics; an error names a
/// line at or after the header; every row read has a non-empty label, and
/// both readers agree on the rows' texts and labels.
pub fn intent_data(data: &[u8]) {
    let path = std::path::Path::new("fuzz.csv");
    let rows = crate::train::read_rows_from(data, path);
    let examples = crate::train::read_csv_from(data, path);
    match (&rows, &examples) {
        (Ok(rows), Ok(examples)) => {
            assert_eq!(rows.len(), examples.len());
            for (row, example) in rows.iter().zip(examples) {
                assert!(!row.label.is_empty() && row.label == row.label.trim());
                assert_eq!((&row.text, &row.label), (&example.text, &example.label));
            }
        }
        (Err(e), _) | (_, Err(e)) => {
            if let crate::train::DataError::Record { line, .. } = e {
                assert!(*line >= 1, "{e}");
            }
            let _ = e.to_string();
        }
    }
}
