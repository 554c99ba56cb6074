//! Replays the checked-in fuzz seed corpora through the same checks the fuzz
//! targets run, so `cargo test` exercises them.

use std::path::PathBuf;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        check(&data);
        n += 1;
    }
    assert!(n >= 12, "{target}: only {n} seeds");
}

#[test]
fn catalog_synonyms_corpus() {
    replay("catalog_synonyms", loket_catalog::fuzz_checks::catalog_synonyms);
}

#[test]
fn catalog_reader_corpus() {
    replay("catalog_reader", loket_catalog::fuzz_checks::catalog_reader);
}

#[test]
fn catalog_query_corpus() {
    replay("catalog_query", loket_catalog::fuzz_checks::catalog_query);
}

#[test]
fn catalog_decompound_corpus() {
    replay("catalog_decompound", loket_catalog::fuzz_checks::catalog_decompound);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    #[test]
    fn arbitrary_queries_never_panic(q in "\\PC{0,60}") {
        loket_catalog::fuzz_checks::catalog_query(q.as_bytes());
    }

    #[test]
    fn arbitrary_words_split_safely(s in "[a-z ]{0,60}") {
        loket_catalog::fuzz_checks::catalog_decompound(s.as_bytes());
    }

    #[test]
    fn arbitrary_synonyms_never_panic(s in "[a-zé ,=>#\n]{0,80}") {
        loket_catalog::fuzz_checks::catalog_synonyms(s.as_bytes());
    }

    #[test]
    fn arbitrary_catalogs_never_panic(s in "[a-z0-9,|\"\n{}:.é-]{0,120}") {
        let data = format!("sku,name,stock,price\n{s}");
        loket_catalog::fuzz_checks::catalog_reader(data.as_bytes());
    }
}
