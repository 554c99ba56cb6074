//! Catalog search through the public API, as the router and daemon use it.

use std::sync::Arc;

use loket_catalog::{Catalog, CatalogError, MatchKind, NameDictionary, Synonyms};

const CSV: &str = "sku,name,latin_name,aliases,category,stock,price,pot\n\
B1,Musa basjoo,Musa basjoo,,tropisch,3,24.95,21cm\n\
O1,Olijfboom,Olea europaea,,mediterraan,0,39.95,25cm\n\
C1,Citroenboom,Citrus limon,,citrus,5,29.95,\n\
W1,Wisteria sinensis,Wisteria sinensis,,klimplanten,2,19.95,\n\
R1,Rozemarijn,Salvia rosmarinus,Rosmarinus officinalis,kruiden,22,3.95,\n\
V1,Vijgenboom,Ficus carica,,fruitbomen,6,27.50,\n\
T1,Tomatenplant,Solanum lycopersicum,,groente,35,2.95,\n";

fn catalog() -> Catalog {
    Catalog::from_csv_reader(CSV.as_bytes()).unwrap().0
}

/// The first hit's sku and match kind for `query`.
fn first(catalog: &Catalog, query: &str) -> (String, MatchKind) {
    let hits = catalog.search(query, 5).unwrap();
    let hit = hits.first().unwrap_or_else(|| panic!("no hit for {query:?}"));
    (hit.sku.to_string(), hit.matched)
}

#[test]
fn each_way_of_matching_finds_the_product_and_says_how() {
    let c = catalog();
    let check = |query: &str, sku: &str, kind: MatchKind| {
        assert_eq!(first(&c, query), (sku.to_owned(), kind), "query {query:?}");
    };
    check("musa", "B1", MatchKind::Exact);
    check("bananenboom", "B1", MatchKind::Synonym);
    check("bananeboom", "B1", MatchKind::Fuzzy);
    check("olea", "O1", MatchKind::Latin);
    check("olijfboompje", "O1", MatchKind::Exact);
    check("olijfbomen", "O1", MatchKind::Exact);
    check("olijf boom", "O1", MatchKind::Compound);
    check("vijgenplant", "V1", MatchKind::Compound);
    check("rosmarinus", "R1", MatchKind::Latin); // Salvia rosmarinus
    check("rosmarinus officinalis", "R1", MatchKind::Synonym); // the old name, an alias
    check("blauwe regen", "W1", MatchKind::Synonym);
    check("hebben jullie nog bananenbomen op voorraad?", "B1", MatchKind::Synonym);
    check("do you have lemon trees in stock", "C1", MatchKind::Synonym);
}

#[test]
fn exact_matches_rank_above_typo_matches() {
    let csv = "sku,name\nE1,Citroen\nE2,Citroenen kist\nF1,Citoren\n";
    let (c, _) =
        Catalog::builder().names(NameDictionary::empty()).from_csv_reader(csv.as_bytes()).unwrap();
    let hits = c.search("citroen", 5).unwrap();
    assert_eq!(&*hits[0].sku, "E1");
    assert_eq!(hits[0].matched, MatchKind::Exact);
    // "citroenx" is a typo of "citroen" (one edit) and of nothing else.
    let hits = c.search("citroenx", 5).unwrap();
    assert_eq!(&*hits[0].sku, "E1");
    assert_eq!(hits[0].matched, MatchKind::Fuzzy);
}

#[test]
fn question_frames_alone_find_nothing() {
    let c = catalog();
    assert!(c.search("hebben jullie nog iets op voorraad?", 5).unwrap().is_empty());
    assert!(c.search("", 5).unwrap().is_empty());
    assert!(c.search("olijfboom", 0).unwrap().is_empty());
    // A huge limit is clamped, not allocated.
    assert!(c.search("boom", usize::MAX).unwrap().len() <= c.len());
}

