//! Checks for the `report_facts` fuzz target; not part of the API.
//!
//! Any bytes decode to a stream of facts, time advances and people's
//! staffing and hold changes over a few conversations, agents and teams
//! (every 8 bytes one step), fed to a
//! meter: it must never panic, every group of every report must be
//! consistent, and a serialised and restored meter must report the same.
//! `tests/fuzz_corpus.rs` also compares each seed's reports with the naive
//! recomputation the differential tests use.

use crate::{
    BusinessHours, Channel, Currency, CustomerMessage, Dimension, Fact, FactKind, IntentId,
    Interval, Language, Meter, MeterConfig, Money, Query, Report, SlaRule,
};

/// The stream's start: 2026-12-05T08:00:00Z.
pub const T0: u64 = 1_796_544_000_000;

/// The intents a stream may name (id 4 is never interned: refused).
pub const INTENTS: [&str; 4] = ["", "sales.order", "sales.question", "support"];

/// One decoded step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    /// A fact.
    Fact(Fact),
    /// The meter's time moves here.
    Advance(u64),
    /// From `at`, person `agent` of `team` can hold `capacity`
    /// conversations (0: away), for occupancy.
    Staff {
        /// When.
        at: u64,
        /// The person.
        agent: u64,
        /// Their team.
        team: u32,
        /// Conversations they can hold at once.
        capacity: u32,
    },
    /// Person `agent` starts (or stops) holding a conversation at `at`.
    Hold {
        /// When.
        at: u64,
        /// The person.
        agent: u64,
        /// Starts (`true`) or stops.
        starts: bool,
    },
}

impl Step {
    /// The time the step moves the meter to (a fact's, an advance's, a
    /// staffing or hold change's): every step fires the SLA timers due by
    /// then.
    pub fn at(&self) -> u64 {
        match *self {
            Step::Fact(fact) => fact.at,
            Step::Advance(at) | Step::Staff { at, .. } | Step::Hold { at, .. } => at,
        }
    }
}

/// Opening hours for the business-hours clocks, by `choice`: none; an
/// Amsterdam shop opening and closing through the stream's Sunday and
/// Monday; overnight hours in New York with a holiday.
pub fn opening_hours(choice: u8) -> Option<BusinessHours> {
    let day = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match choice {
        1 => Some(BusinessHours {
            timezone: "Europe/Amsterdam".into(),
            sunday: day(&["09:00-09:05", "09:30-12:00", "13:00-24:00"]),
            monday: day(&["00:00-02:00", "09:00-17:30"]),
            ..BusinessHours::default()
        }),
        2 => Some(BusinessHours {
            timezone: "America/New_York".into(),
            sunday: day(&["03:01-03:30", "04:00-06:00", "22:00-24:00"]),
            monday: day(&["00:00-06:00"]),
            tuesday: day(&["00:00-06:00"]),
            holidays: vec!["2026-12-08".into()],
            ..BusinessHours::default()
        }),
        _ => None,
    }
}

/// The configuration the first byte picks, and the steps of the rest.
pub fn decode(data: &[u8]) -> (MeterConfig, Vec<Step>) {
    let head = data.first().copied().unwrap_or(0);
    let mut config = MeterConfig {
        order_window_ms: [0, 300_000, 3_600_000][usize::from(head % 3)],
        retention_ms: [3_600_000, 35 * 86_400_000][usize::from(head / 3 % 2)],
        ..MeterConfig::default()
    };
    config.sla.warning_permille = [800, 0, 999][usize::from(head / 6 % 3)];
    config.opening_hours = opening_hours(head / 18 % 3);
    config.sla.rules = vec![
        SlaRule { tier: Some(2), first_reply_ms: Some(15_000), ..SlaRule::default() },
        SlaRule {
            channel: Some(Channel::Whatsapp),
            intent_prefix: Some("sales".into()),
            first_reply_ms: Some(20_000),
            next_reply_ms: Some(25_000),
            ..SlaRule::default()
        },
    ];
    let mut clock = T0 as i64;
    let steps = data
        .get(1..)
        .unwrap_or_default()
        .chunks_exact(8)
        .map(|b| {
            // Time: mostly none or 5 s steps (on SLA boundaries), sometimes
            // a long gap or a step back (refused as out of order).
            let dt: i64 = match b[0] % 16 {
                0..=6 => 0,
                7..=10 => 5_000,
                11 => 1,
                12 => i64::from(u16::from_le_bytes([b[1], b[2]])),
                13 => i64::from(u16::from_le_bytes([b[1], b[2]])) * 100,
                14 => -i64::from(b[1]) * 20,
                _ => i64::from(u16::from_le_bytes([b[1], b[2]])) * 1_000,
            };
            clock += dt;
            let at = clock.max(0) as u64;
            let conversation = u64::from(b[3] % 6);
            let kind = match b[4] % 16 {
                0..=4 => FactKind::CustomerMessage(CustomerMessage {
                    channel: Channel::ALL[usize::from(b[5] % 6)],
                    language: [Language::NL, Language::EN][usize::from(b[5] / 6 % 2)],
                    tier: b[6] % 3,
                    intent: IntentId(u32::from(b[6] / 3 % 5)),
                    buying_intent: [0.0, 0.29, 0.3, 0.5, 0.7, 0.95][usize::from(b[7] % 6)],
                    queue: u32::from(b[7] / 6 % 3),
                }),
                5..=7 => FactKind::Assigned {
                    agent: u64::from(b[5] % 4),
                    team: u32::from(b[6] % 2),
                    human: b[7] % 2 == 0,
                },
                8 => FactKind::HandedOff,
                9..=12 => FactKind::Reply {
                    agent: u64::from(b[5] % 4),
                    team: u32::from(b[6] % 2),
                    human: b[7] % 2 == 0,
                },
                13 => FactKind::Order {
                    value: Money {
                        minor: i64::from(i16::from_le_bytes([b[5], b[6]])),
                        currency: if b[7] % 2 == 0 {
                            Currency::EUR
                        } else {
                            Currency::parse("usd").unwrap_or(Currency::EUR)
                        },
                    },
                },
                14 => {
                    return match b[6] % 4 {
                        0 | 1 => Step::Advance(at.saturating_add(u64::from(b[5]) * 60_000)),
                        2 => Step::Staff {
                            at,
                            agent: u64::from(b[5] % 4),
                            team: u32::from(b[7] % 2),
                            capacity: u32::from(b[7] / 2 % 4),
                        },
                        _ => Step::Hold { at, agent: u64::from(b[5] % 4), starts: b[7] % 3 != 0 },
                    };
                }
                _ => FactKind::Closed,
            };
            Step::Fact(Fact { at, conversation, kind })
        })
        .collect();
    (config, steps)
}

