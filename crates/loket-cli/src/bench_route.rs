//! `loket bench route`: routing throughput and latency on a generated roster.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use hdrhistogram::Histogram;
use loket_metering::Metering;
use loket_report::MeterConfig;
use loket_router::{AgentSpec, ConversationId, Message, Router, RouterConfig};
use loket_workload::{Roster, RosterShape, Traffic};
use serde::Serialize;

/// What traffic to route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Messages in conversations that already have an agent.
    Sticky,
    /// New conversations only (each thread closes its oldest to keep agents free).
    New,
    /// 90% sticky, 10% new conversations.
    Mixed,
}

#[derive(Debug, clap::Args)]
pub struct BenchRouteArgs {
    /// Traffic mix.
    #[arg(long, value_enum, default_value = "mixed")]
    scenario: Scenario,
    /// Routing threads sharing one router.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Agents in the roster.
    #[arg(long, default_value_t = 10_000)]
    agents: usize,
    /// Distinct skills.
    #[arg(long, default_value_t = 200)]
    skills: usize,
    /// Messages to route per thread.
    #[arg(long, default_value_t = 2_000_000)]
    messages: usize,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Time one `route` call in N for the latency percentiles; 1 times
    /// every call. A timed call's clock reads wait for all the work before
    /// them to finish, which keeps one message's cache misses from
    /// overlapping the next message's and slows the loop (by about 20% for
    /// new conversations here), so throughput is measured with most calls
    /// untimed.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    latency_every: u32,
    /// Measure reply times and SLAs while routing (`loket-report`, fed
    /// inline on each routing thread, as `loketd`'s sequencer does).
    #[arg(long)]
    reports: bool,
    /// Run the benchmark ROUNDS times with measuring off and ROUNDS times
    /// on, interleaved, and report both medians and the cost of measuring.
    #[arg(long, value_name = "ROUNDS")]
    compare_reports: Option<u32>,
    /// Print a JSON summary as the last line.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    scenario: Scenario,
    /// Whether measuring was on.
    reports: bool,
    threads: usize,
    agents: usize,
    skills: usize,
    messages: u64,
    seconds: f64,
    msgs_per_sec: f64,
    /// One call in this many was timed for the latency percentiles.
    latency_every: u32,
    /// How many calls were timed.
    latency_samples: u64,
    p50_ns: u64,
    p90_ns: u64,
    p99_ns: u64,
    p999_ns: u64,
    max_ns: u64,
    assigned_or_sticky: u64,
    queued_at_end: usize,
    open_conversations: usize,
}

/// Open conversations kept for sticky traffic, in all: split over the
/// threads, so every thread count routes against the same load (twice the
/// threads must not mean twice as many busy agents).
const OPEN_CONVERSATIONS: usize = 4_000;
/// Distinct customers: a web shop's customers active within the affinity
/// look-back. Returning customers exercise affinity on new conversations.
const CUSTOMERS: u64 = 100_000;

/// The cost of measuring: medians of interleaved rounds off and on.
#[derive(Debug, Serialize)]
struct Comparison {
    scenario: Scenario,
    threads: usize,
    rounds: u32,
    /// Messages per second of each round, measuring off.
    off_msgs_per_sec: Vec<f64>,
    /// The same, measuring on.
    on_msgs_per_sec: Vec<f64>,
    off_median: f64,
    on_median: f64,
    /// 1 − on / off, from the medians: the share of throughput measuring costs.
    cost: f64,
}

pub fn run(args: BenchRouteArgs) -> anyhow::Result<()> {
    ensure!(args.threads >= 1, "--threads must be at least 1");
    ensure!(args.agents >= 1 && args.skills >= 1, "--agents and --skills must be at least 1");
    let Some(rounds) = args.compare_reports else {
        let report = measure(&args, args.reports)?;
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        }
        return Ok(());
    };
    ensure!(rounds >= 1, "--compare-reports needs at least 1 round");
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which goes first, so drift favours neither.
        for reports in if round.is_multiple_of(2) { [false, true] } else { [true, false] } {
            let report = measure(&args, reports)?;
            if reports { on.push(report.msgs_per_sec) } else { off.push(report.msgs_per_sec) }
        }
    }
    let median = |values: &[f64]| {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        if sorted.len().is_multiple_of(2) {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        } else {
            sorted[middle]
        }
    };
    let (off_median, on_median) = (median(&off), median(&on));
    let comparison = Comparison {
        scenario: args.scenario,
        threads: args.threads,
        rounds,
        off_msgs_per_sec: off,
        on_msgs_per_sec: on,
        off_median,
        on_median,
        cost: 1.0 - on_median / off_median,
    };
    eprintln!(
        "measuring off {:.0} msgs/s, on {:.0} msgs/s (medians of {rounds} interleaved rounds): \
         measuring costs {:.1}%",
        off_median,
        on_median,
        comparison.cost * 100.0
    );
    if args.json {
        println!("{}", serde_json::to_string(&comparison)?);
    }
    Ok(())
}

