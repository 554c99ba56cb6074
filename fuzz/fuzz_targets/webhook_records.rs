//! Arbitrary bytes as a webhook outbox record and as an endpoint's state
//! file: decoding never panics; a record that decodes round-trips.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| loketd::webhooks::fuzz_checks::webhook_records(data));
