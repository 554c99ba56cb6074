//! Replays the checked-in seed corpora of the `intent_score`,
//! `intent_model_load` and `intent_data` fuzz targets, so every test run
//! exercises them, and checks that the generated model-load and data seeds
//! are what the generator writes (a model format change shows up here). `LOKET_WRITE_SEEDS=1 cargo test -p
//! loket-intent --test fuzz_corpus` rewrites the generated seeds after an
//! intended change.

use std::path::{Path, PathBuf};

use loket_intent::model::{FORMAT_VERSION, HEADER_LEN};
use loket_intent::{FeatureConfig, HandoffKind, Model, ModelError, Row, TrainConfig};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target)
}

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

#[test]
fn intent_score_seeds() {
    let seeds = corpus("intent_score");
    assert!(seeds.len() >= 20, "only {} seeds", seeds.len());
    assert!(seeds.iter().filter(|(name, _)| name.starts_with("handoff_")).count() >= 5);
    for (_, bytes) in seeds {
        loket_intent::fuzz_checks::intent_score(&bytes);
    }
}

#[test]
fn intent_model_load_seeds() {
    let mut loaded = 0;
    for (name, bytes) in corpus("intent_model_load") {
        loket_intent::fuzz_checks::intent_model_load(&bytes);
        let model = Model::load(&bytes);
        if name.ends_with(".lkm") {
            let model = model.as_ref().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(model.has_handoff_head(), "{name}");
        }
        if name.starts_with("version_") {
            assert!(matches!(model, Err(ModelError::UnsupportedVersion { .. })), "{name}");
        }
        loaded += usize::from(model.is_ok());
    }
    // The valid seed loads (a flipped weight may leave a valid model too).
    assert!(loaded >= 1);
}

#[test]
fn intent_data_seeds() {
    let seeds = corpus("intent_data");
    assert!(seeds.len() >= 10, "only {} seeds", seeds.len());
    let path = Path::new("seed.csv");
    for (name, bytes) in &seeds {
        loket_intent::fuzz_checks::intent_data(bytes);
        let rows = loket_intent::train::read_rows_from(bytes.as_slice(), path);
        if name.starts_with("valid_") {
            let rows = rows.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!rows.is_empty(), "{name}");
        } else if name.starts_with("bad_") {
            assert!(rows.is_err(), "{name}: {rows:?}");
        }
    }
}

/// The intent-data seeds on disk are what [`data_seeds`] writes; with
/// `LOKET_WRITE_SEEDS=1` it writes them first.
#[test]
fn intent_data_seeds_are_what_the_generator_writes() {
    generated_seeds_match("intent_data", data_seeds());
}

/// Training-data CSV files: valid ones (`valid_*`), ones every reader must
/// refuse (`bad_*`), and odd ones either way.
fn data_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let seeds: [(&str, &[u8]); 14] = [
        (
            "valid_all_columns",
            b"text,label,handoff,language,domain\n\
              twijfel tussen de m en de l,buy.size,doubt,nl,fashion\n\
              \"3 mails, still no refund\",service.refund,complaint,en,general\n\
              can i talk to a person,service.human,human,en,general\n\
              wat kost dit,buy.price,none,nl,general\n",
        ),
        ("valid_text_label", b"text,label\nwaar blijft mijn pakket,service.track\n"),
        ("valid_empty_handoff", b"label,text,handoff\nbuy.price, hoeveel kost het ,\n"),
        ("crlf_bom", b"\xef\xbb\xbftext,label\r\nhoi,service.greeting\r\n"),
        (
            "valid_emoji",
            "text,label,handoff\nnog steeds niks 😡😡,service.complaint,complaint\n".as_bytes(),
        ),
        ("bad_handoff", b"text,label,handoff\nhoi,service.greeting,maybe\n"),
        ("bad_language", b"text,label,language\nhoi,service.greeting,de\n"),
        ("bad_empty_label", b"text,label\nhoi,  \n"),
        ("bad_missing_column", b"text,intent\nhoi,service.greeting\n"),
        ("bad_ragged_row", b"text,label,handoff\nhoi,service.greeting\n"),
        ("bad_invalid_utf8", b"text,label\n\xff\xfe,buy.price\n"),
        ("header_only", b"text,label,handoff,language\n"),
        ("empty", b""),
        ("unclosed_quote", b"text,label\n\"hoi,service.greeting\n"),
    ];
    seeds.into_iter().map(|(name, bytes)| (name, bytes.to_vec())).collect()
}