/// One benchmark run on a fresh router, measuring `reports` or not.
fn measure(args: &BenchRouteArgs, reports: bool) -> anyhow::Result<Report> {
    let router = Router::builder().config(RouterConfig::default()).build()?;
    let shape = RosterShape { agents: args.agents, skills: args.skills, ..RosterShape::default() };
    let roster = Roster::generate(&router, &shape, args.seed);
    let mut events = Vec::new();
    router.upsert_agents(roster.specs.clone(), &mut events).context("registering agents")?;
    eprintln!(
        "routing {} {:?} messages on {} thread(s): {} agents, {} skills",
        args.messages, args.scenario, args.threads, args.agents, args.skills
    );

    let barrier = Arc::new(Barrier::new(args.threads + 1));
    let (elapsed, results) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..args.threads)
            .map(|thread| {
                let router = router.clone();
                let barrier = barrier.clone();
                let skills = roster.skills.clone();
                let specs = &roster.specs;
                scope.spawn(move || drive(&router, args, reports, thread, skills, specs, &barrier))
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        (start.elapsed(), results)
    });
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let mut successes = 0;
    let mut messages = 0;
    let mut busy = Duration::ZERO;
    for result in results {
        let run = result.map_err(|_| anyhow::anyhow!("a routing thread panicked"))?;
        histogram.add(&run.latencies)?;
        successes += run.successes;
        messages += run.messages;
        busy = busy.max(run.busy);
    }
    // Throughput over the slowest thread's routing loop (set-up excluded).
    let seconds = busy.as_secs_f64().max(1e-9);
    let stats = router.stats();
    let report = Report {
        scenario: args.scenario,
        reports,
        threads: args.threads,
        agents: args.agents,
        skills: args.skills,
        messages,
        seconds,
        msgs_per_sec: messages as f64 / seconds,
        latency_every: args.latency_every,
        latency_samples: histogram.len(),
        p50_ns: histogram.value_at_quantile(0.50),
        p90_ns: histogram.value_at_quantile(0.90),
        p99_ns: histogram.value_at_quantile(0.99),
        p999_ns: histogram.value_at_quantile(0.999),
        max_ns: histogram.max(),
        assigned_or_sticky: successes,
        queued_at_end: stats.queued,
        open_conversations: stats.conversations,
    };
    eprintln!(
        "{:.0} msgs/s over {:.3} s (wall {:.3} s); latency (1 call in {}) p50 {} ns, p99 {} ns, \
         p99.9 {} ns, max {} ns; {} of {} assigned or sticky, {} queued at the end",
        report.msgs_per_sec,
        report.seconds,
        elapsed.as_secs_f64(),
        report.latency_every,
        report.p50_ns,
        report.p99_ns,
        report.p999_ns,
        report.max_ns,
        report.assigned_or_sticky,
        report.messages,
        report.queued_at_end
    );
    Ok(report)
}

/// What one routing thread measured.
struct ThreadRun {
    /// Latencies of the timed `route` calls.
    latencies: Histogram<u64>,
    /// Messages routed.
    messages: u64,
    /// Messages that found an agent (assigned, offered or sticky).
    successes: u64,
    /// How long the routing loop ran.
    busy: Duration,
}

