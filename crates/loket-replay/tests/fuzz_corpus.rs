//! Replays the checked-in seed corpus of the `replay_events` fuzz target, so
//! CI exercises it on every run.

use std::path::Path;

#[test]
fn replay_events_corpus_never_panics_and_leaves_the_router_consistent() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/replay_events");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the seed corpus is checked in") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        loket_replay::fuzz_checks::replay_events(&data);
        replayed += 1;
    }
    assert!(replayed >= 10, "only {replayed} seeds in {}", dir.display());
}
