//! Scoring throughput and accuracy of a model file on a CSV file, without the
//! CLI: `cargo run --release -p loket-intent --example throughput -- MODEL DATA.csv`
//! (MODEL may be `builtin`; add `--no-token-cache` to score every token
//! from its n-grams, `--explain` to time `score_explained`, which adds the
//! words behind each hand-off). `--passes N` instead scores the file exactly N times
//! and prints nothing else, for instruction-counting tools (cachegrind)
//! whose totals must not depend on timing. Besides wall-clock throughput it reports
//! throughput per second of CPU time actually run (Linux schedstat), which
//! stays meaningful on a machine shared with other jobs.

use std::hint::black_box;
use std::time::Instant;

use loket_intent::{Model, Scratch, train};

/// Nanoseconds this thread has run on a CPU (Linux), if available.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let cache = !args.iter().any(|a| a == "--no-token-cache");
    let explain = args.iter().any(|a| a == "--explain");
    args.retain(|a| a != "--no-token-cache" && a != "--explain");
    let passes = match args.iter().position(|a| a == "--passes") {
        Some(i) => {
            let n: u32 = args.get(i + 1).ok_or("--passes needs a number")?.parse()?;
            args.drain(i..i + 2);
            Some(n)
        }
        None => None,
    };
    let [model, data] = args.as_slice() else {
        return Err("usage: throughput MODEL|builtin DATA.csv".into());
    };
    let owned;
    let model = if model == "builtin" {
        Model::builtin()
    } else {
        owned = Model::open(model)?;
        &owned
    };
    let examples = train::read_csv(data)?;
    if let Some(passes) = passes {
        let mut scratch = if cache { Scratch::new() } else { Scratch::without_token_cache() };
        for _ in 0..passes {
            for e in &examples {
                black_box(model.score(black_box(&e.text), &mut scratch));
            }
        }
        return Ok(());
    }
    let m = train::evaluate(model, &examples);
    println!("accuracy {:.4} macro_f1 {:.4} n {}", m.accuracy, m.macro_f1, m.n);
    // One pass with a fresh scratch: the token cache starts cold.
    let mut scratch = if cache { Scratch::new() } else { Scratch::without_token_cache() };
    let wall = Instant::now();
    for e in &examples {
        black_box(model.score(black_box(&e.text), &mut scratch));
    }
    let (hits, lookups) = scratch.token_cache_hits();
    println!(
        "first pass (cold cache): msgs_per_sec {:.0}, token cache {hits} hits of {lookups} lookups",
        examples.len() as f64 / wall.elapsed().as_secs_f64()
    );
    for _ in 0..3 {
        let (wall, cpu) = (Instant::now(), cpu_ns());
        let mut n = 0u64;
        while wall.elapsed().as_millis() < 500 {
            if explain {
                for e in &examples {
                    black_box(model.score_explained(black_box(&e.text), &mut scratch));
                }
            } else {
                for e in &examples {
                    black_box(model.score(black_box(&e.text), &mut scratch));
                }
            }
            n += examples.len() as u64;
        }
        let secs = wall.elapsed().as_secs_f64();
        let cpu_secs = match (cpu, cpu_ns()) {
            (Some(a), Some(b)) => (b - a) as f64 / 1e9,
            _ => secs,
        };
        println!(
            "msgs_per_sec wall {:.0}, per CPU second {:.0}",
            n as f64 / secs,
            n as f64 / cpu_secs
        );
        let (hits, lookups) = scratch.token_cache_hits();
        println!("token cache: {hits} hits of {lookups} lookups");
    }
    Ok(())
}
