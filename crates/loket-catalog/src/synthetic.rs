//! A generated garden-centre catalog and query mix for benchmarks
//! (`loket bench search`, `benches/catalog.rs`).
//!
//! Products combine the built-in common names and Latin names with invented
//! cultivar names, sizes and aliases, so the term dictionary grows with the
//! catalog as a real one does. Queries mix exact names, typos, plurals,
//! Latin genera, compounds and whole chat messages. Both are deterministic
//! for a seed.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use std::collections::BTreeMap;

use crate::import::Product;
use crate::names::NameDictionary;
use crate::synonyms::{SynonymRule, Synonyms};

const SYLLABLES: &[&str] = &[
    "al", "ber", "ca", "do", "el", "fi", "go", "ha", "is", "jo", "ka", "li", "mo", "na", "or",
    "pe", "qui", "ro", "sa", "ti", "ur", "ve", "wi", "xa", "yo", "ze", "lan", "mer", "dor", "vin",
];
const SIZES: &[&str] =
    &["9cm", "12cm", "17cm", "21cm", "30cm", "60cm", "80-100cm", "125cm", "150cm"];
const FORMS: &[&str] = &["", "", "", "stam", "struik", "bol", "in pot", "hangpot", "XL", "mini"];

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn cultivar(rng: &mut SmallRng) -> String {
    let n = rng.random_range(2..=3);
    let mut out = String::new();
    for _ in 0..n {
        out.push_str(SYLLABLES[rng.random_range(0..SYLLABLES.len())]);
    }
    capitalise(&out)
}

/// `n` products with skus `G0000000`, `G0000001`, ...
pub fn products(n: usize, seed: u64) -> Vec<Product> {
    let names = NameDictionary::builtin();
    let entries: Vec<_> = names.entries().collect();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let entry = entries[rng.random_range(0..entries.len())];
        let latin = &entry.latin[rng.random_range(0..entry.latin.len())];
        let cv = cultivar(&mut rng);
        let mut latin_name = latin.iter().map(String::as_str).collect::<Vec<_>>().join(" ");
        latin_name = capitalise(&latin_name);
        latin_name.push_str(&format!(" '{cv}'"));
        let form = FORMS[rng.random_range(0..FORMS.len())];
        let size = SIZES[rng.random_range(0..SIZES.len())];
        let common = capitalise(&entry.name.join(" "));
        let name = if rng.random_bool(0.15) {
            // Listed by its Latin name only, as the grower in the story did.
            format!("{latin_name} {size}")
        } else {
            format!("{common} '{cv}' {form} {size}")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        let aliases =
            if rng.random_bool(0.3) { vec![format!("{common} {cv}")] } else { Vec::new() };
        let stock = if rng.random_bool(0.2) { 0 } else { rng.random_range(1..60) };
        out.push(Product {
            sku: format!("G{i:07}"),
            name,
            latin_name,
            aliases,
            category: String::new(),
            stock,
            price_cents: Some(rng.random_range(195..25_000)),
            attributes: Vec::new(),
        });
    }
    out
}

/// A synonyms file as a shop would write one: every group of built-in names
/// sharing a Latin name becomes one equivalence line (a few hundred lines).
pub fn synonyms() -> Synonyms {
    let names = NameDictionary::builtin();
    let mut groups: BTreeMap<Vec<String>, Vec<Vec<String>>> = BTreeMap::new();
    for entry in names.entries() {
        groups.entry(entry.latin[0].clone()).or_default().push(entry.name.clone());
    }
    let mut synonyms = Synonyms::default();
    for (latin, mut group) in groups {
        if group.len() > 1 {
            group.push(latin);
            synonyms.push(SynonymRule::Equivalent(group));
        }
    }
    synonyms
}

fn typo(word: &str, rng: &mut SmallRng) -> String {
    let mut bytes: Vec<u8> = word.bytes().collect();
    if bytes.len() < 5 || !word.is_ascii() {
        return word.to_owned();
    }
    let i = rng.random_range(1..bytes.len() - 1);
    match rng.random_range(0..3) {
        0 => bytes.swap(i, i + 1),
        1 => {
            bytes.remove(i);
        }
        _ => bytes[i] = b"aeiourstn"[rng.random_range(0..9)],
    }
    String::from_utf8(bytes).unwrap_or_else(|_| word.to_owned())
}

/// `n` queries of mixed kinds, drawn from the built-in names.
pub fn queries(n: usize, seed: u64) -> Vec<String> {
    let names = NameDictionary::builtin();
    let entries: Vec<_> = names.entries().collect();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let entry = entries[rng.random_range(0..entries.len())];
        let name = entry.name.join(" ");
        let q = match i % 6 {
            0 => name,
            1 => entry.name.iter().map(|w| typo(w, &mut rng)).collect::<Vec<_>>().join(" "),
            2 => format!("hebben jullie nog {name}en op voorraad?"),
            3 => format!("do you have {name} in stock"),
            4 => entry.latin[0].first().cloned().unwrap_or(name),
            _ => format!("{}je", name.replace(' ', "")),
        };
        out.push(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_unique() {
        let a = products(500, 7);
        assert_eq!(a, products(500, 7));
        let skus: std::collections::HashSet<_> = a.iter().map(|p| &p.sku).collect();
        assert_eq!(skus.len(), 500);
        assert_eq!(queries(50, 3), queries(50, 3));
    }
}
