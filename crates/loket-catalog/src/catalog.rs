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
//! | `name`  | name words and their base forms (`bomen` -> `boom`)           | `exact`       |
//! | `stem`  | Dutch and English snowball stems of name words                | `exact`       |
//! | `latin` | Latin name words (genus, species, cultivar)                   | `latin`       |
//! | `alias` | alias words, base forms and joined multi-word aliases         | `synonym`     |
//! | `syn`   | expansions from the synonyms file and the built-in names      | `synonym`     |
//! | `part`  | compound parts (`bananenplant` -> `banaan`, `plant`) and joined word pairs (`blauwe regen` -> `blauweregen`) | `compound` |
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
//! compound parts when the word itself is unknown; and typo queries by word
//! length when no form of it is known. Adjacent words are also tried joined
//! (`olijf boom` -> `olijfboom`). The words' scores add up, so the product
//! matching most words ranks first, and BM25 favours short, specific names.
//! Typo queries score a constant below any exact match of the same word.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
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
const TAG_BITS: u32 = 3;

/// Per-field weights of an exact term match. Name beats Latin beats alias
/// beats synonym beats compound part: the more direct the match, the higher.
const W_NAME: f32 = 3.0;
const W_LATIN: f32 = 2.8;
const W_ALIAS: f32 = 2.5;
const W_SYN: f32 = 2.2;
const W_PART: f32 = 1.5;
const W_STEM: f32 = 1.4;
const W_COMPOUND: f32 = 1.0;
/// A joined pair stands for two words, so it outweighs either word alone.
const W_JOIN: f32 = 6.0;
/// Constant scores of typo matches (tantivy scores every fuzzy hit the same,
/// so one typo and two typos get separate queries with separate boosts).
const W_FUZZY_1: f32 = 3.0;
const W_FUZZY_2: f32 = 1.8;
/// At most this many words of a chat message are searched.
const MAX_QUERY_WORDS: usize = 12;

/// Marks a price that is not set in the side table.
const NO_PRICE: u64 = u64::MAX;

/// Generic head words of plant compounds, known even when no product or
/// name uses them alone, so `vijgenboom` splits into `vijg` + `boom`.
const HEAD_WORDS: &[&str] = &[
    "boom", "boompje", "struik", "plant", "bloem", "bol", "kruid", "palm", "varen", "gras",
    "heester", "haag", "zaad", "vrucht", "bes", "klimmer", "tree", "bush", "shrub", "flower",
    "bulb", "herb", "grass", "fern", "vine", "hedge", "seed", "berry", "fruit",
];

/// FxHash (as in rustc): several times faster than SipHash on the short
/// keys here. Keys come from the operator's catalog and synonyms, never
/// from customers (queries only look up), so hash flooding is not a threat.
#[derive(Debug, Default, Clone, Copy)]
struct FxHasher {
    hash: u64,
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
type FxSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

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
    part: Field,
    stem: Field,
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

/// Interns terms while building.
#[derive(Default)]
struct Interner {
    ids: FxMap<Box<str>, u32>,
    terms: Vec<Box<str>>,
    /// Per term, a bit per field tag that holds it.
    masks: Vec<u8>,
}

impl Interner {
    fn id(&mut self, term: &str, tag: u32) -> u32 {
        let id = match self.ids.get(term) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.terms.len()).unwrap_or(u32::MAX >> TAG_BITS);
                self.ids.insert(term.into(), id);
                self.terms.push(term.into());
                self.masks.push(0);
                id
            }
        };
        if let Some(mask) = self.masks.get_mut(id as usize) {
            *mask |= 1 << tag;
        }
        id
    }

    /// An FST of the terms typo search runs on: name, Latin, alias and
    /// synonym terms, each mapped to its id.
    fn surface_fst(&self) -> Result<tantivy_fst::Map<Vec<u8>>, CatalogError> {
        let mut surface: Vec<(&str, u64)> = self
            .terms
            .iter()
            .zip(&self.masks)
            .enumerate()
            .filter(|(_, (_, mask))| **mask & SURFACE_MASK != 0)
            .map(|(id, (term, _))| (&**term, id as u64))
            .collect();
        surface.sort_unstable();
        tantivy_fst::Map::from_iter(surface)
            .map_err(|e| CatalogError::Malformed(format!("term index: {e}")))
    }
}

