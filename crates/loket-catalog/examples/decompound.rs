//! Prints how the built-in Dutch dictionary splits words: the top-level
//! parts, then every head and every modifier.
//! `cargo run -p loket-catalog --example decompound -- kruiskopschroevendraaier muurverf`
//! (no arguments: one word a line on standard input).

use std::io::BufRead;

use loket_catalog::compound::{Compound, Dictionary};
use loket_catalog::text;

fn main() -> std::io::Result<()> {
    let mut words: Vec<String> = std::env::args().skip(1).flat_map(|a| text::words(&a)).collect();
    if words.is_empty() {
        for line in std::io::stdin().lock().lines() {
            words.extend(text::words(&line?));
        }
    }
    let mut split = Compound::default();
    for word in &words {
        if Dictionary::builtin().split(word, &|_| false, &mut split) {
            let parts: Vec<&str> = split.parts.iter().map(|p| p.text.as_str()).collect();
            println!(
                "{word}\t{}\theads {}\tmodifiers {}",
                parts.join("|"),
                split.heads.join(" "),
                split.modifiers.join(" ")
            );
        } else {
            println!("{word}\t-");
        }
    }
    Ok(())
}
