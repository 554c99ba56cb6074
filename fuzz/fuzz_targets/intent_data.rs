#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| loket_intent::fuzz_checks::intent_data(data));
