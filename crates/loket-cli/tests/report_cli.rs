//! End-to-end: `loket report` on a small day worked out by hand, in JSON,
//! CSV and HTML (the HTML page opened in headless Chromium).
//!
//! The scenario (all times 2026-11-23, UTC; Anna is the only agent, so
//! every conversation goes to her at once):
//!
//! | conversation | channel | what happens | counts as |
//! | --- | --- | --- | --- |
//! | c1 | chat | 09:00:00 message, 09:00:30 Anna replies, 09:02:00 message, 09:02:45 reply, 09:10:00 close, 09:20:00 order 49.95 EUR | answered; first response 30 s (chat target 60 s: met); next reply 45 s; resolution 600 s; converted |
//! | c2 | WhatsApp | 09:05:00 message, 09:12:00 reply, 09:30:00 close | answered; first response 420 s (target 300 s: breached) |
//! | c3 | chat | 10:15:00 message, 10:15:05 close | abandoned within 10 s: short abandon |
//! | c4 | chat | 10:20:00 message, 10:21:00 close | abandoned (the breach would come at 10:21:00.001) |
//!
//! So: offered 4, answered 2, abandoned 2, short abandoned 1; service level
//! = answered within target (c1) / (answered + abandoned − short) = 1/3;
//! first response average (30 + 420) / 2 = 225 s; one first-reply breach;
//! one conversion of four (25%), in the `<1m` first-response band.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

const AGENTS: &str = r#"{"id": "anna", "languages": ["nl"], "team": "garden", "capacity": {"chat": 3, "whatsapp": 5}}
"#;

const EVENTS: &str = r#"{"at": "2026-11-23T09:00:00Z", "type": "message", "conversation": "c1", "customer": "k1", "channel": "chat", "language": "nl", "intent": "sales.product", "buying_intent": 0.8}
{"at": "2026-11-23T09:00:30Z", "type": "reply", "conversation": "c1", "agent": "anna"}
{"at": "2026-11-23T09:02:00Z", "type": "message", "conversation": "c1", "customer": "k1", "channel": "chat", "language": "nl"}
{"at": "2026-11-23T09:02:45Z", "type": "reply", "conversation": "c1", "agent": "anna"}
{"at": "2026-11-23T09:05:00Z", "type": "message", "conversation": "c2", "customer": "k2", "channel": "whatsapp", "language": "nl"}
{"at": "2026-11-23T09:10:00Z", "type": "close", "conversation": "c1"}
{"at": "2026-11-23T09:12:00Z", "type": "reply", "conversation": "c2", "agent": "anna"}
{"at": "2026-11-23T09:20:00Z", "type": "order", "conversation": "c1", "value": 49.95, "currency": "EUR"}
{"at": "2026-11-23T09:30:00Z", "type": "close", "conversation": "c2"}
{"at": "2026-11-23T10:15:00Z", "type": "message", "conversation": "c3", "customer": "k3", "channel": "chat", "language": "nl"}
{"at": "2026-11-23T10:15:05Z", "type": "close", "conversation": "c3"}
{"at": "2026-11-23T10:20:00Z", "type": "message", "conversation": "c4", "customer": "k4", "channel": "chat", "language": "nl"}
{"at": "2026-11-23T10:21:00Z", "type": "close", "conversation": "c4"}
"#;

/// 2026-11-23T09:00:00Z and 10:00:00Z in epoch milliseconds.
const NINE: u64 = 1_795_424_400_000;
const TEN: u64 = NINE + 3_600_000;

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new(events: &str) -> Files {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("agents.jsonl"), AGENTS).unwrap();
        std::fs::write(dir.path().join("events.jsonl"), events).unwrap();
        Files { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn report(&self, extra: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_loket"))
            .args(["report", "--agents", &self.path("agents.jsonl")])
            .args(["--events", &self.path("events.jsonl")])
            .args(extra)
            .output()
            .expect("loket runs")
    }
}

