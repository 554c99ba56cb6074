//! Solr-format synonym files.
//!
//! ```text
//! # Comments start with '#'.
//! bananenboom, bananenplant, banana tree, musa     # equivalence
//! citroenboompje, lemon bush => citroenboom        # one-way
//! ```
//!
//! Entries are folded like product text (lowercase, no diacritics) and may
//! hold several words. An equivalence line makes every entry find products
//! that contain any of them; `a, b => c` makes `a` and `b` find products that
//! contain `c` (and not the other way round).

use std::fmt;

use crate::text;

/// One entry of a rule: its folded words (`["blauwe", "regen"]`).
pub type Phrase = Vec<String>;

/// One line of a synonyms file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SynonymRule {
    /// `a, b, c`: all entries are interchangeable.
    Equivalent(Vec<Phrase>),
    /// `a, b => c, d`: a query for `a` or `b` finds products holding `c` or `d`.
    OneWay {
        /// The left-hand entries (what customers type).
        from: Vec<Phrase>,
        /// The right-hand entries (what products contain).
        to: Vec<Phrase>,
    },
}

/// A parsed synonyms file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Synonyms {
    rules: Vec<SynonymRule>,
}

/// A synonyms line that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("synonyms line {line}: {message}")]
pub struct SynonymError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl Synonyms {
    /// Parses a Solr-format synonyms file.
    ///
    /// # Errors
    ///
    /// The first malformed line: more than one `=>`, an empty side of `=>`,
    /// or an entry without any letter or digit.
    pub fn parse(source: &str) -> Result<Synonyms, SynonymError> {
        let mut rules = Vec::new();
        for (index, raw) in source.lines().enumerate() {
            let line = index + 1;
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let err = |message: String| SynonymError { line, message };
            let mut sides = content.split("=>");
            let left = sides.next().unwrap_or("");
            let right = sides.next();
            if sides.next().is_some() {
                return Err(err("more than one `=>`".to_owned()));
            }
            let left = parse_side(left).map_err(err)?;
            match right {
                None => {
                    if left.len() > 1 {
                        rules.push(SynonymRule::Equivalent(left));
                    }
                }
                Some(right) => {
                    let right = parse_side(right).map_err(err)?;
                    if left.is_empty() || right.is_empty() {
                        return Err(SynonymError {
                            line,
                            message: "`=>` needs entries on both sides".to_owned(),
                        });
                    }
                    rules.push(SynonymRule::OneWay { from: left, to: right });
                }
            }
        }
        Ok(Synonyms { rules })
    }

    /// The parsed rules, in file order.
    pub fn rules(&self) -> &[SynonymRule] {
        &self.rules
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Adds a rule (for synonyms built in code).
    pub fn push(&mut self, rule: SynonymRule) {
        self.rules.push(rule);
    }
}

fn parse_side(side: &str) -> Result<Vec<Phrase>, String> {
    let mut phrases = Vec::new();
    for entry in side.split(',') {
        if entry.trim().is_empty() {
            continue;
        }
        let words = text::words(entry);
        if words.is_empty() {
            return Err(format!("entry `{}` has no letters or digits", entry.trim()));
        }
        if !phrases.contains(&words) {
            phrases.push(words);
        }
    }
    Ok(phrases)
}

impl fmt::Display for SynonymRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join =
            |phrases: &[Phrase]| phrases.iter().map(|p| p.join(" ")).collect::<Vec<_>>().join(", ");
        match self {
            SynonymRule::Equivalent(all) => f.write_str(&join(all)),
            SynonymRule::OneWay { from, to } => write!(f, "{} => {}", join(from), join(to)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phrase(s: &str) -> Phrase {
        s.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn parses_equivalence_one_way_multiword_and_comments() {
        let src = "# garden centre\n\
                   bananenboom, Bananenplant ,musa\n\
                   \n\
                   blauwe regen, wisteria # climber\n\
                   citroenboompje, lemon bush => citroenboom\n";
        let syn = Synonyms::parse(src).unwrap();
        assert_eq!(
            syn.rules(),
            [
                SynonymRule::Equivalent(vec![
                    phrase("bananenboom"),
                    phrase("bananenplant"),
                    phrase("musa")
                ]),
                SynonymRule::Equivalent(vec![phrase("blauwe regen"), phrase("wisteria")]),
                SynonymRule::OneWay {
                    from: vec![phrase("citroenboompje"), phrase("lemon bush")],
                    to: vec![phrase("citroenboom")],
                },
            ]
        );
        assert_eq!(syn.rules()[2].to_string(), "citroenboompje, lemon bush => citroenboom");
    }

    #[test]
    fn reports_bad_lines_with_their_number() {
        let err = Synonyms::parse("a, b\na => b => c").unwrap_err();
        assert_eq!(err.line, 2);
        let err = Synonyms::parse("\n\n => c").unwrap_err();
        assert_eq!(err.line, 3);
        let err = Synonyms::parse("a, !!!").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn single_entries_are_ignored() {
        assert!(Synonyms::parse("alleen\n,,\n").unwrap().is_empty());
    }
}
