//! The simulator's speed on one core: an M/M/10+M scenario (one skill,
//! capacity 1, exponential handle and patience: arrival, assignment or
//! abandonment, close), conversations simulated per second, without the
//! meter (the simulator and the router alone) and with it.
//!
//! `cargo bench -p loket-sim --bench speed` (the release profile). Prints
//! one JSON line per configuration: the median and the best of eleven
//! runs, the two configurations interleaved so drift favours neither.

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
    const RUNS: u64 = 11;
    let mut rates = [Vec::new(), Vec::new()];
    let mut conversations = 0;
    for run in 0..RUNS {
        for meter in [false, true] {
            let started = Instant::now();
            let outcome =
                replicate(&scenario, run, Options { meter, pages: false }).expect("a replication");
            let secs = started.elapsed().as_secs_f64();
            conversations = outcome.counts.conversations;
            rates[usize::from(meter)].push(conversations as f64 / secs);
        }
    }
    for (meter, rates) in [false, true].into_iter().zip(&mut rates) {
        rates.sort_by(f64::total_cmp);
        let (median, best) = (rates[rates.len() / 2], rates[rates.len() - 1]);
        println!(
            "{{\"scenario\":\"M/M/10+M, 10 days\",\"meter\":{meter},\"conversations\":{conversations},\"runs\":{RUNS},\"conversations_per_sec_median\":{median:.0},\"conversations_per_sec_best\":{best:.0}}}"
        );
    }
}
