//! The journal on real files: recovery from every kind of damage, rotation,
//! removal of old segments, and a random crash-and-reopen property.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use loket_journal::format::{SEGMENT_HEADER_LEN, encoded_record_len};
use loket_journal::{
    DamageReason, Error, HeaderError, Journal, JournalOptions, Lsn, Repair, SnapshotStore,
    decode_segment, segment_file_name,
};
use proptest::prelude::*;

fn small(segment_bytes: u64) -> JournalOptions {
    JournalOptions { segment_bytes, buffer_bytes: 256, ..JournalOptions::default() }
}

fn payload(i: u64) -> Vec<u8> {
    format!("record {i} {}", "x".repeat((i % 37) as usize)).into_bytes()
}

fn read_all(journal: &mut Journal, from: Lsn) -> Vec<(Lsn, Vec<u8>)> {
    let mut reader = journal.records_from(from).unwrap();
    let mut out = Vec::new();
    while let Some(record) = reader.next_record().unwrap() {
        assert_eq!(
            record.payload.as_ptr() as usize % 16,
            0,
            "payload of {} not aligned",
            record.lsn
        );
        out.push((record.lsn, record.payload.to_vec()));
    }
    out
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

fn write_journal(dir: &Path, options: JournalOptions, n: u64) -> Journal {
    let (mut journal, _) = Journal::open(dir, options).unwrap();
    for i in 0..n {
        assert_eq!(journal.append(&payload(i)).unwrap(), i);
    }
    assert_eq!(journal.sync().unwrap(), n);
    journal
}

#[test]
fn fresh_journal_round_trips_and_reopens_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, report) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    assert!(report.created);
    assert_eq!((report.first_lsn, report.next_lsn, report.dropped_bytes()), (0, 0, 0));
    drop(journal);
    let journal = write_journal(dir.path(), JournalOptions::default(), 100);
    drop(journal);

    let (mut journal, report) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    assert!(!report.created);
    assert_eq!(report.next_lsn, 100);
    assert_eq!(report.records(), 100);
    assert_eq!(report.repair, None);
    assert_eq!(journal.durable_lsn(), 100);
    let records = read_all(&mut journal, 0);
    assert_eq!(records.len(), 100);
    for (i, (lsn, bytes)) in records.iter().enumerate() {
        assert_eq!(*lsn, i as u64);
        assert_eq!(bytes, &payload(i as u64));
    }
    assert_eq!(read_all(&mut journal, 60).first().map(|r| r.0), Some(60));
    assert!(read_all(&mut journal, 100).is_empty());
    assert!(matches!(
        journal.records_from(101),
        Err(Error::NotAvailable { requested: 101, first: 0, next: 100 })
    ));
}

#[test]
fn a_fresh_journal_starts_at_the_given_lsn() {
    let dir = tempfile::tempdir().unwrap();
    let options = JournalOptions { start_lsn: 500, ..JournalOptions::default() };
    let (mut journal, report) = Journal::open(dir.path(), options.clone()).unwrap();
    assert_eq!((report.first_lsn, report.next_lsn), (500, 500));
    assert_eq!(journal.append(b"a").unwrap(), 500);
    journal.close().unwrap();
    assert!(dir.path().join(segment_file_name(500)).exists());
    // start_lsn is ignored once segments exist.
    let (mut journal, report) =
        Journal::open(dir.path(), JournalOptions { start_lsn: 9, ..JournalOptions::default() })
            .unwrap();
    assert_eq!((report.first_lsn, report.next_lsn), (500, 501));
    assert!(matches!(journal.records_from(499), Err(Error::NotAvailable { .. })));
    assert_eq!(read_all(&mut journal, 500), vec![(500, b"a".to_vec())]);
}

#[test]
fn sync_is_free_when_nothing_is_pending_and_reports_its_duration() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    assert_eq!(journal.sync().unwrap(), 0);
    assert_eq!(journal.last_sync_duration(), None);
    journal.append(b"one").unwrap();
    assert_eq!(journal.durable_lsn(), 0);
    assert_eq!(journal.sync().unwrap(), 1);
    assert!(journal.last_sync_duration().is_some());
    assert_eq!(journal.durable_lsn(), 1);
    assert_eq!(journal.sync().unwrap(), 1);
    assert_eq!(journal.last_sync_duration(), None);
}

