//! Replays the checked-in seeds of the `seal_open` fuzz target.

use std::path::Path;

#[test]
fn seal_open_seeds_hold() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/seal_open");
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/corpus/seal_open exists") {
        let bytes = std::fs::read(entry.expect("a seed").path()).expect("a readable seed");
        loket_seal::fuzz_checks::seal_open(&bytes);
        seeds += 1;
    }
    assert!(seeds >= 4, "only {seeds} seeds");
}

#[test]
fn keys_are_read_from_hex_files_and_variables_and_bad_ones_are_named() {
    let dir = std::env::temp_dir().join(format!("loket-seal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tenant.key");
    let hex = "0f".repeat(32);
    std::fs::write(&file, format!("{hex}\n")).unwrap();
    let from_file = loket_seal::Key::from_file(&file).unwrap();
    assert_eq!(from_file.fingerprint(), loket_seal::Key::from_hex(&hex).unwrap().fingerprint());
    std::fs::write(&file, "0f0f").unwrap();
    let error = loket_seal::Key::from_file(&file).unwrap_err().to_string();
    assert!(error.contains("tenant.key") && error.contains("4 characters"), "{error}");
    let error = loket_seal::Key::from_hex(&format!("{}zz", "0".repeat(62))).unwrap_err();
    assert!(error.to_string().contains("character 63"), "{error}");
    let error = loket_seal::Key::from_file(&dir.join("missing.key")).unwrap_err().to_string();
    assert!(error.starts_with("cannot read key file") && error.contains("missing.key"), "{error}");
    let error = loket_seal::Key::from_env("LOKET_SEAL_TEST_SURELY_UNSET").unwrap_err();
    assert!(error.to_string().contains("LOKET_SEAL_TEST_SURELY_UNSET"));
    assert!(!format!("{from_file:?}").contains("0f0f"), "Debug never shows the key");
    std::fs::remove_dir_all(&dir).unwrap();
}
