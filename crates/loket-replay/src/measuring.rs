//! Measuring a replay: the [`Metering`] of the replayed router, and the
//! names of closed conversations that orders may still name.

use loket_metering::{Metering, RecentlyClosed};
use loket_report::{ConfigError, MeterConfig};

use crate::wire::SlaRecord;

/// What a replay measures.
#[derive(Debug)]
pub(crate) struct Measuring {
    pub(crate) metering: Metering,
    /// Conversations closed within the order window, by the platform's id:
    /// an order can name them after the router has forgotten them.
    closed: RecentlyClosed,
    order_window_ms: u64,
    /// SLA events not yet taken, with the platform's names.
    pub(crate) records: Vec<SlaRecord>,
}

impl Measuring {
    pub(crate) fn new(config: MeterConfig) -> Result<Measuring, ConfigError> {
        let order_window_ms = config.order_window_ms;
        Ok(Measuring {
            metering: Metering::new(config)?,
            closed: RecentlyClosed::default(),
            order_window_ms,
            records: Vec::new(),
        })
    }

    /// Remembers that `name` (the router's `key`) closed at `at`.
    pub(crate) fn closed(&mut self, name: &str, key: u64, at: u64) {
        self.closed.closed(name, key, at.saturating_add(self.order_window_ms));
    }

    /// The key of a conversation closed within the order window.
    pub(crate) fn closed_key(&self, name: &str) -> Option<u64> {
        self.closed.key(name)
    }

    /// Forgets closed conversations whose order window ended before `now`.
    pub(crate) fn expire(&mut self, now: u64) {
        self.closed.expire(now);
    }
}
