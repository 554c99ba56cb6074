//! Routing decisions: sticky messages, new conversations, and the mix, on a
//! generated roster of 10,000 agents with 200 skills.
//!
//! `cargo bench -p loket-router --bench routing`; the CLI's `loket bench route` measures the
//! same paths with latency percentiles and several threads.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use loket_router::{Message, Router};
use loket_workload::{Roster, RosterShape, Traffic};

const AGENTS: usize = 10_000;
const SKILLS: usize = 200;
const OPEN: usize = 4_000;

fn setup() -> (Router, Traffic, Vec<Message>) {
    let router = Router::new();
    let shape = RosterShape { agents: AGENTS, skills: SKILLS, ..RosterShape::default() };
    let roster = Roster::generate(&router, &shape, 1);
    let mut events = Vec::new();
    router.upsert_agents(roster.specs, &mut events).unwrap();
    let mut traffic = Traffic::new(roster.skills, 1, 1_000_000, 2);
    let open = traffic.open_conversations(&router, OPEN);
    assert_eq!(open.len(), OPEN);
    (router, traffic, open)
}

fn routing(c: &mut Criterion) {
    let (router, mut traffic, mut open) = setup();
    let mut events = Vec::with_capacity(64);
    let mut group = c.benchmark_group("route");
    group.throughput(Throughput::Elements(1));

    let follow_ups: Vec<Message> = (0..4096).map(|i| traffic.follow_up(&open[i % OPEN])).collect();
    let mut next = 0;
    group.bench_function("sticky", |b| {
        b.iter(|| {
            let message = &follow_ups[next % follow_ups.len()];
            next += 1;
            let decision = router.route(black_box(message), &mut events);
            events.clear();
            black_box(decision)
        })
    });

    // A new conversation, then the oldest open one closes so agents stay
    // equally loaded: the timing covers both, a conversation's whole life.
    let mut oldest = 0;
    group.bench_function("new_conversation", |b| {
        b.iter_batched(
            || traffic.new_conversation().0,
            |message| {
                let decision = router.route(&message, &mut events);
                let victim = if decision.is_assignment() {
                    std::mem::replace(&mut open[oldest], message).conversation
                } else {
                    message.conversation
                };
                oldest = (oldest + 1) % OPEN;
                router.close(victim, &mut events).unwrap();
                events.clear();
                black_box(decision)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, routing);
criterion_main!(benches);
