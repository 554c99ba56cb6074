//! Snapshots: when they are due, written in the background or here and
//! now, pruned with the journal behind them, and compaction after erasure.

use super::sequencer::StoredSnapshot;
use super::*;

impl Sequencer {
    pub(super) fn snapshot_due(&self) -> bool {
        if self.records_since_snapshot == 0 {
            return false;
        }
        (self.snapshot_every_records > 0
            && self.records_since_snapshot >= self.snapshot_every_records)
            || (!self.snapshot_every.is_zero()
                && self.last_snapshot.elapsed() >= self.snapshot_every)
    }

    /// Writes a snapshot of the current state (call after a barrier),
    /// prunes old snapshots and the journal before the oldest one kept.
    /// Returns the snapshot's lsn.
    pub(super) fn take_snapshot(&mut self) -> Result<u64, TenantError> {
        self.write_snapshot().map(|(lsn, _)| lsn)
    }

    /// Starts a periodic snapshot (call after a barrier): rotates the
    /// journal and copies the state here, then encodes, writes and prunes on
    /// a thread of its own, so deciding pauses only for the copy. See
    /// [`Sequencer::finish_snapshot`].
    pub(super) fn start_snapshot(&mut self) -> Result<(), TenantError> {
        self.start_snapshot_with(self.snapshot_keep, false)
    }

    /// [`Sequencer::start_snapshot`], keeping `keep` snapshots (1 for
    /// retention: none older, and no journal before it, is left); in a
    /// cluster the object store keeps only this one too.
    pub(super) fn start_snapshot_keeping(&mut self, keep: usize) -> Result<(), TenantError> {
        self.start_snapshot_with(keep, true)
    }

    fn start_snapshot_with(&mut self, keep: usize, only_newest: bool) -> Result<(), TenantError> {
        let (lsn, snapshot) = self.capture_snapshot()?;
        let store = self.store.clone();
        let keyring = self.keyring.clone();
        let keep_bytes = self.cluster.is_some();
        let writer = std::thread::Builder::new()
            .name(format!("loketd-snap-{}", self.name))
            .spawn(move || {
                store_snapshot(&store, lsn, &snapshot, keep, keyring.as_deref(), keep_bytes)
            })
            .map_err(|e| unavailable("starting the snapshot thread", e))?;
        self.snapshot_in_flight = Some(SnapshotInFlight { lsn, only_newest, writer });
        self.records_since_snapshot = 0;
        self.last_snapshot = Instant::now();
        Ok(())
    }

    /// Rotates the journal and copies the state as of the new segment's
    /// first lsn. A failed rotation (which poisons the journal) stops the
    /// tenant.
    pub(super) fn capture_snapshot(&mut self) -> Result<(u64, TenantSnapshot), TenantError> {
        // Replay spools again only what follows the snapshot: what precedes
        // it must be in the outbox for good first.
        if let Some(webhooks) = &self.webhooks {
            webhooks.sync().map_err(|e| unavailable("syncing the webhook outbox", e))?;
        }
        if let Err(error) = self.journal.rotate() {
            let failure = StorageFailure::new("rotate", error);
            self.fail(failure.clone());
            return Err(TenantError::JournalUnavailable(failure));
        }
        let lsn = self.journal.next_lsn();
        Ok((lsn, self.state.snapshot(lsn)))
    }

    /// Completes the periodic snapshot in flight, if its thread is done (or
    /// after waiting for it, with `wait`): removes the journal segments
    /// older than the oldest snapshot kept and, leading in a cluster,
    /// offers it to the object store. A failed snapshot is logged and
    /// changes nothing (the journal still holds everything).
    pub(super) fn finish_snapshot(&mut self, wait: bool) {
        if !wait && !self.snapshot_in_flight.as_ref().is_some_and(|f| f.writer.is_finished()) {
            return;
        }
        let Some(SnapshotInFlight { lsn, only_newest, writer }) = self.snapshot_in_flight.take()
        else {
            return;
        };
        match writer.join() {
            Ok(Ok(stored)) => {
                if let Err(error) = self.journal.remove_before(stored.oldest) {
                    tracing::error!(tenant = %self.name, %error, "removing old journal segments");
                }
                self.metrics.snapshots.increment(1);
                tracing::info!(tenant = %self.name, lsn, bytes = stored.size, "snapshot written");
                self.offer_snapshot(lsn, stored.bytes, only_newest);
            }
            Ok(Err(error)) => tracing::error!(tenant = %self.name, lsn, %error, "snapshot failed"),
            Err(_) => tracing::error!(tenant = %self.name, lsn, "snapshot thread panicked"),
        }
    }

