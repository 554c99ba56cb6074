//! Webhooks against a local receiver that verifies every signature and
//! answers as the test scripts it: fails, stalls, asks to slow down (429
//! with Retry-After), or says the endpoint is gone (410); across a daemon
//! restart and an erasure.

mod support;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use loketd::{Config, Spawned, WebhookConfig};
use parking_lot::Mutex;
use serde_json::{Value, json};
use support::{TOKEN, config, files_containing, http};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// How the receiver answers a request.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    Ok,
    Fail,
    /// Answers only after this long (past the daemon's timeout).
    Stall(Duration),
    /// Answers 204 after this long (within the timeout): delivered.
    Slow(Duration),
    /// 429 with `Retry-After` in seconds.
    SlowDown(u64),
    Gone,
}

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Got {
    id: String,
    body: Value,
    at: Instant,
    answered: Answer,
}

#[derive(Default)]
struct Receiver {
    /// Answers for the next requests, in order; then `otherwise`.
    script: VecDeque<Answer>,
    otherwise: Option<Answer>,
    got: Vec<Got>,
    bad_signatures: usize,
}

type Shared = Arc<Mutex<Receiver>>;

async fn receive(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let verified = standardwebhooks::Webhook::new(SECRET).unwrap().verify(&body, &headers);
    let answer = {
        let mut receiver = shared.lock();
        if verified.is_err() {
            receiver.bad_signatures += 1;
        }
        let answer = receiver.script.pop_front().or(receiver.otherwise).unwrap_or(Answer::Ok);
        let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
        receiver.got.push(Got { id, body, at: Instant::now(), answered: answer });
        answer
    };
    match answer {
        Answer::Ok => StatusCode::NO_CONTENT.into_response(),
        Answer::Fail => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Answer::Stall(wait) | Answer::Slow(wait) => {
            tokio::time::sleep(wait).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Answer::SlowDown(seconds) => {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", seconds.to_string())]).into_response()
        }
        Answer::Gone => StatusCode::GONE.into_response(),
    }
}

/// A receiver on a loopback port; it stops with the test's runtime.
async fn receiver() -> (SocketAddr, Shared) {
    let shared = Shared::default();
    let app = axum::Router::new()
        .route("/hooks", axum::routing::post(receive))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, shared)
}

fn with_webhook(dir: &Path, receiver: SocketAddr, schedule: &[u64]) -> Config {
    let mut config = config(dir);
    config.tenants[0].webhooks = vec![WebhookConfig {
        name: Some("crm".to_owned()),
        url: format!("http://{receiver}/hooks"),
        secret: SECRET.to_owned(),
        events: vec!["*".to_owned()],
        lanes: 2,
        timeout_ms: 300,
        retry_schedule_ms: schedule.to_vec(),
    }];
    config
}

async fn send(daemon: &Spawned, conversations: &[&str], texts: &[&str]) -> u64 {
    let messages: Vec<Value> = (0..texts.len())
        .map(|i| {
            let conversation = conversations[i % conversations.len()];
            json!({"conversation_id": conversation, "customer_id": format!("k-{conversation}"),
                   "channel": "chat", "text": texts[i]})
        })
        .collect();
    let body = json!({ "messages": messages }).to_string();
    let (status, answer) =
        http(daemon.http, "POST", "/v1/messages/batch", Some(TOKEN), Some(&body)).await;
    assert_eq!(status, 200, "{answer}");
    last_seq(daemon).await
}

async fn last_seq(daemon: &Spawned) -> u64 {
    let (_, stats) = http(daemon.http, "GET", "/v1/stats", Some(TOKEN), None).await;
    stats["last_seq"].as_u64().unwrap()
}

/// Queues every dead letter of `crm` for redelivery.
async fn redeliver_all(daemon: &Spawned) {
    let path = "/v1/webhooks/crm/dead-letters/redeliver";
    let (status, answer) = http(daemon.http, "POST", path, Some(TOKEN), Some("{}")).await;
    assert_eq!(status, 202, "{answer}");
}

