//! Replays the checked-in seeds of the `webhook_records` fuzz target.

use std::path::Path;

#[test]
fn webhook_records_seeds_hold() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/webhook_records");
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/corpus/webhook_records exists") {
        let bytes = std::fs::read(entry.expect("a seed").path()).expect("a readable seed");
        loketd::webhooks::fuzz_checks::webhook_records(&bytes);
        seeds += 1;
    }
    assert!(seeds >= 8, "only {seeds} seeds");
}
