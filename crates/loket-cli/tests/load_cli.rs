//! End-to-end: `loket load` against tiny fake servers (binary protocol and
//! HTTP) on 127.0.0.1 that acknowledge everything.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use loket_wire::{
    Ack, ErrorFrame, Frame, FrameCodec, Limits, PROTOCOL_VERSION, Welcome, codes, encode_frame,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Decoder;

const TOKEN: &str = "demo-token";

/// What a fake server received.
#[derive(Debug, Default)]
struct Counts {
    /// Messages.
    messages: AtomicU64,
    /// Messages whose conversation and customer ids were both strings.
    text_ids: AtomicU64,
    /// Distinct texts and conversations seen (binary).
    seen: std::sync::Mutex<(BTreeSet<String>, BTreeSet<String>)>,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

fn loket(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loket")).args(args).output().expect("loket runs")
}

fn last_json_line(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let line =
        stdout.lines().last().unwrap_or_else(|| panic!("no stdout; stderr: {}", stderr(output)));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Accepts binary-protocol connections: `Welcome` for the right token,
/// `Error unauthorized` otherwise, and an `Ack` for every batch. Counts the
/// messages it received.
async fn binary_server(listener: TcpListener, received: Arc<Counts>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        tokio::spawn(binary_connection(stream, received.clone()));
    }
}

async fn binary_connection(mut stream: TcpStream, received: Arc<Counts>) {
    let limits = Limits::default();
    let mut codec = FrameCodec::new(limits);
    let mut input = BytesMut::new();
    let mut output = Vec::new();
    let mut seq = 0u64;
    loop {
        output.clear();
        loop {
            let frame = match codec.decode(&mut input) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(error) => panic!("the load generator sent a bad frame: {error}"),
            };
            let answer = match frame {
                Frame::Hello(hello)
                    if hello.token == TOKEN && hello.version == PROTOCOL_VERSION =>
                {
                    Frame::Welcome(Welcome {
                        tenant: "demo".into(),
                        max_frame_bytes: limits.max_frame_bytes,
                        max_batch_messages: limits.max_batch_messages,
                    })
                }
                Frame::Hello(_) => Frame::Error(ErrorFrame {
                    batch_id: 0,
                    code: codes::UNAUTHORIZED.into(),
                    message: "unknown token".into(),
                }),
                Frame::Batch(batch) => {
                    let count = batch.message_count() as u64;
                    received.messages.fetch_add(count, Ordering::Relaxed);
                    let text = batch
                        .archived()
                        .messages
                        .iter()
                        .filter(|m| {
                            matches!(
                                (&m.conversation_id, &m.customer_id),
                                (loket_wire::ArchivedId::Text(_), loket_wire::ArchivedId::Text(_))
                            )
                        })
                        .count();
                    received.text_ids.fetch_add(text as u64, Ordering::Relaxed);
                    let mut seen = received.seen.lock().unwrap();
                    for m in batch.archived().messages.iter() {
                        seen.0.insert(m.text.as_str().to_owned());
                        seen.1.insert(format!("{:?}", m.conversation_id.to_id()));
                    }
                    drop(seen);
                    seq += count;
                    Frame::Ack(Ack {
                        batch_id: batch.batch_id(),
                        accepted: count as u32,
                        last_seq: seq,
                    })
                }
                other => panic!("unexpected frame from the client: {other:?}"),
            };
            encode_frame(&answer, &mut output).unwrap();
        }
        if !output.is_empty() && stream.write_all(&output).await.is_err() {
            return;
        }
        match stream.read_buf(&mut input).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Answers `POST /v1/messages/batch` with `{"accepted": n}` after checking
/// the headers and the body's shape.
async fn http_server(listener: TcpListener, received: Arc<Counts>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        let received = received.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let received = received.clone();
                async move { Ok::<_, Infallible>(handle_http(request, &received).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle_http(request: Request<Incoming>, received: &Counts) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    if request.method() != hyper::Method::POST || request.uri().path() != "/v1/messages/batch" {
        return reply(StatusCode::NOT_FOUND, "{}".into());
    }
    let headers = request.headers();
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer demo-token")
        || headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json")
    {
        return reply(StatusCode::UNAUTHORIZED, r#"{"error":"unauthorized"}"#.into());
    }
    let Ok(body) = request.into_body().collect().await else {
        return reply(StatusCode::BAD_REQUEST, "{}".into());
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body.to_bytes()) else {
        return reply(StatusCode::BAD_REQUEST, "{}".into());
    };
    let Some(messages) = json["messages"].as_array() else {
        return reply(StatusCode::BAD_REQUEST, "{}".into());
    };
    let well_formed = messages.iter().all(|m| {
        m["conversation_id"].as_str().is_some_and(|id| !id.is_empty())
            && m["customer_id"].as_str().is_some_and(|id| !id.is_empty())
            && loket_wire::channel::from_name(m["channel"].as_str().unwrap_or("")).is_some()
            && m["text"].is_string()
            && m["tier"].is_u64()
    });
    if !well_formed || messages.is_empty() {
        return reply(StatusCode::BAD_REQUEST, "{}".into());
    }
    received.messages.fetch_add(messages.len() as u64, Ordering::Relaxed);
    reply(StatusCode::OK, format!(r#"{{"accepted":{},"last_seq":0}}"#, messages.len()))
}

/// Starts a fake server of `kind` and returns its address and counter.
fn start(runtime: &tokio::runtime::Runtime, kind: &str) -> (SocketAddr, Arc<Counts>) {
    let received = Arc::new(Counts::default());
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    match kind {
        "binary" => runtime.spawn(binary_server(listener, received.clone())),
        _ => runtime.spawn(http_server(listener, received.clone())),
    };
    (addr, received)
}

fn check_report(report: &serde_json::Value, protocol: &str, sent: u64) {
    let fields = [
        "protocol",
        "ids",
        "target",
        "rate",
        "duration_s",
        "connections",
        "batch",
        "texts",
        "conversations",
        "sent_messages",
        "acked_messages",
        "errors",
        "achieved_msgs_per_sec",
        "p50_us",
        "p99_us",
        "p999_us",
        "max_us",
    ];
    let object = report.as_object().unwrap();
    assert_eq!(object.len(), fields.len(), "{report}");
    for field in fields {
        assert!(object.contains_key(field), "{field} missing in {report}");
    }
    assert_eq!(report["protocol"], protocol);
    assert_eq!(report["sent_messages"], sent, "{report}");
    assert_eq!(report["acked_messages"], sent, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    let [p50, p99, p999, max] =
        ["p50_us", "p99_us", "p999_us", "max_us"].map(|f| report[f].as_u64().unwrap());
    assert!(p50 >= 1 && p50 <= p99 && p99 <= p999 && p999 <= max, "{report}");
    // The fake server answers at once: latencies stay well under a second.
    assert!(max < 1_000_000, "{report}");
    let achieved = report["achieved_msgs_per_sec"].as_f64().unwrap();
    assert!(achieved > 0.0 && achieved <= report["rate"].as_f64().unwrap() * 1.1, "{report}");
}

#[test]
fn binary_load_is_acked_in_full() {
    let runtime = runtime();
    let (addr, received) = start(&runtime, "binary");
    let target = addr.to_string();
    // 2,000 msgs/s for 1 s in batches of 50: 40 batches over 2 connections.
    let output = loket(&[
        "load",
        "--target",
        &target,
        "--protocol",
        "binary",
        "--rate",
        "2000",
        "--duration",
        "1s",
        "--connections",
        "2",
        "--batch",
        "50",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report = last_json_line(&output);
    check_report(&report, "binary", 2_000);
    assert_eq!(report["target"], target.as_str());
    assert_eq!(report["connections"], 2);
    assert_eq!(report["batch"], 50);
    assert_eq!(received.messages.load(Ordering::Relaxed), 2_000);
    assert_eq!(received.text_ids.load(Ordering::Relaxed), 0);
    assert_eq!(report["ids"], "numeric");
}

#[test]
fn binary_load_can_name_conversations_and_customers_with_strings() {
    let runtime = runtime();
    let (addr, received) = start(&runtime, "binary");
    let target = addr.to_string();
    let output = loket(&[
        "load",
        "--target",
        &target,
        "--rate",
        "1000",
        "--duration",
        "1s",
        "--batch",
        "50",
        "--ids",
        "text",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report = last_json_line(&output);
    check_report(&report, "binary", 1_000);
    assert_eq!(report["ids"], "text");
    assert_eq!(received.text_ids.load(Ordering::Relaxed), 1_000);
}

#[test]
fn binary_load_sends_a_files_texts_over_the_conversations_asked_for() {
    let runtime = runtime();
    let (addr, received) = start(&runtime, "binary");
    let target = addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clinc.csv");
    let rows: Vec<String> =
        (0..30).map(|i| format!("\"what is my balance, account {i}\",balance")).collect();
    std::fs::write(&file, format!("text,label\n{}\n", rows.join("\n"))).unwrap();
    let output = loket(&[
        "load",
        "--target",
        &target,
        "--rate",
        "3000",
        "--duration",
        "1s",
        "--batch",
        "100",
        "--connections",
        "2",
        "--texts",
        file.to_str().unwrap(),
        "--conversations",
        "40",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report = last_json_line(&output);
    check_report(&report, "binary", 3_000);
    assert_eq!(report["texts"], "30 from a file");
    assert_eq!(report["conversations"], 40);
    let seen = received.seen.lock().unwrap();
    let expected: BTreeSet<String> =
        (0..30).map(|i| format!("what is my balance, account {i}")).collect();
    assert_eq!(seen.0, expected, "every text of the file, and only those");
    // One message in ten opens a conversation: about 300 of 3,000.
    assert!((150..=500).contains(&seen.1.len()), "{} conversations", seen.1.len());
    drop(seen);

    let missing = loket(&["load", "--target", &target, "--texts", "/nonexistent/texts.txt"]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("cannot open /nonexistent/texts.txt"),
        "{}",
        stderr(&missing)
    );
    let zero = loket(&["load", "--target", &target, "--conversations", "0"]);
    assert!(!zero.status.success());
    assert!(stderr(&zero).contains("--conversations"), "{}", stderr(&zero));
}

#[test]
fn http_load_is_acked_in_full() {
    let runtime = runtime();
    let (addr, received) = start(&runtime, "http");
    let target = addr.to_string();
    let output = loket(&[
        "load",
        "--target",
        &target,
        "--protocol",
        "http",
        "--rate",
        "1000",
        "--duration",
        "1s",
        "--connections",
        "2",
        "--batch",
        "25",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report = last_json_line(&output);
    check_report(&report, "http", 1_000);
    assert_eq!(received.messages.load(Ordering::Relaxed), 1_000);
}

#[test]
fn an_unreachable_target_fails_clearly() {
    let runtime = runtime();
    // A port that was just free: bind, note it, close.
    let addr = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap().local_addr().unwrap();
    let output = loket(&["load", "--target", &addr.to_string(), "--duration", "200ms"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("cannot connect to"), "{}", stderr(&output));
}

#[test]
fn a_refused_token_fails_clearly() {
    let runtime = runtime();
    let (addr, _) = start(&runtime, "binary");
    let output =
        loket(&["load", "--target", &addr.to_string(), "--token", "wrong", "--duration", "200ms"]);
    assert!(!output.status.success());
    let stderr = stderr(&output);
    assert!(
        stderr.contains("refused the connection") && stderr.contains("unauthorized"),
        "{stderr}"
    );
}
