//! Running a query: its plan (words, forms, parts, typos, joined pairs),
//! the tantivy query, and each hit's match kind.

use super::*;
use crate::compound::{Compound, Dictionary};

impl Catalog {
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

    pub(super) fn term_id(&self, term: &str) -> Option<u32> {
        self.lexicon.get(term).copied()
    }

    pub(super) fn has(&self, entry: &Entry, term: &str, tag: u32) -> bool {
        self.term_id(term)
            .is_some_and(|id| entry.terms.binary_search(&(id << TAG_BITS | tag)).is_ok())
    }

    pub(super) fn term_query(&self, field: Field, term: &str, boost: f32) -> Box<dyn Query> {
        let term = Term::from_field_text(field, term);
        Box::new(BoostQuery::new(
            Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
            boost,
        ))
    }

    /// Exact alternatives of one known term across the matching fields.
    /// Only fields that hold the term get a query: a term query costs a
    /// dictionary lookup per field even when it matches nothing.
    pub(super) fn push_term_alternatives(
        &self,
        term: &str,
        scale: f32,
        out: &mut Vec<Box<dyn Query>>,
    ) {
        let mask = self.mask(term);
        let f = self.fields;
        for (field, tag, weight) in [
            (f.name, F_NAME, W_NAME),
            (f.latin, F_LATIN, W_LATIN),
            (f.alias, F_ALIAS, W_ALIAS),
            (f.syn, F_SYN, W_SYN),
            (f.head, F_HEAD, W_HEAD),
            (f.part, F_PART, W_PART),
            (f.full, F_FULL, W_FULL),
        ] {
            if mask & (1 << tag) != 0 {
                out.push(self.term_query(field, term, weight * scale));
            }
        }
    }

    pub(super) fn mask(&self, term: &str) -> u8 {
        self.term_id(term).and_then(|id| self.masks.get(id as usize).copied()).unwrap_or(0)
    }

