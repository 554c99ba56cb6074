//! Snapshots in the JetStream object store: the leader uploads its
//! snapshots and trims the tenant's stream behind the oldest kept, a new
//! node starts from the newest snapshot plus the stream after it (not from
//! sequence 1, which is gone), and takes over from a killed leader with
//! every acknowledged message; a follower frozen while the stream is
//! trimmed past it exits and restarts from the object store.
//!
//! Starts one `nats-server` and two `loketd` nodes on loopback (needs
//! `nats-server` on the path) and kills them at the end.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::{LEASE_MS, Node, conversation_of, load, start_nats, wait_role};
use support::{TOKEN, events, http, launch_loketd};

/// Records between two snapshots (a batch of ten messages is one record).
const SNAPSHOT_EVERY_RECORDS: u64 = 40;
/// Snapshots the object store keeps.
const SNAPSHOTS_KEPT: u64 = 4;

/// A node of the demo tenant on the nats-server at `nats_port` that
/// snapshots every [`SNAPSHOT_EVERY_RECORDS`] records. (The shared
/// harness turns periodic snapshots off through the environment, which
/// wins over the configuration file, so this test starts its own.)
fn start_snapshotting_node(data: &Path, name: &str, nats_port: u16) -> Node {
    let config = data.with_extension("toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nbinary_listen = \"127.0.0.1:0\"\n\n[cluster]\n\
             nats = [\"nats://127.0.0.1:{nats_port}\"]\nnode = \"{name}\"\nreplicas = 1\n\
             lease_ms = {LEASE_MS}\nsnapshots_kept = {SNAPSHOTS_KEPT}\n"
        ),
    )
    .unwrap();
    let (process, http, binary) = launch_loketd(
        Command::new(env!("CARGO_BIN_EXE_loketd"))
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(data)
            .env("LOKETD_SNAPSHOT__EVERY_RECORDS", SNAPSHOT_EVERY_RECORDS.to_string())
            .env("LOKETD_SNAPSHOT__EVERY_SECS", "0")
            .env("LOKETD_LOG", "info"),
    );
    Node { process, http, binary }
}

