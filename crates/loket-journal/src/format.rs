//! The byte formats, as pure functions over slices: encoding and decoding of
//! segment headers, records and snapshot files. Nothing here touches the
//! filesystem, so the fuzz checks and the tests can drive it directly.

use std::fmt;
use std::ops::Range;

use crate::Lsn;

/// The first eight bytes of every journal segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"LOKETJNL";
/// The segment format version this crate writes and reads.
pub const SEGMENT_VERSION: u32 = 1;
/// Length of a segment header in bytes. A multiple of [`RECORD_ALIGN`], so
/// the first record starts aligned.
pub const SEGMENT_HEADER_LEN: usize = 32;
/// Length of a record header (length, checksum, lsn) in bytes.
pub const RECORD_HEADER_LEN: usize = 16;
/// Records start at offsets that are multiples of this, so every payload
/// starts 16-byte aligned relative to the start of the segment.
pub const RECORD_ALIGN: usize = 16;

/// The first eight bytes of every snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"LOKETSNP";
/// The snapshot format version this crate writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;
/// Length of a snapshot file header in bytes; the payload follows it.
pub const SNAPSHOT_HEADER_LEN: usize = 40;

const ZEROS: [u8; RECORD_ALIGN] = [0; RECORD_ALIGN];

/// Bytes of zero padding after a payload of `len` bytes.
#[inline]
pub(crate) const fn padding(len: usize) -> usize {
    (RECORD_ALIGN - len % RECORD_ALIGN) % RECORD_ALIGN
}

/// Total encoded size of a record with a payload of `len` bytes, padding
/// included.
#[inline]
pub const fn encoded_record_len(len: usize) -> usize {
    RECORD_HEADER_LEN + len + padding(len)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Checksum of a record: CRC-32 (IEEE) over the eight little-endian lsn bytes
/// followed by the payload.
pub fn record_checksum(lsn: Lsn, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&lsn.to_le_bytes());
    h.update(payload);
    h.finalize()
}

// ---------------------------------------------------------------------------
// Segment header.

/// Encodes the header of a segment whose first record has lsn `first_lsn`.
pub fn encode_segment_header(first_lsn: Lsn) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[0..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    // 12..16 reserved, zero.
    h[16..24].copy_from_slice(&first_lsn.to_le_bytes());
    let crc = crc32fast::hash(&h[0..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    // 28..32 reserved, zero.
    h
}

/// Why a segment header was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// The header was never completely written: the data is shorter than a
    /// header and is a prefix of one (or all zero), or the whole data is
    /// zero. Happens when the process dies right after creating a segment.
    Torn {
        /// How many bytes there were.
        len: usize,
    },
    /// The first eight bytes are not [`SEGMENT_MAGIC`]: not a journal segment.
    BadMagic,
    /// A journal segment of a format version this crate does not read.
    UnsupportedVersion(u32),
    /// The reserved bytes are not zero.
    NonZeroReserved,
    /// The header checksum does not match.
    BadChecksum {
        /// Checksum stored in the header.
        stored: u32,
        /// Checksum computed over the header bytes.
        computed: u32,
    },
    /// The header names another first lsn than the caller expected (the
    /// file name's).
    FirstLsnMismatch {
        /// The lsn expected.
        expected: Lsn,
        /// The lsn in the header.
        found: Lsn,
    },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Torn { len } => write!(f, "torn header ({len} bytes)"),
            Self::BadMagic => f.write_str("bad magic: not a loket journal segment"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported segment format version {v}"),
            Self::NonZeroReserved => f.write_str("reserved header bytes are not zero"),
            Self::BadChecksum { stored, computed } => {
                write!(
                    f,
                    "header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
                )
            }
            Self::FirstLsnMismatch { expected, found } => {
                write!(f, "header says first lsn {found}, file name says {expected}")
            }
        }
    }
}

impl std::error::Error for HeaderError {}

