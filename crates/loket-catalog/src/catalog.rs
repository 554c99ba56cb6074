//! The searchable catalog: analysis at build time, a tantivy index, a
//! lock-free stock and price side table, and the query planner.
//!
//! # How a product is indexed
//!
//! Every product becomes one tantivy document with one field per *way of
//! matching*, each holding already-analysed terms (space-separated, split by
//! tantivy's whitespace tokenizer):
//!
//! | field   | holds                                                         | [`MatchKind`] |
//! |---------|---------------------------------------------------------------|---------------|
//! | `name`  | the product words of the name and their base forms (`bomen` -> `boom`) | `exact` |
//! | `full`  | what `name` lacks: the qualifiers and every compound head, so its length follows the name's | `exact` (a qualifier) |
//! | `stem`  | Dutch and English snowball stems of the product words         | `exact`       |
//! | `latin` | Latin name words (genus, species, cultivar)                   | `latin`       |
//! | `alias` | alias words, base forms and joined multi-word aliases         | `synonym`     |
//! | `syn`   | expansions from the synonyms file and the built-in names (a multi-word phrase joined) | `synonym` |
//! | `head`  | compound heads at every level (`accuboormachine` -> `boormachine`, `machine`), and each product word that does not split | `compound` |
//! | `part`  | the heads again, compound modifiers (`kattenbakvulling` -> `kattenbak`, `katten`, `kat`, `bak`), qualifiers, words hyphened to the next (`Tv-muurbeugel`), the words of multi-word synonyms and joined word pairs (`blauwe regen` -> `blauweregen`) | `compound` |
//!
//! The *product words* of a name run up to its first Dutch noun (brand and
//! adjectives before it: `Bosch Accuboormachine`, `Halfvolle melk`); the
//! words after it *qualify* it (`Hagelslag melk`, `Tuinset (tafel en 4
//! stoelen)`, `Drinkyoghurt aardbei`) the way a compound's modifiers do, and
//! are indexed as modifiers: `melk` finds the milk before the sprinkles. A
//! name without a Dutch noun is all product words. A word hyphened to the
//! next (`Tv-muurbeugel`) and a simple word in `-en` before another noun
//! (`Glazen vaas`, `Leren handschoenen`) are modifiers too.
//!
//! Compounds are split with the Dutch dictionary ([`crate::compound`]) and
//! the catalog's own words. A head match outranks a modifier match (`verf`
//! finds `Muurverf` before `Verfroller`): heads are in the part field too,
//! so a term has one document frequency there whatever its role, and the
//! head field's match adds to it. A whole word outranks both (name weighs
//! most). The head and full fields have field norms like the name field, so
//! among products with the same head the shortest name wins.
//!
//! Synonyms and common names are expanded at *index* time, so a typo in a
//! synonym (`bananeboom`) is caught by the same typo search as a typo in a
//! name, and a query costs the same with or without a synonyms file.
//!
//! Typos are resolved against an FST of every name, Latin, alias and synonym
//! term (one Levenshtein-automaton walk per query word, instead of one per
//! field and segment); each term found becomes a constant-score term query
//! on the fields that hold it, one typo scoring above two.
//!
//! # How a query runs
//!
//! The query is split into words; stop words and question frames go. Each
//! remaining word becomes a disjunction (best alternative wins) of exact term
//! queries on its known base forms in every field, weighted by field; its
//! compound parts when the word itself is unknown (split with the
//! dictionary: `kinderjasjes` -> `kinder` + `jasjes`); and typo queries by
//! word length when no form of it is known. A query compound's head weighs
//! more than its modifiers (unless it is a generic plant word: a
//! `kiwistruik` is a kiwi first), and a split with a part the catalog lacks
//! weighs little (likelier a typo). Words written apart that a product name
//! writes as one are taken as that word (`hoge druk reiniger` and `hogedruk
//! reiniger` -> `hogedrukreiniger`), so split and joined spellings rank
//! alike; other adjacent words are also tried joined, two and three at a
//! time (a stop word among them: `was machine` -> `wasmachine`) and a pair
//! reversed (`schroeven voor hout` -> `houtschroeven`). Words after `voor`
//! say what the product is for: they weigh less, join among themselves only
//! and are tried as the modifier of the word before `voor` (`kooi voor mijn
//! dwerghamster` -> `hamsterkooi`). The
//! words' scores add up, so the product
//! matching most words ranks first, and BM25 favours short, specific names.
//! Typo queries score a constant below any exact match of the same word.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use tantivy::collector::TopDocs;
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, DisjunctionMaxQuery, FuzzyTermQuery, Occur, Query,
    TermQuery,
};
use tantivy::schema::{FAST, Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::{TextAnalyzer, WhitespaceTokenizer};
use tantivy::{
    DocId, Index, IndexWriter, ReloadPolicy, Score, Searcher, SegmentReader, TantivyDocument, Term,
};
use tantivy_fst::{IntoStreamer, Streamer};

use crate::import::{self, ImportReport, Product};
use crate::names::NameDictionary;
use crate::synonyms::{Phrase, SynonymRule, Synonyms};
use crate::text;
use crate::{CatalogError, Hit, MatchKind};

/// Field tags kept per product for [`MatchKind`] classification.
const F_NAME: u32 = 0;
const F_LATIN: u32 = 1;
const F_ALIAS: u32 = 2;
const F_SYN: u32 = 3;
const F_PART: u32 = 4;
const F_STEM: u32 = 5;
const F_HEAD: u32 = 6;
const F_FULL: u32 = 7;
const TAG_BITS: u32 = 3;

/// Per-field weights of an exact term match. Name beats Latin beats alias
/// beats synonym beats compound head beats compound modifier: the more
/// direct the match, the higher.
const W_NAME: f32 = 3.0;
const W_LATIN: f32 = 2.8;
const W_ALIAS: f32 = 2.5;
const W_SYN: f32 = 2.2;
const W_HEAD: f32 = 2.0;
const W_PART: f32 = 1.5;
const W_STEM: f32 = 1.4;
/// The qualifiers and compound heads of the name: low, so it mostly breaks
/// ties (with length normalisation: the shorter name first).
const W_FULL: f32 = 0.3;
const W_COMPOUND: f32 = 1.0;
/// A query compound's modifiers weigh less than its head.
const W_COMPOUND_MODIFIER: f32 = 0.6;
/// A query compound the index knows only some parts of: likelier a typo,
/// so it weighs less than a one-typo match of a whole word.
const W_PARTIAL_SPLIT: f32 = 0.1;
/// A joined pair stands for two words, so it outweighs either word alone;
/// a joined triple for three.
const W_JOIN: f32 = 6.0;
const W_JOIN3: f32 = 9.0;
/// A pair joined the other way round (`schroeven hout` -> `houtschroeven`)
/// is likelier a coincidence, so it counts for a little more than one word.
const W_JOIN_REVERSED: f32 = 4.0;
/// Constant scores of typo matches (tantivy scores every fuzzy hit the same,
/// so one typo and two typos get separate queries with separate boosts).
const W_FUZZY_1: f32 = 3.0;
const W_FUZZY_2: f32 = 1.8;
/// At most this many words of a chat message are searched.
const MAX_QUERY_WORDS: usize = 12;
/// At most this many words of a chat message are read, stop words included.
const MAX_MESSAGE_WORDS: usize = 48;
/// Words after `voor` (what the product is for) weigh this much of a word
/// naming the product.
const W_PURPOSE: f32 = 0.35;
/// Words that start what a product is for.
const PURPOSE_WORDS: &[&str] = &["voor", "for", "tegen", "against"];

/// Marks a price that is not set in the side table.
const NO_PRICE: u64 = u64::MAX;

/// Generic head words of plant compounds, known even when no product or
/// name uses them alone, so `vijgenboom` splits into `vijg` + `boom` (the
/// English ones are not in the Dutch dictionary).
const HEAD_WORDS: &[&str] = &[
    "boom", "boompje", "struik", "plant", "bloem", "bol", "kruid", "palm", "varen", "gras",
    "heester", "haag", "zaad", "vrucht", "bes", "klimmer", "tree", "bush", "shrub", "flower",
    "bulb", "herb", "grass", "fern", "vine", "hedge", "seed", "berry", "fruit",
];

/// An analysed term, shared between the memo tables and the products using
/// it (a reference-count bump instead of an allocation per use).
type Tok = Arc<str>;

#[derive(Debug, Clone, Copy)]
struct Fields {
    ord: Field,
    name: Field,
    latin: Field,
    alias: Field,
    syn: Field,
    head: Field,
    part: Field,
    stem: Field,
    full: Field,
}

/// Builds a [`Catalog`]: choose synonyms, names and storage, then import.
#[derive(Debug, Clone)]
pub struct CatalogBuilder {
    synonyms: Synonyms,
    names: NameDictionary,
    directory: Option<PathBuf>,
    threads: usize,
}

impl Default for CatalogBuilder {
    fn default() -> Self {
        CatalogBuilder {
            synonyms: Synonyms::default(),
            names: NameDictionary::builtin(),
            directory: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
        }
    }
}

impl CatalogBuilder {
    /// Uses a synonyms file. Names it covers take precedence over the
    /// built-in names.
    #[must_use]
    pub fn synonyms(mut self, synonyms: Synonyms) -> Self {
        self.synonyms = synonyms;
        self
    }

    /// Replaces the common-name dictionary (default: [`NameDictionary::builtin`];
    /// pass [`NameDictionary::empty`] to switch it off).
    #[must_use]
    pub fn names(mut self, names: NameDictionary) -> Self {
        self.names = names;
        self
    }

    /// Keeps the text index in `directory` (which must exist and hold no
    /// index) instead of in RAM. Stock and prices always live in RAM.
    #[must_use]
    pub fn directory(mut self, directory: impl Into<PathBuf>) -> Self {
        self.directory = Some(directory.into());
        self
    }

    /// Indexing threads (default: available cores, at most 4).
    #[must_use]
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.clamp(1, 8);
        self
    }

    /// Imports CSV (see [`crate::import`]) and builds the catalog.
    ///
    /// # Errors
    ///
    /// An unreadable input, a header without `sku` or `name`, or an index
    /// error. Bad rows are not errors: they are in the [`ImportReport`].
    pub fn from_csv_reader<R: std::io::Read>(
        self,
        reader: R,
    ) -> Result<(Catalog, ImportReport), CatalogError> {
        let (products, report) = import::read_csv(reader)?;
        Ok((self.build(products)?, report))
    }

    /// Imports JSON Lines and builds the catalog.
    ///
    /// # Errors
    ///
    /// An unreadable input or an index error; bad lines are in the report.
    pub fn from_jsonl_reader<R: std::io::BufRead>(
        self,
        reader: R,
    ) -> Result<(Catalog, ImportReport), CatalogError> {
        let (products, report) = import::read_jsonl(reader)?;
        Ok((self.build(products)?, report))
    }

    /// Builds the catalog from products. Later duplicates of a sku are
    /// dropped (the importers already reject them).
    ///
    /// # Errors
    ///
    /// An index error (only possible with an on-disk directory).
    pub fn build(self, products: Vec<Product>) -> Result<Catalog, CatalogError> {
        Catalog::build(self, products)
    }
}

