//! Arbitrary programs of interning, finding, releasing and saving ids agree
//! with a naive model; parsing any string never panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| loket_ids::fuzz_checks::ids(data));
