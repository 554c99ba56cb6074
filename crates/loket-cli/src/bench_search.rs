//! `loket bench search`: index a generated catalog and time queries on one thread.

use std::time::Instant;

use anyhow::Context;
use hdrhistogram::Histogram;
use loket_catalog::{Catalog, Hit, synthetic};

#[derive(Debug, clap::Args)]
pub struct BenchSearchArgs {
    /// Products in the generated catalog.
    #[arg(long, default_value_t = 100_000)]
    products: usize,
    /// Timed queries (a mix of exact names, typos, plurals, Latin names,
    /// compounds and chat messages).
    #[arg(long, default_value_t = 20_000)]
    queries: usize,
    /// Hits per query.
    #[arg(long, default_value_t = 10)]
    limit: usize,
    /// Seed for the catalog and the queries.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// End with one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

pub fn run(args: BenchSearchArgs) -> anyhow::Result<()> {
    let products = synthetic::products(args.products, args.seed);
    let synonyms = synthetic::synonyms();
    let queries = synthetic::queries(args.queries.max(1), args.seed ^ 0x5eed);

    let start = Instant::now();
    let catalog =
        Catalog::builder().synonyms(synonyms).build(products).context("building the index")?;
    let index_ms = start.elapsed().as_secs_f64() * 1e3;
    println!("indexed {} products in {index_ms:.0} ms", catalog.len());

    let mut hits: Vec<Hit> = Vec::with_capacity(args.limit);
    // Warm up caches and the typo automata before timing.
    for q in queries.iter().take(1_000) {
        catalog.search_into(q, args.limit, &mut hits)?;
    }
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let mut found = 0usize;
    let started = Instant::now();
    for q in &queries {
        let t = Instant::now();
        catalog.search_into(q, args.limit, &mut hits)?;
        let ns = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1);
        histogram.saturating_record(ns);
        found += usize::from(!hits.is_empty());
    }
    let total = started.elapsed().as_secs_f64();
    let us = |q: f64| histogram.value_at_quantile(q) as f64 / 1e3;
    let qps = queries.len() as f64 / total;
    println!(
        "{} queries on 1 thread: p50 {:.1} us, p90 {:.1} us, p99 {:.1} us, max {:.1} us, {qps:.0} queries/s, {:.1}% with hits",
        queries.len(),
        us(0.5),
        us(0.9),
        us(0.99),
        histogram.max() as f64 / 1e3,
        100.0 * found as f64 / queries.len() as f64
    );
    if args.json {
        let json = serde_json::json!({
            "products": catalog.len(),
            "index_ms": index_ms.round(),
            "queries": queries.len(),
            "threads": 1,
            "p50_us": us(0.5),
            "p90_us": us(0.9),
            "p99_us": us(0.99),
            "max_us": histogram.max() as f64 / 1e3,
            "qps": qps.round(),
            "with_hits": found,
        });
        println!("{json}");
    }
    Ok(())
}
