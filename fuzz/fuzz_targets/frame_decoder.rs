//! Arbitrary bytes through the binary-protocol frame decoder, whole and in
//! chunks: never panics, both ways agree, accepted batches are valid, and
//! accepted frames encode back to the same bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| loket_wire::fuzz_checks::frame_decoder(data));
