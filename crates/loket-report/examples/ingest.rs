//! Measures ingest (facts per second) and report queries over a generated
//! day of traffic.
//!
//! ```text
//! cargo run -p loket-report --release --example ingest [-- CONVERSATIONS [hours]]
//! ```
//!
//! With `hours` the meter has opening hours (Europe/Amsterdam, weekdays
//! 09:00-17:30, Saturday 10:00-14:00), so every clock is also measured in
//! business hours.
//!
//! One UTC day of conversations (default 1,000,000) arrives evenly: a
//! third bot-first (half of those handed off), a tenth abandoned, the rest
//! taken by one of 200 people in 10 teams, with two to four customer
//! messages and replies; one in seven orders. Facts are generated in time
//! order in batches outside the timed section; only `Meter::ingest` is
//! timed. Then a day of 15-minute rows by channel, and a day of hourly rows
//! by every dimension, are queried.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use loket_report::{
    BusinessHours, Channel, Currency, CustomerMessage, Dimension, Fact, FactKind, IntentId,
    Interval, Language, Meter, MeterConfig, Money, Query,
};

const DAY: u64 = 86_400_000;
const T0: u64 = 1_796_601_600_000; // 2026-12-07 00:00 UTC

/// splitmix64: a small, reproducible generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Pushes one conversation's facts onto `heap`.
fn conversation(
    id: u64,
    arrival: u64,
    intents: &[IntentId],
    rng: &mut Rng,
    heap: &mut Heap,
    seq: &mut u64,
) {
    let mut push = |at: u64, kind: FactKind| {
        *seq += 1;
        heap.push(Reverse(Pending { at, seq: *seq, fact: Fact { at, conversation: id, kind } }));
    };
    let channel = [Channel::Chat, Channel::Chat, Channel::Whatsapp, Channel::Email, Channel::Voice]
        [rng.below(5) as usize];
    let message = FactKind::CustomerMessage(CustomerMessage {
        channel,
        language: if rng.below(3) == 0 { Language::EN } else { Language::NL },
        tier: rng.below(3) as u8,
        intent: intents[rng.below(intents.len() as u64) as usize],
        buying_intent: rng.below(1000) as f32 / 1000.0,
        queue: rng.below(8) as u32,
    });
    let agent = rng.below(200);
    let person = (agent, (agent % 10) as u32);
    let mut t = arrival;
    push(t, message);
    if rng.below(10) == 0 {
        push(t + rng.below(120_000), FactKind::Closed);
        return;
    }
    if rng.below(3) == 0 {
        push(t, FactKind::Assigned { agent: 1000, team: 99, human: false });
        t += 1_000;
        push(t, FactKind::Reply { agent: 1000, team: 99, human: false });
        if rng.below(2) == 0 {
            t += 30_000 + rng.below(60_000);
            push(t + rng.below(1_000), FactKind::Closed);
            return;
        }
        t += 10_000 + rng.below(30_000);
        push(t, FactKind::HandedOff);
    }
    t += rng.below(120_000);
    push(t, FactKind::Assigned { agent: person.0, team: person.1, human: true });
    t += 5_000 + rng.below(90_000);
    push(t, FactKind::Reply { agent: person.0, team: person.1, human: true });
    for _ in 0..1 + rng.below(3) {
        t += 10_000 + rng.below(60_000);
        push(t, message);
        t += 5_000 + rng.below(120_000);
        push(t, FactKind::Reply { agent: person.0, team: person.1, human: true });
    }
    if rng.below(7) == 0 {
        t += 60_000;
        let value = Money { minor: 500 + rng.below(20_000) as i64, currency: Currency::EUR };
        push(t, FactKind::Order { value });
    }
    push(t + 60_000 + rng.below(300_000), FactKind::Closed);
}

/// A generated fact waiting for its turn: ordered by time, then by the
/// order it was generated in (so one conversation's facts at one instant
/// keep their order).
struct Pending {
    at: u64,
    seq: u64,
    fact: Fact,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Pending) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Pending) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Pending) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

