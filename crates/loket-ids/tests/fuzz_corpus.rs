//! Replays the checked-in seed corpus of the `ids` fuzz target, and a
//! property test of the same check on generated programs.

use std::path::Path;

use proptest::prelude::*;

#[test]
fn ids_corpus_agrees_with_the_model() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/ids");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the seed corpus is checked in") {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        loket_ids::fuzz_checks::ids(&data);
        replayed += 1;
    }
    assert!(replayed >= 8, "only {replayed} seeds in {}", dir.display());
}

/// One operation as the check reads it: opcode, then a length-prefixed text.
fn op() -> impl Strategy<Value = Vec<u8>> {
    let text = prop_oneof![
        "[a-c]{1,3}",
        "(0|[1-9][0-9]{0,19})",
        "0[0-9]{1,3}",
        ".{0,12}",
        Just("x".repeat(130)),
    ];
    (0u8..6, text).prop_map(|(code, text)| {
        let bytes = text.into_bytes();
        let len = bytes.len().min(255);
        let mut op = vec![code, len as u8];
        op.extend_from_slice(&bytes[..len]);
        op
    })
}

proptest! {
    #[test]
    fn generated_programs_agree_with_the_model(ops in prop::collection::vec(op(), 0..60)) {
        loket_ids::fuzz_checks::ids(&ops.concat());
    }
}
