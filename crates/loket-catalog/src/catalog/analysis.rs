//! Analysis at build time: every product's words, base forms, stems,
//! compound parts, synonyms and common names, as the terms of its fields.

use super::*;
use crate::compound::{Compound, Dictionary};

/// Interns terms while building.
#[derive(Default)]
pub(super) struct Interner {
    pub(super) ids: FxMap<Box<str>, u32>,
    pub(super) terms: Vec<Box<str>>,
    /// Per term, a bit per field tag that holds it.
    pub(super) masks: Vec<u8>,
}

impl Interner {
    pub(super) fn id(&mut self, term: &str, tag: u32) -> u32 {
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
    pub(super) fn surface_fst(&self) -> Result<tantivy_fst::Map<Vec<u8>>, CatalogError> {
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
pub(super) const SURFACE_MASK: u8 =
    1 << F_NAME | 1 << F_LATIN | 1 << F_ALIAS | 1 << F_SYN | 1 << F_FULL;
/// At most this many typo candidates per query word (closest first).
pub(super) const MAX_FUZZY_TERMS: usize = 24;

/// Build-time knowledge shared by all products (and analysis threads).
pub(super) struct Shared<'a> {
    /// The catalog's own words (and the plant head words): known to the
    /// compound splitter and the base-form rules besides the dictionary.
    pub(super) vocab: FxSet<String>,
    /// The Dutch dictionary.
    pub(super) dict: &'static Dictionary,
    /// Synonym phrase key (joined words) -> rules mentioning it.
    pub(super) rule_keys: FxMap<String, Vec<usize>>,
    pub(super) rules: &'a [SynonymRule],
    /// Common-name key -> entry, for products without a Latin name.
    pub(super) names_by_key: FxMap<String, usize>,
    /// Genus -> (name entry, Latin phrase) pairs.
    pub(super) names_by_genus: FxMap<String, Vec<(usize, usize)>>,
    pub(super) name_entries: Vec<(&'a Phrase, &'a [Phrase])>,
}

/// One analysis thread's view: the shared knowledge plus its memo tables.
pub(super) struct Analyzer<'s, 'a> {
    pub(super) shared: &'s Shared<'a>,
    /// Per-word analysis, memoised: catalogs repeat their words (`boom`,
    /// `stam`, `60cm`) and the compound splitter is the costliest step.
    pub(super) cache: RefCell<FxMap<String, Rc<WordInfo>>>,
    /// Memoised expansions of synonym rules and common names.
    pub(super) expansions: RefCell<FxMap<usize, Rc<Expansion>>>,
}

/// The terms a synonym rule or common name adds to a product.
#[derive(Default)]
pub(super) struct Expansion {
    /// Whole names: single words with their base forms, and multi-word
    /// phrases joined (`tv kast` -> `tvkast`), for the `syn` field.
    pub(super) names: Vec<Tok>,
    /// The words of multi-word phrases, for the `part` field: a phrase
    /// names the product only as a whole, so `kast` alone finds a
    /// *Tv-meubel* (`tv kast`) as it finds a product with `kast` as a
    /// modifier, below the products that are a *kast*.
    pub(super) words: Vec<Tok>,
}

/// The analysis of one word.
pub(super) struct WordInfo {
    /// The word and its known base forms.
    pub(super) forms: Vec<Tok>,
    /// Compound heads at every level, with base forms (empty when the word
    /// does not split).
    pub(super) heads: Vec<Tok>,
    /// Compound modifiers at every level, with base forms.
    pub(super) modifiers: Vec<Tok>,
    /// Dutch and English stems.
    pub(super) stems: [Tok; 2],
    /// Whether the word can be what a product name names: a Dutch noun (a
    /// dictionary word or compound that is not an inflected adjective).
    pub(super) noun: bool,
}

/// The analysed terms of one product, per field.
#[derive(Default)]
pub(super) struct Analysed {
    pub(super) name: Vec<Tok>,
    pub(super) latin: Vec<Tok>,
    pub(super) alias: Vec<Tok>,
    pub(super) syn: Vec<Tok>,
    pub(super) head: Vec<Tok>,
    pub(super) part: Vec<Tok>,
    pub(super) stem: Vec<Tok>,
    pub(super) full: Vec<Tok>,
}

impl<'a> std::ops::Deref for Analyzer<'_, 'a> {
    type Target = Shared<'a>;

    fn deref(&self) -> &Shared<'a> {
        self.shared
    }
}

