//! The learned hand-off judgement: does this message need a person, and why?
//!
//! A model trained with hand-off labels (see `data/LABELLING.md`) has a
//! second head next to its intents: four more classes in the same weight
//! rows ([`HandoffKind::ALL`] order: none, doubt, complaint, human), with
//! their own scales, biases, softmax temperature and threshold. The same
//! walk over the message's tokens and the same row reads feed both heads,
//! so the judgement costs a four-class softmax on top of the intent.
//!
//! [`crate::Model::score`] reports the judgement in the score's
//! [`Signals`]: the bit of the judged kind ([`Signals::HANDOFF_DOUBT`],
//! [`Signals::HANDOFF_COMPLAINT`], [`Signals::HANDOFF_HUMAN`]) when its
//! probability reaches the model's calibrated threshold, and
//! [`Signals::HANDOFF_JUDGED`] on every message a hand-off head scored, so a
//! reader can tell "the model saw no reason" from "no model judged" (a model
//! without the head, or a score stored before there was one).
//! [`crate::Model::score_explained`] also returns a [`Handoff`]: the kind,
//! its probability and the words that weighed most for it.

use std::fmt;

use crate::signals::Signals;

/// What a message needs, as judged by a model's hand-off head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum HandoffKind {
    /// No reason to hand the conversation to a person.
    #[default]
    None,
    /// The customer doubts: between options, about fit, size, suitability
    /// or worth. A purchase may slip away without advice.
    Doubt,
    /// The customer is frustrated or complains (also without saying so).
    Complaint,
    /// The customer asks for a person or a call-back.
    Human,
}

impl HandoffKind {
    /// Every kind, in the order of the model's hand-off classes.
    pub const ALL: [HandoffKind; 4] =
        [HandoffKind::None, HandoffKind::Doubt, HandoffKind::Complaint, HandoffKind::Human];

    /// The name used in data files and output: `none`, `doubt`,
    /// `complaint` or `human`.
    pub const fn name(self) -> &'static str {
        match self {
            HandoffKind::None => "none",
            HandoffKind::Doubt => "doubt",
            HandoffKind::Complaint => "complaint",
            HandoffKind::Human => "human",
        }
    }

    /// The kind of a name (as [`HandoffKind::name`] writes it).
    pub fn from_name(name: &str) -> Option<HandoffKind> {
        HandoffKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The class index of this kind in a model's hand-off head.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The [`Signals`] bit a score carries for this judgement (none for
    /// [`HandoffKind::None`]).
    pub const fn signal(self) -> Signals {
        match self {
            HandoffKind::None => Signals::NONE,
            HandoffKind::Doubt => Signals::HANDOFF_DOUBT,
            HandoffKind::Complaint => Signals::HANDOFF_COMPLAINT,
            HandoffKind::Human => Signals::HANDOFF_HUMAN,
        }
    }

    /// The judged kind recorded in `signals`, if a hand-off head judged the
    /// message ([`Signals::HANDOFF_JUDGED`]).
    pub fn from_signals(signals: Signals) -> Option<HandoffKind> {
        if !signals.contains(Signals::HANDOFF_JUDGED) {
            return None;
        }
        Some(
            [HandoffKind::Doubt, HandoffKind::Complaint, HandoffKind::Human]
                .into_iter()
                .find(|k| signals.contains(k.signal()))
                .unwrap_or(HandoffKind::None),
        )
    }
}

impl HandoffKind {
    /// The hand-off a score's signals call for: the hand-off head's
    /// judgement when one judged the message, otherwise the lexicon's (a
    /// request for a person, a complaint, then doubt or size doubt, in the
    /// router's order of escalation triggers).
    pub fn of(signals: Signals) -> HandoffKind {
        if let Some(kind) = HandoffKind::from_signals(signals) {
            return kind;
        }
        if signals.contains(Signals::HUMAN_REQUEST) {
            HandoffKind::Human
        } else if signals.contains(Signals::COMPLAINT) {
            HandoffKind::Complaint
        } else if signals.contains(Signals::DOUBT) || signals.contains(Signals::SIZE_DOUBT) {
            HandoffKind::Doubt
        } else {
            HandoffKind::None
        }
    }
}