/// Sends `batches` batches from `first_batch` on to `node` and waits for
/// every acknowledgement: (batch, last event number).
async fn send_all(node: &Node, first_batch: u64, batches: u64) -> BTreeMap<u64, u64> {
    let mut running = load(node.binary, first_batch, batches).await;
    let mut acked = BTreeMap::new();
    while let Some((batch, seq)) =
        tokio::time::timeout(Duration::from_secs(30), running.acks.recv()).await.expect("acks")
    {
        acked.insert(batch, seq);
    }
    assert!(running.errors.try_recv().is_err(), "the leader refused nothing");
    assert_eq!(acked.len() as u64, batches, "every batch acknowledged");
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_starts_from_the_object_store_and_takes_over_with_every_message() {
    let dir = tempfile::tempdir().unwrap();
    let (_nats, nats_port) = start_nats(dir.path());
    let mut n1 = start_snapshotting_node(&dir.path().join("n1"), "n1", nats_port);
    wait_role(&n1, "leader", Duration::from_secs(15)).await;

    // 2,500 messages: about six snapshots.
    let mut acked = send_all(&n1, 0, 250).await;

    // The object store holds the newest snapshots, and the stream was
    // trimmed behind the oldest of them.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (first_sequence, newest) = loop {
        let (status, view) = http(n1.http, "GET", "/v1/cluster", Some(TOKEN), None).await;
        assert_eq!(status, 200, "{view}");
        let tenant = &view["tenant"];
        let objects = tenant["snapshot"]["objects"].as_u64().unwrap_or(0);
        let first = tenant["stream"]["first_sequence"].as_u64().unwrap_or(0);
        let newest = tenant["snapshot"]["lsn"].as_u64().unwrap_or(0);
        let last = tenant["stream"]["last_sequence"].as_u64().unwrap_or(0);
        // All snapshots but the newest `SNAPSHOTS_KEPT` are gone, and the
        // stream starts right after the oldest kept.
        if objects == SNAPSHOTS_KEPT && newest >= 4 * SNAPSHOT_EVERY_RECORDS && first > 1 {
            assert!(last >= 250, "{view}");
            // Kept from right after the oldest snapshot kept, older than
            // the newest.
            assert!(first - 1 < newest, "not trimmed past the oldest snapshot kept: {view}");
            eprintln!("object store: {}, stream: {}", tenant["snapshot"], tenant["stream"]);
            break (first, newest);
        }
        assert!(Instant::now() < deadline, "no snapshot uploaded and trimmed behind: {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // A new node with an empty data directory starts from the object
    // store's newest snapshot: the stream no longer holds sequence 1.
    uploads_settle(&n1).await;
    let n2 = start_snapshotting_node(&dir.path().join("n2"), "n2", nats_port);
    let view = wait_role(&n2, "follower", Duration::from_secs(15)).await;
    let started = &view["tenant"]["started_from"];
    assert_eq!(started["source"], "object_store", "{view}");
    let snapshot_lsn = started["snapshot_lsn"].as_u64().unwrap();
    assert!(snapshot_lsn >= newest && snapshot_lsn + 1 >= first_sequence, "{view}");
    assert_eq!(view["tenant"]["leader"]["node"], "n1", "{view}");

    // More load while n2 follows from the snapshot on; kill -9 the leader
    // in the middle of it.
    let mut running = load(n1.binary, 1_000, 1_000_000).await;
    let mut during = 0;
    while during < 60 {
        let (batch, seq) = tokio::time::timeout(Duration::from_secs(20), running.acks.recv())
            .await
            .expect("acknowledgements arrive")
            .unwrap();
        acked.insert(batch, seq);
        during += 1;
    }
    n1.process.0.kill().unwrap();
    let killed = Instant::now();
    n1.process.0.wait().unwrap();
    let _ = running.task.await;
    while let Ok((batch, seq)) = running.acks.try_recv() {
        acked.insert(batch, seq);
    }
    let view = wait_role(&n2, "leader", Duration::from_millis(LEASE_MS + 5_000)).await;
    eprintln!("n2 leads {} ms after the kill", killed.elapsed().as_millis());
    assert_eq!(view["tenant"]["started_from"]["source"], "object_store", "{view}");

    // Every acknowledged message is in n2's state, and the events after
    // the snapshot it started from run on without a gap or a repeat up to
    // the last one acknowledged.
    let last = *acked.values().max().unwrap();
    let from = last - 200;
    let stream =
        events(n2.http, TOKEN, Some(from), (last - from + 1) as usize, Duration::from_secs(20))
            .await;
    let seqs: Vec<u64> = stream.iter().filter_map(|e| e.1).collect();
    assert!(seqs.len() as u64 > last - from, "events {from}..={last}: {}", seqs.len());
    assert_eq!(&seqs[..=(last - from) as usize], (from..=last).collect::<Vec<_>>());
    let mut missing = Vec::new();
    for &batch in acked.keys() {
        for i in 0..10 {
            let conversation = conversation_of(batch, i);
            let path = format!("/v1/conversations/{conversation}");
            let (status, _) = http(n2.http, "GET", &path, Some(TOKEN), None).await;
            if status != 200 {
                missing.push(conversation);
            }
        }
    }
    assert!(missing.is_empty(), "acknowledged but not on n2: {missing:?}");
    eprintln!("{} batches acknowledged, all on n2", acked.len());
}

/// `/v1/cluster`'s tenant on `node`.
async fn tenant_view(node: &Node) -> serde_json::Value {
    let (status, view) = http(node.http, "GET", "/v1/cluster", Some(TOKEN), None).await;
    assert_eq!(status, 200, "{view}");
    view["tenant"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_the_trim_left_behind_exits_and_restarts_from_the_object_store() {
    let dir = tempfile::tempdir().unwrap();
    let (_nats, nats_port) = start_nats(dir.path());
    let n1 = start_snapshotting_node(&dir.path().join("n1"), "n1", nats_port);
    wait_role(&n1, "leader", Duration::from_secs(15)).await;
    let mut n2 = start_snapshotting_node(&dir.path().join("n2"), "n2", nats_port);
    wait_role(&n2, "follower", Duration::from_secs(15)).await;
    send_all(&n1, 0, 20).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let behind_at = loop {
        let (leader, follower) = (tenant_view(&n1).await, tenant_view(&n2).await);
        if leader["applied_sequence"] == follower["applied_sequence"] {
            break follower["applied_sequence"].as_u64().unwrap();
        }
        assert!(Instant::now() < deadline, "n2 does not catch up: {follower}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    // Frozen, n2 falls behind while the leader trims the stream past it:
    // past what its tail's pending pull requests (500 records each) had
    // delivered into its socket before it froze.
    support::signal(&n2.process.0, "STOP");
    send_all(&n1, 100, 1_800).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let leader = tenant_view(&n1).await;
        if leader["stream"]["first_sequence"].as_u64().unwrap_or(0) > behind_at + 1_100 {
            break;
        }
        assert!(Instant::now() < deadline, "the stream is not trimmed past n2: {leader}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Woken, it finds a gap in the stream, stops the tenant and exits.
    support::signal(&n2.process.0, "CONT");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = n2.process.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "n2 did not leave after the gap");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!status.success(), "it exits with an error: {status}");

    // The leader's uploads settle first: a node that starts from a
    // snapshot while newer ones are still being uploaded (as many as are
    // kept) could find the stream trimmed past it again and leave again,
    // by the same rule.
    uploads_settle(&n1).await;

    // Restarted on the same data directory, it starts from the object
    // store (its own snapshots are older than the stream) and catches up.
    let n2 = start_snapshotting_node(&dir.path().join("n2"), "n2", nats_port);
    let view = wait_role(&n2, "follower", Duration::from_secs(15)).await;
    assert_eq!(view["tenant"]["started_from"]["source"], "object_store", "{view}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (leader, follower) = (tenant_view(&n1).await, tenant_view(&n2).await);
        if leader["applied_sequence"] == follower["applied_sequence"] {
            break;
        }
        assert!(Instant::now() < deadline, "n2 does not catch up after the restart: {follower}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for batch in [0, 19, 100, 1_399] {
        let path = format!("/v1/conversations/{}", conversation_of(batch, 9));
        let (status, answer) = http(n2.http, "GET", &path, Some(TOKEN), None).await;
        assert_eq!(status, 200, "batch {batch} on n2: {answer}");
    }
}

/// Waits until the newest snapshot `leader` reports in the object store
/// stays the same for a second: its uploads (and trims) are done.
async fn uploads_settle(leader: &Node) {
    let mut last = (Value::Null, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while last.1 < 5 {
        let lsn = tenant_view(leader).await["snapshot"]["lsn"].clone();
        last = if lsn == last.0 { (lsn, last.1 + 1) } else { (lsn, 0) };
        assert!(Instant::now() < deadline, "the leader's uploads do not settle");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
