#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| loket_catalog::fuzz_checks::catalog_decompound(data));
