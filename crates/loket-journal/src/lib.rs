//! Durable storage for `loketd`: an append-only, segmented, checksummed
//! journal of opaque records, and a store of atomically written snapshots.
//!
//! **This crate never interprets payloads.** A record or a snapshot is a
//! byte string that comes back exactly as it was written, or not at all;
//! what the bytes mean (the daemon encodes its commands with rkyv) is the
//! caller's business. Plain blocking I/O, no async runtime.
//!
//! # The journal
//!
//! Every record gets a log sequence number ([`Lsn`]): contiguous, starting
//! at 0 or at [`JournalOptions::start_lsn`] for a journal created after a
//! snapshot. The daemon's start-up is:
//!
//! ```no_run
//! # fn main() -> Result<(), loket_journal::Error> {
//! use loket_journal::{Journal, JournalOptions, SnapshotStore};
//!
//! let snapshots = SnapshotStore::open("/var/lib/loketd/snapshots")?;
//! let snapshot = snapshots.latest()?;
//! let from = snapshot.as_ref().map_or(0, |s| s.lsn);
//! let options = JournalOptions { start_lsn: from, ..JournalOptions::default() };
//! let (mut journal, report) = Journal::open("/var/lib/loketd/journal", options)?;
//! if report.dropped_bytes() > 0 { /* count it */ }
//! let mut reader = journal.records_from(from)?;
//! while let Some(record) = reader.next_record()? {
//!     // apply record.payload (16-byte aligned) as record.lsn
//! }
//! let lsn = journal.append(b"command")?;
//! let durable = journal.sync()?; // now lsn < durable
//! # let _ = (lsn, durable); Ok(()) }
//! ```
//!
//! ## What "durable" means
//!
//! [`Journal::append`] only copies the record into a buffer. [`Journal::sync`]
//! writes the buffer and `fdatasync`s the segment; when it returns `Ok(n)`,
//! every record with lsn `< n` is on stable storage (as far as the kernel
//! and the device honour `fdatasync`) and will come back from every later
//! [`Journal::open`] unless the disk itself loses data. Records appended
//! after the last successful sync may or may not survive a crash; if some
//! do, they form a prefix: recovery never returns a record whose
//! predecessor is missing. Every new segment and every directory change
//! (segment created or removed, snapshot renamed) is followed by an fsync
//! of the directory. A failed write or sync poisons the journal
//! ([`Error::Poisoned`]); reopen it to recover.
//!
//! ## Segment files
//!
//! The journal directory holds files `journal-<first_lsn:020>.log` (the
//! first record's lsn as twenty decimal digits). An append that finds the
//! current segment at or past [`JournalOptions::segment_bytes`] rotates
//! first; [`Journal::rotate`] does it on demand. Rotation syncs the finished
//! segment before creating the next one, so only the last segment can ever
//! hold a torn write. All integers are little-endian.
//!
//! Segment header, 32 bytes:
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0  | 8 | magic `LOKETJNL` |
//! | 8  | 4 | format version, 1 |
//! | 12 | 4 | reserved, 0 |
//! | 16 | 8 | first lsn (equal to the file name's) |
//! | 24 | 4 | CRC-32 (IEEE) of bytes 0..24 |
//! | 28 | 4 | reserved, 0 |
//!
//! Then records, back to back, each starting at an offset that is a
//! multiple of 16:
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0  | 4 | payload length `n` (at most [`JournalOptions::max_record_bytes`]) |
//! | 4  | 4 | CRC-32 (IEEE) of bytes 8..16+n: the lsn and the payload |
//! | 8  | 8 | lsn |
//! | 16 | n | payload |
//! | 16+n | 0..15 | zero padding to a multiple of 16 |
//!
//! The padding makes every payload 16-byte aligned within its segment, so a
//! [`JournalReader`], which holds a segment in an aligned buffer, lends
//! payloads that `rkyv::access` can read in place.
//!
//! ## Recovery: what happens on each kind of damage
//!
//! [`Journal::open`] reads every segment in lsn order and checks every
//! record. A record is accepted only if its length is within the maximum,
//! it is complete (padding included), its checksum matches, its lsn is the
//! next one expected and its padding is zero; the first record that fails
//! ends the segment's valid prefix. Then:
//!
//! * **Last segment, anything after the valid prefix** (a partial record
//!   header or record, a bad checksum, an oversized length, a wrong lsn,
//!   non-zero padding, trailing garbage or zeros): the file is truncated to
//!   the valid prefix and synced, with a `tracing` warning naming the file,
//!   the offset and the reason; [`RecoveryReport::repair`] records it and
//!   [`RecoveryReport::dropped_bytes`] says how many bytes went. This is
//!   what a crash between syncs leaves behind.
//! * **Last segment with a torn header** (shorter than a header and a
//!   prefix of one, or all zeros: a crash right after creating it): the
//!   header is rewritten and the segment starts empty, with a warning.
//! * **Damage in any earlier segment**, including bytes after its last
//!   record: [`Error::Corrupt`] naming the file and offset. Rotation synced
//!   that segment before the next one existed, so this is not a crash
//!   artefact; nothing is skipped or repaired. Likewise a complete, valid
//!   record in the last segment that exceeds a since-lowered
//!   [`JournalOptions::max_record_bytes`] is an error, not a torn tail.
//! * **A header that is not a torn one** (wrong magic, unknown version,
//!   bad checksum, first lsn differing from the file name), in any segment:
//!   [`Error::BadHeader`].
//! * **A gap or overlap between segments** (a segment's first lsn is not
//!   one past the previous segment's last record): [`Error::LsnGap`].
//! * **A file named `journal-*.log` whose name is not twenty digits**:
//!   [`Error::ForeignFile`]. Other files in the directory are ignored.
//!
//! A length field above the maximum record size is damage, never an
//! allocation: the whole segment is read with its own length as the bound.
//!
//! ## Compaction and erasure
//!
//! [`Journal::remove_before`]`(lsn)` deletes, oldest first, every segment
//! all of whose records are below `lsn` (never the current one), and
//! fsyncs the directory. Erasing data (for instance a customer's, under
//! GDPR) from the history is: [`Journal::rotate`]; write a snapshot at
//! `lsn = `[`Journal::next_lsn`] that no longer holds the data;
//! [`Journal::remove_before`]`(lsn)`; [`SnapshotStore::prune`]`(1)`.
//! Afterwards the journal directory holds only the new, empty segment and
//! the snapshot directory only the new snapshot: no file holds an earlier
//! record.
//!
//! # Snapshots
//!
//! [`SnapshotStore`] keeps files `snapshot-<lsn:020>.snap`, where `lsn` is
//! the journal lsn the snapshot covers (it reflects every record below it).
//! [`SnapshotStore::write`] writes `snapshot-<lsn:020>.tmp`, fsyncs it,
//! renames it into place and fsyncs the directory, so a snapshot is either
//! complete or absent; stray `.tmp` files are removed by
//! [`SnapshotStore::open`]. Format, little-endian:
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0  | 8 | magic `LOKETSNP` |
//! | 8  | 4 | format version, 1 |
//! | 12 | 4 | reserved, 0 |
//! | 16 | 8 | lsn (equal to the file name's) |
//! | 24 | 8 | payload length `n` (equal to the file length − 40) |
//! | 32 | 4 | CRC-32 (IEEE) of bytes 0..32 followed by the payload |
//! | 36 | 4 | reserved, 0 |
//! | 40 | n | payload |
//!
//! [`SnapshotStore::latest`] returns the newest snapshot that passes every
//! check, with the payload in a 16-byte aligned [`rkyv::util::AlignedVec`];
//! a damaged newer one is skipped with a warning. Damage to every snapshot
//! is [`Error::NoValidSnapshot`], not an empty result.
//!
//! # Fuzzing
//!
//! The formats are decoded by pure functions over byte slices
//! ([`decode_segment`], [`SegmentDecoder`], [`decode_snapshot`]);
//! [`fuzz_checks`] holds the properties the `journal_reader` fuzz target
//! checks on them.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::io;
use std::path::{Path, PathBuf};

