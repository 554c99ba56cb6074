//! Snapshots and restore, driven by the operation streams of `loket_spec::ops`.
//!
//! - `restored_routers_behave_exactly_as_the_original`: the key property. A
//!   random stream runs on router A; at random points (often right after
//!   time moved, with offers, wrap-ups, overflow steps, affinity waits and
//!   opening-hour changes pending) router B is restored from a snapshot (of
//!   A the first time, of B itself later); from then on both get the same
//!   operations, customer erasures included, and must emit the same events
//!   and show the same conversations, agents, stats and queue, with clean
//!   audits. A snapshot restores to itself exactly, through serde JSON and a
//!   validated rkyv archive too.
//! - Restore refuses inconsistent snapshots with an error naming the
//!   problem, and never panics on a mutated one.
//!
//! `LOKET_SNAPSHOT_CASES` overrides the number of streams (default 300).

use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use loket_capacity::MAX_PER_CHANNEL;
use loket_router::snapshot::{
    ArchivedRouterSnapshot, SnapshotError, SnapshotPresence, SnapshotServed, SnapshotSkill,
    SnapshotState,
};
use loket_router::{
    AgentId, BusinessHours, Channel, Clock, ConversationId, CustomerId, Event, ManualClock, Router,
    RouterConfig, RouterError, RouterSnapshot, SNAPSHOT_VERSION, SkillHours, SkillId,
};
use loket_spec::ops::{
    AGENTS, CONVERSATIONS, CUSTOMERS, Op, SKILL_NAMES, START, Scenario, apply_to_router, decode,
    seeded_bytes,
};

/// A step of a stream: one of the model's operations or an erasure.
#[derive(Debug, Clone)]
enum Step {
    Op(Op),
    Erase(u8),
}

/// Scenario knobs the model does not cover: affinity waits and opening hours.
#[derive(Debug, Clone, Copy)]
struct Extra {
    affinity_wait: bool,
    hours: bool,
}

fn config(scenario: Scenario, extra: Extra) -> RouterConfig {
    let mut config = scenario.config();
    if extra.affinity_wait {
        config.affinity_wait_ms = 4_000;
    }
    if extra.hours {
        // START is Monday 12:00 UTC: skill s0 (interned first by the builder,
        // so it stays SkillId(0)) opens and closes every few minutes.
        config.business_hours.push(SkillHours {
            skill: SKILL_NAMES[0].into(),
            hours: BusinessHours {
                timezone: "UTC".into(),
                monday: vec![
                    "12:00-12:01".into(),
                    "12:02-12:04".into(),
                    "12:06-12:07".into(),
                    "12:09-13:00".into(),
                ],
                ..BusinessHours::default()
            },
        });
    }
    config
}

fn fresh(config: &RouterConfig) -> (Router, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(START));
    let router = Router::builder().config(config.clone()).clock(clock.clone()).build().unwrap();
    for (index, name) in SKILL_NAMES.iter().enumerate() {
        assert_eq!(router.skill(name).unwrap(), SkillId(index as u16));
    }
    (router, clock)
}

/// Restores `snapshot` under `config` on a new manual clock at `now`.
fn restore(
    config: &RouterConfig,
    snapshot: RouterSnapshot,
    now: loket_router::Timestamp,
) -> (Router, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(now));
    let router = Router::builder()
        .config(config.clone())
        .clock(clock.clone())
        .restore(snapshot)
        .unwrap_or_else(|e| panic!("a router's own snapshot restores: {e}"));
    (router, clock)
}

fn apply(router: &Router, clock: &ManualClock, step: &Step, out: &mut Vec<Event>) -> String {
    match step {
        Step::Op(op) => format!("{:?}", apply_to_router(router, clock, op, out)),
        Step::Erase(customer) => {
            format!("{:?}", router.erase_customer(CustomerId((*customer).into()), out))
        }
    }
}

/// Everything observable through the public API, for comparison.
fn views(router: &Router) -> String {
    let mut text = String::new();
    for id in 0..u64::from(CONVERSATIONS) {
        text += &format!("{:?}\n", router.conversation(ConversationId(id)));
    }
    for id in 0..u64::from(AGENTS) {
        text += &format!("{:?}\n", router.agent(AgentId(id)));
    }
    text += &format!("{:?}\n{:?}\n{:?}\n", router.stats(), router.queued(), router.next_timer());
    text
}

