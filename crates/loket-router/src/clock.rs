//! Time, injectable so that tests, replays and simulations are deterministic.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::ids::Timestamp;

/// A source of the current time. The router reads it, never the system clock.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time. Should not go backwards; the router tolerates it
    /// (waits computed from a later start are zero).
    fn now(&self) -> Timestamp;
}

/// Wall-clock time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        Timestamp(u64::try_from(ms).unwrap_or(u64::MAX))
    }
}

/// A clock that moves only when told to: for tests, replays and simulations.
/// Share it with `Arc` between the router and the code driving time.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ms: AtomicU64,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock { now_ms: AtomicU64::new(start.0) }
    }

    /// Moves the clock to `at`; never moves it backwards.
    pub fn set(&self, at: Timestamp) {
        self.now_ms.fetch_max(at.0, Ordering::AcqRel);
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.now_ms.fetch_add(ms, Ordering::AcqRel);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.now_ms.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_forward_only() {
        let clock = ManualClock::new(Timestamp(100));
        clock.advance(50);
        assert_eq!(clock.now(), Timestamp(150));
        clock.set(Timestamp(120));
        assert_eq!(clock.now(), Timestamp(150));
        clock.set(Timestamp(1_000));
        assert_eq!(clock.now(), Timestamp(1_000));
    }
}
