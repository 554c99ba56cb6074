//! Replays the checked-in seed corpus of the `frame_decoder` fuzz target, so
//! CI exercises it on every run. `LOKET_WRITE_SEEDS=1 cargo test -p
//! loket-wire --test fuzz_corpus` rewrites the seeds.

use std::path::{Path, PathBuf};

use loket_wire::{
    Ack, ErrorFrame, Frame, Hello, Id, MIN_PROTOCOL_VERSION, MessageBatch, OrderBatch,
    PROTOCOL_VERSION, ReplyBatch, Welcome, WireMessage, WireOrder, WireReply, WireSkill, codes,
    encode_batch, encode_frame, encode_orders, encode_replies,
};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/frame_decoder")
}

#[test]
fn frame_decoder_corpus_never_panics_and_round_trips() {
    let mut replayed = 0;
    for entry in std::fs::read_dir(corpus()).expect("the seed corpus is checked in") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        loket_wire::fuzz_checks::frame_decoder(&data);
        replayed += 1;
    }
    assert!(replayed >= 10, "only {replayed} seeds in {}", corpus().display());
}

/// The seeds on disk are what the generator writes; with
/// `LOKET_WRITE_SEEDS=1` it writes them first.
#[test]
fn the_checked_in_seeds_are_what_the_generator_writes() {
    if std::env::var_os("LOKET_WRITE_SEEDS").is_some() {
        std::fs::create_dir_all(corpus()).unwrap();
        for (name, bytes) in seeds() {
            std::fs::write(corpus().join(name), bytes).unwrap();
        }
    }
    for (name, bytes) in seeds() {
        let path = corpus().join(name);
        let stored = std::fs::read(&path).unwrap_or_default();
        assert!(
            stored == bytes,
            "{} differs from its generator: rewrite the seeds with \
             LOKET_WRITE_SEEDS=1 cargo test -p loket-wire --test fuzz_corpus",
            path.display()
        );
    }
}

fn frame(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(frame, &mut out).unwrap();
    out
}

fn batch(batch_id: u64, messages: Vec<WireMessage>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_batch(&MessageBatch { batch_id, messages }, &mut out).unwrap();
    out
}

fn reply_batch(batch_id: u64, replies: Vec<WireReply>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_replies(&ReplyBatch { batch_id, replies }, &mut out).unwrap();
    out
}

fn order_batch(batch_id: u64, orders: Vec<WireOrder>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_orders(&OrderBatch { batch_id, orders }, &mut out).unwrap();
    out
}

/// A reply by agent `anna` (or bot `bot-1` for even conversations), with a
/// time for odd ones.
fn reply(conversation_id: u64) -> WireReply {
    let odd = !conversation_id.is_multiple_of(2);
    WireReply {
        conversation_id: if odd {
            Id::Text(format!("WT-{conversation_id}"))
        } else {
            Id::Number(conversation_id)
        },
        agent_id: if odd { Id::Text("anna".into()) } else { Id::Text("bot-1".into()) },
        at_ms: odd.then_some(1_764_000_030_000),
    }
}

fn order(conversation_id: u64, value_minor: i64, currency: &str) -> WireOrder {
    WireOrder {
        conversation_id: Id::Text(format!("WT-{conversation_id}")),
        value_minor,
        currency: currency.into(),
        at_ms: conversation_id.is_multiple_of(2).then_some(1_764_000_090_000),
    }
}

/// A message; odd conversations have platform string ids, even ones numbers.
fn message(conversation_id: u64, channel: u8, language: u8, text: &str) -> WireMessage {
    let (conversation, customer) = if conversation_id % 2 == 1 {
        (
            Id::Text(format!("WT-{conversation_id}")),
            Id::Text(format!("+3161234{conversation_id:04}")),
        )
    } else {
        (Id::Number(conversation_id), Id::Number(conversation_id * 7))
    };
    WireMessage {
        conversation_id: conversation,
        customer_id: customer,
        channel,
        language,
        tier: 1,
        text: text.into(),
        sent_at_us: 1_764_000_000_000_000,
        skills: if conversation_id.is_multiple_of(3) {
            vec![WireSkill { name: "plants".into(), level: 4 }]
        } else {
            Vec::new()
        },
    }
}