/// A snapshot with the incarnation bits of every generation cleared: they
/// differ between a router and its restored copy by design.
fn comparable(mut snapshot: RouterSnapshot) -> RouterSnapshot {
    const LOW: u64 = 0xFFFF_FFFF;
    for conversation in &mut snapshot.conversations {
        conversation.generation &= LOW;
    }
    for entry in &mut snapshot.backlog.entries {
        entry.generation &= LOW;
    }
    for timer in &mut snapshot.timers {
        timer.generation &= LOW;
    }
    snapshot
}

/// A snapshot survives serde JSON and a validated rkyv archive unchanged,
/// and a router restored from it gives it back exactly.
fn round_trips(config: &RouterConfig, snapshot: &RouterSnapshot) {
    let json = serde_json::to_string(snapshot).unwrap();
    assert_eq!(&serde_json::from_str::<RouterSnapshot>(&json).unwrap(), snapshot);
    let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(snapshot).unwrap();
    let archived = rkyv::access::<ArchivedRouterSnapshot, rkyv::rancor::Error>(&bytes).unwrap();
    let back = rkyv::deserialize::<RouterSnapshot, rkyv::rancor::Error>(archived).unwrap();
    assert_eq!(&back, snapshot);
    let (again, _) = restore(config, back, loket_router::Timestamp(snapshot.taken_at));
    assert_eq!(&again.snapshot(), snapshot);
}

/// What the snapshots of a run had pending, to show the streams reach the
/// interesting states.
#[derive(Debug, Default)]
struct Coverage {
    snapshots: usize,
    offers: usize,
    wrap_ups: usize,
    overflows: usize,
    affinity_waits: usize,
    hours: usize,
    queued: usize,
    removed_agents: usize,
    /// Steps run on both routers.
    compared: usize,
    /// Events those steps emitted (on each router).
    events: usize,
}

impl Coverage {
    fn count(&mut self, snapshot: &RouterSnapshot) {
        use loket_router::snapshot::SnapshotTimerKind as Kind;
        self.snapshots += 1;
        let has = |kind| snapshot.timers.iter().any(|t| t.kind == kind);
        self.offers += usize::from(has(Kind::OfferExpiry));
        self.wrap_ups += usize::from(has(Kind::WrapUpEnd));
        self.overflows += usize::from(has(Kind::Overflow));
        self.affinity_waits += usize::from(has(Kind::AffinityEnd));
        self.hours += usize::from(has(Kind::HoursChange));
        self.queued += usize::from(!snapshot.backlog.entries.is_empty());
        self.removed_agents += usize::from(snapshot.agents.iter().any(|a| a.removed));
    }
}

fn stream(seed: u64) -> (Scenario, Extra, Vec<Step>, Vec<usize>) {
    let data = seeded_bytes(seed, 600 + (seed as usize % 4) * 300);
    let (scenario, ops) = decode(&data);
    let knobs = seeded_bytes(seed ^ 0x5EED, 64 + ops.len() * 2);
    let mut u = Unstructured::new(&knobs);
    let extra = Extra {
        affinity_wait: bool::arbitrary(&mut u).unwrap(),
        hours: bool::arbitrary(&mut u).unwrap(),
    };
    let mut steps = Vec::with_capacity(ops.len() + ops.len() / 20);
    for op in ops {
        // One erasure every twenty-odd operations.
        if u.int_in_range(0..=24u8).unwrap_or(1) == 0 {
            steps.push(Step::Erase(u.int_in_range(0..=CUSTOMERS - 1).unwrap_or(0)));
        }
        steps.push(Step::Op(op));
    }
    // One to three snapshot points; half of them right after the clock moved.
    let mut points = Vec::new();
    let count = 1 + usize::from(u.int_in_range(0..=2u8).unwrap_or(0));
    for _ in 0..count {
        let mut at = u.int_in_range(0..=steps.len()).unwrap_or(0);
        if u.arbitrary::<bool>().unwrap_or(false)
            && let Some(advance) = steps[..at]
                .iter()
                .rposition(|s| matches!(s, Step::Op(Op::Advance { step }) if *step > 0))
        {
            at = advance + 1;
        }
        points.push(at);
    }
    points.sort_unstable();
    (scenario, extra, steps, points)
}