/// Decodes a segment header at the start of `bytes` and returns the segment's
/// first lsn. With `expected_first_lsn`, a different lsn in the header is an
/// error.
pub fn decode_segment_header(
    bytes: &[u8],
    expected_first_lsn: Option<Lsn>,
) -> Result<Lsn, HeaderError> {
    if bytes.len() < SEGMENT_HEADER_LEN {
        let m = bytes.len().min(SEGMENT_MAGIC.len());
        if bytes[..m] == SEGMENT_MAGIC[..m] || bytes.iter().all(|&b| b == 0) {
            return Err(HeaderError::Torn { len: bytes.len() });
        }
        return Err(HeaderError::BadMagic);
    }
    if bytes.iter().all(|&b| b == 0) {
        return Err(HeaderError::Torn { len: bytes.len() });
    }
    let h = &bytes[..SEGMENT_HEADER_LEN];
    if h[0..8] != SEGMENT_MAGIC {
        return Err(HeaderError::BadMagic);
    }
    let version = u32_at(h, 8);
    if version != SEGMENT_VERSION {
        return Err(HeaderError::UnsupportedVersion(version));
    }
    let stored = u32_at(h, 24);
    let computed = crc32fast::hash(&h[0..24]);
    if stored != computed {
        return Err(HeaderError::BadChecksum { stored, computed });
    }
    if u32_at(h, 12) != 0 || u32_at(h, 28) != 0 {
        return Err(HeaderError::NonZeroReserved);
    }
    let first = u64_at(h, 16);
    if let Some(expected) = expected_first_lsn
        && expected != first
    {
        return Err(HeaderError::FirstLsnMismatch { expected, found: first });
    }
    Ok(first)
}

// ---------------------------------------------------------------------------
// Records.

/// Appends the encoding of record `lsn` with `payload` to `out`: length,
/// checksum, lsn, payload, zero padding. `payload.len()` must fit in a `u32`
/// (the journal checks its maximum record size before calling this).
#[inline]
pub fn encode_record(out: &mut Vec<u8>, lsn: Lsn, payload: &[u8]) {
    debug_assert!(u32::try_from(payload.len()).is_ok());
    let len = payload.len() as u32;
    let start = out.len();
    out.reserve(encoded_record_len(payload.len()));
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(payload);
    // One pass over the lsn and payload, already in cache after the copy.
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&ZEROS[..padding(payload.len())]);
}

/// Why decoding stopped before the end of a segment's bytes. Each of these
/// ends the readable part of a segment; none is ever read past.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DamageReason {
    /// Fewer bytes than a record header remain.
    PartialHeader {
        /// Bytes remaining.
        available: usize,
    },
    /// The length field exceeds the maximum record size.
    LengthTooLarge {
        /// The length field.
        len: u32,
        /// The maximum record size in force.
        max: u32,
    },
    /// The record (with padding) runs past the end of the data.
    PartialRecord {
        /// Bytes the record needs, header and padding included.
        needed: usize,
        /// Bytes remaining.
        available: usize,
    },
    /// The record checksum does not match its lsn and payload.
    BadChecksum {
        /// Checksum stored in the record.
        stored: u32,
        /// Checksum computed over the lsn and payload.
        computed: u32,
    },
    /// The checksum matches, but the lsn is not the next one expected.
    UnexpectedLsn {
        /// The lsn expected.
        expected: Lsn,
        /// The lsn in the record.
        found: Lsn,
    },
    /// The padding after the payload is not zero.
    NonZeroPadding,
    /// The lsn expected next is `u64::MAX`, which no record may have.
    LsnExhausted,
}

impl std::error::Error for DamageReason {}

impl fmt::Display for DamageReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PartialHeader { available } => {
                write!(f, "partial record header ({available} of {RECORD_HEADER_LEN} bytes)")
            }
            Self::LengthTooLarge { len, max } => {
                write!(f, "record length {len} exceeds the maximum {max}")
            }
            Self::PartialRecord { needed, available } => {
                write!(f, "partial record ({available} of {needed} bytes)")
            }
            Self::BadChecksum { stored, computed } => {
                write!(
                    f,
                    "record checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
                )
            }
            Self::UnexpectedLsn { expected, found } => {
                write!(f, "record has lsn {found}, expected {expected}")
            }
            Self::NonZeroPadding => f.write_str("non-zero record padding"),
            Self::LsnExhausted => f.write_str("lsn space exhausted"),
        }
    }
}

/// One record decoded from a segment's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The record's lsn.
    pub lsn: Lsn,
    /// The payload, exactly as appended.
    pub payload: &'a [u8],
    /// Offset of the record (its length field) in the segment.
    pub offset: usize,
}

