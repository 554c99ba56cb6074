//! End-to-end: the `loket` binary's demo, `route` and `bench route`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn loket(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loket")).args(args).output().expect("loket runs")
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name)
}

fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// Runs `loket bench route ARGS --json`, which must succeed, and returns
/// its last line: the JSON summary.
fn bench_route_json(args: &[&str]) -> serde_json::Value {
    let output = loket(&[&["bench", "route"], args, &["--json"]].concat());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    json_lines(&output).pop().expect("a JSON summary line")
}

#[test]
fn route_replays_the_examples_with_decisions_errors_and_a_summary() {
    let agents = example("agents.jsonl");
    let events = example("events.jsonl");
    let output = loket(&[
        "route",
        "--agents",
        agents.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
    ]);
    // Two lines of the example are bad on purpose: everything else is
    // replayed, and the exit status says not all of it was.
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let lines = json_lines(&output);
    let first = &lines[0];
    assert_eq!(first["conversation"], "c-101");
    assert_eq!(first["agent"], "anna");
    assert_eq!(first["type"], "assigned");
    assert_eq!(first["reason"], "skill_match");
    assert!(lines.iter().any(|l| l["reason"] == "sticky" && l["conversation"] == "c-101"));
    assert!(lines.iter().any(|l| l["reason"] == "reassignment" && l["conversation"] == "c-101"));
    assert!(lines.iter().any(|l| l["reason"] == "affinity" && l["conversation"] == "c-104"));
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["errors"], 2);
    assert_eq!(summary["messages"], 5);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("line 8, field `capacity.chat`: negative capacity -1"), "{stderr}");
    assert!(stderr.contains("line 10, field `agent`: unknown agent \"ghost\""), "{stderr}");
    assert!(stderr.contains("loket: 2 input lines rejected"), "{stderr}");
}