mod files;
pub mod format;
mod journal;
mod snapshot;

pub use format::{
    DamageReason, DecodedSegment, HeaderError, Record, SegmentDecoder, SnapshotDamage, Tail,
    decode_segment, decode_snapshot,
};
pub use journal::{
    Journal, JournalOptions, JournalReader, RecoveryReport, Repair, SEGMENT_PREFIX, SEGMENT_SUFFIX,
    SyncTicket, segment_file_name,
};
pub use snapshot::{
    SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX, SNAPSHOT_TMP_SUFFIX, Snapshot, SnapshotStore,
    snapshot_file_name,
};

/// A log sequence number: the position of a record in the journal.
pub type Lsn = u64;

/// Everything that can go wrong in this crate. Each variant about a file
/// names it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation on `path` failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A segment header is not valid (and is not a torn header of the last
    /// segment, which recovery repairs).
    #[error("{}: bad journal segment header: {reason}", path.display())]
    BadHeader {
        /// The segment file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        reason: HeaderError,
    },
    /// Invalid bytes where a record must be: in a segment that is not the
    /// last, or met by a reader after recovery checked the bytes.
    #[error("{} at byte {offset}: corrupt journal record: {reason}", path.display())]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Offset of the rejected record in the file.
        offset: u64,
        /// Why it was rejected.
        #[source]
        reason: DamageReason,
    },
    /// A segment does not start where the previous one ended.
    #[error("{}: journal lsn gap: segment starts at lsn {found}, expected {expected}", path.display())]
    LsnGap {
        /// The segment file.
        path: PathBuf,
        /// One past the previous segment's last record.
        expected: Lsn,
        /// The segment's first lsn.
        found: Lsn,
    },
    /// A reader found fewer records than the journal held when it was made
    /// (a segment was shortened or removed meanwhile).
    #[error("{}: journal records from lsn {expected} are missing", path.display())]
    MissingRecords {
        /// The last segment read.
        path: PathBuf,
        /// The first lsn not found.
        expected: Lsn,
    },
    /// A file in the journal directory looks like a segment but its name is
    /// not `journal-<twenty digits>.log`.
    #[error("{}: unexpected file in the journal directory", path.display())]
    ForeignFile {
        /// The file.
        path: PathBuf,
    },
    /// An appended payload exceeds [`JournalOptions::max_record_bytes`].
    #[error("record of {len} bytes exceeds the maximum of {max}")]
    RecordTooLarge {
        /// The payload's length.
        len: usize,
        /// The maximum in force.
        max: u32,
    },
    /// No record may have lsn `u64::MAX`.
    #[error("journal lsn space exhausted")]
    LsnExhausted,
    /// Records from `requested` on cannot be read.
    #[error(
        "journal records from lsn {requested} are not available: the journal holds lsns {first}..{next}"
    )]
    NotAvailable {
        /// The lsn asked for.
        requested: Lsn,
        /// The oldest record held.
        first: Lsn,
        /// One past the newest record.
        next: Lsn,
    },
    /// An earlier write or sync failed; the journal's state on disk is
    /// unknown until it is reopened (which recovers it).
    #[error("journal poisoned by an earlier I/O failure; reopen it")]
    Poisoned,
    /// The options cannot work.
    #[error("invalid journal options: {0}")]
    InvalidOptions(&'static str),
    /// A snapshot file fails its checks.
    #[error("{}: corrupt snapshot: {reason}", path.display())]
    CorruptSnapshot {
        /// The snapshot file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        reason: SnapshotDamage,
    },
    /// The store holds snapshots, but none passes its checks.
    #[error("{}: none of the {count} snapshots is valid", dir.display())]
    NoValidSnapshot {
        /// The store's directory.
        dir: PathBuf,
        /// Snapshots found.
        count: usize,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }
}