/// Decodes the record starting at `offset` in `bytes`, which must be the
/// lsn `expected_lsn`. Returns `Ok(None)` when `offset` is exactly the end of
/// `bytes`, the record and the offset just past it (padding included) on
/// success, and the reason otherwise. Never reads out of bounds, never
/// allocates.
pub fn decode_record_at(
    bytes: &[u8],
    offset: usize,
    expected_lsn: Lsn,
    max_record_bytes: u32,
) -> Result<Option<(Record<'_>, usize)>, DamageReason> {
    let rest = bytes.get(offset..).unwrap_or(&[]);
    if rest.is_empty() {
        return Ok(None);
    }
    if rest.len() < RECORD_HEADER_LEN {
        return Err(DamageReason::PartialHeader { available: rest.len() });
    }
    if expected_lsn == Lsn::MAX {
        return Err(DamageReason::LsnExhausted);
    }
    let len = u32_at(rest, 0);
    if len > max_record_bytes {
        return Err(DamageReason::LengthTooLarge { len, max: max_record_bytes });
    }
    let payload_len = len as usize;
    let needed = encoded_record_len(payload_len);
    if rest.len() < needed {
        return Err(DamageReason::PartialRecord { needed, available: rest.len() });
    }
    let stored = u32_at(rest, 4);
    let payload_end = RECORD_HEADER_LEN + payload_len;
    let computed = crc32fast::hash(&rest[8..payload_end]);
    if stored != computed {
        return Err(DamageReason::BadChecksum { stored, computed });
    }
    let lsn = u64_at(rest, 8);
    if lsn != expected_lsn {
        return Err(DamageReason::UnexpectedLsn { expected: expected_lsn, found: lsn });
    }
    if rest[payload_end..needed].iter().any(|&b| b != 0) {
        return Err(DamageReason::NonZeroPadding);
    }
    let record = Record { lsn, payload: &rest[RECORD_HEADER_LEN..payload_end], offset };
    Ok(Some((record, offset + needed)))
}

/// Where decoding of a segment stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// Every byte after the header belongs to a valid record.
    Clean,
    /// The bytes from `offset` on do not form a valid next record.
    Damaged {
        /// Offset of the first byte not part of a valid record: the length
        /// a repaired segment is truncated to.
        offset: usize,
        /// Why the record there was rejected.
        reason: DamageReason,
    },
}

/// Lazily decodes the records of one segment held in memory.
///
/// Yields records in order until the data ends or a record is rejected;
/// [`SegmentDecoder::tail`] then says which. A record is yielded only if its
/// checksum matches, its lsn is the next one expected and its padding is
/// zero.
#[derive(Debug, Clone)]
pub struct SegmentDecoder<'a> {
    bytes: &'a [u8],
    first_lsn: Lsn,
    pos: usize,
    next_lsn: Lsn,
    max_record_bytes: u32,
    tail: Option<Tail>,
}

impl<'a> SegmentDecoder<'a> {
    /// Checks the header of the segment in `bytes` (see
    /// [`decode_segment_header`]) and positions the decoder at the first
    /// record.
    pub fn new(
        bytes: &'a [u8],
        expected_first_lsn: Option<Lsn>,
        max_record_bytes: u32,
    ) -> Result<Self, HeaderError> {
        let first_lsn = decode_segment_header(bytes, expected_first_lsn)?;
        Ok(Self {
            bytes,
            first_lsn,
            pos: SEGMENT_HEADER_LEN,
            next_lsn: first_lsn,
            max_record_bytes,
            tail: None,
        })
    }

    /// The first lsn named by the segment header.
    pub fn first_lsn(&self) -> Lsn {
        self.first_lsn
    }

    /// The lsn the next record must have: one past the last record yielded.
    pub fn next_lsn(&self) -> Lsn {
        self.next_lsn
    }

    /// Offset just past the last record yielded (the header's end before the
    /// first): the length of the valid prefix so far.
    pub fn valid_len(&self) -> usize {
        self.pos
    }

    /// `None` while records remain; after the iterator returned `None`, why
    /// it stopped.
    pub fn tail(&self) -> Option<&Tail> {
        self.tail.as_ref()
    }
}

impl<'a> Iterator for SegmentDecoder<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        if self.tail.is_some() {
            return None;
        }
        match decode_record_at(self.bytes, self.pos, self.next_lsn, self.max_record_bytes) {
            Ok(Some((record, end))) => {
                self.pos = end;
                self.next_lsn += 1;
                Some(record)
            }
            Ok(None) => {
                self.tail = Some(Tail::Clean);
                None
            }
            Err(reason) => {
                self.tail = Some(Tail::Damaged { offset: self.pos, reason });
                None
            }
        }
    }
}