/// A meter with [`INTENTS`] interned, fed `steps` (refusals ignored).
pub fn feed(config: &MeterConfig, steps: &[Step]) -> Meter {
    let mut meter = Meter::new(config.clone()).expect("the decoded configuration is valid");
    for name in INTENTS {
        meter.intern_intent(name).expect("four short names fit");
    }
    let mut events = Vec::new();
    for step in steps {
        let _ = match step {
            Step::Fact(fact) => meter.ingest(fact, &mut events),
            Step::Advance(now) => meter.advance(*now, &mut events),
            Step::Staff { at, agent, team, capacity } => {
                meter.staff(Some(*at), *agent, *team, *capacity, &mut events)
            }
            Step::Hold { at, agent, starts } => meter.hold(*at, *agent, *starts, &mut events),
        };
    }
    meter
}

/// The report over everything the stream can touch, every dimension.
pub fn whole(meter: &Meter, interval: Interval) -> Report {
    let query = Query {
        from: T0 - 86_400_000,
        to: T0 + 60 * 86_400_000,
        interval,
        group_by: Dimension::ALL.to_vec(),
    };
    meter.report(&query).expect("a non-empty range")
}

/// Decodes, feeds and checks; panics on a broken invariant.
pub fn facts(data: &[u8]) {
    let (config, steps) = decode(data);
    let meter = feed(&config, &steps);
    let report = whole(&meter, Interval::Hour);
    for row in report.intervals.iter().chain(&report.groups) {
        let m = &row.measures;
        assert!(m.answered + m.abandoned <= m.offered, "{row:?}");
        assert!(m.short_abandoned <= m.abandoned, "{row:?}");
        assert!(m.conversions <= m.offered, "{row:?}");
        assert!(m.service_level.is_none_or(|level| (0.0..=1.0).contains(&level)), "{row:?}");
        assert!(m.occupancy.is_none_or(|occupancy| occupancy >= 0.0), "{row:?}");
        // Open time never exceeds the time; the clocks stop together.
        let twins = [
            (&m.wait_ms, m.wait_business_ms),
            (&m.first_response_ms, m.first_response_business_ms),
            (&m.next_reply_ms, m.next_reply_business_ms),
            (&m.resolution_ms, m.resolution_business_ms),
        ];
        for (calendar, business) in twins {
            assert_eq!(business.is_some(), config.opening_hours.is_some(), "{row:?}");
            if let Some(business) = business {
                assert_eq!(business.avg.is_some(), calendar.avg.is_some(), "{row:?}");
                assert!(business.avg <= calendar.avg, "{row:?}");
            }
        }
    }
    let totals = &report.totals;
    assert!(totals.answered + totals.abandoned <= totals.offered);
    // A restored meter reports the same.
    let saved = serde_json::to_string(&meter).expect("a meter serialises");
    let restored: Meter = serde_json::from_str(&saved).expect("and restores");
    assert_eq!(whole(&restored, Interval::Hour), report);
    // Days are merges of hours: the totals agree.
    assert_eq!(whole(&meter, Interval::Day).totals, report.totals);
}
