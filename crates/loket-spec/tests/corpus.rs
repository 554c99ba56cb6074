//! Replays the `router_ops` fuzz target's seed corpus through the same check
//! the fuzzer runs, so `cargo test` covers it; and regenerates the corpus on
//! request (`cargo test -p loket-spec --test corpus -- --ignored`).

use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/router_ops")
}

use loket_spec::ops::seeded_bytes as bytes;

/// The seeds: an empty and a one-byte input (no operations), a run of
/// zeros and of 0xFF (the extreme choices of every field), and twenty
/// pseudo-random sequences of 40 to 1,900 bytes (a handful to a hundred or
/// so operations each, under every scenario).
fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = vec![
        ("empty".to_owned(), Vec::new()),
        ("one-byte".to_owned(), vec![7]),
        ("zeros".to_owned(), vec![0; 256]),
        ("ones".to_owned(), vec![0xFF; 256]),
    ];
    for seed in 1..=20u64 {
        let len = 40 + (seed as usize * 97) % 1_900;
        seeds.push((format!("random-{seed:02}"), bytes(seed, len)));
    }
    seeds
}

#[test]
fn the_seed_corpus_replays_cleanly() {
    let mut replayed = 0;
    let mut entries: Vec<_> = std::fs::read_dir(corpus_dir())
        .expect("fuzz/corpus/router_ops exists")
        .map(|entry| entry.expect("readable corpus entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let data = std::fs::read(&path).expect("readable corpus file");
        let name = path.display().to_string();
        let outcome = std::panic::catch_unwind(|| loket_spec::fuzz_checks::router_ops(&data));
        assert!(outcome.is_ok(), "corpus file {name} fails the check");
        replayed += 1;
    }
    assert!(replayed >= 12, "only {replayed} corpus files");
}

/// The seeds on disk are what the generator makes; with
/// `LOKET_WRITE_SEEDS=1` it writes them first.
#[test]
fn the_committed_corpus_is_what_the_generator_makes() {
    if std::env::var_os("LOKET_WRITE_SEEDS").is_some() {
        std::fs::create_dir_all(corpus_dir()).unwrap();
        for (name, data) in seeds() {
            std::fs::write(corpus_dir().join(name), data).unwrap();
        }
    }
    for (name, data) in seeds() {
        let path = corpus_dir().join(&name);
        let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            committed, data,
            "{name} differs: LOKET_WRITE_SEEDS=1 cargo test -p loket-spec --test corpus"
        );
    }
}
