//! Business-hours clocks, worked out by hand: two conversations across a
//! closing time, a weekend and a holiday.
//!
//! Opening hours (Europe/Amsterdam, UTC+1 in December): Monday to Friday
//! 09:00-17:30, Saturday 10:00-14:00, Sunday closed; Friday 2026-12-25 a
//! holiday. Times below are local.
//!
//! A (e-mail). Friday 2026-12-11 17:20 message; 17:25 person 10 assigned;
//! Monday 12-14 09:05 reply; 09:10 message; 09:40 reply; 10:00 closed.
//!
//! | clock | calendar | business |
//! | --- | --- | --- |
//! | wait | 5 min | 5 min (17:20-17:25, open) |
//! | first response | 63 h 45 min | 10 min Friday + 4 h Saturday + 5 min Monday = 4 h 15 min |
//! | next reply | 30 min | 30 min |
//! | resolution | 64 h 40 min | 10 min + 4 h + 1 h = 5 h 10 min |
//! | handle | 64 h 35 min | 5 min + 4 h + 1 h = 5 h 5 min |
//!
//! B (chat): the night message. Wednesday 12-23 22:00 message; Thursday
//! 09:00 person 11 assigned; 09:05 reply; 17:25 message; the shop closes
//! at 17:30, Friday is Christmas; Saturday 12-26 10:15 reply; 10:20 closed.
//!
//! | clock | calendar | business |
//! | --- | --- | --- |
//! | wait | 11 h | 0 (closed all night) |
//! | first response | 11 h 5 min | 5 min (the known fault: not 11 hours) |
//! | next reply | 40 h 50 min | 5 min Thursday + 0 Friday + 15 min Saturday = 20 min |
//! | resolution | 60 h 20 min | 8 h 30 min Thursday + 20 min Saturday = 8 h 50 min |
//! | handle | 49 h 20 min | the same 8 h 50 min (assigned at opening) |

use loket_report::{
    BusinessHours, Channel, CustomerMessage, Dimension, Fact, FactKind, IntentId, Interval,
    Language, Meter, MeterConfig, Query, Report,
};

const MIN: u64 = 60_000;
const HOUR: u64 = 60 * MIN;

/// `YYYY-MM-DDTHH:MM` in UTC, as epoch ms.
fn utc(text: &str) -> u64 {
    let time = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M").unwrap();
    time.and_utc().timestamp_millis() as u64
}

fn hours() -> BusinessHours {
    let weekday = vec!["09:00-17:30".to_string()];
    BusinessHours {
        timezone: "Europe/Amsterdam".into(),
        monday: weekday.clone(),
        tuesday: weekday.clone(),
        wednesday: weekday.clone(),
        thursday: weekday.clone(),
        friday: weekday,
        saturday: vec!["10:00-14:00".into()],
        sunday: vec![],
        holidays: vec!["2026-12-25".into()],
    }
}

fn message(channel: Channel) -> FactKind {
    FactKind::CustomerMessage(CustomerMessage {
        channel,
        language: Language::NL,
        tier: 0,
        intent: IntentId::NONE,
        buying_intent: 0.0,
        queue: 1,
    })
}

/// Feeds both conversations (UTC times: local minus one hour).
fn meter(opening_hours: Option<BusinessHours>) -> Meter {
    let mut meter = Meter::new(MeterConfig { opening_hours, ..MeterConfig::default() }).unwrap();
    let (a, b) = (1, 2);
    let person = |agent| FactKind::Assigned { agent, team: 1, human: true };
    let reply = |agent| FactKind::Reply { agent, team: 1, human: true };
    let facts = [
        ("2026-12-11T16:20", a, message(Channel::Email)),
        ("2026-12-11T16:25", a, person(10)),
        ("2026-12-14T08:05", a, reply(10)),
        ("2026-12-14T08:10", a, message(Channel::Email)),
        ("2026-12-14T08:40", a, reply(10)),
        ("2026-12-14T09:00", a, FactKind::Closed),
        ("2026-12-23T21:00", b, message(Channel::Chat)),
        ("2026-12-24T08:00", b, person(11)),
        ("2026-12-24T08:05", b, reply(11)),
        ("2026-12-24T16:25", b, message(Channel::Chat)),
        ("2026-12-26T09:15", b, reply(11)),
        ("2026-12-26T09:20", b, FactKind::Closed),
    ];
    let mut events = Vec::new();
    for (at, conversation, kind) in facts {
        meter.ingest(&Fact { at: utc(at), conversation, kind }, &mut events).unwrap();
    }
    meter
}

