//! Real-time intent, buying-intent and handoff-signal scoring for Dutch and
//! English customer messages.
//!
//! Every message gets, in well under a microsecond:
//!
//! - an **intent** with a **confidence** from a trainable linear model over
//!   hashed word and character n-grams ([`Model`], trained by [`train()`]), or
//!   [`IntentId::OOS`] when no intent fits;
//! - a **buying-intent** score in `[0, 1]` ([`buying`]);
//! - the **language** (Dutch or English, [`Language`]);
//! - topic and handoff **signals** from a bilingual lexicon ([`Signals`]:
//!   price, stock, human request, complaint, ...);
//! - a **hand-off judgement** learned from data ([`handoff`]): doubt, a
//!   complaint or a request for a person, which the score's signals carry
//!   and [`Model::score_explained`] explains with the words behind it.
//!
//! [`ConversationScore`] folds message scores into a recency-weighted
//! conversation score the router keeps per conversation.
//!
//! A model is immutable, `Send + Sync`, and read in place from its file bytes
//! (rkyv, validated once at load). Scoring needs a per-thread [`Scratch`] and
//! allocates nothing once the scratch has warmed up. [`Model::builtin`] is a
//! small shop model embedded in the crate, trained from `data/builtin_train.csv`
//! and the hand-off corpus in `data/corpus/`.
//!
//! ```
//! use loket_intent::{Model, Scratch, Signals};
//!
//! let model = Model::builtin();
//! let mut scratch = Scratch::new();
//! let score = model.score("kan ik met ideal betalen?", &mut scratch);
//! assert!(score.buying_intent > 0.5);
//! assert_eq!(score.language.code(), "nl");
//!
//! let score = model.score("ik wil een medewerker spreken", &mut scratch);
//! assert!(score.signals.contains(Signals::HUMAN_REQUEST));
//! println!("{} ({:.2})", model.label(score.intent), score.confidence);
//!
//! let (score, handoff) = model.score_explained("waardeloze service, niemand reageert", &mut scratch);
//! assert_eq!(handoff.kind, loket_intent::HandoffKind::Complaint);
//! assert!(score.signals.contains(Signals::HANDOFF_COMPLAINT));
//! assert!(handoff.words.iter().any(|w| w == "waardeloze" || w == "niemand"));
//! ```
//!
//! # Architecture invariants
//!
//! - Scoring never panics and never allocates after warm-up; every score is
//!   finite and in `[0, 1]`, whatever the input bytes.
//! - Model bytes are validated (checksum, bytecheck, model invariants) before
//!   any access; a corrupt or foreign file is a [`ModelError`], never
//!   undefined behaviour.
//! - No I/O, threads or global state on the scoring path.

#![deny(missing_docs)]

pub mod buying;
pub mod conversation;
pub mod features;
pub mod handoff;
pub mod language;
mod lexicon;
pub mod model;
pub mod normalize;
pub mod signals;
pub mod stem;
pub mod train;

#[doc(hidden)]
pub mod fuzz_checks;

pub use conversation::{ConversationDecay, ConversationScore};
pub use features::FeatureConfig;
pub use handoff::{Handoff, HandoffKind, HandoffWords};
pub use language::Language;
pub use model::{IntentId, Model, ModelData, ModelError, OOS_LABEL, Score, Scratch};
pub use normalize::normalize_into;
pub use signals::Signals;
pub use train::{
    DataError, Example, Labelled, Metrics, Row, TrainConfig, TrainError, evaluate, read_csv,
    read_rows, train,
};

/// Checks the "no allocation on the hot path" contract with a counting
/// allocator (this test binary only).
#[cfg(test)]
mod allocation_tests {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    struct Counting;

    thread_local! {
        static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    }

    // SAFETY: forwards to the system allocator; only counts calls.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as the caller's.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: same contract as the caller's.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            ALLOCATIONS.with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as the caller's.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static COUNTING: Counting = Counting;

    #[test]
    fn scoring_does_not_allocate_after_warm_up() {
        let messages = [
            "kan ik met ideal betalen?",
            "Waar blijft mijn pakket?? order #1234567 😡",
            "I want to speak to a real person",
            "ÇA VA? Straße ĳsje",
            "",
            "why dont my transfers work, theyre still pending",
        ];
        // The built-in model, and one with stems, content pairs, the
        // negation token and idf.
        let english = crate::model::tests::english_idf_model();
        for model in [crate::Model::builtin(), &english] {
            let mut scratch = crate::Scratch::new();
            // Warm-up: the buffers grow, and the token cache is allocated
            // once after its own warm-up of 64 messages.
            for m in messages.iter().cycle().take(200) {
                model.score(m, &mut scratch);
            }
            let before = ALLOCATIONS.with(Cell::get);
            let mut conversation = crate::ConversationScore::new();
            for (i, m) in messages.iter().cycle().take(100).enumerate() {
                let s = model.score(m, &mut scratch);
                conversation.update(s.buying_intent, i as u64 * 1000);
                // The explanation too (the built-in model has a hand-off
                // head, so some of these hand off).
                let (_, handoff) = model.score_explained(m, &mut scratch);
                std::hint::black_box(handoff);
            }
            assert_eq!(ALLOCATIONS.with(Cell::get), before, "scoring allocated");
        }
        let model = crate::Model::builtin();
        let before = ALLOCATIONS.with(Cell::get);
        // The counter does count: a fresh scratch allocates.
        model.score("wat kost dat", &mut crate::Scratch::new());
        assert!(ALLOCATIONS.with(Cell::get) > before);
    }
}
