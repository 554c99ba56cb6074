//! The snapshot store: whole-state payloads written atomically, tagged with
//! the lsn they cover.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rkyv::util::AlignedVec;

use crate::files::{
    Named, ensure_dir, list_lsn_files, lsn_file_name, parse_lsn_name, remove_file, sync_dir,
};
use crate::format::{
    SNAPSHOT_HEADER_LEN, SnapshotDamage, decode_snapshot_header, encode_snapshot_header,
    snapshot_checksum_matches,
};
use crate::{Error, Lsn};

/// File name prefix of snapshots.
pub const SNAPSHOT_PREFIX: &str = "snapshot-";
/// File name suffix of complete snapshots.
pub const SNAPSHOT_SUFFIX: &str = ".snap";
/// File name suffix of snapshots being written.
pub const SNAPSHOT_TMP_SUFFIX: &str = ".tmp";

/// The file name of the snapshot at `lsn`: `snapshot-<lsn:020>.snap`.
pub fn snapshot_file_name(lsn: Lsn) -> String {
    lsn_file_name(SNAPSHOT_PREFIX, lsn, SNAPSHOT_SUFFIX)
}

/// A snapshot read back from the store.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The lsn the snapshot was written at: it reflects every journal record
    /// below this lsn, so replay resumes at `records_from(lsn)`.
    pub lsn: Lsn,
    /// The payload, exactly as written, in a 16-byte aligned buffer (ready
    /// for `rkyv::access` without a copy).
    pub bytes: AlignedVec,
    /// The file it was read from.
    pub path: PathBuf,
}

/// Snapshots in one directory, one file per lsn. See the crate
/// documentation for the format and guarantees. Meant for one writer.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    dir: PathBuf,
}

impl SnapshotStore {
    /// Opens (or creates) the store in `dir`, removing stray
    /// `snapshot-*.tmp` files left by a write that did not finish.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let dir = dir.as_ref().to_path_buf();
        ensure_dir(&dir)?;
        let mut removed = 0;
        let entries = fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if parse_lsn_name(name, SNAPSHOT_PREFIX, SNAPSHOT_TMP_SUFFIX) != Named::Other {
                let path = entry.path();
                tracing::warn!(file = %path.display(), "snapshot: removing unfinished snapshot");
                remove_file(&path)?;
                removed += 1;
            }
        }
        if removed > 0 {
            sync_dir(&dir)?;
        }
        Ok(Self { dir })
    }

    /// Writes a snapshot of `payload` at `lsn` atomically and durably:
    /// writes `snapshot-<lsn>.tmp`, fsyncs it, renames it to
    /// `snapshot-<lsn>.snap` (replacing one of the same lsn) and fsyncs the
    /// directory. A crash at any point leaves either the old set of
    /// snapshots or the new one, plus perhaps a `.tmp` file that the next
    /// [`SnapshotStore::open`] removes. Returns the snapshot's path.
    pub fn write(&self, lsn: Lsn, payload: &[u8]) -> Result<PathBuf, Error> {
        let tmp = self.dir.join(lsn_file_name(SNAPSHOT_PREFIX, lsn, SNAPSHOT_TMP_SUFFIX));
        let path = self.dir.join(snapshot_file_name(lsn));
        let written = File::create(&tmp).and_then(|mut file| {
            file.write_all(&encode_snapshot_header(lsn, payload))?;
            file.write_all(payload)?;
            file.sync_all()
        });
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(&tmp, e));
        }
        if let Err(e) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(&path, e));
        }
        sync_dir(&self.dir)?;
        tracing::debug!(lsn, bytes = payload.len(), file = %path.display(), "snapshot: written");
        Ok(path)
    }

    /// The newest valid snapshot. A newer snapshot that fails its checks is
    /// skipped with a `tracing` warning and an older one tried; `Ok(None)`
    /// if the store holds no snapshot at all; [`Error::NoValidSnapshot`] if
    /// it holds some but none is valid (starting from nothing would silently
    /// lose state). I/O errors other than damage are returned as they come.
    pub fn latest(&self) -> Result<Option<Snapshot>, Error> {
        let all = self.list()?;
        for (lsn, path) in all.iter().rev() {
            match read_snapshot(path, *lsn) {
                Ok(snapshot) => return Ok(Some(snapshot)),
                Err(Error::CorruptSnapshot { path, reason }) => {
                    tracing::warn!(
                        file = %path.display(),
                        reason = %reason,
                        "snapshot: skipping a damaged snapshot, falling back to an older one"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        if all.is_empty() {
            Ok(None)
        } else {
            Err(Error::NoValidSnapshot { dir: self.dir.clone(), count: all.len() })
        }
    }

    /// Reads and checks the snapshot at exactly `lsn`.
    pub fn read(&self, lsn: Lsn) -> Result<Snapshot, Error> {
        read_snapshot(&self.dir.join(snapshot_file_name(lsn)), lsn)
    }

    /// The complete snapshots' lsns and paths, oldest first (not checked).
    pub fn list(&self) -> Result<Vec<(Lsn, PathBuf)>, Error> {
        list_lsn_files(&self.dir, SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX, false)
    }

    /// Deletes all but the `keep_latest` newest snapshots (by lsn, valid or
    /// not), then fsyncs the directory. Returns how many were deleted.
    pub fn prune(&self, keep_latest: usize) -> Result<usize, Error> {
        let all = self.list()?;
        let excess = all.len().saturating_sub(keep_latest);
        for (_, path) in &all[..excess] {
            remove_file(path)?;
        }
        if excess > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(excess)
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Reads the snapshot file at `path`, which must hold the snapshot at `lsn`.
/// Never allocates more than the file's length.
fn read_snapshot(path: &Path, lsn: Lsn) -> Result<Snapshot, Error> {
    let corrupt = |reason| Error::CorruptSnapshot { path: path.to_path_buf(), reason };
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if file_len < SNAPSHOT_HEADER_LEN as u64 {
        return Err(corrupt(SnapshotDamage::TooShort { len: file_len }));
    }
    let mut header_bytes = [0u8; SNAPSHOT_HEADER_LEN];
    file.read_exact(&mut header_bytes).map_err(|e| Error::io(path, e))?;
    let header = decode_snapshot_header(&header_bytes, file_len).map_err(corrupt)?;
    if header.lsn != lsn {
        return Err(corrupt(SnapshotDamage::LsnMismatch { expected: lsn, found: header.lsn }));
    }
    let len = usize::try_from(header.payload_len).map_err(|_| {
        Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::OutOfMemory,
                "snapshot larger than the address space",
            ),
        )
    })?;
    let mut bytes = AlignedVec::with_capacity(len);
    bytes.resize(len, 0);
    file.read_exact(&mut bytes).map_err(|e| Error::io(path, e))?;
    snapshot_checksum_matches(&header_bytes, &header, &bytes).map_err(corrupt)?;
    Ok(Snapshot { lsn, bytes, path: path.to_path_buf() })
}
