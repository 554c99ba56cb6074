//! Invariant checks run by the fuzz targets and replayed over the checked-in
//! corpora by the tests. They panic only on a real bug.

use crate::model::{Model, Scratch};
use crate::normalize::normalize_into;

/// Arbitrary bytes (lossy UTF-8) through normalisation and scoring with the
/// built-in model: never panics, normalisation is idempotent, every score is
/// finite and in `[0, 1]`.
pub fn intent_score(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut once = String::new();
    normalize_into(&text, &mut once);
    let mut twice = String::new();
    normalize_into(&once, &mut twice);
    assert_eq!(once, twice, "normalisation is not idempotent for {text:?}");
    assert!(!once.starts_with(' ') && !once.ends_with(' ') && !once.contains("  "));

    let model = Model::builtin();
    let mut scratch = Scratch::new();
    let score = model.score(&text, &mut scratch);
    for (name, v) in [("confidence", score.confidence), ("buying_intent", score.buying_intent)] {
        assert!(v.is_finite() && (0.0..=1.0).contains(&v), "{name} = {v} for {text:?}");
    }
    assert!(score.intent.is_oos() || usize::from(score.intent.0) < model.n_classes());
    let mut conversation = crate::ConversationScore::new();
    conversation.update(score.buying_intent, u64::from(data.first().copied().unwrap_or(0)));
    let v = conversation.value_at(1_000);
    assert!(v.is_finite() && (0.0..=1.0).contains(&v));
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
