//! Differential fuzzing of the router: arbitrary operation sequences run
//! against `loket-router` and the naive reference model in `loket-spec`;
//! any disagreement, or any finding of `Router::audit`, is a crash.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| loket_spec::fuzz_checks::router_ops(data));
