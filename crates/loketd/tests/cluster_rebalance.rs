//! A node joins a running cluster: the leaders of the tenants that rank it
//! first (rendezvous hashing over the live nodes) hand those tenants over
//! once it has been live for two leases, the others stay where they are,
//! and no acknowledged message is lost on the way.
//!
//! Starts one `nats-server` and two `loketd` nodes on loopback (needs
//! `nats-server` on the path) and stops them at the end.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use support::cluster::{LEASE_MS, start_nats, start_node_on, wait_role_of};
use support::{events, http};

/// The placement rule of docs/cluster.md, written out again here: a
/// node's rank for a tenant is the first 8 bytes (big-endian) of
/// SHA-256(tenant, 0, node); the live node with the highest rank leads.
fn rank(tenant: &str, node: &str) -> u64 {
    let digest = Sha256::new().chain_update(tenant).chain_update([0]).chain_update(node).finalize();
    u64::from_be_bytes(digest[..8].try_into().unwrap())
}

/// The first node of `nodes` by rank for `tenant`.
fn first_for<'a>(tenant: &str, nodes: &[&'a str]) -> &'a str {
    nodes.iter().copied().max_by_key(|node| rank(tenant, node)).unwrap()
}

/// Six tenant names, three that rank `n2` first among `n1` and `n2` and
/// three that rank `n1` first.
fn tenants() -> Vec<String> {
    let (mut to_n1, mut to_n2) = (Vec::new(), Vec::new());
    for i in 0.. {
        let name = format!("shop-{i}");
        let side = if first_for(&name, &["n1", "n2"]) == "n2" { &mut to_n2 } else { &mut to_n1 };
        if side.len() < 3 {
            side.push(name);
        }
        if to_n1.len() == 3 && to_n2.len() == 3 {
            break;
        }
    }
    to_n1.into_iter().chain(to_n2).collect()
}

fn token(tenant: &str) -> String {
    format!("token-{tenant}")
}

/// What one tenant's client saw: per acknowledged message its
/// conversation and the node (index) that acknowledged it, the highest
/// event number acknowledged, and any answer other than 200 or 421.
#[derive(Debug, Default)]
struct Seen {
    acked: Vec<(u64, usize)>,
    last_seq: u64,
    unexpected: Vec<String>,
}

