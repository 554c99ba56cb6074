//! `loket simulate` and `loket erlang` end to end: the JSON contract, the
//! example scenario, errors naming the key, the HTML page.

use std::process::{Command, Output};

fn loket(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loket"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .args(args)
        .output()
        .expect("loket runs")
}

fn last_json(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().expect("a line on stdout");
    serde_json::from_str(line).expect("the last line is JSON")
}

const SMALL: &str = r#"
duration_s = 7200
warmup_s = 900
service_level_s = 20

[[arrivals]]
channel = "chat"
language = "nl"
skills = { sales = 5 }
rate_per_hour = 300
handle = { dist = "exponential", mean_s = 240 }
patience = { dist = "exponential", mean_s = 120 }
buying_intent = { dist = "beta", a = 2.0, b = 5.0 }

[[agents]]
count = 22
kind = "human"
skills = { sales = 7 }
languages = ["nl", "en"]
capacity = { chat = 1 }

[router]
affinity_lookback_ms = 0
"#;

#[test]
fn the_json_line_has_every_field_the_issue_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.toml");
    std::fs::write(&path, SMALL).unwrap();
    let path = path.to_str().unwrap();
    let output = loket(&["simulate", "--scenario", path, "--seed", "3", "--replications", "4"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let v = last_json(&output);
    for field in [
        "conversations",
        "offered",
        "answered",
        "abandoned",
        "service_level",
        "abandon_rate",
        "occupancy",
        "conversion_rate",
        "revenue",
        "sim_conversations_per_sec",
    ] {
        assert!(v.get(field).is_some(), "no {field}: {v}");
    }
    for field in ["avg", "p50", "p90"] {
        assert!(v["wait_ms"][field].is_number(), "{v}");
        assert!(v["first_response_ms"][field].is_number(), "{v}");
    }
    for field in ["service_level", "wait_ms_avg", "abandon_rate"] {
        let ci = v["ci95"][field].as_array().unwrap_or_else(|| panic!("ci95.{field}: {v}"));
        assert_eq!(ci.len(), 2);
        assert!(ci[0].as_f64().unwrap() <= ci[1].as_f64().unwrap());
    }
    let offered = v["offered"].as_f64().unwrap();
    assert!((400.0..800.0).contains(&offered), "about 600 a replication: {offered}");
    assert!(v["revenue"]["EUR"].as_f64().unwrap() > 0.0, "{v}");
    // Same seed, same numbers (the speed aside).
    let again = last_json(&loket(&[
        "simulate",
        "--scenario",
        path,
        "--seed",
        "3",
        "--replications",
        "4",
        "--threads",
        "1",
    ]));
    let strip = |mut v: serde_json::Value| {
        v["sim_conversations_per_sec"] = 0.into();
        v["wall_ms"] = 0.into();
        v
    };
    assert_eq!(strip(v), strip(again));
}

#[test]
fn a_bad_scenario_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, SMALL.replace("count = 22", "count = 22\nshift = 1")).unwrap();
    let output = loket(&["simulate", "--scenario", path.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown field `shift`"), "{stderr}");
    std::fs::write(&path, SMALL.replace("sales = 7", "sales = 0")).unwrap();
    let output = loket(&["simulate", "--scenario", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`agents[0].skills.sales`: proficiency 0"), "{stderr}");
}

#[test]
fn the_garden_centre_example_runs_and_makes_a_page() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("day.html");
    let scenario = "examples/simulate/garden-centre.toml";
    let output = loket(&["simulate", "--scenario", scenario, "--replications", "2"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let v = last_json(&output);
    assert!(v["offered"].as_f64().unwrap() > 1000.0, "{v}");
    assert!(v["occupancy"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["conversion_rate"].as_f64().unwrap() > 0.0, "{v}");
    let output = loket(&[
        "simulate",
        "--scenario",
        scenario,
        "--replications",
        "1",
        "--format",
        "html",
        "--out",
        page.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!doctype html>") && html.contains("<svg"), "{}", &html[..200]);
}

#[test]
fn erlang_c_and_a() {
    let c = loket(&[
        "erlang",
        "c",
        "--rate",
        "7200",
        "--handle-s",
        "1",
        "--agents",
        "3",
        "--target-s",
        "0",
    ]);
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    let v = last_json(&c);
    assert!((v["p_wait"].as_f64().unwrap() - 4.0 / 9.0).abs() < 1e-12, "{v}");
    assert_eq!(v["model"], "c");
    let a = loket(&[
        "erlang",
        "a",
        "--rate",
        "600",
        "--handle-s",
        "60",
        "--patience-s",
        "120",
        "--agents",
        "10",
        "--target-s",
        "20",
    ]);
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    let v = last_json(&a);
    assert!(v["p_abandon"].as_f64().unwrap() > 0.0 && v["service_level"].is_number(), "{v}");
    let unstable = loket(&["erlang", "c", "--rate", "600", "--handle-s", "60", "--agents", "10"]);
    assert!(!unstable.status.success());
    assert!(String::from_utf8_lossy(&unstable.stderr).contains("Erlang A"));
    let missing = loket(&["erlang", "a", "--rate", "600", "--handle-s", "60", "--agents", "10"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--patience-s"));
}

#[test]
fn compare_runs_each_policy_on_the_same_arrivals() {
    let output = loket(&[
        "simulate",
        "--scenario",
        "examples/simulate/garden-centre.toml",
        "--replications",
        "3",
        "--compare",
        "examples/simulate/fcfs.json",
        "examples/simulate/buying-first.json",
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("# examples/simulate/fcfs.json"), "{stdout}");
    let v = last_json(&output);
    let rows = v["compare"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows[0]["difference"].is_null());
    for measure in ["service_level", "wait_ms_avg", "abandon_rate", "conversion_rate", "revenue"] {
        assert!(rows[0]["measures"][measure]["mean"].is_number(), "{measure}: {v}");
        assert!(rows[1]["difference"][measure]["mean"].is_number(), "{measure}: {v}");
    }
}

/// `--staffing "sl=0.8@20s"`: a table, then the JSON line with one row per
/// interval and group (people, Erlang C's guess, the service level met);
/// the HTML page has the table.
#[test]
fn staffing_finds_people_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staffing.toml");
    let text = SMALL
        .replace("duration_s = 7200", "duration_s = 7200\ninterval_s = 3600")
        .replace("rate_per_hour = 300", "profile = [150, 300]");
    std::fs::write(&path, text).unwrap();
    let scenario = path.to_str().unwrap();
    let args =
        ["simulate", "--scenario", scenario, "--replications", "4", "--staffing", "sl=0.8@20s"];
    let output = loket(&args);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("# Staffing for 80.0% of every stream answered within 20 s"),
        "{stdout}"
    );
    assert!(stdout.contains("\n# 01:00 "), "{stdout}");
    let v = last_json(&output);
    assert_eq!(v["target"], serde_json::json!({"service_level": 0.8, "within_s": 20.0}));
    let rows = v["staffing"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{v}");
    for row in rows {
        assert_eq!(row["group"], "group-1");
        assert!(row["service_level"].as_f64().unwrap() >= 0.8, "{row}");
        assert!(row["lowest_stream_service_level"].as_f64().unwrap() >= 0.8, "{row}");
        // Customers who give up shorten the queue: no more people than
        // Erlang C (no abandonment) asks for.
        let agents = row["agents"].as_u64().unwrap();
        let guess = row["erlang_c_guess"].as_u64().unwrap();
        assert!(agents <= guess && agents + 6 >= guess, "{row}");
    }
    assert_eq!(rows[1]["from"], "01:00");
    assert_eq!(rows[1]["from_s"], 3600);
    assert!(rows[1]["agents"].as_u64() > rows[0]["agents"].as_u64(), "{v}");

    let page = dir.path().join("staffing.html");
    let mut html = args.to_vec();
    html.extend(["--format", "html", "--out", page.to_str().unwrap()]);
    let output = loket(&html);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let page = std::fs::read_to_string(&page).unwrap();
    assert!(page.contains("<th>group-1</th>") && page.contains("<td>01:00</td>"), "{page}");
}

/// A bad target says what is wrong with it and how to write one.
#[test]
fn a_bad_staffing_target_says_what_is_wrong() {
    for (spec, problem) in [
        ("0.8@20s", "does not start with `sl=`"),
        ("sl=0.8", "has no `@`"),
        ("sl=120%@20s", "below 1"),
        ("sl=0.8@soon", "has no time after `@`: \"soon\""),
    ] {
        let output = loket(&[
            "simulate",
            "--scenario",
            "examples/simulate/garden-centre.toml",
            "--staffing",
            spec,
        ]);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(problem) && stderr.contains("write it as sl=0.8@20s"),
            "{spec}: {stderr}"
        );
    }
}
