//! The segmented journal: recovery on open, buffered appends, sync,
//! rotation, removal of old segments, and reading records back.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rkyv::util::AlignedVec;

use crate::files::{ensure_dir, list_lsn_files, lsn_file_name, remove_file, sync_dir};
use crate::format::{
    DamageReason, HeaderError, Record, SEGMENT_HEADER_LEN, SegmentDecoder, Tail, decode_record_at,
    decode_segment_header, encode_record, encode_segment_header, encoded_record_len,
};
use crate::{Error, Lsn};

/// File name prefix of journal segments.
pub const SEGMENT_PREFIX: &str = "journal-";
/// File name suffix of journal segments.
pub const SEGMENT_SUFFIX: &str = ".log";

/// The file name of the segment whose first record is `first_lsn`:
/// `journal-<first_lsn:020>.log`.
pub fn segment_file_name(first_lsn: Lsn) -> String {
    lsn_file_name(SEGMENT_PREFIX, first_lsn, SEGMENT_SUFFIX)
}

/// Tuning of a [`Journal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalOptions {
    /// An append that finds the current segment at or past this many bytes
    /// first rotates to a new segment. Default 64 MiB.
    pub segment_bytes: u64,
    /// Largest payload accepted by [`Journal::append`]; on read, a length
    /// field above it is damage (never an allocation). Keep it at least as
    /// large when reopening as it was when writing: a complete record above
    /// it makes [`Journal::open`] fail rather than truncate. Default 64 MiB.
    pub max_record_bytes: u32,
    /// Appends accumulate in a buffer of about this many bytes before it is
    /// written to the file (one `write` syscall). Default 1 MiB.
    pub buffer_bytes: usize,
    /// The lsn of the first record of a journal created in an empty
    /// directory (for instance the lsn of the snapshot it continues).
    /// Ignored when segments exist. Default 0.
    pub start_lsn: Lsn,
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            max_record_bytes: 64 << 20,
            buffer_bytes: 1 << 20,
            start_lsn: 0,
        }
    }
}

/// A repair [`Journal::open`] made to the last segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// The last segment ended in bytes that are not a valid next record
    /// (a torn write or damage); the file was truncated to its valid prefix.
    TruncatedTail {
        /// The segment file.
        path: PathBuf,
        /// Where the valid prefix ends: the file's new length.
        offset: u64,
        /// Bytes removed.
        dropped_bytes: u64,
        /// Why the bytes at `offset` were rejected.
        reason: DamageReason,
    },
    /// The last segment's header was never completely written (a crash
    /// right after the segment was created); it was rewritten, empty.
    RewroteTornHeader {
        /// The segment file.
        path: PathBuf,
        /// Bytes the file held before.
        dropped_bytes: u64,
    },
}

/// What [`Journal::open`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The directory held no segment; a new one was created at
    /// [`JournalOptions::start_lsn`].
    pub created: bool,
    /// Segments in the journal after recovery.
    pub segments: usize,
    /// Lsn of the oldest record still held.
    pub first_lsn: Lsn,
    /// Lsn the next append gets; records `first_lsn..next_lsn` are readable.
    pub next_lsn: Lsn,
    /// The repair made to the last segment, if any.
    pub repair: Option<Repair>,
}

impl RecoveryReport {
    /// Bytes dropped from the last segment by the repair (0 without one).
    pub fn dropped_bytes(&self) -> u64 {
        match &self.repair {
            Some(
                Repair::TruncatedTail { dropped_bytes, .. }
                | Repair::RewroteTornHeader { dropped_bytes, .. },
            ) => *dropped_bytes,
            None => 0,
        }
    }

    /// Records held: `next_lsn - first_lsn`.
    pub fn records(&self) -> u64 {
        self.next_lsn - self.first_lsn
    }
}

/// An append-only, segmented, checksummed journal in one directory. See the
/// crate documentation for the format and the guarantees.
///
/// One process at a time may open a directory: nothing here locks it.
pub struct Journal {
    dir: PathBuf,
    options: JournalOptions,
    /// `(first_lsn, path)`, ascending; the last one is being appended to.
    segments: Vec<(Lsn, PathBuf)>,
    /// The last segment, opened for appending (shared with [`SyncTicket`]s).
    file: Arc<File>,
    /// Bytes of the last segment, the buffered ones included.
    segment_len: u64,
    /// Encoded records not yet written to `file`.
    buf: Vec<u8>,
    next_lsn: Lsn,
    /// The durable lsn and the poisoned flag, shared with [`SyncTicket`]s.
    durability: Arc<Durability>,
    last_sync: Option<Duration>,
}