/// One message at a time for `tenant`, each on a new conversation, to the
/// node in the current slot of `nodes` (read afresh each time, so a node
/// started later joins in); a `not_leader` refusal moves the client to the
/// next slot. Runs until `stop`.
async fn client(
    tenant: String,
    nodes: Arc<parking_lot::Mutex<Vec<SocketAddr>>>,
    stop: Arc<AtomicBool>,
) -> Seen {
    let token = token(&tenant);
    let mut seen = Seen::default();
    let mut slot = 0;
    let mut conversation = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let addresses = nodes.lock().clone();
        slot %= addresses.len();
        conversation += 1;
        let body = format!(
            r#"{{"conversation_id":"{conversation}","customer_id":"c-{conversation}","channel":"chat","text":"heeft u de bananenboom nog?"}}"#
        );
        let (status, answer) =
            http(addresses[slot], "POST", "/v1/messages", Some(&token), Some(&body)).await;
        match status {
            200 => {
                seen.acked.push((conversation, slot));
                let seq = answer["last_seq"].as_u64().or(answer["seq"].as_u64()).unwrap_or(0);
                seen.last_seq = seen.last_seq.max(seq);
            }
            421 if answer["error"]["code"] == "not_leader" => slot += 1,
            _ => seen.unexpected.push(format!("{status} {answer}")),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_takes_the_tenants_that_rank_it_first_without_losing_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = tenants();
    let config: String = tenants
        .iter()
        .map(|t| {
            format!(
                "[[tenants]]\nname = \"{t}\"\ntokens = [\"{}\"]\ndemo_agents = true\n\n",
                token(t)
            )
        })
        .collect();
    let (_nats, nats_port) = start_nats(dir.path());
    let n1 = start_node_on(&dir.path().join("n1"), "n1", &[nats_port], 1, LEASE_MS, &config);
    for tenant in &tenants {
        wait_role_of(&n1, &token(tenant), "leader", Duration::from_secs(15)).await;
    }

    // A client per tenant, before, during and after the join.
    let nodes = Arc::new(parking_lot::Mutex::new(vec![n1.http]));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = tenants
        .iter()
        .map(|tenant| tokio::spawn(client(tenant.clone(), nodes.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let n2 = start_node_on(&dir.path().join("n2"), "n2", &[nats_port], 1, LEASE_MS, &config);
    let joined = Instant::now();
    nodes.lock().push(n2.http);

    // Every tenant ends up led by the node that ranks first for it, as both
    // nodes see it: the leader moves two leases after the join at the
    // earliest, within a few seconds more.
    let deadline = joined + Duration::from_secs(20);
    let mut moved_at = BTreeMap::new();
    loop {
        let mut settled = true;
        for tenant in &tenants {
            let expected = first_for(tenant, &["n1", "n2"]);
            for (name, node) in [("n1", &n1), ("n2", &n2)] {
                let (status, view) =
                    http(node.http, "GET", "/v1/cluster", Some(&token(tenant)), None).await;
                let leader = view["tenant"]["leader"]["node"].as_str().unwrap_or("");
                let role = if name == expected { "leader" } else { "follower" };
                settled &= status == 200 && leader == expected && view["tenant"]["role"] == role;
                if name == "n2" && view["tenant"]["role"] == "leader" {
                    moved_at.entry(tenant.clone()).or_insert_with(|| joined.elapsed());
                }
            }
        }
        if settled {
            break;
        }
        assert!(Instant::now() < deadline, "leaders not rebalanced 20 s after the join");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("tenants moved to n2 after {moved_at:?}");
    for (tenant, after) in &moved_at {
        assert!(
            *after >= Duration::from_millis(2 * LEASE_MS),
            "{tenant} moved {after:?} after the join, before n2 had been live for two leases"
        );
    }

    // Traffic goes on after the move, then stops.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut seen = BTreeMap::new();
    for (tenant, client) in tenants.iter().zip(clients) {
        seen.insert(tenant.clone(), client.await.unwrap());
    }

    for tenant in &tenants {
        let seen = &seen[tenant];
        assert!(seen.unexpected.is_empty(), "{tenant}: {:?}", seen.unexpected);
        let expected = first_for(tenant, &["n1", "n2"]);
        let slots: BTreeSet<usize> = seen.acked.iter().map(|&(_, slot)| slot).collect();
        if expected == "n2" {
            // Acknowledged by n1 before the hand-over and by n2 after it.
            assert_eq!(slots, BTreeSet::from([0, 1]), "{tenant}");
        } else {
            // Never moved: n1 acknowledged everything.
            assert_eq!(slots, BTreeSet::from([0]), "{tenant}");
            assert!(!moved_at.contains_key(tenant), "{tenant} moved though n1 ranks first");
        }
        // Every acknowledged message is in the leader's events with its
        // decision, and event numbers run without a gap or a repeat.
        // The node that handed a tenant over follows it again: it serves
        // the same events as the new leader.
        let readers: &[&support::cluster::Node] =
            if expected == "n2" { &[&n2, &n1] } else { &[&n1] };
        let mut stream = Vec::new();
        for reader in readers {
            stream = events(
                reader.http,
                &token(tenant),
                Some(1),
                seen.last_seq as usize,
                Duration::from_secs(20),
            )
            .await;
            let seqs: Vec<u64> = stream.iter().filter_map(|e| e.1).collect();
            assert_eq!(seqs, (1..=seen.last_seq).collect::<Vec<_>>(), "{tenant}: events");
        }
        let decided: BTreeSet<&str> =
            stream.iter().filter_map(|e| e.2["conversation"].as_str()).collect();
        for (conversation, _) in &seen.acked {
            assert!(
                decided.contains(conversation.to_string().as_str()),
                "{tenant}: {conversation} lost"
            );
        }
        eprintln!("{tenant}: {} messages acknowledged, led by {expected}", seen.acked.len());
    }
}
