//! The meter's incremental aggregates equal a naive recomputation from the
//! raw fact log (`naive/mod.rs`, which shares no code with the meter), on
//! random streams, with opening hours (business-hours clocks) in most
//! cases; and every group's counts reconcile.
//!
//! `cargo test` runs a few cases; `LOKET_REPORT_CASES=2000 cargo test -p
//! loket-report --release --test differential` runs more.

mod naive;
mod streams;

use loket_report::{Dimension, Interval, Query};
use naive::Naive;
use proptest::prelude::*;
use streams::{INTENTS, T0, config, draft, feed, meter, opening_hours, steps};

fn cases() -> u32 {
    std::env::var("LOKET_REPORT_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn incremental_equals_naive(
        drafts in prop::collection::vec(draft(), 0..160),
        window in 0..3usize,
        retention in 0..2usize,
        warning in 0..3usize,
        interval in 0..3usize,
        hours in prop_oneof![2 => Just(0usize), 3 => 1..4usize],
    ) {
        let mut config = config(window, retention, warning);
        config.opening_hours = opening_hours(hours);
        let steps = steps(&drafts);
        let mut meter = meter(&config);
        feed(&mut meter, &steps);
        let names: Vec<String> = INTENTS.iter().map(|s| s.to_string()).collect();
        let naive = Naive::new(&config, INTENTS.len(), &steps);

        let rejections = meter.rejections();
        prop_assert_eq!(
            (rejections.out_of_order, rejections.unknown_conversation, rejections.closed, rejections.unknown_intent),
            (naive.refused.out_of_order, naive.refused.unknown_conversation, naive.refused.closed, naive.refused.unknown_intent)
        );
        let query = Query {
            from: T0 - 86_400_000,
            to: T0 + 30 * 86_400_000,
            interval: [Interval::Minutes15, Interval::Hour, Interval::Day][interval],
            group_by: Dimension::ALL.to_vec(),
        };
        let report = meter.report(&query).unwrap();
        let expected = naive.report(&config, &names, &query);
        // Piece by piece, so a failure shows the row that differs.
        prop_assert_eq!(&report.totals, &expected.totals);
        prop_assert_eq!(report.intervals.len(), expected.intervals.len());
        for (row, expected_row) in report.intervals.iter().zip(&expected.intervals) {
            prop_assert_eq!(row, expected_row);
        }
        prop_assert_eq!(&report, &expected);

        // Reconciliation: per group over the whole range, offered =
        // answered + abandoned + conversations open and still unanswered.
        if retention == 1 {
            for dimension in Dimension::ALL {
                let open = naive.open_unanswered(&config, &names, dimension);
                for row in report.groups.iter().filter(|row| row.group == dimension) {
                    let m = &row.measures;
                    let waiting = open.get(&row.key).copied().unwrap_or(0);
                    prop_assert_eq!(m.offered, m.answered + m.abandoned + waiting, "{:?} {}", dimension, row.key);
                }
            }
        }
    }
}
