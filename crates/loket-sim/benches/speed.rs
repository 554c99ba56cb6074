//! The simulator's speed on one core: an M/M/10+M scenario (one skill,
//! capacity 1, exponential handle and patience: arrival, assignment or
//! abandonment, close), conversations simulated per second, without the
//! meter (the simulator and the router alone) and with it.
//!
//! `cargo bench -p loket-sim --bench speed` (the release profile). Prints
//! one JSON line per configuration; the best of five runs counts.

use std::time::Instant;

use loket_sim::{Options, Scenario, replicate};

const SCENARIO: &str = r#"
duration_s = 864000
service_level_s = 20

[[arrivals]]
channel = "chat"
language = "nl"
skills = { sales = 1 }
rate_per_hour = 540
handle = { dist = "exponential", mean_s = 60 }
patience = { dist = "exponential", mean_s = 120 }

[[agents]]
count = 10
skills = { sales = 5 }
languages = ["nl"]
capacity = { chat = 1 }

[router]
affinity_lookback_ms = 0
"#;

fn main() {
    let scenario = Scenario::from_toml(SCENARIO).expect("the benchmark's scenario");
    for meter in [false, true] {
        let mut best = 0.0f64;
        let mut conversations = 0;
        for run in 0..5u64 {
            let started = Instant::now();
            let outcome =
                replicate(&scenario, run, Options { meter, pages: false }).expect("a replication");
            let secs = started.elapsed().as_secs_f64();
            conversations = outcome.counts.conversations;
            best = best.max(conversations as f64 / secs);
        }
        println!(
            "{{\"scenario\":\"M/M/10+M, 10 days\",\"meter\":{meter},\"conversations\":{conversations},\"conversations_per_sec\":{best:.0}}}"
        );
    }
}
