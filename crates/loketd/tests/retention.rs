//! `retention_days`: a closed conversation older than the retention leaves
//! memory, the snapshots and the journal; an open one stays.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use loketd::{Config, Spawned};
use serde_json::json;
use support::{TOKEN, config, files_containing, http};

/// Six seconds.
const RETENTION_DAYS: f64 = 6.0 / 86_400.0;

fn retaining(dir: &Path) -> Config {
    let mut config = config(dir);
    config.tenants[0].store_text = true;
    config.tenants[0].retention_days = Some(RETENTION_DAYS);
    // A person answers, so the customer has a routing history.
    config.tenants[0].router.bot_first = false;
    config
}

async fn post(daemon: &Spawned, conversation: &str, customer: &str, text: &str) {
    let body = json!({"conversation_id": conversation, "customer_id": customer,
                      "channel": "chat", "text": text})
    .to_string();
    let (status, answer) =
        http(daemon.http, "POST", "/v1/messages", Some(TOKEN), Some(&body)).await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_conversations_past_the_retention_leave_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let daemon = Spawned::start(retaining(data)).await.unwrap();
    post(
        &daemon,
        "gone-MARKER-conversation",
        "gone-MARKER-customer",
        "ik wil MARKERtekst bestellen",
    )
    .await;
    post(&daemon, "kept-open", "kept-customer", "hallo, een vraag over mijn bestelling").await;
    let (status, closed) = http(
        daemon.http,
        "POST",
        "/v1/conversations/gone-MARKER-conversation/close",
        Some(TOKEN),
        Some(""),
    )
    .await;
    assert_eq!(status, 200, "{closed}");
    // Written through to disk first: the journal holds the text.
    assert!(!files_containing(data, b"MARKER").is_empty(), "the journal keeps the text first");

    // First the journal goes (compaction), while the snapshot still keeps
    // the customer's id for their routing history, within the retention.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = files_containing(data, b"MARKER");
        if !left.is_empty() && left.iter().all(|file| file.contains("snapshots")) {
            assert!(!files_containing(data, b"gone-MARKER-customer").is_empty());
            break;
        }
        assert!(Instant::now() < deadline, "still in {left:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    loop {
        let left = files_containing(data, b"MARKER");
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still in {left:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The open conversation stays, in memory and in the snapshot.
    let (status, open) =
        http(daemon.http, "GET", "/v1/conversations/kept-open", Some(TOKEN), None).await;
    assert_eq!(status, 200, "{open}");
    assert!(!files_containing(data, b"kept-open").is_empty(), "the snapshot keeps it");
    let (status, _) =
        http(daemon.http, "GET", "/v1/conversations/gone-MARKER-conversation", Some(TOKEN), None)
            .await;
    assert_eq!(status, 404);
    daemon.shutdown().await.unwrap();

    // And across a restart.
    let daemon = Spawned::start(retaining(data)).await.unwrap();
    let (status, open) =
        http(daemon.http, "GET", "/v1/conversations/kept-open", Some(TOKEN), None).await;
    assert_eq!(status, 200, "{open}");
    daemon.shutdown().await.unwrap();
    assert!(files_containing(data, b"MARKER").is_empty());
}

#[test]
fn a_bad_retention_is_named() {
    let dir = tempfile::tempdir().unwrap();
    for days in [0.0, -1.0, f64::NAN, 50_000.0] {
        let mut config = retaining(dir.path());
        config.tenants[0].retention_days = Some(days);
        let error = config.check().unwrap_err().to_string();
        assert!(error.contains("retention_days"), "{days}: {error}");
    }
}
