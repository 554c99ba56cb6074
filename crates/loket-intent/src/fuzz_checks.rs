//! Invariant checks run by the fuzz targets and replayed over the checked-in
//! corpora by the tests. They panic only on a real bug.

use crate::model::{Model, Scratch};
use crate::normalize::normalize_into;

/// Arbitrary bytes (lossy UTF-8) through normalisation and scoring with the
/// built-in model and with a model that uses every feature option and idf
/// ([`options_model`]): never panics, normalisation is idempotent, every
/// score is finite and in `[0, 1]`, and a scratch whose token cache is warm
/// (and full of earlier inputs' tokens) scores exactly like one without a
/// cache. The stemmer also takes the raw bytes as one token.
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

/// A small English model with stems, content pairs, the negation token and
/// idf, trained once per process from a few inline examples.
pub fn options_model() -> &'static Model {
    static MODEL: std::sync::LazyLock<Model> = std::sync::LazyLock::new(|| {
        let rows = [
            ("how much does the jacket cost", "buy.price"),
            ("whats the price of these shoes", "buy.price"),
            ("is it in stock in size 43", "buy.stock"),
            ("dont you have it in blue anymore", "buy.stock"),
            ("where is my order", "service.track"),
            ("my parcel hasnt arrived yet", "service.track"),
            ("i want to return the coat", "service.return"),
            ("returning items that dont fit", "service.return"),
        ];
        let data: Vec<crate::Example> = rows
            .iter()
            .map(|(t, l)| crate::Example { text: (*t).into(), label: (*l).into() })
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
    for text in ["", "wat kost deze jas?", "where is my order 123456", "😡😡"] {
        let score = model.score(text, &mut scratch);
        assert!(score.confidence.is_finite() && (0.0..=1.0).contains(&score.confidence));
        assert!(score.buying_intent.is_finite() && (0.0..=1.0).contains(&score.buying_intent));
        let _ = model.label(score.intent);
    }
}
