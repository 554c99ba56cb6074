//! Regenerates `data/dutch_words.fst`, the Dutch word list the compound
//! splitter ([`loket_catalog::compound`]) is built on, from the OpenTaal
//! word list as Debian ships it (package `wdutch`):
//!
//! ```sh
//! apt-get download wdutch && dpkg-deb -x wdutch_*.deb /tmp/wdutch
//! cargo run -p loket-catalog --example build_dictionary -- \
//!     /tmp/wdutch/usr/share/dict/dutch crates/loket-catalog/data/dutch_words.fst
//! ```
//!
//! Every entry is folded as product text is (lower case, no diacritics,
//! apostrophes dropped: `accu's` becomes `accus`). Kept are entries that
//! fold to one word of 3 to 48 letters a-z; left out are proper nouns
//! (entries that start with a capital), abbreviations, numbers and entries
//! of several words (`t-shirt`). The output is deterministic for an input.
//!
//! The word list is OpenTaal's, under the revised BSD licence or CC BY 3.0;
//! `data/dutch_words.LICENSE` carries its copyright notice and licences and
//! must travel with the generated file.

use std::collections::BTreeSet;
use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(output)) = (args.next(), args.next()) else {
        eprintln!("usage: build_dictionary WORD_LIST OUTPUT.fst");
        std::process::exit(2);
    };
    let source = std::fs::read_to_string(&input)?;
    let mut words: BTreeSet<String> = BTreeSet::new();
    let mut folded = Vec::new();
    for entry in source.lines().map(str::trim) {
        if entry.chars().next().is_none_or(|c| c.is_uppercase()) {
            continue;
        }
        folded.clear();
        loket_catalog::text::words_into(entry, &mut folded);
        let [word] = folded.as_slice() else { continue };
        if (3..=48).contains(&word.len()) && word.bytes().all(|b| b.is_ascii_lowercase()) {
            words.insert(word.clone());
        }
    }
    // Sorted input, so the FST builds in one pass.
    let map = tantivy_fst::Map::from_iter(words.iter().map(|w| (w.as_bytes(), 0u64)))?;
    let bytes = map.as_fst().to_vec();
    std::fs::File::create(&output)?.write_all(&bytes)?;
    println!("{} words from {input}, {} bytes in {output}", words.len(), bytes.len());
    Ok(())
}
