//! Search quality on the garden-centre test set (`testdata/`): about 100
//! products and over 200 labelled Dutch and English queries of every kind.
//! Print the figures with
//! `loket catalog eval --catalog crates/loket-catalog/testdata/garden_centre.csv
//! --queries crates/loket-catalog/testdata/queries.tsv [--synonyms .../synonyms.txt]`.

use loket_catalog::eval::{self, EvalReport};
use loket_catalog::{Catalog, NameDictionary, Synonyms};

const CATALOG: &str = include_str!("../testdata/garden_centre.csv");
const SYNONYMS: &str = include_str!("../testdata/synonyms.txt");
const QUERIES: &str = include_str!("../testdata/queries.tsv");

fn run(synonyms: Option<&str>, names: NameDictionary) -> EvalReport {
    let mut builder = Catalog::builder().names(names);
    if let Some(s) = synonyms {
        builder = builder.synonyms(Synonyms::parse(s).unwrap());
    }
    let (catalog, report) = builder.from_csv_reader(CATALOG.as_bytes()).unwrap();
    assert_eq!(report.rejected, 0, "{:?}", report.errors);
    let cases = eval::parse_queries(QUERIES).unwrap();
    eval::evaluate(&catalog, &cases).unwrap()
}

fn show(report: &EvalReport) -> String {
    let mut s = format!("overall {:.3}\n", report.overall.hit_at_1());
    for (kind, t) in &report.by_kind {
        s.push_str(&format!("  {kind}: {:.3} ({}/{})\n", t.hit_at_1(), t.hits, t.total));
    }
    for m in &report.misses {
        s.push_str(&format!(
            "  miss {:?} expected {:?} got {:?}\n",
            m.case.query, m.case.expected, m.got
        ));
    }
    s
}

#[test]
fn the_test_set_covers_every_kind_of_query() {
    let cases = eval::parse_queries(QUERIES).unwrap();
    assert!(cases.len() >= 150, "{} queries", cases.len());
    let (catalog, _) = Catalog::from_csv_reader(CATALOG.as_bytes()).unwrap();
    assert!(catalog.len() >= 100);
    for kind in [
        "exact",
        "plural",
        "diminutive",
        "compound",
        "split",
        "typo",
        "synonym",
        "common",
        "latin",
        "oldname",
        "english",
        "chat_nl",
        "chat_en",
    ] {
        let n = cases.iter().filter(|c| c.kind == kind).count();
        assert!(n >= 5, "only {n} queries of kind {kind}");
    }
    for case in &cases {
        for sku in &case.expected {
            assert!(catalog.stock(sku).is_some(), "line {}: unknown sku {sku}", case.line);
        }
    }
}

#[test]
fn hit_at_1_with_a_synonyms_file_is_at_least_0_95() {
    let report = run(Some(SYNONYMS), NameDictionary::builtin());
    assert!(report.overall.hit_at_1() >= 0.95, "{}", show(&report));
}

#[test]
fn hit_at_1_with_only_the_builtin_names_is_at_least_0_85() {
    let report = run(None, NameDictionary::builtin());
    assert!(report.overall.hit_at_1() >= 0.85, "{}", show(&report));
}

#[test]
fn the_builtin_names_carry_their_weight() {
    // Without synonyms and built-in names the common-name queries must
    // mostly fail: the figure above is the dictionary's doing.
    let bare = run(None, NameDictionary::empty());
    let common = bare.by_kind["common"];
    assert!(common.hit_at_1() < 0.5, "{}", show(&bare));
    let with = run(None, NameDictionary::builtin());
    assert!(with.overall.hits > bare.overall.hits);
}