    /// Writes a snapshot here and now (shutdown, on request, compaction),
    /// after the periodic one in flight, if any, so snapshots land in lsn
    /// order and none older can appear after this one.
    pub(super) fn write_snapshot(&mut self) -> Result<(u64, usize), TenantError> {
        self.write_snapshot_with(false)
    }

    /// [`Sequencer::write_snapshot`]; with `only_newest`, in a cluster,
    /// the object store keeps only this snapshot.
    fn write_snapshot_with(&mut self, only_newest: bool) -> Result<(u64, usize), TenantError> {
        self.finish_snapshot(true);
        let (lsn, snapshot) = self.capture_snapshot()?;
        let stored = store_snapshot(
            &self.store,
            lsn,
            &snapshot,
            self.snapshot_keep,
            self.keyring.as_deref(),
            self.cluster.is_some(),
        )
        .map_err(|e| unavailable("writing a snapshot", e))?;
        let removed = self
            .journal
            .remove_before(stored.oldest)
            .map_err(|e| unavailable("removing old journal segments", e))?;
        self.metrics.snapshots.increment(1);
        self.records_since_snapshot = 0;
        self.last_snapshot = Instant::now();
        tracing::info!(tenant = %self.name, lsn, bytes = stored.size, "snapshot written");
        self.offer_snapshot(lsn, stored.bytes, only_newest);
        Ok((lsn, removed))
    }

    /// Leading in a cluster: hands the snapshot at `lsn` to the object
    /// store's uploader (which trims the stream behind the snapshots it
    /// keeps). Every snapshot is of state the stream holds (it is taken
    /// after a barrier), so any node's would do; the leader's is uploaded.
    fn offer_snapshot(&self, lsn: u64, bytes: Option<bytes::Bytes>, only_newest: bool) {
        if let (Some(cluster), Some(bytes)) = (&self.cluster, bytes)
            && cluster.role.is_leading()
        {
            cluster.snapshots.offer(lsn, bytes, only_newest);
        }
    }

    /// After an erasure: one snapshot without the customer, and no older
    /// snapshot or journal segment left that could hold them (in a
    /// cluster, the object store keeps only this snapshot and the stream
    /// is trimmed behind it). Returns the journal segments and snapshots
    /// removed and the snapshot's lsn.
    pub(super) fn compact(&mut self) -> Result<(usize, usize, u64), TenantError> {
        let (lsn, mut segments_removed) = self.write_snapshot_with(true)?;
        let snapshots_removed =
            self.store.prune(1).map_err(|e| unavailable("removing older snapshots", e))?;
        segments_removed += self
            .journal
            .remove_before(lsn)
            .map_err(|e| unavailable("removing old journal segments", e))?;
        Ok((segments_removed, snapshots_removed, lsn))
    }
}

/// Refused because `doing` failed with `error` (the tenant goes on: the
/// journal still holds everything).
fn unavailable(
    doing: &str,
    error: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> TenantError {
    TenantError::JournalUnavailable(StorageFailure::new(doing, error))
}

/// Encodes `snapshot` (sealed with `keyring`, if any), stores it as the
/// snapshot at `lsn` and prunes the store to the newest `keep`. Returns the
/// oldest snapshot kept (the journal before it is no longer needed), the
/// stored size and, with `keep_bytes`, the stored bytes.
pub(super) fn store_snapshot(
    store: &SnapshotStore,
    lsn: u64,
    snapshot: &TenantSnapshot,
    keep: usize,
    keyring: Option<&loket_seal::Keyring>,
    keep_bytes: bool,
) -> Result<StoredSnapshot, String> {
    let plain = rkyv::to_bytes::<rkyv::rancor::Error>(snapshot)
        .map_err(|e| format!("snapshot encoding: {e}"))?;
    let sealed;
    let bytes: &[u8] = match keyring {
        Some(keyring) => {
            sealed = keyring
                .sealed(loket_seal::Purpose::Snapshot, &plain)
                .map_err(|e| format!("snapshot sealing: {e}"))?;
            &sealed
        }
        None => &plain,
    };
    let io = |e: loket_journal::Error| e.to_string();
    store.write(lsn, bytes).map_err(io)?;
    store.prune(keep).map_err(io)?;
    let oldest = store.list().map_err(io)?.first().map_or(lsn, |(oldest, _)| *oldest);
    Ok(StoredSnapshot {
        oldest,
        size: bytes.len(),
        bytes: keep_bytes.then(|| bytes::Bytes::copy_from_slice(bytes)),
    })
}
