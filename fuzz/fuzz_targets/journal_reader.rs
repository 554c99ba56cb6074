//! Arbitrary bytes as journal segments, record streams and snapshot files:
//! the decoders never panic, accept only checksummed, contiguous records,
//! and what they accept re-encodes to a prefix of the input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| loket_journal::fuzz_checks::journal_reader(data));