/// Field tags whose terms typo search runs on.
const SURFACE_MASK: u8 = 1 << F_NAME | 1 << F_LATIN | 1 << F_ALIAS | 1 << F_SYN;
/// At most this many typo candidates per query word (closest first).
const MAX_FUZZY_TERMS: usize = 24;

/// Build-time knowledge shared by all products (and analysis threads).
struct Shared<'a> {
    /// Words the compound splitter and base-form rules may produce.
    vocab: FxSet<String>,
    /// Synonym phrase key (joined words) -> rules mentioning it.
    rule_keys: FxMap<String, Vec<usize>>,
    rules: &'a [SynonymRule],
    /// Common-name key -> entry, for products without a Latin name.
    names_by_key: FxMap<String, usize>,
    /// Genus -> (name entry, Latin phrase) pairs.
    names_by_genus: FxMap<String, Vec<(usize, usize)>>,
    name_entries: Vec<(&'a Phrase, &'a [Phrase])>,
}

/// One analysis thread's view: the shared knowledge plus its memo tables.
struct Analyzer<'s, 'a> {
    shared: &'s Shared<'a>,
    /// Per-word analysis, memoised: catalogs repeat their words (`boom`,
    /// `stam`, `60cm`) and the compound splitter is the costliest step.
    cache: RefCell<FxMap<String, Rc<WordInfo>>>,
    /// Memoised expansions of synonym rules and common names.
    expansions: RefCell<FxMap<usize, Rc<Vec<Tok>>>>,
}

/// The analysis of one word.
struct WordInfo {
    /// The word and its known base forms.
    forms: Vec<Tok>,
    /// Compound parts (empty when the word does not split).
    parts: Vec<Tok>,
    /// Dutch and English stems.
    stems: [Tok; 2],
}

/// The analysed terms of one product, per field.
#[derive(Default)]
struct Analysed {
    name: Vec<Tok>,
    latin: Vec<Tok>,
    alias: Vec<Tok>,
    syn: Vec<Tok>,
    part: Vec<Tok>,
    stem: Vec<Tok>,
}

impl<'a> std::ops::Deref for Analyzer<'_, 'a> {
    type Target = Shared<'a>;

    fn deref(&self) -> &Shared<'a> {
        self.shared
    }
}

impl<'s, 'a> Analyzer<'s, 'a> {
    fn new(shared: &'s Shared<'a>) -> Self {
        Analyzer { shared, cache: RefCell::default(), expansions: RefCell::default() }
    }
}

impl<'a> Shared<'a> {
    fn new(products: &[Product], synonyms: &'a Synonyms, names: &'a NameDictionary) -> Self {
        let mut vocab: FxSet<String> = HEAD_WORDS.iter().map(|w| (*w).to_owned()).collect();
        let mut words = Vec::new();
        for p in products {
            words.clear();
            text::words_into(&p.name, &mut words);
            text::words_into(&p.latin_name, &mut words);
            for a in &p.aliases {
                text::words_into(a, &mut words);
            }
            vocab.extend(words.drain(..));
        }
        let name_entries: Vec<(&Phrase, &[Phrase])> =
            names.entries().map(|e| (&e.name, e.latin.as_slice())).collect();
        for (name, _) in &name_entries {
            vocab.extend(name.iter().cloned());
            vocab.insert(name.concat());
        }
        let rules = synonyms.rules();
        let mut rule_keys: FxMap<String, Vec<usize>> = FxMap::default();
        for (i, rule) in rules.iter().enumerate() {
            let phrases: Vec<&Phrase> = match rule {
                SynonymRule::Equivalent(all) => all.iter().collect(),
                SynonymRule::OneWay { to, from } => to.iter().chain(from.iter()).collect(),
            };
            for phrase in phrases {
                vocab.extend(phrase.iter().cloned());
                let key = phrase.concat();
                let list = rule_keys.entry(key.clone()).or_default();
                if !list.contains(&i) {
                    list.push(i);
                }
                vocab.insert(key);
            }
        }
        let mut names_by_key = FxMap::default();
        let mut names_by_genus: FxMap<String, Vec<(usize, usize)>> = FxMap::default();
        for (i, (name, latins)) in name_entries.iter().enumerate() {
            // Names the synonyms file covers are left to the synonyms file.
            if rule_keys.contains_key(&name.concat()) {
                continue;
            }
            names_by_key.insert(name.concat(), i);
            for (j, latin) in latins.iter().enumerate() {
                if let Some(genus) = latin.first() {
                    names_by_genus.entry(genus.clone()).or_default().push((i, j));
                }
            }
        }
        Shared { vocab, rule_keys, rules, names_by_key, names_by_genus, name_entries }
    }
}

