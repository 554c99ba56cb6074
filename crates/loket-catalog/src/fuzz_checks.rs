//! Invariant checks driven by the fuzz targets and replayed from the seed
//! corpora by the tests. They panic only on a real bug.

use std::sync::LazyLock;

use crate::compound::{Compound, Dictionary};
use crate::{Catalog, Synonyms, text};

/// Parses arbitrary bytes as a synonyms file: never panics; a parse is
/// stable (formatting the rules and parsing again gives the same rules).
pub fn catalog_synonyms(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(synonyms) = Synonyms::parse(&text) {
        let printed: String = synonyms.rules().iter().map(|r| format!("{r}\n")).collect();
        let again = Synonyms::parse(&printed).expect("printed rules parse");
        assert_eq!(again, synonyms, "printing and parsing changed the rules");
    }
}

/// Imports arbitrary bytes as CSV and as JSONL: never panics, every row is
/// counted once, and every rejected row names a line within the input.
pub fn catalog_reader(data: &[u8]) {
    let lines = data.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    if let Ok((products, report)) = crate::import::read_csv(data) {
        assert_eq!(products.len(), report.imported);
        assert_eq!(report.errors.len(), report.rejected);
        for e in &report.errors {
            assert!(e.line >= 1 && e.line <= lines + 1, "line {} of {lines}", e.line);
        }
    }
    let (products, report) = crate::import::read_jsonl(data).expect("in-memory reads do not fail");
    assert_eq!(products.len(), report.imported);
    assert_eq!(report.errors.len(), report.rejected);
    for e in &report.errors {
        assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
    }
}

const FIXED_CATALOG: &str = "sku,name,latin_name,aliases,category,stock,price\n\
B1,Musa basjoo,Musa basjoo,Japanse banaan,tropisch,3,24.95\n\
O1,Olijfboom,Olea europaea,,mediterraan,0,39.95\n\
C1,Citroenboom,Citrus limon,,fruit,5,29.95\n\
W1,Blauwe regen,Wisteria sinensis,,klimplanten,2,19.95\n\
L1,Lavendel 'Hidcote',Lavandula angustifolia,,vaste planten,40,3.95\n\
A1,Appelboom 'Elstar',Malus domestica,,fruitbomen,7,34.50\n";

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    let synonyms = Synonyms::parse("bananenboom, bananenplant, musa\nlemon tree => citroenboom\n")
        .expect("fixed synonyms parse");
    Catalog::builder()
        .synonyms(synonyms)
        .threads(1)
        .from_csv_reader(FIXED_CATALOG.as_bytes())
        .expect("fixed catalog builds")
        .0
});

/// Runs an arbitrary query against a small fixed catalog: never panics,
/// returns at most `limit` hits, each a real product with sorted,
/// finite scores and a consistent `in_stock`.
pub fn catalog_query(data: &[u8]) {
    let query = String::from_utf8_lossy(data);
    let limit = usize::from(data.first().copied().unwrap_or(3) % 8);
    let hits = CATALOG.search(&query, limit).expect("in-RAM search does not fail");
    assert!(hits.len() <= limit);
    for pair in hits.windows(2) {
        assert!(pair[0].score >= pair[1].score, "hits out of order");
    }
    for hit in &hits {
        assert!(hit.score.is_finite());
        assert_eq!(hit.in_stock, hit.stock > 0);
        assert_eq!(CATALOG.stock(&hit.sku), Some(hit.stock));
    }
}

/// Splits every word of arbitrary bytes with the built-in Dutch dictionary,
/// once knowing no catalog words and once knowing every five-letter string:
/// never panics; a split has two parts or more, each a non-empty run of
/// a-z, and at least one head; a word that does not split leaves the output
/// empty; splitting again gives the same result.
pub fn catalog_decompound(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let dict = Dictionary::builtin();
    let (mut out, mut again) = (Compound::default(), Compound::default());
    for word in text::words(&text) {
        for known in [&(|_: &str| false) as &dyn Fn(&str) -> bool, &|w: &str| w.len() == 5] {
            let split = dict.split(&word, known, &mut out);
            assert_eq!(split, dict.split(&word, known, &mut again), "{word}");
            assert_eq!(out, again, "{word}: not deterministic");
            if !split {
                assert_eq!(out, Compound::default(), "{word}: no split, but output");
                continue;
            }
            assert!(out.parts.len() >= 2, "{word}: {out:?}");
            assert!(!out.heads.is_empty(), "{word}: {out:?}");
            for part in &out.parts {
                assert!(
                    !part.text.is_empty() && part.text.bytes().all(|b| b.is_ascii_lowercase()),
                    "{word}: {out:?}"
                );
            }
        }
    }
}
