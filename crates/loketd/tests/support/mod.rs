//! A minimal HTTP/1.1 client, an SSE reader and a binary-protocol client
//! for driving a real daemon over real sockets.

#![allow(dead_code)]

pub mod cluster;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use loket_wire::{Frame, FrameCodec, Hello, Limits, MessageBatch, WireMessage};
use loketd::{Config, FsyncPolicy, TenantConfig};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

pub const TOKEN: &str = "demo-token";

/// A daemon config on ephemeral loopback ports, in `dir`, with snapshots
/// only on shutdown.
pub fn config(dir: &Path) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        binary_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    config.journal.fsync = FsyncPolicy::Always;
    config.snapshot.every_records = 0;
    config.snapshot.every_secs = 0;
    config
}

/// A second tenant `other` with token `other-token`, no agents.
pub fn other_tenant() -> TenantConfig {
    TenantConfig {
        name: "other".to_owned(),
        tokens: vec!["other-token".to_owned()],
        ..TenantConfig::default()
    }
}

/// One request; returns the status and the JSON body (Null if none).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let (status, body) = http_raw(addr, method, path, token, body.map(str::as_bytes)).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

pub async fn http_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nhost: loketd\r\nconnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or_default();
    if !body.is_empty() || method == "POST" {
        request.push_str(&format!(
            "content-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let split =
        response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |i| i + 4);
    (status, response[split..].to_vec())
}

/// A POST with `body` and the given `Content-Type` (none: no header).
pub async fn http_typed(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
    content_type: Option<&str>,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: loketd\r\nconnection: close\r\nauthorization: Bearer {token}\r\ncontent-length: {}\r\n",
        body.len()
    );
    if let Some(content_type) = content_type {
        request.push_str(&format!("content-type: {content_type}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let split =
        response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |i| i + 4);
    (status, serde_json::from_slice(&response[split..]).unwrap_or(Value::Null))
}

/// Reads the event stream from `from` until `count` events arrived or
/// `wait` passed; returns `(event name, id, data)` triples.
pub async fn events(
    addr: SocketAddr,
    token: &str,
    from: Option<u64>,
    count: usize,
    wait: Duration,
) -> Vec<(String, Option<u64>, Value)> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let path = match from {
        Some(from) => format!("/v1/events?from={from}"),
        None => "/v1/events".to_owned(),
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: loketd\r\nauthorization: Bearer {token}\r\naccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let mut found = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 65_536];
    while found.len() < count {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await;
        match read {
            Ok(Ok(n)) if n > 0 => raw.extend_from_slice(&buf[..n]),
            _ => break,
        }
        found = parse_sse(&String::from_utf8_lossy(&raw));
    }
    found
}

fn parse_sse(text: &str) -> Vec<(String, Option<u64>, Value)> {
    let mut events = Vec::new();
    let (mut name, mut id, mut data) = (String::from("message"), None, None);
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            name = value.trim().to_owned();
        } else if let Some(value) = line.strip_prefix("id:") {
            id = value.trim().parse().ok();
        } else if let Some(value) = line.strip_prefix("data:") {
            data = serde_json::from_str(value.trim()).ok();
        } else if line.is_empty()
            && let Some(value) = data.take()
        {
            events.push((std::mem::replace(&mut name, "message".to_owned()), id.take(), value));
        }
    }
    events
}

/// A binary-protocol client after a successful handshake.
pub struct Binary {
    pub framed: Framed<TcpStream, FrameCodec>,
}

impl Binary {
    /// Connects and sends Hello; returns the server's first answer too.
    pub async fn connect(addr: SocketAddr, token: &str) -> (Binary, Frame) {
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut framed = Framed::new(stream, FrameCodec::new(Limits::default()));
        let hello =
            Frame::Hello(Hello { version: loket_wire::PROTOCOL_VERSION, token: token.to_owned() });
        framed.send(hello).await.unwrap();
        let answer = framed.next().await.expect("an answer to Hello").expect("a valid frame");
        (Binary { framed }, answer)
    }

    pub async fn send_batch(&mut self, batch: &MessageBatch) {
        let mut bytes = Vec::new();
        loket_wire::encode_batch(batch, &mut bytes).unwrap();
        self.framed.get_mut().write_all(&bytes).await.unwrap();
    }

    pub async fn next(&mut self) -> Option<Frame> {
        match tokio::time::timeout(Duration::from_secs(20), self.framed.next()).await {
            Ok(Some(Ok(frame))) => Some(frame),
            _ => None,
        }
    }
}

pub fn message(conversation: u64, customer: u64, text: &str) -> WireMessage {
    WireMessage {
        conversation_id: loket_wire::Id::Number(conversation),
        customer_id: loket_wire::Id::Number(customer),
        text: text.to_owned(),
        ..WireMessage::default()
    }
}

/// A child process (a daemon, a nats-server), killed when the test ends
/// however it ends: an orphan would keep the test's output pipe open and
/// hang the run. A stopped one is continued first, so it dies promptly.
pub struct Process(pub std::process::Child);

impl std::ops::Deref for Process {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Process {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            signal(&self.0, "CONT");
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Sends the signal `name` (`STOP`, `CONT`, ...) to `child`.
pub fn signal(child: &std::process::Child, name: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status();
}

/// Reads a child's piped stderr on a thread: hands the first line
/// containing `wanted` to the caller, passes on every line that is not
/// routine information, and keeps the pipe drained.
pub fn watch_log(
    child: &mut std::process::Child,
    wanted: &'static str,
) -> std::sync::mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("stderr is piped");
    let (found, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut found = Some(found);
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(wanted)
                && let Some(found) = found.take()
            {
                let _ = found.send(line.clone());
            }
            if !line.contains(" INFO ") && !line.contains("[INF]") {
                eprintln!("{line}");
            }
        }
    });
    receiver
}

/// Starts the `loketd` that `command` describes (its stderr piped), on
/// ports of its own choosing, and returns it with the HTTP and binary
/// addresses its "loketd ready" line reports.
pub fn launch_loketd(command: &mut std::process::Command) -> (Process, SocketAddr, SocketAddr) {
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the loketd binary starts");
    let ready = watch_log(&mut child, "loketd ready");
    let process = Process(child);
    let line = ready.recv_timeout(Duration::from_secs(60)).expect("loketd reports its addresses");
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(name))
            .and_then(|addr| addr.parse::<SocketAddr>().ok())
            .unwrap_or_else(|| panic!("no {name} address in {line:?}"))
    };
    (process, field("http="), field("binary="))
}

/// Files under `dir` whose bytes contain `needle` (a file or folder that
/// goes while it is looked through is passed over).
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            pending
                .extend(std::fs::read_dir(&path).into_iter().flatten().flatten().map(|e| e.path()));
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            found.push(path.display().to_string());
        }
    }
    found
}
