//! The scenario features beyond M/M/c: bots that resolve or escalate,
//! several messages per conversation, shifts, warm-up and conversions.

use loket_sim::{Options, Scenario, replicate};

const METER: Options = Options { meter: true, pages: false };

#[test]
fn bots_resolve_and_escalate_and_messages_get_next_replies() {
    let scenario = Scenario::from_toml(
        r#"
duration_s = 14400
warmup_s = 1800

[[arrivals]]
channel = "chat"
language = "nl"
rate_per_hour = 200
handle = { dist = "exponential", mean_s = 300 }
reply_delay = { dist = "fixed", value_s = 10 }
messages = 3
gap = { dist = "fixed", value_s = 20 }
buying_intent = { dist = "beta", a = 2.0, b = 5.0 }

[[agents]]
name = "bot"
count = 1
kind = "bot"
languages = ["nl"]
capacity = { chat = 100 }
handle = { dist = "fixed", value_s = 60 }
resolve = 0.5
escalate = 0.5

[[agents]]
name = "people"
count = 12
languages = ["nl"]
capacity = { chat = 1 }

[router]
bot_first = true
affinity_lookback_ms = 0
escalation = { buying_intent_threshold = 2.0 }
"#,
    )
    .unwrap();
    let outcome = replicate(&scenario, 11, METER).unwrap();
    let totals = &outcome.report.unwrap().totals;
    let offered = totals.offered as f64;
    assert!((600.0..1000.0).contains(&offered), "about 800: {offered}");
    let resolved = totals.bot_resolved as f64 / offered;
    let escalated = totals.escalations as f64 / offered;
    assert!((0.4..0.6).contains(&resolved), "half resolved: {resolved}");
    assert!((0.4..0.6).contains(&escalated), "half escalated: {escalated}");
    // People answer escalated chats in several messages: next replies
    // exist, 10 s after each customer message.
    let next = totals.next_reply_ms.avg.expect("next replies measured");
    assert!((9_000.0..11_000.0).contains(&next), "{next}");
    // Warm-up arrivals are not measured: the meter saw only the period's.
    assert!(outcome.counts.conversations > outcome.counts.offered);
    assert_eq!(totals.offered, outcome.counts.offered);
}

#[test]
fn shifts_take_people_away_and_conversions_follow_the_curve() {
    // People work 00:00-12:00 only; arrivals all day, patience 60 s: the
    // afternoon's customers all leave.
    let scenario = Scenario::from_toml(
        r#"
duration_s = 86400

[[arrivals]]
channel = "chat"
language = "nl"
rate_per_hour = 60
handle = { dist = "exponential", mean_s = 60 }
patience = { dist = "exponential", mean_s = 60 }
buying_intent = { dist = "fixed", value_s = 1.0 }

[[agents]]
count = 5
languages = ["nl"]
capacity = { chat = 1 }
shifts = [{ from_s = 0, to_s = 43200 }]

[router]
affinity_lookback_ms = 0

[conversion]
max_rate = 0.5
half_life_s = 300
order_value = { dist = "fixed", value = 10.0 }
"#,
    )
    .unwrap();
    let outcome = replicate(&scenario, 3, METER).unwrap();
    let counts = &outcome.counts;
    let abandoned = counts.abandon_rate().unwrap();
    assert!((0.4..0.6).contains(&abandoned), "the afternoon leaves: {abandoned}");
    // Occupancy over capacity on shift only: 1 Erlang on 5 agents.
    let occupancy = counts.occupancy().unwrap();
    assert!((0.15..0.25).contains(&occupancy), "{occupancy}");
    // The meter follows the shifts too: its occupancy agrees with the
    // simulator's own (people staffed half the day, not all of it).
    let metered = outcome.report.as_ref().unwrap().totals.occupancy.unwrap();
    assert!((metered - occupancy).abs() < 0.02, "meter {metered}, simulator {occupancy}");
    // Answered at once with buying intent 1: conversion 0.5 of those answered.
    let answered = (counts.offered - counts.abandoned) as f64;
    let rate = counts.conversions as f64 / answered;
    assert!((0.4..0.6).contains(&rate), "{rate}");
    assert_eq!(counts.revenue_minor, counts.conversions as i64 * 1000);
}

/// The month example (examples/simulate/month.toml) is what it says: 1,000
/// agents, three channels, 30 days; one of its days runs with people busy
/// but not swamped (checked on a copy one day long, to keep CI short).
#[test]
fn the_month_example_is_a_month_of_a_thousand_agents_on_three_channels() {
    let text = include_str!("../../../examples/simulate/month.toml");
    let scenario = Scenario::from_toml(text).unwrap();
    assert_eq!(scenario.duration_ms, 30 * 86_400_000);
    assert_eq!(scenario.agents.iter().map(|g| g.count).sum::<u32>(), 1_000);
    let mut channels: Vec<_> = scenario.arrivals.iter().map(|a| a.channel).collect();
    channels.sort();
    channels.dedup();
    assert_eq!(channels.len(), 3);
    let day = Scenario { duration_ms: 86_400_000, ..scenario };
    let counts = replicate(&day, 1, Options { meter: false, pages: false }).unwrap().counts;
    assert!((100_000..125_000).contains(&counts.offered), "{}", counts.offered);
    let occupancy = counts.occupancy().unwrap();
    assert!((0.4..0.7).contains(&occupancy), "{occupancy}");
    assert!(counts.abandon_rate().unwrap() < 0.02);
}