/// A whole segment decoded from memory: see [`decode_segment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedSegment {
    /// The first lsn named by the header.
    pub first_lsn: Lsn,
    /// The valid records in order: lsn and the payload's byte range in the
    /// input. Lsns are `first_lsn, first_lsn + 1, ...`.
    pub records: Vec<(Lsn, Range<usize>)>,
    /// Length of the valid prefix: header plus every valid record.
    pub valid_len: usize,
    /// Whether anything follows the valid prefix, and why it was rejected.
    pub tail: Tail,
}

/// Decodes a whole segment held in memory: a pure function, for recovery
/// tests and fuzzing. See [`SegmentDecoder`] for what counts as valid.
pub fn decode_segment(
    bytes: &[u8],
    expected_first_lsn: Option<Lsn>,
    max_record_bytes: u32,
) -> Result<DecodedSegment, HeaderError> {
    let base = bytes.as_ptr() as usize;
    let mut decoder = SegmentDecoder::new(bytes, expected_first_lsn, max_record_bytes)?;
    let mut records = Vec::new();
    for record in decoder.by_ref() {
        let start = record.payload.as_ptr() as usize - base;
        records.push((record.lsn, start..start + record.payload.len()));
    }
    Ok(DecodedSegment {
        first_lsn: decoder.first_lsn(),
        records,
        valid_len: decoder.valid_len(),
        tail: decoder.tail().cloned().unwrap_or(Tail::Clean),
    })
}

// ---------------------------------------------------------------------------
// Snapshot files.

/// Why a snapshot file was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotDamage {
    /// Shorter than a snapshot header.
    TooShort {
        /// Bytes there were.
        len: u64,
    },
    /// The first eight bytes are not [`SNAPSHOT_MAGIC`].
    BadMagic,
    /// A snapshot of a format version this crate does not read.
    UnsupportedVersion(u32),
    /// The reserved bytes are not zero.
    NonZeroReserved,
    /// The payload length in the header does not match the file's length.
    LengthMismatch {
        /// Payload length according to the header.
        header: u64,
        /// Payload bytes actually present.
        actual: u64,
    },
    /// The checksum over header and payload does not match.
    BadChecksum {
        /// Checksum stored in the header.
        stored: u32,
        /// Checksum computed.
        computed: u32,
    },
    /// The header names another lsn than the file name.
    LsnMismatch {
        /// The lsn in the file name.
        expected: Lsn,
        /// The lsn in the header.
        found: Lsn,
    },
}

impl fmt::Display for SnapshotDamage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len } => write!(f, "too short for a snapshot header ({len} bytes)"),
            Self::BadMagic => f.write_str("bad magic: not a loket snapshot"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported snapshot format version {v}"),
            Self::NonZeroReserved => f.write_str("reserved header bytes are not zero"),
            Self::LengthMismatch { header, actual } => {
                write!(f, "header says {header} payload bytes, file holds {actual}")
            }
            Self::BadChecksum { stored, computed } => {
                write!(
                    f,
                    "snapshot checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
                )
            }
            Self::LsnMismatch { expected, found } => {
                write!(f, "header says lsn {found}, file name says {expected}")
            }
        }
    }
}

impl std::error::Error for SnapshotDamage {}

/// A checked snapshot header: what follows it must be `payload_len` bytes
/// whose checksum, continued from the header's, equals `checksum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// The lsn the snapshot covers: it reflects every record below it.
    pub lsn: Lsn,
    /// Payload length in bytes.
    pub payload_len: u64,
    /// Stored checksum over header bytes `0..32` and the payload.
    pub checksum: u32,
}

/// Encodes the header of a snapshot at `lsn` of `payload`.
pub fn encode_snapshot_header(lsn: Lsn, payload: &[u8]) -> [u8; SNAPSHOT_HEADER_LEN] {
    let mut h = [0u8; SNAPSHOT_HEADER_LEN];
    h[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    h[8..12].copy_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    // 12..16 reserved, zero.
    h[16..24].copy_from_slice(&lsn.to_le_bytes());
    h[24..32].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&h[0..32]);
    crc.update(payload);
    h[32..36].copy_from_slice(&crc.finalize().to_le_bytes());
    // 36..40 reserved, zero.
    h
}