/// What the journal and its outstanding [`SyncTicket`]s share.
#[derive(Debug)]
struct Durability {
    /// Every record below it is on stable storage; only grows.
    durable_lsn: AtomicU64,
    /// A write or sync failed (see [`Error::Poisoned`]).
    poisoned: AtomicBool,
    /// Held across check, `fdatasync` and update, so that after one sync
    /// fails (the kernel reports a writeback error once per file) no other
    /// sync of the same file can count as success.
    syncing: std::sync::Mutex<()>,
}

impl Durability {
    fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
    }

    fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }
}

/// The `fdatasync` of a [`Journal`], detached so that another thread can
/// run it while the journal goes on appending: see
/// [`Journal::prepare_sync`].
///
/// Syncing a ticket makes every record below [`SyncTicket::lsn`] durable;
/// on success it advances the journal's [`Journal::durable_lsn`], on failure
/// it poisons the journal, exactly as [`Journal::sync`] would.
#[derive(Debug)]
#[must_use = "the records are not durable until the ticket is synced"]
pub struct SyncTicket {
    file: Arc<File>,
    path: PathBuf,
    lsn: Lsn,
    durability: Arc<Durability>,
}

impl SyncTicket {
    /// Records below this lsn are durable once [`SyncTicket::sync`] returns `Ok`.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }

    /// Makes the ticket's records durable: `fdatasync`s its segment unless
    /// they already are (then no syscall). Returns how long the sync took
    /// (zero without one). Fails with [`Error::Poisoned`] if the journal is,
    /// and poisons it if the `fdatasync` fails.
    pub fn sync(&self) -> Result<Duration, Error> {
        let _syncing =
            self.durability.syncing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.durability.is_poisoned() {
            return Err(Error::Poisoned);
        }
        if self.durability.durable_lsn.load(Ordering::Acquire) >= self.lsn {
            return Ok(Duration::ZERO);
        }
        let started = Instant::now();
        if let Err(e) = self.file.sync_data() {
            self.durability.poison();
            return Err(Error::io(&self.path, e));
        }
        let took = started.elapsed();
        self.durability.durable_lsn.fetch_max(self.lsn, Ordering::AcqRel);
        Ok(took)
    }
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.dir)
            .field("segments", &self.segments.len())
            .field("first_lsn", &self.first_lsn())
            .field("next_lsn", &self.next_lsn)
            .field("durable_lsn", &self.durable_lsn())
            .field("buffered_bytes", &self.buf.len())
            .field("poisoned", &self.is_poisoned())
            .finish()
    }
}