fn report(meter: &Meter) -> Report {
    meter
        .report(&Query {
            from: utc("2026-12-11T00:00"),
            to: utc("2026-12-27T00:00"),
            interval: Interval::Day,
            group_by: vec![Dimension::Channel],
        })
        .unwrap()
}

/// Each channel row holds one conversation, so every quantile is its value.
fn check_one(report: &Report, channel: &str, calendar: [u64; 5], business: [u64; 5]) {
    let row = report.groups.iter().find(|row| row.key == channel).unwrap();
    let m = &row.measures;
    let calendar_clocks = [&m.wait_ms, &m.first_response_ms, &m.next_reply_ms, &m.resolution_ms];
    let business_clocks = [
        m.wait_business_ms.unwrap(),
        m.first_response_business_ms.unwrap(),
        m.next_reply_business_ms.unwrap(),
        m.resolution_business_ms.unwrap(),
    ];
    for clock in 0..4 {
        let (c, b) = (calendar_clocks[clock], business_clocks[clock]);
        assert_eq!(
            (c.p50, c.p99),
            (Some(calendar[clock]), Some(calendar[clock])),
            "{channel} {clock}"
        );
        assert_eq!(c.avg, Some(calendar[clock] as f64), "{channel} {clock}");
        assert_eq!(
            (b.p50, b.p99),
            (Some(business[clock]), Some(business[clock])),
            "{channel} {clock}"
        );
        assert_eq!(b.avg, Some(business[clock] as f64), "{channel} {clock}");
    }
    assert_eq!(m.handle_ms.avg, Some(calendar[4] as f64), "{channel} handle");
    assert_eq!(m.handle_business_ms.unwrap().avg, Some(business[4] as f64), "{channel} handle");
}

#[test]
fn closing_time_weekend_and_holiday() {
    let report = report(&meter(Some(hours())));
    check_one(
        &report,
        "email",
        [5 * MIN, 63 * HOUR + 45 * MIN, 30 * MIN, 64 * HOUR + 40 * MIN, 64 * HOUR + 35 * MIN],
        [5 * MIN, 4 * HOUR + 15 * MIN, 30 * MIN, 5 * HOUR + 10 * MIN, 5 * HOUR + 5 * MIN],
    );
    check_one(
        &report,
        "chat",
        [
            11 * HOUR,
            11 * HOUR + 5 * MIN,
            40 * HOUR + 50 * MIN,
            60 * HOUR + 20 * MIN,
            49 * HOUR + 20 * MIN,
        ],
        [0, 5 * MIN, 20 * MIN, 8 * HOUR + 50 * MIN, 8 * HOUR + 50 * MIN],
    );
    // The totals merge both: averages of the two.
    let t = &report.totals;
    assert_eq!(t.wait_business_ms.unwrap().avg, Some((5 * MIN) as f64 / 2.0));
    assert_eq!(t.first_response_business_ms.unwrap().avg, Some((4 * HOUR + 20 * MIN) as f64 / 2.0));
    assert_eq!(t.first_response_business_ms.unwrap().p99, Some(4 * HOUR + 15 * MIN));
    assert_eq!(t.handle_business_ms.unwrap().avg, Some((13 * HOUR + 55 * MIN) as f64 / 2.0));
    // Daily rows merge into the same totals (merging is exact).
    let days: Vec<_> = report.intervals.iter().map(|row| (row.start, row.key.as_str())).collect();
    assert_eq!(days, [(utc("2026-12-11T00:00"), "email"), (utc("2026-12-23T00:00"), "chat")]);
}