#[test]
fn route_exits_cleanly_only_when_every_line_applied_and_warns_of_unknown_skills() {
    let dir = std::env::temp_dir().join(format!("loket-route-clean-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let agents = dir.join("agents.jsonl");
    let events = dir.join("events.jsonl");
    std::fs::write(&agents, r#"{"id": "anna", "skills": {"plants": 5}, "languages": ["nl"]}"#)
        .unwrap();
    std::fs::write(
        &events,
        r#"{"at": 1, "type": "message", "conversation": "c1", "customer": "k1", "channel": "chat", "language": "nl", "skills": {"plantz": 3}}"#,
    )
    .unwrap();
    let output = loket(&[
        "route",
        "--agents",
        agents.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "a warning is not an error: {stderr}");
    assert!(
        stderr.contains("events.jsonl: line 1, field `skills.plantz`: warning: no agent has ever had skill \"plantz\""),
        "{stderr}"
    );
    assert!(stderr.contains("1 warning;"), "{stderr}");
    let lines = json_lines(&output);
    assert_eq!(lines[0]["reason"], "no_eligible_agent");
    assert_eq!(lines[0]["why"]["code"], "no_skill");
    assert_eq!(lines[0]["why"]["skill"], "plantz");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn route_escalates_a_first_message_that_asks_for_a_person() {
    let dir = std::env::temp_dir().join(format!("loket-route-escalate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (agents, events, config) =
        (dir.join("agents.jsonl"), dir.join("events.jsonl"), dir.join("config.json"));
    std::fs::write(
        &agents,
        "{\"id\": \"bot-1\", \"kind\": \"bot\", \"languages\": [\"nl\"]}\n\
         {\"id\": \"anna\", \"skills\": {\"sales\": 5}, \"languages\": [\"nl\"]}\n",
    )
    .unwrap();
    std::fs::write(&config, r#"{"bot_first": true}"#).unwrap();
    let mut lines = String::new();
    for (i, signal) in ["human_request", "doubt", "complaint"].iter().enumerate() {
        lines += &format!(
            "{{\"at\": {i}, \"type\": \"message\", \"conversation\": \"c{i}\", \"customer\": \"k{i}\", \"channel\": \"chat\", \"language\": \"nl\", \"skills\": {{\"sales\": 1}}, \"signals\": {{\"{signal}\": true}}}}\n"
        );
    }
    lines += r#"{"at": 9, "type": "message", "conversation": "c9", "customer": "k9", "channel": "chat", "language": "nl", "skills": {"sales": 1}, "buying_intent": 0.95}"#;
    std::fs::write(&events, lines).unwrap();
    let output = loket(&[
        "route",
        "--agents",
        agents.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let lines = json_lines(&output);
    for (conversation, trigger) in
        [("c0", "human_request"), ("c1", "doubt"), ("c2", "complaint"), ("c9", "buying_intent")]
    {
        let escalated = lines
            .iter()
            .find(|l| l["conversation"] == conversation && l["type"] == "escalated")
            .unwrap_or_else(|| panic!("{conversation} escalates: {lines:?}"));
        assert_eq!(escalated["trigger"], trigger);
        let decision = lines
            .iter()
            .find(|l| l["conversation"] == conversation && l["type"] != "escalated")
            .unwrap();
        assert_eq!(decision["reason"], "escalation", "{decision}");
        assert_ne!(decision["agent"], "bot-1");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn route_survives_oversized_and_malformed_lines_and_keeps_earlier_decisions() {
    let dir = std::env::temp_dir().join(format!("loket-route-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let agents = dir.join("agents.jsonl");
    let events = dir.join("events.jsonl");
    std::fs::write(&agents, "{\"id\": \"a\", \"languages\": [\"nl\"]}\n{\"id\": \n").unwrap();
    let message = |at: u32, id: &str| {
        format!(
            "{{\"at\": {at}, \"type\": \"message\", \"conversation\": \"{id}\", \"customer\": \"k\", \"channel\": \"chat\", \"language\": \"nl\"}}\n"
        )
    };
    let huge = format!("{{\"at\": 2, \"type\": \"tick\", \"pad\": \"{}\"}}\n", "x".repeat(200_000));
    std::fs::write(&events, message(1, "c1") + &huge + &message(3, "c2")).unwrap();
    let output = loket(&[
        "route",
        "--agents",
        agents.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
        "--max-line-bytes",
        "1000",
    ]);
    assert_eq!(output.status.code(), Some(1), "two lines were rejected");
    let lines = json_lines(&output);
    assert_eq!(lines[0]["conversation"], "c1");
    assert_eq!(lines[1]["conversation"], "c2");
    assert_eq!(lines.last().unwrap()["errors"], 2);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("agents.jsonl: line 2"), "{stderr}");
    assert!(stderr.contains("events.jsonl: line 2: line is 2000"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn route_reports_a_missing_file() {
    let output = loket(&["route", "--agents", "/nonexistent/agents.jsonl", "--events", "-"]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("cannot open /nonexistent/agents.jsonl: ")
    );
}

#[test]
fn bench_route_ends_with_one_json_object() {
    let last = bench_route_json(&[
        "--scenario",
        "mixed",
        "--agents",
        "500",
        "--skills",
        "20",
        "--messages",
        "20000",
        "--threads",
        "2",
    ]);
    for field in ["msgs_per_sec", "p50_ns", "p99_ns"] {
        assert!(last[field].as_f64().unwrap() > 0.0, "{field}: {last}");
    }
    assert_eq!(last["messages"], 40_000);
    assert_eq!(last["threads"], 2);
    // By default one call in 16 is timed: 1,250 per thread.
    assert_eq!(last["latency_every"], 16);
    assert_eq!(last["latency_samples"], 2_500);
}

#[test]
fn bench_route_times_every_call_when_asked() {
    let last = bench_route_json(&[
        "--scenario",
        "new",
        "--agents",
        "300",
        "--skills",
        "10",
        "--messages",
        "5000",
        "--latency-every",
        "1",
    ]);
    assert_eq!(last["messages"], 5_000);
    assert_eq!(last["latency_samples"], 5_000);
    let refused = loket(&["bench", "route", "--latency-every", "0"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--latency-every"));
}

#[test]
fn the_demo_runs_without_arguments_or_files() {
    let output = loket(&["demo", "--messages", "20000", "--agents", "200"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("messages/s on one thread"), "{stdout}");
    assert!(stdout.contains("assigned/sticky"), "{stdout}");
}