#[test]
fn a_sync_ticket_synced_on_another_thread_advances_the_durable_lsn() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open(dir.path(), small(1 << 20)).unwrap();
    for i in 0..10 {
        journal.append(&payload(i)).unwrap();
    }
    let ticket = journal.prepare_sync().unwrap();
    assert_eq!(ticket.lsn(), 10);
    // The journal goes on appending while the ticket is synced elsewhere.
    let syncer = std::thread::spawn(move || {
        ticket.sync().unwrap();
        ticket
    });
    for i in 10..15 {
        journal.append(&payload(i)).unwrap();
    }
    let ticket = syncer.join().unwrap();
    assert_eq!(journal.durable_lsn(), 10);
    // Already durable: a second sync of the same ticket does no syscall.
    assert_eq!(ticket.sync().unwrap(), std::time::Duration::ZERO);
    // A ticket survives rotation, which syncs the segment it leaves, and
    // an older ticket never moves the durable lsn backwards.
    let later = journal.prepare_sync().unwrap();
    journal.rotate().unwrap();
    assert_eq!(journal.durable_lsn(), 15);
    later.sync().unwrap();
    ticket.sync().unwrap();
    assert_eq!(journal.durable_lsn(), 15);
    drop(journal);
    let (_, report) = Journal::open(dir.path(), small(1 << 20)).unwrap();
    assert_eq!(report.next_lsn, 15);
}
#[test]
fn unsynced_records_are_readable_and_written_out_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    for i in 0..5 {
        journal.append(&payload(i)).unwrap();
    }
    assert_eq!(read_all(&mut journal, 0).len(), 5);
    journal.append(&payload(5)).unwrap();
    drop(journal);
    let (_, report) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    assert_eq!(report.next_lsn, 6);
}

#[test]
fn oversized_records_are_refused_without_effect() {
    let dir = tempfile::tempdir().unwrap();
    let options = JournalOptions { max_record_bytes: 10, ..JournalOptions::default() };
    let (mut journal, _) = Journal::open(dir.path(), options).unwrap();
    assert!(matches!(journal.append(&[0; 11]), Err(Error::RecordTooLarge { len: 11, max: 10 })));
    assert_eq!(journal.append(&[0; 10]).unwrap(), 0);
    assert_eq!(journal.next_lsn(), 1);
}

#[test]
fn rotation_by_size_and_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open(dir.path(), small(200)).unwrap();
    for i in 0..20 {
        journal.append(&payload(i)).unwrap();
    }
    let by_size = journal.segments().len();
    assert!(by_size > 3, "only {by_size} segments");
    for (first, path) in journal.segments() {
        assert_eq!(path.file_name().unwrap().to_str().unwrap(), segment_file_name(first));
    }
    // Rotation made every finished segment durable.
    let last_first = journal.segments().last().unwrap().0;
    assert!(journal.durable_lsn() >= last_first);

    journal.rotate().unwrap();
    assert_eq!(journal.segments().last().unwrap().0, 20);
    journal.rotate().unwrap(); // empty: no new segment
    assert_eq!(journal.segments().len(), by_size + 1);
    assert_eq!(journal.durable_lsn(), 20);
    journal.append(b"after").unwrap();
    drop(journal);

    let (mut journal, report) = Journal::open(dir.path(), small(200)).unwrap();
    assert_eq!(report.segments, by_size + 1);
    assert_eq!(report.next_lsn, 21);
    let records = read_all(&mut journal, 7);
    assert_eq!(records.len(), 14);
    assert_eq!(records[0], (7, payload(7)));
    assert_eq!(records[13], (20, b"after".to_vec()));
}