/// One product in the catalog with its live stock and price.
#[derive(Debug)]
struct Entry {
    sku: Arc<str>,
    name: Arc<str>,
    product: Product,
    stock: AtomicI64,
    price: AtomicU64,
    /// Sorted `term_id << TAG_BITS | field` of every indexed term.
    terms: Box<[u32]>,
}

/// A searchable product catalog.
///
/// `Catalog` is `Send + Sync`: wrap it in an `Arc` and search from any
/// number of threads. Text is immutable once built; stock and price are
/// atomics updated in place ([`Catalog::set_stock`], [`Catalog::set_price`])
/// and every later search sees the new values.
#[derive(Debug)]
pub struct Catalog {
    /// Keeps the index (and its directory) alive for the searcher.
    _index: Index,
    searcher: Searcher,
    fields: Fields,
    entries: Vec<Entry>,
    by_sku: FxMap<Arc<str>, u32>,
    /// Every indexed term -> its id.
    lexicon: FxMap<Box<str>, u32>,
    /// Term id -> term.
    terms: Vec<Box<str>>,
    /// Term id -> bit per field tag holding it.
    masks: Vec<u8>,
    /// Surface terms for typo search.
    surface: tantivy_fst::Map<Vec<u8>>,
}

impl Catalog {
    /// A builder with the built-in names and no synonyms file.
    pub fn builder() -> CatalogBuilder {
        CatalogBuilder::default()
    }