fn run(seed: u64, coverage: &mut Coverage) -> Result<(), String> {
    let (scenario, extra, steps, points) = stream(seed);
    let config = config(scenario, extra);
    let (a, a_clock) = fresh(&config);
    let mut b: Option<(Router, Arc<ManualClock>)> = None;
    let (mut a_events, mut b_events) = (Vec::new(), Vec::new());
    let mut next_point = 0;
    for index in 0..=steps.len() {
        while next_point < points.len() && points[next_point] == index {
            next_point += 1;
            // The first snapshot is of A; later ones of B, restoring a restored router.
            let (source, clock) = match &b {
                Some((router, clock)) => (router, clock),
                None => (&a, &a_clock),
            };
            let snapshot = source.snapshot();
            coverage.count(&snapshot);
            if index % 3 == 0 {
                round_trips(&config, &snapshot);
            }
            b = Some(restore(&config, snapshot, clock.now()));
        }
        let Some(step) = steps.get(index) else { break };
        a_events.clear();
        b_events.clear();
        let got_a = apply(&a, &a_clock, step, &mut a_events);
        let Some((b_router, b_clock)) = &b else { continue };
        let got_b = apply(b_router, b_clock, step, &mut b_events);
        coverage.compared += 1;
        coverage.events += a_events.len();
        let context = || format!("seed {seed}, {scenario:?}, {extra:?}, step #{index} {step:?}");
        if got_a != got_b {
            return Err(format!("{}: original returned {got_a}, restored {got_b}", context()));
        }
        if a_events != b_events {
            return Err(format!(
                "{}: events differ\noriginal: {a_events:#?}\nrestored: {b_events:#?}",
                context()
            ));
        }
        let (view_a, view_b) = (views(&a), views(b_router));
        if view_a != view_b {
            return Err(format!(
                "{}: views differ\noriginal:\n{view_a}restored:\n{view_b}",
                context()
            ));
        }
        let problems = b_router.audit();
        if !problems.is_empty() || !a.audit().is_empty() {
            return Err(format!("{}: audit {problems:#?} / {:#?}", context(), a.audit()));
        }
    }
    if let Some((b_router, _)) = &b
        && comparable(a.snapshot()) != comparable(b_router.snapshot())
    {
        return Err(format!("seed {seed}: final snapshots differ"));
    }
    Ok(())
}

