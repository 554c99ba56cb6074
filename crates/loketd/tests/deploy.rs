//! The operator's files in `deploy/` agree with the daemon: every metric the
//! alert rules and the Grafana dashboard read is one `loketd` serves, the
//! dashboard is well-formed, and the systemd unit starts `loketd` with
//! arguments it accepts. (`promtool` and `systemd-analyze` check the same
//! files' syntax and rule behaviour in `.ci/run`.)

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use loketd::Spawned;
use serde_json::{Value, json};
use support::{TOKEN, config, http, http_raw};

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy").join(file)
}

fn read(file: &str) -> String {
    let path = deploy(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Metric families named in `text` (`loketd_…`), histogram series
/// (`_bucket`, `_count`, `_sum`) by their family.
fn referenced_families(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("loketd_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let family = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        names.insert(family.to_owned());
        rest = &tail[end..];
    }
    names
}

/// Families `/metrics` declares (`# TYPE name kind`).
fn served_families(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_rules_and_dashboard_read_only_metrics_loketd_serves() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    // Metrics are process-wide: a tenant of its own, with no agents yet.
    config.tenants[0].name = "deployed".to_owned();
    config.tenants[0].demo_agents = false;
    config.tenants[0].router.bot_first = false;
    // An endpoint (nothing listens there) for the webhook families.
    config.tenants[0].webhooks = vec![loketd::WebhookConfig {
        url: "http://127.0.0.1:9/hooks".to_owned(),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        events: vec!["*".to_owned()],
        ..loketd::WebhookConfig::default()
    }];
    let daemon = Spawned::start(config).await.unwrap();

    // Traffic that makes every family appear: messages (acknowledged after
    // an fsync) that wait for an agent, who then comes and takes them.
    let batch = json!({"messages": (1..=3).map(|i| json!({
        "conversation_id": format!("deploy-{i}"), "customer_id": format!("customer-{i}"),
        "channel": "chat", "text": "mag ik een medewerker spreken?"
    })).collect::<Vec<_>>()});
    let (status, answer) =
        http(daemon.http, "POST", "/v1/messages/batch", Some(TOKEN), Some(&batch.to_string()))
            .await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["decisions"].as_array().unwrap().iter().all(|d| d["type"] == "queued"),
        "{answer}"
    );
    let (status, exposition) = http_raw(daemon.http, "GET", "/metrics", None, None).await;
    assert_eq!(status, 200);
    let exposition = String::from_utf8(exposition).unwrap();
    let oldest = "loketd_queue_oldest_wait_seconds{tenant=\"deployed\",channel=\"chat\"} ";
    let line = exposition.lines().find(|l| l.starts_with(oldest)).expect("the oldest wait of chat");
    assert!(line[oldest.len()..].parse::<f64>().unwrap() >= 0.0, "{line}");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let agent = json!({"id": "anna", "capacity": {"chat": 5}, "languages": ["nl", "en"]});
    let (status, answer) =
        http(daemon.http, "POST", "/v1/agents", Some(TOKEN), Some(&agent.to_string())).await;
    assert_eq!(status, 200, "{answer}");
    // Anna answers one and the other waits on: the reply-time families
    // appear (a next reply too: the customer writes again and she answers).
    let reply = json!({"agent": "anna"}).to_string();
    for _ in 0..2 {
        let (status, answer) = http(
            daemon.http,
            "POST",
            "/v1/conversations/deploy-1/replies",
            Some(TOKEN),
            Some(&reply),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        let again = json!({"conversation_id": "deploy-1", "customer_id": "customer-1",
            "channel": "chat", "text": "en verder?"});
        let (status, answer) =
            http(daemon.http, "POST", "/v1/messages", Some(TOKEN), Some(&again.to_string())).await;
        assert_eq!(status, 200, "{answer}");
    }

    let (status, exposition) = http_raw(daemon.http, "GET", "/metrics", None, None).await;
    assert_eq!(status, 200);
    let exposition = String::from_utf8(exposition).unwrap();
    assert!(exposition.contains("loketd_tenant_up{tenant=\"deployed\"} 1"), "{exposition}");
    assert!(
        exposition
            .contains("loketd_queue_oldest_wait_seconds{tenant=\"deployed\",channel=\"chat\"}"),
        "{exposition}"
    );
    let served = served_families(&exposition);

    for file in ["prometheus/alerts.yml", "prometheus/alerts_test.yml", "grafana/loketd.json"] {
        let referenced = referenced_families(&read(file));
        assert!(!referenced.is_empty(), "{file} names no loketd metric");
        let unknown: Vec<_> = referenced.difference(&served).collect();
        assert!(unknown.is_empty(), "{file} reads metrics loketd does not serve: {unknown:?}");
    }
    daemon.shutdown().await.unwrap();
}

#[test]
fn the_dashboard_is_well_formed() {
    let dashboard: Value = serde_json::from_str(&read("grafana/loketd.json")).unwrap();
    assert_eq!(dashboard["uid"], "loketd");
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(variables, ["datasource", "tenant"]);

    let panels = dashboard["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    let mut cells = BTreeSet::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap();
        assert!(ids.insert(panel["id"].as_u64().unwrap()), "duplicate panel id at {title}");
        let grid = &panel["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| grid[k].as_u64().unwrap());
        assert!(x + w <= 24, "{title} is wider than the dashboard");
        for row in y..y + h {
            for column in x..x + w {
                assert!(cells.insert((row, column)), "{title} overlaps another panel");
            }
        }
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title} has no query");
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            assert!(expr.contains("loketd_"), "{title}: {expr}");
            // Every query follows the tenant picker.
            assert!(
                expr.contains("tenant=~\"$tenant\""),
                "{title} ignores the tenant picker: {expr}"
            );
            assert_eq!(
                expr.matches('(').count(),
                expr.matches(')').count(),
                "{title}: unbalanced parentheses in {expr}"
            );
        }
    }
    assert!(panels.len() >= 15, "{} panels", panels.len());
}

/// `ExecStart=` of the unit, split into words.
fn exec_start(unit: &str) -> Vec<String> {
    let line = unit
        .lines()
        .find_map(|line| line.strip_prefix("ExecStart="))
        .expect("the unit has an ExecStart= line");
    line.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn the_service_unit_runs_loketd_with_arguments_it_accepts() {
    let unit = read("systemd/loketd.service");
    for hardening in [
        "DynamicUser=yes",
        "StateDirectory=loketd",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "KillSignal=SIGTERM",
    ] {
        assert!(unit.lines().any(|line| line == hardening), "the unit lacks {hardening}");
    }
    let words = exec_start(&unit);
    assert_eq!(words[0], "/usr/local/bin/loketd");
    // The same arguments, with the example configuration, parse and resolve.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/loketd.toml");
    let data = tempfile::tempdir().unwrap();
    let args: Vec<String> = words[1..]
        .iter()
        .map(|word| match word.as_str() {
            "/etc/loketd/loketd.toml" => example.display().to_string(),
            "/var/lib/loketd" => data.path().display().to_string(),
            other => other.to_owned(),
        })
        .collect();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_loketd"))
        .args(&args)
        .arg("--print-config")
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(printed.contains(&data.path().display().to_string()), "{printed}");
}
