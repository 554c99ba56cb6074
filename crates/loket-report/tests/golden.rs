//! A golden scenario: six conversations in one hour, every measure worked
//! out by hand below.
//!
//! Defaults: chat targets 60 s (first and next reply), WhatsApp 5 min,
//! e-mail 4 h; warnings at 80 %; short abandon 10 s; order window 1 h.
//! Times are seconds after T0 = 2026-12-07 09:00:00 UTC.
//!
//! 1. chat, nl, tier 0, intent `order.status`, buying 0.1, queue 1.
//!    0 message; 5 assigned to person 10 (team 1): wait 5 s; 20 reply by
//!    10: first response 20 s (within 60 s); 30 message: next-reply clock;
//!    warning at 30 + 48 = 78, breach at 90 s + 1 ms; 130 reply: next
//!    reply 100 s; 200 closed: resolution 200 s, handle 195 s; 1000 order
//!    EUR 10.00, after the close but within the hour's window: conversion,
//!    first-response band `<1m`.
//! 2. chat, en, tier 1, intent `product.question`, buying 0.8, queue 2.
//!    60 message and a bot (99, team 9) takes it: the first-response clock
//!    stops unmeasured; 62 bot reply: answered, but no clock stops;
//!    120 hand-off: escalation, clocks restart at 120 (warning 168, breach
//!    180 s + 1 ms); 150 person 11 (team 1): wait 30 s; 250 reply by 11: first
//!    response 130 s (missed); 300 order EUR 49.95: band `1-5m`; 400 closed:
//!    resolution 340 s, handle 250 s.
//! 3. WhatsApp, 100 message, 105 closed: abandoned, short (5 s ≤ 10 s).
//! 4. e-mail, 1000 message, 2200 closed: abandoned, not short.
//! 5. chat, 300 message, a bot takes it, 305 bot reply, 400 closed: bot
//!    resolved (counts as answered within target: no person was needed).
//! 6. chat, 500 message, nobody answers; time advances to 600: warning at
//!    548, breach at 560 s + 1 ms; still open.
//!
//! Totals: offered 6 = answered 3 (1, 2, 5) + abandoned 2 (3, 4) + open 1
//! (6). Service level = within target (1, 5) / (3 + 2 − 1 short) = 2/4.
//! First-reply breaches 2 (conversations 2 and 6), next-reply 1 (1).

use loket_report::{
    Channel, Currency, CustomerMessage, Dimension, Fact, FactError, FactKind, Interval, Language,
    Meter, MeterConfig, Money, Query, Report, Row, SlaClock, SlaEvent, SlaEventKind,
};

const T0: u64 = 1_796_634_000_000;

fn at(seconds: u64) -> u64 {
    T0 + seconds * 1000
}

struct Scenario {
    meter: Meter,
    events: Vec<SlaEvent>,
}

impl Scenario {
    fn fact(&mut self, seconds: u64, conversation: u64, kind: FactKind) {
        let fact = Fact { at: at(seconds), conversation, kind };
        self.meter.ingest(&fact, &mut self.events).unwrap();
    }
}

fn message(
    channel: Channel,
    language: Language,
    tier: u8,
    intent: &str,
    buying: f32,
    queue: u32,
    meter: &mut Meter,
) -> FactKind {
    FactKind::CustomerMessage(CustomerMessage {
        channel,
        language,
        tier,
        intent: meter.intern_intent(intent).unwrap(),
        buying_intent: buying,
        queue,
    })
}

const PERSON_10: FactKind = FactKind::Assigned { agent: 10, team: 1, human: true };
const PERSON_11: FactKind = FactKind::Assigned { agent: 11, team: 1, human: true };
const BOT: FactKind = FactKind::Assigned { agent: 99, team: 9, human: false };
const REPLY_10: FactKind = FactKind::Reply { agent: 10, team: 1, human: true };
const REPLY_11: FactKind = FactKind::Reply { agent: 11, team: 1, human: true };
const BOT_REPLY: FactKind = FactKind::Reply { agent: 99, team: 9, human: false };

fn eur(cents: i64) -> FactKind {
    FactKind::Order { value: Money { minor: cents, currency: Currency::EUR } }
}

