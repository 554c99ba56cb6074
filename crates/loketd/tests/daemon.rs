//! The daemon in-process on port 0, driven by real HTTP and TCP clients.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use loket_wire::{Frame, MessageBatch};
use loketd::Spawned;
use serde_json::{Value, json};
use support::{Binary, TOKEN, config, events, http, http_raw, message, other_tenant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn body(value: Value) -> String {
    value.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_scored_routed_and_answered_with_stock() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Spawned::start(config(dir.path())).await.unwrap();
    let text = json!({"conversation_id": 1, "customer_id": 5, "channel": "chat",
        "text": "hebben jullie de bananenboom nog op voorraad?"});
    let (status, answer) =
        http(daemon.http, "POST", "/v1/messages", Some(TOKEN), Some(&body(text))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["intent"], "buy.stock");
    assert_eq!(answer["language"], "nl");
    assert_eq!(answer["decision"]["type"], "assigned");
    assert_eq!(answer["decision"]["reason"], "bot_first", "the demo starts with bots");
    assert_eq!(answer["decision"]["seq"], 1);
    assert_eq!(answer["products"][0]["name"], "Musa basjoo", "the banana tree, by its Dutch name");

    // The customer asks for a person: the conversation escalates to a human.
    let text = json!({"conversation_id": 1, "customer_id": 5, "channel": "chat",
        "text": "kan ik een medewerker spreken?"});
    let (status, answer) =
        http(daemon.http, "POST", "/v1/messages", Some(TOKEN), Some(&body(text))).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["signals"].as_array().unwrap().contains(&json!("human_request")), "{answer}");
    let (status, conversation) =
        http(daemon.http, "GET", "/v1/conversations/1", Some(TOKEN), None).await;
    assert_eq!(status, 200);
    assert_eq!(conversation["messages"], 2);
    assert!(conversation["escalated"].as_bool().unwrap(), "{conversation}");
    let agent = conversation["agent"].as_str().unwrap().to_owned();
    assert!(agent.parse::<u64>().unwrap() < loketd::demo::FIRST_BOT, "a human now: {conversation}");

    let (status, batch) = http(
        daemon.http,
        "POST",
        "/v1/messages/batch",
        Some(TOKEN),
        Some(&body(json!({"messages": [
            {"conversation_id": 2, "customer_id": 6, "channel": "whatsapp", "text": "where is my order?", "language": "en"},
            {"conversation_id": 1, "customer_id": 5, "channel": "chat", "text": "dank je"}
        ]}))),
    )
    .await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["accepted"], 2);
    assert_eq!(batch["decisions"][1]["reason"], "sticky");
    assert_eq!(batch["decisions"][1]["agent"], agent.as_str());

    let (status, closed) =
        http(daemon.http, "POST", "/v1/conversations/1/close", Some(TOKEN), None).await;
    assert_eq!(status, 200, "{closed}");
    let (_, stats) = http(daemon.http, "GET", "/v1/stats", Some(TOKEN), None).await;
    assert_eq!(stats["router"]["agents"], 100);
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_catalog_and_scoring_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Spawned::start(config(dir.path())).await.unwrap();
    let agent = json!({"id": "7000", "skills": {"sales": 9}, "languages": ["nl"],
        "capacity": {"chat": 2, "total": 2}});
    let (status, view) =
        http(daemon.http, "POST", "/v1/agents", Some(TOKEN), Some(&body(agent))).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["id"], "7000");
    assert_eq!(view["skills"][0], json!({"skill": "sales", "level": 9}));
    let update = json!({"presence": "away", "capacity": {"chat": 1, "total": 1}});
    let (status, view) =
        http(daemon.http, "PATCH", "/v1/agents/7000", Some(TOKEN), Some(&body(update))).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["presence"], "away");
    assert_eq!(view["capacity"]["chat"], 1);
    let (status, error) =
        http(daemon.http, "PATCH", "/v1/agents/7001", Some(TOKEN), Some("{}")).await;
    assert_eq!((status, error["error"]["code"].as_str()), (404, Some("not_found")));
    let (status, _) = http(daemon.http, "DELETE", "/v1/agents/7000", Some(TOKEN), None).await;
    assert_eq!(status, 200);
    let (status, _) = http(daemon.http, "GET", "/v1/agents/7000", Some(TOKEN), None).await;
    assert_eq!(status, 404);

    let (status, found) =
        http(daemon.http, "GET", "/v1/catalog/search?q=bananeboom&limit=1", Some(TOKEN), None)
            .await;
    assert_eq!(status, 200, "{found}");
    let sku = found["hits"][0]["sku"].as_str().unwrap().to_owned();
    let stock = json!({"sku": sku, "stock": 0});
    let (status, _) =
        http(daemon.http, "POST", "/v1/catalog/stock", Some(TOKEN), Some(&body(stock))).await;
    assert_eq!(status, 200);
    let (_, found) = http(daemon.http, "GET", "/v1/catalog/search?q=musa", Some(TOKEN), None).await;
    assert_eq!(found["hits"][0]["in_stock"], false, "{found}");
    let unknown = json!({"sku": "NOPE", "stock": 1});
    let (status, error) =
        http(daemon.http, "POST", "/v1/catalog/stock", Some(TOKEN), Some(&body(unknown))).await;
    assert_eq!((status, error["error"]["code"].as_str()), (404, Some("not_found")), "{error}");

    let (status, score) = http(
        daemon.http,
        "POST",
        "/v1/score",
        Some(TOKEN),
        Some(&body(json!({"text": "I would like to buy this plant, how do I pay?"}))),
    )
    .await;
    assert_eq!(status, 200, "{score}");
    assert!(score["buying_intent"].as_f64().unwrap() > 0.5, "{score}");
    assert_eq!(score["language"], "en");

    // The stock change survives a restart (journal, then snapshot).
    daemon.shutdown().await.unwrap();
    let daemon = Spawned::start(config(dir.path())).await.unwrap();
    let (_, found) = http(daemon.http, "GET", "/v1/catalog/search?q=musa", Some(TOKEN), None).await;
    assert_eq!(found["hits"][0]["in_stock"], false, "{found}");
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clean_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.limits.max_body_bytes = 4_096;
    config.limits.max_batch_messages = 3;
    let daemon = Spawned::start(config).await.unwrap();
    /// Method, path, token, body, expected status and error code.
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Option<String>, u16, &'a str);
    let long_path = format!("/v1/agents/{}", "x".repeat(129));
    let cases: Vec<Case> = vec![
        ("POST", "/v1/messages", None, Some("{}".to_owned()), 401, "unauthorized"),
        ("POST", "/v1/messages", Some("wrong-token"), Some("{}".to_owned()), 401, "unauthorized"),
        (
            "POST",
            "/v1/messages",
            Some(TOKEN),
            Some("{\"conversation_id\": 1".to_owned()),
            400,
            "bad_json",
        ),
        // JSON, but not a message: 422, naming the field where there is one.
        ("POST", "/v1/messages", Some(TOKEN), Some("[]".to_owned()), 422, "invalid"),
        (
            "POST",
            "/v1/messages",
            Some(TOKEN),
            Some(body(json!({"customer_id": 1, "channel": "chat", "text": "hi"}))),
            422,
            "invalid",
        ),
        (
            "POST",
            "/v1/messages",
            Some(TOKEN),
            Some(body(
                json!({"conversation_id": 1, "customer_id": 1, "channel": "fax", "text": "hi"}),
            )),
            422,
            "invalid",
        ),
        (
            "POST",
            "/v1/messages",
            Some(TOKEN),
            Some(body(
                json!({"conversation_id": "", "customer_id": 1, "channel": "chat", "text": "hi"}),
            )),
            422,
            "invalid",
        ),
        (
            "POST",
            "/v1/messages",
            Some(TOKEN),
            Some(body(
                json!({"conversation_id": 1, "customer_id": 1, "channel": "chat", "text": "hi", "skills": {"plantz": 3}}),
            )),
            422,
            "unknown_skill",
        ),
        (
            "POST",
            "/v1/messages",
            Some(TOKEN),
            Some(body(
                json!({"conversation_id": 1, "customer_id": 1, "channel": "chat", "text": "hi", "language": "de"}),
            )),
            422,
            "invalid",
        ),
        (
            "POST",
            "/v1/messages",
            Some(TOKEN),
            Some(format!("{{\"text\": \"{}\"}}", "a".repeat(5_000))),
            413,
            "body_too_large",
        ),
        (
            "POST",
            "/v1/messages/batch",
            Some(TOKEN),
            Some(body(
                json!({"messages": (0..4).map(|i| json!({"conversation_id": i, "customer_id": 1, "channel": "chat", "text": "hi"})).collect::<Vec<_>>()}),
            )),
            413,
            "batch_too_large",
        ),
        (
            "POST",
            "/v1/messages/batch",
            Some(TOKEN),
            Some(body(json!({"messages": []}))),
            422,
            "invalid",
        ),
        ("POST", "/v1/conversations/99/close", Some(TOKEN), None, 404, "not_found"),
        ("GET", "/v1/conversations/abc", Some(TOKEN), None, 404, "not_found"),
        ("GET", "/v1/conversations/a%0Ab", Some(TOKEN), None, 400, "bad_path"),
        ("GET", &long_path, Some(TOKEN), None, 400, "bad_path"),
        ("GET", "/v1/conversations?state=lost", Some(TOKEN), None, 400, "bad_query"),
        ("GET", "/v1/agents?limit=0", Some(TOKEN), None, 422, "invalid"),
        ("GET", "/v1/catalog/search?q=musa&limit=0", Some(TOKEN), None, 422, "invalid"),
        ("GET", "/v1/catalog/search", Some(TOKEN), None, 400, "bad_query"),
        ("PUT", "/v1/messages", Some(TOKEN), Some("{}".to_owned()), 405, "method_not_allowed"),
        (
            "POST",
            "/v1/messages",
            Some(TOKEN),
            Some(body(
                json!({"conversation_id": 1, "customer_id": 1, "channel": "chat", "text": "hi", "skills": {"": 3}}),
            )),
            422,
            "invalid",
        ),
        // An agent refused for its language registers none of its skills.
        (
            "POST",
            "/v1/agents",
            Some(TOKEN),
            Some(body(json!({"id": "x", "skills": {"brandnew": 5}, "languages": ["dutch"]}))),
            422,
            "invalid",
        ),
        (
            "POST",
            "/v1/messages",
            Some(TOKEN),
            Some(body(
                json!({"conversation_id": 1, "customer_id": 1, "channel": "chat", "text": "hi", "skills": {"brandnew": 3}}),
            )),
            422,
            "unknown_skill",
        ),
        ("GET", "/v1/nothing", Some(TOKEN), None, 404, "not_found"),
    ];
    for (method, path, token, request, status, code) in cases {
        let (got, answer) = http(daemon.http, method, path, token, request.as_deref()).await;
        assert_eq!(got, status, "{method} {path}: {answer}");
        if !code.is_empty() {
            assert_eq!(answer["error"]["code"], code, "{method} {path}: {answer}");
            assert!(answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
    // Not JSON at all, and bytes that are not UTF-8.
    let (status, _) =
        http_raw(daemon.http, "POST", "/v1/messages", Some(TOKEN), Some(&[0xFF, 0xFE, 0x00])).await;
    assert_eq!(status, 400);
    // A single message's error names the field, not `messages[0]`; a
    // batch's names the message.
    let single = json!({"conversation_id": 1, "customer_id": 1, "channel": "chat", "text": "hi", "language": "de"});
    let (_, answer) =
        http(daemon.http, "POST", "/v1/messages", Some(TOKEN), Some(&body(single.clone()))).await;
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("language: "), "{message}");
    let batch = json!({"messages": [single.clone(), single]});
    let (_, answer) =
        http(daemon.http, "POST", "/v1/messages/batch", Some(TOKEN), Some(&body(batch))).await;
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("messages[0].language: "), "{message}");
    // JSON without a Content-Type is fine; another Content-Type is 415.
    let hello = body(json!({"text": "hallo"}));
    let (status, answer) =
        support::http_typed(daemon.http, "POST", "/v1/score", TOKEN, &hello, None).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) =
        support::http_typed(daemon.http, "POST", "/v1/score", TOKEN, &hello, Some("text/plain"))
            .await;
    assert_eq!((status, answer["error"]["code"].as_str()), (415, Some("unsupported_media_type")));
    // Still serving.
    let (status, _) = http(daemon.http, "GET", "/healthz", None, None).await;
    assert_eq!(status, 200);
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_cannot_see_or_touch_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.tenants.push(other_tenant());
    let daemon = Spawned::start(config).await.unwrap();
    let text = json!({"conversation_id": 1, "customer_id": 5, "channel": "chat", "text": "hallo"});
    let (status, _) =
        http(daemon.http, "POST", "/v1/messages", Some(TOKEN), Some(&body(text))).await;
    assert_eq!(status, 200);
    let other = Some("other-token");
    let (status, _) = http(daemon.http, "GET", "/v1/conversations/1", other, None).await;
    assert_eq!(status, 404, "another tenant's conversation is invisible");
    let (status, _) = http(daemon.http, "POST", "/v1/conversations/1/close", other, None).await;
    assert_eq!(status, 404, "and cannot be closed");
    let (status, _) = http(daemon.http, "GET", "/v1/agents/1", other, None).await;
    assert_eq!(status, 404, "nor its agents seen");
    let (status, _) = http(daemon.http, "DELETE", "/v1/agents/1", other, None).await;
    assert_eq!(status, 404, "or removed");
    let (status, _) = http(daemon.http, "GET", "/v1/agents/1", Some(TOKEN), None).await;
    assert_eq!(status, 200, "the demo tenant still has its agent");
    let (status, _) = http(daemon.http, "GET", "/v1/catalog/search?q=musa", other, None).await;
    assert_eq!(status, 404, "the other tenant has no catalog");
    let stock = json!({"sku": "GC001", "stock": 1});
    let (status, answer) =
        http(daemon.http, "POST", "/v1/catalog/stock", other, Some(&body(stock))).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("no_catalog")));
    assert!(
        events(daemon.http, "other-token", Some(1), 1, Duration::from_millis(300)).await.is_empty()
    );
    let (binary, answer) = Binary::connect(daemon.binary, "other-token").await;
    assert!(matches!(answer, Frame::Welcome(ref w) if w.tenant == "other"), "{answer:?}");
    drop(binary);
    let mine = events(daemon.http, TOKEN, Some(1), 1, Duration::from_secs(5)).await;
    assert_eq!(mine.len(), 1);
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_batches_are_acknowledged_in_order_and_bad_frames_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Spawned::start(config(dir.path())).await.unwrap();
    let (_, answer) = Binary::connect(daemon.binary, "nobody-token").await;
    assert!(matches!(answer, Frame::Error(ref e) if e.code == "unauthorized"), "{answer:?}");

    let (mut client, answer) = Binary::connect(daemon.binary, TOKEN).await;
    assert!(matches!(answer, Frame::Welcome(ref w) if w.tenant == "demo"), "{answer:?}");
    for batch_id in 1..=20u64 {
        let messages = (0..50)
            .map(|i| message(batch_id * 100 + i, i, "is de olijfboom op voorraad?"))
            .collect();
        client.send_batch(&MessageBatch { batch_id, messages }).await;
    }
    let mut last_seq = 0;
    for batch_id in 1..=20u64 {
        match client.next().await {
            Some(Frame::Ack(ack)) => {
                assert_eq!(ack.batch_id, batch_id, "acks come in batch order");
                assert_eq!(ack.accepted, 50);
                assert!(ack.last_seq >= last_seq + 50);
                last_seq = ack.last_seq;
            }
            other => panic!("batch {batch_id}: {other:?}"),
        }
    }
    // A batch that breaks a rule gets an error naming it; the connection goes on.
    let mut bad = message(1, 1, "x");
    bad.channel = 9;
    client.send_batch(&MessageBatch { batch_id: 21, messages: vec![bad] }).await;
    match client.next().await {
        Some(Frame::Error(error)) => {
            assert_eq!((error.batch_id, error.code.as_str()), (21, "bad_batch"));
            assert!(error.message.contains("channel"), "{}", error.message);
        }
        other => panic!("{other:?}"),
    }
    client.send_batch(&MessageBatch { batch_id: 22, messages: vec![message(1, 1, "hoi")] }).await;
    assert!(matches!(client.next().await, Some(Frame::Ack(ack)) if ack.batch_id == 22));

    // An oversized frame closes the connection with a reason.
    client.framed.get_mut().write_all(&(64u32 << 20).to_le_bytes()).await.unwrap();
    match client.next().await {
        Some(Frame::Error(error)) => assert_eq!(error.code, "frame_too_large"),
        other => panic!("{other:?}"),
    }
    // Garbage and a truncated frame from other clients do not hurt.
    let mut raw = TcpStream::connect(daemon.binary).await.unwrap();
    raw.write_all(&[9, 0, 0, 0, 0xEE, 1, 2]).await.unwrap();
    drop(raw);
    let mut raw = TcpStream::connect(daemon.binary).await.unwrap();
    raw.write_all(&[200, 0, 0, 0, 1]).await.unwrap();
    drop(raw);
    let (mut client, _) = Binary::connect(daemon.binary, TOKEN).await;
    client
        .send_batch(&MessageBatch { batch_id: 1, messages: vec![message(1, 1, "nog iets")] })
        .await;
    assert!(matches!(client.next().await, Some(Frame::Ack(_))));
    daemon.shutdown().await.unwrap();
}

