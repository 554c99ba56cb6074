//! Prints the slowest queries of the synthetic benchmark mix (for profiling).
//! `cargo run --release -p loket-catalog --example slow_queries`
use std::time::Instant;

use loket_catalog::{Catalog, synthetic};

fn main() -> Result<(), loket_catalog::CatalogError> {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let products = synthetic::products(n, 42);
    let t = Instant::now();
    let catalog = Catalog::builder().synonyms(synthetic::synonyms()).build(products)?;
    println!("index {:?}, {} segments", t.elapsed(), catalog.segment_count());
    if std::env::args().nth(2).as_deref() == Some("index") {
        return Ok(());
    }
    let queries = synthetic::queries(5_000, 42 ^ 0x5eed);
    let mut hits = Vec::new();
    let mut times: Vec<(u128, &str, usize)> = Vec::new();
    for q in &queries {
        catalog.search_into(q, 10, &mut hits)?;
    }
    for q in &queries {
        let t = Instant::now();
        catalog.search_into(q, 10, &mut hits)?;
        times.push((t.elapsed().as_micros(), q, hits.len()));
    }
    times.sort_unstable();
    for (us, q, n) in times.iter().rev().take(25) {
        println!("{us:>6} us  {n:>2} hits  {q}");
    }
    Ok(())
}