impl Analyzer<'_, '_> {
    fn word(&self, word: &str) -> Rc<WordInfo> {
        if let Some(info) = self.cache.borrow().get(word) {
            return Rc::clone(info);
        }
        let mut forms: Vec<Tok> = vec![word.into()];
        let mut scratch = Vec::new();
        text::base_forms(word, &mut scratch);
        for form in scratch.iter().filter(|f| self.known(f)) {
            if !forms.iter().any(|f| **f == **form) {
                forms.push(form.as_str().into());
            }
        }
        let mut parts = Vec::new();
        text::split_compound(word, &|w| self.known(w), &mut parts);
        let parts = parts.iter().map(|p| Tok::from(p.as_str())).collect();
        let stems = text::stems(word).map(|s| Tok::from(s.as_str()));
        let info = Rc::new(WordInfo { forms, parts, stems });
        self.cache.borrow_mut().insert(word.to_owned(), Rc::clone(&info));
        info
    }

    fn known(&self, word: &str) -> bool {
        self.vocab.contains(word)
    }

    /// Adds a synonym or common-name phrase to the `syn` field.
    fn push_phrase(&self, phrase: &[String], out: &mut Vec<Tok>) {
        for word in phrase {
            out.extend(self.word(word).forms.iter().cloned());
        }
        if phrase.len() > 1 {
            out.push(phrase.concat().into());
        }
    }

    /// The terms a synonym rule adds to a product that matched it through
    /// `key`: all entries of an equivalence, the left side of a one-way
    /// rule whose right side matched. Memoised per rule and direction.
    fn rule_terms(&self, rule: usize, key: &str) -> Option<Rc<Vec<Tok>>> {
        let (phrases, slot): (&[Phrase], usize) = match &self.rules[rule] {
            SynonymRule::Equivalent(all) => (all, rule * 2),
            SynonymRule::OneWay { from, to } => {
                if !to.iter().any(|t| t.concat() == key) {
                    return None;
                }
                (from, rule * 2 + 1)
            }
        };
        Some(self.memo(slot, phrases.iter()))
    }

    /// The terms a common-name entry adds. Memoised per entry.
    fn name_terms(&self, entry: usize) -> Rc<Vec<Tok>> {
        let name = self.name_entries[entry].0;
        self.memo(usize::MAX / 2 + entry, std::iter::once(name))
    }

