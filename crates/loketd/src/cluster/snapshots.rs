//! Tenant snapshots in the JetStream object store (`PREFIX_snapshots`),
//! and each tenant's stream trimmed behind the oldest one kept.
//!
//! The leader of a tenant offers every snapshot it writes to its
//! [`SnapshotShelf`]; a task on the node's runtime uploads the newest one
//! offered as the object `TENANT/LSN` (the lsn zero-padded to 20 digits, so
//! names sort), deletes all but the newest `cluster.snapshots_kept`, and
//! purges the stream below the oldest kept: a snapshot at lsn `L` holds
//! stream sequences `1..=L`, so sequences `> L` are kept. The stream is
//! never trimmed past a snapshot the object store does not hold. A node
//! that starts picks its starting point with [`choose_start`].

use std::sync::Arc;

use async_nats::jetstream::{self, object_store};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::runtime::Handle;

/// Why the object store could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("snapshot object store {bucket}: {doing}: {message}")]
pub struct ShelfError {
    /// The bucket.
    pub bucket: String,
    /// What was being done.
    pub doing: String,
    /// What NATS said.
    pub message: String,
}

/// The name of `tenant`'s snapshot at `lsn` in the object store.
pub fn object_name(tenant: &str, lsn: u64) -> String {
    format!("{tenant}/{lsn:020}")
}

/// The lsn of `tenant`'s snapshot named `name`, or `None` for another
/// tenant's object (or one this node did not name).
pub fn object_lsn(tenant: &str, name: &str) -> Option<u64> {
    let digits = name.strip_prefix(tenant)?.strip_prefix('/')?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What to do after an upload, given the snapshots in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruning {
    /// The snapshots to delete (all but the newest `keep`).
    pub delete: Vec<u64>,
    /// The first stream sequence to keep: the oldest snapshot kept plus
    /// one. `None` when the store holds no snapshot (nothing is trimmed).
    pub keep_from: Option<u64>,
}

/// Keeps the newest `keep` (at least one) of `lsns` (in any order).
pub fn prune_plan(lsns: &[u64], keep: usize) -> Pruning {
    let mut sorted = lsns.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let excess = sorted.len().saturating_sub(keep.max(1));
    let kept = sorted.split_off(excess);
    Pruning { delete: sorted, keep_from: kept.first().map(|oldest| oldest + 1) }
}

/// Where a node starts a tenant from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// From its newest local snapshot at this lsn (0: none, from the start
    /// of the stream).
    Local(u64),
    /// From the object store's snapshot at this lsn, downloaded first.
    Download(u64),
}

/// The stream was trimmed past every snapshot the node can reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrimmedPast {
    /// The stream's first sequence.
    pub first_sequence: u64,
    /// The newest snapshot, local or in the object store, if any.
    pub newest_snapshot: Option<u64>,
}

/// The starting point for a tenant whose newest local snapshot is `local`,
/// whose object store holds `objects`, and whose stream starts at
/// `first_sequence` (0 or 1 for a stream never trimmed): the newest
/// snapshot, downloaded when the object store's is newer than the local
/// one. A snapshot at `L` can start the tenant when the stream still holds
/// sequence `L + 1`, i.e. `L + 1 >= first_sequence`.
pub fn choose_start(
    local: Option<u64>,
    objects: &[u64],
    first_sequence: u64,
) -> Result<Start, TrimmedPast> {
    let newest_object = objects.iter().copied().max();
    let start = match (local, newest_object) {
        (local, Some(object)) if local.is_none_or(|local| object > local) => {
            (object, Start::Download(object))
        }
        (local, _) => (local.unwrap_or(0), Start::Local(local.unwrap_or(0))),
    };
    if start.0 + 1 >= first_sequence {
        Ok(start.1)
    } else {
        Err(TrimmedPast { first_sequence, newest_snapshot: local.max(newest_object) })
    }
}

/// One tenant's snapshots in the object store. Cheap to clone.
#[derive(Clone)]
pub struct SnapshotShelf {
    inner: Arc<Shelf>,
}

struct Shelf {
    runtime: Handle,
    tenant: String,
    bucket: String,
    store: object_store::ObjectStore,
    jetstream: jetstream::Context,
    stream: String,
    keep: usize,
    /// The newest snapshot offered and not yet taken by the uploader.
    pending: parking_lot::Mutex<Option<Upload>>,
    wake: tokio::sync::Notify,
}

struct Upload {
    lsn: u64,
    bytes: Bytes,
    only_newest: bool,
}

