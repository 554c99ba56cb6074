//! `loket` with no arguments: generated Dutch and English traffic through the
//! router on embedded defaults, with a sample of decisions and the throughput.

use std::time::Instant;

use hdrhistogram::Histogram;
use loket_router::{
    AssignReason, Clock, Event, EventKind, ManualClock, Message, Router, RouterConfig, Timestamp,
};
use loket_workload::{Roster, RosterShape, TEXTS, Traffic};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Messages to stream.
    #[arg(long, default_value_t = 500_000)]
    messages: usize,
    /// Agents on duty.
    #[arg(long, default_value_t = 2_000)]
    agents: usize,
    /// Decisions to print before the summary.
    #[arg(long, default_value_t = 12)]
    show: usize,
    /// Random seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

impl Default for DemoArgs {
    fn default() -> Self {
        DemoArgs { messages: 500_000, agents: 2_000, show: 12, seed: 7 }
    }
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let start_time = Timestamp(1_795_424_400_000); // 2026-11-23 09:00 UTC
    let clock = Arc::new(ManualClock::new(start_time));
    let router = Router::builder().config(RouterConfig::default()).clock(clock.clone()).build()?;
    let shape =
        RosterShape { agents: args.agents, skills: 16, skills_per_agent: 4, bot_share: 0.05 };
    let roster = Roster::generate(&router, &shape, args.seed);
    let mut events = Vec::new();
    router.upsert_agents(roster.specs, &mut events)?;
    println!(
        "Loket demo: {} agents ({} skills, Dutch and English, 5% bots), streaming {} messages\n",
        args.agents, shape.skills, args.messages
    );

    let mut traffic = Traffic::new(roster.skills, 1, 50_000, args.seed);
    let mut open: Vec<(Message, usize)> = Vec::new();
    let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let mut shown = 0;
    let started = Instant::now();
    for step in 0..args.messages {
        if step % 10 == 0 {
            clock.advance(1);
        }
        // A third of the traffic opens conversations; each closes after a while.
        let is_new = open.len() < 100 || traffic.pick(3) == 0;
        let (message, text) = if is_new {
            traffic.new_conversation()
        } else {
            let index = traffic.pick(open.len());
            (traffic.follow_up(&open[index].0), open[index].1)
        };
        let before = Instant::now();
        let decision = router.route(&message, &mut events);
        let _ = histogram.record(before.elapsed().as_nanos() as u64);
        if is_new {
            open.push((message.clone(), text));
        }
        if open.len() > 11_000 {
            let (closing, _) = open.swap_remove(traffic.pick(open.len()));
            let _ = router.close(closing.conversation, &mut events);
        }
        if shown < args.show && decision.conversation == Some(message.conversation) {
            shown += 1;
            print_decision(&decision, &message, TEXTS[text].1, start_time);
        }
        for event in events.drain(..) {
            *by_reason.entry(loket_replay::kind_label(&event.kind)).or_default() += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stats = router.stats();
    println!("\nDecisions and state changes by reason:");
    for (reason, count) in &by_reason {
        println!("  {reason:<32} {count:>9}");
    }
    println!(
        "\n{} messages in {:.2} s: {:.0} messages/s on one thread; routing latency p50 {} ns, p99 {} ns",
        args.messages,
        elapsed,
        args.messages as f64 / elapsed,
        histogram.value_at_quantile(0.5),
        histogram.value_at_quantile(0.99)
    );
    println!(
        "{} open, {} waiting, {}; virtual time {:.1} s",
        crate::route::count(stats.conversations as u64, "conversation"),
        stats.queued,
        crate::route::count(stats.agents as u64, "agent"),
        clock.now().since(start_time) as f64 / 1000.0
    );
    Ok(())
}

fn print_decision(decision: &Event, message: &Message, text: &str, start: Timestamp) {
    let at = decision.at.since(start);
    let what = match decision.kind {
        EventKind::Assigned { reason, .. } => {
            let why = match reason {
                AssignReason::SkillMatch { strategy } => {
                    format!("skill match, {}", strategy.as_str())
                }
                other => format!("{other:?}").to_lowercase(),
            };
            format!("agent {} ({why})", decision.agent.map_or(0, |a| a.0))
        }
        EventKind::Queued { position, priority, .. } => {
            format!("queued at position {position}, priority {priority}")
        }
        other => format!("{other:?}"),
    };
    println!(
        "[+{:>5} ms] conversation {:<4} {} {:<9} {:<48} -> {}",
        at,
        message.conversation.0,
        message.language,
        message.channel.as_str(),
        format!("{text:?}"),
        what
    );
}
