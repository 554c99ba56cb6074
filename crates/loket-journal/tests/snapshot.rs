//! The snapshot store on real files: atomic writes, fallback past damage,
//! pruning.

use std::fs;

use loket_journal::{Error, SnapshotDamage, SnapshotStore, snapshot_file_name};

#[test]
fn write_then_latest_round_trips_in_an_aligned_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    assert!(store.latest().unwrap().is_none());
    let path = store.write(7, b"seven").unwrap();
    assert_eq!(path, dir.path().join(snapshot_file_name(7)));
    let payload: Vec<u8> = (0..10_000u32).map(|i| (i * 31) as u8).collect();
    store.write(12, &payload).unwrap();
    let latest = store.latest().unwrap().unwrap();
    assert_eq!(latest.lsn, 12);
    assert_eq!(latest.bytes.as_slice(), payload.as_slice());
    assert_eq!(latest.bytes.as_ptr() as usize % 16, 0);
    assert_eq!(store.read(7).unwrap().bytes.as_slice(), b"seven");
    assert_eq!(store.list().unwrap().iter().map(|s| s.0).collect::<Vec<_>>(), vec![7, 12]);
    // Rewriting an lsn replaces it.
    store.write(12, b"").unwrap();
    assert!(store.latest().unwrap().unwrap().bytes.is_empty());
}

#[test]
fn a_leftover_tmp_file_is_ignored_and_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    SnapshotStore::open(dir.path()).unwrap().write(10, b"ten").unwrap();
    // A crash mid-write of a newer snapshot leaves its .tmp behind.
    let tmp = dir.path().join(snapshot_file_name(20).replace(".snap", ".tmp"));
    fs::write(&tmp, b"LOKETSNP half written").unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    assert!(!tmp.exists());
    let latest = store.latest().unwrap().unwrap();
    assert_eq!((latest.lsn, latest.bytes.as_slice()), (10, &b"ten"[..]));
}

#[test]
fn a_corrupt_newest_snapshot_falls_back_to_an_older_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    store.write(10, b"older state").unwrap();
    let newest = store.write(20, b"newest state").unwrap();

    let mut bytes = fs::read(&newest).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    fs::write(&newest, &bytes).unwrap();
    assert!(matches!(
        store.read(20),
        Err(Error::CorruptSnapshot { reason: SnapshotDamage::BadChecksum { .. }, .. })
    ));
    assert_eq!(store.latest().unwrap().unwrap().lsn, 10);

    // Truncated, and misnamed, newest snapshots too.
    fs::write(&newest, &bytes[..30]).unwrap();
    assert_eq!(store.latest().unwrap().unwrap().lsn, 10);
    fs::remove_file(&newest).unwrap();
    fs::copy(dir.path().join(snapshot_file_name(10)), dir.path().join(snapshot_file_name(30)))
        .unwrap();
    assert!(matches!(
        store.read(30),
        Err(Error::CorruptSnapshot {
            reason: SnapshotDamage::LsnMismatch { expected: 30, found: 10 },
            ..
        })
    ));
    assert_eq!(store.latest().unwrap().unwrap().lsn, 10);
}

#[test]
fn no_valid_snapshot_is_an_error_not_an_empty_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    let path = store.write(5, b"five").unwrap();
    fs::write(&path, b"garbage").unwrap();
    assert!(matches!(store.latest(), Err(Error::NoValidSnapshot { count: 1, .. })));
}

#[test]
fn prune_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    for lsn in [3, 1, 4, 15, 9] {
        store.write(lsn, &lsn.to_le_bytes()).unwrap();
    }
    assert_eq!(store.prune(2).unwrap(), 3);
    assert_eq!(store.list().unwrap().iter().map(|s| s.0).collect::<Vec<_>>(), vec![9, 15]);
    assert_eq!(store.prune(2).unwrap(), 0);
    assert_eq!(store.prune(0).unwrap(), 2);
    assert!(store.latest().unwrap().is_none());
    // Unrelated files survive.
    fs::write(dir.path().join("notes.txt"), b"keep").unwrap();
    store.prune(0).unwrap();
    assert!(dir.path().join("notes.txt").exists());
}