impl std::fmt::Debug for SnapshotShelf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotShelf")
            .field("tenant", &self.inner.tenant)
            .field("bucket", &self.inner.bucket)
            .field("keep", &self.inner.keep)
            .finish_non_exhaustive()
    }
}

impl SnapshotShelf {
    /// The shelf of `tenant` (whose stream is `stream`) in `store`, keeping
    /// `keep` snapshots; starts its uploader on the current runtime.
    pub(crate) fn start(
        tenant: String,
        bucket: String,
        store: object_store::ObjectStore,
        jetstream: jetstream::Context,
        stream: String,
        keep: usize,
    ) -> SnapshotShelf {
        let shelf = SnapshotShelf {
            inner: Arc::new(Shelf {
                runtime: Handle::current(),
                tenant,
                bucket,
                store,
                jetstream,
                stream,
                keep: keep.max(1),
                pending: parking_lot::Mutex::new(None),
                wake: tokio::sync::Notify::new(),
            }),
        };
        tokio::spawn(shelf.clone().upload_offered());
        shelf
    }

    fn error(&self, doing: impl Into<String>, error: impl std::fmt::Display) -> ShelfError {
        ShelfError {
            bucket: self.inner.bucket.clone(),
            doing: doing.into(),
            message: error.to_string(),
        }
    }

    /// Hands the snapshot at `lsn` (its stored bytes: sealed when the
    /// tenant encrypts) to the uploader, replacing one offered before that
    /// it has not taken yet. With `only_newest` (after an erasure, or
    /// under retention) every older snapshot is deleted and the stream
    /// trimmed behind this one, whatever `snapshots_kept` says. Returns at
    /// once; failures are logged, and the next snapshot tries again.
    pub fn offer(&self, lsn: u64, bytes: Bytes, only_newest: bool) {
        let mut pending = self.inner.pending.lock();
        // What a replaced offer asked of older snapshots holds for this one.
        let only_newest = only_newest || pending.as_ref().is_some_and(|p| p.only_newest);
        *pending = Some(Upload { lsn, bytes, only_newest });
        drop(pending);
        self.inner.wake.notify_one();
    }

    async fn upload_offered(self) {
        loop {
            self.inner.wake.notified().await;
            let Some(upload) = self.inner.pending.lock().take() else { continue };
            let lsn = upload.lsn;
            if let Err(error) = self.upload(upload).await {
                tracing::warn!(tenant = %self.inner.tenant, lsn, %error, "snapshot not uploaded");
            }
        }
    }

    /// Uploads, prunes the store and trims the stream behind it.
    async fn upload(&self, upload: Upload) -> Result<(), ShelfError> {
        let shelf = &self.inner;
        let name = object_name(&shelf.tenant, upload.lsn);
        let size = upload.bytes.len();
        shelf
            .store
            .put(name.as_str(), &mut upload.bytes.as_ref())
            .await
            .map_err(|e| self.error(format!("uploading {name}"), e))?;
        let keep = if upload.only_newest { 1 } else { shelf.keep };
        let plan = prune_plan(&self.lsns().await?, keep);
        for lsn in &plan.delete {
            let old = object_name(&shelf.tenant, *lsn);
            shelf.store.delete(&old).await.map_err(|e| self.error(format!("deleting {old}"), e))?;
        }
        let trimmed = match plan.keep_from {
            Some(keep_from) => self.trim_before(keep_from).await?,
            None => false,
        };
        tracing::info!(tenant = %shelf.tenant, lsn = upload.lsn, bytes = size, deleted = plan.delete.len(),
            stream_kept_from = plan.keep_from, trimmed, "snapshot uploaded to the object store");
        Ok(())
    }

    /// Purges the stream's records before `keep_from`, if it still holds
    /// any; says whether it did.
    async fn trim_before(&self, keep_from: u64) -> Result<bool, ShelfError> {
        let shelf = &self.inner;
        let doing = || format!("trimming stream {}", shelf.stream);
        let mut stream =
            shelf.jetstream.get_stream(&shelf.stream).await.map_err(|e| self.error(doing(), e))?;
        let first = stream.info().await.map_err(|e| self.error(doing(), e))?.state.first_sequence;
        if keep_from <= first {
            return Ok(false);
        }
        stream.purge().sequence(keep_from).await.map_err(|e| self.error(doing(), e))?;
        Ok(true)
    }

