//! Arbitrary bytes as a stream of facts for one meter: never a panic, every
//! group consistent, a restored meter reports the same.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| loket_report::fuzz_checks::facts(data));
