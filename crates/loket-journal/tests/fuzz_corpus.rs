//! Replays the checked-in seed corpus of the `journal_reader` fuzz target, so
//! CI exercises it on every run, and checks the seeds are still what the
//! current encoder produces (a format change shows up here).
//!
//! To regenerate the seeds after an intended format change:
//! `cargo test -p loket-journal --test fuzz_corpus -- --ignored regenerate`.

use std::path::{Path, PathBuf};

use loket_journal::format::{encode_record, encode_segment_header, encode_snapshot_header};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/journal_reader")
}

fn segment(first: u64, payloads: &[&[u8]]) -> Vec<u8> {
    let mut out = encode_segment_header(first).to_vec();
    for (i, payload) in payloads.iter().enumerate() {
        encode_record(&mut out, first + i as u64, payload);
    }
    out
}

fn snapshot(lsn: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = encode_snapshot_header(lsn, payload).to_vec();
    out.extend_from_slice(payload);
    out
}

/// The seeds: name and bytes.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let three: [&[u8]; 3] = [b"open conversation 17", b"", b"route 17 -> agent 4 (score 0.93)"];
    let valid = segment(0, &three);
    let mut seeds = vec![
        ("empty", Vec::new()),
        ("header_only", segment(0, &[])),
        ("valid_three_records", valid.clone()),
        ("valid_after_snapshot_lsn_1000", segment(1000, &three)),
        ("valid_empty_payloads", segment(7, &[b"", b"", b""])),
        (
            "valid_aligned_payloads",
            segment(0, &[&[0xAB; 16], &[0xCD; 32], &[0x01; 15], &[0x02; 17]]),
        ),
        ("valid_binary_payload", segment(3, &[&(0u8..=255).collect::<Vec<_>>()])),
    ];

    let mut partial_payload = valid.clone();
    partial_payload.truncate(valid.len() - 20);
    seeds.push(("torn_tail_partial_record", partial_payload));
    let mut partial_header = segment(0, &three[..2]);
    partial_header.extend_from_slice(&valid[partial_header.len()..partial_header.len() + 9]);
    seeds.push(("torn_tail_partial_header", partial_header));
    seeds.push(("torn_segment_header", valid[..11].to_vec()));
    seeds.push(("zeroed_segment", vec![0u8; 48]));

    let second = 32 + 16 + 32; // header + first record (20 bytes payload, padded to 32)
    let mut flipped_checksum = valid.clone();
    flipped_checksum[second + 4] ^= 0x01;
    seeds.push(("flipped_checksum", flipped_checksum));
    let mut flipped_payload = valid.clone();
    flipped_payload[32 + 16 + 3] ^= 0x40;
    seeds.push(("flipped_payload", flipped_payload));
    let mut flipped_lsn = valid.clone();
    flipped_lsn[second + 8] ^= 0x02;
    seeds.push(("flipped_lsn", flipped_lsn));
    let mut huge = segment(0, &three[..1]);
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    huge.extend_from_slice(&[0u8; 12]);
    seeds.push(("huge_length", huge));
    let mut just_over = segment(0, &three[..1]);
    just_over.extend_from_slice(&((1u32 << 16) + 1).to_le_bytes());
    just_over.extend_from_slice(&[0u8; 44]);
    seeds.push(("length_just_over_max", just_over));
    let mut wrong_lsn = segment(0, &three[..1]);
    encode_record(&mut wrong_lsn, 5, b"skipped ahead");
    seeds.push(("wrong_lsn", wrong_lsn));
    let mut padding = segment(0, &[b"abc"]);
    let last = padding.len() - 1;
    padding[last] = 0x5A;
    seeds.push(("nonzero_padding", padding));
    let mut zero_tail = valid.clone();
    zero_tail.extend_from_slice(&[0u8; 64]);
    seeds.push(("zero_filled_tail", zero_tail));
    let mut garbage_tail = valid.clone();
    garbage_tail.extend_from_slice(b"garbage after the last good record");
    seeds.push(("garbage_tail", garbage_tail));

    let mut foreign = valid.clone();
    foreign[..8].copy_from_slice(b"NOTAJRNL");
    seeds.push(("foreign_magic", foreign));
    let mut version = encode_segment_header(0);
    version[8] = 2;
    let mut bad_version = version.to_vec();
    bad_version.extend_from_slice(&valid[32..]);
    seeds.push(("unknown_version", bad_version));
    let mut header_crc = valid.clone();
    header_crc[17] ^= 0x10;
    seeds.push(("header_checksum_mismatch", header_crc));
    seeds.push(("lsn_near_max", segment(u64::MAX - 2, &[b"a", b"b"])));
    let mut exhausted = segment(u64::MAX - 1, &[b"last"]);
    exhausted.extend_from_slice(&[0u8; 32]);
    seeds.push(("lsn_exhausted", exhausted));

    // Bare records from lsn 0 (the target also frames its input with a
    // header at lsn 0).
    seeds.push(("records_without_header", valid[32..].to_vec()));
    // Payloads separated by 0xFF, for the truncation property.
    seeds.push((
        "payloads_for_truncation",
        b"\x00\x01\x10first\xffsecond\xff\xffa longer third payload".to_vec(),
    ));

    let state = b"snapshot of router state at lsn 1003";
    seeds.push(("snapshot_valid", snapshot(1003, state)));
    seeds.push(("snapshot_empty_payload", snapshot(0, b"")));
    let mut snap_truncated = snapshot(1003, state);
    snap_truncated.truncate(50);
    seeds.push(("snapshot_truncated", snap_truncated));
    let mut snap_flipped = snapshot(1003, state);
    snap_flipped[45] ^= 0x08;
    seeds.push(("snapshot_flipped_payload", snap_flipped));
    let mut snap_len = snapshot(1003, state);
    snap_len[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
    seeds.push(("snapshot_huge_length", snap_len));
    seeds
}

#[test]
fn journal_reader_corpus_holds_every_property() {
    let dir = corpus_dir();
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the seed corpus is checked in") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        loket_journal::fuzz_checks::journal_reader(&data);
        loket_journal::fuzz_checks::snapshot_file(&data);
        replayed += 1;
    }
    assert!(replayed >= 10, "only {replayed} seeds in {}", dir.display());
}

/// The seeds on disk are what the encoder makes now; with
/// `LOKET_WRITE_SEEDS=1` they are written first (after an intended format
/// change).
#[test]
fn checked_in_seeds_match_the_current_encoder() {
    let dir = corpus_dir();
    if std::env::var_os("LOKET_WRITE_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds() {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    for (name, bytes) in seeds() {
        let path = dir.join(name);
        let on_disk = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; regenerate the seeds", path.display()));
        assert!(
            on_disk == bytes,
            "{} differs from the generator: LOKET_WRITE_SEEDS=1 cargo test -p loket-journal --test fuzz_corpus",
            path.display()
        );
    }
}