    fn memo<'p>(&self, slot: usize, phrases: impl Iterator<Item = &'p Phrase>) -> Rc<Vec<Tok>> {
        if let Some(terms) = self.expansions.borrow().get(&slot) {
            return Rc::clone(terms);
        }
        let mut terms = Vec::new();
        for phrase in phrases {
            self.push_phrase(phrase, &mut terms);
        }
        terms.sort_unstable();
        terms.dedup();
        let terms = Rc::new(terms);
        self.expansions.borrow_mut().insert(slot, Rc::clone(&terms));
        terms
    }

    /// A joined pair: itself and its known base forms, no compound split
    /// (the pair is already the split).
    fn push_joined(&self, joined: &str, out: &mut Vec<Tok>, scratch: &mut Vec<String>) {
        out.push(joined.into());
        text::base_forms(joined, scratch);
        out.extend(scratch.iter().filter(|f| self.known(f)).map(|f| Tok::from(f.as_str())));
    }

    fn analyse(&self, p: &Product) -> Analysed {
        let mut a = Analysed::default();
        let mut scratch = Vec::new();
        let name_words = text::words(&p.name);
        let latin_words = text::words(&p.latin_name);
        for w in &name_words {
            let info = self.word(w);
            a.name.extend(info.forms.iter().cloned());
            a.part.extend(info.parts.iter().cloned());
            a.stem.extend(info.stems.iter().cloned());
        }
        for pair in name_words.windows(2) {
            self.push_joined(&pair.concat(), &mut a.part, &mut scratch);
        }
        a.latin.extend(latin_words.iter().map(|w| Tok::from(w.as_str())));
        for alias in &p.aliases {
            let words = text::words(alias);
            for w in &words {
                let info = self.word(w);
                a.alias.extend(info.forms.iter().cloned());
                a.part.extend(info.parts.iter().cloned());
            }
            if words.len() > 1 {
                self.push_joined(&words.concat(), &mut a.alias, &mut scratch);
            }
        }
        // Duplicates are fine: the indexing thread deduplicates term ids.

        // Keys a synonym or common name can match: every surface term plus
        // joined Latin pairs (`citrus limon` -> `citruslimon`).
        let mut keys: Vec<&str> = Vec::new();
        keys.extend(a.name.iter().chain(&a.latin).chain(&a.alias).chain(&a.part).map(|t| &**t));
        let latin_pairs: Vec<String> = latin_words.windows(2).map(<[String]>::concat).collect();
        keys.extend(latin_pairs.iter().map(String::as_str));
        keys.sort_unstable();
        keys.dedup();

        // Synonyms file.
        for key in &keys {
            let Some(rule_ids) = self.rule_keys.get(*key) else { continue };
            for &r in rule_ids {
                if let Some(terms) = self.rule_terms(r, key) {
                    a.syn.extend(terms.iter().cloned());
                }
            }
        }

        // Built-in names: by the product's Latin name, or, without one, by
        // the Latin names its own name stands for.
        let mut latins: Vec<&[String]> = Vec::new();
        if latin_words.is_empty() {
            for key in &keys {
                if let Some(&i) = self.names_by_key.get(*key) {
                    for latin in self.name_entries[i].1 {
                        if !latins.contains(&latin.as_slice()) {
                            latins.push(latin);
                        }
                    }
                }
            }
            for latin in &latins {
                self.push_phrase(latin, &mut a.syn);
            }
        } else {
            latins.push(&latin_words);
        }
        for latin in &latins {
            let Some(genus) = latin.first() else { continue };
            let Some(candidates) = self.names_by_genus.get(genus) else { continue };
            for &(i, j) in candidates {
                let pattern = &self.name_entries[i].1[j];
                if latin.len() >= pattern.len() && latin[..pattern.len()] == pattern[..] {
                    a.syn.extend(self.name_terms(i).iter().cloned());
                }
            }
        }
        a
    }
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

    fn build(builder: CatalogBuilder, products: Vec<Product>) -> Result<Catalog, CatalogError> {
        let mut schema = Schema::builder();
        let indexing = TextFieldIndexing::default()
            .set_tokenizer("loket_terms")
            .set_index_option(IndexRecordOption::WithFreqs);
        // Length normalisation makes short, specific names win ("Olijfboom"
        // over "Olijfboom meerstammig op stam"). Expansion fields are long
        // for exactly the products that have many common names; normalising
        // them would punish a product for being well known, so they go
        // without field norms.
        let normed = TextOptions::default().set_indexing_options(indexing.clone());
        let flat = TextOptions::default().set_indexing_options(indexing.set_fieldnorms(false));
        let fields = Fields {
            ord: schema.add_u64_field("ord", FAST),
            name: schema.add_text_field("name", normed.clone()),
            latin: schema.add_text_field("latin", normed.clone()),
            alias: schema.add_text_field("alias", normed),
            syn: schema.add_text_field("syn", flat.clone()),
            part: schema.add_text_field("part", flat.clone()),
            stem: schema.add_text_field("stem", flat),
        };
        let schema = schema.build();
        let index = match &builder.directory {
            Some(dir) => Index::create_in_dir(dir, schema)?,
            None => Index::create_in_ram(schema),
        };
        index
            .tokenizers()
            .register("loket_terms", TextAnalyzer::from(WhitespaceTokenizer::default()));

        let shared = Shared::new(&products, &builder.synonyms, &builder.names);
        // Later duplicates of a sku are dropped.
        let mut seen: FxSet<&str> = FxSet::default();
        let keep: Vec<bool> = products.iter().map(|p| seen.insert(p.sku.as_str())).collect();
        drop(seen);
        let mut interner = Interner::default();
        let mut tagged_terms: Vec<Box<[u32]>> = Vec::with_capacity(products.len());
        let threads = builder.threads;
        let mut writer: IndexWriter<TantivyDocument> =
            index.writer_with_num_threads(threads, threads * 40_000_000)?;
        // Analysis runs on its own thread, ahead of the thread that interns
        // terms and feeds tantivy, whose own threads build the segments.
        std::thread::scope(|scope| -> Result<(), CatalogError> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Analysed>(1024);
            let (shared, products, keep) = (&shared, &products, &keep);
            scope.spawn(move || {
                let analyzer = Analyzer::new(shared);
                for (product, _) in products.iter().zip(keep).filter(|(_, k)| **k) {
                    if tx.send(analyzer.analyse(product)).is_err() {
                        break; // The receiver failed and returned early.
                    }
                }
            });
            let mut line = String::new();
            let mut ids: Vec<u32> = Vec::new();
            for a in rx {
                let Ok(ord) = u32::try_from(tagged_terms.len()) else { break };
                let mut tagged: Vec<u32> = Vec::new();
                let mut doc = TantivyDocument::default();
                doc.add_u64(fields.ord, u64::from(ord));
                for (field, tag, terms) in [
                    (fields.name, F_NAME, &a.name),
                    (fields.latin, F_LATIN, &a.latin),
                    (fields.alias, F_ALIAS, &a.alias),
                    (fields.syn, F_SYN, &a.syn),
                    (fields.part, F_PART, &a.part),
                    (fields.stem, F_STEM, &a.stem),
                ] {
                    if terms.is_empty() {
                        continue;
                    }
                    ids.clear();
                    ids.extend(terms.iter().map(|t| interner.id(t, tag)));
                    ids.sort_unstable();
                    ids.dedup();
                    line.clear();
                    for &id in &ids {
                        tagged.push(id << TAG_BITS | tag);
                        if !line.is_empty() {
                            line.push(' ');
                        }
                        line.push_str(interner.terms.get(id as usize).map_or("", |t| &**t));
                    }
                    doc.add_text(field, &line);
                }
                writer.add_document(doc)?;
                tagged.sort_unstable();
                tagged.dedup();
                tagged_terms.push(tagged.into_boxed_slice());
            }
            Ok(())
        })?;
        writer.commit()?;
        let mut entries: Vec<Entry> = Vec::with_capacity(tagged_terms.len());
        let mut by_sku: FxMap<Arc<str>, u32> = FxMap::default();
        let kept = products.into_iter().zip(keep).filter_map(|(p, k)| k.then_some(p));
        for (ord, (product, terms)) in (0u32..).zip(kept.zip(tagged_terms)) {
            let sku: Arc<str> = product.sku.as_str().into();
            by_sku.insert(sku.clone(), ord);
            entries.push(Entry {
                sku,
                name: product.name.as_str().into(),
                stock: AtomicI64::new(product.stock),
                price: AtomicU64::new(product.price_cents.unwrap_or(NO_PRICE)),
                terms,
                product,
            });
        }
        writer.wait_merging_threads()?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let searcher = reader.searcher();
        Ok(Catalog {
            _index: index,
            searcher,
            fields,
            entries,
            by_sku,
            surface: interner.surface_fst()?,
            lexicon: interner.ids,
            terms: interner.terms,
            masks: interner.masks,
        })
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

    /// Searches for `query` (a product name, a typo, a Latin name or a whole
    /// chat message) and replaces the contents of `out` with up to `limit`
    /// hits, best first. Out-of-stock products are returned too, with
    /// `in_stock: false`. A query of only stop words finds nothing.
    ///
    /// Reusing `out` saves the result vector; hits share the catalog's sku
    /// and name strings (`Arc<str>`), so filling it never copies text.
    ///
    /// # Errors
    ///
    /// Only index read errors, which an in-RAM catalog does not have.
    pub fn search_into(
        &self,
        query: &str,
        limit: usize,
        out: &mut Vec<Hit>,
    ) -> Result<(), CatalogError> {
        out.clear();
        // tantivy sizes its top-k buffer by the limit: never ask for more
        // hits than there are products.
        let limit = limit.min(self.entries.len());
        if limit == 0 {
            return Ok(());
        }
        let mut plan = self.plan(query);
        if plan.clauses.is_empty() {
            return Ok(());
        }
        let clauses = std::mem::take(&mut plan.clauses);
        let query = BooleanQuery::new(clauses.into_iter().map(|q| (Occur::Should, q)).collect());
        // Equal scores are ordered by catalog position, so results do not
        // depend on which indexing thread took which product.
        let collector = TopDocs::with_limit(limit).tweak_score(|segment: &SegmentReader| {
            let ords =
                segment.fast_fields().u64("ord").ok().map(|c| c.first_or_default_col(u64::MAX));
            move |doc: DocId, score: Score| {
                (score, Reverse(ords.as_ref().map_or(u64::MAX, |c| c.get_val(doc))))
            }
        });
        let top = self.searcher.search(&query, &collector)?;
        for ((score, Reverse(ord)), _) in top {
            let Some(entry) = usize::try_from(ord).ok().and_then(|o| self.entries.get(o)) else {
                continue;
            };
            let stock = entry.stock.load(Ordering::Relaxed);
            out.push(Hit {
                sku: entry.sku.clone(),
                name: entry.name.clone(),
                score,
                stock,
                in_stock: stock > 0,
                price_cents: price_of(entry),
                matched: self.classify(&plan, entry),
            });
        }
        Ok(())
    }

    fn term_id(&self, term: &str) -> Option<u32> {
        self.lexicon.get(term).copied()
    }

    fn has(&self, entry: &Entry, term: &str, tag: u32) -> bool {
        self.term_id(term)
            .is_some_and(|id| entry.terms.binary_search(&(id << TAG_BITS | tag)).is_ok())
    }

    fn term_query(&self, field: Field, term: &str, boost: f32) -> Box<dyn Query> {
        let term = Term::from_field_text(field, term);
        Box::new(BoostQuery::new(
            Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
            boost,
        ))
    }

    /// Exact alternatives of one known term across the matching fields.
    /// Only fields that hold the term get a query: a term query costs a
    /// dictionary lookup per field even when it matches nothing.
    fn push_term_alternatives(&self, term: &str, scale: f32, out: &mut Vec<Box<dyn Query>>) {
        let mask = self.mask(term);
        let f = self.fields;
        for (field, tag, weight) in [
            (f.name, F_NAME, W_NAME),
            (f.latin, F_LATIN, W_LATIN),
            (f.alias, F_ALIAS, W_ALIAS),
            (f.syn, F_SYN, W_SYN),
            (f.part, F_PART, W_PART),
        ] {
            if mask & (1 << tag) != 0 {
                out.push(self.term_query(field, term, weight * scale));
            }
        }
    }

    fn mask(&self, term: &str) -> u8 {
        self.term_id(term).and_then(|id| self.masks.get(id as usize).copied()).unwrap_or(0)
    }

    /// Surface terms within `typos` edits of `word` (a transposition counts
    /// as one), closest first, at most [`MAX_FUZZY_TERMS`].
    fn fuzzy_terms(&self, word: &str, typos: u8, out: &mut Vec<(u8, u32)>) {
        out.clear();
        let probe = FuzzyTermQuery::new(Term::from_field_text(self.fields.name, word), typos, true);
        let Ok(automaton) = probe.automaton() else { return };
        let mut stream = self.surface.search(automaton).into_stream();
        while let Some((key, id)) = stream.next() {
            let Ok(term) = std::str::from_utf8(key) else { continue };
            let distance = if text::within_distance(word, term, 1) { 1 } else { 2 };
            out.push((distance, u32::try_from(id).unwrap_or(u32::MAX)));
            if out.len() >= 8 * MAX_FUZZY_TERMS {
                break;
            }
        }
        out.sort_unstable();
        out.truncate(MAX_FUZZY_TERMS);
    }

    fn plan(&self, query: &str) -> Plan {
        let mut words = Vec::new();
        text::words_into(query, &mut words);
        words.retain(|w| !text::is_stop_word(w));
        words.truncate(MAX_QUERY_WORDS);
        let mut plan = Plan::default();
        let mut scratch = Vec::new();
        let mut fuzzy = Vec::new();
        for word in &words {
            let mut planned = PlannedWord { word: word.clone(), ..PlannedWord::default() };
            if self.term_id(word).is_some() {
                planned.forms.push(word.clone());
            }
            text::base_forms(word, &mut scratch);
            for form in &scratch {
                if self.term_id(form).is_some() && !planned.forms.contains(form) {
                    planned.forms.push(form.clone());
                }
            }
            planned.stems =
                text::stems(word).into_iter().filter(|s| self.term_id(s).is_some()).collect();
            if planned.forms.is_empty() {
                let known = |w: &str| self.term_id(w).is_some() || HEAD_WORDS.contains(&w);
                text::split_compound(word, &known, &mut planned.parts);
                planned.typos = text::typo_budget(word);
            }
            let mut alternatives: Vec<Box<dyn Query>> = Vec::new();
            for form in &planned.forms {
                self.push_term_alternatives(form, 1.0, &mut alternatives);
            }
            for stem in &planned.stems {
                alternatives.push(self.term_query(self.fields.stem, stem, W_STEM));
            }
            if !planned.parts.is_empty() {
                let parts: Vec<(Occur, Box<dyn Query>)> = planned
                    .parts
                    .iter()
                    .map(|part| {
                        let mut alts = Vec::new();
                        self.push_term_alternatives(part, W_COMPOUND, &mut alts);
                        (Occur::Should, Box::new(DisjunctionMaxQuery::new(alts)) as Box<dyn Query>)
                    })
                    .collect();
                alternatives.push(Box::new(BooleanQuery::new(parts)));
            }
            if planned.typos > 0 {
                self.fuzzy_terms(word, planned.typos, &mut fuzzy);
                let f = self.fields;
                for &(distance, id) in &fuzzy {
                    let (Some(term), Some(&mask)) =
                        (self.terms.get(id as usize), self.masks.get(id as usize))
                    else {
                        continue;
                    };
                    let score = if distance <= 1 { W_FUZZY_1 } else { W_FUZZY_2 };
                    for (field, tag) in
                        [(f.name, F_NAME), (f.latin, F_LATIN), (f.alias, F_ALIAS), (f.syn, F_SYN)]
                    {
                        if mask & (1 << tag) != 0 {
                            let term = Term::from_field_text(field, term);
                            let query = TermQuery::new(term, IndexRecordOption::Basic);
                            alternatives
                                .push(Box::new(ConstScoreQuery::new(Box::new(query), score)));
                        }
                    }
                }
            }
            if !alternatives.is_empty() {
                plan.clauses
                    .push(Box::new(DisjunctionMaxQuery::with_tie_breaker(alternatives, 0.1)));
            }
            plan.words.push(planned);
        }
        // Split forms written apart: `olijf boom` -> `olijfboom`.
        for pair in words.windows(2) {
            let joined = pair.concat();
            let mut forms = Vec::new();
            if self.term_id(&joined).is_some() {
                forms.push(joined.clone());
            }
            text::base_forms(&joined, &mut scratch);
            forms.extend(scratch.iter().filter(|f| self.term_id(f).is_some()).cloned());
            if let Some(form) = forms.into_iter().next() {
                let mut alternatives = Vec::new();
                self.push_term_alternatives(&form, W_JOIN / W_NAME, &mut alternatives);
                plan.clauses.push(Box::new(DisjunctionMaxQuery::new(alternatives)));
                plan.joins.push(form);
            }
        }
        plan
    }

    /// How `entry` matched: the least direct way any query word matched it.
    fn classify(&self, plan: &Plan, entry: &Entry) -> MatchKind {
        let mut worst: Option<MatchKind> = None;
        let mut note = |kind: MatchKind| {
            if worst.is_none_or(|w| kind.rank() > w.rank()) {
                worst = Some(kind);
            }
        };
        for join in &plan.joins {
            let kind = if self.has(entry, join, F_LATIN) {
                Some(MatchKind::Latin)
            } else if self.has(entry, join, F_ALIAS) || self.has(entry, join, F_SYN) {
                Some(MatchKind::Synonym)
            } else if self.has(entry, join, F_NAME) || self.has(entry, join, F_PART) {
                Some(MatchKind::Compound)
            } else {
                None
            };
            if let Some(kind) = kind {
                note(kind);
            }
        }
        for word in &plan.words {
            let any = |tag: u32| word.forms.iter().any(|f| self.has(entry, f, tag));
            let kind = if any(F_NAME) || word.stems.iter().any(|s| self.has(entry, s, F_STEM)) {
                Some(MatchKind::Exact)
            } else if any(F_LATIN) {
                Some(MatchKind::Latin)
            } else if any(F_ALIAS) || any(F_SYN) {
                Some(MatchKind::Synonym)
            } else if any(F_PART)
                || word.parts.iter().any(|p| {
                    [F_NAME, F_LATIN, F_ALIAS, F_SYN, F_PART].iter().any(|&t| self.has(entry, p, t))
                })
            {
                Some(MatchKind::Compound)
            } else if word.typos > 0 && self.fuzzy_match(entry, &word.word, word.typos) {
                Some(MatchKind::Fuzzy)
            } else {
                None
            };
            if let Some(kind) = kind {
                note(kind);
            }
        }
        worst.unwrap_or(MatchKind::Fuzzy)
    }

    fn fuzzy_match(&self, entry: &Entry, word: &str, typos: u8) -> bool {
        entry.terms.iter().any(|&tagged| {
            let tag = tagged & ((1 << TAG_BITS) - 1);
            tag <= F_SYN
                && self
                    .terms
                    .get((tagged >> TAG_BITS) as usize)
                    .is_some_and(|t| text::within_distance(word, t, usize::from(typos)))
        })
    }
}

fn price_of(entry: &Entry) -> Option<u64> {
    match entry.price.load(Ordering::Relaxed) {
        NO_PRICE => None,
        cents => Some(cents),
    }
}

/// One query word after analysis.
#[derive(Debug, Default)]
struct PlannedWord {
    word: String,
    /// The word and its base forms that the index knows.
    forms: Vec<String>,
    /// Known snowball stems.
    stems: Vec<String>,
    /// Compound parts, when no form is known.
    parts: Vec<String>,
    /// Typos allowed, when no form is known.
    typos: u8,
}

#[derive(Default)]
struct Plan {
    words: Vec<PlannedWord>,
    joins: Vec<String>,
    clauses: Vec<Box<dyn Query>>,
}
