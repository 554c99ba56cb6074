//! Retention (`retention_days`): what is older than the retention leaves
//! memory, then compaction takes it from snapshots and the journal.
//!
//! The state forgets on its own, journaled like every change: the router's
//! look-back and the order window are no longer than the retention
//! (`TenantConfig::router_config`, `TenantConfig::meter_config`), a closed
//! conversation leaves the router when its wrap-up ends, and customer ids
//! kept for their history are looked at every quarter of the retention.
//! What is not state is cut here: the events kept for subscribers and the
//! ids that name them, and the webhook events and dead letters.

use super::*;

/// A tenant's retention and when it was last enforced.
pub(super) struct Retention {
    /// The retention, ms.
    pub(super) ms: u64,
    /// How often it is enforced: a quarter of it, from a second to an hour.
    pub(super) every: Duration,
    pub(super) last: Instant,
    /// The journal position of the last compaction: records after it may
    /// hold what the next one must take away.
    pub(super) compacted_at_lsn: u64,
}

impl Retention {
    pub(super) fn new(ms: u64) -> Retention {
        Retention {
            ms,
            every: Duration::from_millis(ms / 4)
                .clamp(Duration::from_secs(1), Duration::from_secs(3_600)),
            last: Instant::now(),
            compacted_at_lsn: 0,
        }
    }
}

impl Sequencer {
    /// Enforces the retention if it is due: a tick (so the state's sweeps
    /// run at the tenant's time), the events and webhook events before the
    /// cutoff dropped, then, if anything was journaled since the last one, a
    /// compaction: a snapshot written in the background like the periodic
    /// ones, after which no older snapshot and no journal before it is
    /// left.
    pub(super) fn enforce_retention(&mut self) {
        let Some(retention) = &self.retention else { return };
        if retention.last.elapsed() < retention.every
            || !self.leads()
            || self.snapshot_in_flight.is_some()
        {
            return;
        }
        let ms = retention.ms;
        if let Some(retention) = &mut self.retention {
            retention.last = Instant::now();
        }
        let (reply, _ignored) = oneshot::channel();
        self.apply(Command::Tick, Vec::new(), Instant::now(), reply);
        if let Err(error) = self.barrier() {
            tracing::error!(tenant = %self.name, %error, "retention");
            return;
        }
        let cutoff = self.state.time_for(wall_ms()).saturating_sub(ms);
        let kept = self.events.drop_before(cutoff);
        self.state.ids().write().trim_recent(kept);
        if let Some(webhooks) = &self.webhooks
            && let Err(error) = webhooks.expire(cutoff)
        {
            tracing::error!(tenant = %self.name, %error, "retention of webhook events");
        }
        let compacted_at = self.retention.as_ref().map_or(0, |r| r.compacted_at_lsn);
        if self.journal.next_lsn() > compacted_at {
            match self.start_snapshot_keeping(1) {
                Ok(()) => {
                    if let Some(retention) = &mut self.retention {
                        retention.compacted_at_lsn = self.journal.next_lsn();
                    }
                }
                Err(error) => tracing::error!(tenant = %self.name, %error, "retention compaction"),
            }
        }
    }
}
