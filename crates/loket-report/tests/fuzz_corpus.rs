//! Replays the checked-in seeds of the `report_facts` fuzz target: each
//! must pass the target's checks, and the meter's reports of each equal
//! the naive recomputation of the differential tests (`naive/mod.rs`).

#[allow(dead_code)] // the reconciliation helpers are the differential test's
mod naive;
mod streams;

use std::path::Path;

use loket_report::fuzz_checks::{self, INTENTS, Step as FuzzStep};
use loket_report::{Dimension, Interval, Meter, Query};
use naive::Naive;
use streams::Step;

#[test]
fn report_facts_seeds_pass_the_checks_and_equal_the_naive_model() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/report_facts");
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 8, "the seed corpus is checked in");
    let names: Vec<String> = INTENTS.iter().map(|s| s.to_string()).collect();
    let mut facts = 0;
    let mut occupied = false;
    for seed in &seeds {
        let data = std::fs::read(seed).unwrap();
        fuzz_checks::facts(&data);
        let (config, decoded) = fuzz_checks::decode(&data);
        facts += decoded.len();
        let steps: Vec<Step> = decoded
            .iter()
            .map(|step| match *step {
                FuzzStep::Fact(fact) => Step::Fact(fact),
                // Staffing and holds move the meter's time as an advance
                // does; what they add (occupancy) is left out below.
                other => Step::Advance(other.at()),
            })
            .collect();
        let meter = fuzz_checks::feed(&config, &decoded);
        let naive = Naive::new(&config, INTENTS.len(), &steps);
        let rejections = meter.rejections();
        assert_eq!(
            (rejections.out_of_order, rejections.unknown_conversation, rejections.closed),
            (naive.refused.out_of_order, naive.refused.unknown_conversation, naive.refused.closed),
            "{}",
            seed.display()
        );
        for interval in [Interval::Minutes15, Interval::Day] {
            let query = Query {
                from: fuzz_checks::T0 - 86_400_000,
                to: fuzz_checks::T0 + 60 * 86_400_000,
                interval,
                group_by: Dimension::ALL.to_vec(),
            };
            let expected = naive.report(&config, &names, &query);
            // The naive model counts conversations, not people's time:
            // occupancy has its own integration (`tests/occupancy.rs`).
            // Left out here, with the rows only staffing made (nothing
            // else counted in them).
            let nothing = Meter::new(config.clone()).unwrap().report(&query).unwrap().totals;
            let mut report = meter.report(&query).unwrap();
            occupied |= report.totals.occupancy.is_some_and(|occupancy| occupancy > 0.0);
            let rows = report.intervals.iter_mut().chain(report.groups.iter_mut());
            for measures in rows.map(|row| &mut row.measures).chain([&mut report.totals]) {
                measures.occupancy = None;
            }
            report.intervals.retain(|row| row.measures != nothing);
            report.groups.retain(|row| row.measures != nothing);
            assert_eq!(report, expected, "{}", seed.display());
        }
    }
    assert!(facts > 1_000, "the seeds hold {facts} steps");
    assert!(occupied, "a seed staffs people and holds conversations");
}