#[test]
fn out_of_stock_products_are_found_and_marked() {
    let c = catalog();
    let hits = c.search("olijfboom", 3).unwrap();
    assert_eq!(&*hits[0].sku, "O1");
    assert_eq!((hits[0].stock, hits[0].in_stock), (0, false));
}

#[test]
fn stock_and_price_updates_are_visible_at_once() {
    let c = catalog();
    c.set_stock("O1", 7).unwrap();
    c.set_price("O1", Some(4500)).unwrap();
    let hit = &c.search("olijfboom", 1).unwrap()[0];
    assert_eq!((hit.stock, hit.in_stock, hit.price_cents), (7, true, Some(4500)));
    assert_eq!(c.adjust_stock("O1", -7).unwrap(), 0);
    assert!(!c.search("olijfboom", 1).unwrap()[0].in_stock);
    assert!(matches!(c.set_stock("NOPE", 1), Err(CatalogError::UnknownSku(_))));
    assert_eq!(c.product("O1").unwrap().price_cents, Some(4500));
}

#[test]
fn many_threads_search_while_stock_changes() {
    let c = Arc::new(catalog());
    let writer = {
        let c = Arc::clone(&c);
        std::thread::spawn(move || {
            for n in 0..2_000 {
                c.set_stock("B1", n).unwrap();
            }
            c.set_stock("B1", 99).unwrap();
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                let mut hits = Vec::new();
                for _ in 0..300 {
                    c.search_into("bananenboom", 3, &mut hits).unwrap();
                    assert_eq!(&*hits[0].sku, "B1");
                    assert!(
                        (0..2_000).contains(&hits[0].stock)
                            || hits[0].stock == 99
                            || hits[0].stock == 3
                    );
                }
            })
        })
        .collect();
    writer.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(c.search("musa", 1).unwrap()[0].stock, 99);
}

#[test]
fn synonyms_override_builtin_names_and_tolerate_typos() {
    let synonyms =
        Synonyms::parse("sierbanaan, winterharde banaan, musa basjoo\nstekelbes => kruisbes\n")
            .unwrap();
    let csv = "sku,name,latin_name\nB1,Musa basjoo,Musa basjoo\nK1,Kruisbes,Ribes uva-crispa\n";
    let (c, _) = Catalog::builder().synonyms(synonyms).from_csv_reader(csv.as_bytes()).unwrap();
    assert_eq!(first(&c, "sierbanaan"), ("B1".to_owned(), MatchKind::Synonym));
    assert_eq!(first(&c, "siebranaan").0, "B1");
    assert_eq!(first(&c, "winterharde banaan").0, "B1");
    assert_eq!(first(&c, "stekelbes").0, "K1");
    // One-way: the product word does not find the customer word's products.
    assert!(c.search("kruisbes", 5).unwrap().iter().all(|h| &*h.sku == "K1"));
}

#[test]
fn jsonl_import_and_an_on_disk_index_work_alike() {
    let jsonl = "{\"sku\":\"B1\",\"name\":\"Musa basjoo\",\"latin_name\":\"Musa basjoo\",\"stock\":3}\n\
                 {\"sku\":\"B2\",\"name\":\"Bad\",\"stock\":\"many\"}\n";
    let (ram, report) = Catalog::from_jsonl_reader(jsonl.as_bytes()).unwrap();
    assert_eq!((report.imported, report.rejected), (1, 1));
    assert_eq!(
        report.errors[0].to_string(),
        "line 2, field `stock`: expected a whole number, got `many`"
    );
    let dir = std::env::temp_dir().join(format!("loket-catalog-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (disk, _) = Catalog::builder().directory(&dir).from_jsonl_reader(jsonl.as_bytes()).unwrap();
    assert_eq!(first(&ram, "bananenboom"), first(&disk, "bananenboom"));
    drop(disk);
    std::fs::remove_dir_all(&dir).unwrap();
}