type Heap = BinaryHeap<Reverse<Pending>>;

fn main() {
    let conversations: u64 =
        std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let opening_hours = (std::env::args().nth(2).as_deref() == Some("hours")).then(|| {
        let weekday = vec!["09:00-17:30".to_string()];
        BusinessHours {
            timezone: "Europe/Amsterdam".into(),
            monday: weekday.clone(),
            tuesday: weekday.clone(),
            wednesday: weekday.clone(),
            thursday: weekday.clone(),
            friday: weekday,
            saturday: vec!["10:00-14:00".into()],
            ..BusinessHours::default()
        }
    });
    let mut meter =
        Meter::new(MeterConfig { opening_hours, ..MeterConfig::default() }).expect("valid config");
    let intents: Vec<IntentId> =
        (0..20).map(|i| meter.intern_intent(&format!("intent.{i}")).expect("short name")).collect();
    let mut rng = Rng(42);
    let mut heap = Heap::new();
    let mut seq = 0;
    let mut batch: Vec<Fact> = Vec::with_capacity(1 << 20);
    let mut events = Vec::new();
    let (mut facts, mut refused, mut timed) = (0u64, 0u64, Duration::ZERO);
    let mut ingest = |batch: &mut Vec<Fact>, meter: &mut Meter| {
        let started = Instant::now();
        for fact in batch.iter() {
            if meter.ingest(fact, &mut events).is_err() {
                refused += 1;
            }
        }
        timed += started.elapsed();
        facts += batch.len() as u64;
        batch.clear();
        events.clear();
    };
    for id in 0..conversations {
        let arrival = T0 + id * DAY / conversations;
        // Everything before this arrival is final: move it to the batch.
        while heap.peek().is_some_and(|Reverse(p)| p.at < arrival) {
            let Some(Reverse(pending)) = heap.pop() else { break };
            batch.push(pending.fact);
        }
        if batch.len() >= 1 << 20 {
            ingest(&mut batch, &mut meter);
        }
        conversation(id, arrival, &intents, &mut rng, &mut heap, &mut seq);
    }
    while let Some(Reverse(pending)) = heap.pop() {
        batch.push(pending.fact);
    }
    ingest(&mut batch, &mut meter);

    let seconds = timed.as_secs_f64();
    println!("conversations      {conversations}");
    println!("facts              {facts} ({refused} refused)");
    println!(
        "ingest             {:.3} s, {:.2} M facts/s, {:.0} ns/fact",
        seconds,
        facts as f64 / seconds / 1e6,
        seconds * 1e9 / facts as f64
    );
    println!(
        "held               {} conversations, {} timers, {} slots",
        meter.conversations_held(),
        meter.timers_pending(),
        meter.slots_held()
    );

    for (name, query) in [
        (
            "day, 15m, channel",
            Query {
                from: T0,
                to: T0 + DAY,
                interval: Interval::Minutes15,
                group_by: vec![Dimension::Channel],
            },
        ),
        (
            "day, 1h, every dimension",
            Query {
                from: T0,
                to: T0 + DAY,
                interval: Interval::Hour,
                group_by: Dimension::ALL.to_vec(),
            },
        ),
    ] {
        let mut best = Duration::MAX;
        let mut rows = 0;
        for _ in 0..5 {
            let started = Instant::now();
            let report = meter.report(&query).expect("valid query");
            best = best.min(started.elapsed());
            rows = report.intervals.len();
        }
        println!("report {name:<26} {:.2} ms (best of 5), {rows} rows", best.as_secs_f64() * 1e3);
    }
    let report = meter
        .report(&Query { from: T0, to: T0 + DAY, interval: Interval::Day, group_by: vec![] })
        .expect("valid query");
    let t = &report.totals;
    println!(
        "day totals         offered {}, answered {}, abandoned {}, service level {:.3}, first response p50 {:?} ms, conversions {}",
        t.offered,
        t.answered,
        t.abandoned,
        t.service_level.unwrap_or(0.0),
        t.first_response_ms.p50,
        t.conversions
    );
}