impl<'s, 'a> Analyzer<'s, 'a> {
    pub(super) fn new(shared: &'s Shared<'a>) -> Self {
        Analyzer { shared, cache: RefCell::default(), expansions: RefCell::default() }
    }
}

impl<'a> Shared<'a> {
    pub(super) fn new(
        products: &[Product],
        synonyms: &'a Synonyms,
        names: &'a NameDictionary,
    ) -> Self {
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
        Shared {
            vocab,
            dict: Dictionary::builtin(),
            rule_keys,
            rules,
            names_by_key,
            names_by_genus,
            name_entries,
        }
    }
}

/// Per word of `name` (as [`text::words`] splits it, `count` words), whether
/// a hyphen joins it to the next word (`Tv-muurbeugel`: `tv`).
fn hyphened_words(name: &str, count: usize) -> Vec<bool> {
    let mut hyphened = Vec::with_capacity(count);
    let mut words = Vec::new();
    for token in name.split_whitespace() {
        words.clear();
        text::words_into(token, &mut words);
        let joined = token.contains('-');
        hyphened.extend((0..words.len()).map(|k| joined && k + 1 < words.len()));
    }
    // Whitespace only separates words, so the counts agree; be total anyway.
    hyphened.resize(count, false);
    hyphened
}

impl Analyzer<'_, '_> {
    pub(super) fn word(&self, word: &str) -> Rc<WordInfo> {
        if let Some(info) = self.cache.borrow().get(word) {
            return Rc::clone(info);
        }
        let mut forms: Vec<Tok> = vec![word.into()];
        let mut scratch = Vec::new();
        self.push_base_forms(word, &mut forms, &mut scratch);
        let mut split = Compound::default();
        self.dict.split(word, &|w| self.known(w), &mut split);
        let heads = split.heads.iter().map(|p| Tok::from(p.as_str())).collect();
        let modifiers = split.modifiers.iter().map(|p| Tok::from(p.as_str())).collect();
        let stems = text::stems(word).map(|s| Tok::from(s.as_str()));
        // `halfvolle` is `half` + `volle`, an adjective as its head is.
        let noun = self.is_dutch_noun(word, !split.parts.is_empty(), &mut scratch)
            && split.parts.last().is_none_or(|head| !self.is_inflected_adjective(&head.text));
        let info = Rc::new(WordInfo { forms, heads, modifiers, stems, noun });
        self.cache.borrow_mut().insert(word.to_owned(), Rc::clone(&info));
        info
    }

    /// The base forms of `word` the catalog knows, or else the first the
    /// dictionary knows (`houtschroeven` -> `houtschroef`): the rules
    /// over-generate (`bomen` -> `boom`, `bom`), and the dictionary knows
    /// too many words to keep every candidate it has.
    pub(super) fn push_base_forms(
        &self,
        word: &str,
        forms: &mut Vec<Tok>,
        scratch: &mut Vec<String>,
    ) {
        text::base_forms(word, scratch);
        let before = forms.len();
        for form in scratch.iter().filter(|f| self.known(f)) {
            if !forms.iter().any(|f| **f == **form) {
                forms.push(form.as_str().into());
            }
        }
        if forms.len() == before
            && let Some(form) = scratch.iter().find(|f| f.len() >= 3 && self.dict.contains(f))
        {
            forms.push(form.as_str().into());
        }
    }

    /// Whether `word` is a Dutch word that can name a product: a compound
    /// or in the dictionary (or its base form is), three letters or more,
    /// not a stop word and not an inflected adjective (`halfvolle`, `zoete`, `hoge`,
    /// `kruimige`, `vastkokende`: an `-e` form whose stem is a word).
    fn is_dutch_noun(&self, word: &str, compound: bool, scratch: &mut Vec<String>) -> bool {
        if word.len() < 3
            || !word.bytes().all(|b| b.is_ascii_lowercase())
            || text::is_stop_word(word)
            || self.is_inflected_adjective(word)
        {
            return false;
        }
        if !compound && !self.dict.contains(word) {
            text::base_forms(word, scratch);
            if !scratch.iter().any(|f| f.len() >= 3 && self.dict.contains(f)) {
                return false;
            }
        }
        true
    }