    /// Imports CSV with default settings; see [`CatalogBuilder::from_csv_reader`].
    ///
    /// # Errors
    ///
    /// As [`CatalogBuilder::from_csv_reader`].
    pub fn from_csv_reader<R: std::io::Read>(
        reader: R,
    ) -> Result<(Catalog, ImportReport), CatalogError> {
        Catalog::builder().from_csv_reader(reader)
    }

    /// Imports JSON Lines with default settings; see
    /// [`CatalogBuilder::from_jsonl_reader`].
    ///
    /// # Errors
    ///
    /// As [`CatalogBuilder::from_jsonl_reader`].
    pub fn from_jsonl_reader<R: std::io::BufRead>(
        reader: R,
    ) -> Result<(Catalog, ImportReport), CatalogError> {
        Catalog::builder().from_jsonl_reader(reader)
    }

    /// Number of index segments (diagnostics).
    #[doc(hidden)]
    pub fn segment_count(&self) -> usize {
        self.searcher.segment_readers().len()
    }

    /// Number of products.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the catalog has no products.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn entry(&self, sku: &str) -> Result<&Entry, CatalogError> {
        self.by_sku
            .get(sku)
            .map(|&ord| &self.entries[ord as usize])
            .ok_or_else(|| CatalogError::UnknownSku(sku.to_owned()))
    }

    /// Sets the stock of `sku`; the next search shows it. No text is
    /// re-indexed.
    ///
    /// # Errors
    ///
    /// [`CatalogError::UnknownSku`].
    pub fn set_stock(&self, sku: &str, stock: i64) -> Result<(), CatalogError> {
        // Relaxed: stock values are independent of each other and of the
        // index; a reader needs the latest value of this one atomic only.
        self.entry(sku)?.stock.store(stock, Ordering::Relaxed);
        Ok(())
    }

    /// Adds `delta` (negative for a sale) to the stock of `sku` and returns
    /// the new stock.
    ///
    /// # Errors
    ///
    /// [`CatalogError::UnknownSku`].
    pub fn adjust_stock(&self, sku: &str, delta: i64) -> Result<i64, CatalogError> {
        let entry = self.entry(sku)?;
        Ok(entry.stock.fetch_add(delta, Ordering::Relaxed).saturating_add(delta))
    }

    /// Sets (or, with `None`, clears) the price of `sku` in cents.
    ///
    /// # Errors
    ///
    /// [`CatalogError::UnknownSku`], or [`CatalogError::InvalidPrice`] for
    /// `u64::MAX`, which is reserved.
    pub fn set_price(&self, sku: &str, price_cents: Option<u64>) -> Result<(), CatalogError> {
        let value = match price_cents {
            Some(NO_PRICE) => return Err(CatalogError::InvalidPrice),
            Some(cents) => cents,
            None => NO_PRICE,
        };
        self.entry(sku)?.price.store(value, Ordering::Relaxed);
        Ok(())
    }

    /// Current stock of `sku`.
    pub fn stock(&self, sku: &str) -> Option<i64> {
        self.entry(sku).ok().map(|e| e.stock.load(Ordering::Relaxed))
    }

    /// Current price of `sku` in cents (`Some(None)`: known product, no price).
    pub fn price_cents(&self, sku: &str) -> Option<Option<u64>> {
        self.entry(sku).ok().map(price_of)
    }

    /// A copy of the product with its current stock and price.
    pub fn product(&self, sku: &str) -> Option<Product> {
        let entry = self.entry(sku).ok()?;
        let mut product = entry.product.clone();
        product.stock = entry.stock.load(Ordering::Relaxed);
        product.price_cents = price_of(entry);
        Some(product)
    }

    /// Searches and returns up to `limit` hits, best first. See
    /// [`Catalog::search_into`].
    ///
    /// # Errors
    ///
    /// As [`Catalog::search_into`].
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<Hit>, CatalogError> {
        let mut out = Vec::with_capacity(limit.min(64));
        self.search_into(query, limit, &mut out)?;
        Ok(out)
    }
}

mod analysis;
mod index;
mod query;

use analysis::*;
use query::*;

/// Maps and sets keyed by the operator's catalog and synonyms, never by
/// customers (queries only look up), so FxHash's speed is safe here.
type FxMap<K, V> = rustc_hash::FxHashMap<K, V>;
type FxSet<K> = rustc_hash::FxHashSet<K>;