/// Opens the live event stream (no `from`) and returns once the daemon has
/// answered with its head: the stream then starts after the event that was
/// the latest at that moment, so it carries everything that happens next.
async fn subscribe_live(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /v1/events HTTP/1.1\r\nhost: loketd\r\nauthorization: Bearer {TOKEN}\r\naccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let head =
        read_until(&mut stream, "the event stream's head", |text| text.contains("\r\n\r\n")).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    stream
}

/// Reads `stream` until the text read so far is `done`, and returns it;
/// fails, naming `what`, if the connection ends or five seconds pass first.
async fn read_until(stream: &mut TcpStream, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&raw);
        if done(&text) {
            return text.into_owned();
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => raw.extend_from_slice(&buf[..n]),
            Ok(Ok(_)) => panic!("the connection ended before {what}: {text:?}"),
            Ok(Err(error)) => panic!("reading {what}: {error}"),
            Err(_) => panic!("no {what} within 5 s: {text:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_resumes_from_a_sequence_number_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Spawned::start(config(dir.path())).await.unwrap();
    for conversation in 1..=5u64 {
        let text = json!({"conversation_id": conversation, "customer_id": conversation, "channel": "chat", "text": "hoi"});
        http(daemon.http, "POST", "/v1/messages", Some(TOKEN), Some(&body(text))).await;
    }
    let all = events(daemon.http, TOKEN, Some(1), 5, Duration::from_secs(5)).await;
    assert_eq!(all.iter().map(|e| e.1).collect::<Vec<_>>(), (1..=5).map(Some).collect::<Vec<_>>());
    let tail = events(daemon.http, TOKEN, Some(4), 2, Duration::from_secs(5)).await;
    assert_eq!(tail.iter().map(|e| e.1).collect::<Vec<_>>(), [Some(4), Some(5)]);
    assert_eq!(tail[0].2["conversation"], "4");

    // Live: a subscriber without `from` gets what happens next.
    let mut live = subscribe_live(daemon.http).await;
    let text = json!({"conversation_id": 6, "customer_id": 6, "channel": "chat", "text": "hoi"});
    http(daemon.http, "POST", "/v1/messages", Some(TOKEN), Some(&body(text))).await;
    let event = read_until(&mut live, "the live event", |text| {
        text.find("data:").is_some_and(|data| text[data..].contains("\n\n"))
    })
    .await;
    let ids: Vec<&str> =
        event.lines().filter_map(|l| l.strip_prefix("id:")).map(str::trim).collect();
    assert_eq!(ids, ["6"], "{event}");
    drop(live);
    daemon.shutdown().await.unwrap();

    // After a restart from the final snapshot the old events are gone: a
    // subscriber asking for them is told, then gets the new ones.
    let daemon = Spawned::start(config(dir.path())).await.unwrap();
    let text = json!({"conversation_id": 7, "customer_id": 7, "channel": "chat", "text": "hoi"});
    http(daemon.http, "POST", "/v1/messages", Some(TOKEN), Some(&body(text))).await;
    let resumed = events(daemon.http, TOKEN, Some(2), 2, Duration::from_secs(5)).await;
    assert_eq!(resumed[0].0, "gap", "{resumed:?}");
    assert_eq!(resumed[0].2["oldest"], 7);
    assert_eq!(resumed[1].1, Some(7), "sequence numbers continue");
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_is_rebuilt_from_the_journal_without_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.snapshot.on_shutdown = false;
    let daemon = Spawned::start(config.clone()).await.unwrap();
    for conversation in 1..=30u64 {
        let text = json!({"conversation_id": conversation, "customer_id": conversation % 7,
            "channel": "chat", "text": "wat kost de citroenboom?"});
        http(daemon.http, "POST", "/v1/messages", Some(TOKEN), Some(&body(text))).await;
    }
    http(daemon.http, "POST", "/v1/conversations/3/close", Some(TOKEN), None).await;
    let (_, before) = http(daemon.http, "GET", "/v1/conversations/4", Some(TOKEN), None).await;
    let before_events =
        events(daemon.http, TOKEN, Some(1), 1_000, Duration::from_millis(500)).await;
    daemon.shutdown().await.unwrap();
    let snapshots = std::fs::read_dir(dir.path().join("tenants/demo/snapshots")).unwrap().count();
    assert_eq!(snapshots, 0, "start-up must replay the whole journal");
    let daemon = Spawned::start(config).await.unwrap();
    let (_, after) = http(daemon.http, "GET", "/v1/conversations/4", Some(TOKEN), None).await;
    assert_eq!(after, before);
    let after_events = events(daemon.http, TOKEN, Some(1), 1_000, Duration::from_millis(500)).await;
    assert_eq!(after_events, before_events, "replay gives the same decisions and numbers");
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_snapshots_are_written_in_the_background_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.snapshot.every_records = 4;
    config.snapshot.keep = 2;
    config.snapshot.on_shutdown = false;
    let daemon = Spawned::start(config.clone()).await.unwrap();
    let snapshots_dir = dir.path().join("tenants/demo/snapshots");
    let snapshot_files = || {
        std::fs::read_dir(&snapshots_dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| !name.ends_with(".tmp"))
            .count()
    };
    for conversation in 1..=40u64 {
        let text = json!({"conversation_id": conversation, "customer_id": conversation % 5,
            "channel": "chat", "text": "is de olijfboom op voorraad?"});
        let (status, _) =
            http(daemon.http, "POST", "/v1/messages", Some(TOKEN), Some(&body(text))).await;
        assert_eq!(status, 200);
    }
    // Written off the sequencer thread: wait for them, and for the pruning.
    let mut files = 0;
    for _ in 0..100 {
        files = snapshot_files();
        if files == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(files, 2, "several periodic snapshots, pruned to `keep`");
    let (_, before) = http(daemon.http, "GET", "/v1/conversations/39", Some(TOKEN), None).await;
    let before_events =
        events(daemon.http, TOKEN, Some(1), 1_000, Duration::from_millis(500)).await;
    daemon.shutdown().await.unwrap();
    // The newest periodic snapshot plus the journal after it give the same state.
    let daemon = Spawned::start(config).await.unwrap();
    let (_, after) = http(daemon.http, "GET", "/v1/conversations/39", Some(TOKEN), None).await;
    assert_eq!(after, before);
    // Numbering goes on where it stopped.
    let last_seq = before_events.last().and_then(|(_, seq, _)| *seq).unwrap();
    let text = json!({"conversation_id": 41, "customer_id": 1, "channel": "chat", "text": "hoi"});
    let (_, answer) =
        http(daemon.http, "POST", "/v1/messages", Some(TOKEN), Some(&body(text))).await;
    assert_eq!(answer["decision"]["seq"], last_seq + 1, "{answer}");
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_customer_removes_them_from_memory_journal_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Spawned::start(config(dir.path())).await.unwrap();
    let secret = "mijn adres is Geheimstraat 12";
    for (conversation, customer, text) in
        [(1u64, 42u64, secret), (2, 43, "hallo"), (3, 42, "nog een vraag")]
    {
        let message = json!({"conversation_id": conversation, "customer_id": customer, "channel": "chat", "text": text});
        http(daemon.http, "POST", "/v1/messages", Some(TOKEN), Some(&body(message))).await;
    }
    // A snapshot that holds the customer, to be sure it goes too.
    daemon.shutdown().await.unwrap();
    let daemon = Spawned::start(config(dir.path())).await.unwrap();
    let (status, report) = http(daemon.http, "DELETE", "/v1/customers/42", Some(TOKEN), None).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["erased"]["conversations"], json!(["1", "3"]));
    let (status, _) = http(daemon.http, "GET", "/v1/conversations/1", Some(TOKEN), None).await;
    assert_eq!(status, 404);
    let (status, _) = http(daemon.http, "GET", "/v1/conversations/2", Some(TOKEN), None).await;
    assert_eq!(status, 200, "other customers stay");
    let files = walk(dir.path());
    assert!(!files.is_empty());
    for (path, bytes) in files {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{} still holds the erased text",
            path.display()
        );
    }
    daemon.shutdown().await.unwrap();
    let daemon = Spawned::start(config(dir.path())).await.unwrap();
    let (status, _) = http(daemon.http, "GET", "/v1/conversations/3", Some(TOKEN), None).await;
    assert_eq!(status, 404, "erased for good");
    daemon.shutdown().await.unwrap();
}

