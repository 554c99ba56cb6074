//! Snapshots restore to identical reports and events; no input panics.

mod streams;

use loket_report::{
    Channel, Currency, CustomerMessage, Dimension, Fact, FactKind, IntentId, Interval, Language,
    Meter, Money, Query, SlaEvent,
};
use proptest::prelude::*;
use streams::{Step, T0, config, draft, feed, meter, steps};

fn cases() -> u32 {
    std::env::var("LOKET_REPORT_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(32)
}

fn everything(from: u64, to: u64) -> Query {
    Query { from, to, interval: Interval::Minutes15, group_by: Dimension::ALL.to_vec() }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// A meter serialised mid-stream and restored reports the same as the
    /// one that never stopped, fires the same events for the rest of the
    /// stream, and ends in a byte-identical snapshot.
    #[test]
    fn snapshots_restore_identically(
        drafts in prop::collection::vec(draft(), 0..120),
        cut in 0..120usize,
        window in 0..3usize,
        retention in 0..2usize,
    ) {
        let config = config(window, retention, 0);
        let steps = steps(&drafts);
        let cut = cut.min(steps.len());
        let mut whole = meter(&config);
        feed(&mut whole, &steps[..cut]);
        let snapshot = serde_json::to_string(&whole).unwrap();
        let mut restored: Meter = serde_json::from_str(&snapshot).unwrap();
        let query = everything(T0 - 86_400_000, T0 + 30 * 86_400_000);
        prop_assert_eq!(restored.report(&query).unwrap(), whole.report(&query).unwrap());
        prop_assert_eq!(serde_json::to_string(&restored).unwrap(), snapshot);

        let events_whole: Vec<SlaEvent> = feed(&mut whole, &steps[cut..]);
        let events_restored = feed(&mut restored, &steps[cut..]);
        prop_assert_eq!(events_restored, events_whole);
        prop_assert_eq!(restored.report(&query).unwrap(), whole.report(&query).unwrap());
        prop_assert_eq!(restored.rejections(), whole.rejections());
        prop_assert_eq!(serde_json::to_string(&restored).unwrap(), serde_json::to_string(&whole).unwrap());
    }

    /// Any times (out of order, at the ends of u64), unknown conversations,
    /// duplicate closes, unknown intents, extreme amounts and scores: every
    /// fact is applied or refused, nothing panics, reports still work.
    #[test]
    fn arbitrary_input_never_panics(
        facts in prop::collection::vec(
            (
                prop_oneof![any::<u64>(), (u64::MAX - 10_000_000)..=u64::MAX, 0..10_000_000u64],
                0..4u64,
                0..8u8,
                any::<u64>(),
                any::<i64>(),
                any::<f32>(),
                any::<u32>(),
            ),
            0..80,
        ),
        from in any::<u64>(),
        span in 1..u64::MAX,
    ) {
        let mut meter = meter(&config(1, 1, 0));
        let mut events = Vec::new();
        let mut refused = 0;
        for (at, conversation, kind, number, amount, score, intent) in facts {
            let kind = match kind {
                0 | 1 => FactKind::CustomerMessage(CustomerMessage {
                    channel: Channel::ALL[(number % 6) as usize],
                    language: Language([number as u8, (number >> 8) as u8]),
                    tier: number as u8,
                    intent: IntentId(intent % 6),
                    buying_intent: score,
                    queue: intent,
                }),
                2 => FactKind::Assigned { agent: number, team: intent, human: amount % 2 == 0 },
                3 => FactKind::HandedOff,
                4 => FactKind::Reply { agent: number, team: intent, human: amount % 2 == 0 },
                5 => FactKind::Order { value: Money { minor: amount, currency: Currency::EUR } },
                6 => FactKind::Closed,
                _ => {
                    if meter.advance(at, &mut events).is_err() {
                        refused += 1;
                    }
                    continue;
                }
            };
            if meter.ingest(&Fact { at, conversation, kind }, &mut events).is_err() {
                refused += 1;
            }
        }
        let r = meter.rejections();
        prop_assert_eq!(r.out_of_order + r.unknown_conversation + r.closed + r.unknown_intent, refused);
        let from = from.min(u64::MAX - 1);
        let to = from.saturating_add(span).max(from + 1);
        for interval in [Interval::Minutes15, Interval::Hour, Interval::Day] {
            let query = Query { interval, ..everything(from, to) };
            let report = meter.report(&query).unwrap();
            let _ = report.to_csv();
            let _ = report.to_json();
        }
        let whole = everything(0, u64::MAX);
        let restored: Meter = serde_json::from_str(&serde_json::to_string(&meter).unwrap()).unwrap();
        prop_assert_eq!(restored.report(&whole).unwrap(), meter.report(&whole).unwrap());
    }
}

#[test]
fn memory_is_bounded_by_close_window_and_retention() {
    let config = config(1, 0, 0); // 5-minute order window, 1 h retention
    let mut meter = meter(&config);
    let mut steps = Vec::new();
    let message = FactKind::CustomerMessage(CustomerMessage {
        channel: Channel::Chat,
        language: Language::NL,
        tier: 0,
        intent: IntentId::NONE,
        buying_intent: 0.0,
        queue: 0,
    });
    // A conversation a minute for a day, each closed after 30 s.
    for minute in 0..1440u64 {
        let at = T0 + minute * 60_000;
        steps.push(Step::Fact(Fact { at, conversation: minute, kind: message }));
        steps.push(Step::Fact(Fact {
            at: at + 30_000,
            conversation: minute,
            kind: FactKind::Closed,
        }));
    }
    feed(&mut meter, &steps);
    // Closed conversations stay for their 5-minute window only (5 or 6 of
    // them, depending on where the clock stands), slots for the hour.
    assert!(meter.conversations_held() <= 6, "{}", meter.conversations_held());
    assert!(meter.slots_held() <= 4, "{}", meter.slots_held());
    assert_eq!(meter.timers_pending(), 0);
    assert_eq!(meter.rejections().expired_interval, 0);
}

#[test]
fn duplicate_and_unknown_facts_are_typed_errors() {
    use loket_report::FactError;
    let mut meter = meter(&config(0, 1, 0));
    let mut events = Vec::new();
    let close = Fact { at: T0, conversation: 1, kind: FactKind::Closed };
    assert_eq!(meter.ingest(&close, &mut events), Err(FactError::UnknownConversation(1)));
    let message = CustomerMessage {
        channel: Channel::Sms,
        language: Language::EN,
        tier: 0,
        intent: IntentId(99),
        buying_intent: f32::NAN,
        queue: 0,
    };
    let fact = Fact { at: T0, conversation: 1, kind: FactKind::CustomerMessage(message) };
    assert_eq!(meter.ingest(&fact, &mut events), Err(FactError::UnknownIntent(99)));
    let message = CustomerMessage { intent: IntentId::NONE, ..message };
    let fact = Fact { at: T0, conversation: 1, kind: FactKind::CustomerMessage(message) };
    meter.ingest(&fact, &mut events).unwrap();
    meter.ingest(&close, &mut events).unwrap();
    // Window 0: the same millisecond still names it, for orders only.
    assert_eq!(meter.ingest(&close, &mut events), Err(FactError::Closed(1)));
    let late_close = Fact { at: T0 + 1, ..close };
    assert_eq!(meter.ingest(&late_close, &mut events), Err(FactError::UnknownConversation(1)));
    assert_eq!(
        meter.advance(T0 - 1, &mut events),
        Err(FactError::OutOfOrder { at: T0 - 1, now: T0 })
    );
    assert_eq!(meter.rejections().unknown_conversation, 2);
}

/// A snapshot written when closed conversations were kept among the open
/// ones (with `closed_at` set, no `closed` list) restores: an order in the
/// window still converts, a later one names an unknown conversation, and
/// the restored meter writes the current form.
#[test]
fn snapshots_holding_closed_conversations_among_open_ones_restore() {
    use loket_report::FactError;
    let config = config(1, 1, 0); // 5-minute order window
    let mut meter = meter(&config);
    let mut events = Vec::new();
    let message = CustomerMessage {
        channel: Channel::Chat,
        language: Language::NL,
        tier: 0,
        intent: IntentId::NONE,
        buying_intent: 0.9,
        queue: 0,
    };
    let open = Fact { at: T0, conversation: 4, kind: FactKind::CustomerMessage(message) };
    meter.ingest(&open, &mut events).unwrap();
    let reply = FactKind::Reply { agent: 1, team: 0, human: true };
    meter.ingest(&Fact { at: T0 + 20_000, conversation: 4, kind: reply }, &mut events).unwrap();
    // The conversation as the old form held it once closed at T0 + 60 s.
    let mut saved: serde_json::Value = serde_json::to_value(&meter).unwrap();
    let entry = &mut saved["conversations"][0][1];
    entry["closed_at"] = serde_json::json!(T0 + 60_000);
    entry["first_reply_timer"] = serde_json::Value::Null;
    saved["timers"] = serde_json::json!([]);
    saved["expiries"] = serde_json::json!([[T0 + 360_000, 4, T0 + 60_000]]);
    saved.as_object_mut().unwrap().remove("closed");
    let mut restored: Meter = serde_json::from_value(saved).unwrap();
    assert_eq!(restored.conversations_held(), 1);
    assert!(!restored.is_open(4));
    let value = Money { minor: 1_000, currency: Currency::EUR };
    let order = Fact { at: T0 + 300_000, conversation: 4, kind: FactKind::Order { value } };
    restored.ingest(&order, &mut events).unwrap();
    let reply = Fact { at: T0 + 300_000, conversation: 4, kind: reply };
    assert_eq!(restored.ingest(&reply, &mut events), Err(FactError::Closed(4)));
    let report = restored.report(&everything(T0, T0 + 3_600_000)).unwrap();
    assert_eq!((report.totals.conversions, report.totals.answered), (1, 1));
    assert_eq!(report.totals.conversion_by_first_response.under_1m.conversions, 1);
    let late = Fact { at: T0 + 360_001, ..order };
    assert_eq!(restored.ingest(&late, &mut events), Err(FactError::UnknownConversation(4)));
    restored.advance(T0 + 360_001, &mut events).unwrap();
    assert_eq!(restored.conversations_held(), 0);
    let again: Meter = serde_json::from_str(&serde_json::to_string(&restored).unwrap()).unwrap();
    assert_eq!(again.report(&everything(T0, T0 + 3_600_000)).unwrap(), report);
}
