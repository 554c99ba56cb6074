use loket_report::{Interval, Query, Report};

use super::tests::tenant_state;
use super::*;

fn measured(start_ms: u64, saved: Option<&TenantSnapshot>) -> TenantState {
    tenant_state(
        start_ms,
        loket_router::RouterConfig::default(),
        Some(MeterConfig::default()),
        saved,
    )
}

fn report(state: &TenantState, start: u64) -> Report {
    let query = Query {
        from: start,
        to: start + 3_600_000,
        interval: Interval::Minutes15,
        group_by: vec![loket_report::Dimension::Channel, loket_report::Dimension::Agent],
    };
    state.metering().unwrap().read().report(&query, |agent| Some(agent.0.to_string())).unwrap()
}

fn message(conversation: &str) -> Command {
    Command::Messages(vec![ScoredMessage {
        conversation: conversation.parse().unwrap(),
        customer: "k".parse().unwrap(),
        channel: 0,
        language: 1,
        tier: 0,
        text: String::new(),
        intent: 0,
        confidence: 0.5,
        buying_intent: 0.1,
        detected_language: 1,
        signals: 0,
        skills: Vec::new(),
    }])
}

#[test]
fn replies_and_orders_are_measured_and_survive_replay_and_snapshots() {
    let start = 1_795_424_400_000;
    let anna = Command::UpsertAgent(AgentRecord {
        id: "anna".parse().unwrap(),
        bot: false,
        skills: Vec::new(),
        languages: vec!["nl".into()],
        capacity: [3, 3, 3, 3, 3, 1, 10],
        presence: 0,
        team: Some("garden".into()),
    });
    let reply = |c: &str, at_ms| Command::Reply {
        conversation: c.parse().unwrap(),
        agent: "anna".parse().unwrap(),
        at_ms,
    };
    let order = |c: &str, currency: &str, value_minor| Command::Order {
        conversation: c.parse().unwrap(),
        value_minor,
        currency: currency.into(),
        at_ms: None,
    };
    let close = |c: &str| Command::Close { conversation: c.parse().unwrap() };
    let first = [(0, anna), (0, message("c1")), (20_000, reply("c1", Some(start + 15_000)))];
    let second = [
        (30_000, message("c2")),
        (40_000, close("c1")),
        (50_000, order("c1", "eur", 4_995)),
        (50_000, order("c1", "euro", 100)),
        (50_000, order("nope", "EUR", 100)),
        (50_000, reply("c1", None)),
        (200_000, Command::Tick),
    ];
    let mut live = measured(start, None);
    let mut journal = Vec::new();
    let mut refused = Vec::new();
    let mut events = Vec::new();
    for (offset, command) in first {
        let record = Record { at_ms: start + offset, command };
        live.apply(&record, &mut events).unwrap();
        journal.push(record);
    }
    let snapshot = live.snapshot(journal.len() as u64);
    let mut restored = measured(start, Some(&snapshot));
    for (offset, command) in second {
        let record = Record { at_ms: start + offset, command };
        match live.apply(&record, &mut events) {
            Ok(_) => {
                restored.apply(&record, &mut Vec::new()).unwrap();
                journal.push(record);
            }
            Err(error) => refused.push(error.to_string()),
        }
    }
    assert_eq!(
        refused,
        [
            "currency \"euro\" is not a three-letter code",
            "no conversation \"nope\"",
            "conversation \"c1\" is closed",
        ]
    );
    let totals = report(&live, start).totals;
    assert_eq!((totals.offered, totals.answered, totals.conversions), (2, 1, 1));
    // The platform's `at` is used: the reply came 15 s after the message.
    assert_eq!(totals.first_response_ms.avg, Some(15_000.0));
    assert_eq!(totals.sla_breaches.first_reply, 1, "c2 waited past chat's 60 s");
    assert_eq!(totals.revenue.get("EUR"), Some(&49.95));

    let mut replayed = measured(start, None);
    let mut replayed_events = Vec::new();
    for record in &journal {
        replayed.apply(record, &mut replayed_events).unwrap();
    }
    // The same events with the same numbers, SLA events among them (the
    // refused commands moved nothing).
    assert_eq!(replayed_events, events);
    let sla: Vec<_> = events
        .iter()
        .filter_map(|e| match e.event {
            StreamEvent::Sla(sla) => Some((sla.kind, sla.clock)),
            StreamEvent::Routed(_) => None,
        })
        .collect();
    assert_eq!(
        sla,
        [
            (loket_report::SlaEventKind::Warning, loket_report::SlaClock::FirstReply),
            (loket_report::SlaEventKind::Breached, loket_report::SlaClock::FirstReply),
        ],
        "c2 waited past chat's 60 s"
    );
    assert_eq!(report(&replayed, start), report(&live, start));
    assert_eq!(report(&restored, start), report(&live, start));
    let teams: Vec<String> = report(&live, start)
        .groups
        .iter()
        .map(|row| format!("{:?}={}", row.group, row.key))
        .collect();
    assert!(teams.iter().any(|t| t.starts_with("Agent=")), "{teams:?}");
}

#[test]
fn a_tenant_that_does_not_measure_refuses_replies() {
    let start = 1_795_424_400_000;
    let mut state = tenant_state(start, loket_router::RouterConfig::default(), None, None);
    let mut events = Vec::new();
    state.apply(&Record { at_ms: start, command: message("c1") }, &mut events).unwrap();
    let reply = Command::Order {
        conversation: "c1".parse().unwrap(),
        value_minor: 1,
        currency: "EUR".into(),
        at_ms: None,
    };
    let error = state.apply(&Record { at_ms: start, command: reply }, &mut events).unwrap_err();
    assert!(error.to_string().contains("does not measure"), "{error}");
    assert!(state.snapshot(1).metering.is_empty());
}