impl Journal {
    /// Opens (or creates) the journal in `dir`, recovering it.
    ///
    /// Every segment is read and checked in lsn order. The journal is then
    /// positioned after the last valid record, with everything in the files
    /// counted durable. A damaged tail of the last segment is truncated away
    /// and a torn header of the last segment rewritten (both with a
    /// `tracing` warning and recorded in the report); any other damage is a
    /// hard error naming the file and, for records, the offset:
    /// [`Error::BadHeader`], [`Error::Corrupt`], [`Error::LsnGap`],
    /// [`Error::ForeignFile`].
    pub fn open(
        dir: impl AsRef<Path>,
        options: JournalOptions,
    ) -> Result<(Self, RecoveryReport), Error> {
        let dir = dir.as_ref().to_path_buf();
        if options.segment_bytes == 0 {
            return Err(Error::InvalidOptions("segment_bytes must be positive"));
        }
        ensure_dir(&dir)?;
        let mut segments = list_lsn_files(&dir, SEGMENT_PREFIX, SEGMENT_SUFFIX, true)?;

        if segments.is_empty() {
            let first = options.start_lsn;
            let path = dir.join(segment_file_name(first));
            let file = create_segment(&path, first)?;
            sync_dir(&dir)?;
            tracing::info!(dir = %dir.display(), first_lsn = first, "journal: created");
            let report = RecoveryReport {
                created: true,
                segments: 1,
                first_lsn: first,
                next_lsn: first,
                repair: None,
            };
            let journal = Self::positioned(
                dir,
                options,
                vec![(first, path)],
                file,
                SEGMENT_HEADER_LEN as u64,
                first,
            );
            return Ok((journal, report));
        }

        let mut bytes = Vec::new();
        let mut expected: Option<Lsn> = None;
        let mut repair = None;
        let mut last_len = SEGMENT_HEADER_LEN as u64;
        let count = segments.len();
        for (index, (name_lsn, path)) in segments.iter().enumerate() {
            let last = index + 1 == count;
            if let Some(expected) = expected
                && *name_lsn != expected
            {
                return Err(Error::LsnGap { path: path.clone(), expected, found: *name_lsn });
            }
            bytes.clear();
            File::open(path)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .map_err(|e| Error::io(path, e))?;
            let mut decoder =
                match SegmentDecoder::new(&bytes, Some(*name_lsn), options.max_record_bytes) {
                    Ok(decoder) => decoder,
                    Err(HeaderError::Torn { len }) if last => {
                        tracing::warn!(
                            file = %path.display(),
                            offset = 0,
                            dropped_bytes = len,
                            reason = "torn segment header",
                            "journal: rewriting the torn header of the last segment"
                        );
                        rewrite_torn_segment(path, *name_lsn)?;
                        repair = Some(Repair::RewroteTornHeader {
                            path: path.clone(),
                            dropped_bytes: len as u64,
                        });
                        expected = Some(*name_lsn);
                        last_len = SEGMENT_HEADER_LEN as u64;
                        continue;
                    }
                    Err(reason) => return Err(Error::BadHeader { path: path.clone(), reason }),
                };
            for _ in decoder.by_ref() {}
            if let Some(Tail::Damaged { offset, reason }) = decoder.tail() {
                if !last || is_valid_but_oversized(&bytes, *offset, decoder.next_lsn(), reason) {
                    return Err(Error::Corrupt {
                        path: path.clone(),
                        offset: *offset as u64,
                        reason: reason.clone(),
                    });
                }
                let dropped = (bytes.len() - offset) as u64;
                tracing::warn!(
                    file = %path.display(),
                    offset = *offset as u64,
                    dropped_bytes = dropped,
                    reason = %reason,
                    "journal: truncating the damaged tail of the last segment"
                );
                truncate_segment(path, *offset as u64)?;
                repair = Some(Repair::TruncatedTail {
                    path: path.clone(),
                    offset: *offset as u64,
                    dropped_bytes: dropped,
                    reason: reason.clone(),
                });
            }
            expected = Some(decoder.next_lsn());
            last_len = decoder.valid_len() as u64;
        }

        let next_lsn = expected.unwrap_or(options.start_lsn);
        let last_path = segments[count - 1].1.clone();
        let file = OpenOptions::new()
            .append(true)
            .open(&last_path)
            .map_err(|e| Error::io(&last_path, e))?;
        let first_lsn = segments[0].0;
        let report = RecoveryReport {
            created: false,
            segments: segments.len(),
            first_lsn,
            next_lsn,
            repair,
        };
        tracing::info!(
            dir = %dir.display(),
            segments = report.segments,
            first_lsn,
            next_lsn,
            dropped_bytes = report.dropped_bytes(),
            "journal: recovered"
        );
        let journal =
            Self::positioned(dir, options, std::mem::take(&mut segments), file, last_len, next_lsn);
        Ok((journal, report))
    }

    fn positioned(
        dir: PathBuf,
        options: JournalOptions,
        segments: Vec<(Lsn, PathBuf)>,
        file: File,
        segment_len: u64,
        next_lsn: Lsn,
    ) -> Self {
        let buf = Vec::with_capacity(options.buffer_bytes.saturating_add(4096).min(64 << 20));
        Self {
            dir,
            options,
            segments,
            file: Arc::new(file),
            segment_len,
            buf,
            next_lsn,
            durability: Arc::new(Durability {
                durable_lsn: AtomicU64::new(next_lsn),
                poisoned: AtomicBool::new(false),
                syncing: std::sync::Mutex::new(()),
            }),
            last_sync: None,
        }
    }

