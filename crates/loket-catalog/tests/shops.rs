//! Dutch compounds outside the garden centre: the issue's examples on the
//! DIY shop, and hit@1 on the multi-domain test set (`testdata/shops/`).
//! Print the figures per shop and per kind with
//! `loket catalog eval --shops crates/loket-catalog/testdata/shops [--heldout]`.

use std::path::PathBuf;

use loket_catalog::eval::{self, Tally};
use loket_catalog::{Catalog, MatchKind, Synonyms};

const SHOPS: [&str; 6] = ["diy", "fashion", "electronics", "groceries", "furniture", "pets"];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/shops")
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn shop(name: &str, synonyms: bool) -> Catalog {
    let mut builder = Catalog::builder();
    if synonyms {
        let rules = read(dir().join(format!("{name}_synonyms.txt")));
        builder = builder.synonyms(Synonyms::parse(&rules).unwrap());
    }
    let (catalog, report) =
        builder.from_csv_reader(read(dir().join(format!("{name}.csv"))).as_bytes()).unwrap();
    assert_eq!(report.rejected, 0, "{name}: {:?}", report.errors);
    catalog
}

/// The first hits' skus for `query`.
fn top(catalog: &Catalog, query: &str, n: usize) -> Vec<String> {
    catalog.search(query, n).unwrap().iter().map(|h| h.sku.to_string()).collect()
}

#[test]
fn the_issues_examples_find_the_compound() {
    let diy = shop("diy", false);
    let accu_and_klop = ["DIY001", "DIY002", "DIY003", "DIY004"];
    for sku in top(&diy, "boormachine", 4) {
        assert!(accu_and_klop.contains(&sku.as_str()), "boormachine: {sku}");
    }
    let screws = top(&diy, "schroeven", 1);
    assert!(("DIY071"..="DIY076").contains(&screws[0].as_str()), "{screws:?}");
    let hamers = top(&diy, "hamertje", 1);
    assert!(["DIY034", "DIY035", "DIY036"].contains(&hamers[0].as_str()), "{hamers:?}");
    let kruiskop = top(&diy, "schroevendraaier", 10);
    assert!(kruiskop.contains(&"DIY038".to_owned()), "{kruiskop:?}");
}

#[test]
fn a_head_match_ranks_above_a_modifier_match_and_a_whole_word_above_both() {
    let diy = shop("diy", false);
    let hits = diy.search("verf", 20).unwrap();
    let first_roller = hits.iter().position(|h| h.sku.as_ref() == "DIY105").unwrap();
    let last_paint = hits.iter().rposition(|h| h.name.to_lowercase().contains("muurverf")).unwrap();
    assert!(last_paint < first_roller, "{hits:#?}");
    assert_eq!(hits[0].matched, MatchKind::Compound);

    // A catalog with the word whole, as head and as modifier.
    let csv = "sku,name,stock\nR,Verfroller,1\nM,Muurverf wit,1\nV,Verf wit,1\n";
    let (catalog, _) = Catalog::from_csv_reader(csv.as_bytes()).unwrap();
    assert_eq!(top(&catalog, "verf", 3), ["V", "M", "R"]);
    assert_eq!(catalog.search("verf", 1).unwrap()[0].matched, MatchKind::Exact);
}

#[test]
fn split_and_joined_spellings_meet() {
    let diy = shop("diy", false);
    let joined = top(&diy, "hogedrukreiniger", 2);
    assert!(joined.iter().all(|s| s == "DIY024" || s == "DIY025"), "{joined:?}");
    for query in ["hoge druk reiniger", "hogedruk reiniger", "hoge drukreiniger"] {
        assert_eq!(top(&diy, query, 2), joined, "{query}");
    }
}

#[test]
fn qualifiers_after_the_product_word_do_not_make_it_that_product() {
    let csv = "sku,name,stock\nH,Hagelslag melk,1\nM,Halfvolle melk 1 L,1\n\
               T,Tuinset (tafel en 4 stoelen),1\nE,Eettafel eiken,1\n";
    let (catalog, _) = Catalog::from_csv_reader(csv.as_bytes()).unwrap();
    assert_eq!(top(&catalog, "melk", 1), ["M"]);
    assert_eq!(top(&catalog, "tafel", 1), ["E"]);
    assert_eq!(top(&catalog, "hagelslag melk", 1), ["H"]);
    assert_eq!(catalog.search("tuinset tafel", 1).unwrap()[0].matched, MatchKind::Exact);
}

fn catalog_of(csv: &str, synonyms: &str) -> Catalog {
    let builder = Catalog::builder().synonyms(Synonyms::parse(synonyms).unwrap());
    builder.from_csv_reader(csv.as_bytes()).unwrap().0
}

#[test]
fn words_written_apart_meet_their_compound_even_when_one_is_a_stop_word() {
    // `was` is a stop word ("it was"), and `wasmachine` a product.
    let csv = "sku,name,stock\nK,Koffiepadmachine,1\nW,Wasmachine 8 kg,1\nM,Wasmand,1\n";
    let catalog = catalog_of(csv, "");
    assert_eq!(top(&catalog, "was machine", 1), ["W"]);
    assert_eq!(top(&catalog, "heb je een was mand", 1), ["M"]);
    assert_eq!(catalog.search("was machine", 1).unwrap()[0].matched, MatchKind::Compound);
    // Stop words alone never join into a product.
    assert!(catalog.search("is het", 1).unwrap().is_empty());
}

