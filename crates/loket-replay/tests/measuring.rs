//! A measured replay: `reply` and `order` lines, SLA records with the
//! platform's names, reports, and the errors bad reply and order lines get.

use loket_replay::{
    DecisionRecord, Interval, LineError, MeterConfig, Query, Replayer, RouterConfig,
};

const AGENTS: &str =
    r#"{"id": "anna", "languages": ["nl"], "team": "planten", "capacity": {"chat": 2}}"#;

fn replay(events: &str) -> (Replayer, Vec<LineError>) {
    let mut replayer = Replayer::new(RouterConfig::default()).unwrap();
    replayer.measure(MeterConfig::default()).unwrap();
    let mut out: Vec<DecisionRecord> = Vec::new();
    let mut errors = Vec::new();
    replayer.agent_line(1, AGENTS.as_bytes(), &mut out).unwrap();
    for (i, line) in events.lines().enumerate() {
        if let Err(error) = replayer.event_line(i as u64 + 1, line.as_bytes(), &mut out) {
            errors.push(error);
        }
    }
    (replayer, errors)
}

#[test]
fn replies_and_orders_are_measured_and_reported_with_the_platforms_names() {
    let events = r#"{"at": 0, "type": "message", "conversation": "c1", "customer": "k1", "channel": "chat", "language": "nl", "intent": "sales.product"}
{"at": 0, "type": "message", "conversation": "c2", "customer": "k2", "channel": "chat", "language": "nl"}
{"at": 5000, "type": "close", "conversation": "c2"}
{"at": 30000, "type": "reply", "conversation": "c1", "agent": "anna"}
{"at": 60000, "type": "close", "conversation": "c1"}
{"at": 120000, "type": "order", "conversation": "c1", "value": 49.95, "currency": "eur"}"#;
    let (mut replayer, errors) = replay(events);
    assert!(errors.is_empty(), "{errors:?}");
    replayer.finish_measuring(7);
    let query = Query {
        from: 0,
        to: 3_600_000,
        interval: Interval::Hour,
        group_by: vec!["agent".parse().unwrap(), "intent".parse().unwrap()],
    };
    let report = replayer.report(&query).unwrap().unwrap();
    let totals = &report.totals;
    assert_eq!((totals.offered, totals.answered, totals.abandoned), (2, 1, 1));
    assert_eq!(totals.short_abandoned, 1, "c2 closed within 10 s without a reply");
    assert_eq!(totals.service_level, Some(1.0), "short abandons leave the denominator");
    assert_eq!(totals.first_response_ms.p50, Some(30_000));
    assert_eq!((totals.conversions, totals.revenue.get("EUR")), (1, Some(&49.95)));
    let keys: Vec<&str> = report.groups.iter().map(|row| row.key.as_str()).collect();
    assert_eq!(keys, ["anna", "", "sales.product"]);
    let summary = replayer.summary();
    assert_eq!((summary.replies, summary.orders), (1, 1));
}

#[test]
fn an_unanswered_chat_gets_sla_records_named_as_the_platform_names_it() {
    let events = r#"{"at": 0, "type": "message", "conversation": "c9", "customer": "k1", "channel": "chat", "language": "nl"}
{"at": 100000, "type": "tick"}"#;
    let (mut replayer, errors) = replay(events);
    assert!(errors.is_empty(), "{errors:?}");
    let records = replayer.take_sla_records();
    let shown: Vec<String> = records.iter().map(|r| serde_json::to_string(r).unwrap()).collect();
    assert_eq!(
        shown,
        [
            r#"{"line":2,"at":48000,"conversation":"c9","type":"sla_warning","clock":"first_reply","target_ms":60000}"#,
            r#"{"line":2,"at":60001,"conversation":"c9","type":"sla_breached","clock":"first_reply","target_ms":60000}"#,
        ]
    );
    assert!(replayer.take_sla_records().is_empty());
    assert_eq!(replayer.summary().sla_events, 2);
}

#[test]
fn bad_replies_and_orders_name_the_field_and_change_nothing() {
    let events = r#"{"at": 0, "type": "message", "conversation": "c1", "customer": "k1", "channel": "chat", "language": "nl"}
{"at": 1000, "type": "reply", "conversation": "c1", "agent": "bob"}
{"at": 1000, "type": "reply", "conversation": "c7", "agent": "anna"}
{"at": 1000, "type": "order", "conversation": "c1", "value": 10, "currency": "EURO"}
{"at": 1000, "type": "order", "conversation": "c1", "value": -5, "currency": "EUR"}
{"at": 2000, "type": "close", "conversation": "c1"}
{"at": 3000, "type": "reply", "conversation": "c1", "agent": "anna"}
{"at": 7200000, "type": "order", "conversation": "c1", "value": 10, "currency": "EUR"}
{"at": 7200000, "type": "order", "conversation": "c1", "value": 10}"#;
    let (replayer, errors) = replay(events);
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            r#"line 2, field `agent`: unknown agent "bob""#,
            r#"line 3, field `conversation`: unknown conversation "c7""#,
            r#"line 4, field `currency`: "EURO" is not a three-letter currency code"#,
            "line 5, field `value`: -5 is not an amount of 0 or more",
            r#"line 7, field `conversation`: conversation "c1" is closed"#,
            r#"line 8, field `conversation`: unknown conversation "c1""#,
            "line 9: missing field `currency` at line 1 column 67",
        ]
    );
    let summary = replayer.summary();
    assert_eq!((summary.replies, summary.orders, summary.errors), (0, 0, 7));
}