    /// Appends a record and returns its lsn. The record is buffered: it is
    /// readable by [`Journal::records_from`] at once, survives a process exit
    /// (the buffer is written when the journal is dropped) but is durable
    /// only after the next [`Journal::sync`] returns.
    ///
    /// Costs a checksum and a copy into the buffer; a `write` syscall when
    /// the buffer is full. When the current segment has reached
    /// [`JournalOptions::segment_bytes`], first rotates (see
    /// [`Journal::rotate`], which syncs).
    ///
    /// A payload larger than [`JournalOptions::max_record_bytes`] is refused
    /// with [`Error::RecordTooLarge`] and changes nothing.
    pub fn append(&mut self, payload: &[u8]) -> Result<Lsn, Error> {
        self.check_poisoned()?;
        if payload.len() > self.options.max_record_bytes as usize {
            return Err(Error::RecordTooLarge {
                len: payload.len(),
                max: self.options.max_record_bytes,
            });
        }
        if self.next_lsn == Lsn::MAX {
            return Err(Error::LsnExhausted);
        }
        if self.segment_len >= self.options.segment_bytes
            && self.current_first_lsn() < self.next_lsn
        {
            self.rotate()?;
        }
        let lsn = self.next_lsn;
        encode_record(&mut self.buf, lsn, payload);
        self.segment_len += encoded_record_len(payload.len()) as u64;
        self.next_lsn += 1;
        if self.buf.len() >= self.options.buffer_bytes {
            self.write_out()?;
        }
        Ok(lsn)
    }

    /// Writes the buffer and `fdatasync`s the current segment. Returns the
    /// durable lsn: every record below it is on stable storage. Costs
    /// nothing (no syscall) when nothing was appended since the last sync.
    /// How long the `fdatasync` took is [`Journal::last_sync_duration`].
    ///
    /// A failed write or sync poisons the journal (see
    /// [`Error::Poisoned`]): after a failed `fdatasync` the kernel may have
    /// dropped the dirty pages, so a later sync succeeding would prove
    /// nothing. Reopen to recover.
    pub fn sync(&mut self) -> Result<Lsn, Error> {
        self.last_sync = None;
        let ticket = self.prepare_sync()?;
        if ticket.lsn() <= self.durable_lsn() {
            return Ok(self.durable_lsn());
        }
        self.last_sync = Some(ticket.sync()?);
        Ok(self.durable_lsn())
    }

    /// The first half of [`Journal::sync`]: writes the buffer to the file
    /// (no sync) and returns a ticket whose [`SyncTicket::sync`] makes every
    /// record appended so far durable. The ticket may be synced on another
    /// thread while this journal goes on appending; a group-commit writer
    /// uses it to take the `fdatasync` off its critical path.
    ///
    /// A ticket stays valid across [`Journal::rotate`] (which syncs the
    /// segment it leaves) and across dropping the journal.
    pub fn prepare_sync(&mut self) -> Result<SyncTicket, Error> {
        self.check_poisoned()?;
        self.write_out()?;
        Ok(SyncTicket {
            file: Arc::clone(&self.file),
            path: self.current_path().to_path_buf(),
            lsn: self.next_lsn,
            durability: Arc::clone(&self.durability),
        })
    }

    /// Ends the current segment and starts a new one at [`Journal::next_lsn`].
    /// Does nothing if the current segment holds no record yet.
    ///
    /// Syncs first, so a segment that is not the last is always complete on
    /// disk (which is why recovery may treat damage there as a hard error),
    /// then creates the new segment, syncs its header and the directory.
    pub fn rotate(&mut self) -> Result<(), Error> {
        self.check_poisoned()?;
        if self.current_first_lsn() == self.next_lsn {
            return Ok(());
        }
        self.sync()?;
        let first = self.next_lsn;
        let path = self.dir.join(segment_file_name(first));
        let created =
            create_segment(&path, first).and_then(|file| sync_dir(&self.dir).map(|()| file));
        match created {
            Ok(file) => {
                self.file = Arc::new(file);
                self.segments.push((first, path));
                self.segment_len = SEGMENT_HEADER_LEN as u64;
                tracing::debug!(first_lsn = first, "journal: rotated");
                Ok(())
            }
            Err(e) => {
                // A half-created segment may exist; recovery handles it.
                self.durability.poison();
                Err(e)
            }
        }
    }

