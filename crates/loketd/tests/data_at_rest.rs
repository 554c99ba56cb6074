//! What the data directory keeps of customers: the journal holds what
//! customers wrote only for a tenant that opts in (`store_text`), and
//! replay routes the same either way.

mod support;

use std::path::Path;

use loket_wire::{Frame, MessageBatch};
use loketd::{Config, Spawned, TenantConfig};
use serde_json::{Value, json};
use support::{Binary, config, files_containing, http, message};

/// Words no scorer, agent file or catalog holds: found in a file only if a
/// message put them there.
const MARKER: &str = "zonnebloemzaadMARKER";

fn tenants(dir: &Path) -> Config {
    let mut config = config(dir);
    // Recovery must replay the journal, not restore a final snapshot.
    config.snapshot.on_shutdown = false;
    let private = TenantConfig { name: "private".to_owned(), ..config.tenants[0].clone() };
    let kept = TenantConfig {
        name: "kept".to_owned(),
        tokens: vec!["kept-token".to_owned()],
        store_text: true,
        ..config.tenants[0].clone()
    };
    assert!(!private.store_text, "off by default");
    config.tenants = vec![private, kept];
    config
}

/// What routing decided, without the clock: type, reason, agent, trigger.
fn decisions(answer: &Value) -> Vec<Value> {
    answer["decisions"]
        .as_array()
        .unwrap_or_else(|| panic!("no decisions in {answer}"))
        .iter()
        .map(|d| json!([d["conversation"], d["type"], d["reason"], d["agent"], d["trigger"]]))
        .collect()
}

async fn post(daemon: &Spawned, token: &str, messages: &Value) -> Vec<Value> {
    let body = json!({ "messages": messages }).to_string();
    let (status, answer) =
        http(daemon.http, "POST", "/v1/messages/batch", Some(token), Some(&body)).await;
    assert_eq!(status, 200, "{answer}");
    decisions(&answer)
}

async fn conversations(daemon: &Spawned, token: &str) -> Vec<Value> {
    let (status, answer) =
        http(daemon.http, "GET", "/v1/conversations?limit=1000", Some(token), None).await;
    assert_eq!(status, 200, "{answer}");
    answer["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            json!([c["id"], c["customer"], c["state"], c["agent"], c["escalated"], c["messages"]])
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_keeps_customer_words_only_when_the_tenant_opts_in_and_replays_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let texts = [
        format!("ik twijfel tussen twee maten {MARKER}"),
        format!("heeft u nog {MARKER} op voorraad? ik wil er 3 bestellen"),
        format!("mag ik een medewerker spreken {MARKER}"),
        format!("waardeloze service, niemand reageert {MARKER}"),
        format!("wat kost de bezorging {MARKER}"),
    ];
    let messages: Value = (0..20)
        .map(|i| {
            json!({"conversation_id": format!("c-{}", i % 8), "customer_id": format!("k-{}", i % 8),
                   "channel": if i % 3 == 0 { "whatsapp" } else { "chat" },
                   "text": texts[i % texts.len()]})
        })
        .collect();

    let daemon = Spawned::start(tenants(dir.path())).await.unwrap();
    let private = post(&daemon, support::TOKEN, &messages).await;
    let kept = post(&daemon, "kept-token", &messages).await;
    assert_eq!(private, kept, "the same input routes the same, text kept or not");
    // The binary protocol too.
    for token in [support::TOKEN, "kept-token"] {
        let (mut client, welcome) = Binary::connect(daemon.binary, token).await;
        assert!(matches!(welcome, Frame::Welcome(_)), "{welcome:?}");
        let batch = MessageBatch {
            batch_id: 1,
            messages: vec![message(900, 901, &format!("is dit de goede lens? {MARKER}"))],
        };
        client.send_batch(&batch).await;
        assert!(matches!(client.next().await, Some(Frame::Ack(_))));
    }
    let before =
        (conversations(&daemon, support::TOKEN).await, conversations(&daemon, "kept-token").await);
    assert_eq!(before.0, before.1);
    assert!(before.0.len() >= 9, "{before:?}");
    daemon.shutdown().await.unwrap();

    let private_files = files_containing(&dir.path().join("tenants/private"), MARKER.as_bytes());
    assert!(private_files.is_empty(), "customer words kept in {private_files:?}");
    let kept_files = files_containing(&dir.path().join("tenants/kept"), MARKER.as_bytes());
    assert!(!kept_files.is_empty(), "store_text = true keeps the text in the journal");

    // Replay (no snapshot was written) rebuilds the same state for both,
    // and routes what follows the same.
    let daemon = Spawned::start(tenants(dir.path())).await.unwrap();
    let after =
        (conversations(&daemon, support::TOKEN).await, conversations(&daemon, "kept-token").await);
    assert_eq!(after, before, "replay rebuilt the same conversations");
    let follow_up: Value = (0..8)
        .map(|i| {
            json!({"conversation_id": format!("c-{i}"), "customer_id": format!("k-{i}"),
                        "channel": "chat", "text": "kunt u mij terugbellen?"})
        })
        .collect();
    let private = post(&daemon, support::TOKEN, &follow_up).await;
    let kept = post(&daemon, "kept-token", &follow_up).await;
    assert_eq!(private, kept);
    daemon.shutdown().await.unwrap();
}

/// A key in `dir` named `name`: 64 hex digits, as `openssl rand -hex 32`.
fn key_file(dir: &Path, name: &str, byte: u8) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{}\n", format!("{byte:02x}").repeat(32))).unwrap();
    path
}