/// Properties checked by the `journal_reader` fuzz target (and by
/// `tests/fuzz_corpus.rs` on the checked-in seeds). Pure: no filesystem.
pub mod fuzz_checks {
    use crate::Lsn;
    use crate::format::{
        RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, Tail, decode_segment, decode_snapshot,
        encode_record, encode_segment_header, encode_snapshot_header, record_checksum,
    };

    /// Maximum record size used by the checks.
    pub const MAX_RECORD_BYTES: u32 = 1 << 16;

    /// Feeds arbitrary bytes to the segment decoder, as a whole segment and
    /// as the records after a valid header at lsn 0; builds a segment from
    /// the bytes (as payloads) and decodes every kind of truncation of it;
    /// and runs [`snapshot_file`]. Never panics except on a violated
    /// property:
    ///
    /// * every record returned has a matching checksum, and lsns are
    ///   contiguous from the header's first lsn;
    /// * re-encoding the returned records gives exactly the valid prefix of
    ///   the input, which decodes to the same records with a clean tail;
    /// * the tail is clean exactly when the valid prefix is the whole input;
    /// * a segment cut anywhere decodes to exactly its complete records.
    pub fn journal_reader(data: &[u8]) {
        check_segment(data);
        let mut framed = encode_segment_header(0).to_vec();
        framed.extend_from_slice(data);
        check_segment(&framed);
        check_truncation(data);
        snapshot_file(data);
    }

