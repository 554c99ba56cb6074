//! Arbitrary bytes as sealed envelopes to open and as plain bytes to seal:
//! opening never panics, and only the sealing key and purpose open what
//! was sealed, unchanged.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| loket_seal::fuzz_checks::seal_open(data));