/// One thread's loop over its pre-generated plan.
fn drive(
    router: &Router,
    args: &BenchRouteArgs,
    reports: bool,
    thread: usize,
    skills: Vec<loket_router::SkillId>,
    specs: &[AgentSpec],
    barrier: &Barrier,
) -> ThreadRun {
    let first_conversation = (thread as u64 + 1) << 40;
    let mut traffic = Traffic::new(
        skills,
        first_conversation,
        CUSTOMERS,
        args.seed ^ ((thread as u64 + 1) * 0x9E37),
    );
    // Open conversations to send follow-ups to, oldest first in a ring:
    // this thread's share of `OPEN_CONVERSATIONS`. At most one per agent on
    // average, so the agents keep room for new conversations; a bounded
    // number of tries, so a roster with too little capacity still runs
    // (with fewer open conversations).
    let target = (OPEN_CONVERSATIONS.min(args.agents) / args.threads).max(1);
    let open = traffic.open_conversations(router, target);
    let mut events = Vec::with_capacity(64);
    // Pre-generate the whole run so the loop measures routing only.
    let new_share = match args.scenario {
        Scenario::Sticky => 0,
        Scenario::New => 100,
        Scenario::Mixed => 10,
    };
    let plan = plan(&mut traffic, open, new_share, args.messages);
    let mut latencies =
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds");
    let mut successes = 0u64;
    let latency_every = args.latency_every.max(1) as usize;
    let mut metering = reports.then(|| {
        let mut metering =
            Metering::new(MeterConfig::default()).expect("the default config is valid");
        // As loketd does: measuring knows every agent (team, kind, staffed
        // capacity for occupancy).
        for spec in specs {
            metering.agent(spec);
        }
        metering
    });
    // The meter's clock, as loketd's sequencer keeps one per command: the
    // router's time of the latest event (the router reads the clock in
    // every call; reading it again per message would charge the meter for
    // a clock read loketd does not make).
    let mut clock_ms = router.now().0;
    barrier.wait();
    let start = Instant::now();
    for (index, step) in plan.iter().enumerate() {
        let message = step.message();
        if let Some(metering) = &mut metering {
            // As loketd does: the message is measured before it is routed.
            let _ = metering.message(clock_ms, message, "", |_| None);
        }
        let decision = if index % latency_every == 0 {
            let before = Instant::now();
            let decision = router.route(message, &mut events);
            let _ = latencies.record(before.elapsed().as_nanos() as u64);
            decision
        } else {
            router.route(message, &mut events)
        };
        successes += u64::from(decision.is_assignment());
        match step {
            Step::FollowUp(_) => {}
            // Keep the agents' load steady: close the oldest open
            // conversation, whose place the new one took in the ring. A new
            // conversation that had to wait stays queued: the capacity just
            // freed usually goes to it, and `queued_at_end` counts any left.
            Step::New { victim: Some(victim), .. } => {
                let _ = router.close(*victim, &mut events);
            }
            // No ring to keep (no conversation could be opened beforehand):
            // close the new conversation itself.
            Step::New { victim: None, message } => {
                let _ = router.close(message.conversation, &mut events);
            }
        }
        if let Some(metering) = &mut metering {
            metering.decisions(&events);
            if let Some(last) = events.last() {
                clock_ms = clock_ms.max(last.at.0);
            }
        }
        events.clear();
    }
    ThreadRun { latencies, messages: plan.len() as u64, successes, busy: start.elapsed() }
}

/// One step of a thread's run.
#[derive(Debug)]
enum Step {
    /// A message in an open conversation.
    FollowUp(Message),
    /// A new conversation, taking the place of `victim` (closed right
    /// after it) in the ring of open conversations, if there is a ring.
    New { victim: Option<ConversationId>, message: Message },
}

impl Step {
    fn message(&self) -> &Message {
        match self {
            Step::FollowUp(message) | Step::New { message, .. } => message,
        }
    }
}

/// Pre-generates a thread's run, so the timed loop measures routing only.
/// `new_share` percent of the messages open new conversations; the rest
/// are follow-ups in `open`, a ring in which each new conversation takes
/// the place of the oldest, as the run will do. Follow-ups therefore only
/// go to conversations still open (a follow-up to a closed conversation
/// would open it again, and the share of new conversations would drift
/// past `new_share`).
fn plan(
    traffic: &mut Traffic,
    mut open: Vec<Message>,
    new_share: usize,
    messages: usize,
) -> Vec<Step> {
    let mut oldest = 0usize;
    (0..messages)
        .map(|_| {
            if open.is_empty() || traffic.pick(100) < new_share {
                let message = traffic.new_conversation().0;
                let victim = (!open.is_empty()).then(|| {
                    let victim = std::mem::replace(&mut open[oldest], message.clone());
                    oldest = (oldest + 1) % open.len();
                    victim.conversation
                });
                Step::New { victim, message }
            } else {
                let index = traffic.pick(open.len());
                Step::FollowUp(traffic.follow_up(&open[index]))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn mixed_plans_keep_the_new_share_and_never_follow_up_a_closed_conversation() {
        let mut traffic = Traffic::new(vec![loket_router::SkillId(0)], 1, 1_000, 7);
        let open: Vec<Message> = (0..200).map(|_| traffic.new_conversation().0).collect();
        let plan = plan(&mut traffic, open, 10, 20_000);
        let new = plan.iter().filter(|step| matches!(step, Step::New { .. })).count();
        assert!((1_700..2_300).contains(&new), "{new} of 20000 open a conversation");
        let mut closed = HashSet::new();
        for step in &plan {
            match step {
                Step::New { victim, .. } => {
                    let victim = victim.expect("the ring is never empty here");
                    assert!(closed.insert(victim), "{victim:?} closed twice");
                }
                Step::FollowUp(message) => assert!(
                    !closed.contains(&message.conversation),
                    "a follow-up to closed {:?}",
                    message.conversation
                ),
            }
        }
    }

    #[test]
    fn without_a_ring_every_new_conversation_is_its_own_victim() {
        let mut traffic = Traffic::new(vec![loket_router::SkillId(0)], 1, 1_000, 7);
        let plan = plan(&mut traffic, Vec::new(), 10, 100);
        assert!(plan.iter().all(|step| matches!(step, Step::New { victim: None, .. })));
    }
}
