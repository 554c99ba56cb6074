//! `kill -9` during load: every acknowledged message and decision survives.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use loket_wire::{Frame, Id, MessageBatch};
use support::{Binary, Process, TOKEN, events, http, launch_loketd, message};

/// Starts the daemon on ports of its own choosing (port 0: no other
/// process can take them between choosing and binding) and returns it
/// with the addresses it reports once ready.
fn start(data: &Path) -> (Process, SocketAddr, SocketAddr) {
    launch_loketd(
        Command::new(env!("CARGO_BIN_EXE_loketd"))
            .arg("--data-dir")
            .arg(data)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--binary-listen")
            .arg("127.0.0.1:0")
            // No snapshots: the journal alone must hold everything.
            .env("LOKETD_SNAPSHOT__EVERY_RECORDS", "0")
            .env("LOKETD_SNAPSHOT__EVERY_SECS", "0")
            .env("LOKETD_LOG", "info"),
    )
}

async fn wait_ready(http_addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if tokio::net::TcpStream::connect(http_addr).await.is_ok() {
            let (status, _) = http(http_addr, "GET", "/readyz", None, None).await;
            if status == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "loketd did not become ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_message_and_decision_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, http_addr, binary_addr) = start(dir.path());
    wait_ready(http_addr).await;
    // By default the binary turns transparent huge pages off for itself
    // (`huge_pages = false`), so no first-touch 2 MiB fault stalls decisions.
    #[cfg(target_os = "linux")]
    {
        let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.id())).unwrap();
        if let Some(line) = status.lines().find(|l| l.starts_with("THP_enabled:")) {
            assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
        }
    }

    // Load: pipelined batches; note each acknowledgement as it arrives.
    let (mut client, welcome) = Binary::connect(binary_addr, TOKEN).await;
    assert!(matches!(welcome, Frame::Welcome(_)));
    let (acks_tx, mut acks_rx) = tokio::sync::mpsc::unbounded_channel();
    let sender = tokio::spawn(async move {
        let started = Instant::now();
        let mut batch_id = 0u64;
        let mut in_flight = 0usize;
        loop {
            while in_flight < 32 && started.elapsed() < Duration::from_secs(30) {
                batch_id += 1;
                // Odd messages name their conversation and customer with
                // strings, as platforms do: the mapping must survive too.
                let messages = (0..20)
                    .map(|i| {
                        let mut m =
                            message(batch_id * 100 + i, batch_id, "heeft u de bananenboom nog?");
                        if i % 2 == 1 {
                            m.conversation_id = Id::Text(conversation_name(batch_id * 100 + i));
                            m.customer_id = Id::Text(format!("klant-{batch_id}"));
                        }
                        m
                    })
                    .collect();
                client.send_batch(&MessageBatch { batch_id, messages }).await;
                in_flight += 1;
            }
            match client.next().await {
                Some(Frame::Ack(ack)) => {
                    in_flight -= 1;
                    if acks_tx.send((ack.batch_id, ack.last_seq)).is_err() {
                        return;
                    }
                }
                _ => return, // the daemon died
            }
        }
    });
    // Let some batches through, then kill -9 in the middle of the stream.
    let mut acked = BTreeMap::new();
    while acked.len() < 150 {
        let (batch_id, last_seq) = tokio::time::timeout(Duration::from_secs(20), acks_rx.recv())
            .await
            .expect("acknowledgements arrive")
            .unwrap();
        acked.insert(batch_id, last_seq);
    }
    daemon.kill().unwrap(); // SIGKILL
    daemon.wait().unwrap();
    let _ = sender.await;
    while let Ok((batch_id, last_seq)) = acks_rx.try_recv() {
        acked.insert(batch_id, last_seq);
    }

    let (mut daemon, http_addr, _) = start(dir.path());
    wait_ready(http_addr).await;
    // Every message of every acknowledged batch is there.
    for &batch_id in acked.keys() {
        for i in [0, 7, 19] {
            let conversation = batch_id * 100 + i;
            let name =
                if i % 2 == 1 { conversation_name(conversation) } else { conversation.to_string() };
            let (status, view) =
                http(http_addr, "GET", &format!("/v1/conversations/{name}"), Some(TOKEN), None)
                    .await;
            assert_eq!(
                status, 200,
                "conversation {conversation} of acknowledged batch {batch_id} is lost"
            );
            assert_eq!(view["messages"], 1);
            assert_eq!(view["id"], name);
        }
    }
    // Every decision up to the last acknowledged sequence number is there,
    // without gaps, and each acknowledged message has its decision.
    let last = *acked.values().max().unwrap();
    let stream = events(http_addr, TOKEN, Some(1), last as usize, Duration::from_secs(20)).await;
    let seqs: Vec<u64> = stream.iter().filter_map(|e| e.1).take_while(|&s| s <= last).collect();
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>(), "decisions 1..={last} replayed");
    let decided: std::collections::HashSet<String> =
        stream.iter().filter_map(|e| e.2["conversation"].as_str().map(str::to_owned)).collect();
    for &batch_id in acked.keys() {
        for i in 0..20 {
            let conversation = batch_id * 100 + i;
            let name =
                if i % 2 == 1 { conversation_name(conversation) } else { conversation.to_string() };
            assert!(decided.contains(&name), "no decision for batch {batch_id} message {i}");
        }
    }
    daemon.kill().unwrap();
    daemon.wait().unwrap();
}

