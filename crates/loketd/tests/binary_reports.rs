//! Replies and orders over the binary protocol (version 3): the same
//! commands, checks, journal records and reports as over HTTP.

mod support;

use std::net::SocketAddr;

use futures_util::SinkExt;
use loket_wire::{
    Frame, Hello, Id, MessageBatch, OrderBatch, ReplyBatch, WireMessage, WireOrder, WireReply,
    channel, encode_orders, encode_replies,
};
use loketd::Spawned;
use serde_json::{Value, json};
use support::{Binary, TOKEN, config, http, other_tenant};
use tokio::io::AsyncWriteExt;

const HTTP_TOKEN: &str = "other-token";
const BINARY_TOKEN: &str = "binary-token";

/// How far ahead of the messages the timed replies are stamped.
const REPLY_AFTER_MS: u64 = 30_000;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

fn chat(conversation: &str) -> WireMessage {
    WireMessage {
        conversation_id: Id::Text(conversation.to_owned()),
        customer_id: Id::Text(format!("k-{conversation}")),
        channel: channel::CHAT,
        text: "heeft u de bananenboom nog op voorraad?".to_owned(),
        ..WireMessage::default()
    }
}

fn reply(conversation: &str, agent: &str, at_ms: Option<u64>) -> WireReply {
    WireReply {
        conversation_id: Id::Text(conversation.to_owned()),
        agent_id: Id::Text(agent.to_owned()),
        at_ms,
    }
}

fn order(conversation: &str, value_minor: i64, currency: &str) -> WireOrder {
    WireOrder {
        conversation_id: Id::Text(conversation.to_owned()),
        value_minor,
        currency: currency.to_owned(),
        at_ms: None,
    }
}

async fn send_replies(client: &mut Binary, batch: &ReplyBatch) {
    let mut bytes = Vec::new();
    encode_replies(batch, &mut bytes).unwrap();
    client.framed.get_mut().write_all(&bytes).await.unwrap();
}

async fn send_orders(client: &mut Binary, batch: &OrderBatch) {
    let mut bytes = Vec::new();
    encode_orders(batch, &mut bytes).unwrap();
    client.framed.get_mut().write_all(&bytes).await.unwrap();
}

/// The next answer must be an `Ack` for `batch_id` accepting `accepted`.
async fn acked(client: &mut Binary, batch_id: u64, accepted: u32) -> u64 {
    match client.next().await {
        Some(Frame::Ack(ack)) if ack.batch_id == batch_id && ack.accepted == accepted => {
            ack.last_seq
        }
        other => panic!("batch {batch_id}: want an ack of {accepted}, got {other:?}"),
    }
}

/// The next answer must be an `Error` for `batch_id` with `code`; returns
/// its message.
async fn refused(client: &mut Binary, batch_id: u64, code: &str) -> String {
    match client.next().await {
        Some(Frame::Error(error)) if error.batch_id == batch_id && error.code == code => {
            error.message
        }
        other => panic!("batch {batch_id}: want a {code} error, got {other:?}"),
    }
}

async fn post(addr: SocketAddr, path: &str, value: Value) -> (u16, Value) {
    http(addr, "POST", path, Some(HTTP_TOKEN), Some(&value.to_string())).await
}

async fn totals(addr: SocketAddr, token: &str) -> Value {
    let (status, report) = http(addr, "GET", "/v1/reports?interval=1d", Some(token), None).await;
    assert_eq!(status, 200, "{report}");
    report["totals"].clone()
}

/// The measures both paths must agree on exactly.
fn counts(totals: &Value) -> Value {
    json!({
        "offered": totals["offered"],
        "answered": totals["answered"],
        "conversions": totals["conversions"],
        "revenue": totals["revenue"],
        "first_response_count": totals["first_response_ms"]["p50"].is_number(),
    })
}

