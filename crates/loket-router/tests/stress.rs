//! Many threads on one router: new conversations, sticky messages, closes,
//! presence flips and capacity changes at once. When the threads are joined
//! the router must be consistent (`audit()`), no agent may hold more than
//! its largest limit, every conversation a thread opened and did not close
//! must be held by an agent or queued, and nothing may wait while an
//! eligible agent has room (no lost wake-up).

use std::collections::BTreeSet;
use std::sync::Arc;

use loket_router::{
    AgentId, AgentSpec, AgentView, Capacity, Channel, ConversationId, ConversationState,
    ConversationView, CustomerId, Language, ManualClock, Message, Presence, Router, RouterConfig,
    SkillId, SkillLevel, Timestamp,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const THREADS: u64 = 4;
const OPS_PER_THREAD: usize = 6_000;
const AGENTS: u64 = 24;
const SKILLS: u16 = 4;
const CONVERSATIONS_PER_THREAD: u64 = 300;
/// Fresh routers per test; `LOKET_STRESS_ROUNDS` raises it for a soak run.
fn rounds() -> u64 {
    std::env::var("LOKET_STRESS_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(8)
}
const CHANNELS: [Channel; 3] = [Channel::Chat, Channel::Whatsapp, Channel::Email];

const HIGH: Capacity = Capacity { chat: 2, whatsapp: 2, email: 3, total: 4, ..Capacity::ZERO };
const LOW: Capacity = Capacity { chat: 1, whatsapp: 1, email: 1, total: 2, ..Capacity::ZERO };

fn language(agent: u64) -> Vec<Language> {
    match agent % 3 {
        0 => vec![Language::NL],
        1 => vec![Language::EN],
        _ => vec![Language::NL, Language::EN],
    }
}

fn skills(agent: u64) -> Vec<SkillLevel> {
    (0..SKILLS)
        .filter(|skill| (agent + u64::from(*skill)).is_multiple_of(2))
        .map(|skill| SkillLevel { skill: SkillId(skill), level: 3 + ((agent as u8) % 7) })
        .collect()
}

fn desk() -> (Router, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp(1_783_339_200_000)));
    let config = RouterConfig { affinity_lookback_ms: 60_000, ..RouterConfig::default() };
    let router = Router::builder().config(config).clock(clock.clone()).build().unwrap();
    for skill in 0..SKILLS {
        router.skill(&format!("skill-{skill}")).unwrap();
    }
    let mut events = Vec::new();
    for agent in 0..AGENTS {
        let mut spec = AgentSpec::new(AgentId(agent));
        spec.skills = skills(agent);
        spec.languages = language(agent);
        spec.capacity = HIGH;
        router.upsert_agent(spec, &mut events).unwrap();
    }
    (router, clock)
}

/// One thread's work; returns the conversations it left open.
fn worker(
    router: &Router,
    clock: &ManualClock,
    round: u64,
    thread: u64,
) -> BTreeSet<ConversationId> {
    let mut rng = SmallRng::seed_from_u64(0x10_4E7 + round * THREADS + thread);
    let mut events = Vec::with_capacity(64);
    let mut open = BTreeSet::new();
    let base = thread * 1_000_000;
    for _ in 0..OPS_PER_THREAD {
        events.clear();
        match rng.random_range(0..100u32) {
            0..=49 => {
                let id = ConversationId(base + rng.random_range(0..CONVERSATIONS_PER_THREAD));
                let mut message = Message::new(
                    id,
                    CustomerId(rng.random_range(0..200)),
                    CHANNELS[rng.random_range(0..CHANNELS.len())],
                    if rng.random_bool(0.7) { Language::NL } else { Language::EN },
                );
                if rng.random_bool(0.6) {
                    let skill = SkillId(rng.random_range(0..SKILLS));
                    message.required.push(SkillLevel { skill, level: rng.random_range(1..=6) });
                }
                message.tier = rng.random_range(0..3);
                message.buying_intent = rng.random_range(0.0..1.0);
                let decision = router.route(&message, &mut events);
                assert!(decision.agent.is_some() || !decision.is_assignment(), "{decision:?}");
                open.insert(id);
            }
            50..=74 => {
                let id = ConversationId(base + rng.random_range(0..CONVERSATIONS_PER_THREAD));
                let closed = router.close(id, &mut events);
                // Only this thread touches its conversations: a close
                // succeeds exactly when the thread left it open.
                assert_eq!(closed.is_ok(), open.remove(&id), "close {id:?}: {closed:?}");
            }
            75..=89 => {
                let agent = AgentId(rng.random_range(0..AGENTS));
                let presence = match rng.random_range(0..4u32) {
                    0 | 1 => Presence::Available,
                    2 => Presence::Away,
                    _ => Presence::Offline,
                };
                router.set_presence(agent, presence, &mut events).unwrap();
            }
            90..=97 => {
                let agent = AgentId(rng.random_range(0..AGENTS));
                let capacity = if rng.random_bool(0.5) { HIGH } else { LOW };
                router.set_capacity(agent, capacity, &mut events).unwrap();
            }
            _ => clock.advance(250),
        }
    }
    open
}