    /// Deletes every segment all of whose records have lsns below `lsn`
    /// (never the current segment), oldest first, then syncs the directory.
    /// Returns how many were deleted.
    ///
    /// To leave no record below `lsn` anywhere in the directory (erasure):
    /// [`Journal::rotate`], then `remove_before(`[`Journal::next_lsn`]`)`.
    pub fn remove_before(&mut self, lsn: Lsn) -> Result<usize, Error> {
        self.check_poisoned()?;
        let mut removable = 0;
        while removable + 1 < self.segments.len() && self.segments[removable + 1].0 <= lsn {
            removable += 1;
        }
        let mut removed = 0;
        let mut failure = None;
        for (_, path) in &self.segments[..removable] {
            match remove_file(path) {
                Ok(()) => removed += 1,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        for (first, path) in self.segments.drain(..removed) {
            tracing::debug!(first_lsn = first, file = %path.display(), "journal: removed segment");
        }
        if removed > 0 {
            sync_dir(&self.dir)?;
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(removed),
        }
    }

    /// A reader over the records `from..`[`Journal::next_lsn`], in order,
    /// each checked again as it is read. Writes the append buffer out first
    /// (no sync), so the reader sees every appended record.
    ///
    /// The reader does not borrow the journal, but segments removed by
    /// [`Journal::remove_before`] while it reads make it fail.
    /// [`Error::NotAvailable`] if `from` is below [`Journal::first_lsn`] or
    /// above [`Journal::next_lsn`].
    pub fn records_from(&mut self, from: Lsn) -> Result<JournalReader, Error> {
        self.check_poisoned()?;
        self.write_out()?;
        let first = self.first_lsn();
        if from < first || from > self.next_lsn {
            return Err(Error::NotAvailable { requested: from, first, next: self.next_lsn });
        }
        let start = self.segments.partition_point(|&(first, _)| first <= from).saturating_sub(1);
        Ok(JournalReader {
            segments: self.segments[start..].to_vec(),
            next_segment: 0,
            current: None,
            buf: AlignedVec::new(),
            pos: 0,
            next_lsn: self.segments[start].0,
            from,
            end: self.next_lsn,
            max_record_bytes: self.options.max_record_bytes,
        })
    }

    /// Syncs and closes the journal; returns the durable lsn.
    pub fn close(mut self) -> Result<Lsn, Error> {
        self.sync()
    }

    /// The lsn the next [`Journal::append`] returns.
    pub fn next_lsn(&self) -> Lsn {
        self.next_lsn
    }

    /// Every record below this lsn is durable (as of the last successful
    /// [`Journal::sync`], [`SyncTicket::sync`], rotation or open).
    pub fn durable_lsn(&self) -> Lsn {
        self.durability.durable_lsn.load(Ordering::Acquire)
    }

    /// The lsn of the oldest record held (the first segment's first lsn).
    pub fn first_lsn(&self) -> Lsn {
        self.segments.first().map_or(self.next_lsn, |&(first, _)| first)
    }

    /// How long the `fdatasync` of the most recent [`Journal::sync`] call
    /// took; `None` if that call had nothing to sync (or none was made).
    pub fn last_sync_duration(&self) -> Option<Duration> {
        self.last_sync
    }

    /// The segments, oldest first: first lsn and path.
    pub fn segments(&self) -> impl ExactSizeIterator<Item = (Lsn, &Path)> + '_ {
        self.segments.iter().map(|(first, path)| (*first, path.as_path()))
    }

    /// The journal's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options in force.
    pub fn options(&self) -> &JournalOptions {
        &self.options
    }

    /// Whether an earlier write or sync failure poisoned the journal: every
    /// operation then fails with [`Error::Poisoned`]; reopen to recover.
    pub fn is_poisoned(&self) -> bool {
        self.durability.is_poisoned()
    }

    fn current_first_lsn(&self) -> Lsn {
        self.segments.last().map_or(self.next_lsn, |&(first, _)| first)
    }

    fn current_path(&self) -> &Path {
        self.segments.last().map_or(self.dir.as_path(), |(_, path)| path.as_path())
    }

    fn check_poisoned(&self) -> Result<(), Error> {
        if self.is_poisoned() { Err(Error::Poisoned) } else { Ok(()) }
    }

    /// Writes the buffer to the current segment (no sync).
    fn write_out(&mut self) -> Result<(), Error> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = (&*self.file).write_all(&self.buf) {
            self.durability.poison();
            return Err(Error::io(self.current_path(), e));
        }
        self.buf.clear();
        Ok(())
    }
}

impl Drop for Journal {
    /// Writes buffered records to the file (without syncing), so a clean
    /// exit loses nothing; errors are ignored.
    fn drop(&mut self) {
        if !self.is_poisoned() && !self.buf.is_empty() {
            let _ = (&*self.file).write_all(&self.buf);
        }
    }
}

/// Whether the record rejected at `offset` for its length would be valid
/// under no size limit: then [`JournalOptions::max_record_bytes`] was lowered
/// since it was written, and truncating would destroy a good record.
fn is_valid_but_oversized(bytes: &[u8], offset: usize, lsn: Lsn, reason: &DamageReason) -> bool {
    matches!(reason, DamageReason::LengthTooLarge { .. })
        && matches!(decode_record_at(bytes, offset, lsn, u32::MAX), Ok(Some(_)))
}