    /// Feeds arbitrary bytes to the snapshot decoder: never panics; what it
    /// accepts re-encodes to exactly the input; and the bytes as a payload
    /// round-trip.
    pub fn snapshot_file(data: &[u8]) {
        if let Ok((lsn, range)) = decode_snapshot(data) {
            let payload = &data[range];
            let mut again = encode_snapshot_header(lsn, payload).to_vec();
            again.extend_from_slice(payload);
            assert_eq!(again, data, "accepted snapshot does not re-encode to its input");
        }
        let lsn = data.iter().take(8).fold(0u64, |acc, &b| acc << 8 | u64::from(b));
        let mut file = encode_snapshot_header(lsn, data).to_vec();
        file.extend_from_slice(data);
        let (got_lsn, range) = decode_snapshot(&file).expect("a fresh snapshot decodes");
        assert_eq!(got_lsn, lsn);
        assert_eq!(&file[range], data);
    }

    fn check_segment(bytes: &[u8]) {
        let Ok(decoded) = decode_segment(bytes, None, MAX_RECORD_BYTES) else { return };
        assert!(decoded.valid_len >= SEGMENT_HEADER_LEN && decoded.valid_len <= bytes.len());
        assert_eq!(
            decoded.tail == Tail::Clean,
            decoded.valid_len == bytes.len(),
            "tail {:?}",
            decoded.tail
        );
        let mut reencoded = encode_segment_header(decoded.first_lsn).to_vec();
        for (i, (lsn, range)) in decoded.records.iter().enumerate() {
            assert_eq!(Some(*lsn), decoded.first_lsn.checked_add(i as u64), "lsns not contiguous");
            let payload = &bytes[range.clone()];
            let stored =
                &bytes[range.start - RECORD_HEADER_LEN + 4..range.start - RECORD_HEADER_LEN + 8];
            assert_eq!(
                stored,
                &record_checksum(*lsn, payload).to_le_bytes(),
                "checksum mismatch accepted"
            );
            encode_record(&mut reencoded, *lsn, payload);
        }
        assert_eq!(reencoded, &bytes[..decoded.valid_len], "re-encoding is not the valid prefix");
        let again = decode_segment(&reencoded, Some(decoded.first_lsn), MAX_RECORD_BYTES)
            .expect("a re-encoded segment decodes");
        assert_eq!(again.tail, Tail::Clean);
        assert_eq!(again.records, decoded.records);
    }

    /// Payloads are the input split at `0xFF`; the first bytes choose the
    /// first lsn and the cut.
    fn check_truncation(data: &[u8]) {
        let (params, rest) = data.split_at(data.len().min(3));
        let first: Lsn = params.first().map_or(0, |&b| u64::from(b) << 40);
        let payloads: Vec<&[u8]> = rest.split(|&b| b == 0xFF).take(64).collect();
        let mut segment = encode_segment_header(first).to_vec();
        let mut ends = Vec::with_capacity(payloads.len());
        for (i, payload) in payloads.iter().enumerate() {
            encode_record(&mut segment, first + i as u64, payload);
            ends.push(segment.len());
        }
        debug_assert_eq!(ends.last().copied().unwrap_or(SEGMENT_HEADER_LEN), segment.len());
        let cut_seed = params.iter().skip(1).fold(0usize, |acc, &b| acc << 8 | usize::from(b));
        let cuts = [segment.len(), cut_seed % (segment.len() + 1), segment.len().saturating_sub(1)];
        for cut in cuts {
            let bytes = &segment[..cut];
            match decode_segment(bytes, Some(first), MAX_RECORD_BYTES) {
                Err(e) => {
                    assert!(cut < SEGMENT_HEADER_LEN, "cut at {cut} rejected the header: {e}");
                    continue;
                }
                Ok(decoded) => {
                    let complete = ends.iter().take_while(|&&end| end <= cut).count();
                    assert_eq!(decoded.records.len(), complete, "cut at {cut}");
                    for (i, (lsn, range)) in decoded.records.iter().enumerate() {
                        assert_eq!(*lsn, first + i as u64);
                        assert_eq!(&bytes[range.clone()], payloads[i]);
                        assert_eq!(range.start % 16, 0, "payload not aligned");
                    }
                    let valid = if complete == 0 { SEGMENT_HEADER_LEN } else { ends[complete - 1] };
                    assert_eq!(decoded.valid_len, valid);
                }
            }
            check_segment(bytes);
        }
    }
}