fn qualifies(agent: &AgentView, conversation: &ConversationView) -> bool {
    agent.spec.presence == Presence::Available
        && agent.spec.languages.contains(&conversation.language)
        && conversation.required.iter().all(|need| {
            agent.spec.skills.iter().any(|s| s.skill == need.skill && s.level >= need.level)
        })
}

fn has_room(agent: &AgentView, channel: Channel) -> bool {
    agent.load[channel.index()] < agent.spec.capacity.channel(channel)
        && agent.total_load < agent.spec.capacity.total
}

#[test]
fn threads_routing_at_once_leave_a_consistent_router() {
    for round in 0..rounds() {
        check_round(round);
    }
}

/// `audit` may be called while threads route (a debugging endpoint does):
/// it takes the locks in the router's order, so it never deadlocks with
/// them. The workers queue and drain constantly on this desk, taking a
/// conversation's shard and then the backlog; an audit taking them the
/// other way round would hang here.
#[test]
fn audits_while_threads_route_never_deadlock() {
    let (router, clock) = desk();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|thread| {
                let (router, clock) = (router.clone(), clock.clone());
                scope.spawn(move || worker(&router, &clock, 99, thread))
            })
            .collect();
        let auditor = scope.spawn(|| {
            let mut audits = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                // Changes in flight may show as problems; only finishing counts.
                let _ = router.audit();
                audits += 1;
            }
            audits
        });
        for worker in workers {
            worker.join().expect("a worker panicked");
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(auditor.join().expect("the auditor panicked") > 0);
    });
    assert!(router.audit().is_empty(), "{:#?}", router.audit());
}

fn check_round(round: u64) {
    let (router, clock) = desk();
    let open: BTreeSet<ConversationId> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|thread| {
                let (router, clock) = (router.clone(), clock.clone());
                scope.spawn(move || worker(&router, &clock, round, thread))
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a worker panicked")).collect()
    });

    let problems = router.audit();
    assert!(problems.is_empty(), "{problems:#?}");

    let agents: Vec<AgentView> = (0..AGENTS)
        .map(|id| router.agent(AgentId(id)).expect("agents are never removed"))
        .collect();
    for agent in &agents {
        for channel in Channel::ALL {
            assert!(agent.load[channel.index()] <= HIGH.channel(channel), "{agent:?}");
        }
        // Limits only ever switch between HIGH and LOW: a load above HIGH
        // would be an overshoot, a load above LOW is left from a lowering.
        assert!(agent.total_load <= HIGH.total, "{agent:?}");
    }

    let queued: BTreeSet<ConversationId> = router.queued().into_iter().collect();
    assert_eq!(router.stats().conversations, open.len(), "closed conversations are forgotten");
    let mut waiting = 0;
    for &id in &open {
        let view = router.conversation(id).unwrap_or_else(|| panic!("{id:?} was lost"));
        match view.state {
            ConversationState::Assigned => {
                let agent = view.agent.expect("assigned conversations have an agent");
                assert!(
                    agents[agent.0 as usize].holding.contains(&id),
                    "{id:?} names {agent:?}, who does not hold it"
                );
            }
            ConversationState::Queued => {
                assert!(queued.contains(&id), "{id:?} is queued but not in the backlog");
                waiting += 1;
                // No lost wake-up: nobody who could take it has room.
                let taker = agents
                    .iter()
                    .find(|agent| qualifies(agent, &view) && has_room(agent, view.channel));
                assert!(taker.is_none(), "{id:?} waits while {taker:?} has room");
            }
            other => panic!("{id:?} is {other:?}"),
        }
    }
    assert_eq!(waiting, queued.len(), "the backlog holds only open conversations");
}

/// When an agent goes away its conversations are re-routed (policy 2). A
/// conversation being assigned to the agent by another thread at that
/// moment must not be left behind with it. Regression test for a race fixed in `Inner::assign`.
#[test]
fn no_conversation_stays_with_an_agent_who_left() {
    for round in 0..rounds() {
        let (router, clock) = desk();
        std::thread::scope(|scope| {
            for thread in 0..THREADS {
                let (router, clock) = (router.clone(), clock.clone());
                scope.spawn(move || worker(&router, &clock, round, thread));
            }
        });
        let mut stranded = Vec::new();
        for id in 0..AGENTS {
            let agent = router.agent(AgentId(id)).unwrap();
            if !agent.spec.presence.keeps_conversations() && !agent.holding.is_empty() {
                stranded.push((agent.spec.id, agent.spec.presence, agent.holding));
            }
        }
        assert!(stranded.is_empty(), "round {round}: held by agents who left: {stranded:?}");
    }
}