impl fmt::Display for HandoffKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A model's hand-off judgement of one message, with its explanation.
/// `Copy`, allocation-free.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Handoff {
    /// The judgement: a kind when its probability reaches the model's
    /// threshold, otherwise [`HandoffKind::None`] (always `None` for a
    /// model without a hand-off head).
    pub kind: HandoffKind,
    /// Probability of the most likely hand-off kind (doubt, complaint or
    /// human), whether or not it reached the threshold; in `[0, 1]`, and 0
    /// for a model without a hand-off head.
    pub p: f32,
    /// For a hand-off, the (normalised) words that weighed most for its
    /// kind, strongest first; empty otherwise.
    pub words: HandoffWords,
}

/// Up to [`HandoffWords::MAX_WORDS`] normalised words, stored inline (a
/// word that does not fit in the remaining space is left out).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HandoffWords {
    /// The words, each followed by a space.
    bytes: [u8; HandoffWords::CAPACITY],
    len: u8,
}

impl Default for HandoffWords {
    fn default() -> Self {
        HandoffWords { bytes: [0; HandoffWords::CAPACITY], len: 0 }
    }
}

impl HandoffWords {
    /// Most words kept.
    pub const MAX_WORDS: usize = 3;
    /// Bytes of storage (words plus a separator each).
    pub const CAPACITY: usize = 63;

    /// Adds a word (a token of normalised text: UTF-8, no spaces) when
    /// there is room for it; returns whether it was added.
    pub(crate) fn push(&mut self, word: &[u8]) -> bool {
        let len = usize::from(self.len);
        if word.is_empty()
            || self.len() >= Self::MAX_WORDS
            || len + word.len() + 1 > Self::CAPACITY
            || word.contains(&b' ')
            || std::str::from_utf8(word).is_err()
        {
            return false;
        }
        self.bytes[len..len + word.len()].copy_from_slice(word);
        self.bytes[len + word.len()] = b' ';
        self.len = (len + word.len() + 1) as u8;
        true
    }

    /// The words, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        // Only whole UTF-8 tokens are pushed, so this never falls back.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)])
            .unwrap_or_default()
            .split(' ')
            .filter(|w| !w.is_empty())
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.bytes[..usize::from(self.len)].iter().filter(|&&b| b == b' ').count()
    }

    /// Whether there are no words.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for HandoffWords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_index_the_classes() {
        for (i, kind) in HandoffKind::ALL.into_iter().enumerate() {
            assert_eq!(HandoffKind::from_name(kind.name()), Some(kind));
            assert_eq!(kind.index(), i);
        }
        assert_eq!(HandoffKind::from_name("Doubt"), None);
        assert_eq!(HandoffKind::from_name(""), None);
    }

    #[test]
    fn signals_carry_the_judgement() {
        assert_eq!(HandoffKind::from_signals(Signals::DOUBT), None, "no head judged");
        assert_eq!(HandoffKind::from_signals(Signals::HANDOFF_JUDGED), Some(HandoffKind::None));
        for kind in HandoffKind::ALL {
            let s = Signals::HANDOFF_JUDGED | kind.signal() | Signals::QUESTION;
            assert_eq!(HandoffKind::from_signals(s), Some(kind));
        }
    }

    #[test]
    fn words_keep_what_fits() {
        let mut w = HandoffWords::default();
        assert!(w.is_empty());
        assert!(w.push(b"twijfel"));
        assert!(!w.push(b""));
        assert!(!w.push(b"two words"));
        assert!(!w.push(&[0xff, 0xfe]));
        assert!(!w.push(&[b'x'; HandoffWords::CAPACITY]));
        assert!(w.push("maté".as_bytes()));
        assert!(w.push(b"l"));
        assert!(!w.push(b"fourth"), "at most three words");
        assert_eq!(w.iter().collect::<Vec<_>>(), ["twijfel", "maté", "l"]);
        assert_eq!(w.len(), 3);
        assert_eq!(format!("{w:?}"), r#"["twijfel", "maté", "l"]"#);
    }
}
