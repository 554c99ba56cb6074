//! Measuring a replay: the [`Metering`] of the replayed router, and the
//! names of closed conversations that orders may still name.

use std::collections::VecDeque;

use loket_metering::Metering;
use loket_report::{ConfigError, MeterConfig};
use rustc_hash::FxHashMap;

use crate::wire::SlaRecord;

/// What a replay measures.
#[derive(Debug)]
pub(crate) struct Measuring {
    pub(crate) metering: Metering,
    /// Conversations closed within the order window, by the platform's id:
    /// an order can name them after the router has forgotten them.
    closed: FxHashMap<Box<str>, (u64, u64)>,
    /// The same, by expiry: (expires at, name).
    closed_order: VecDeque<(u64, Box<str>)>,
    order_window_ms: u64,
    /// SLA events not yet taken, with the platform's names.
    pub(crate) records: Vec<SlaRecord>,
}

impl Measuring {
    pub(crate) fn new(config: MeterConfig) -> Result<Measuring, ConfigError> {
        let order_window_ms = config.order_window_ms;
        Ok(Measuring {
            metering: Metering::new(config)?,
            closed: FxHashMap::default(),
            closed_order: VecDeque::new(),
            order_window_ms,
            records: Vec::new(),
        })
    }

    /// Remembers that `name` (the router's `key`) closed at `at`.
    pub(crate) fn closed(&mut self, name: &str, key: u64, at: u64) {
        let expiry = at.saturating_add(self.order_window_ms);
        self.closed.insert(name.into(), (key, expiry));
        self.closed_order.push_back((expiry, name.into()));
    }

    /// The key of a conversation closed within the order window.
    pub(crate) fn closed_key(&self, name: &str) -> Option<u64> {
        self.closed.get(name).map(|&(key, _)| key)
    }

    /// Forgets closed conversations whose order window ended before `now`.
    pub(crate) fn expire(&mut self, now: u64) {
        while let Some((expiry, _)) = self.closed_order.front() {
            if *expiry >= now {
                break;
            }
            if let Some((expiry, name)) = self.closed_order.pop_front()
                && self.closed.get(&name).is_some_and(|&(_, latest)| latest == expiry)
            {
                // Only the latest close of a name removes it.
                self.closed.remove(&name);
            }
        }
    }
}
