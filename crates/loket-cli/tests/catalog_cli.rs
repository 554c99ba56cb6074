//! End-to-end tests of `loket catalog` and `loket bench search`.

use std::path::PathBuf;
use std::process::Command;

fn loket() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loket"))
}

fn testdata(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../loket-catalog/testdata").join(file)
}

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("loket-catalog-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn search_prints_one_json_line_per_query_with_the_contract_fields() {
    let queries = temp_file(
        "queries.txt",
        "hebben jullie nog bananenbomen op voorraad?\ndo you have lemon trees in stock\n\n",
    );
    let out = loket()
        .args(["catalog", "search", "--catalog"])
        .arg(testdata("garden_centre.csv"))
        .arg("--synonyms")
        .arg(testdata("synonyms.txt"))
        .args(["--limit", "3", "--queries"])
        .arg(&queries)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["query"], "hebben jullie nog bananenbomen op voorraad?");
    let first = &lines[0]["hits"][0];
    assert_eq!(first["sku"], "GC001");
    let mut keys: Vec<&str> = first.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["in_stock", "matched", "name", "price_cents", "score", "sku", "stock"]);
    assert_eq!(lines[1]["hits"][0]["sku"], "GC003");
    assert!(lines[1]["hits"].as_array().unwrap().len() <= 3);
    std::fs::remove_file(queries).unwrap();
}

#[test]
fn bad_rows_are_reported_on_stderr_and_the_run_continues() {
    let catalog = temp_file(
        "catalog.csv",
        "sku,name,latin_name,aliases,category,stock,price\nB1,Musa basjoo,Musa basjoo,,,3,1\nB2,Olijfboom,,,,veel,1\n",
    );
    let out = loket()
        .args(["catalog", "search", "--catalog"])
        .arg(&catalog)
        .args(["--query", "musa"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 3, field `stock`"), "{stderr}");
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["hits"][0]["sku"], "B1");
    std::fs::remove_file(catalog).unwrap();
}

#[test]
fn eval_prints_hit_at_1() {
    let out = loket()
        .args(["catalog", "eval", "--json", "--catalog"])
        .arg(testdata("garden_centre.csv"))
        .arg("--synonyms")
        .arg(testdata("synonyms.txt"))
        .arg("--queries")
        .arg(testdata("queries.tsv"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["hit_at_1"].as_f64().unwrap() >= 0.95, "{json}");
    assert!(json["by_kind"]["typo"]["queries"].as_u64().unwrap() >= 10);
}

#[test]
fn eval_of_a_shops_directory_reports_each_shop_and_every_kind() {
    let out = loket()
        .args(["catalog", "eval", "--json", "--shops"])
        .arg(testdata("shops"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let shops = json["shops"].as_object().unwrap();
    for shop in ["diy", "electronics", "fashion", "furniture", "groceries", "pets"] {
        assert!(shops[shop]["queries"].as_u64().unwrap() >= 40, "{shop}: {json}");
    }
    let queries: u64 = shops.values().map(|s| s["queries"].as_u64().unwrap()).sum();
    assert_eq!(json["queries"].as_u64().unwrap(), queries);
    assert!(json["hit_at_1"].as_f64().unwrap() >= 0.95, "{json}");
    assert!(json["by_kind"]["head"]["hit_at_1"].as_f64().unwrap() >= 0.95, "{json}");

    let out = loket()
        .args(["catalog", "eval", "--heldout", "--no-synonyms", "--shops"])
        .arg(testdata("shops"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("diy "), "{table}");
    assert!(table.contains("all shops:\nhit@1 "), "{table}");

    let out = loket()
        .args(["catalog", "eval", "--queries"])
        .arg(testdata("queries.tsv"))
        .arg("--shops")
        .arg(testdata("shops"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "--queries and --shops together");
}

#[test]
fn eval_reads_held_out_queries_from_another_folder() {
    let eval = |extra: &[&str]| {
        loket()
            .args(["catalog", "eval", "--json", "--shops"])
            .arg(testdata("shops"))
            .args(extra)
            .output()
            .unwrap()
    };
    let heldout = eval(&["--heldout"]);
    assert!(heldout.status.success(), "{}", String::from_utf8_lossy(&heldout.stderr));
    let named = eval(&["--heldout-dir", "heldout"]);
    assert!(named.status.success(), "{}", String::from_utf8_lossy(&named.stderr));
    assert_eq!(named.stdout, heldout.stdout);
    let development = eval(&[]);
    assert_ne!(development.stdout, heldout.stdout);

    let missing = eval(&["--heldout-dir", "no_such_folder"]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("no_such_folder"), "{stderr}");
}

#[test]
fn bench_search_ends_with_a_json_line() {
    let out = loket()
        .args(["bench", "search", "--json", "--products", "2000", "--queries", "300"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    for key in ["index_ms", "queries", "p50_us", "p99_us", "qps"] {
        assert!(last[key].is_number(), "{key} missing in {last}");
    }
    assert_eq!(last["queries"], 300);
}

#[test]
fn search_needs_a_query() {
    let out = loket()
        .args(["catalog", "search", "--catalog"])
        .arg(testdata("garden_centre.csv"))
        .output()
        .unwrap();
    assert!(!out.status.success());
}