/// Checks the fixed fields of a snapshot header (`bytes` holds at least the
/// header) against a file of `file_len` bytes. The checksum is verified by
/// the caller once the payload is read ([`snapshot_checksum_matches`]).
pub fn decode_snapshot_header(
    bytes: &[u8],
    file_len: u64,
) -> Result<SnapshotHeader, SnapshotDamage> {
    if bytes.len() < SNAPSHOT_HEADER_LEN || file_len < SNAPSHOT_HEADER_LEN as u64 {
        return Err(SnapshotDamage::TooShort { len: file_len.min(bytes.len() as u64) });
    }
    let h = &bytes[..SNAPSHOT_HEADER_LEN];
    if h[0..8] != SNAPSHOT_MAGIC {
        return Err(SnapshotDamage::BadMagic);
    }
    let version = u32_at(h, 8);
    if version != SNAPSHOT_VERSION {
        return Err(SnapshotDamage::UnsupportedVersion(version));
    }
    if u32_at(h, 12) != 0 || u32_at(h, 36) != 0 {
        return Err(SnapshotDamage::NonZeroReserved);
    }
    let payload_len = u64_at(h, 24);
    let actual = file_len - SNAPSHOT_HEADER_LEN as u64;
    if payload_len != actual {
        return Err(SnapshotDamage::LengthMismatch { header: payload_len, actual });
    }
    Ok(SnapshotHeader { lsn: u64_at(h, 16), payload_len, checksum: u32_at(h, 32) })
}

/// Verifies the checksum of a snapshot given its header bytes and payload.
pub fn snapshot_checksum_matches(
    header_bytes: &[u8; SNAPSHOT_HEADER_LEN],
    header: &SnapshotHeader,
    payload: &[u8],
) -> Result<(), SnapshotDamage> {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header_bytes[0..32]);
    crc.update(payload);
    let computed = crc.finalize();
    if computed != header.checksum {
        return Err(SnapshotDamage::BadChecksum { stored: header.checksum, computed });
    }
    Ok(())
}

