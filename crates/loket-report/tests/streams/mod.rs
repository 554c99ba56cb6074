//! Random fact streams for the property tests: a few conversations,
//! agents and teams, steps that land on SLA boundaries, now and then a long
//! gap, an out-of-order fact or an intent never interned.

#![allow(dead_code)] // each test binary uses its own part

use loket_report::{
    BusinessHours, Channel, Currency, CustomerMessage, Fact, FactKind, IntentId, Language, Meter,
    MeterConfig, Money, SlaRule,
};
use proptest::prelude::*;

pub const T0: u64 = 1_796_634_000_000;
pub const INTENTS: [&str; 4] = ["", "sales.order", "sales.question", "support"];

/// One input step.
#[derive(Clone, Debug)]
pub enum Step {
    Fact(Fact),
    Advance(u64),
}

/// A step before times are made absolute: `dt` moves the clock (negative
/// steps make out-of-order input).
#[derive(Clone, Debug)]
pub enum Draft {
    Fact { dt: i64, conversation: u64, kind: FactKind },
    Advance { dt: i64 },
}

pub fn kind() -> impl Strategy<Value = FactKind> {
    let message = (0..6usize, 0..2usize, 0..3u8, 0..5u32, 0..6usize, 0..3u32).prop_map(
        |(channel, language, tier, intent, buying, queue)| {
            FactKind::CustomerMessage(CustomerMessage {
                channel: Channel::ALL[channel],
                language: [Language::NL, Language::EN][language],
                tier,
                // Id 4 was never interned: refused.
                intent: IntentId(intent),
                buying_intent: [0.0, 0.29, 0.3, 0.5, 0.7, 0.95][buying],
                queue,
            })
        },
    );
    let order = (-100i64..10_000, any::<bool>()).prop_map(|(minor, eur)| FactKind::Order {
        value: Money {
            minor,
            currency: if eur { Currency::EUR } else { Currency::parse("usd").unwrap() },
        },
    });
    prop_oneof![
        4 => message,
        3 => (0..4u64, 0..2u32, any::<bool>())
            .prop_map(|(agent, team, human)| FactKind::Assigned { agent, team, human }),
        1 => Just(FactKind::HandedOff),
        4 => (0..4u64, 0..2u32, any::<bool>())
            .prop_map(|(agent, team, human)| FactKind::Reply { agent, team, human }),
        1 => order,
        2 => Just(FactKind::Closed),
    ]
}

pub fn dt() -> impl Strategy<Value = i64> {
    // Mostly steps of 0 or 5 s, so facts land exactly on SLA boundaries
    // (targets of 10, 15, 20, 25 and 60 s), where an off-by-one would hide;
    // now and then a long gap crosses slots, hours and retention.
    let round = prop::sample::select(vec![0, 0, 0, 1, 5_000, 5_000, 10_000]);
    prop_oneof![
        12 => round,
        4 => 0..20_000i64,
        1 => 0..600_000i64,
        1 => -5_000..0i64,
    ]
}

pub fn draft() -> impl Strategy<Value = Draft> {
    prop_oneof![
        12 => (dt(), 0..6u64, kind())
            .prop_map(|(dt, conversation, kind)| Draft::Fact { dt, conversation, kind }),
        1 => prop_oneof![dt(), 0..7_200_000i64].prop_map(|dt| Draft::Advance { dt }),
    ]
}

/// Absolute times from T0.
pub fn steps(drafts: &[Draft]) -> Vec<Step> {
    let mut clock = T0 as i64;
    drafts
        .iter()
        .map(|draft| match *draft {
            Draft::Fact { dt, conversation, kind } => {
                clock += dt;
                Step::Fact(Fact { at: clock as u64, conversation, kind })
            }
            Draft::Advance { dt } => {
                clock += dt;
                Step::Advance(clock as u64)
            }
        })
        .collect()
}

/// The default configuration with three SLA rules, an order window of 0,
/// 5 min or 1 h, retention of an hour or 35 days, and warnings at 80 %,
/// never, or at 99.9 %.
pub fn config(window: usize, retention: usize, warning: usize) -> MeterConfig {
    let mut config = MeterConfig {
        order_window_ms: [0, 300_000, 3_600_000][window],
        retention_ms: [3_600_000, 35 * 86_400_000][retention],
        ..MeterConfig::default()
    };
    config.sla.warning_permille = [800, 0, 999][warning];
    config.sla.rules = vec![
        SlaRule { tier: Some(2), first_reply_ms: Some(15_000), ..SlaRule::default() },
        SlaRule {
            channel: Some(Channel::Whatsapp),
            intent_prefix: Some("sales".into()),
            first_reply_ms: Some(20_000),
            next_reply_ms: Some(25_000),
            ..SlaRule::default()
        },
        SlaRule {
            intent_prefix: Some("sales.order".into()),
            next_reply_ms: Some(10_000),
            ..SlaRule::default()
        },
    ];
    config
}

/// Opening hours for the business-hours clocks, by `choice`: none; an
/// Amsterdam shop whose Monday (T0 is Monday 10:00 local) opens and closes
/// every half hour or so, with Tuesday a holiday; overnight hours in New
/// York (T0 is 04:00 local); always closed.
pub fn opening_hours(choice: usize) -> Option<BusinessHours> {
    let day = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match choice {
        1 => Some(BusinessHours {
            timezone: "Europe/Amsterdam".into(),
            monday: day(&["10:00-10:20", "10:40-11:30", "11:31-11:45", "12:00-24:00"]),
            tuesday: day(&["00:00-03:00", "09:00-17:30"]),
            wednesday: day(&["09:00-17:30"]),
            holidays: vec!["2026-12-08".into()],
            ..BusinessHours::default()
        }),
        2 => {
            let night = day(&["22:00-24:00", "00:00-04:10", "04:30-06:00"]);
            Some(BusinessHours {
                timezone: "America/New_York".into(),
                monday: night.clone(),
                tuesday: night,
                ..BusinessHours::default()
            })
        }
        3 => {
            Some(BusinessHours { timezone: "Europe/Amsterdam".into(), ..BusinessHours::default() })
        }
        _ => None,
    }
}

/// A meter with the test intents interned.
pub fn meter(config: &MeterConfig) -> Meter {
    let mut meter = Meter::new(config.clone()).unwrap();
    for name in INTENTS {
        meter.intern_intent(name).unwrap();
    }
    meter
}

/// Feeds every step, ignoring refusals; returns the SLA events.
pub fn feed(meter: &mut Meter, steps: &[Step]) -> Vec<loket_report::SlaEvent> {
    let mut events = Vec::new();
    for step in steps {
        let _ = match step {
            Step::Fact(fact) => meter.ingest(fact, &mut events),
            Step::Advance(now) => meter.advance(*now, &mut events),
        };
    }
    events
}
