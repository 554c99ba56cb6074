//! Conversation-level buying intent.
//!
//! [`ConversationScore`] is an envelope follower over the message scores of
//! one conversation: it rises fast, falls slowly, and decays towards zero
//! while the conversation is silent. With `v` the current value, `t_last` the
//! time of the last update, and a message with buying intent `s` arriving at
//! time `t`:
//!
//! ```text
//! v' = v * 2^(-(t - t_last) / H)             decay while silent (half-life H)
//! v  = v' + A * (s - v')   if s > v'         attack: move a fraction A up
//! v  = v' + R * (s - v')   otherwise         release: move a fraction R down
//! ```
//!
//! and [`ConversationScore::value_at`] reports `v * 2^(-(now - t_last) / H)`.
//! With the defaults (`A = 0.7`, `R = 0.3`, `H = 10 minutes`) one clear buying
//! message (0.9) lifts a cold conversation to 0.63 and a second one to 0.82;
//! a buying conversation drifts down by 30% of the gap per non-buying message
//! and halves every ten minutes of silence. The state is 16 bytes, `Copy`, and
//! never allocates; the router keeps one per conversation.

/// Parameters of [`ConversationScore`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConversationDecay {
    /// Half-life of the score while the conversation is silent, in ms.
    pub half_life_ms: u64,
    /// Fraction of the gap closed by a message scoring above the current value.
    pub attack: f32,
    /// Fraction of the gap closed by a message scoring below the current value.
    pub release: f32,
}

impl ConversationDecay {
    /// The defaults described in the module documentation.
    pub const DEFAULT: ConversationDecay =
        ConversationDecay { half_life_ms: 10 * 60 * 1000, attack: 0.7, release: 0.3 };
}

impl Default for ConversationDecay {
    fn default() -> Self {
        ConversationDecay::DEFAULT
    }
}

/// Recency-weighted buying intent of a conversation.
///
/// ```
/// use loket_intent::ConversationScore;
/// let mut c = ConversationScore::new();
/// c.update(0.9, 1_000);
/// c.update(0.9, 5_000);
/// assert!(c.value_at(5_000) > 0.8);
/// assert!(c.value_at(5_000 + 3_600_000) < 0.02); // an hour of silence
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ConversationScore {
    value: f32,
    last_ms: u64,
}

impl ConversationScore {
    /// A cold conversation (value 0).
    pub const fn new() -> ConversationScore {
        ConversationScore { value: 0.0, last_ms: 0 }
    }

    /// Adds a message's buying intent (clamped to `[0, 1]`; NaN counts as 0)
    /// at `timestamp_ms`, with the default parameters. A timestamp earlier
    /// than the last one counts as no time passing.
    pub fn update(&mut self, message_score: f32, timestamp_ms: u64) {
        self.update_with(message_score, timestamp_ms, &ConversationDecay::DEFAULT);
    }

    /// As [`ConversationScore::update`] with explicit parameters.
    pub fn update_with(
        &mut self,
        message_score: f32,
        timestamp_ms: u64,
        decay: &ConversationDecay,
    ) {
        let s = if message_score.is_nan() { 0.0 } else { message_score.clamp(0.0, 1.0) };
        let v = self.decayed(timestamp_ms, decay.half_life_ms);
        let rate = if s > v { decay.attack } else { decay.release };
        self.value = (v + rate.clamp(0.0, 1.0) * (s - v)).clamp(0.0, 1.0);
        self.last_ms = self.last_ms.max(timestamp_ms);
    }

    /// The score at `timestamp_ms` with the default half-life.
    pub fn value_at(&self, timestamp_ms: u64) -> f32 {
        self.decayed(timestamp_ms, ConversationDecay::DEFAULT.half_life_ms)
    }

    /// The score at `timestamp_ms` with the given parameters.
    pub fn value_at_with(&self, timestamp_ms: u64, decay: &ConversationDecay) -> f32 {
        self.decayed(timestamp_ms, decay.half_life_ms)
    }

    /// The value at the last update, without decay.
    pub fn last_value(&self) -> f32 {
        self.value
    }

    /// When it was last updated, in milliseconds.
    pub fn last_update_ms(&self) -> u64 {
        self.last_ms
    }

    /// A score as saved by [`ConversationScore::last_value`] and
    /// [`ConversationScore::last_update_ms`], for restoring durable state.
    /// The value is clamped to `[0, 1]` (NaN counts as 0).
    pub fn from_parts(value: f32, last_update_ms: u64) -> ConversationScore {
        let value = if value.is_nan() { 0.0 } else { value.clamp(0.0, 1.0) };
        ConversationScore { value, last_ms: last_update_ms }
    }

    fn decayed(&self, now_ms: u64, half_life_ms: u64) -> f32 {
        let dt = now_ms.saturating_sub(self.last_ms);
        if dt == 0 || self.value == 0.0 {
            return self.value;
        }
        if half_life_ms == 0 {
            return 0.0;
        }
        let halvings = dt as f64 / half_life_ms as f64;
        (f64::from(self.value) * (-halvings).exp2()) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rises_quickly_and_decays_when_cold() {
        let mut c = ConversationScore::new();
        for t in 0..5 {
            c.update(0.05, t * 30_000);
        }
        let before = c.value_at(150_000);
        assert!(before < 0.1);
        c.update(0.9, 150_000);
        assert!(c.value_at(150_000) > 0.6, "{c:?}");
        let hot = c.value_at(150_000);
        assert!((c.value_at(150_000 + 600_000) - hot / 2.0).abs() < 1e-4);
        c.update(0.1, 160_000);
        assert!(c.value_at(160_000) < hot);
        assert!(c.value_at(160_000) > 0.3, "release is slow");
    }

    #[test]
    fn saved_parts_restore_the_same_score() {
        let mut c = ConversationScore::new();
        c.update(0.8, 1_000);
        let restored = ConversationScore::from_parts(c.last_value(), c.last_update_ms());
        assert_eq!(restored, c);
        assert_eq!(ConversationScore::from_parts(f32::NAN, 0).last_value(), 0.0);
        assert_eq!(ConversationScore::from_parts(7.0, 0).last_value(), 1.0);
    }

    #[test]
    fn out_of_order_and_garbage_inputs_stay_in_range() {
        let mut c = ConversationScore::new();
        c.update(f32::NAN, 10);
        c.update(7.0, 5);
        assert!((0.0..=1.0).contains(&c.value_at(0)));
        c.update(-3.0, u64::MAX);
        assert!((0.0..=1.0).contains(&c.value_at(u64::MAX)));
        assert_eq!(std::mem::size_of::<ConversationScore>(), 16);
    }
}
