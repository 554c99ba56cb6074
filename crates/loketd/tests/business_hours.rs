//! Business-hours clocks through a real daemon: a tenant with
//! `[tenants.reports.opening_hours]` reports `first_response_business_ms`
//! (JSON and CSV) next to `first_response_ms`, a tenant without them
//! reports `null`, and a restart from the snapshot keeps them.
//!
//! Messages take the server's time, so the opening hours are made up
//! around it: open for exactly ten minutes (UTC, whole minutes) starting
//! five to six minutes after the message, and the reply is stamped thirty
//! minutes after it. The calendar first response is about 30 minutes, the
//! business one exactly 10.

mod support;

use chrono::{DateTime, Datelike, Timelike};
use loket_report::BusinessHours;
use loketd::Spawned;
use serde_json::{Value, json};
use support::{config, http, http_raw, other_tenant};

const SHOP_TOKEN: &str = "shop-token-1";
const PLAIN_TOKEN: &str = "other-token";
const DAY: u64 = 86_400_000;
const MINUTE: u64 = 60_000;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Opening hours in UTC open exactly during `[from, to)` (whole minutes,
/// less than a day apart), split at midnight if it falls inside.
fn open_during(from: u64, to: u64) -> BusinessHours {
    let mut hours = BusinessHours { timezone: "UTC".into(), ..BusinessHours::default() };
    let mut start = from;
    while start < to {
        let time = DateTime::from_timestamp_millis(start as i64).unwrap();
        let midnight = (start / (1440 * MINUTE) + 1) * 1440 * MINUTE;
        let end = to.min(midnight);
        let minute = |ms: u64| {
            let of_day = (ms - start) / MINUTE + u64::from(time.hour() * 60 + time.minute());
            format!("{:02}:{:02}", of_day / 60, of_day % 60)
        };
        let interval = format!("{}-{}", minute(start), minute(end));
        let day = match time.weekday().num_days_from_monday() {
            0 => &mut hours.monday,
            1 => &mut hours.tuesday,
            2 => &mut hours.wednesday,
            3 => &mut hours.thursday,
            4 => &mut hours.friday,
            5 => &mut hours.saturday,
            _ => &mut hours.sunday,
        };
        day.push(interval);
        start = end;
    }
    hours
}

async fn report(addr: std::net::SocketAddr, token: &str) -> Value {
    let (status, report) = http(addr, "GET", "/v1/reports?interval=1d", Some(token), None).await;
    assert_eq!(status, 200, "{report}");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_carry_business_hours_clocks_with_opening_hours() {
    let dir = tempfile::tempdir().unwrap();
    let sent = now_ms();
    let opens = (sent / MINUTE + 6) * MINUTE;
    let mut shop = other_tenant();
    shop.name = "shop".to_owned();
    shop.tokens = vec![SHOP_TOKEN.to_owned()];
    shop.reports.opening_hours = Some(open_during(opens, opens + 10 * MINUTE));
    let mut daemon_config = config(dir.path());
    daemon_config.tenants.push(shop);
    daemon_config.tenants.push(other_tenant());
    let daemon = Spawned::start(daemon_config.clone()).await.unwrap();

    let agent =
        json!({"id": "anna", "languages": ["nl", "en"], "capacity": {"chat": 10, "total": 10}});
    let message = json!({"conversation_id": "c-1", "customer_id": "k-1", "channel": "chat",
        "text": "heeft u de bananenboom nog op voorraad?"});
    let reply = json!({"agent": "anna", "at": sent + 30 * MINUTE});
    for token in [SHOP_TOKEN, PLAIN_TOKEN] {
        for (path, body) in [
            ("/v1/agents", &agent),
            ("/v1/messages", &message),
            ("/v1/conversations/c-1/replies", &reply),
        ] {
            let (status, body) =
                http(daemon.http, "POST", path, Some(token), Some(&body.to_string())).await;
            assert_eq!(status, 200, "{path}: {body}");
        }
    }

    let shop_report = report(daemon.http, SHOP_TOKEN).await;
    let totals = &shop_report["totals"];
    let calendar = totals["first_response_ms"]["p50"].as_u64().unwrap();
    assert!((29 * MINUTE..=30 * MINUTE).contains(&calendar), "{totals}");
    assert_eq!(totals["first_response_business_ms"]["p50"], 10 * MINUTE, "{totals}");
    assert_eq!(totals["first_response_business_ms"]["avg"], (10 * MINUTE) as f64, "{totals}");
    // Not assigned (the agent is not available) nor closed: no wait,
    // resolution or handle time, but the fields are there.
    for clock in ["wait_business_ms", "resolution_business_ms", "next_reply_business_ms"] {
        assert!(totals[clock].is_object() && totals[clock]["avg"].is_null(), "{totals}");
    }
    assert!(totals["handle_business_ms"].is_object(), "{totals}");
    let plain = report(daemon.http, PLAIN_TOKEN).await;
    assert!(plain["totals"]["first_response_business_ms"].is_null(), "{plain}");
    assert!(plain["totals"]["first_response_ms"]["p50"].is_number(), "{plain}");

    // CSV: the column, filled for the shop, empty for the other tenant.
    for (token, expected) in [(SHOP_TOKEN, "600000"), (PLAIN_TOKEN, "")] {
        let (status, body) =
            http_raw(daemon.http, "GET", "/v1/reports?format=csv", Some(token), None).await;
        assert_eq!(status, 200);
        let csv = String::from_utf8(body).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        let header: Vec<&str> = lines[0].split(',').collect();
        let column = header.iter().position(|c| *c == "first_response_business_ms_p50").unwrap();
        let totals: Vec<&str> = lines.last().unwrap().split(',').collect();
        assert_eq!(totals[column], expected, "{csv}");
    }

    // A restart from the snapshot reports the same.
    daemon.shutdown().await.unwrap();
    let daemon = Spawned::start(daemon_config.clone()).await.unwrap();
    assert_eq!(report(daemon.http, SHOP_TOKEN).await["totals"], shop_report["totals"]);
    daemon.shutdown().await.unwrap();

    // Opening hours added to the other tenant's configuration take effect
    // on restart, though its snapshot was measured without them: the
    // running configuration wins over the one saved with the meter.
    let plain = daemon_config.tenants.iter_mut().find(|t| t.name == "other").unwrap();
    plain.reports.opening_hours = Some(open_during(opens, opens + 10 * MINUTE));
    let daemon = Spawned::start(daemon_config).await.unwrap();
    let message = json!({"conversation_id": "c-2", "customer_id": "k-2", "channel": "chat",
        "text": "heeft u de bananenboom nog op voorraad?"});
    let reply = json!({"agent": "anna", "at": now_ms() + 30 * MINUTE});
    for (path, body) in [("/v1/messages", &message), ("/v1/conversations/c-2/replies", &reply)] {
        let (status, body) =
            http(daemon.http, "POST", path, Some(PLAIN_TOKEN), Some(&body.to_string())).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    // (The first phase's replies, dated 30 minutes ahead, moved the
    // meter's time there: this message counts from then, not refused.)
    let (from, to) = (now_ms() - 2 * DAY, now_ms() + 2 * DAY);
    let path = format!("/v1/reports?interval=1d&from={from}&to={to}");
    let (status, report) = http(daemon.http, "GET", &path, Some(PLAIN_TOKEN), None).await;
    assert_eq!(status, 200, "{report}");
    let totals = &report["totals"];
    assert_eq!(totals["answered"], 2, "{totals}");
    assert!(totals["first_response_business_ms"]["avg"].is_number(), "{totals}");
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_opening_hours_stop_the_daemon_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut shop = other_tenant();
    shop.reports.opening_hours = Some(BusinessHours {
        timezone: "Europe/Amsterdam".into(),
        monday: vec!["09:00-17:30".into(), "19:00-18:00".into()],
        ..BusinessHours::default()
    });
    let mut daemon_config = config(dir.path());
    daemon_config.tenants = vec![shop];
    let error = match Spawned::start(daemon_config).await {
        Ok(_) => panic!("started with bad opening hours"),
        Err(error) => {
            // The whole chain of causes.
            let mut text = error.to_string();
            let mut cause = std::error::Error::source(&error);
            while let Some(inner) = cause {
                text.push_str(&format!(": {inner}"));
                cause = inner.source();
            }
            text
        }
    };
    assert!(error.contains("monday: invalid opening hours \"19:00-18:00\""), "{error}");
}
