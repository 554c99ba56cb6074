//! Occupancy from the meter's incremental clocks equals a naive
//! integration of each person's staffed capacity and held conversations
//! over time (written here, sharing no code with the meter), on random
//! streams of staffing changes, holds, releases and advances: out of order
//! now and then, across slot, hour and retention boundaries.
//!
//! `cargo test` runs a few cases; `LOKET_REPORT_CASES=2000 cargo test -p
//! loket-report --release --test occupancy` runs more.

use std::collections::BTreeMap;

use loket_report::{Dimension, Interval, Meter, MeterConfig, Query, SLOT_MS};
use proptest::prelude::*;

const T0: u64 = 1_796_634_000_000;
const DAY: u64 = 86_400_000;

#[derive(Clone, Debug)]
enum Step {
    /// `at_now`: staffed "from the meter's time" (no time given).
    Staff {
        dt: i64,
        at_now: bool,
        agent: u64,
        team: u32,
        capacity: u32,
    },
    Hold {
        dt: i64,
        agent: u64,
        starts: bool,
    },
    Advance {
        dt: i64,
    },
}

fn dt() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => prop::sample::select(vec![0i64, 1, 60_000, 300_000, 899_999, 900_000]),
        4 => 0..2_000_000i64,
        1 => 0..(3 * DAY as i64),
        1 => -5_000..0i64,
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (dt(), any::<bool>(), 0..4u64, 0..3u32, 0..4u32).prop_map(
            |(dt, at_now, agent, team, capacity)| Step::Staff { dt, at_now, agent, team, capacity }
        ),
        5 => (dt(), 0..4u64, any::<bool>())
            .prop_map(|(dt, agent, starts)| Step::Hold { dt, agent, starts }),
        1 => dt().prop_map(|dt| Step::Advance { dt }),
    ]
}

/// One person's state over a stretch of time.
#[derive(Clone, Copy, Default)]
struct State {
    team: u32,
    capacity: u64,
    holding: u64,
}

/// The naive model: every person's states as (from, state) lists in time
/// order, integrated at the end.
#[derive(Default)]
struct Naive {
    now: Option<u64>,
    /// Staffing given before any time: starts at the first time.
    waiting: BTreeMap<u64, State>,
    timelines: BTreeMap<u64, Vec<(u64, State)>>,
}

impl Naive {
    fn current(&self, agent: u64) -> State {
        self.timelines
            .get(&agent)
            .and_then(|timeline| timeline.last())
            .map(|&(_, state)| state)
            .or_else(|| self.waiting.get(&agent).copied())
            .unwrap_or_default()
    }

    fn set(&mut self, at: u64, agent: u64, state: State) {
        self.timelines.entry(agent).or_default().push((at, state));
    }

    /// Moves time to `at`; false if it is in the past.
    fn time(&mut self, at: u64) -> bool {
        match self.now {
            Some(now) if at < now => false,
            Some(_) => {
                self.now = Some(at);
                true
            }
            None => {
                self.now = Some(at);
                for (agent, state) in std::mem::take(&mut self.waiting) {
                    self.set(at, agent, state);
                }
                true
            }
        }
    }

    /// (held, staffed) per (slot, agent, team), from the retained slots on.
    fn areas(&self, first_kept: u64) -> BTreeMap<(u64, u64, u32), (u64, u64)> {
        let mut areas = BTreeMap::new();
        let Some(end) = self.now else { return areas };
        for (&agent, timeline) in &self.timelines {
            for (index, &(from, state)) in timeline.iter().enumerate() {
                let to = timeline.get(index + 1).map_or(end, |&(next, _)| next);
                let mut t = from.max(first_kept * SLOT_MS);
                while t < to {
                    let slot = t / SLOT_MS;
                    let stop = ((slot + 1) * SLOT_MS).min(to);
                    let span = stop - t;
                    let entry: &mut (u64, u64) =
                        areas.entry((slot, agent, state.team)).or_default();
                    entry.0 += span * state.holding;
                    entry.1 += span * state.capacity;
                    t = stop;
                }
            }
        }
        areas
    }
}