fn walk(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_rate_limits() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    // Metrics are process-wide: a tenant of its own keeps the counts exact.
    config.tenants[0].name = "metered".to_owned();
    config.tenants[0].rate_limit = 10;
    config.tenants[0].rate_burst = 10;
    let daemon = Spawned::start(config).await.unwrap();
    let batch = |n: u64| {
        body(
            json!({"messages": (0..n).map(|i| json!({"conversation_id": i + 1, "customer_id": 1, "channel": "chat", "text": "hoi"})).collect::<Vec<_>>()}),
        )
    };
    let (status, _) =
        http(daemon.http, "POST", "/v1/messages/batch", Some(TOKEN), Some(&batch(8))).await;
    assert_eq!(status, 200);
    let (status, error) =
        http(daemon.http, "POST", "/v1/messages/batch", Some(TOKEN), Some(&batch(8))).await;
    assert_eq!((status, error["error"]["code"].as_str()), (429, Some("rate_limited")));
    let (status, _) = http(daemon.http, "GET", "/readyz", None, None).await;
    assert_eq!(status, 200);
    let (status, text) = http_raw(daemon.http, "GET", "/metrics", None, None).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(text).unwrap();
    for name in [
        "loketd_messages_total{tenant=\"metered\"} 8",
        "loketd_events_total{tenant=\"metered\",reason=\"bot_first\"} 8",
        "loketd_queue_depth",
        "loketd_agent_load_ratio{tenant=\"metered\"}",
        "loketd_agent_capacity{tenant=\"metered\"}",
        "loketd_agents_at_capacity{tenant=\"metered\"}",
        "loketd_ingest_to_decision_seconds_bucket",
        "loketd_scoring_seconds_bucket",
        "loketd_sequencer_wait_seconds_bucket",
        "loketd_journal_fsync_seconds_bucket",
        "loketd_rate_limited_messages_total{tenant=\"metered\"} 8",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_the_same_data_directory_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Spawned::start(config(dir.path())).await.unwrap();
    let error = Spawned::start(config(dir.path())).await.unwrap_err().to_string();
    assert!(error.contains("locked"), "{error}");
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_too_slow_to_send_its_headers_is_disconnected() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.limits.header_timeout_ms = 300;
    let daemon = Spawned::start(config).await.unwrap();

    // Half a request, then silence: the daemon hangs up after the timeout.
    let mut slow = TcpStream::connect(daemon.http).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: loketd\r\n").await.unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the slow connection was never closed");
    assert!(started.elapsed() >= Duration::from_millis(200), "closed too early");
    assert!(!String::from_utf8_lossy(&rest).contains("200 OK"), "answered a half request");

    // An idle keep-alive connection is closed the same way after its answer.
    let mut idle = TcpStream::connect(daemon.http).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: loketd\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), idle.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the idle keep-alive connection was never closed");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"), "{answer:?}");

    // Meanwhile everyone else is served.
    let (status, _) = http(daemon.http, "GET", "/healthz", None, None).await;
    assert_eq!(status, 200);
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platforms_own_ids_work_everywhere_and_survive_restarts_and_erasure() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    let agents = dir.path().join("agents.jsonl");
    std::fs::write(
        &agents,
        r#"{"id": "anna", "skills": {"sales": 8}, "languages": ["nl", "en"]}
{"id": "bram-2", "skills": {"sales": 5}, "languages": ["nl"]}
"#,
    )
    .unwrap();
    config.tenants[0].agents = Some(agents);
    config.tenants[0].demo_agents = false;
    config.tenants[0].router.bot_first = false;
    config.tenants[0].router.affinity_lookback_ms = 0;
    config.snapshot.on_shutdown = false;
    let daemon = Spawned::start(config.clone()).await.unwrap();
    let uuid = "0b8e0c8e-5a4f-4f7e-9d5c-1f2a3b4c5d6e";
    let phone = "+31 6 1234 5678";
    let text = json!({"conversation_id": uuid, "customer_id": phone, "channel": "whatsapp",
        "text": "wat kost deze bank?", "skills": {"sales": 6}});
    let (status, answer) =
        http(daemon.http, "POST", "/v1/messages", Some(TOKEN), Some(&body(text))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["decision"]["conversation"], uuid);
    assert_eq!(answer["decision"]["agent"], "anna", "only anna has sales at 6");
    let path = format!("/v1/conversations/{uuid}");
    let (status, view) = http(daemon.http, "GET", &path, Some(TOKEN), None).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!((view["id"].as_str(), view["customer"].as_str()), (Some(uuid), Some(phone)));
    assert_eq!(view["agent"], "anna");
    let (_, anna) = http(daemon.http, "GET", "/v1/agents/anna", Some(TOKEN), None).await;
    assert_eq!(anna["holding"], json!([uuid]));
    // An integer and its decimal string are one id.
    let numeric =
        json!({"conversation_id": 77, "customer_id": 5, "channel": "chat", "text": "hoi"});
    http(daemon.http, "POST", "/v1/messages", Some(TOKEN), Some(&body(numeric))).await;
    let (status, view) = http(daemon.http, "GET", "/v1/conversations/77", Some(TOKEN), None).await;
    assert_eq!((status, view["id"].as_str()), (200, Some("77")));
    let transfer = json!({"agent": "bram-2"});
    let (status, answer) = http(
        daemon.http,
        "POST",
        "/v1/conversations/77/transfer",
        Some(TOKEN),
        Some(&body(transfer)),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["agent"], "bram-2");
    let unknown = json!({"agent": "nobody"});
    let (status, answer) = http(
        daemon.http,
        "POST",
        "/v1/conversations/77/transfer",
        Some(TOKEN),
        Some(&body(unknown)),
    )
    .await;
    assert_eq!(status, 404);
    assert!(answer["error"]["message"].as_str().unwrap().contains("\"nobody\""), "{answer}");
    // Errors name the caller's ids, never the router's integers.
    let offer = json!({"agent": "anna", "accept": true});
    let (status, answer) =
        http(daemon.http, "POST", &format!("{path}/offer"), Some(TOKEN), Some(&body(offer))).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (409, Some("conflict")));
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains(uuid) && message.contains("\"anna\""), "{message}");
    // A PATCH applies nothing unless all of it is valid.
    let bad = json!({"skills": {"sales": 2}, "capacity": {"chat": -1}});
    let (status, _) =
        http(daemon.http, "PATCH", "/v1/agents/anna", Some(TOKEN), Some(&body(bad))).await;
    assert_eq!(status, 422);
    let (_, anna) = http(daemon.http, "GET", "/v1/agents/anna", Some(TOKEN), None).await;
    assert_eq!(anna["skills"][0]["level"], 8, "unchanged: {anna}");
    let stream = events(daemon.http, TOKEN, Some(1), 3, Duration::from_secs(5)).await;
    assert_eq!(stream[0].2["conversation"], uuid);
    assert_eq!(stream[0].2["agent"], "anna");
    let before = events(daemon.http, TOKEN, Some(1), 1_000, Duration::from_millis(300)).await;
    daemon.shutdown().await.unwrap();

    // From the journal alone: the same ids, the same events.
    let daemon = Spawned::start(config.clone()).await.unwrap();
    let (status, view) = http(daemon.http, "GET", &path, Some(TOKEN), None).await;
    assert_eq!((status, view["agent"].as_str()), (200, Some("anna")));
    let after = events(daemon.http, TOKEN, Some(1), 1_000, Duration::from_millis(300)).await;
    assert_eq!(after, before);
    // A closed conversation's id may open a new conversation.
    let (status, _) = http(daemon.http, "POST", &format!("{path}/close"), Some(TOKEN), None).await;
    assert_eq!(status, 200);
    let (status, _) = http(daemon.http, "GET", &path, Some(TOKEN), None).await;
    assert_eq!(status, 404);
    let again = json!({"conversation_id": uuid, "customer_id": phone, "channel": "chat", "text": "nog een vraag"});
    let (status, answer) =
        http(daemon.http, "POST", "/v1/messages", Some(TOKEN), Some(&body(again))).await;
    assert_eq!((status, answer["decision"]["conversation"].as_str()), (200, Some(uuid)));
    // An earlier conversation of the same customer, closed before the
    // erasure: its events must go with it.
    let earlier = json!({"conversation_id": "wa-earlier", "customer_id": phone, "channel": "chat", "text": "eerder"});
    http(daemon.http, "POST", "/v1/messages", Some(TOKEN), Some(&body(earlier))).await;
    http(daemon.http, "POST", "/v1/conversations/wa-earlier/close", Some(TOKEN), None).await;
    let stream = events(daemon.http, TOKEN, Some(1), 1_000, Duration::from_millis(300)).await;
    assert!(stream.iter().any(|e| e.2["conversation"] == "wa-earlier" && e.2["type"] == "closed"));
    // Erasure by the customer's own id takes their key with the rest, from
    // every file as from memory.
    let (status, report) =
        http(daemon.http, "DELETE", "/v1/customers/%2B31%206%201234%205678", Some(TOKEN), None)
            .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["erased"]["customer"], phone);
    assert_eq!(report["erased"]["conversations"], json!([uuid]));
    let stream = events(daemon.http, TOKEN, Some(1), 1_000, Duration::from_millis(300)).await;
    assert!(
        !stream.iter().any(|e| e.2["conversation"] == "wa-earlier"),
        "the earlier conversation's events are gone"
    );
    let erased: Vec<_> = stream.iter().filter(|e| e.2["type"] == "erased").collect();
    assert_eq!(erased.len(), 1, "{stream:?}");
    assert_eq!(erased[0].2["conversation"], uuid, "the erasure event names what it erased");
    for (file, bytes) in walk(dir.path()) {
        if file.extension().is_some_and(|e| e == "jsonl") {
            continue;
        }
        assert!(
            !bytes.windows(phone.len()).any(|w| w == phone.as_bytes()),
            "{} still holds the erased customer's id",
            file.display()
        );
    }
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_message_that_asks_for_a_person_doubts_or_complains_skips_the_bots() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Spawned::start(config(dir.path())).await.unwrap();
    for (conversation, text, trigger) in [
        (1, "mag ik een medewerker spreken? ik wil een klacht indienen", "human_request"),
        (2, "dit is echt belachelijk, al drie weken niks gehoord", "complaint"),
        (3, "ik twijfel tussen de twee jassen", "doubt"),
    ] {
        let message = json!({"conversation_id": conversation, "customer_id": conversation,
            "channel": "chat", "text": text});
        let (status, answer) =
            http(daemon.http, "POST", "/v1/messages", Some(TOKEN), Some(&body(message))).await;
        assert_eq!(status, 200, "{answer}");
        let decision = &answer["decision"];
        assert_eq!(decision["reason"], "escalation", "{text}: {answer}");
        assert_eq!(decision["trigger"], trigger, "{text}: {answer}");
        let agent: u64 = decision["agent"].as_str().unwrap().parse().unwrap();
        assert!(agent < loketd::demo::FIRST_BOT, "{text}: a person, not a bot: {answer}");
    }
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_conversations_and_queues_can_be_listed_and_waits_explain_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.tenants[0].allow_new_skills = true;
    config.tenants[0].router.bot_first = false;
    let daemon = Spawned::start(config).await.unwrap();
    let (status, page) = http(daemon.http, "GET", "/v1/agents?limit=30", Some(TOKEN), None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!((page["total"].as_u64(), page["next_offset"].as_u64()), (Some(100), Some(30)));
    assert_eq!(page["agents"].as_array().unwrap().len(), 30);
    assert_eq!(page["agents"][0]["id"], "1");
    let (_, last) =
        http(daemon.http, "GET", "/v1/agents?limit=30&offset=90", Some(TOKEN), None).await;
    assert_eq!(last["agents"].as_array().unwrap().len(), 10);
    assert!(last.get("next_offset").is_none(), "{last}");

    // Nobody has skill "bonsai": with allow_new_skills the conversations
    // wait, and say why.
    for conversation in ["k-1", "k-2"] {
        let message = json!({"conversation_id": conversation, "customer_id": conversation,
            "channel": "email", "language": "en", "text": "how do i prune a bonsai", "skills": {"bonsai": 4}});
        let (status, answer) =
            http(daemon.http, "POST", "/v1/messages", Some(TOKEN), Some(&body(message))).await;
        assert_eq!(status, 200, "{answer}");
        let decision = &answer["decision"];
        assert_eq!(decision["type"], "queued", "{answer}");
        assert_eq!(decision["reason"], "no_eligible_agent");
        assert_eq!(decision["why"]["code"], "no_skill", "{answer}");
        assert_eq!(decision["why"]["skill"], "bonsai");
        assert_eq!(decision["why"]["level"], 4);
        assert!(decision["why"]["message"].as_str().unwrap().contains("bonsai"));
    }
    let stream = events(daemon.http, TOKEN, Some(1), 2, Duration::from_secs(5)).await;
    assert_eq!(stream[0].2["why"]["code"], "no_skill", "the event stream explains too");
    let (status, queued) =
        http(daemon.http, "GET", "/v1/conversations?state=queued&limit=1", Some(TOKEN), None).await;
    assert_eq!(status, 200, "{queued}");
    assert_eq!((queued["total"].as_u64(), queued["next_offset"].as_u64()), (Some(2), Some(1)));
    assert_eq!(queued["conversations"][0]["id"], "k-1", "oldest first");
    let required = queued["conversations"][0]["required"].as_array().unwrap();
    assert!(required.iter().any(|r| r["skill"] == "bonsai" && r["level"] == 4), "{queued}");
    let (_, assigned) =
        http(daemon.http, "GET", "/v1/conversations?state=assigned", Some(TOKEN), None).await;
    assert_eq!(assigned["total"], 0);
    let (status, queues) = http(daemon.http, "GET", "/v1/queues", Some(TOKEN), None).await;
    assert_eq!(status, 200, "{queues}");
    assert_eq!(queues["queues"].as_array().unwrap().len(), 1, "{queues}");
    let lane = &queues["queues"][0];
    assert_eq!((lane["channel"].as_str(), lane["language"].as_str()), (Some("email"), Some("en")));
    assert_eq!(lane["depth"], 2);
    assert!(lane["oldest_wait_ms"].as_u64().is_some());
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_configuration_runs_with_its_own_agents_and_catalog() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/loketd.toml");
    let mut example = loketd::Config::load(Some(&path)).expect("examples/loketd.toml loads");
    let dir = tempfile::tempdir().unwrap();
    let test = config(dir.path());
    example.listen = test.listen;
    example.binary_listen = test.binary_listen;
    example.data_dir = test.data_dir;
    let daemon = Spawned::start(example).await.unwrap();
    let token = Some("tuincentrum-token");
    let (status, page) = http(daemon.http, "GET", "/v1/agents", token, None).await;
    assert_eq!(status, 200, "{page}");
    let ids: Vec<&str> =
        page["agents"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["anna", "bram", "claire", "loketbot"]);
    let (status, found) =
        http(daemon.http, "GET", "/v1/catalog/search?q=bananenboom", token, None).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["hits"][0]["name"], "Musa basjoo");
    let question = json!({"conversation_id": "wa-0612345678-1", "customer_id": "+31612345678",
        "channel": "whatsapp", "text": "mag ik een medewerker spreken over een olijfboom?"});
    let (status, answer) =
        http(daemon.http, "POST", "/v1/messages", token, Some(&body(question))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["decision"]["reason"], "escalation", "{answer}");
    // A service question (service. needs orders): of bram and claire, only
    // claire takes WhatsApp.
    assert_eq!(answer["intent"], "service.human");
    assert_eq!(answer["decision"]["agent"], "claire", "{answer}");
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_that_cannot_start_says_what_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.tenants[0].catalog = Some(dir.path().join("missing.csv"));
    let Err(error) = Spawned::start(config).await else { panic!("no catalog, no start") };
    let mut chain = vec![error.to_string()];
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        chain.push(cause.to_string());
        source = cause.source();
    }
    assert_eq!(chain[0], "tenant demo");
    assert!(chain[1].starts_with("cannot open catalog ") && chain[1].ends_with("missing.csv"));
    assert!(chain[2].contains("No such file"), "the cause is kept: {chain:?}");
    assert_eq!(chain.len(), 3, "each cause once: {chain:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_and_orders_show_in_reports_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    let mut quiet = other_tenant();
    quiet.reports.enabled = false;
    config.tenants.push(quiet);
    let daemon = Spawned::start(config).await.unwrap();
    let post = |path: &'static str, value: Value| {
        let addr = daemon.http;
        async move { http(addr, "POST", path, Some(TOKEN), Some(&body(value))).await }
    };
    let agent =
        json!({"id": "anna", "languages": ["nl", "en"], "capacity": {"chat": 5, "total": 5}});
    assert_eq!(post("/v1/agents", agent).await.0, 200);
    let message = json!({"conversation_id": "r-1", "customer_id": "k-1", "channel": "chat",
        "text": "heeft u de bananenboom nog op voorraad?"});
    assert_eq!(post("/v1/messages", message).await.0, 200);
    let (status, replied) = post("/v1/conversations/r-1/replies", json!({"agent": "anna"})).await;
    assert_eq!(status, 200, "{replied}");
    assert_eq!(replied["conversation"], "r-1");
    let (status, refused) =
        post("/v1/conversations/r-1/orders", json!({"value": 12.5, "currency": "EURO"})).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (422, Some("invalid")), "{refused}");
    let (status, ordered) =
        post("/v1/conversations/r-1/orders", json!({"value": 12.5, "currency": "eur"})).await;
    assert_eq!(status, 200, "{ordered}");
    assert_eq!(
        (ordered["value"].as_f64(), ordered["currency"].as_str()),
        (Some(12.5), Some("EUR"))
    );
    let (status, _) = post("/v1/conversations/nope/replies", json!({"agent": "anna"})).await;
    assert_eq!(status, 404);

    let (status, report) =
        http(daemon.http, "GET", "/v1/reports?group_by=channel,agent", Some(TOKEN), None).await;
    assert_eq!(status, 200, "{report}");
    let totals = &report["totals"];
    assert_eq!((totals["offered"].as_u64(), totals["answered"].as_u64()), (Some(1), Some(1)));
    assert_eq!(totals["revenue"], json!({"EUR": 12.5}));
    // The demo roster's agents are staffed too: they have agent rows, with
    // nothing offered. Anna answered the one conversation (a bot held it:
    // bot first, so she held nothing). Every staffed person has an
    // occupancy; channels have none.
    let groups = report["groups"].as_array().unwrap();
    let offered: Vec<(&str, u64)> = groups
        .iter()
        .filter(|row| row["offered"].as_u64() != Some(0))
        .map(|row| (row["key"].as_str().unwrap(), row["offered"].as_u64().unwrap()))
        .collect();
    assert_eq!(offered, [("chat", 1), ("anna", 1)]);
    for row in groups {
        let occupancy = row["occupancy"].as_f64();
        match row["group"].as_str() {
            Some("agent") => assert!(occupancy.is_some_and(|o| o >= 0.0), "{row}"),
            _ => assert_eq!(occupancy, None, "{row}"),
        }
    }
    let (status, csv) =
        http_raw(daemon.http, "GET", "/v1/reports?format=csv", Some(TOKEN), None).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8(csv).unwrap().starts_with("start,end,group,key,offered,"));
    for (query, code) in [
        ("interval=2h", "bad_query"),
        ("group_by=colour", "bad_query"),
        ("format=xml", "bad_query"),
        ("from=yesterday", "bad_query"),
    ] {
        let (status, error) =
            http(daemon.http, "GET", &format!("/v1/reports?{query}"), Some(TOKEN), None).await;
        assert_eq!(
            (status, error["error"]["code"].as_str()),
            (400, Some(code)),
            "{query}: {error}"
        );
    }
    let (status, off) = http(daemon.http, "GET", "/v1/reports", Some("other-token"), None).await;
    assert_eq!((status, off["error"]["code"].as_str()), (404, Some("reports_off")), "{off}");

    let (status, text) = http_raw(daemon.http, "GET", "/metrics", None, None).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(text).unwrap();
    let line = |prefix: &str| text.lines().find(|l| l.starts_with(prefix)).map(str::to_owned);
    assert!(
        line(r#"loketd_first_response_seconds_count{tenant="demo",channel="chat"} 1"#).is_some(),
        "{text}"
    );
    assert!(
        line(r#"loketd_service_level_ratio{tenant="demo",channel="chat"} 1"#).is_some(),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sla_warnings_and_breaches_reach_the_event_stream_as_time_passes() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    // A tenant with nobody to answer and a chat target of 300 ms (warning
    // at half of it): the conversation waits, and the clock runs out.
    let mut tight = other_tenant();
    tight.reports.sla.warning_permille = 500;
    tight.reports.sla.defaults.chat.first_reply_ms = 300;
    config.tenants.push(tight);
    let daemon = Spawned::start(config).await.unwrap();
    let message = json!({"conversation_id": "wacht-1", "customer_id": "k-1", "channel": "chat",
        "text": "waar blijft mijn bestelling?"});
    let (status, answer) =
        http(daemon.http, "POST", "/v1/messages", Some("other-token"), Some(&body(message))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["decision"]["type"], "queued", "{answer}");
    // No request comes in: the sequencer's own tick fires the timers.
    let stream = events(daemon.http, "other-token", Some(1), 3, Duration::from_secs(10)).await;
    let sla: Vec<(String, String, String)> = stream
        .iter()
        .filter(|(_, _, data)| data["type"].as_str().is_some_and(|t| t.starts_with("sla_")))
        .map(|(_, _, data)| {
            let text = |name: &str| data[name].as_str().unwrap_or_default().to_owned();
            (text("type"), text("clock"), text("conversation"))
        })
        .collect();
    let expected = |kind: &str| (kind.to_owned(), "first_reply".to_owned(), "wacht-1".to_owned());
    assert_eq!(sla, [expected("sla_warning"), expected("sla_breached")], "{stream:?}");
    let breach = stream.iter().find(|(_, _, d)| d["type"] == "sla_breached").unwrap();
    assert_eq!(breach.2["target_ms"], 300);
    assert!(breach.1.is_some(), "numbered in the tenant's stream");
}
