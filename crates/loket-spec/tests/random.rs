//! Deterministic random byte strings through the fuzz check: a small,
//! always-on stand-in for the fuzzer, so `cargo test` explores fresh
//! sequences under every scenario.

use loket_spec::ops::{decode, run_scenario};

use loket_spec::ops::seeded_bytes as bytes;

#[test]
fn random_sequences_agree_with_the_model() {
    let cases: u64 =
        std::env::var("LOKET_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    for seed in 0..cases {
        let data = bytes(seed, 64 + (seed as usize % 5) * 200);
        let (scenario, ops) = decode(&data);
        if let Err(disagreement) = run_scenario(scenario, &ops) {
            panic!("seed {seed}: {disagreement}");
        }
    }
}