/// A conversation id as a platform might write it.
fn conversation_name(n: u64) -> String {
    format!("WT-{n:08x}-gesprek")
}

/// The report `GET /v1/reports` answers for the whole of time, by channel
/// and by agent, in 15-minute rows.
async fn whole_report(http_addr: SocketAddr) -> serde_json::Value {
    let path = "/v1/reports?from=0&to=4102444800000&interval=15m&group_by=channel,agent,intent";
    let (status, report) = http(http_addr, "GET", path, Some(TOKEN), None).await;
    assert_eq!(status, 200, "{report}");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_after_sigkill_and_after_a_snapshot_equal_those_before() {
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, http_addr, _) = start(dir.path());
    wait_ready(http_addr).await;
    let post = |path: String, body: serde_json::Value| async move {
        let (status, answer) =
            http(http_addr, "POST", &path, Some(TOKEN), Some(&body.to_string())).await;
        assert_eq!(status, 200, "{path}: {answer}");
    };
    post(
        "/v1/agents".into(),
        serde_json::json!({"id": "anna", "languages": ["nl", "en"], "capacity": {"chat": 50, "whatsapp": 50, "total": 100}}),
    )
    .await;
    let texts = [
        "heeft u de bananenboom nog?",
        "waar blijft mijn bestelling?",
        "ik wil een klacht indienen",
    ];
    for i in 0..30u64 {
        let conversation = format!("c-{i}");
        let channel = if i % 3 == 0 { "whatsapp" } else { "chat" };
        let text = texts[i as usize % texts.len()];
        post(
            "/v1/messages".into(),
            serde_json::json!({"conversation_id": conversation, "customer_id": format!("k-{i}"), "channel": channel, "text": text}),
        )
        .await;
        if i % 4 != 3 {
            post(
                format!("/v1/conversations/{conversation}/replies"),
                serde_json::json!({"agent": "anna"}),
            )
            .await;
        }
        if i % 5 == 0 {
            post(format!("/v1/conversations/{conversation}/close"), serde_json::json!({})).await;
            post(
                format!("/v1/conversations/{conversation}/orders"),
                serde_json::json!({"value": 10.0 + i as f64, "currency": "EUR"}),
            )
            .await;
        }
    }
    let before = whole_report(http_addr).await;
    assert_eq!(before["totals"]["offered"], 30, "{before}");
    assert_eq!(before["totals"]["conversions"], 6, "{before}");
    assert!(
        before["groups"].as_array().unwrap().iter().any(|row| row["key"] == "anna"),
        "{before}"
    );

    // kill -9: the journal alone rebuilds the measures.
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let (mut daemon, http_addr, _) = start(dir.path());
    wait_ready(http_addr).await;
    assert_eq!(whole_report(http_addr).await, before, "after kill -9");

    // A clean stop writes a snapshot; the measures come back from it.
    // SAFETY: `kill` with a child's pid and SIGTERM only sends a signal.
    unsafe {
        libc::kill(daemon.id() as i32, libc::SIGTERM);
    }
    let status = daemon.wait().unwrap();
    assert!(status.success(), "a clean stop: {status:?}");
    let (_daemon, http_addr, _) = start(dir.path());
    wait_ready(http_addr).await;
    assert_eq!(whole_report(http_addr).await, before, "after a snapshot");
}
