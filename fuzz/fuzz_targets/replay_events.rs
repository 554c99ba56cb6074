//! Arbitrary bytes as agent and event lines never panic the replayer, and
//! leave the router consistent.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| loket_replay::fuzz_checks::replay_events(data));