#[test]
fn what_a_product_is_for_weighs_less_than_what_it_is() {
    let csv = "sku,name,stock\nD,Dwerghamster,1\nK,Hamsterkooi,1\nV,Vogelkooi 60 cm,1\n\
               S,Groentesoep,1\nG,Soepgroente 300 g,1\nT,Terrarium 60x45 cm,1\n\
               L,Warmtelamp 50W,1\nP,Schoenpoets zwart,1\nH,Leren handschoenen,1\n";
    let catalog = catalog_of(csv, "");
    assert_eq!(top(&catalog, "hoi! zoek een kooi voor mijn dwerghamster", 1), ["K"]);
    assert_eq!(top(&catalog, "groente voor de soep", 1), ["G"]);
    assert_eq!(top(&catalog, "lamp voor het terrarium", 1), ["L"]);
    assert_eq!(top(&catalog, "poets voor leren schoenen", 1), ["P"]);
    // Without a word before it, `voor` changes nothing.
    assert_eq!(top(&catalog, "voor de dwerghamster", 1), ["D"]);
    assert_eq!(top(&catalog, "groentesoep", 1), ["S"]);
}

#[test]
fn a_word_hyphened_to_the_next_is_its_modifier() {
    let csv = "sku,name,stock\nB,Tv-muurbeugel kantelbaar,1\nS,Samsung Smart-tv 55 inch,1\n";
    let catalog = catalog_of(csv, "");
    assert_eq!(top(&catalog, "tv", 2), ["S", "B"]);
    assert_eq!(top(&catalog, "muurbeugel", 1), ["B"]);
    assert_eq!(catalog.search("tv muurbeugel", 1).unwrap()[0].sku.as_ref(), "B");
}

#[test]
fn a_material_adjective_before_the_noun_is_not_the_product() {
    let csv = "sku,name,stock\nV,Glazen vaas,1\nW,Wijnglazen (6 st.),1\n\
               H,Leren handschoenen dames,1\nE,Eetkamerstoelen kunstleer,1\nT,Tuinstoel,1\n";
    let catalog = catalog_of(csv, "");
    assert_eq!(top(&catalog, "glazen", 1), ["W"]);
    assert_eq!(top(&catalog, "glazen vaas", 1), ["V"]);
    assert_eq!(top(&catalog, "handschoenen", 1), ["H"]);
    // A compound in `-en` is a noun, not an adjective.
    assert_eq!(top(&catalog, "eetkamerstoelen", 1), ["E"]);
    assert_eq!(catalog.search("eetkamerstoelen", 1).unwrap()[0].matched, MatchKind::Exact);
}

#[test]
fn a_multi_word_synonym_names_the_product_only_as_a_whole() {
    let csv = "sku,name,stock\nM,Tv-meubel 180 cm,1\nB,Boekenkast 5 planken,1\n";
    let catalog = catalog_of(csv, "tv-kast, tv-dressoir => tv-meubel\n");
    assert_eq!(top(&catalog, "kast", 1), ["B"]);
    assert_eq!(top(&catalog, "tv kast", 1), ["M"]);
    assert_eq!(top(&catalog, "tv-dressoir", 1), ["M"]);
}

#[test]
fn a_typo_of_a_whole_word_beats_a_split_with_an_unknown_part() {
    let csv = "sku,name,stock\nA,Appelsap 1 L,1\nS,Sinaasappelsap 1 L,1\n";
    let catalog = catalog_of(csv, "");
    assert_eq!(top(&catalog, "sinasappelsap", 1), ["S"]);
    assert_eq!(top(&catalog, "appelsap", 1), ["A"]);
}

fn tally(heldout: bool) -> (Tally, Tally) {
    let (mut all, mut head) = (Tally::default(), Tally::default());
    for name in SHOPS {
        let catalog = shop(name, true);
        let path = if heldout {
            dir().join(format!("heldout/{name}.tsv"))
        } else {
            dir().join(format!("{name}_queries.tsv"))
        };
        let cases = eval::parse_queries(&read(path)).unwrap();
        let report = eval::evaluate(&catalog, &cases).unwrap();
        all.hits += report.overall.hits;
        all.total += report.overall.total;
        if let Some(t) = report.by_kind.get("head") {
            head.hits += t.hits;
            head.total += t.total;
        }
    }
    (all, head)
}

#[test]
fn the_development_queries_hit_at_least_0_95() {
    let (all, head) = tally(false);
    assert!(all.total >= 300, "{all:?}");
    assert!(all.hit_at_1() >= 0.95, "{all:?}");
    assert!(head.hit_at_1() >= 0.95, "{head:?}");
}

/// A floor under the figures of the first held-out queries (`heldout/`,
/// now development data: their misses were studied), so a change that
/// loses them fails here.
#[test]
fn the_held_out_queries_keep_their_figures() {
    let (all, head) = tally(true);
    assert!(all.total >= 250, "{all:?}");
    assert!(all.hit_at_1() >= 0.96, "{all:?}");
    assert!(head.hit_at_1() >= 0.95, "{head:?}");
}
