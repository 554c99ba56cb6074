//! The dictionary of common plant names: Dutch and English names mapped to
//! Latin names, so `bananenboom` finds a product listed only as *Musa
//! basjoo*.
//!
//! The crate ships one ([`NameDictionary::builtin`], the file
//! `data/plant_names.tsv`); callers extend or override it with their own TSV
//! in the same format:
//!
//! ```text
//! # name <TAB> Latin name[|Latin name...]   ('-' removes the name)
//! bananenboom<TAB>Musa
//! kerstboom<TAB>Abies nordmanniana|Picea abies|Picea omorika
//! ```
//!
//! A Latin name matches a product whose Latin name starts with it: `Musa`
//! matches *Musa basjoo*, `Citrus limon` matches *Citrus limon 'Four
//! Seasons'* but not *Citrus sinensis*.

use std::collections::HashMap;

use crate::synonyms::Phrase;
use crate::text;

const BUILTIN: &str = include_str!("../data/plant_names.tsv");

/// One common name and the Latin names it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameEntry {
    /// The folded words of the common name.
    pub name: Phrase,
    /// The folded Latin names (genus, or genus and species, ...).
    pub latin: Vec<Phrase>,
}

/// Common names to Latin names. Later entries for the same name replace
/// earlier ones.
#[derive(Debug, Clone, Default)]
pub struct NameDictionary {
    entries: Vec<NameEntry>,
    by_key: HashMap<String, usize>,
}

/// A names line that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("names line {line}: {message}")]
pub struct NamesError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl NameDictionary {
    /// An empty dictionary (no built-in names).
    pub fn empty() -> NameDictionary {
        NameDictionary::default()
    }

    /// The dictionary shipped with the crate: several hundred Dutch and
    /// English names of what garden centres and plant shops sell.
    pub fn builtin() -> NameDictionary {
        let mut names = NameDictionary::empty();
        // The built-in file is part of the crate and checked by a unit test;
        // a parse error here is a bug in the crate, not bad input.
        names.extend_from_tsv(BUILTIN).expect("the built-in plant names parse");
        names
    }

    /// Parses a names TSV into a new dictionary.
    ///
    /// # Errors
    ///
    /// The first line without a tab, with an empty name, or with an empty
    /// Latin name.
    pub fn parse_tsv(source: &str) -> Result<NameDictionary, NamesError> {
        let mut names = NameDictionary::empty();
        names.extend_from_tsv(source)?;
        Ok(names)
    }

    /// Adds the entries of a names TSV, replacing entries with the same name.
    /// A Latin column of `-` removes the name. On error, the lines before the
    /// bad one have been applied.
    ///
    /// # Errors
    ///
    /// As [`NameDictionary::parse_tsv`].
    pub fn extend_from_tsv(&mut self, source: &str) -> Result<(), NamesError> {
        for (index, raw) in source.lines().enumerate() {
            let line = index + 1;
            let content = raw.split('#').next().unwrap_or("");
            if content.trim().is_empty() {
                continue;
            }
            let err = |message: &str| NamesError { line, message: message.to_owned() };
            let (name, latin) =
                content.split_once('\t').ok_or_else(|| err("expected `name<TAB>Latin name`"))?;
            if text::words(name).is_empty() {
                return Err(err("the name has no letters or digits"));
            }
            let latin = latin.trim();
            if latin == "-" {
                self.remove(name);
                continue;
            }
            let latins: Vec<&str> = latin.split('|').filter(|l| !l.trim().is_empty()).collect();
            if latins.is_empty() || latins.iter().any(|l| text::words(l).is_empty()) {
                return Err(err("the Latin name is empty"));
            }
            self.insert(name, &latins);
        }
        Ok(())
    }

    /// Maps `name` to `latin` names, replacing any earlier mapping of `name`.
    /// Names or Latin names without letters or digits are ignored.
    pub fn insert(&mut self, name: &str, latin: &[&str]) {
        let name = text::words(name);
        let latin: Vec<Phrase> =
            latin.iter().map(|l| text::words(l)).filter(|l| !l.is_empty()).collect();
        if name.is_empty() || latin.is_empty() {
            return;
        }
        let key = name.concat();
        let entry = NameEntry { name, latin };
        match self.by_key.get(&key) {
            Some(&index) => self.entries[index] = entry,
            None => {
                self.by_key.insert(key, self.entries.len());
                self.entries.push(entry);
            }
        }
    }

    /// Removes `name`; returns whether it was present.
    pub fn remove(&mut self, name: &str) -> bool {
        let key = text::words(name).concat();
        match self.by_key.remove(&key) {
            Some(index) => {
                self.entries[index].latin.clear();
                true
            }
            None => false,
        }
    }

    /// The Latin names for a common name (folded and joined, so
    /// `blauwe regen` and `blauweregen` are the same name).
    pub fn latin_for(&self, name: &str) -> Option<&[Phrase]> {
        let key = text::words(name).concat();
        self.by_key.get(&key).map(|&i| self.entries[i].latin.as_slice())
    }

    /// The live entries.
    pub fn entries(&self) -> impl Iterator<Item = &NameEntry> {
        self.entries.iter().filter(|e| !e.latin.is_empty())
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether there are no names.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_has_several_hundred_names_across_groups() {
        let names = NameDictionary::builtin();
        assert!(names.len() >= 300, "only {} names", names.len());
        let musa = names.latin_for("bananenboom").unwrap();
        assert_eq!(musa[0], ["musa"]);
        assert!(names.latin_for("Banana tree").is_some());
        assert!(names.latin_for("kerstboom").unwrap().len() >= 2);
        assert!(names.latin_for("blauwe regen").is_some());
        assert!(names.latin_for("blauweregen").is_some());
        for name in
            ["olijfboom", "lavendel", "buxus", "monstera", "aloe vera", "tulp", "rozemarijn"]
        {
            assert!(names.latin_for(name).is_some(), "{name}");
        }
    }

    #[test]
    fn extend_overrides_and_removes() {
        let mut names = NameDictionary::builtin();
        let before = names.len();
        names
            .extend_from_tsv(
                "bananenboom\tEnsete ventricosum\nnieuwe plant\tNovum genus\nlavendel\t-\n",
            )
            .unwrap();
        assert_eq!(names.latin_for("bananenboom").unwrap()[0], ["ensete", "ventricosum"]);
        assert!(names.latin_for("nieuwe plant").is_some());
        assert!(names.latin_for("lavendel").is_none());
        assert_eq!(names.len(), before);
    }

    #[test]
    fn bad_lines_name_their_number() {
        let err = NameDictionary::parse_tsv("# header\nok\tMusa\nno tab here\n").unwrap_err();
        assert_eq!(err.line, 3);
        let err = NameDictionary::parse_tsv("naam\t \n").unwrap_err();
        assert_eq!(err.line, 1);
    }
}