/// The generated model-load seeds on disk are what the generator writes;
/// with `LOKET_WRITE_SEEDS=1` it writes them first.
#[test]
fn model_load_seeds_are_what_the_generator_writes() {
    generated_seeds_match("intent_model_load", seeds());
}

/// Asserts that fuzz target `target`'s corpus holds each generated seed
/// byte for byte; with `LOKET_WRITE_SEEDS=1` writes them first.
fn generated_seeds_match(target: &str, seeds: Vec<(&'static str, Vec<u8>)>) {
    let dir = corpus_dir(target);
    if std::env::var_os("LOKET_WRITE_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    for (name, bytes) in seeds {
        let path = dir.join(name);
        let stored = std::fs::read(&path).unwrap_or_default();
        assert!(
            stored == bytes,
            "{} differs from its generator: rewrite the seeds with \
             LOKET_WRITE_SEEDS=1 cargo test -p loket-intent --test fuzz_corpus",
            path.display()
        );
    }
}

/// A tiny model with every feature option, idf and a hand-off head.
fn tiny_model_bytes() -> Vec<u8> {
    let rows = [
        ("wat kost deze jas", "buy.price", "none"),
        ("how much is the coat", "buy.price", "none"),
        ("ik twijfel tussen m en l", "buy.size", "doubt"),
        ("not sure which size fits me", "buy.size", "doubt"),
        ("waar blijft mijn pakket", "service.track", "none"),
        ("still no parcel, this is ridiculous", "service.track", "complaint"),
        ("ik wil een medewerker spreken", "service.human", "human"),
        ("can someone call me back", "service.human", "human"),
    ];
    let rows: Vec<Row> = rows
        .iter()
        .map(|&(text, label, handoff)| Row {
            text: text.into(),
            label: label.into(),
            handoff: HandoffKind::from_name(handoff),
            language: None,
        })
        .collect();
    let config = TrainConfig {
        features: FeatureConfig {
            bucket_bits: 8,
            char_min: 2,
            char_max: 3,
            stem_words: true,
            content_pairs: true,
            negation_token: true,
            ..FeatureConfig::default()
        },
        idf: true,
        handoff_calibration_folds: 0,
        description: "fuzz seed: every feature option, idf and a hand-off head".into(),
        ..TrainConfig::default()
    };
    let data = loket_intent::train(&rows, None, &config, &|_| {}).unwrap();
    data.to_bytes().unwrap()
}

/// The generated model-load seeds (the others in the directory are fixed:
/// empty, magic only, text, a zip header, and files of format versions 1 to
/// 4, the last being the current format's predecessor).
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let valid = tiny_model_bytes();
    let with_crc = |mut v: Vec<u8>| {
        let crc = crc32(&v[HEADER_LEN..]);
        v[12..16].copy_from_slice(&crc.to_le_bytes());
        v
    };
    let mut bad_checksum = valid.clone();
    let last = bad_checksum.len() - 40;
    bad_checksum[last] ^= 0x55;
    let mut corrupt_root = valid.clone();
    let root = corrupt_root.len() - 24;
    corrupt_root[root] = corrupt_root[root].wrapping_add(0x41);
    let mut corrupt_tail = valid.clone();
    *corrupt_tail.last_mut().unwrap() ^= 0xff;
    let mut flipped_weight = valid.clone();
    let mid = flipped_weight.len() / 2;
    flipped_weight[mid] = flipped_weight[mid].wrapping_add(1);
    let mut garbage = valid[..HEADER_LEN].to_vec();
    garbage.extend((0..512u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    garbage[16..24].copy_from_slice(&512u64.to_le_bytes());
    let mut huge = valid.clone();
    huge[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    let mut trailing = valid.clone();
    trailing.push(0);
    let mut next_version = valid.clone();
    next_version[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    vec![
        ("valid_tiny.lkm", valid.clone()),
        ("bad_checksum", bad_checksum),
        ("corrupt_root_fixed_crc", with_crc(corrupt_root)),
        ("corrupt_tail_fixed_crc", with_crc(corrupt_tail)),
        ("flipped_weight_fixed_crc", with_crc(flipped_weight)),
        ("garbage_payload_valid_header", with_crc(garbage)),
        ("header_only", valid[..HEADER_LEN].to_vec()),
        ("huge_length", huge),
        ("trailing_byte", trailing),
        ("truncated_half", valid[..valid.len() / 2].to_vec()),
        ("version_6", next_version),
    ]
}

/// CRC-32 (IEEE), bit by bit: the tests need no checksum crate.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
