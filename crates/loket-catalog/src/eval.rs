//! Search quality evaluation: hit@1 over a labelled query set.
//!
//! The query file is TSV, one case a line, `#` comments allowed:
//!
//! ```text
//! # query<TAB>expected sku[|another acceptable sku]<TAB>kind
//! bananenboom<TAB>P001<TAB>synonym
//! ```
//!
//! `kind` is free text used to break the figure down (`typo`, `chat`, ...).

use std::collections::BTreeMap;

use crate::{Catalog, CatalogError, Hit};

/// One labelled query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryCase {
    /// 1-based line in the query file.
    pub line: usize,
    /// What the customer typed.
    pub query: String,
    /// Skus that count as a correct first hit.
    pub expected: Vec<String>,
    /// The kind of query, for the breakdown.
    pub kind: String,
}

/// A query-file line that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("queries line {line}: {message}")]
pub struct QueryFileError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses a query file.
///
/// # Errors
///
/// The first line with fewer than two tab-separated columns or an empty
/// query or sku.
pub fn parse_queries(source: &str) -> Result<Vec<QueryCase>, QueryFileError> {
    let mut cases = Vec::new();
    for (index, raw) in source.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() || raw.trim_start().starts_with('#') {
            continue;
        }
        let mut cols = raw.split('\t');
        let query = cols.next().unwrap_or("").trim();
        let expected: Vec<String> = cols
            .next()
            .unwrap_or("")
            .split('|')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let kind = cols.next().unwrap_or("other").trim();
        if query.is_empty() || expected.is_empty() {
            return Err(QueryFileError {
                line,
                message: "expected `query<TAB>sku[<TAB>kind]`".to_owned(),
            });
        }
        cases.push(QueryCase {
            line,
            query: query.to_owned(),
            expected,
            kind: if kind.is_empty() { "other" } else { kind }.to_owned(),
        });
    }
    Ok(cases)
}

/// Hits and totals for one group of queries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Queries whose first hit was expected.
    pub hits: usize,
    /// Queries.
    pub total: usize,
}

impl Tally {
    /// `hits / total` (0 for no queries).
    pub fn hit_at_1(&self) -> f64 {
        if self.total == 0 { 0.0 } else { self.hits as f64 / self.total as f64 }
    }
}

/// A query whose first hit was wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Miss {
    /// The case.
    pub case: QueryCase,
    /// The first hit's sku, if any.
    pub got: Option<String>,
}

/// The outcome of [`evaluate`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvalReport {
    /// All queries.
    pub overall: Tally,
    /// Per kind.
    pub by_kind: BTreeMap<String, Tally>,
    /// The misses, in file order.
    pub misses: Vec<Miss>,
}

/// Runs every case and counts first hits.
///
/// # Errors
///
/// A search error (see [`Catalog::search_into`]).
pub fn evaluate(catalog: &Catalog, cases: &[QueryCase]) -> Result<EvalReport, CatalogError> {
    let mut report = EvalReport::default();
    let mut hits: Vec<Hit> = Vec::new();
    for case in cases {
        catalog.search_into(&case.query, 1, &mut hits)?;
        let got = hits.first().map(|h| h.sku.to_string());
        let ok = got.as_ref().is_some_and(|g| case.expected.iter().any(|e| e == g));
        let tally = report.by_kind.entry(case.kind.clone()).or_default();
        tally.total += 1;
        report.overall.total += 1;
        if ok {
            tally.hits += 1;
            report.overall.hits += 1;
        } else {
            report.misses.push(Miss { case: case.clone(), got });
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cases_and_rejects_bad_lines() {
        let cases = parse_queries("# q\tsku\tkind\nolijf\tO1|O2\tcompound\nmusa\tB1\n").unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].expected, ["O1", "O2"]);
        assert_eq!(cases[1].kind, "other");
        assert_eq!(parse_queries("ok\tA\n\tB\n").unwrap_err().line, 2);
    }
}