/// Waits (at most 15 s) until `done` holds for the receiver.
async fn until(shared: &Shared, what: &str, done: impl Fn(&Receiver) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done(&shared.lock()) {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The sequence numbers delivered (answered 2xx), each once.
fn delivered(receiver: &Receiver) -> BTreeMap<u64, Value> {
    receiver
        .got
        .iter()
        .filter(|got| matches!(got.answered, Answer::Ok | Answer::Slow(_)))
        .map(|got| (got.body["data"]["seq"].as_u64().unwrap(), got.body.clone()))
        .collect()
}

const TEXTS: [&str; 6] = [
    "hoi, ik wil graag twee bananenplanten bestellen",
    "wat kost verzending naar Utrecht?",
    "can I speak to a person please",
    "is de Musa basjoo winterhard?",
    "ik wil een medewerker spreken",
    "thanks, order placed",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_in_order_retried_on_schedule_and_honouring_retry_after() {
    let (addr, shared) = receiver().await;
    {
        let mut receiver = shared.lock();
        receiver.script = VecDeque::from([
            Answer::Fail,
            Answer::Stall(Duration::from_secs(2)),
            Answer::SlowDown(1),
        ]);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = with_webhook(dir.path(), addr, &[0, 100, 100, 100, 100]);
    // Its own name: the metrics recorder is the process's, shared by tests.
    config.tenants[0].webhooks[0].name = Some("signed".to_owned());
    let daemon = Spawned::start(config).await.unwrap();
    let last = send(&daemon, &["c-1", "c-2", "c-3"], &TEXTS).await;
    until(&shared, "every event is delivered", |r| delivered(r).len() as u64 == last).await;

    let receiver = shared.lock().got.clone();
    assert_eq!(shared.lock().bad_signatures, 0, "every request verifies");
    // Exactly the tenant's events, each with its id and type.
    let got = delivered(&shared.lock());
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), (1..=last).collect::<Vec<_>>());
    for (seq, body) in &got {
        assert_eq!(body["tenant"], "demo");
        assert_eq!(body["type"], body["data"]["type"], "{body}");
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'), "{body}");
        let request = receiver.iter().find(|g| g.body["data"]["seq"] == json!(seq)).unwrap();
        assert_eq!(request.id, format!("msg_demo_{seq}"));
    }
    // In order per conversation: no event is delivered before an earlier
    // one of its conversation.
    let mut latest: BTreeMap<String, u64> = BTreeMap::new();
    for got in receiver.iter().filter(|g| g.answered == Answer::Ok) {
        let Some(conversation) = got.body["data"]["conversation"].as_str() else { continue };
        let seq = got.body["data"]["seq"].as_u64().unwrap();
        let before = latest.insert(conversation.to_owned(), seq).unwrap_or(0);
        assert!(seq > before, "{conversation}: {seq} after {before}");
    }
    // The 429 asked for a second: the next attempt of that event waited.
    let slowed = receiver.iter().find(|g| g.answered == Answer::SlowDown(1)).unwrap();
    let next = receiver.iter().find(|g| g.id == slowed.id && g.at > slowed.at).unwrap();
    let waited = next.at - slowed.at;
    assert!(waited >= Duration::from_millis(950), "retried after {waited:?}");
    // The failed and the stalled attempts were made again.
    for answer in [Answer::Fail, Answer::Stall(Duration::from_secs(2))] {
        let failed = receiver.iter().find(|g| g.answered == answer).unwrap();
        assert!(got.contains_key(&failed.body["data"]["seq"].as_u64().unwrap()));
    }
    let (status, metrics) = support::http_raw(daemon.http, "GET", "/metrics", None, None).await;
    assert_eq!(status, 200);
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains(
            r#"loketd_webhook_attempts_total{tenant="demo",endpoint="signed",outcome="failed"} 3"#
        ),
        "{metrics}"
    );
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_redelivered_and_erased() {
    let (addr, shared) = receiver().await;
    shared.lock().otherwise = Some(Answer::Fail);
    let dir = tempfile::tempdir().unwrap();
    let daemon = Spawned::start(with_webhook(dir.path(), addr, &[0, 20, 20])).await.unwrap();
    let last = send(&daemon, &["wa-0612345678-1", "c-2"], &TEXTS[..4]).await;
    let dead = |daemon: &Spawned| {
        let addr = daemon.http;
        async move {
            http(addr, "GET", "/v1/webhooks/crm/dead-letters?limit=1000", Some(TOKEN), None).await
        }
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let all_dead = loop {
        let (status, list) = dead(&daemon).await;
        assert_eq!(status, 200, "{list}");
        if list["total"].as_u64() == Some(last) {
            let letter = &list["dead_letters"][0];
            assert_eq!(letter["attempts"], 3);
            assert_eq!(letter["error"], "HTTP 500");
            assert_eq!(letter["body"]["data"]["seq"], letter["seq"]);
            break list;
        }
        assert!(Instant::now() < deadline, "not all dead: {list}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(shared.lock().got.len() as u64, 3 * last, "three attempts each");

    // Erasing a customer removes their events from the outbox and the dead
    // letters; only the erasure's own notices name the conversation.
    let (status, report) =
        http(daemon.http, "DELETE", "/v1/customers/k-wa-0612345678-1", Some(TOKEN), None).await;
    assert_eq!(status, 200, "{report}");
    let removed = report["erased"]["webhook_events_removed"].as_u64().unwrap();
    assert!(removed > 0, "{report}");
    let (_, list) = dead(&daemon).await;
    for letter in list["dead_letters"].as_array().unwrap() {
        if letter["body"]["data"]["conversation"] == "wa-0612345678-1" {
            assert_eq!(letter["type"], "erased", "{letter}");
        }
    }

    // Redelivery: the ones named, then the rest.
    shared.lock().otherwise = Some(Answer::Ok);
    let first = list["dead_letters"][0]["id"].as_str().unwrap().to_owned();
    let body = json!({"ids": [first]}).to_string();
    let (status, answer) = http(
        daemon.http,
        "POST",
        "/v1/webhooks/crm/dead-letters/redeliver",
        Some(TOKEN),
        Some(&body),
    )
    .await;
    assert_eq!((status, answer["queued"].as_u64()), (202, Some(1)), "{answer}");
    until(&shared, "the one is redelivered", |r| {
        r.got.iter().any(|g| g.id == first && g.answered == Answer::Ok)
    })
    .await;
    redeliver_all(&daemon).await;
    let kept: Vec<u64> = all_dead["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|letter| letter["body"]["data"]["conversation"] != "wa-0612345678-1")
        .map(|letter| letter["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(kept.len() as u64, last - removed, "the erased ones are gone, the rest kept");
    until(&shared, "the rest is redelivered", |r| {
        kept.iter().all(|seq| delivered(r).contains_key(seq))
    })
    .await;
    let (status, error) =
        http(daemon.http, "GET", "/v1/webhooks/nope/dead-letters", Some(TOKEN), None).await;
    assert_eq!(status, 404, "{error}");
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_the_endpoint_until_it_is_enabled() {
    let (addr, shared) = receiver().await;
    shared.lock().script = VecDeque::from([Answer::Gone]);
    let dir = tempfile::tempdir().unwrap();
    let daemon = Spawned::start(with_webhook(dir.path(), addr, &[0, 20])).await.unwrap();
    send(&daemon, &["c-1"], &TEXTS[..2]).await;
    until(&shared, "the 410", |r| !r.got.is_empty()).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, list) = http(daemon.http, "GET", "/v1/webhooks", Some(TOKEN), None).await;
        if list["endpoints"][0]["enabled"] == false {
            assert!(list["endpoints"][0]["disabled_reason"].as_str().unwrap().contains("410"));
            break;
        }
        assert!(Instant::now() < deadline, "not disabled: {list}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Nothing more is sent while disabled.
    send(&daemon, &["c-2"], &TEXTS[2..3]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(shared.lock().got.len(), 1, "one request, answered 410");

    let (status, endpoint) =
        http(daemon.http, "POST", "/v1/webhooks/crm/enable", Some(TOKEN), Some("")).await;
    assert_eq!((status, &endpoint["enabled"]), (200, &json!(true)), "{endpoint}");
    let last = send(&daemon, &["c-3"], &TEXTS[3..4]).await;
    until(&shared, "the new event is delivered", |r| delivered(r).contains_key(&last)).await;
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_neither_loses_nor_floods() {
    let (addr, shared) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    for snapshot_on_shutdown in [true, false] {
        {
            let mut receiver = shared.lock();
            receiver.got.clear();
            receiver.otherwise = Some(Answer::Ok);
        }
        let mut config = with_webhook(dir.path(), addr, &[0, 50, 50, 50, 50, 50, 50, 50]);
        config.snapshot.on_shutdown = snapshot_on_shutdown;
        let daemon = Spawned::start(config.clone()).await.unwrap();
        let first_seq = last_seq(&daemon).await + 1;
        let delivered_before = send(&daemon, &["c-1", "c-2"], &TEXTS[..3]).await;
        until(&shared, "the first events are delivered", |r| {
            (first_seq..=delivered_before).all(|seq| delivered(r).contains_key(&seq))
        })
        .await;
        // The endpoint fails from now on: these wait in the outbox.
        shared.lock().otherwise = Some(Answer::Fail);
        let last = send(&daemon, &["c-1", "c-3"], &TEXTS[3..]).await;
        until(&shared, "the later events were tried", |r| {
            r.got.iter().any(|g| g.answered == Answer::Fail)
        })
        .await;
        daemon.shutdown().await.unwrap();

        shared.lock().otherwise = Some(Answer::Ok);
        let daemon = Spawned::start(config).await.unwrap();
        until(&shared, "the waiting events are delivered after the restart", |r| {
            (first_seq..=last).all(|seq| delivered(r).contains_key(&seq))
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let again = shared
            .lock()
            .got
            .iter()
            .filter(|g| g.answered == Answer::Ok)
            .filter(|g| g.body["data"]["seq"].as_u64().unwrap() <= delivered_before)
            .count() as u64;
        assert_eq!(
            again,
            delivered_before + 1 - first_seq,
            "delivered events are not sent again (snapshot on shutdown: {snapshot_on_shutdown})"
        );
        daemon.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn bad_webhook_configs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let base = with_webhook(dir.path(), "127.0.0.1:9".parse().unwrap(), &[0]);
    type Change = fn(&mut WebhookConfig);
    let cases: [(&str, Change); 5] = [
        ("secret must start with whsec_", |w| w.secret = "hunter2".into()),
        ("not an http:// or https:// URL", |w| w.url = "ftp://x/y".into()),
        ("unknown event type \"assigned_to\"", |w| w.events = vec!["assigned_to".into()]),
        ("events is empty", |w| w.events.clear()),
        ("lanes must be 1 to 64", |w| w.lanes = 0),
    ];
    for (expected, change) in cases {
        let mut config = base.clone();
        change(&mut config.tenants[0].webhooks[0]);
        let error = config.check().unwrap_err().to_string();
        assert!(error.contains(expected) && error.contains("crm"), "{expected}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_tenant_keeps_no_plain_event_on_disk() {
    let (addr, shared) = receiver().await;
    shared.lock().otherwise = Some(Answer::Fail);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("tenant.key");
    std::fs::write(&key, "0f".repeat(32)).unwrap();
    let mut config = with_webhook(&dir.path().join("data"), addr, &[0, 20, 20]);
    config.snapshot.on_shutdown = false;
    config.tenants[0].encryption = Some(loketd::EncryptionConfig {
        key_file: Some(key),
        ..loketd::EncryptionConfig::default()
    });
    let daemon = Spawned::start(config.clone()).await.unwrap();
    // A conversation id no other file holds.
    let last = send(&daemon, &["zonnebloem-MARKER-1"], &TEXTS[..2]).await;
    until(&shared, "every event was tried", |r| r.got.len() as u64 >= last).await;
    daemon.shutdown().await.unwrap();
    let plain = files_containing(dir.path(), b"zonnebloem-MARKER");
    assert!(plain.is_empty(), "in plain text: {plain:?}");

    // The sealed outbox and dead letters open again with the key.
    shared.lock().otherwise = Some(Answer::Ok);
    let daemon = Spawned::start(config).await.unwrap();
    redeliver_all(&daemon).await;
    until(&shared, "everything is delivered", |r| {
        (1..=last).all(|seq| delivered(r).contains_key(&seq))
    })
    .await;
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_loses_nothing_and_repeats_only_the_last_moments() {
    let (addr, shared) = receiver().await;
    // A slow receiver, so the daemon is killed in the middle of delivering.
    shared.lock().otherwise = Some(Answer::Slow(Duration::from_millis(15)));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("loketd.toml");
    std::fs::write(
        &file,
        format!(
            "[[tenants]]\nname = \"demo\"\ntokens = [\"{TOKEN}\"]\ndemo_agents = true\n\
             [[tenants.webhooks]]\nname = \"crm\"\nurl = \"http://{addr}/hooks\"\n\
             secret = \"{SECRET}\"\nevents = [\"*\"]\nlanes = 2\n"
        ),
    )
    .unwrap();
    let start = || {
        support::launch_loketd(
            std::process::Command::new(env!("CARGO_BIN_EXE_loketd"))
                .arg("--config")
                .arg(&file)
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .arg("--listen")
                .arg("127.0.0.1:0")
                .arg("--binary-listen")
                .arg("127.0.0.1:0")
                .env("LOKETD_LOG", "info"),
        )
    };
    let (mut daemon, http_addr, _) = start();
    let conversations: Vec<String> = (0..20).map(|i| format!("c-{i}")).collect();
    let names: Vec<&str> = conversations.iter().map(String::as_str).collect();
    let texts: Vec<&str> = (0..120).map(|i| TEXTS[i % TEXTS.len()]).collect();
    let messages: Vec<Value> = (0..texts.len())
        .map(|i| {
            json!({"conversation_id": names[i % names.len()], "customer_id": format!("k-{i}"),
                   "channel": "chat", "text": texts[i]})
        })
        .collect();
    let body = json!({ "messages": messages }).to_string();
    let (status, answer) =
        http(http_addr, "POST", "/v1/messages/batch", Some(TOKEN), Some(&body)).await;
    assert_eq!(status, 200, "{answer}");
    let (_, stats) = http(http_addr, "GET", "/v1/stats", Some(TOKEN), None).await;
    let last = stats["last_seq"].as_u64().unwrap();
    until(&shared, "a third is delivered", |r| delivered(r).len() as u64 >= last / 3).await;
    daemon.0.kill().unwrap();
    daemon.0.wait().unwrap();
    let before_kill = shared.lock().got.len();
    let delivered_before = delivered(&shared.lock()).len();
    assert!((delivered_before as u64) < last, "killed before the end");

    shared.lock().otherwise = Some(Answer::Ok);
    let (_daemon, _, _) = start();
    until(&shared, "every event is delivered after the restart", |r| {
        (1..=last).all(|seq| delivered(r).contains_key(&seq))
    })
    .await;
    let got = shared.lock().got.clone();
    let again = got[before_kill..]
        .iter()
        .filter(|g| got[..before_kill].iter().any(|earlier| earlier.id == g.id))
        .count();
    assert!(again < delivered_before, "{again} of {delivered_before} sent again: the cursor moved");
    // In order per conversation: a delivery comes after every earlier event
    // of its conversation was delivered at least once.
    let mut seen: BTreeMap<String, std::collections::BTreeSet<u64>> = BTreeMap::new();
    let all: BTreeMap<u64, Value> = delivered(&shared.lock());
    for g in &got {
        let Some(conversation) = g.body["data"]["conversation"].as_str() else { continue };
        let seq = g.body["data"]["seq"].as_u64().unwrap();
        let earlier: Vec<u64> = all
            .iter()
            .filter(|(s, body)| **s < seq && body["data"]["conversation"] == conversation)
            .map(|(s, _)| *s)
            .collect();
        let before = seen.entry(conversation.to_owned()).or_default();
        assert!(
            earlier.iter().all(|s| before.contains(s)),
            "{conversation}: {seq} before one of {earlier:?}"
        );
        before.insert(seq);
    }
}