/// The seeds: one meaningful case each.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let hello =
        frame(&Frame::Hello(Hello { version: PROTOCOL_VERSION, token: "demo-token".into() }));
    let welcome = frame(&Frame::Welcome(Welcome {
        tenant: "demo".into(),
        max_frame_bytes: 4 << 20,
        max_batch_messages: 10_000,
    }));
    let ack = frame(&Frame::Ack(Ack { batch_id: 1, accepted: 3, last_seq: 42 }));
    let error = frame(&Frame::Error(ErrorFrame {
        batch_id: 2,
        code: codes::RATE_LIMITED.into(),
        message: "te veel berichten".into(),
    }));
    let good = batch(
        1,
        vec![
            message(1, 0, 1, "hebben jullie nog bananenbomen op voorraad?"),
            message(2, 1, 2, "do you have lemon trees in stock"),
            message(3, 4, 0, "ok"),
        ],
    );
    let small = batch(7, vec![message(9, 5, 2, "")]);
    let mut session = hello.clone();
    session.extend_from_slice(&good);
    session.extend_from_slice(&small);
    let mut replies = welcome.clone();
    replies.extend_from_slice(&ack);
    replies.extend_from_slice(&error);
    let mut corrupted = good.clone();
    let mid = corrupted.len() - 10;
    corrupted[mid] ^= 0xFF;
    let mut root_smashed = good.clone();
    let end = root_smashed.len();
    root_smashed[end - 8..end - 4].copy_from_slice(&0x7FFF_FFF0u32.to_le_bytes());
    let mut bad_then_good = batch(3, vec![message(1, 6, 1, "kanaal bestaat niet")]);
    bad_then_good.extend_from_slice(&ack);
    let long_text = "x".repeat(30);
    let good_replies = reply_batch(20, vec![reply(1), reply(2), reply(3)]);
    let good_orders = order_batch(21, vec![order(1, 4_995, "EUR"), order(2, 0, "usd")]);
    let mut measured = hello.clone();
    measured.extend_from_slice(&good);
    measured.extend_from_slice(&good_replies);
    measured.extend_from_slice(&good_orders);
    let mut corrupted_replies = good_replies.clone();
    let mid = corrupted_replies.len() - 12;
    corrupted_replies[mid] ^= 0xFF;
    let mut bad_orders_then_ack = order_batch(22, vec![order(1, -5, "EUR")]);
    bad_orders_then_ack.extend_from_slice(&ack);
    let mut message_batch_as_replies = good.clone();
    message_batch_as_replies[4] = 6;
    vec![
        ("hello", hello.clone()),
        ("welcome", welcome),
        ("ack", ack.clone()),
        ("error", error),
        ("batch", good.clone()),
        ("batch_small", small),
        ("session", session),
        ("replies", replies),
        ("truncated_hello", hello[..hello.len() - 3].to_vec()),
        ("truncated_batch", good[..good.len() / 2].to_vec()),
        ("prefix_only", good[..4].to_vec()),
        ("oversized_length", [&u32::MAX.to_le_bytes()[..], &[3, 0, 0]].concat()),
        ("just_over_default_limit", [&((4u32 << 20) + 1).to_le_bytes()[..], &[4]].concat()),
        ("empty_frame", vec![0, 0, 0, 0, 1, 0, 0, 0, 4]),
        ("bad_type", vec![1, 0, 0, 0, 9]),
        ("trailing_ack", [&[22u8, 0, 0, 0][..], &ack[4..], &[0]].concat()),
        ("bad_utf8_token", vec![8, 0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0xC3]),
        (
            "string_length_lies",
            vec![11, 0, 0, 0, 1, 1, 0, 0xFF, 0xFF, 0xFF, 0xFF, b'a', b'b', b'c'],
        ),
        ("corrupted_rkyv", corrupted),
        ("root_pointer_out_of_bounds", root_smashed),
        ("empty_batch_payload", vec![1, 0, 0, 0, 3]),
        ("empty_batch", batch(4, vec![])),
        ("bad_channel", batch(5, vec![message(1, 0, 1, "hoi"), message(2, 9, 1, "hoi")])),
        ("bad_language", batch(6, vec![message(1, 0, 3, "hallo")])),
        ("long_text_small_limit", batch(8, vec![message(1, 2, 2, &long_text)])),
        ("many_messages_small_limit", batch(10, (0..5).map(|i| message(i, 0, 1, "ja")).collect())),
        ("bad_batch_then_ack", bad_then_good),
        ("bad_id", {
            let mut bad = message(1, 0, 1, "hoi");
            bad.conversation_id = Id::Text("tab\there".into());
            batch(11, vec![bad])
        }),
        ("bad_skill", {
            let mut bad = message(3, 0, 1, "hoi");
            bad.skills[0].level = 0;
            batch(12, vec![bad])
        }),
        ("empty", vec![]),
        (
            "hello_v2",
            frame(&Frame::Hello(Hello {
                version: MIN_PROTOCOL_VERSION,
                token: "demo-token".into(),
            })),
        ),
        ("reply_batch", good_replies.clone()),
        ("order_batch", good_orders.clone()),
        ("session_measured", measured),
        ("truncated_orders", good_orders[..good_orders.len() - 7].to_vec()),
        ("corrupted_replies_rkyv", corrupted_replies),
        ("message_batch_as_replies", message_batch_as_replies),
        ("empty_replies", reply_batch(23, vec![])),
        ("empty_orders_payload", vec![1, 0, 0, 0, 7]),
        ("many_replies_small_limit", reply_batch(24, (0..5).map(reply).collect())),
        ("bad_reply_agent", {
            let mut bad = reply(1);
            bad.agent_id = Id::Text(String::new());
            reply_batch(25, vec![reply(2), bad])
        }),
        ("bad_order_currency", order_batch(26, vec![order(1, 100, "EURO")])),
        ("bad_orders_then_ack", bad_orders_then_ack),
    ]
}