fn run() -> Scenario {
    let mut meter = Meter::new(MeterConfig::default()).unwrap();
    let chat_nl = message(Channel::Chat, Language::NL, 0, "order.status", 0.1, 1, &mut meter);
    let chat_en = message(Channel::Chat, Language::EN, 1, "product.question", 0.8, 2, &mut meter);
    let whatsapp = message(Channel::Whatsapp, Language::NL, 0, "", 0.5, 1, &mut meter);
    let email = message(Channel::Email, Language::NL, 0, "", 0.0, 3, &mut meter);
    let mut s = Scenario { meter, events: Vec::new() };
    s.fact(0, 1, chat_nl);
    s.fact(5, 1, PERSON_10);
    s.fact(20, 1, REPLY_10);
    s.fact(30, 1, chat_nl);
    s.fact(60, 2, chat_en);
    s.fact(60, 2, BOT);
    s.fact(62, 2, BOT_REPLY);
    s.fact(100, 3, whatsapp);
    s.fact(105, 3, FactKind::Closed);
    s.fact(120, 2, FactKind::HandedOff);
    s.fact(130, 1, REPLY_10);
    s.fact(150, 2, PERSON_11);
    s.fact(200, 1, FactKind::Closed);
    s.fact(250, 2, REPLY_11);
    s.fact(300, 2, eur(4995));
    s.fact(300, 5, chat_nl);
    s.fact(300, 5, BOT);
    s.fact(305, 5, BOT_REPLY);
    s.fact(400, 2, FactKind::Closed);
    s.fact(400, 5, FactKind::Closed);
    s.fact(500, 6, chat_nl);
    s.meter.advance(at(600), &mut s.events).unwrap();
    s.fact(1000, 1, eur(1000));
    s.fact(1000, 4, email);
    s.fact(2200, 4, FactKind::Closed);
    s
}

fn hour(group_by: Vec<Dimension>) -> Query {
    Query { from: at(0), to: at(3600), interval: Interval::Hour, group_by }
}

fn event(ms: u64, conversation: u64, clock: SlaClock, kind: SlaEventKind) -> SlaEvent {
    SlaEvent { kind, at: T0 + ms, conversation, clock, target_ms: 60_000 }
}

/// A warning fires at start + 48 s (80 % of 60 s); a breach 1 ms past the
/// target.
#[test]
fn sla_events_fire_in_time_order() {
    use SlaClock::{FirstReply, NextReply};
    use SlaEventKind::{Breached, Warning};
    let s = run();
    let expected = vec![
        event(78_000, 1, NextReply, Warning),
        event(90_001, 1, NextReply, Breached),
        event(168_000, 2, FirstReply, Warning),
        event(180_001, 2, FirstReply, Breached),
        event(548_000, 6, FirstReply, Warning),
        event(560_001, 6, FirstReply, Breached),
    ];
    assert_eq!(s.events, expected);
}

#[test]
fn totals_match_the_hand_computation() {
    let s = run();
    let report = s.meter.report(&hour(vec![])).unwrap();
    let t = &report.totals;
    assert_eq!((t.offered, t.answered, t.abandoned, t.short_abandoned), (6, 3, 2, 1));
    assert_eq!(t.service_level, Some(0.5));
    // wait: 5 s and 30 s. p50 is 5,000's bucket top (4,992..=5,119).
    assert_eq!(t.wait_ms.avg, Some(17_500.0));
    assert_eq!(
        (t.wait_ms.p50, t.wait_ms.p90, t.wait_ms.p99),
        (Some(5_119), Some(30_000), Some(30_000))
    );
    // first response: 20 s and 130 s; 20,000 lies in 19,968..=20,479.
    assert_eq!(t.first_response_ms.avg, Some(75_000.0));
    assert_eq!(t.first_response_ms.p50, Some(20_479));
    assert_eq!(t.first_response_ms.p99, Some(130_000));
    // next reply: one, 100 s (capped at the largest value recorded).
    assert_eq!(t.next_reply_ms.avg, Some(100_000.0));
    assert_eq!(t.next_reply_ms.p50, Some(100_000));
    // resolution: 5, 100, 200, 340, 1200 s; p50 is rank 3 (200,000 in
    // 196,608..=200,703), p90 rank 5.
    assert_eq!(t.resolution_ms.avg, Some(369_000.0));
    assert_eq!(t.resolution_ms.p50, Some(200_703));
    assert_eq!(t.resolution_ms.p90, Some(1_200_000));
    // handle: 195 s and 250 s.
    assert_eq!(t.handle_ms.avg, Some(222_500.0));
    assert_eq!((t.sla_breaches.first_reply, t.sla_breaches.next_reply), (2, 1));
    assert_eq!((t.escalations, t.bot_resolved, t.conversions), (1, 1, 2));
    assert_eq!(t.conversion_rate, Some(2.0 / 6.0));
    assert_eq!(t.revenue.get("EUR"), Some(&59.95));
    assert_eq!(t.occupancy, None);
    let bands = &t.conversion_by_first_response;
    assert_eq!((bands.under_1m.conversations, bands.under_1m.conversions), (1, 1));
    assert_eq!((bands.from_1m_to_5m.conversations, bands.from_1m_to_5m.conversions), (1, 1));
    assert_eq!(bands.from_5m_to_15m.rate, None);
}

fn find<'a>(rows: &'a [Row], group: Dimension, key: &str) -> &'a Row {
    rows.iter().find(|row| row.group == group && row.key == key).unwrap()
}

