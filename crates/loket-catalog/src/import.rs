//! Catalog import from CSV and JSONL.
//!
//! Both formats carry the fields `sku, name, latin_name, aliases, category,
//! stock, price`; `aliases` is `|`-separated in CSV (a JSON array or a
//! `|`-separated string in JSONL); any other column is kept as an attribute.
//! A bad row is rejected with an error naming its line and field, and the
//! import goes on.

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, Read};

use serde_json::Value;

use crate::CatalogError;

/// One product as imported.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Product {
    /// Stock-keeping unit: the product's unique key.
    pub sku: String,
    /// The name shown to customers (falls back to the Latin name when empty).
    pub name: String,
    /// Botanical name, e.g. `Musa basjoo`; may be empty.
    pub latin_name: String,
    /// Other names: trade names, old Latin names, spelling variants.
    pub aliases: Vec<String>,
    /// Free-form category, e.g. `fruitbomen`.
    pub category: String,
    /// Units in stock (may be negative for back orders).
    pub stock: i64,
    /// Price in cents, if known.
    pub price_cents: Option<u64>,
    /// Extra columns, in file order.
    pub attributes: Vec<(String, String)>,
}

/// A rejected row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line in the input where the row starts.
    pub line: u64,
    /// The offending field, if one field is to blame.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "line {}, field `{}`: {}", self.line, field, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

impl std::error::Error for RowError {}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Rows imported.
    pub imported: usize,
    /// Rows rejected; each has an entry in `errors`.
    pub rejected: usize,
    /// One error per rejected row, in input order.
    pub errors: Vec<RowError>,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} products imported, {} rows rejected", self.imported, self.rejected)
    }
}

/// Collects rows, rejecting duplicate skus.
#[derive(Default)]
struct Collector {
    products: Vec<Product>,
    first_line: HashMap<String, u64>,
    report: ImportReport,
}

impl Collector {
    fn reject(&mut self, line: u64, field: Option<&str>, message: String) {
        self.report.rejected += 1;
        self.report.errors.push(RowError { line, field: field.map(str::to_owned), message });
    }

    fn accept(&mut self, line: u64, mut product: Product) {
        if let Some(first) = self.first_line.get(&product.sku) {
            let message = format!("duplicate sku `{}` (first on line {first})", product.sku);
            self.reject(line, Some("sku"), message);
            return;
        }
        if product.name.is_empty() {
            product.name = product.latin_name.clone();
        }
        self.first_line.insert(product.sku.clone(), line);
        self.products.push(product);
        self.report.imported += 1;
    }

    fn finish(self) -> (Vec<Product>, ImportReport) {
        (self.products, self.report)
    }
}

/// The fields every row must or may have.
const KNOWN: [&str; 7] = ["sku", "name", "latin_name", "aliases", "category", "stock", "price"];

fn parse_stock(raw: &str) -> Result<i64, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(0);
    }
    s.parse::<i64>().map_err(|_| format!("expected a whole number, got `{}`", shorten(s)))
}

/// Parses `12.95`, `12,95`, `€ 12,95` or `12` into cents.
fn parse_price(raw: &str) -> Result<Option<u64>, String> {
    let s = raw.trim().trim_start_matches('€').trim();
    if s.is_empty() {
        return Ok(None);
    }
    let bad = || format!("expected a price like `12.95`, got `{}`", shorten(raw.trim()));
    let (whole, frac) = match s.find(['.', ',']) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    };
    if whole.is_empty() || whole.len() > 12 || frac.len() > 2 {
        return Err(bad());
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let cents: u64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<u64>().map_err(|_| bad())? * 10,
        _ => frac.parse().map_err(|_| bad())?,
    };
    Ok(Some(whole * 100 + cents))
}

