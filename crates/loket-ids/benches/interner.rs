//! The interner on the ingest path: what the sequencer pays per message for
//! a string id against a decimal one.
//!
//! `cargo bench -p loket-ids --bench interner`. The held ids are shaped as
//! `loket load --ids text` sends them (36-byte UUIDs, 18-byte phone keys);
//! lookups go to random held ids, so a table larger than the caches pays
//! its cache misses as the daemon does. The ids looked up are copied out in
//! lookup order first, so reading the query costs what reading it from a
//! freshly decoded batch does, and only the interner's own accesses miss.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use loket_ids::{Id, Interner};

/// A UUID-shaped id, one per number (as `loket load` makes them).
fn uuid_like(n: u64) -> String {
    let mixed = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        mixed >> 32,
        (mixed >> 16) & 0xFFFF,
        mixed & 0xFFF,
        (n >> 48) & 0xFFF,
        n & 0xFFFF_FFFF_FFFF
    )
}

/// A fixed pseudo-random order of `count` indexes below `held`.
fn lookups(held: usize, count: usize) -> Vec<usize> {
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % held as u64) as usize
        })
        .collect()
}

fn interner(c: &mut Criterion) {
    let mut group = c.benchmark_group("interner");
    group.throughput(Throughput::Elements(1));

    // A decimal id: no table at all (the numeric baseline).
    let numbers: Vec<Id> = (0..4096u64).map(|n| Id::Number((1 << 40) + n)).collect();
    let mut ids = Interner::default();
    let mut next = 0;
    group.bench_function("number", |b| {
        b.iter(|| {
            next = (next + 1) % numbers.len();
            black_box(ids.intern(black_box(&numbers[next])))
        })
    });

    // A string id already held, in tables of growing size.
    for held in [1_000usize, 50_000, 1_000_000] {
        let texts: Vec<Id> = (0..held as u64).map(|n| Id::Text(uuid_like(n))).collect();
        let mut ids = Interner::default();
        for id in &texts {
            ids.intern(id);
        }
        let queries: Vec<Id> =
            lookups(held, 1 << 16).into_iter().map(|i| texts[i].clone()).collect();
        drop(texts);
        let mut next = 0;
        group.bench_function(format!("held_text/{held}"), |b| {
            b.iter(|| {
                next = (next + 1) % queries.len();
                black_box(ids.intern(black_box(&queries[next])))
            })
        });
    }

    // A new string id: a slot and a table entry (growth included), 1,024
    // per iteration, each id formatted (an allocation) as it is interned.
    group.throughput(Throughput::Elements(1024));
    group.bench_function("new_text", |b| {
        let mut n = 0u64;
        b.iter_batched_ref(
            Interner::default,
            |ids| {
                for _ in 0..1024 {
                    n += 1;
                    black_box(ids.intern_str(&uuid_like(n)));
                }
            },
            BatchSize::SmallInput,
        )
    });

    // Release and re-intern: the slot comes back one generation on.
    group.throughput(Throughput::Elements(1));
    let texts: Vec<String> = (0..4096u64).map(uuid_like).collect();
    let mut ids = Interner::default();
    let mut keys: Vec<u64> = texts.iter().map(|t| ids.intern_str(t)).collect();
    let mut next = 0;
    group.bench_function("release_and_intern", |b| {
        b.iter(|| {
            next = (next + 1) % texts.len();
            ids.release(keys[next]);
            keys[next] = ids.intern_str(black_box(&texts[next]));
        })
    });
    group.finish();
}

criterion_group!(benches, interner);
criterion_main!(benches);
