//! The learned hand-off judgement through the daemon: a first message and a
//! later message of each kind (doubt, a complaint, a request for a person),
//! in Dutch and English, phrased as customers write them (no "twijfel" or
//! "klacht" needed), escalate to a person with the kind's trigger; plain
//! questions about sizes stay with the bot.

mod support;

use loketd::Spawned;
use serde_json::{Value, json};
use support::{TOKEN, config, http};

/// Messages of each kind and the trigger the decision names.
const KINDS: &[(&str, &str)] = &[
    ("Vallen de schoenen groot of klein uit?", "doubt"),
    ("Heb ik wel de goede lens gekozen?", "doubt"),
    ("I can't decide between the 128 GB and the 256 GB model", "doubt"),
    ("Waardeloze service, niemand reageert op mijn mails", "complaint"),
    ("still no refund after three weeks, I've emailed four times", "complaint"),
    ("kan iemand me ff terugbellen?", "human_request"),
    ("can i talk to a real person please", "human_request"),
];

async fn say(daemon: &Spawned, conversation: u64, text: &str) -> Value {
    let message = json!({"conversation_id": conversation, "customer_id": conversation,
        "channel": "chat", "text": text});
    let (status, answer) =
        http(daemon.http, "POST", "/v1/messages", Some(TOKEN), Some(&message.to_string())).await;
    assert_eq!(status, 200, "{text}: {answer}");
    answer
}

fn agent(answer: &Value) -> u64 {
    answer["decision"]["agent"].as_str().and_then(|a| a.parse().ok()).unwrap_or(u64::MAX)
}

fn assert_escalated(answer: &Value, text: &str, trigger: &str) {
    let decision = &answer["decision"];
    assert_eq!(decision["reason"], "escalation", "{text}: {answer}");
    assert_eq!(decision["trigger"], trigger, "{text}: {answer}");
    assert!(agent(answer) < loketd::demo::FIRST_BOT, "{text}: a person, not a bot: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_message_of_each_kind_goes_to_a_person() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Spawned::start(config(dir.path())).await.unwrap();
    for (i, &(text, trigger)) in KINDS.iter().enumerate() {
        let answer = say(&daemon, 100 + i as u64, text).await;
        assert_escalated(&answer, text, trigger);
    }
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_message_of_each_kind_takes_the_conversation_from_the_bot() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Spawned::start(config(dir.path())).await.unwrap();
    for (i, &(text, trigger)) in KINDS.iter().enumerate() {
        let conversation = 200 + i as u64;
        let first = say(&daemon, conversation, "hallo, ik heb een vraag over een bestelling").await;
        assert_eq!(first["decision"]["reason"], "bot_first", "{text}: {first}");
        assert!(agent(&first) >= loketd::demo::FIRST_BOT, "{text}: the bot answers: {first}");
        let answer = say(&daemon, conversation, text).await;
        assert_escalated(&answer, text, trigger);
    }
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_questions_about_sizes_stay_with_the_bot() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Spawned::start(config(dir.path())).await.unwrap();
    for (i, text) in ["Welke maten heeft deze broek?", "what sizes does this dress come in"]
        .into_iter()
        .enumerate()
    {
        let answer = say(&daemon, 300 + i as u64, text).await;
        assert_eq!(answer["decision"]["reason"], "bot_first", "{text}: {answer}");
        assert!(agent(&answer) >= loketd::demo::FIRST_BOT, "{text}: {answer}");
    }
    daemon.shutdown().await.unwrap();
}