#[test]
fn restored_routers_behave_exactly_as_the_original() {
    let cases: u64 =
        std::env::var("LOKET_SNAPSHOT_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let mut coverage = Coverage::default();
    for seed in 0..cases {
        if let Err(problem) = run(seed, &mut coverage) {
            panic!("{problem}");
        }
    }
    eprintln!("{coverage:?}");
    if cases >= 100 {
        let c = &coverage;
        assert!(
            c.offers > 0
                && c.wrap_ups > 0
                && c.overflows > 0
                && c.affinity_waits > 0
                && c.hours > 0
                && c.queued > 0
                && c.removed_agents > 0
                && c.compared > 1_000,
            "streams did not reach every kind of pending state: {coverage:?}"
        );
    }
}

// ----- Validation -----------------------------------------------------------

/// A snapshot with a bit of everything: agents (one removed, two or more
/// registered), held, offered, queued and wrapping-up conversations, timers
/// and histories.
fn rich() -> (RouterConfig, RouterSnapshot) {
    for seed in 0.. {
        let (scenario, extra, steps, _) = stream(seed);
        let config = config(scenario, extra);
        let (router, clock) = fresh(&config);
        let mut out = Vec::new();
        for step in &steps[..steps.len() / 2] {
            apply(&router, &clock, step, &mut out);
        }
        let snapshot = router.snapshot();
        let held = snapshot.conversations.iter().filter(|c| c.holder.is_some()).count();
        if held >= 2
            && !snapshot.backlog.entries.is_empty()
            && !snapshot.customers.is_empty()
            && snapshot.timers.len() >= 2
            && snapshot.agents.iter().any(|a| a.removed)
            && snapshot.agents.iter().filter(|a| !a.removed).count() >= 2
        {
            return (config, snapshot);
        }
    }
    unreachable!()
}

fn refused(config: &RouterConfig, snapshot: RouterSnapshot) -> SnapshotError {
    let clock = Arc::new(ManualClock::new(START));
    match Router::builder().config(config.clone()).clock(clock).restore(snapshot) {
        Err(RouterError::Snapshot(error)) => error,
        Err(other) => panic!("refused with a non-snapshot error: {other}"),
        Ok(_) => panic!("an inconsistent snapshot was restored"),
    }
}

/// One way to break a good snapshot, and the error restore must answer.
struct Refusal {
    name: &'static str,
    mutate: Box<dyn Fn(&mut RouterSnapshot)>,
    expected: SnapshotError,
}

fn refusal(
    name: &'static str,
    mutate: impl Fn(&mut RouterSnapshot) + 'static,
    expected: SnapshotError,
) -> Refusal {
    Refusal { name, mutate: Box::new(mutate), expected }
}

#[test]
fn restore_names_what_is_wrong() {
    let (config, good) = rich();
    let held = good.conversations.iter().position(|c| c.holder.is_some()).unwrap();
    let held_id = good.conversations[held].id;
    let holder = good.conversations[held].holder.clone().unwrap();
    let slot = holder.slot;
    let held_channel = good.conversations[held].channel as usize;
    let held_load = good.agents[slot as usize].load[held_channel];
    let queued = good.backlog.entries[0].conversation;
    let queued_position = good.conversations.iter().position(|c| c.id == queued).unwrap();
    let removed = good.agents.iter().position(|a| a.removed).unwrap();
    let live: Vec<usize> = (0..good.agents.len()).filter(|&a| !good.agents[a].removed).collect();
    let (first_live, second_live) = (live[0], live[1]);
    let first_live_id = good.agents[first_live].spec.id;
    let customer = good.customers[0].customer;
    let served = good.customers[0].served[0].clone();
    let timer_seq = good.timers[0].seq;
    let chat = Channel::Chat.index();
    let invalid =
        |conversation, problem| SnapshotError::InvalidConversation { conversation, problem };

    let cases = vec![
        refusal(
            "another format version",
            |s| s.version += 1,
            SnapshotError::UnsupportedVersion {
                found: SNAPSHOT_VERSION + 1,
                supported: SNAPSHOT_VERSION,
            },
        ),
        refusal(
            "a skill name twice",
            |s| s.skills.push(s.skills[0].clone()),
            SnapshotError::DuplicateSkillName("s0".into()),
        ),
        refusal(
            "an agent skill past the interned names",
            |s| s.agents[0].spec.skills.push(SnapshotSkill { skill: 99, level: 4 }),
            SnapshotError::UnknownSkill {
                what: "an agent's skills",
                skill: 99,
                interned: good.skills.len(),
            },
        ),
        refusal(
            "agent slots out of order",
            |s| s.agents[0].slot = 7,
            SnapshotError::SlotOutOfOrder { position: 0, slot: 7 },
        ),
        refusal(
            "a registered agent id in two slots",
            move |s| s.agents[second_live].spec.id = first_live_id,
            SnapshotError::DuplicateAgent(first_live_id),
        ),
        refusal(
            "a removed agent online",
            move |s| s.agents[removed].spec.presence = SnapshotPresence::Available,
            SnapshotError::RemovedAgentOnline(removed as u32),
        ),
        refusal(
            "an agent proficiency past 10",
            |s| s.agents[0].spec.skills.push(SnapshotSkill { skill: 0, level: 11 }),
            SnapshotError::InvalidAgentSpec {
                slot: 0,
                reason: RouterError::InvalidProficiency(11).to_string(),
            },
        ),
        refusal(
            "an agent capacity past what a cell counts",
            move |s| s.agents[0].spec.capacity[chat] = 10_000,
            SnapshotError::InvalidAgentSpec {
                slot: 0,
                reason: RouterError::CapacityTooLarge {
                    field: "chat",
                    value: 10_000,
                    max: MAX_PER_CHANNEL,
                }
                .to_string(),
            },
        ),
        refusal(
            "an agent language that is not two letters",
            |s| s.agents[0].spec.languages.push("dutch".into()),
            SnapshotError::InvalidLanguage("dutch".into()),
        ),
        refusal(
            "a holder slot past the last agent",
            move |s| s.conversations[held].holder.as_mut().unwrap().slot = 999,
            SnapshotError::SlotOutOfRange {
                what: "a conversation's holder",
                slot: 999,
                slots: good.agents.len(),
            },
        ),
        refusal(
            "a holder naming another agent than its slot's",
            move |s| s.conversations[held].holder.as_mut().unwrap().agent += 1000,
            SnapshotError::AgentMismatch {
                what: "a conversation's holder",
                slot,
                agent: holder.agent + 1000,
                actual: holder.agent,
            },
        ),
        refusal(
            "a load one more than the conversations held",
            move |s| s.agents[slot as usize].load[held_channel] += 1,
            SnapshotError::LoadMismatch {
                slot,
                channel: Channel::ALL[held_channel].as_str(),
                recorded: held_load + 1,
                held: held_load,
            },
        ),
        refusal(
            "a load past what a cell counts",
            move |s| s.agents[slot as usize].load[chat] = 256,
            SnapshotError::LoadTooLarge { slot },
        ),
        refusal(
            "an empty holding list",
            move |s| s.agents[slot as usize].holding.clear(),
            SnapshotError::HoldingMismatch {
                slot,
                conversation: good
                    .conversations
                    .iter()
                    .find(|c| c.holder.as_ref().is_some_and(|h| h.slot == slot))
                    .unwrap()
                    .id,
            },
        ),
        refusal(
            "a conversation twice in a holding list",
            move |s| {
                let holding = &mut s.agents[slot as usize].holding;
                holding.push(holding[0]);
            },
            SnapshotError::HoldingMismatch {
                slot,
                conversation: good.agents[slot as usize].holding[0],
            },
        ),
        refusal(
            "a held conversation without its holder",
            move |s| s.conversations[held].holder = None,
            match good.conversations[held].state {
                // In wrap-up a conversation may be held by no one: then the
                // agent's load counts one conversation too many.
                SnapshotState::WrapUp => SnapshotError::LoadMismatch {
                    slot,
                    channel: Channel::ALL[held_channel].as_str(),
                    recorded: held_load,
                    held: held_load - 1,
                },
                _ => invalid(held_id, "assigned, offered or with a bot, but held by no agent"),
            },
        ),
        refusal(
            "a buying intent that is not a number",
            move |s| s.conversations[held].buying_intent = f32::NAN,
            invalid(held_id, "buying intent outside 0..=1"),
        ),
        refusal(
            "a conversation listed twice",
            |s| s.conversations.push(s.conversations[0].clone()),
            SnapshotError::DuplicateConversation(good.conversations[0].id),
        ),
        refusal(
            "a queued conversation without a backlog entry",
            |s| drop(s.backlog.entries.remove(0)),
            SnapshotError::QueueMismatch(queued),
        ),
        refusal(
            "a backlog entry twice",
            |s| s.backlog.entries.push(s.backlog.entries[0].clone()),
            SnapshotError::QueueMismatch(queued),
        ),
        refusal(
            "a backlog entry of another generation",
            |s| s.backlog.entries[0].generation ^= 1,
            invalid(queued, "its backlog entry is of another generation"),
        ),
        refusal(
            "a backlog entry in another language",
            |s| {
                let entry = &mut s.backlog.entries[0];
                entry.language = if entry.language == "nl" { "en" } else { "nl" }.into();
            },
            invalid(queued, "its backlog entry needs another channel or language"),
        ),
        refusal(
            "backlog sequence numbers not yet handed out",
            |s| s.backlog.next_seq = 0,
            SnapshotError::QueueSequence {
                seq: good.backlog.entries.iter().map(|e| e.seq).find(|&seq| seq > 0).unwrap(),
                next_seq: 0,
            },
        ),
        refusal(
            "a queued conversation closed",
            move |s| {
                s.conversations[queued_position].state = SnapshotState::Closed;
                s.conversations[queued_position].holder = None;
            },
            SnapshotError::QueueMismatch(queued),
        ),
        refusal(
            "timer sequence numbers not yet handed out",
            |s| s.timer_seq = 0,
            SnapshotError::TimerSequence { seq: timer_seq, timer_seq: 0 },
        ),
        refusal(
            "a timer twice",
            |s| s.timers.push(s.timers[0].clone()),
            SnapshotError::TimerSequence { seq: timer_seq, timer_seq: good.timer_seq },
        ),
        refusal(
            "a customer twice",
            |s| s.customers.push(s.customers[0].clone()),
            SnapshotError::DuplicateCustomer(customer),
        ),
        refusal(
            "a history of five agents",
            {
                let served = served.clone();
                move |s| s.customers[0].served = vec![served.clone(); 5]
            },
            SnapshotError::HistoryTooLong { customer, len: 5, max: 4 },
        ),
        refusal(
            "a slot twice in a history",
            {
                let served = served.clone();
                move |s| s.customers[0].served = vec![served.clone(), served.clone()]
            },
            SnapshotError::DuplicateSlotInHistory { customer, slot: served.slot },
        ),
        refusal(
            "a history naming another agent than its slot's",
            |s| {
                s.customers[0].served.insert(0, SnapshotServed { agent: 77, slot: 0, at: 0 });
                s.customers[0].served.truncate(4);
            },
            SnapshotError::AgentMismatch {
                what: "a customer's history",
                slot: 0,
                agent: 77,
                actual: good.agents[0].spec.id,
            },
        ),
    ];

    for Refusal { name, mutate, expected } in cases {
        let mut snapshot = good.clone();
        mutate(&mut snapshot);
        assert_eq!(refused(&config, snapshot), expected, "{name}");
    }

    // And the untouched snapshot restores.
    Router::builder()
        .config(config.clone())
        .clock(Arc::new(ManualClock::new(START)))
        .restore(good)
        .unwrap();
}

/// Mutates numbers in a snapshot's JSON at random: restoring either refuses
/// or gives a router whose audit is clean and that takes operations without
/// panicking.
#[test]
fn mutated_snapshots_never_panic() {
    let (config, good) = rich();
    let value = serde_json::to_value(&good).unwrap();
    let mut leaves = Vec::new();
    collect_numbers(&value, String::new(), &mut leaves);
    let mut restored = 0;
    for seed in 0..2_000u64 {
        let noise = seeded_bytes(seed + 1, 256);
        let mut u = Unstructured::new(&noise);
        let mut mutated = value.clone();
        for _ in 0..u.int_in_range(1..=3u8).unwrap() {
            let path = &leaves[u.choose_index(leaves.len()).unwrap()];
            let replacement: u64 = match u.int_in_range(0..=5u8).unwrap() {
                0 => 0,
                1 => 1,
                2 => u64::from(u.int_in_range(0..=12u8).unwrap()),
                3 => u64::from(u32::MAX),
                4 => u64::from(u16::MAX),
                _ => u.arbitrary().unwrap(),
            };
            *mutated.pointer_mut(path).unwrap() = serde_json::json!(replacement);
        }
        let Ok(snapshot) = serde_json::from_value::<RouterSnapshot>(mutated) else { continue };
        let clock = Arc::new(ManualClock::new(START));
        let Ok(router) =
            Router::builder().config(config.clone()).clock(clock.clone()).restore(snapshot)
        else {
            continue;
        };
        restored += 1;
        assert!(router.audit().is_empty(), "seed {seed}: {:#?}", router.audit());
        let (_, extra_ops) = decode(&seeded_bytes(seed, 300));
        let mut out = Vec::new();
        for op in &extra_ops {
            apply_to_router(&router, &clock, op, &mut out);
        }
        for customer in 0..CUSTOMERS {
            router.erase_customer(CustomerId(customer.into()), &mut out);
        }
        assert!(router.audit().is_empty(), "seed {seed}: {:#?}", router.audit());
    }
    eprintln!("restored {restored} of 2000 mutated snapshots");
    assert!(restored > 0, "no mutation restored: the test checks nothing");
}

fn collect_numbers(value: &serde_json::Value, path: String, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Number(_) => out.push(path),
        serde_json::Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                collect_numbers(item, format!("{path}/{index}"), out);
            }
        }
        serde_json::Value::Object(fields) => {
            for (key, item) in fields {
                collect_numbers(item, format!("{path}/{key}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn rkyv_archives_are_validated() {
    let (_, good) = rich();
    let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&good).unwrap();
    let archived = rkyv::access::<ArchivedRouterSnapshot, rkyv::rancor::Error>(&bytes).unwrap();
    let back = rkyv::deserialize::<RouterSnapshot, rkyv::rancor::Error>(archived).unwrap();
    assert_eq!(back, good);
    // Damaged archives are refused by validation (or decode to some other
    // snapshot, which restore then checks), never a crash.
    let mut damaged = 0;
    for seed in 0..200u64 {
        let noise = seeded_bytes(seed, 8);
        let mut copy = rkyv::util::AlignedVec::<16>::new();
        copy.extend_from_slice(&bytes);
        let at = (u64::from_le_bytes(noise.try_into().unwrap()) % copy.len() as u64) as usize;
        copy[at] ^= 0xA5;
        match rkyv::access::<ArchivedRouterSnapshot, rkyv::rancor::Error>(&copy) {
            Err(_) => damaged += 1,
            Ok(archived) => {
                let snapshot =
                    rkyv::deserialize::<RouterSnapshot, rkyv::rancor::Error>(archived).unwrap();
                let _ =
                    Router::builder().clock(Arc::new(ManualClock::new(START))).restore(snapshot);
            }
        }
    }
    assert!(damaged > 0);
    assert!(
        rkyv::access::<ArchivedRouterSnapshot, rkyv::rancor::Error>(&bytes[..bytes.len() / 2])
            .is_err()
    );
}

#[test]
fn a_restored_router_opens_new_conversations_without_meeting_stale_timers() {
    // Conversation 1 closes with an offer timer pending; the restored router
    // reopens the same id: the old timer must not fire on the new life.
    let config = RouterConfig {
        offers: Some(loket_router::OfferPolicy { timeout_ms: 1_000, max_missed: 5 }),
        ..RouterConfig::default()
    };
    let (router, clock) = fresh(&config);
    let mut out = Vec::new();
    let mut agent = loket_router::AgentSpec::new(AgentId(1));
    agent.languages = vec![loket_router::Language::NL];
    router.upsert_agent(agent, &mut out).unwrap();
    let message = loket_router::Message::new(
        ConversationId(1),
        CustomerId(1),
        loket_router::Channel::Chat,
        loket_router::Language::NL,
    );
    router.route(&message, &mut out);
    router.close(ConversationId(1), &mut out).unwrap();
    let snapshot = router.snapshot();
    assert_eq!(snapshot.timers.len(), 1, "the offer timer is still pending");
    let (restored, restored_clock) = restore(&config, snapshot, clock.now());
    out.clear();
    restored.route(&message, &mut out);
    let generation = restored.snapshot().conversations[0].generation;
    assert_ne!(generation >> 32, restored.snapshot().timers[0].generation >> 32);
    restored_clock.advance(999);
    out.clear();
    restored.advance(&mut out);
    assert!(out.is_empty(), "{out:?}");
    restored_clock.advance(1);
    restored.advance(&mut out);
    assert_eq!(out.len(), 2, "the new offer expires once and the conversation waits: {out:?}");
}

#[test]
fn an_agent_registered_again_keeps_a_history_place_per_slot() {
    // Agent 1 serves customer 1, is removed and registered again (a new
    // slot), and serves the customer again: the history lists both slots,
    // the newer first, and survives a snapshot round trip unchanged.
    let config = RouterConfig::default();
    let (router, clock) = fresh(&config);
    let mut out = Vec::new();
    let agent = || {
        let mut spec = loket_router::AgentSpec::new(AgentId(1));
        spec.languages = vec![loket_router::Language::NL];
        spec
    };
    let message = |conversation| {
        loket_router::Message::new(
            ConversationId(conversation),
            CustomerId(1),
            loket_router::Channel::Chat,
            loket_router::Language::NL,
        )
    };
    router.upsert_agent(agent(), &mut out).unwrap();
    assert_eq!(router.route(&message(1), &mut out).agent, Some(AgentId(1)));
    router.close(ConversationId(1), &mut out).unwrap();
    clock.advance(1_000);
    router.remove_agent(AgentId(1), &mut out).unwrap();
    router.upsert_agent(agent(), &mut out).unwrap();
    clock.advance(1_000);
    let decision = router.route(&message(2), &mut out);
    assert_eq!(decision.agent, Some(AgentId(1)));

    let snapshot = router.snapshot();
    let served: Vec<(u64, u32)> =
        snapshot.customers[0].served.iter().map(|s| (s.agent, s.slot)).collect();
    assert_eq!(served, [(1, 1), (1, 0)], "the new slot first, the old one kept");
    round_trips(&config, &snapshot);
}
