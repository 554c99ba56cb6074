//! Deterministic random byte strings through the fuzz check: a small,
//! always-on stand-in for the fuzzer, so `cargo test` explores fresh
//! sequences under every scenario.

use loket_model::ops::{decode, run_scenario};

/// xorshift64*: deterministic, no dependency.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

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