    fn is_inflected_adjective(&self, word: &str) -> bool {
        let Some(stem) = word.strip_suffix('e') else { return false };
        if ["ig", "end", "isch", "baar", "lijk", "loos", "rig"].iter().any(|s| stem.ends_with(s)) {
            return true;
        }
        let b = stem.as_bytes();
        let n = b.len();
        if n < 2 {
            return false;
        }
        if self.dict.contains(stem) {
            return true;
        }
        let last = b[n - 1];
        // `volle` -> `vol`, `witte` -> `wit`.
        if b[n - 2] == last && self.dict.contains(&stem[..n - 1]) {
            return true;
        }
        // `grijze` -> `grijs`, `lieve` -> `lief`.
        let devoiced = match last {
            b'z' => Some('s'),
            b'v' => Some('f'),
            _ => None,
        };
        if let Some(c) = devoiced {
            let candidate = format!("{}{c}", &stem[..n - 1]);
            if self.dict.contains(&candidate) {
                return true;
            }
        }
        // `hoge` -> `hoog`, `rode` -> `rood`: a single vowel doubled.
        if n >= 3
            && matches!(b[n - 2], b'a' | b'e' | b'o' | b'u')
            && !matches!(b[n - 3], b'a' | b'e' | b'i' | b'o' | b'u')
        {
            let candidate = format!("{}{}{}", &stem[..n - 1], b[n - 2] as char, last as char);
            if self.dict.contains(&candidate) {
                return true;
            }
        }
        false
    }

    pub(super) fn known(&self, word: &str) -> bool {
        self.vocab.contains(word)
    }

    /// Adds a phrase's words with their base forms, and a multi-word
    /// phrase joined, to `out`.
    pub(super) fn push_phrase(&self, phrase: &[String], out: &mut Vec<Tok>) {
        for word in phrase {
            out.extend(self.word(word).forms.iter().cloned());
        }
        if phrase.len() > 1 {
            out.push(phrase.concat().into());
        }
    }

    /// Adds a synonym or common-name phrase to an expansion: a single word
    /// with its base forms as a name, a multi-word phrase joined as a name
    /// and its words apart (see [`Expansion::words`]).
    fn push_expansion(&self, phrase: &[String], out: &mut Expansion) {
        if let [word] = phrase {
            out.names.extend(self.word(word).forms.iter().cloned());
        } else {
            for word in phrase {
                out.words.extend(self.word(word).forms.iter().cloned());
            }
            out.names.push(phrase.concat().into());
        }
    }

    /// The terms a synonym rule adds to a product that matched it through
    /// `key`: all entries of an equivalence, the left side of a one-way
    /// rule whose right side matched. Memoised per rule and direction.
    pub(super) fn rule_terms(&self, rule: usize, key: &str) -> Option<Rc<Expansion>> {
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
    pub(super) fn name_terms(&self, entry: usize) -> Rc<Expansion> {
        let name = self.name_entries[entry].0;
        self.memo(usize::MAX / 2 + entry, std::iter::once(name))
    }

    pub(super) fn memo<'p>(
        &self,
        slot: usize,
        phrases: impl Iterator<Item = &'p Phrase>,
    ) -> Rc<Expansion> {
        if let Some(terms) = self.expansions.borrow().get(&slot) {
            return Rc::clone(terms);
        }
        let mut terms = Expansion::default();
        for phrase in phrases {
            self.push_expansion(phrase, &mut terms);
        }
        for list in [&mut terms.names, &mut terms.words] {
            list.sort_unstable();
            list.dedup();
        }
        let terms = Rc::new(terms);
        self.expansions.borrow_mut().insert(slot, Rc::clone(&terms));
        terms
    }

    /// A joined pair: itself and its known base forms, no compound split
    /// (the pair is already the split).
    pub(super) fn push_joined(&self, joined: &str, out: &mut Vec<Tok>, scratch: &mut Vec<String>) {
        out.push(joined.into());
        self.push_base_forms(joined, out, scratch);
    }