#[test]
fn a_damaged_tail_of_the_last_segment_is_truncated() {
    for (garbage, reason_is) in [
        (b"partial".to_vec(), "partial header"),
        (vec![0u8; 100], "zeros"),
        (vec![0xFF; 100], "huge length"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        drop(write_journal(dir.path(), small(1 << 20), 10));
        let file = segment_files(dir.path()).pop().unwrap();
        let good_len = fs::metadata(&file).unwrap().len();
        OpenOptions::new().append(true).open(&file).unwrap().write_all(&garbage).unwrap();

        let (mut journal, report) = Journal::open(dir.path(), small(1 << 20)).unwrap();
        assert_eq!(report.next_lsn, 10, "{reason_is}");
        assert_eq!(report.dropped_bytes(), garbage.len() as u64, "{reason_is}");
        match &report.repair {
            Some(Repair::TruncatedTail { path, offset, reason, .. }) => {
                assert_eq!(path, &file);
                assert_eq!(*offset, good_len);
                match reason_is {
                    "partial header" => {
                        assert!(matches!(reason, DamageReason::PartialHeader { available: 7 }))
                    }
                    "zeros" => assert!(matches!(reason, DamageReason::BadChecksum { .. })),
                    _ => assert!(matches!(reason, DamageReason::LengthTooLarge { .. })),
                }
            }
            other => panic!("{reason_is}: {other:?}"),
        }
        assert_eq!(fs::metadata(&file).unwrap().len(), good_len);
        assert_eq!(read_all(&mut journal, 0).len(), 10);
        assert_eq!(journal.append(b"more").unwrap(), 10);
        drop(journal);
        let (_, report) = Journal::open(dir.path(), small(1 << 20)).unwrap();
        assert_eq!((report.next_lsn, report.repair), (11, None));
    }
}

#[test]
fn damage_in_an_earlier_segment_is_a_hard_error_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    drop(write_journal(dir.path(), small(200), 20));
    let files = segment_files(dir.path());
    assert!(files.len() >= 3);
    let victim = &files[1];
    let mut bytes = fs::read(victim).unwrap();
    let at = SEGMENT_HEADER_LEN + 20;
    bytes[at] ^= 0x01;
    fs::write(victim, &bytes).unwrap();
    match Journal::open(dir.path(), small(200)) {
        Err(Error::Corrupt { path, offset, reason: DamageReason::BadChecksum { .. } }) => {
            assert_eq!(&path, victim);
            assert_eq!(offset, SEGMENT_HEADER_LEN as u64);
        }
        other => panic!("{other:?}"),
    }
    // The file is left alone.
    assert_eq!(fs::read(victim).unwrap(), bytes);

    // Trailing bytes after the last record of an earlier segment too.
    let dir = tempfile::tempdir().unwrap();
    drop(write_journal(dir.path(), small(200), 20));
    let files = segment_files(dir.path());
    let len = fs::metadata(&files[0]).unwrap().len();
    OpenOptions::new().append(true).open(&files[0]).unwrap().write_all(&[0; 16]).unwrap();
    match Journal::open(dir.path(), small(200)) {
        Err(Error::Corrupt { path, offset, .. }) => {
            assert_eq!((path, offset), (files[0].clone(), len))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_missing_segment_is_an_lsn_gap() {
    let dir = tempfile::tempdir().unwrap();
    drop(write_journal(dir.path(), small(200), 20));
    let files = segment_files(dir.path());
    fs::remove_file(&files[1]).unwrap();
    match Journal::open(dir.path(), small(200)) {
        Err(Error::LsnGap { path, expected, found }) => {
            assert_eq!(path, files[2]);
            assert!(found > expected);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn foreign_files_are_hard_errors() {
    let dir = tempfile::tempdir().unwrap();
    drop(write_journal(dir.path(), small(1 << 20), 3));
    let file = segment_files(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&file).unwrap();
    bytes[..8].copy_from_slice(b"SOMETHNG");
    fs::write(&file, &bytes).unwrap();
    assert!(matches!(
        Journal::open(dir.path(), small(1 << 20)),
        Err(Error::BadHeader { reason: HeaderError::BadMagic, .. })
    ));

    let dir = tempfile::tempdir().unwrap();
    drop(write_journal(dir.path(), small(1 << 20), 3));
    fs::write(dir.path().join("journal-7.log"), b"?").unwrap();
    assert!(matches!(Journal::open(dir.path(), small(1 << 20)), Err(Error::ForeignFile { .. })));

    // Unrelated files are ignored.
    let dir = tempfile::tempdir().unwrap();
    drop(write_journal(dir.path(), small(1 << 20), 3));
    fs::write(dir.path().join("README"), b"hello").unwrap();
    assert_eq!(Journal::open(dir.path(), small(1 << 20)).unwrap().1.next_lsn, 3);

    // A segment whose header names another lsn than its file name.
    let dir = tempfile::tempdir().unwrap();
    drop(write_journal(dir.path(), small(1 << 20), 3));
    let file = segment_files(dir.path()).pop().unwrap();
    fs::rename(&file, dir.path().join(segment_file_name(0).replace("0.log", "1.log"))).unwrap();
    assert!(matches!(
        Journal::open(dir.path(), small(1 << 20)),
        Err(Error::BadHeader {
            reason: HeaderError::FirstLsnMismatch { expected: 1, found: 0 },
            ..
        })
    ));
}

#[test]
fn a_torn_header_of_the_last_segment_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = write_journal(dir.path(), small(1 << 20), 5);
    journal.rotate().unwrap();
    drop(journal);
    let last = dir.path().join(segment_file_name(5));
    let header = fs::read(&last).unwrap();
    fs::write(&last, &header[..13]).unwrap();

    let (mut journal, report) = Journal::open(dir.path(), small(1 << 20)).unwrap();
    assert_eq!(
        report.repair,
        Some(Repair::RewroteTornHeader { path: last.clone(), dropped_bytes: 13 })
    );
    assert_eq!(report.next_lsn, 5);
    assert_eq!(fs::read(&last).unwrap(), header);
    assert_eq!(journal.append(b"x").unwrap(), 5);
    drop(journal);
    assert_eq!(Journal::open(dir.path(), small(1 << 20)).unwrap().1.next_lsn, 6);

    // An empty file in an earlier position is not a torn last segment.
    let first = dir.path().join(segment_file_name(0));
    fs::write(&first, b"").unwrap();
    assert!(matches!(
        Journal::open(dir.path(), small(1 << 20)),
        Err(Error::BadHeader { reason: HeaderError::Torn { len: 0 }, .. })
    ));
}

#[test]
fn remove_before_deletes_only_whole_segments_below_the_lsn() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = write_journal(dir.path(), small(200), 30);
    let segments: Vec<Lsn> = journal.segments().map(|(first, _)| first).collect();
    assert!(segments.len() >= 4);
    // An lsn inside the third segment removes the first two only.
    let cut = segments[2] + 1;
    assert_eq!(journal.remove_before(cut).unwrap(), 2);
    assert_eq!(journal.first_lsn(), segments[2]);
    assert_eq!(segment_files(dir.path()).len(), segments.len() - 2);
    assert!(matches!(journal.records_from(segments[2] - 1), Err(Error::NotAvailable { .. })));
    assert_eq!(read_all(&mut journal, segments[2]).len() as u64, 30 - segments[2]);
    // Nothing to remove: no segment lies wholly below.
    assert_eq!(journal.remove_before(segments[2]).unwrap(), 0);
    // Never the current segment.
    assert_eq!(journal.remove_before(u64::MAX).unwrap(), segments.len() - 3);
    assert_eq!(journal.segments().len(), 1);
    drop(journal);
    let (_, report) = Journal::open(dir.path(), small(200)).unwrap();
    assert_eq!((report.first_lsn, report.next_lsn), (*segments.last().unwrap(), 30));
}

#[test]
fn erasure_leaves_no_earlier_record_in_any_file() {
    let root = tempfile::tempdir().unwrap();
    let journal_dir = root.path().join("journal");
    let snapshot_dir = root.path().join("snapshots");
    let snapshots = SnapshotStore::open(&snapshot_dir).unwrap();
    let mut journal = write_journal(&journal_dir, small(300), 40);
    snapshots.write(10, b"old state with the customer").unwrap();
    snapshots.write(25, b"newer state with the customer").unwrap();

    journal.rotate().unwrap();
    let cut = journal.next_lsn();
    snapshots.write(cut, b"state without the customer").unwrap();
    journal.remove_before(cut).unwrap();
    snapshots.prune(1).unwrap();

    for path in segment_files(&journal_dir) {
        let bytes = fs::read(&path).unwrap();
        let decoded = decode_segment(&bytes, None, u32::MAX).unwrap();
        assert!(decoded.first_lsn >= cut, "{} starts at {}", path.display(), decoded.first_lsn);
        assert!(decoded.records.is_empty());
    }
    let names: Vec<_> =
        fs::read_dir(&snapshot_dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 1);
    assert_eq!(snapshots.latest().unwrap().unwrap().lsn, cut);
    journal.append(b"life goes on").unwrap();
    drop(journal);
    let (_, report) = Journal::open(&journal_dir, small(300)).unwrap();
    assert_eq!((report.first_lsn, report.next_lsn), (cut, cut + 1));
}

#[derive(Debug, Clone)]
enum Damage {
    /// Cut the last segment to this fraction of its length.
    Truncate(f64),
    /// XOR a byte after the header with the value.
    Flip(f64, u8),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (0.0..=1.0f64).prop_map(Damage::Truncate),
        (0.0..1.0f64, 1u8..=255).prop_map(|(at, x)| Damage::Flip(at, x)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Append across rotations, damage the last segment at a random byte,
    /// reopen: exactly the records wholly before the damage come back. Then
    /// append more and reopen again.
    #[test]
    fn recovery_returns_exactly_the_fully_written_prefix(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..120), 1..40),
        rotate_after in prop::collection::vec(any::<bool>(), 40),
        segment_bytes in 64u64..1024,
        buffer_bytes in 0usize..512,
        damage in damage(),
        more in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..60), 0..8),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let options = JournalOptions { segment_bytes, buffer_bytes, ..JournalOptions::default() };
        let (mut journal, _) = Journal::open(dir.path(), options.clone()).unwrap();
        for (i, p) in payloads.iter().enumerate() {
            prop_assert_eq!(journal.append(p).unwrap(), i as u64);
            if rotate_after[i % rotate_after.len()] && i % 5 == 4 {
                journal.rotate().unwrap();
            }
        }
        journal.sync().unwrap();
        let last_first = journal.segments().last().unwrap().0;
        drop(journal);

        let last = dir.path().join(segment_file_name(last_first));
        let mut bytes = fs::read(&last).unwrap();
        let mut ends = Vec::new();
        let mut end = SEGMENT_HEADER_LEN;
        for p in &payloads[last_first as usize..] {
            end += encoded_record_len(p.len());
            ends.push(end);
        }
        prop_assert_eq!(end, bytes.len());
        let (point, torn_header) = match damage {
            Damage::Truncate(f) => {
                let cut = (bytes.len() as f64 * f) as usize;
                bytes.truncate(cut);
                (cut, cut < SEGMENT_HEADER_LEN)
            }
            Damage::Flip(f, x) => {
                if bytes.len() > SEGMENT_HEADER_LEN {
                    let at = SEGMENT_HEADER_LEN + ((bytes.len() - SEGMENT_HEADER_LEN) as f64 * f) as usize;
                    bytes[at] ^= x;
                    (at, false)
                } else {
                    (bytes.len(), false)
                }
            }
        };
        let original_len = fs::metadata(&last).unwrap().len();
        fs::write(&last, &bytes).unwrap();
        let survivors_in_last = ends.iter().filter(|&&e| e <= point).count();
        let expected = last_first as usize + survivors_in_last;

        let (mut journal, report) = Journal::open(dir.path(), options.clone()).unwrap();
        prop_assert_eq!(report.next_lsn, expected as u64);
        let valid_end = if survivors_in_last == 0 { SEGMENT_HEADER_LEN } else { ends[survivors_in_last - 1] };
        if torn_header {
            prop_assert_eq!(report.dropped_bytes(), bytes.len() as u64);
        } else {
            prop_assert_eq!(report.dropped_bytes(), (bytes.len() - valid_end) as u64);
        }
        prop_assert!(fs::metadata(&last).unwrap().len() <= original_len);
        let records = read_all(&mut journal, 0);
        prop_assert_eq!(records.len(), expected);
        for (lsn, p) in &records {
            prop_assert_eq!(p, &payloads[*lsn as usize]);
        }

        for (i, p) in more.iter().enumerate() {
            prop_assert_eq!(journal.append(p).unwrap(), (expected + i) as u64);
        }
        journal.sync().unwrap();
        drop(journal);
        let (mut journal, report) = Journal::open(dir.path(), options).unwrap();
        prop_assert_eq!(report.repair, None);
        prop_assert_eq!(report.next_lsn, (expected + more.len()) as u64);
        let records = read_all(&mut journal, 0);
        let want: Vec<&Vec<u8>> = payloads[..expected].iter().chain(more.iter()).collect();
        prop_assert_eq!(records.len(), want.len());
        for ((lsn, got), want) in records.iter().zip(want) {
            prop_assert_eq!(got, want, "lsn {}", lsn);
        }
    }
}

#[test]
fn lowering_max_record_bytes_fails_instead_of_truncating_good_records() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    journal.append(&[1; 10]).unwrap();
    journal.append(&[2; 100]).unwrap();
    journal.close().unwrap();
    let lowered = JournalOptions { max_record_bytes: 50, ..JournalOptions::default() };
    assert!(matches!(
        Journal::open(dir.path(), lowered),
        Err(Error::Corrupt { reason: DamageReason::LengthTooLarge { len: 100, max: 50 }, .. })
    ));
    assert_eq!(Journal::open(dir.path(), JournalOptions::default()).unwrap().1.next_lsn, 2);
}