fn last_json_line(output: &Output) -> Value {
    let text = String::from_utf8(output.stdout.clone()).unwrap();
    let line = text.lines().last().expect("a report line");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

fn succeeded(output: &Output) {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn the_hand_worked_day_reports_as_computed() {
    let files = Files::new(EVENTS);
    let output = files.report(&["--group-by", "channel", "--interval", "1h"]);
    succeeded(&output);
    let report = last_json_line(&output);
    let totals = &report["totals"];
    let counts = ["offered", "answered", "abandoned", "short_abandoned", "conversions"]
        .map(|name| totals[name].as_u64().unwrap());
    assert_eq!(counts, [4, 2, 2, 1, 1]);
    assert_eq!(totals["service_level"].as_f64().unwrap(), 1.0 / 3.0);
    assert_eq!(totals["first_response_ms"]["avg"], json!(225_000.0));
    // Quantiles are histogram buckets: never below the exact value, less
    // than 1/32 above it.
    let p50 = totals["first_response_ms"]["p50"].as_u64().unwrap();
    assert!((30_000..30_000 + 30_000 / 32).contains(&p50), "{p50}");
    assert_eq!(totals["next_reply_ms"]["avg"], json!(45_000.0));
    assert_eq!(totals["sla_breaches"], json!({"first_reply": 1, "next_reply": 0}));
    assert_eq!(totals["conversion_rate"], json!(0.25));
    assert_eq!(totals["revenue"], json!({"EUR": 49.95}));
    assert_eq!(
        totals["conversion_by_first_response"]["<1m"],
        json!({"conversations": 1, "conversions": 1, "rate": 1.0})
    );
    assert_eq!(totals["conversion_by_first_response"]["5-15m"]["conversations"], json!(1));
    // Occupancy: Anna can hold 8 at once (3 chats + 5 WhatsApps) and is
    // staffed from the first event (09:00:00) to the last (10:21:00),
    // 4,860 s; she holds c1 for 600 s, c2 1,500 s, c3 5 s and c4 60 s.
    assert_eq!(totals["occupancy"], json!(2_165.0 / (4_860.0 * 8.0)));

    // Rows: one per hour and channel with data, by start then channel.
    let rows: Vec<(u64, &str, u64, Option<f64>)> = report["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["start"].as_u64().unwrap(),
                row["key"].as_str().unwrap(),
                row["offered"].as_u64().unwrap(),
                row["service_level"].as_f64(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (NINE, "chat", 1, Some(1.0)),
            (NINE, "whatsapp", 1, Some(0.0)),
            (TEN, "chat", 2, Some(0.0))
        ]
    );
    // Counts reconcile per group: offered = answered + abandoned + open.
    for row in report["groups"].as_array().unwrap() {
        let get = |name: &str| row[name].as_u64().unwrap();
        assert_eq!(get("offered"), get("answered") + get("abandoned"), "{row}");
    }
}

#[test]
fn csv_has_the_documented_header_and_one_row_per_interval_group_and_total() {
    let files = Files::new(EVENTS);
    let output = files.report(&["--group-by", "channel", "--format", "csv"]);
    succeeded(&output);
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], loket_report::CSV_HEADER);
    // 3 interval rows, 2 channel groups, 1 total.
    assert_eq!(lines.len(), 1 + 3 + 2 + 1, "{text}");
    assert!(lines[6].starts_with(&format!("{NINE},{},total,all,4,2,2,1,", NINE + 2 * 3_600_000)));
}

#[test]
fn bad_orders_are_named_and_the_report_is_still_written() {
    let events = format!(
        "{EVENTS}{}\n",
        r#"{"at": "2026-11-23T10:22:00Z", "type": "order", "conversation": "c4", "value": 5, "currency": "euro"}"#
    );
    let files = Files::new(&events);
    let output = files.report(&[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 14, field `currency`: \"euro\" is not a three-letter currency code"),
        "{stderr}"
    );
    assert_eq!(last_json_line(&output)["totals"]["offered"], json!(4));
}

#[test]
fn the_html_report_is_self_contained_and_its_charts_render_in_chromium() {
    let files = Files::new(EVENTS);
    let page = files.path("report.html");
    let output = files.report(&["--group-by", "channel,team", "--format", "html", "--out", &page]);
    succeeded(&output);
    let html = std::fs::read_to_string(&page).unwrap();
    for forbidden in ["<script", "src=", "<link", "@import", "url("] {
        assert!(!html.contains(forbidden), "the page must load nothing: found {forbidden}");
    }

    let mut browser = loket_browser::Browser::launch();
    browser.navigate(&format!("file://{page}"));
    // Every chart section holds a drawn SVG: laid out with a size, with
    // shapes in it, and with its axis labels as text.
    let charts = browser.eval(
        r#"[...document.querySelectorAll('section.chart')].map((section) => {
            const svg = section.querySelector('svg');
            const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
            return {
                id: section.id,
                width: Math.round(box.width),
                height: Math.round(box.height),
                shapes: svg ? svg.querySelectorAll('rect, polyline, circle, path').length : 0,
                labels: svg ? [...svg.querySelectorAll('text')].map((t) => t.textContent.trim()) : [],
                empty: section.querySelector('.empty')?.textContent ?? null,
            };
        })"#,
    );
    let by_id =
        |id: &str| charts.as_array().unwrap().iter().find(|c| c["id"] == id).unwrap().clone();
    for id in ["service-level", "offered", "first-response", "conversion"] {
        let chart = by_id(id);
        assert!(chart["width"].as_u64().unwrap() > 300, "{chart}");
        assert!(chart["height"].as_u64().unwrap() > 100, "{chart}");
        assert!(chart["shapes"].as_u64().unwrap() > 3, "{chart}");
    }
    let labels =
        |id: &str| -> Vec<String> { serde_json::from_value(by_id(id)["labels"].clone()).unwrap() };
    assert!(labels("offered").contains(&"23 09:00".to_owned()), "{:?}", labels("offered"));
    assert!(
        labels("first-response").contains(&"whatsapp".to_owned()),
        "{:?}",
        labels("first-response")
    );
    assert!(labels("conversion").iter().any(|l| l == "<1m (n=1)"), "{:?}", labels("conversion"));
    let occupancy = by_id("occupancy");
    assert_eq!(occupancy["empty"], json!(null), "{occupancy}");
    assert!(occupancy["shapes"].as_u64().unwrap() > 3, "{occupancy}");
    assert!(labels("occupancy").contains(&"anna".to_owned()), "{:?}", labels("occupancy"));
    let table = browser.eval(
        "[...document.querySelectorAll('table tbody tr')].map((r) => [...r.cells].slice(0, 3).map((c) => c.textContent))",
    );
    assert_eq!(
        table,
        json!([
            ["channel", "chat", "3"],
            ["channel", "whatsapp", "1"],
            ["team", "garden", "4"],
            ["total", "all", "4"]
        ])
    );
    assert!(browser.errors().is_empty(), "{:?}", browser.errors());
    if let Some(path) = std::env::var_os("LOKET_REPORT_SCREENSHOT") {
        std::fs::write(Path::new(&path), browser.screenshot()).unwrap();
    }
}