/// The same story told twice, to tenant `binary` over the binary protocol
/// and to tenant `other` over HTTP: three chats, replies by a person (two
/// stamped 30 s after the messages, one at the server's time), two orders.
/// The reports agree; refusals name the item; restart keeps it all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_and_orders_over_binary_report_as_over_http() {
    let dir = tempfile::tempdir().unwrap();
    // Two tenants alike but for their names (no demo agents or bots).
    let mut daemon_config = config(dir.path());
    daemon_config.tenants.push(other_tenant());
    let mut binary_tenant = other_tenant();
    binary_tenant.name = "binary".to_owned();
    binary_tenant.tokens = vec![BINARY_TOKEN.to_owned()];
    daemon_config.tenants.push(binary_tenant);
    let daemon = Spawned::start(daemon_config.clone()).await.unwrap();
    let agent =
        json!({"id": "anna", "languages": ["nl", "en"], "capacity": {"chat": 10, "total": 10}});
    for token in [BINARY_TOKEN, HTTP_TOKEN] {
        let (status, body) =
            http(daemon.http, "POST", "/v1/agents", Some(token), Some(&agent.to_string())).await;
        assert_eq!(status, 200, "{body}");
    }
    let conversations = ["b-1", "b-2", "b-3"];

    // Over HTTP, to `other`.
    let sent = now_ms();
    for c in conversations {
        let message = json!({"conversation_id": c, "customer_id": format!("k-{c}"),
            "channel": "chat", "text": "heeft u de bananenboom nog op voorraad?"});
        assert_eq!(post(daemon.http, "/v1/messages", message).await.0, 200);
    }
    let later = sent + REPLY_AFTER_MS;
    for (c, at) in [("b-1", Some(later)), ("b-2", Some(later)), ("b-3", None)] {
        let body = match at {
            Some(at) => json!({"agent": "anna", "at": at}),
            None => json!({"agent": "anna"}),
        };
        let (status, body) =
            post(daemon.http, &format!("/v1/conversations/{c}/replies"), body).await;
        assert_eq!(status, 200, "{body}");
    }
    for (c, value) in [("b-1", 49.95), ("b-2", 12.5)] {
        let body = json!({"value": value, "currency": "eur"});
        let (status, body) =
            post(daemon.http, &format!("/v1/conversations/{c}/orders"), body).await;
        assert_eq!(status, 200, "{body}");
    }

    // Over the binary protocol, to `binary`.
    let (mut client, welcome) = Binary::connect(daemon.binary, BINARY_TOKEN).await;
    assert!(matches!(welcome, Frame::Welcome(_)), "{welcome:?}");
    let sent = now_ms();
    let messages = conversations.iter().map(|c| chat(c)).collect();
    client.send_batch(&MessageBatch { batch_id: 1, messages }).await;
    let later = sent + REPLY_AFTER_MS;
    let replies = vec![
        reply("b-1", "anna", Some(later)),
        reply("b-2", "anna", Some(later)),
        reply("b-3", "anna", None),
    ];
    send_replies(&mut client, &ReplyBatch { batch_id: 2, replies }).await;
    let orders = vec![order("b-1", 4_995, "eur"), order("b-2", 1_250, "EUR")];
    send_orders(&mut client, &OrderBatch { batch_id: 3, orders }).await;
    let after_messages = acked(&mut client, 1, 3).await;
    let after_replies = acked(&mut client, 2, 3).await;
    let after_orders = acked(&mut client, 3, 2).await;
    assert!(after_messages <= after_replies && after_replies <= after_orders);

    let over_http = totals(daemon.http, HTTP_TOKEN).await;
    let over_binary = totals(daemon.http, BINARY_TOKEN).await;
    assert_eq!(counts(&over_binary), counts(&over_http), "{over_binary}\n{over_http}");
    assert_eq!(
        counts(&over_binary),
        json!({"offered": 3, "answered": 3, "conversions": 2, "revenue": {"EUR": 62.45},
            "first_response_count": true})
    );
    // The reply clocks stop alike: the stamped replies 30 s after the
    // messages (a few ms less, the time it took to send them), and the
    // unstamped one after them counts as their time.
    for totals in [&over_binary, &over_http] {
        let p50 = totals["first_response_ms"]["p50"].as_u64().unwrap();
        assert!((REPLY_AFTER_MS - 2_000..=REPLY_AFTER_MS).contains(&p50), "{totals}");
        assert_eq!(totals["escalations"], 0);
    }
    assert_eq!(
        over_binary["conversion_by_first_response"],
        over_http["conversion_by_first_response"]
    );

    // Refusals by the tenant are per item: the others apply, the error
    // names the refused ones with the code HTTP's refusal maps to.
    let replies =
        vec![reply("nope", "anna", None), reply("b-3", "anna", None), reply("b-2", "nobody", None)];
    send_replies(&mut client, &ReplyBatch { batch_id: 4, replies }).await;
    let message = refused(&mut client, 4, "bad_batch").await;
    assert!(message.starts_with("replies batch 4: 2 of 3 refused, 1 applied"), "{message}");
    assert!(message.contains("item 0: no conversation \"nope\""), "{message}");
    assert!(message.contains("item 2: ") && message.contains("nobody"), "{message}");
    assert!(!message.contains("item 1"), "{message}");
    let orders = vec![order("b-3", 100, "usd"), order("nope", 100, "EUR")];
    send_orders(&mut client, &OrderBatch { batch_id: 5, orders }).await;
    let message = refused(&mut client, 5, "bad_batch").await;
    assert!(message.contains("1 of 2 refused") && message.contains("item 1"), "{message}");

    // Items that break the wire rules refuse the whole batch before any
    // applies, naming the item and the field; the connection goes on.
    let orders = vec![order("b-3", 100, "EUR"), order("b-3", 100, "EURO")];
    send_orders(&mut client, &OrderBatch { batch_id: 6, orders }).await;
    let message = refused(&mut client, 6, "bad_batch").await;
    assert!(message.contains("item 1: field `currency`"), "{message}");
    let orders = vec![order("b-3", -1, "EUR")];
    send_orders(&mut client, &OrderBatch { batch_id: 7, orders }).await;
    let message = refused(&mut client, 7, "bad_batch").await;
    assert!(message.contains("item 0: field `value_minor`"), "{message}");
    let replies = vec![reply("b-3", "", None)];
    send_replies(&mut client, &ReplyBatch { batch_id: 8, replies }).await;
    let message = refused(&mut client, 8, "bad_batch").await;
    assert!(message.contains("item 0: field `agent_id`"), "{message}");
    send_replies(&mut client, &ReplyBatch { batch_id: 9, replies: Vec::new() }).await;
    assert_eq!(refused(&mut client, 9, "bad_batch").await, "replies batch 9 is empty");
    send_orders(&mut client, &OrderBatch { batch_id: 10, orders: vec![order("b-3", 0, "EUR")] })
        .await;
    acked(&mut client, 10, 1).await;

    let before = totals(daemon.http, BINARY_TOKEN).await;
    assert_eq!(
        (before["conversions"].as_u64(), before["revenue"]["USD"].as_f64()),
        (Some(3), Some(1.0))
    );
    drop(client);
    daemon.shutdown().await.unwrap();

    // Journaled like the HTTP ones: a restart rebuilds the same reports.
    let daemon = Spawned::start(daemon_config).await.unwrap();
    assert_eq!(totals(daemon.http, BINARY_TOKEN).await, before);
    daemon.shutdown().await.unwrap();
}

