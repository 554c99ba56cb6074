//! Catalog search: index build and single queries over a generated catalog
//! of 100,000 products with typo and synonym expansion.
//!
//! `cargo bench -p loket-catalog --bench catalog`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use loket_catalog::{Catalog, Hit, synthetic};

const PRODUCTS: usize = 100_000;

fn indexing(c: &mut Criterion) {
    let mut group = c.benchmark_group("catalog_index");
    group.sample_size(10);
    for n in [10_000, PRODUCTS] {
        let products = synthetic::products(n, 42);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &products, |b, products| {
            b.iter(|| {
                let catalog = Catalog::builder()
                    .synonyms(synthetic::synonyms())
                    .build(black_box(products.clone()))
                    .unwrap();
                black_box(catalog.len())
            });
        });
    }
    group.finish();
}

fn querying(c: &mut Criterion) {
    let catalog = Catalog::builder()
        .synonyms(synthetic::synonyms())
        .build(synthetic::products(PRODUCTS, 42))
        .unwrap();
    let mut group = c.benchmark_group("catalog_query");
    let cases = [
        ("exact", "olijfboom"),
        ("latin_genus", "musa"),
        ("typo", "bananeboom"),
        ("plural_compound", "bananenbomen"),
        ("diminutive", "citroenboompje"),
        ("split", "blauwe regen"),
        ("chat_nl", "hebben jullie nog bananenbomen op voorraad?"),
        ("chat_en", "do you have lemon trees in stock"),
    ];
    let mut hits: Vec<Hit> = Vec::with_capacity(10);
    for (name, query) in cases {
        group.bench_function(name, |b| {
            b.iter(|| {
                catalog.search_into(black_box(query), 10, &mut hits).unwrap();
                black_box(hits.len())
            });
        });
    }
    let mix = synthetic::queries(1_000, 7);
    group.throughput(Throughput::Elements(mix.len() as u64));
    group.bench_function("mixed_1000", |b| {
        b.iter(|| {
            for q in &mix {
                catalog.search_into(q, 10, &mut hits).unwrap();
            }
            black_box(hits.len())
        });
    });
    group.finish();
}

criterion_group!(benches, indexing, querying);
criterion_main!(benches);