    /// The lsns of the tenant's snapshots in the store, oldest first.
    pub async fn lsns(&self) -> Result<Vec<u64>, ShelfError> {
        let shelf = &self.inner;
        let mut list = shelf.store.list().await.map_err(|e| self.error("listing", e))?;
        let mut lsns = Vec::new();
        while let Some(info) = list.next().await {
            let info = info.map_err(|e| self.error("listing", e))?;
            if let Some(lsn) = object_lsn(&shelf.tenant, &info.name) {
                lsns.push(lsn);
            }
        }
        lsns.sort_unstable();
        Ok(lsns)
    }

    /// [`SnapshotShelf::lsns`] for threads off the runtime.
    pub fn lsns_blocking(&self) -> Result<Vec<u64>, ShelfError> {
        self.inner.runtime.block_on(self.lsns())
    }

    /// The stored bytes of the snapshot at `lsn` (checked against the
    /// digest the object store keeps). Blocks: call it off the runtime.
    pub fn download_blocking(&self, lsn: u64) -> Result<Vec<u8>, ShelfError> {
        let name = object_name(&self.inner.tenant, lsn);
        let doing = || format!("downloading {name}");
        self.inner.runtime.block_on(async {
            let mut object =
                self.inner.store.get(name.as_str()).await.map_err(|e| self.error(doing(), e))?;
            let mut bytes = Vec::with_capacity(object.info().size);
            object.read_to_end(&mut bytes).await.map_err(|e| self.error(doing(), e))?;
            Ok(bytes)
        })
    }

    /// How many snapshots `cluster.snapshots_kept` keeps.
    pub fn keep(&self) -> usize {
        self.inner.keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_lsn_and_belong_to_one_tenant() {
        assert_eq!(object_name("shop", 1_200), "shop/00000000000000001200");
        let mut names = [object_name("shop", 10_000), object_name("shop", 900)];
        names.sort();
        assert_eq!(names[0], object_name("shop", 900));
        assert_eq!(object_lsn("shop", &object_name("shop", 1_200)), Some(1_200));
        assert_eq!(object_lsn("shop", &object_name("shop-2", 1_200)), None);
        assert_eq!(object_lsn("shop-2", &object_name("shop", 1_200)), None);
        assert_eq!(object_lsn("shop", "shop/12"), None);
    }

    #[test]
    fn pruning_keeps_the_newest_and_trims_behind_the_oldest_kept() {
        let plan = prune_plan(&[900, 300, 1_200, 600], 3);
        assert_eq!(plan, Pruning { delete: vec![300], keep_from: Some(601) });
        assert_eq!(prune_plan(&[300, 600], 3), Pruning { delete: vec![], keep_from: Some(301) });
        let only = prune_plan(&[300, 600, 900], 1);
        assert_eq!(only, Pruning { delete: vec![300, 600], keep_from: Some(901) });
        assert_eq!(prune_plan(&[300, 600], 0).keep_from, Some(601), "keeps at least one");
        assert_eq!(prune_plan(&[], 3), Pruning { delete: vec![], keep_from: None });
    }

    #[test]
    fn a_start_is_the_newest_snapshot_the_stream_still_follows() {
        // A new node on an untrimmed stream, with and without objects.
        assert_eq!(choose_start(None, &[], 0), Ok(Start::Local(0)));
        assert_eq!(choose_start(None, &[], 1), Ok(Start::Local(0)));
        assert_eq!(choose_start(None, &[300, 600], 1), Ok(Start::Download(600)));
        // The object store's snapshot is newer, or the local one is as new.
        assert_eq!(choose_start(Some(300), &[300, 600], 301), Ok(Start::Download(600)));
        assert_eq!(choose_start(Some(600), &[300, 600], 301), Ok(Start::Local(600)));
        assert_eq!(choose_start(Some(700), &[300, 600], 301), Ok(Start::Local(700)));
        // The stream starts right after the snapshot: it still fits.
        assert_eq!(choose_start(Some(600), &[], 601), Ok(Start::Local(600)));
        // Trimmed past everything within reach.
        assert_eq!(
            choose_start(Some(300), &[], 601),
            Err(TrimmedPast { first_sequence: 601, newest_snapshot: Some(300) })
        );
        assert_eq!(
            choose_start(None, &[], 2),
            Err(TrimmedPast { first_sequence: 2, newest_snapshot: None })
        );
        assert_eq!(
            choose_start(Some(100), &[200], 602),
            Err(TrimmedPast { first_sequence: 602, newest_snapshot: Some(200) })
        );
    }
}