/// Creates a segment file holding only its header, synced.
fn create_segment(path: &Path, first_lsn: Lsn) -> Result<File, Error> {
    let mut file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    file.write_all(&encode_segment_header(first_lsn))
        .and_then(|()| file.sync_data())
        .map_err(|e| Error::io(path, e))?;
    Ok(file)
}

/// Replaces the content of a segment whose header is torn with a fresh
/// header, synced.
fn rewrite_torn_segment(path: &Path, first_lsn: Lsn) -> Result<(), Error> {
    let mut file = OpenOptions::new().write(true).open(path).map_err(|e| Error::io(path, e))?;
    file.set_len(0)
        .and_then(|()| file.write_all(&encode_segment_header(first_lsn)))
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(path, e))
}

/// Truncates a segment to `len` bytes, synced.
fn truncate_segment(path: &Path, len: u64) -> Result<(), Error> {
    let file = OpenOptions::new().write(true).open(path).map_err(|e| Error::io(path, e))?;
    file.set_len(len).and_then(|()| file.sync_all()).map_err(|e| Error::io(path, e))
}

/// Reads journal records in lsn order: see [`Journal::records_from`].
///
/// Records are lent one at a time by [`JournalReader::next_record`]; each
/// payload slice starts 16-byte aligned (it lives in an aligned buffer
/// holding the whole segment, at a 16-byte aligned offset), so it can be
/// handed to `rkyv::access` without a copy.
#[derive(Debug)]
pub struct JournalReader {
    segments: Vec<(Lsn, PathBuf)>,
    next_segment: usize,
    /// Index into `segments` of the segment in `buf`.
    current: Option<usize>,
    buf: AlignedVec,
    pos: usize,
    next_lsn: Lsn,
    from: Lsn,
    end: Lsn,
    max_record_bytes: u32,
}

impl JournalReader {
    /// The next record, or `None` once every record below the journal's
    /// `next_lsn` at the time [`Journal::records_from`] was called has been
    /// returned. Damage met while reading is a hard error
    /// ([`Error::Corrupt`], [`Error::BadHeader`], [`Error::MissingRecords`]):
    /// recovery already checked these bytes, so they changed since.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, Error> {
        loop {
            if self.next_lsn >= self.end {
                return Ok(None);
            }
            let Some(current) = self.current else {
                self.load_next_segment()?;
                continue;
            };
            match decode_record_at(&self.buf, self.pos, self.next_lsn, self.max_record_bytes) {
                Ok(Some((record, end))) => {
                    let start = self.pos;
                    self.pos = end;
                    self.next_lsn += 1;
                    if record.lsn >= self.from {
                        let lsn = record.lsn;
                        let payload_len = record.payload.len();
                        let payload_start = start + crate::format::RECORD_HEADER_LEN;
                        let payload = &self.buf[payload_start..payload_start + payload_len];
                        return Ok(Some(Record { lsn, payload, offset: start }));
                    }
                }
                Ok(None) => {
                    if self.next_segment >= self.segments.len() {
                        let path = self.segments[current].1.clone();
                        return Err(Error::MissingRecords { path, expected: self.next_lsn });
                    }
                    self.current = None;
                }
                Err(reason) => {
                    let path = self.segments[current].1.clone();
                    return Err(Error::Corrupt { path, offset: self.pos as u64, reason });
                }
            }
        }
    }

    /// The lsn of the record the next call returns (if any remain).
    pub fn next_lsn(&self) -> Lsn {
        self.next_lsn.max(self.from)
    }

    fn load_next_segment(&mut self) -> Result<(), Error> {
        let Some((first, path)) = self.segments.get(self.next_segment) else {
            let path = self.segments.last().map(|(_, p)| p.clone()).unwrap_or_default();
            return Err(Error::MissingRecords { path, expected: self.next_lsn });
        };
        if *first != self.next_lsn {
            return Err(Error::LsnGap {
                path: path.clone(),
                expected: self.next_lsn,
                found: *first,
            });
        }
        self.buf.clear();
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        self.buf.reserve(usize::try_from(len).unwrap_or(0));
        self.buf.extend_from_reader(&mut file).map_err(|e| Error::io(path, e))?;
        decode_segment_header(&self.buf, Some(*first))
            .map_err(|reason| Error::BadHeader { path: path.clone(), reason })?;
        self.pos = SEGMENT_HEADER_LEN;
        self.current = Some(self.next_segment);
        self.next_segment += 1;
        Ok(())
    }
}