    pub(super) fn analyse(&self, p: &Product) -> Analysed {
        let mut a = Analysed::default();
        let mut scratch = Vec::new();
        let name_words = text::words(&p.name);
        let latin_words = text::words(&p.latin_name);
        // The name names a product with its first noun (and what stands
        // before it: brand, adjectives); words after it qualify it
        // (`Hagelslag melk`, `Tuinset (tafel en 4 stoelen)`, `Drinkyoghurt
        // aardbei`), as a compound's modifiers do, and are indexed as such.
        // A name without a Dutch noun is all product words.
        // A word hyphened to the next is a modifier of it, as in a compound
        // written as one word: `Tv-muurbeugel` is a *muurbeugel*, `OLED-tv`
        // a *tv*.
        let hyphened = hyphened_words(&p.name, name_words.len());
        let noun = |i: usize| !hyphened[i] && self.word(&name_words[i]).noun;
        let mut main_end =
            (0..name_words.len()).find(|&i| noun(i)).map_or(name_words.len(), |i| i + 1);
        // A noun-like word in `-en` before another noun is an adjective of
        // material or a plural used as one (`Glazen vaas`, `Leren
        // handschoenen`, `Heren sneakers`): the product is the next noun.
        // Not a compound (`Eetkamerstoelen kunstleer` are chairs).
        let mut prenominal = usize::MAX;
        if main_end < name_words.len()
            && name_words[main_end - 1].ends_with("en")
            && self.word(&name_words[main_end - 1]).heads.is_empty()
            && noun(main_end)
        {
            prenominal = main_end - 1;
            main_end += 1;
        }
        for (i, w) in name_words.iter().enumerate() {
            let info = self.word(w);
            // The full field: what the name field lacks (qualifiers and
            // heads), so its length follows the name's.
            a.full.extend(info.heads.iter().cloned());
            if i >= main_end || hyphened[i] || i == prenominal {
                a.full.extend(info.forms.iter().cloned());
                a.part.extend(info.forms.iter().chain(&info.heads).chain(&info.modifiers).cloned());
                continue;
            }
            a.stem.extend(info.stems.iter().cloned());
            a.name.extend(info.forms.iter().cloned());
            // A word that does not split is its own head, so the head field
            // is as long as the name's product words and BM25 favours short
            // names there as in the name field (`Klauwhamer 450 g` before
            // `Boorhamer SDS-plus 800W` for `hamer`).
            // Heads go to the part field too, so a term has one document
            // frequency there whatever its role: a product with the term as
            // head scores at least what a product with it as modifier scores
            // (the best field wins, the others add a tenth).
            if info.heads.is_empty() {
                a.head.push(Tok::from(w.as_str()));
                a.part.push(Tok::from(w.as_str()));
            } else {
                a.head.extend(info.heads.iter().cloned());
                a.part.extend(info.heads.iter().cloned());
            }
            a.part.extend(info.modifiers.iter().cloned());
        }
        let mut joined = Vec::new();
        for pair in name_words.windows(2) {
            self.push_joined(&pair.concat(), &mut joined, &mut scratch);
        }
        a.latin.extend(latin_words.iter().map(|w| Tok::from(w.as_str())));
        for alias in &p.aliases {
            let words = text::words(alias);
            for w in &words {
                let info = self.word(w);
                a.alias.extend(info.forms.iter().cloned());
                a.head.extend(info.heads.iter().cloned());
                a.part.extend(info.heads.iter().chain(&info.modifiers).cloned());
            }
            if words.len() > 1 {
                self.push_joined(&words.concat(), &mut a.alias, &mut scratch);
            }
        }
        // Duplicates are fine: the indexing thread deduplicates term ids.

        // Keys a synonym or common name can match: every surface term, the
        // compound heads and joined pairs, and joined Latin pairs (`citrus
        // limon` -> `citruslimon`). Not compound modifiers: `vijs => schroef`
        // makes a `Houtschroef` a `vijs`, not a `Schroevendraaier`.
        let mut keys: Vec<&str> = Vec::new();
        keys.extend(
            a.name
                .iter()
                .chain(&a.full)
                .chain(&a.latin)
                .chain(&a.alias)
                .chain(&a.head)
                .chain(&joined)
                .map(|t| &**t),
        );
        let latin_pairs: Vec<String> = latin_words.windows(2).map(<[String]>::concat).collect();
        keys.extend(latin_pairs.iter().map(String::as_str));
        keys.sort_unstable();
        keys.dedup();

        // Synonyms file.
        for key in &keys {
            let Some(rule_ids) = self.rule_keys.get(*key) else { continue };
            for &r in rule_ids {
                if let Some(terms) = self.rule_terms(r, key) {
                    a.syn.extend(terms.names.iter().cloned());
                    a.part.extend(terms.words.iter().cloned());
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
                    let terms = self.name_terms(i);
                    a.syn.extend(terms.names.iter().cloned());
                    a.part.extend(terms.words.iter().cloned());
                }
            }
        }
        a.part.extend(joined);
        a
    }
}