#[test]
fn without_opening_hours_the_business_clocks_are_null_and_empty() {
    let with = report(&meter(Some(hours())));
    let without = report(&meter(None));
    let json: serde_json::Value = serde_json::from_str(&without.to_json()).unwrap();
    for name in [
        "wait_business_ms",
        "first_response_business_ms",
        "next_reply_business_ms",
        "resolution_business_ms",
        "handle_business_ms",
    ] {
        assert!(json["totals"][name].is_null(), "{name}");
        assert!(json["groups"][0][name].is_null(), "{name}");
    }
    // The calendar clocks are the same either way.
    assert_eq!(with.totals.first_response_ms, without.totals.first_response_ms);
    let json: serde_json::Value = serde_json::from_str(&with.to_json()).unwrap();
    assert_eq!(json["totals"]["first_response_business_ms"]["p99"], 4 * HOUR + 15 * MIN);
    assert_eq!(json["totals"]["handle_business_ms"]["avg"], 25_050_000.0);

    // CSV: the business columns come last, empty without opening hours.
    let header: Vec<&str> = loket_report::CSV_HEADER.split(',').collect();
    let column = |name: &str| header.iter().position(|c| *c == name).unwrap();
    let totals_line = |report: &Report| report.to_csv().lines().last().unwrap().to_owned();
    let cells = totals_line(&without);
    let cells: Vec<&str> = cells.split(',').collect();
    assert_eq!(cells.len(), header.len());
    assert_eq!(cells[column("wait_business_ms_avg")..], [""; 17]);
    let cells = totals_line(&with);
    let cells: Vec<&str> = cells.split(',').collect();
    assert_eq!(cells[column("first_response_business_ms_p99")], "15300000");
    assert_eq!(cells[column("handle_business_ms_avg")], "25050000");
    assert_eq!(header.last(), Some(&"handle_business_ms_avg"));
}

#[test]
fn snapshots_keep_the_business_clocks_and_rebuild_the_hours() {
    let mut meter = meter(Some(hours()));
    let saved = serde_json::to_string(&meter).unwrap();
    let mut restored: Meter = serde_json::from_str(&saved).unwrap();
    assert_eq!(report(&restored), report(&meter));
    // Fed the same later facts, both measure the same business time:
    // Monday 2026-12-28 08:00 local message, 09:30 reply (30 open minutes).
    let mut events = Vec::new();
    for m in [&mut meter, &mut restored] {
        m.ingest(
            &Fact { at: utc("2026-12-28T07:00"), conversation: 3, kind: message(Channel::Sms) },
            &mut events,
        )
        .unwrap();
        let reply = FactKind::Reply { agent: 10, team: 1, human: true };
        m.ingest(&Fact { at: utc("2026-12-28T08:30"), conversation: 3, kind: reply }, &mut events)
            .unwrap();
    }
    let later = |m: &Meter| {
        m.report(&Query {
            from: utc("2026-12-28T00:00"),
            to: utc("2026-12-29T00:00"),
            interval: Interval::Day,
            group_by: vec![],
        })
        .unwrap()
    };
    assert_eq!(later(&restored), later(&meter));
    assert_eq!(later(&meter).totals.first_response_business_ms.unwrap().p50, Some(30 * MIN));
    // A meter without opening hours stores nothing for them.
    let plain = serde_json::to_string(&self::meter(None)).unwrap();
    assert!(!plain.contains("business"), "{plain}");
}

#[test]
fn bad_opening_hours_are_refused_naming_the_value() {
    let config: MeterConfig = serde_json::from_str(
        r#"{"opening_hours": {"timezone": "Europe/Amsterdam", "monday": ["09:00-17:30"], "friday": ["9-17"]}}"#,
    )
    .unwrap();
    assert_eq!(
        Meter::new(config).unwrap_err().to_string(),
        "opening_hours: friday: invalid opening hours \"9-17\": expected HH:MM-HH:MM, opening before closing"
    );
    let config = MeterConfig {
        opening_hours: Some(BusinessHours { timezone: "Mars/Olympus".into(), ..hours() }),
        ..MeterConfig::default()
    };
    assert_eq!(
        config.validate().unwrap_err().to_string(),
        "opening_hours: unknown time zone \"Mars/Olympus\""
    );
    let typo = serde_json::from_str::<MeterConfig>(
        r#"{"opening_hours": {"timezone": "UTC", "holiday": ["2026-12-25"]}}"#,
    );
    assert!(typo.unwrap_err().to_string().contains("holiday"));
}