fn cases() -> u32 {
    std::env::var("LOKET_REPORT_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn occupancy_equals_the_naive_integration(
        steps in prop::collection::vec(step(), 0..60),
        short_retention in any::<bool>(),
        interval in 0..3usize,
    ) {
        let retention_ms = if short_retention { 2 * 3_600_000 } else { 35 * DAY };
        let config = MeterConfig { retention_ms, ..MeterConfig::default() };
        let mut meter = Meter::new(config).unwrap();
        let mut naive = Naive::default();
        let mut events = Vec::new();
        let mut clock = T0;
        for step in &steps {
            let dt = match step {
                Step::Staff { dt, .. } | Step::Hold { dt, .. } | Step::Advance { dt } => *dt,
            };
            clock = clock.saturating_add_signed(dt);
            match *step {
                Step::Staff { at_now, agent, team, capacity, .. } => {
                    let state = State { team, capacity: u64::from(capacity), ..naive.current(agent) };
                    if at_now {
                        meter.staff(None, agent, team, capacity, &mut events).unwrap();
                        match naive.now {
                            Some(now) => naive.set(now, agent, state),
                            None => {
                                naive.waiting.insert(agent, state);
                            }
                        }
                    } else {
                        let accepted = meter.staff(Some(clock), agent, team, capacity, &mut events).is_ok();
                        prop_assert_eq!(accepted, naive.time(clock));
                        if accepted {
                            naive.set(clock, agent, state);
                        }
                    }
                }
                Step::Hold { agent, starts, .. } => {
                    let accepted = meter.hold(clock, agent, starts, &mut events).is_ok();
                    prop_assert_eq!(accepted, naive.time(clock));
                    if accepted {
                        let mut state = naive.current(agent);
                        state.holding = if starts { state.holding + 1 } else { state.holding.saturating_sub(1) };
                        naive.set(clock, agent, state);
                    }
                }
                Step::Advance { .. } => {
                    let accepted = meter.advance(clock, &mut events).is_ok();
                    prop_assert_eq!(accepted, naive.time(clock));
                }
            }
            clock = clock.max(meter.now());
        }

        let retained = retention_ms / SLOT_MS;
        let first_kept = (meter.now() / SLOT_MS + 1).saturating_sub(retained);
        let interval = [Interval::Minutes15, Interval::Hour, Interval::Day][interval];
        // Expected (held, staffed) per (interval start, dimension, key).
        let mut expected: BTreeMap<(u64, Dimension, String), (u64, u64)> = BTreeMap::new();
        for ((slot, agent, team), (held, staffed)) in naive.areas(first_kept) {
            if held == 0 && staffed == 0 {
                continue;
            }
            let start = interval.start_of(slot * SLOT_MS);
            for key in [
                (Dimension::Agent, agent.to_string()),
                (Dimension::Team, team.to_string()),
                (Dimension::Total, String::new()),
            ] {
                let entry = expected.entry((start, key.0, key.1)).or_default();
                entry.0 += held;
                entry.1 += staffed;
            }
        }
        let query = Query {
            from: T0 - DAY,
            to: T0 + 60 * DAY,
            interval,
            group_by: vec![Dimension::Total, Dimension::Team, Dimension::Agent],
        };
        let report = meter.report(&query).unwrap();
        let got: BTreeMap<(u64, Dimension, String), Option<f64>> = report
            .intervals
            .iter()
            .map(|row| ((row.start, row.group, row.key.clone()), row.measures.occupancy))
            .collect();
        let want: BTreeMap<(u64, Dimension, String), Option<f64>> = expected
            .into_iter()
            .map(|(key, (held, staffed))| (key, (staffed > 0).then(|| held as f64 / staffed as f64)))
            .collect();
        prop_assert_eq!(got, want);
    }
}