fn shorten(s: &str) -> &str {
    let mut end = s.len().min(40);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn split_aliases(raw: &str) -> Vec<String> {
    raw.split('|').map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect()
}

/// Builds a product from text cells, or names the first bad field.
fn product_from_cells(
    cell: impl Fn(&str) -> Option<String>,
    attributes: Vec<(String, String)>,
) -> Result<Product, (&'static str, String)> {
    let get = |field: &str| cell(field).unwrap_or_default().trim().to_owned();
    let sku = get("sku");
    if sku.is_empty() {
        return Err(("sku", "empty sku".to_owned()));
    }
    let name = get("name");
    let latin_name = get("latin_name");
    if name.is_empty() && latin_name.is_empty() {
        return Err(("name", "a product needs a name or a latin_name".to_owned()));
    }
    let stock = parse_stock(&get("stock")).map_err(|m| ("stock", m))?;
    let price_cents = parse_price(&get("price")).map_err(|m| ("price", m))?;
    Ok(Product {
        sku,
        name,
        latin_name,
        aliases: split_aliases(&get("aliases")),
        category: get("category"),
        stock,
        price_cents,
        attributes,
    })
}

/// Reads products from CSV with a header row.
///
/// # Errors
///
/// Only whole-file problems: an unreadable input or a header without a `sku`
/// or `name` column. Bad rows go into the report.
pub fn read_csv<R: Read>(reader: R) -> Result<(Vec<Product>, ImportReport), CatalogError> {
    let mut csv = csv::ReaderBuilder::new().flexible(true).has_headers(true).from_reader(reader);
    let header = csv.byte_headers().map_err(csv_fatal)?.clone();
    let names: Vec<String> = header
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim_start_matches('\u{feff}').trim().to_lowercase())
        .collect();
    for required in ["sku", "name"] {
        if !names.iter().any(|n| n == required) {
            return Err(CatalogError::MissingColumn(required));
        }
    }
    let mut collector = Collector::default();
    let mut record = csv::ByteRecord::new();
    loop {
        let line = csv.position().line();
        match csv.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => {
                if let csv::ErrorKind::Io(_) = error.kind() {
                    return Err(csv_fatal(error));
                }
                let line = error.position().map_or(line, csv::Position::line);
                collector.reject(line, None, format!("malformed CSV: {error}"));
                continue;
            }
        }
        let line = record.position().map_or(line, csv::Position::line);
        if record.len() == 1 && record.get(0).is_some_and(|c| c.iter().all(u8::is_ascii_whitespace))
        {
            continue; // A blank line.
        }
        if record.len() > names.len() {
            let message = format!("{} cells but the header has {}", record.len(), names.len());
            collector.reject(line, None, message);
            continue;
        }
        let mut cells: Vec<(String, String)> = Vec::with_capacity(names.len());
        let mut bad = None;
        for (name, raw) in names.iter().zip(record.iter()) {
            match std::str::from_utf8(raw) {
                Ok(value) => cells.push((name.clone(), value.to_owned())),
                Err(_) => {
                    bad = Some(name.clone());
                    break;
                }
            }
        }
        if let Some(field) = bad {
            collector.reject(line, Some(&field), "not valid UTF-8".to_owned());
            continue;
        }
        let attributes = cells
            .iter()
            .filter(|(name, value)| !KNOWN.contains(&name.as_str()) && !value.trim().is_empty())
            .cloned()
            .collect();
        let cell = |field: &str| cells.iter().find(|(n, _)| n == field).map(|(_, v)| v.clone());
        match product_from_cells(cell, attributes) {
            Ok(product) => collector.accept(line, product),
            Err((field, message)) => collector.reject(line, Some(field), message),
        }
    }
    Ok(collector.finish())
}

fn csv_fatal(error: csv::Error) -> CatalogError {
    match error.into_kind() {
        csv::ErrorKind::Io(io) => CatalogError::Io(io),
        other => CatalogError::Malformed(format!("{other:?}")),
    }
}

/// Reads products from JSON Lines: one object per line, blank lines skipped.
///
/// # Errors
///
/// Only an unreadable input; bad lines go into the report.
pub fn read_jsonl<R: BufRead>(reader: R) -> Result<(Vec<Product>, ImportReport), CatalogError> {
    let mut collector = Collector::default();
    let mut buf = Vec::new();
    let mut reader = reader;
    let mut line: u64 = 0;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line += 1;
        let Ok(text) = std::str::from_utf8(&buf) else {
            collector.reject(line, None, "not valid UTF-8".to_owned());
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        let object = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                collector.reject(line, None, "expected a JSON object".to_owned());
                continue;
            }
            Err(error) => {
                collector.reject(line, None, format!("invalid JSON: {error}"));
                continue;
            }
        };
        match product_from_json(&object) {
            Ok(product) => collector.accept(line, product),
            Err((field, message)) => collector.reject(line, Some(&field), message),
        }
    }
    Ok(collector.finish())
}

