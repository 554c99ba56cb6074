//! Buying intent.
//!
//! For a model with buying classes (labels starting with `buy.`, see
//! `data/LABELLING.md`) the buying-intent score of a message is the softmax
//! probability mass of those classes:
//!
//! ```text
//! p_c = exp(T * s_c) / sum_k exp(T * s_k)        (s: class scores, T: temperature)
//! buying_intent = sum over buying classes c of p_c
//! ```
//!
//! `T` is calibrated at training time on held-out data, so the score is a
//! probability rather than a margin. A model without buying classes (CLINC150,
//! BANKING77) falls back to [`lexicon_score`], a logistic function of the
//! lexicon signals.

use crate::signals::Signals;

/// Buying intent from signals alone: `sigmoid(b + sum of signal weights)`,
/// with pre-purchase topics pushing up and after-sales topics pushing down.
pub fn lexicon_score(signals: Signals) -> f32 {
    const WEIGHTS: &[(Signals, f32)] = &[
        (Signals::PRICE, 1.6),
        (Signals::STOCK, 1.5),
        (Signals::SIZE_DOUBT, 1.2),
        (Signals::PAYMENT, 0.8),
        (Signals::COMPARISON, 1.2),
        (Signals::DISCOUNT, 1.0),
        (Signals::RESERVATION, 1.2),
        (Signals::DELIVERY, 0.3),
        (Signals::ORDER, -1.0),
        (Signals::COMPLAINT, -2.0),
        (Signals::CANCEL, -2.0),
        (Signals::RETURN, -2.0),
        (Signals::DEFECT, -1.5),
    ];
    let mut logit = -2.0f32;
    for &(signal, weight) in WEIGHTS {
        if signals.contains(signal) {
            logit += weight;
        }
    }
    1.0 / (1.0 + (-logit).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pre_purchase_beats_after_sales() {
        let buy = lexicon_score(Signals::PRICE | Signals::STOCK);
        let none = lexicon_score(Signals::NONE);
        let service = lexicon_score(Signals::ORDER | Signals::COMPLAINT);
        assert!(buy > 0.5 && buy < 1.0);
        assert!(none < 0.2);
        assert!(service < none);
        assert!(service > 0.0);
    }
}
