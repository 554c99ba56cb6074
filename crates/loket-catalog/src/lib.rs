//! Stock lookup that never misses: product search for garden centres and
//! plant shops that finds a product from whatever a customer types in a chat.
//!
//! A grower once lost thousands in sales because its stock system listed the
//! banana tree only as *Musa*: nobody searching for "bananenboom" found it.
//! [`Catalog`] finds it through
//!
//! - **typos** by word length, as Meilisearch: one from 5 letters, two from
//!   9, a transposition counting as one (`bananeboom`, `citorenboom`);
//! - **synonyms** from a Solr-format file ([`Synonyms`]) and **common names**
//!   from a built-in Dutch and English dictionary ([`NameDictionary`]);
//! - **Latin names**, genus or species (`musa`, `olea europaea`), and old
//!   names through aliases;
//! - **Dutch morphology**: compounds (`bananenboom` = `banaan` + `boom`),
//!   plurals, diminutives (`olijfboompje`), split and joined forms (`olijf
//!   boom`, `blauwe regen` / `blauweregen`), and snowball stems;
//! - **whole chat messages**: "hebben jullie nog bananenbomen op voorraad?"
//!   loses its question frame and stop words and keeps `bananenbomen`.
//!
//! Every [`Hit`] says how it matched ([`MatchKind`]) and carries the live
//! stock, which changes without re-indexing ([`Catalog::set_stock`]).
//!
//! ```
//! use loket_catalog::{Catalog, MatchKind};
//!
//! let csv = "sku,name,latin_name,aliases,category,stock,price\n\
//!            B1,Musa basjoo,Musa basjoo,,tropisch,3,24.95\n\
//!            O1,Olijfboom,Olea europaea,,mediterraan,0,39.95\n";
//! let (catalog, report) = Catalog::from_csv_reader(csv.as_bytes())?;
//! assert_eq!(report.imported, 2);
//!
//! let hits = catalog.search("hebben jullie nog bananenbomen op voorraad?", 5)?;
//! assert_eq!(&*hits[0].sku, "B1");
//! assert_eq!(hits[0].matched, MatchKind::Synonym); // through the built-in names
//!
//! let hits = catalog.search("olijfboompje", 5)?;
//! assert_eq!(&*hits[0].sku, "O1");
//! assert!(!hits[0].in_stock); // found, and marked out of stock
//!
//! catalog.set_stock("O1", 12)?; // visible to the next search at once
//! assert_eq!(catalog.search("olijfboom", 1)?[0].stock, 12);
//! # Ok::<(), loket_catalog::CatalogError>(())
//! ```
//!
//! # Sharing
//!
//! `Catalog` is `Send + Sync`; wrap it in an `Arc` and search from many
//! threads at once. The text index never changes after [`CatalogBuilder::build`];
//! stock and price are atomics.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod catalog;
pub mod compound;
pub mod eval;
pub mod import;
pub mod names;
pub mod synonyms;
pub mod synthetic;
pub mod text;

#[doc(hidden)]
pub mod fuzz_checks;

use std::fmt;
use std::sync::Arc;

pub use catalog::{Catalog, CatalogBuilder};
pub use import::{ImportReport, Product, RowError};
pub use names::{NameDictionary, NamesError};
pub use synonyms::{SynonymError, SynonymRule, Synonyms};

/// Errors of the catalog. Bad rows are not errors (see [`ImportReport`]).
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The CSV header lacks a required column.
    #[error("the catalog header has no `{0}` column")]
    MissingColumn(&'static str),
    /// The input is not CSV at all.
    #[error("malformed catalog: {0}")]
    Malformed(String),
    /// Reading the input failed.
    #[error("reading the catalog: {0}")]
    Io(#[from] std::io::Error),
    /// The search index failed (on-disk directories only, in practice).
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// No product has this sku.
    #[error("unknown sku `{0}`")]
    UnknownSku(String),
    /// `u64::MAX` cents is reserved to mean "no price".
    #[error("price out of range")]
    InvalidPrice,
}

/// How a hit matched the query: the least direct way any query word matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchKind {
    /// A word of the name, or a plural, diminutive or stem of one.
    Exact,
    /// The Latin name (genus, species or cultivar).
    Latin,
    /// An alias, a synonyms-file entry or a built-in common name.
    Synonym,
    /// A compound part or a split/joined form (`vijgenboom` -> `vijg`).
    Compound,
    /// Within the typo budget of a word.
    Fuzzy,
}

impl MatchKind {
    /// The lowercase name used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::Latin => "latin",
            MatchKind::Synonym => "synonym",
            MatchKind::Compound => "compound",
            MatchKind::Fuzzy => "fuzzy",
        }
    }

    /// Directness: 0 for exact up to 4 for fuzzy.
    fn rank(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for MatchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The product's sku (shared with the catalog: cloning is cheap).
    pub sku: Arc<str>,
    /// The product's name.
    pub name: Arc<str>,
    /// Relevance; higher is better. Comparable within one query only.
    pub score: f32,
    /// Stock at the time of the search.
    pub stock: i64,
    /// `stock > 0`.
    pub in_stock: bool,
    /// Price in cents at the time of the search, if known.
    pub price_cents: Option<u64>,
    /// How the product matched.
    pub matched: MatchKind,
}

/// The one JSON shape of a hit, on every surface (`loket catalog search`,
/// loketd): `sku`, `name`, `score` (4 decimals), `stock`, `in_stock`,
/// `price_cents` (null when unknown) and `matched` ([`MatchKind::as_str`]).
impl serde::Serialize for Hit {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut hit = serializer.serialize_struct("Hit", 7)?;
        hit.serialize_field("sku", &*self.sku)?;
        hit.serialize_field("name", &*self.name)?;
        hit.serialize_field("score", &((f64::from(self.score) * 10_000.0).round() / 10_000.0))?;
        hit.serialize_field("stock", &self.stock)?;
        hit.serialize_field("in_stock", &self.in_stock)?;
        hit.serialize_field("price_cents", &self.price_cents)?;
        hit.serialize_field("matched", self.matched.as_str())?;
        hit.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn catalog_is_send_and_sync() {
        assert_send_sync::<Catalog>();
        assert_send_sync::<std::sync::Arc<Catalog>>();
    }
}