fn product_from_json(object: &serde_json::Map<String, Value>) -> Result<Product, (String, String)> {
    let mut cells: Vec<(String, String)> = Vec::new();
    let mut attributes = Vec::new();
    for (key, value) in object {
        let field = key.trim().to_lowercase();
        let text = match (field.as_str(), value) {
            (_, Value::Null) => continue,
            (_, Value::String(s)) => s.clone(),
            ("aliases", Value::Array(items)) => {
                let mut joined = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => joined.push(s.replace('|', " ")),
                        _ => return Err((field, "aliases must be strings".to_owned())),
                    }
                }
                joined.join("|")
            }
            ("sku" | "stock" | "price", Value::Number(n)) => n.to_string(),
            (f, Value::Number(_) | Value::Bool(_)) if KNOWN.contains(&f) => {
                return Err((field, format!("expected a string, got {value}")));
            }
            (f, _) if KNOWN.contains(&f) => {
                return Err((field, "expected a string".to_owned()));
            }
            (_, other) => other.to_string(),
        };
        if KNOWN.contains(&field.as_str()) {
            cells.push((field, text));
        } else {
            attributes.push((key.clone(), text));
        }
    }
    let cell = |field: &str| cells.iter().find(|(n, _)| n == field).map(|(_, v)| v.clone());
    product_from_cells(cell, attributes).map_err(|(f, m)| (f.to_owned(), m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_imports_good_rows_and_names_bad_ones() {
        let csv = "sku,name,latin_name,aliases,category,stock,price,pot\n\
                   P1,Bananenplant,Musa basjoo,Japanse banaan|Musa japonica,tropisch,4,24.95,19cm\n\
                   P2,,Olea europaea,,,0,\n\
                   P3,Citroenboom,Citrus limon,,fruit,veel,12\n\
                   ,Naamloos,,,,1,1\n\
                   P1,Dubbel,,,,1,1\n\
                   P4,Vijg,Ficus carica,,,2,\"12,50\"\n\
                   P5,Duur,,,,1,12.999\n";
        let (products, report) = read_csv(csv.as_bytes()).unwrap();
        assert_eq!(report.imported, 3);
        assert_eq!(report.rejected, 4);
        let p1 = &products[0];
        assert_eq!(p1.aliases, ["Japanse banaan", "Musa japonica"]);
        assert_eq!(p1.price_cents, Some(2495));
        assert_eq!(p1.attributes, [("pot".to_owned(), "19cm".to_owned())]);
        assert_eq!(products[1].name, "Olea europaea");
        assert_eq!(products[1].price_cents, None);
        assert_eq!(products[2].price_cents, Some(1250));
        let shown: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        assert!(shown[0].starts_with("line 4, field `stock`"), "{shown:?}");
        assert!(shown[1].starts_with("line 5, field `sku`"), "{shown:?}");
        assert!(shown[2].contains("duplicate sku `P1` (first on line 2)"), "{shown:?}");
        assert!(shown[3].starts_with("line 8, field `price`"), "{shown:?}");
    }

    #[test]
    fn csv_without_sku_column_is_fatal() {
        let err = read_csv("name,stock\nBoom,1\n".as_bytes()).unwrap_err();
        assert!(matches!(err, CatalogError::MissingColumn("sku")));
    }

    #[test]
    fn jsonl_accepts_arrays_numbers_and_extra_fields() {
        let jsonl = r#"{"sku":"A1","name":"Olijfboom","aliases":["Olea"],"stock":3,"price":19.5,"hoogte":"80cm"}

{"sku":"A2","name":"Vijg","stock":"x"}
not json
{"sku":"A3","latin_name":"Ficus carica","aliases":"vijg|fig","stock":null}
"#;
        let (products, report) = read_jsonl(jsonl.as_bytes()).unwrap();
        assert_eq!(report.imported, 2);
        assert_eq!(report.rejected, 2);
        assert_eq!(products[0].price_cents, Some(1950));
        assert_eq!(products[0].attributes, [("hoogte".to_owned(), "80cm".to_owned())]);
        assert_eq!(products[1].aliases, ["vijg", "fig"]);
        assert_eq!(
            report.errors[0].to_string(),
            "line 3, field `stock`: expected a whole number, got `x`"
        );
        assert!(report.errors[1].to_string().starts_with("line 4: invalid JSON"));
    }

    #[test]
    fn prices_parse_exactly() {
        assert_eq!(parse_price("€ 7,5"), Ok(Some(750)));
        assert_eq!(parse_price("0.05"), Ok(Some(5)));
        assert!(parse_price("-1").is_err());
        assert!(parse_price("1.2.3").is_err());
        assert!(parse_price("99999999999999999999").is_err());
    }
}