    /// Surface terms within `typos` edits of `word` (a transposition counts
    /// as one), closest first, at most [`MAX_FUZZY_TERMS`].
    pub(super) fn fuzzy_terms(&self, word: &str, typos: u8, out: &mut Vec<(u8, u32)>) {
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

    pub(super) fn plan(&self, query: &str) -> Plan {
        let mut words = Vec::new();
        text::words_into(query, &mut words);
        words.truncate(MAX_MESSAGE_WORDS);
        let mut plan = Plan::default();
        let mut scratch = Vec::new();
        let mut fuzzy = Vec::new();
        let mut split = Compound::default();
        let mut units = self.join_units(&words, &mut scratch);
        units.truncate(MAX_QUERY_WORDS);
        for unit in &units {
            let mut planned = PlannedWord {
                word: unit.word.clone(),
                joined: unit.joined,
                ..PlannedWord::default()
            };
            let word = &unit.word;
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
                if Dictionary::builtin().split(word, &known, &mut split) {
                    planned.parts = std::mem::take(&mut split.parts)
                        .into_iter()
                        .map(|mut p| {
                            p.forms.retain(|f| self.term_id(f).is_some());
                            p.forms
                        })
                        .collect();
                    planned.complete_split = planned.parts.iter().all(|f| !f.is_empty());
                }
                planned.typos = text::typo_budget(word);
            }
            let mut alternatives: Vec<Box<dyn Query>> = Vec::new();
            for form in &planned.forms {
                self.push_term_alternatives(form, 1.0, &mut alternatives);
            }
            for stem in &planned.stems {
                alternatives.push(self.term_query(self.fields.stem, stem, W_STEM));
            }
            if planned.parts.iter().any(|forms| !forms.is_empty()) {
                // The head part weighs most: `kinderjasjes` is a coat first.
                // A split with a part the catalog lacks is more likely a typo
                // (`spijke|broek`) than a product, so it weighs little.
                let scale = if planned.complete_split { 1.0 } else { W_PARTIAL_SPLIT };
                // Unless the head is a generic plant word: a `kiwistruik` is a
                // kiwi first.
                let last = planned.parts.len() - 1;
                let generic_head = planned.parts[last].iter().any(|f| HEAD_WORDS.contains(&&**f));
                let modifier_weight = if generic_head { W_COMPOUND } else { W_COMPOUND_MODIFIER };
                let parts: Vec<(Occur, Box<dyn Query>)> = planned
                    .parts
                    .iter()
                    .enumerate()
                    .filter(|(_, forms)| !forms.is_empty())
                    .map(|(k, forms)| {
                        let weight = if k == last { W_COMPOUND } else { modifier_weight };
                        let mut alts = Vec::new();
                        for form in forms {
                            self.push_term_alternatives(form, weight * scale, &mut alts);
                        }
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
                    for (field, tag) in [
                        (f.name, F_NAME),
                        (f.full, F_FULL),
                        (f.latin, F_LATIN),
                        (f.alias, F_ALIAS),
                        (f.syn, F_SYN),
                    ] {
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
                let word_query: Box<dyn Query> =
                    Box::new(DisjunctionMaxQuery::with_tie_breaker(alternatives, 0.1));
                plan.clauses.push(if unit.purpose {
                    Box::new(BoostQuery::new(word_query, W_PURPOSE))
                } else {
                    word_query
                });
            }
            plan.words.push(planned);
        }
        // Split forms written apart: `olijf boom` -> `olijfboom`, `hoge druk
        // reiniger` -> `hogedrukreiniger`.
        // And reversed, as a customer says what a compound means:
        // `schroeven voor hout` -> `houtschroeven`.
        let unit_words: Vec<&str> = units.iter().map(|u| u.word.as_str()).collect();
        for (n, weight) in [(2, W_JOIN), (3, W_JOIN3)] {
            for (k, group) in unit_words.windows(n).enumerate() {
                // Words about what the product is for join among
                // themselves only, and weigh as they do apart.
                let purpose = units[k].purpose;
                if units[k..k + n].iter().any(|u| u.purpose != purpose) {
                    continue;
                }
                let weight = if purpose { weight * W_PURPOSE } else { weight };
                let joined = group.concat();
                let mut form = self.term_id(&joined).is_some().then(|| joined.clone());
                if form.is_none() {
                    text::base_forms(&joined, &mut scratch);
                    form = scratch.iter().find(|f| self.term_id(f).is_some()).cloned();
                }
                if let Some(form) = form {
                    self.push_join(&mut plan, form, weight);
                }
            }
        }
        for pair in unit_words.windows(2) {
            if let Some(form) = self.reversed_join(pair[1], pair[0], &mut scratch, &mut split) {
                self.push_join(&mut plan, form, W_JOIN_REVERSED);
            }
        }
        // What a customer wants something for is likelier its compound's
        // modifier than a word next to it: `kooi voor mijn dwerghamster` ->
        // `hamsterkooi`, `poets voor leren schoenen` -> `schoenpoets`.
        if let Some(first) = units.iter().position(|u| u.purpose)
            && first > 0
        {
            let wanted = units[first - 1].word.as_str();
            for unit in &units[first + 1..] {
                if let Some(form) = self.reversed_join(&unit.word, wanted, &mut scratch, &mut split)
                {
                    self.push_join(&mut plan, form, W_JOIN_REVERSED);
                }
            }
            if let Some(form) =
                self.reversed_join(&units[first].word, wanted, &mut scratch, &mut split)
            {
                self.push_join(&mut plan, form, W_JOIN_REVERSED);
            }
        }
        plan
    }

    /// Adds a clause for a joined form of several query words (once).
    fn push_join(&self, plan: &mut Plan, form: String, weight: f32) {
        if plan.joins.contains(&form) {
            return;
        }
        let mut alternatives = Vec::new();
        self.push_term_alternatives(&form, weight / W_NAME, &mut alternatives);
        plan.clauses.push(Box::new(DisjunctionMaxQuery::new(alternatives)));
        plan.joins.push(form);
    }

    /// The compound the index knows with `modifier` before `head`, as
    /// Dutch writes one: the modifier as written, in its base form or as
    /// its own compound head (`schoenen` -> `schoen`, `dwerghamster` ->
    /// `hamster`), the head as written or in a base form.
    fn reversed_join(
        &self,
        modifier: &str,
        head: &str,
        scratch: &mut Vec<String>,
        split: &mut Compound,
    ) -> Option<String> {
        let joined = format!("{modifier}{head}");
        if self.term_id(&joined).is_some() {
            return Some(joined);
        }
        text::base_forms(&joined, scratch);
        if let Some(form) = scratch.iter().find(|f| self.term_id(f).is_some()) {
            return Some(form.clone());
        }
        let mut modifiers: Vec<String> = Vec::new();
        text::base_forms(modifier, scratch);
        modifiers.extend(scratch.iter().filter(|f| f.len() >= 3).cloned());
        let known = |w: &str| self.term_id(w).is_some();
        if Dictionary::builtin().split(modifier, &known, split) {
            modifiers.extend(split.heads.iter().filter(|h| h.as_str() != modifier).cloned());
        }
        let mut heads = vec![head.to_owned()];
        text::base_forms(head, scratch);
        heads.extend(scratch.iter().cloned());
        for m in &modifiers {
            for h in &heads {
                let joined = format!("{m}{h}");
                if self.term_id(&joined).is_some() {
                    return Some(joined);
                }
            }
        }
        None
    }

    /// The query's words, with two or three written apart that a product
    /// name writes as one word taken as that word (`hoge druk reiniger` ->
    /// `hogedrukreiniger`, flagged `true`), so split and joined spellings
    /// rank alike. Joins that are only word pairs indexed from names (`rode
    /// bes` -> `rodebes`) stay words; the join clauses below add them.
    fn join_units(&self, words: &[String], scratch: &mut Vec<String>) -> Vec<Unit> {
        let mut units = Vec::with_capacity(words.len());
        // After `voor` (`for`, `tegen`) and a word before it, a customer
        // says what the product is for, not what it is.
        let mut seen_content = false;
        let mut purpose = false;
        let mut i = 0;
        while i < words.len() {
            let mut taken = 1;
            for n in [3, 2] {
                let Some(group) = words.get(i..i + n) else { continue };
                // Stop words join too (`was machine` -> `wasmachine`), but
                // not with each other only.
                if group.iter().all(|w| text::is_stop_word(w)) {
                    continue;
                }
                let joined = group.concat();
                text::base_forms(&joined, scratch);
                let product_word = std::iter::once(&joined)
                    .chain(scratch.iter())
                    .any(|f| self.mask(f) & (1 << F_NAME | 1 << F_HEAD) != 0);
                if product_word {
                    units.push(Unit { word: joined, joined: true, purpose });
                    taken = n;
                    break;
                }
            }
            if taken == 1 {
                let word = &words[i];
                if PURPOSE_WORDS.contains(&word.as_str()) {
                    purpose |= seen_content;
                } else if !text::is_stop_word(word) {
                    units.push(Unit { word: word.clone(), joined: false, purpose });
                }
            }
            seen_content |= units.last().is_some();
            i += taken;
        }
        units
    }

    /// How `entry` matched: the least direct way any query word matched it.
    pub(super) fn classify(&self, plan: &Plan, entry: &Entry) -> MatchKind {
        let mut worst: Option<MatchKind> = None;
        let mut note = |kind: MatchKind| {
            if worst.is_none_or(|w| kind.rank() > w.rank()) {
                worst = Some(kind);
            }
        };
        let mut every_word_matched = true;
        for word in &plan.words {
            let any = |tag: u32| word.forms.iter().any(|f| self.has(entry, f, tag));
            // A qualifier (`melk` in `Hagelslag melk`) is a word of the
            // name; a head is in the full field too but is no whole word.
            let qualifier = word
                .forms
                .iter()
                .any(|f| self.has(entry, f, F_FULL) && !self.has(entry, f, F_HEAD));
            let kind = if any(F_NAME)
                || qualifier
                || word.stems.iter().any(|s| self.has(entry, s, F_STEM))
            {
                Some(MatchKind::Exact)
            } else if any(F_LATIN) {
                Some(MatchKind::Latin)
            } else if any(F_ALIAS) || any(F_SYN) {
                Some(MatchKind::Synonym)
            } else if any(F_HEAD)
                || any(F_PART)
                || word.parts.iter().flatten().any(|p| {
                    [F_NAME, F_LATIN, F_ALIAS, F_SYN, F_HEAD, F_PART, F_FULL]
                        .iter()
                        .any(|&t| self.has(entry, p, t))
                })
            {
                Some(MatchKind::Compound)
            } else if word.typos > 0 && self.fuzzy_match(entry, &word.word, word.typos) {
                Some(MatchKind::Fuzzy)
            } else {
                None
            };
            // Words the customer wrote apart matched as one: a compound match.
            let kind = kind.map(|k| {
                if word.joined && k == MatchKind::Exact { MatchKind::Compound } else { k }
            });
            match kind {
                Some(kind) => note(kind),
                None => every_word_matched = false,
            }
        }
        // A join says how words that did not match alone matched together.
        // When every word matched, it counts only if it is more direct:
        // `rode bes` is exact on `Rode bes`, though `rodebes` is indexed
        // too; `lemon trees` is the common name `lemon tree`, though its
        // words alone are only parts of it.
        let mut most_direct_join: Option<MatchKind> = None;
        for join in &plan.joins {
            let kind = if self.has(entry, join, F_LATIN) {
                MatchKind::Latin
            } else if self.has(entry, join, F_ALIAS) || self.has(entry, join, F_SYN) {
                MatchKind::Synonym
            } else if [F_NAME, F_HEAD, F_PART].iter().any(|&t| self.has(entry, join, t)) {
                MatchKind::Compound
            } else {
                continue;
            };
            if !every_word_matched {
                note(kind);
            }
            if most_direct_join.is_none_or(|k| kind.rank() < k.rank()) {
                most_direct_join = Some(kind);
            }
        }
        if every_word_matched
            && let (Some(join), Some(words)) = (most_direct_join, worst)
            && join.rank() < words.rank()
        {
            worst = Some(join);
        }
        worst.unwrap_or(MatchKind::Fuzzy)
    }

    pub(super) fn fuzzy_match(&self, entry: &Entry, word: &str, typos: u8) -> bool {
        entry.terms.iter().any(|&tagged| {
            let tag = tagged & ((1 << TAG_BITS) - 1);
            (tag <= F_SYN || tag == F_FULL)
                && self
                    .terms
                    .get((tagged >> TAG_BITS) as usize)
                    .is_some_and(|t| text::within_distance(word, t, usize::from(typos)))
        })
    }
}

pub(super) fn price_of(entry: &Entry) -> Option<u64> {
    match entry.price.load(Ordering::Relaxed) {
        NO_PRICE => None,
        cents => Some(cents),
    }
}

/// One query word after analysis.
#[derive(Debug, Default)]
pub(super) struct PlannedWord {
    pub(super) word: String,
    /// The word and its base forms that the index knows.
    pub(super) forms: Vec<String>,
    /// Known snowball stems.
    pub(super) stems: Vec<String>,
    /// Compound parts, when no form is known: each part's forms the index
    /// knows (the head last; empty for a part the index lacks).
    pub(super) parts: Vec<Vec<String>>,
    /// Whether the index knows every part.
    pub(super) complete_split: bool,
    /// Typos allowed, when no form is known.
    pub(super) typos: u8,
    /// Whether the word is several query words joined.
    pub(super) joined: bool,
}

/// A query word, or words written apart that the index knows as one.
#[derive(Debug)]
pub(super) struct Unit {
    pub(super) word: String,
    /// Several query words joined.
    pub(super) joined: bool,
    /// The word says what the product is for (after `voor`).
    pub(super) purpose: bool,
}

#[derive(Default)]
pub(super) struct Plan {
    pub(super) words: Vec<PlannedWord>,
    pub(super) joins: Vec<String>,
    pub(super) clauses: Vec<Box<dyn Query>>,
}