/// A version-2 client keeps working with message batches; reply and order
/// frames need version 3; an unknown version is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_two_clients_keep_working_and_cannot_send_replies() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Spawned::start(config(dir.path())).await.unwrap();

    let (mut old, welcome) = connect_with_version(daemon.binary, 2).await;
    assert!(matches!(welcome, Frame::Welcome(ref w) if w.tenant == "demo"), "{welcome:?}");
    old.send_batch(&MessageBatch { batch_id: 1, messages: vec![chat("v2-1")] }).await;
    acked(&mut old, 1, 1).await;
    send_replies(&mut old, &ReplyBatch { batch_id: 2, replies: vec![reply("v2-1", "a", None)] })
        .await;
    let message = refused(&mut old, 0, "bad_frame").await;
    assert!(message.contains("replies frames need protocol version 3"), "{message}");
    old.send_batch(&MessageBatch { batch_id: 3, messages: vec![chat("v2-2")] }).await;
    acked(&mut old, 3, 1).await;

    for version in [1, loket_wire::PROTOCOL_VERSION + 1] {
        let (_, answer) = connect_with_version(daemon.binary, version).await;
        assert!(
            matches!(answer, Frame::Error(ref e) if e.code == "unsupported_version"),
            "version {version}: {answer:?}"
        );
    }
    daemon.shutdown().await.unwrap();
}

async fn connect_with_version(addr: SocketAddr, version: u16) -> (Binary, Frame) {
    use futures_util::StreamExt;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut framed = tokio_util::codec::Framed::new(stream, loket_wire::FrameCodec::default());
    framed.send(Frame::Hello(Hello { version, token: TOKEN.to_owned() })).await.unwrap();
    let answer = framed.next().await.expect("an answer to Hello").expect("a valid frame");
    (Binary { framed }, answer)
}