/// Decodes a whole snapshot file held in memory: its lsn and the payload's
/// byte range. A pure function, for fuzzing.
pub fn decode_snapshot(bytes: &[u8]) -> Result<(Lsn, Range<usize>), SnapshotDamage> {
    let header = decode_snapshot_header(bytes, bytes.len() as u64)?;
    let mut header_bytes = [0u8; SNAPSHOT_HEADER_LEN];
    header_bytes.copy_from_slice(&bytes[..SNAPSHOT_HEADER_LEN]);
    let payload = &bytes[SNAPSHOT_HEADER_LEN..];
    snapshot_checksum_matches(&header_bytes, &header, payload)?;
    Ok((header.lsn, SNAPSHOT_HEADER_LEN..bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u32 = 1 << 20;

    fn segment(first: Lsn, payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = encode_segment_header(first).to_vec();
        for (i, p) in payloads.iter().enumerate() {
            encode_record(&mut out, first + i as u64, p);
        }
        out
    }

    #[test]
    fn records_round_trip_and_payloads_are_aligned() {
        let payloads: [&[u8]; 4] = [b"", b"a", b"0123456789abcdef", &[7u8; 33]];
        let bytes = segment(5, &payloads);
        let d = decode_segment(&bytes, Some(5), MAX).unwrap();
        assert_eq!(d.first_lsn, 5);
        assert_eq!(d.tail, Tail::Clean);
        assert_eq!(d.valid_len, bytes.len());
        assert_eq!(d.records.len(), 4);
        for (i, (lsn, range)) in d.records.iter().enumerate() {
            assert_eq!(*lsn, 5 + i as u64);
            assert_eq!(&bytes[range.clone()], payloads[i]);
            assert_eq!(range.start % RECORD_ALIGN, 0);
        }
    }

    #[test]
    fn record_layout_is_length_checksum_lsn_payload_padding() {
        let mut out = Vec::new();
        encode_record(&mut out, 0x0102_0304_0506_0708, b"abc");
        assert_eq!(out.len(), 32);
        assert_eq!(&out[0..4], &3u32.to_le_bytes());
        assert_eq!(&out[4..8], &record_checksum(0x0102_0304_0506_0708, b"abc").to_le_bytes());
        assert_eq!(&out[8..16], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&out[16..19], b"abc");
        assert!(out[19..].iter().all(|&b| b == 0));
    }

    #[test]
    fn every_truncation_yields_exactly_the_complete_records() {
        let payloads: [&[u8]; 3] = [b"first", b"second record", &[1u8; 40]];
        let bytes = segment(0, &payloads);
        let mut ends = vec![SEGMENT_HEADER_LEN];
        for p in payloads {
            ends.push(ends.last().unwrap() + encoded_record_len(p.len()));
        }
        for cut in SEGMENT_HEADER_LEN..=bytes.len() {
            let d = decode_segment(&bytes[..cut], Some(0), MAX).unwrap();
            let complete = ends.iter().filter(|&&e| e <= cut).count() - 1;
            assert_eq!(d.records.len(), complete, "cut at {cut}");
            assert_eq!(d.valid_len, ends[complete]);
            assert_eq!(d.tail == Tail::Clean, cut == ends[complete]);
        }
    }

    #[test]
    fn every_flipped_byte_after_the_header_drops_its_record_and_the_rest() {
        let payloads: [&[u8]; 3] = [b"first", b"second record", &[1u8; 40]];
        let bytes = segment(0, &payloads);
        let mut ends = vec![SEGMENT_HEADER_LEN];
        for p in payloads {
            ends.push(ends.last().unwrap() + encoded_record_len(p.len()));
        }
        for at in SEGMENT_HEADER_LEN..bytes.len() {
            for flip in [0x01u8, 0x80, 0xFF] {
                let mut b = bytes.clone();
                b[at] ^= flip;
                let d = decode_segment(&b, Some(0), MAX).unwrap();
                let intact = ends.iter().filter(|&&e| e <= at).count() - 1;
                assert_eq!(d.records.len(), intact, "flip {flip:#x} at {at}");
                assert!(matches!(d.tail, Tail::Damaged { offset, .. } if offset == ends[intact]));
            }
        }
    }

    #[test]
    fn huge_length_is_damage_not_an_allocation() {
        let mut bytes = segment(0, &[b"ok"]);
        let at = bytes.len();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[0u8; 12]);
        let d = decode_segment(&bytes, Some(0), MAX).unwrap();
        assert_eq!(d.records.len(), 1);
        assert_eq!(
            d.tail,
            Tail::Damaged {
                offset: at,
                reason: DamageReason::LengthTooLarge { len: u32::MAX, max: MAX }
            }
        );
    }

    #[test]
    fn a_valid_record_with_the_wrong_lsn_is_rejected() {
        let mut bytes = segment(0, &[b"zero"]);
        encode_record(&mut bytes, 2, b"two");
        let d = decode_segment(&bytes, None, MAX).unwrap();
        assert_eq!(d.records.len(), 1);
        assert!(matches!(
            d.tail,
            Tail::Damaged { reason: DamageReason::UnexpectedLsn { expected: 1, found: 2 }, .. }
        ));
    }

    #[test]
    fn zero_fill_after_the_last_record_is_damage() {
        let mut bytes = segment(3, &[b"x"]);
        bytes.extend_from_slice(&[0u8; 64]);
        let d = decode_segment(&bytes, Some(3), MAX).unwrap();
        assert_eq!(d.records.len(), 1);
        assert!(matches!(d.tail, Tail::Damaged { reason: DamageReason::BadChecksum { .. }, .. }));
    }

    #[test]
    fn header_classification() {
        let h = encode_segment_header(9);
        assert_eq!(decode_segment_header(&h, Some(9)), Ok(9));
        assert_eq!(
            decode_segment_header(&h, Some(8)),
            Err(HeaderError::FirstLsnMismatch { expected: 8, found: 9 })
        );
        for cut in 0..SEGMENT_HEADER_LEN {
            assert_eq!(decode_segment_header(&h[..cut], None), Err(HeaderError::Torn { len: cut }));
        }
        assert_eq!(decode_segment_header(&[0u8; 100], None), Err(HeaderError::Torn { len: 100 }));
        assert_eq!(decode_segment_header(b"hello", None), Err(HeaderError::BadMagic));
        let mut v = h;
        v[8] = 2;
        assert_eq!(decode_segment_header(&v, None), Err(HeaderError::UnsupportedVersion(2)));
        let mut c = h;
        c[16] ^= 1;
        assert!(matches!(decode_segment_header(&c, None), Err(HeaderError::BadChecksum { .. })));
    }

    #[test]
    fn snapshot_round_trip_and_damage() {
        let payload = b"state of the world";
        let mut file = encode_snapshot_header(42, payload).to_vec();
        file.extend_from_slice(payload);
        let (lsn, range) = decode_snapshot(&file).unwrap();
        assert_eq!(lsn, 42);
        assert_eq!(&file[range], payload);

        assert!(matches!(
            decode_snapshot(&file[..file.len() - 1]),
            Err(SnapshotDamage::LengthMismatch { .. })
        ));
        assert!(matches!(decode_snapshot(&file[..10]), Err(SnapshotDamage::TooShort { .. })));
        for at in 0..file.len() {
            let mut b = file.clone();
            b[at] ^= 0x20;
            assert!(decode_snapshot(&b).is_err(), "flip at {at} accepted");
        }
    }
}