#[test]
fn groups_match_the_hand_computation() {
    let s = run();
    let report: Report = s
        .meter
        .report(&hour(vec![
            Dimension::Channel,
            Dimension::Agent,
            Dimension::Team,
            Dimension::BuyingIntent,
            Dimension::Intent,
        ]))
        .unwrap();
    // One hour, so the interval rows are the group rows.
    assert_eq!(report.intervals, report.groups);
    let chat = &find(&report.groups, Dimension::Channel, "chat").measures;
    assert_eq!((chat.offered, chat.answered, chat.abandoned), (4, 3, 0));
    assert_eq!(chat.service_level, Some(2.0 / 3.0));
    let whatsapp = &find(&report.groups, Dimension::Channel, "whatsapp").measures;
    assert_eq!((whatsapp.offered, whatsapp.abandoned, whatsapp.short_abandoned), (1, 1, 1));
    // Person 11 took conversation 2 after the bot had answered and handed
    // off: their group catches up on both.
    let person_11 = &find(&report.groups, Dimension::Agent, "11").measures;
    assert_eq!((person_11.offered, person_11.answered, person_11.escalations), (1, 1, 1));
    assert_eq!((person_11.sla_breaches.first_reply, person_11.conversions), (1, 1));
    let team_1 = &find(&report.groups, Dimension::Team, "1").measures;
    assert_eq!((team_1.offered, team_1.answered, team_1.conversions), (2, 2, 2));
    assert_eq!(team_1.revenue.get("EUR"), Some(&59.95));
    // Bots join no agent group.
    assert!(report.groups.iter().all(|row| row.key != "99" && row.key != "9"));
    let high = &find(&report.groups, Dimension::BuyingIntent, "0.7-1").measures;
    assert_eq!((high.offered, high.conversions), (1, 1));
    let order_status = &find(&report.groups, Dimension::Intent, "order.status").measures;
    assert_eq!(order_status.offered, 3); // conversations 1, 5 and 6
}

#[test]
fn refusals_change_nothing() {
    let mut s = run();
    let before = s.meter.report(&hour(vec![])).unwrap();
    let closed_again = Fact { at: at(2300), conversation: 3, kind: FactKind::Closed };
    assert_eq!(s.meter.ingest(&closed_again, &mut s.events), Err(FactError::Closed(3)));
    let unknown = Fact { at: at(2300), conversation: 77, kind: FactKind::HandedOff };
    assert_eq!(s.meter.ingest(&unknown, &mut s.events), Err(FactError::UnknownConversation(77)));
    let late = Fact { at: at(10), conversation: 1, kind: FactKind::Closed };
    assert!(matches!(s.meter.ingest(&late, &mut s.events), Err(FactError::OutOfOrder { .. })));
    assert_eq!(s.meter.report(&hour(vec![])).unwrap(), before);
    let rejections = s.meter.rejections();
    assert_eq!(
        (rejections.closed, rejections.unknown_conversation, rejections.out_of_order),
        (1, 1, 1)
    );
}

#[test]
fn quarter_hours_add_up_to_the_hour() {
    let s = run();
    let quarters =
        s.meter.report(&Query { interval: Interval::Minutes15, ..hour(vec![]) }).unwrap();
    // Every conversation arrived in the first quarter (0..900 s) but
    // conversation 4 (1000 s, the second quarter).
    let offered: Vec<u64> = quarters.intervals.iter().map(|row| row.measures.offered).collect();
    assert_eq!(offered, vec![5, 1]);
    assert_eq!(quarters.totals, s.meter.report(&hour(vec![])).unwrap().totals);
}

#[test]
fn json_and_csv_carry_the_issue_names() {
    let s = run();
    let report = s.meter.report(&hour(vec![Dimension::Channel])).unwrap();
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let totals = &json["totals"];
    for name in [
        "offered",
        "answered",
        "abandoned",
        "short_abandoned",
        "service_level",
        "wait_ms",
        "first_response_ms",
        "next_reply_ms",
        "resolution_ms",
        "handle_ms",
        "wait_business_ms",
        "first_response_business_ms",
        "next_reply_business_ms",
        "resolution_business_ms",
        "handle_business_ms",
        "sla_breaches",
        "escalations",
        "bot_resolved",
        "conversions",
        "conversion_rate",
        "revenue",
        "occupancy",
        "conversion_by_first_response",
    ] {
        assert!(totals.get(name).is_some(), "totals lack {name}");
    }
    // No opening hours configured: the business-hours clocks are null.
    assert!(totals["first_response_business_ms"].is_null());
    assert_eq!(totals["sla_breaches"]["first_reply"], 2);
    assert_eq!(totals["conversion_by_first_response"]["<1m"]["rate"], 1.0);
    assert_eq!(json["intervals"][0]["group"], "channel");
    assert_eq!(json["intervals"][0]["key"], "chat");
    // (Reading floats back is only exact with serde_json's float_roundtrip;
    // the meter's snapshots hold no floats.)
    let csv = report.to_csv();
    let lines: Vec<&str> = csv.lines().collect();
    // Header, three channel rows per interval and per range, the totals.
    assert_eq!(lines.len(), 1 + 3 + 3 + 1);
    let columns = lines[0].split(',').count();
    assert!(lines.iter().all(|line| line.split(',').count() == columns));
    assert!(lines[7].starts_with(&format!("{},{},total,all,6,3,2,1,0.5,", at(0), at(3600))));
}