/// One tenant `sealed` keeping what customers write, encrypted with `keys`
/// (the first seals), or not encrypted at all.
fn sealed_tenant(dir: &Path, keys: &[&Path], on_shutdown: bool) -> Config {
    let mut config = config(dir);
    config.snapshot.on_shutdown = on_shutdown;
    config.tenants = vec![TenantConfig {
        name: "sealed".to_owned(),
        store_text: true,
        encryption: keys.split_first().map(|(current, older)| loketd::EncryptionConfig {
            key_file: Some(current.to_path_buf()),
            previous_key_files: older.iter().map(|p| p.to_path_buf()).collect(),
            ..loketd::EncryptionConfig::default()
        }),
        ..config.tenants[0].clone()
    }];
    config
}

/// The error and its sources, one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(next) = source {
        text.push_str(": ");
        text.push_str(&next.to_string());
        source = next.source();
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_tenant_keeps_no_customer_words_in_plain_and_needs_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let first = key_file(keys.path(), "first.key", 0x11);
    let second = key_file(keys.path(), "second.key", 0x22);
    let wrong = key_file(keys.path(), "wrong.key", 0x33);
    let data = dir.path().join("tenants/sealed");
    let messages: Value = (0..12)
        .map(|i| {
            json!({"conversation_id": format!("{MARKER}-gesprek-{}", i % 5),
                   "customer_id": format!("{MARKER}-klant-{}", i % 5),
                   "channel": "chat", "text": format!("heeft u {MARKER} in maat {i}?")})
        })
        .collect();

    // Journaled sealed, read back by replay (no snapshot).
    let daemon = Spawned::start(sealed_tenant(dir.path(), &[&first], false)).await.unwrap();
    post(&daemon, support::TOKEN, &messages).await;
    let (mut client, _) = Binary::connect(daemon.binary, support::TOKEN).await;
    let batch = MessageBatch {
        batch_id: 1,
        messages: vec![message(900, 901, &format!("is dit de goede lens? {MARKER}"))],
    };
    client.send_batch(&batch).await;
    assert!(matches!(client.next().await, Some(Frame::Ack(_))));
    let before = conversations(&daemon, support::TOKEN).await;
    assert_eq!(before.len(), 6, "{before:?}");
    daemon.shutdown().await.unwrap();
    let plain = files_containing(&data, MARKER.as_bytes());
    assert!(plain.is_empty(), "plaintext in {plain:?}");
    assert!(!files_containing(&data.join("journal"), &loket_seal::MAGIC).is_empty());

    // Without the key, or with another one, the tenant does not start and
    // says why; nothing is read as garbage.
    for (keys, expected) in
        [(vec![], "no key is configured"), (vec![wrong.as_path()], "which is not configured")]
    {
        let error = Spawned::start(sealed_tenant(dir.path(), &keys, false)).await.unwrap_err();
        let text = chain(&error);
        assert!(text.contains("tenant sealed") && text.contains(expected), "{text}");
    }
    let error = Spawned::start(sealed_tenant(dir.path(), &[&keys.path().join("gone.key")], false))
        .await
        .unwrap_err();
    assert!(chain(&error).contains("gone.key"), "{}", chain(&error));

    // Replay with the key rebuilds the same state; a snapshot is sealed too.
    let daemon = Spawned::start(sealed_tenant(dir.path(), &[&first], true)).await.unwrap();
    assert_eq!(conversations(&daemon, support::TOKEN).await, before);
    daemon.shutdown().await.unwrap();
    assert!(!files_containing(&data.join("snapshots"), &loket_seal::MAGIC).is_empty());
    assert!(files_containing(&data, MARKER.as_bytes()).is_empty());

    // Rotation: the new key seals, the old one still opens; once a
    // snapshot under the new key is the newest, the old key can go.
    let daemon = Spawned::start(sealed_tenant(dir.path(), &[&second, &first], true)).await.unwrap();
    assert_eq!(conversations(&daemon, support::TOKEN).await, before);
    let more: Value = json!([{"conversation_id": "na-rotatie", "customer_id": "k",
                              "channel": "chat", "text": format!("nog een {MARKER}")}]);
    post(&daemon, support::TOKEN, &more).await;
    daemon.shutdown().await.unwrap();
    let daemon = Spawned::start(sealed_tenant(dir.path(), &[&second], false)).await.unwrap();
    assert_eq!(conversations(&daemon, support::TOKEN).await.len(), 7);
    daemon.shutdown().await.unwrap();
    assert!(files_containing(&data, MARKER.as_bytes()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_encryption_on_keeps_what_was_written_before() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key = key_file(keys.path(), "tenant.key", 0x44);
    let message = |i: usize| {
        json!([{"conversation_id": format!("c-{i}"), "customer_id": format!("k-{i}"),
                "channel": "chat", "text": format!("waar blijft mijn {MARKER}?")}])
    };
    let daemon = Spawned::start(sealed_tenant(dir.path(), &[], false)).await.unwrap();
    post(&daemon, support::TOKEN, &message(1)).await;
    daemon.shutdown().await.unwrap();
    let daemon = Spawned::start(sealed_tenant(dir.path(), &[&key], false)).await.unwrap();
    post(&daemon, support::TOKEN, &message(2)).await;
    let before = conversations(&daemon, support::TOKEN).await;
    assert_eq!(before.len(), 2, "the plain record replayed under the key");
    daemon.shutdown().await.unwrap();
    let daemon = Spawned::start(sealed_tenant(dir.path(), &[&key], true)).await.unwrap();
    assert_eq!(conversations(&daemon, support::TOKEN).await, before);
    daemon.shutdown().await.unwrap();
}
