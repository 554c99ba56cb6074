//! One replication: an event calendar on a virtual clock driving the real
//! [`Router`], with a [`Metering`] fed throughout.
//!
//! The calendar is a binary heap ordered by (time, sequence number): equal
//! times run in the order they were scheduled, so a replication is a pure
//! function of its scenario and seed. Every arrival stream draws from its
//! own generator, and every conversation from a generator seeded by its
//! stream at arrival, so the arrivals and the conversations' own draws
//! (handle time, patience, buying intent) are the same under any routing
//! policy: common random numbers for comparisons.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use loket_metering::Metering;
use loket_report::{
    ChannelTargets, Dimension, MeterConfig, Money, Query, Report, SlaPolicy, SlaTargets,
};
use loket_router::{
    AgentId, AgentKind, AgentSpec, AssignReason, ConversationId, CustomerId, Event, EventKind,
    ManualClock, Message, Presence, Router, RouterError, SkillLevel, Timestamp,
};
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use rand_distr::{Distribution, Exp1};

use crate::scenario::Scenario;

/// The measured period starts at this instant: 2026-01-05T00:00:00Z, a
/// Monday at midnight UTC, so report intervals and shifts line up with it.
/// The warm-up runs before it.
pub const EPOCH_MS: u64 = 1_767_571_200_000;

const DAY_MS: u64 = 86_400_000;

/// Why a replication could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The router refused the scenario's configuration or an agent.
    #[error("router: {0}")]
    Router(#[from] RouterError),
    /// The meter refused its configuration.
    #[error("meter: {0}")]
    Meter(#[from] loket_report::ConfigError),
    /// The meter could not answer the report's query.
    #[error("report: {0}")]
    Query(#[from] loket_report::QueryError),
}

/// What to measure besides the simulator's own counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Feed a [`Metering`] and report its measures (`loket report`'s
    /// definitions). Off, only [`Counts`] are kept: the simulator's own
    /// speed, for benchmarks.
    pub meter: bool,
    /// Also make the reports of the HTML page (per interval, by channel
    /// and agent).
    pub pages: bool,
}

/// The simulator's own exact counts over the conversations that arrived
/// in the measured period (each followed to its end, past the period if
/// need be); occupancy over the measured period itself.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Counts {
    /// Conversations simulated, warm-up included.
    pub conversations: u64,
    /// Conversations that arrived in the measured period.
    pub offered: u64,
    /// Of those, given to an agent (a person or a bot).
    pub served: u64,
    /// Left while waiting (patience ran out).
    pub abandoned: u64,
    /// Had to wait (were queued on arrival).
    pub waited: u64,
    /// Given to an agent within the service-level target of arriving.
    pub served_within_target: u64,
    /// Summed wait of all offered: to the first assignment, or to leaving.
    pub wait_ms_sum: u64,
    /// Conversations that bought.
    pub conversions: u64,
    /// Their order values, in minor units of the scenario's currency.
    pub revenue_minor: i64,
    /// Conversation-milliseconds held by people in the measured period.
    pub held_ms: f64,
    /// Capacity-milliseconds of people on shift in the measured period.
    pub capacity_ms: f64,
    /// Conversations that needed a person: given to people on arrival,
    /// or handed to people by a bot (those a bot resolved never did).
    pub person_offered: u64,
    /// Of those, given to a person within the service-level target of
    /// arriving, or of the bot's hand-off.
    pub person_within_target: u64,
    /// Per arrival stream, in the scenario's order: offered and given to
    /// an agent within the target.
    pub streams: Vec<StreamCounts>,
}

/// One arrival stream's share of [`Counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StreamCounts {
    /// Conversations of the stream that arrived in the measured period.
    pub offered: u64,
    /// Of those, given to an agent within the service-level target.
    pub served_within_target: u64,
    /// Of the stream's offered, those that needed a person.
    pub person_offered: u64,
    /// Of those, given to a person within the target.
    pub person_within_target: u64,
}

impl StreamCounts {
    /// Served within target / offered (Erlang's service level).
    pub fn service_level(&self) -> Option<f64> {
        ratio(self.served_within_target, self.offered)
    }

    /// People's service level: of the conversations that needed a person,
    /// the share given to one within the target of arriving or of the
    /// bot's hand-off (those who leave first count against it). Without
    /// bots it equals [`StreamCounts::service_level`]; `None` when no
    /// conversation needed a person.
    pub fn person_service_level(&self) -> Option<f64> {
        ratio(self.person_within_target, self.person_offered)
    }
}

impl Counts {
    /// P(wait > 0).
    pub fn p_wait(&self) -> Option<f64> {
        ratio(self.waited, self.offered)
    }
    /// Mean wait of all offered, ms.
    pub fn wait_ms_avg(&self) -> Option<f64> {
        ratio(self.wait_ms_sum, self.offered)
    }
    /// Abandoned / offered.
    pub fn abandon_rate(&self) -> Option<f64> {
        ratio(self.abandoned, self.offered)
    }
    /// Served within target / offered (Erlang's service level: every
    /// arrival in the denominator).
    pub fn service_level(&self) -> Option<f64> {
        ratio(self.served_within_target, self.offered)
    }
    /// People's service level, all streams (see
    /// [`StreamCounts::person_service_level`]).
    pub fn person_service_level(&self) -> Option<f64> {
        ratio(self.person_within_target, self.person_offered)
    }
    /// Held over available capacity, people only.
    pub fn occupancy(&self) -> Option<f64> {
        (self.capacity_ms > 0.0).then(|| self.held_ms / self.capacity_ms)
    }
    /// Conversions / offered.
    pub fn conversion_rate(&self) -> Option<f64> {
        ratio(self.conversions, self.offered)
    }
}

impl Counts {
    /// Counts a measured conversation's wait for a person, ended by a
    /// person taking it (`within` the target or not) or by the customer
    /// leaving.
    fn person_waited(&mut self, conv: &Conv, within: bool) {
        if !conv.measured {
            return;
        }
        let stream = &mut self.streams[usize::from(conv.stream)];
        self.person_offered += 1;
        stream.person_offered += 1;
        if within {
            self.person_within_target += 1;
            stream.person_within_target += 1;
        }
    }
}

fn ratio(a: impl Into<u64>, b: u64) -> Option<f64> {
    (b > 0).then(|| a.into() as f64 / b as f64)
}

/// What one replication gives.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The simulator's own counts.
    pub counts: Counts,
    /// The meter's report over the measured period, totals only.
    pub report: Option<Report>,
    /// With [`Options::pages`]: the totals per interval, and the period by
    /// channel and by agent (the HTML page's sources).
    pub pages: Option<(Report, Report)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Arrival(u32),
    Patience(u32),
    Reply(u32),
    Customer(u32),
    Close(u32),
    BotDone(u32),
    Shift(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Queued,
    Bot,
    Human,
    Escalating,
    Closed,
}

#[derive(Debug)]
struct Conv {
    arrived: u64,
    stream: u16,
    state: State,
    measured: bool,
    /// The holding agent (slot index); meaningful with `Bot` or `Human`.
    agent: u32,
    assigned: bool,
    first_reply_at: u64,
    /// When a pending patience event may abandon the conversation
    /// (`u64::MAX`: none may).
    patience_due: u64,
    /// When the current assignment to a person ends.
    close_due: u64,
    /// Since when the conversation waits for a person (arrival, or the
    /// bot's hand-off) until one takes it or it is left (`u64::MAX`: not
    /// waiting for a person, or already counted).
    person_since: u64,
    buying_intent: f32,
    messages_left: u32,
    handle_ms: u64,
    rng: SmallRng,
}

#[derive(Debug)]
struct Stream {
    rng: SmallRng,
    /// The next candidate arrival, exact (ms).
    at: f64,
    message: Message,
}

#[derive(Debug, Clone, Copy)]
struct AgentInfo {
    group: u32,
    human: bool,
    capacity: u32,
}

/// A piecewise-constant level integrated over the measured window.
#[derive(Debug, Default)]
struct Level {
    value: f64,
    since: u64,
    area: f64,
}

impl Level {
    fn set(&mut self, at: u64, value: f64, window: (u64, u64)) {
        let from = self.since.clamp(window.0, window.1);
        let to = at.clamp(window.0, window.1);
        self.area += self.value * (to - from) as f64;
        self.value = value;
        self.since = at;
    }
}

/// A replication's simulator.
struct Sim<'a> {
    scenario: &'a Scenario,
    router: Router,
    clock: Arc<ManualClock>,
    metering: Option<Metering>,
    calendar: BinaryHeap<Reverse<(u64, u64, Kind)>>,
    seq: u64,
    convs: Vec<Conv>,
    streams: Vec<Stream>,
    agents: Vec<AgentInfo>,
    group_on: Vec<bool>,
    events: Vec<Event>,
    offers: Vec<(ConversationId, AgentId)>,
    counts: Counts,
    held: Level,
    capacity: Level,
    window: (u64, u64),
    now: u64,
    sla_drain: u32,
}

/// Runs one replication of `scenario` with `seed`.
pub fn replicate(scenario: &Scenario, seed: u64, options: Options) -> Result<Outcome, SimError> {
    let mut sim = Sim::new(scenario, seed, options)?;
    sim.run()?;
    sim.finish(options)
}

/// The seed of replication `index` of a run seeded `seed` (splitmix64 of
/// both), so each replication has its own stream whatever thread runs it.
pub fn replication_seed(seed: u64, index: u64) -> u64 {
    splitmix(splitmix(seed) ^ index.wrapping_mul(0xd1b5_4a32_d192_ed03))
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The meter's configuration for `scenario`: every channel's first-reply
/// target is the scenario's `service_level_s`; the rest as `loket report`'s
/// defaults.
pub fn meter_config(scenario: &Scenario) -> MeterConfig {
    let target = |defaults: SlaTargets| SlaTargets {
        first_reply_ms: scenario.service_level_ms,
        next_reply_ms: defaults.next_reply_ms,
    };
    let d = ChannelTargets::default();
    let defaults = ChannelTargets {
        chat: target(d.chat),
        voice: target(d.voice),
        whatsapp: target(d.whatsapp),
        messenger: target(d.messenger),
        sms: target(d.sms),
        email: target(d.email),
    };
    let config = MeterConfig::default();
    let days = (scenario.warmup_ms + scenario.duration_ms).div_ceil(DAY_MS) + 2;
    MeterConfig {
        sla: SlaPolicy { defaults, ..SlaPolicy::default() },
        retention_ms: config.retention_ms.max(days * DAY_MS),
        ..config
    }
}

/// The name of agent `index` (0-based, in the scenario's order).
pub fn agent_names(scenario: &Scenario) -> Vec<String> {
    scenario
        .agents
        .iter()
        .flat_map(|g| (1..=g.count).map(move |i| format!("{}-{i}", g.name)))
        .collect()
}

impl<'a> Sim<'a> {
    fn new(scenario: &'a Scenario, seed: u64, options: Options) -> Result<Sim<'a>, SimError> {
        let start = EPOCH_MS - scenario.warmup_ms;
        let clock = Arc::new(ManualClock::new(Timestamp(start)));
        let router =
            Router::builder().config(scenario.router.clone()).clock(clock.clone()).build()?;
        let mut metering =
            if options.meter { Some(Metering::new(meter_config(scenario))?) } else { None };
        let window = (EPOCH_MS, EPOCH_MS + scenario.duration_ms);
        let mut sim = Sim {
            scenario,
            router,
            clock,
            metering: None,
            calendar: BinaryHeap::with_capacity(1024),
            seq: 0,
            convs: Vec::new(),
            streams: Vec::with_capacity(scenario.arrivals.len()),
            agents: Vec::new(),
            group_on: vec![true; scenario.agents.len()],
            events: Vec::with_capacity(64),
            offers: Vec::new(),
            counts: Counts {
                streams: vec![StreamCounts::default(); scenario.arrivals.len()],
                ..Counts::default()
            },
            held: Level { since: start, ..Level::default() },
            capacity: Level { since: start, ..Level::default() },
            window,
            now: start,
            sla_drain: 0,
        };
        // Agents, then the streams' first arrivals, then shifts.
        let mut events = Vec::new();
        let mut slots = 0.0;
        for (g, group) in scenario.agents.iter().enumerate() {
            let on = group.shifts.is_empty() || on_shift(&group.shifts, sim.time_of_day(start));
            sim.group_on[g] = on;
            let skills = group
                .skills
                .iter()
                .map(|(name, level)| {
                    Ok(SkillLevel { skill: sim.router.skill(name)?, level: *level })
                })
                .collect::<Result<Vec<_>, RouterError>>()?;
            for _ in 0..group.count {
                let id = AgentId(sim.agents.len() as u64 + 1);
                let mut spec = AgentSpec::new(id);
                spec.kind = group.kind;
                spec.skills = skills.clone();
                spec.languages = group.languages.clone();
                spec.capacity = group.capacity;
                spec.presence = if on { Presence::Available } else { Presence::Offline };
                spec.team = Some(group.name.clone());
                if let Some(m) = metering.as_mut() {
                    m.agent(&spec);
                }
                sim.router.upsert_agent(spec, &mut events)?;
                let human = group.kind == AgentKind::Human;
                sim.agents.push(AgentInfo {
                    group: g as u32,
                    human,
                    capacity: group.capacity.total,
                });
                if human && on {
                    slots += f64::from(group.capacity.total);
                }
            }
        }
        sim.capacity.value = slots;
        sim.metering = metering;
        let mut root = SmallRng::seed_from_u64(seed);
        for (s, arrivals) in scenario.arrivals.iter().enumerate() {
            let rng = SmallRng::seed_from_u64(root.next_u64());
            let mut message =
                Message::new(ConversationId(0), CustomerId(0), arrivals.channel, arrivals.language);
            for (name, level) in &arrivals.skills {
                message.required.push(SkillLevel { skill: sim.router.skill(name)?, level: *level });
            }
            message.tier = arrivals.tier;
            sim.streams.push(Stream { rng, at: start as f64, message });
            sim.next_arrival(s);
        }
        for (g, group) in scenario.agents.iter().enumerate() {
            if !group.shifts.is_empty() {
                let at = sim.next_boundary(g, start);
                sim.schedule(at, Kind::Shift(g as u32));
            }
        }
        Ok(sim)
    }

    fn time_of_day(&self, at: u64) -> u64 {
        (at + DAY_MS - EPOCH_MS % DAY_MS) % DAY_MS
    }

    /// The next shift boundary of group `g` strictly after `at`.
    fn next_boundary(&self, g: usize, at: u64) -> u64 {
        let tod = self.time_of_day(at);
        let day_start = at - tod;
        let shifts = &self.scenario.agents[g].shifts;
        let mut best = u64::MAX;
        for &(from, to) in shifts {
            for b in [from, to] {
                let t = if b > tod { day_start + b } else { day_start + DAY_MS + b };
                best = best.min(t);
            }
        }
        best
    }

    #[inline]
    fn schedule(&mut self, at: u64, kind: Kind) {
        self.seq += 1;
        self.calendar.push(Reverse((at, self.seq, kind)));
    }

    /// Schedules stream `s`'s next arrival before the end of the measured
    /// period, if any (thinning against the profile's peak).
    fn next_arrival(&mut self, s: usize) {
        let arrivals = &self.scenario.arrivals[s];
        let end = self.window.1 as f64;
        if arrivals.peak_per_hour <= 0.0 {
            return;
        }
        let mean_gap_ms = 3_600_000.0 / arrivals.peak_per_hour;
        let interval = self.scenario.interval.millis();
        let stream = &mut self.streams[s];
        loop {
            let gap: f64 = Exp1.sample(&mut stream.rng);
            stream.at += gap * mean_gap_ms;
            if stream.at >= end {
                return;
            }
            let rate = if arrivals.profile.len() == 1 {
                arrivals.profile[0]
            } else {
                let tod = (stream.at as u64 + DAY_MS - EPOCH_MS % DAY_MS) % DAY_MS;
                arrivals.profile[(tod / interval) as usize % arrivals.profile.len()]
            };
            if rate >= arrivals.peak_per_hour
                || stream.rng.random::<f64>() * arrivals.peak_per_hour < rate
            {
                break;
            }
        }
        let at = stream.at.round() as u64;
        self.schedule(at, Kind::Arrival(s as u32));
    }

    fn run(&mut self) -> Result<(), SimError> {
        while let Some(Reverse((at, _, kind))) = self.calendar.pop() {
            self.fire_timers(at);
            self.set_now(at);
            match kind {
                Kind::Arrival(s) => self.arrival(s as usize),
                Kind::Patience(c) => self.patience(c),
                Kind::Reply(c) => self.reply(c),
                Kind::Customer(c) => self.customer(c),
                Kind::Close(c) => {
                    // Only the close of the current assignment (a
                    // conversation taken back and given again has a new one).
                    if self.convs[c as usize].close_due == at {
                        self.close(c);
                    }
                }
                Kind::BotDone(c) => self.bot_done(c),
                Kind::Shift(g) => self.shift(g as usize)?,
            }
        }
        Ok(())
    }

    #[inline]
    fn set_now(&mut self, at: u64) {
        if at > self.now {
            self.now = at;
            self.clock.set(Timestamp(at));
        }
    }

    /// Fires the router's timers due by `at`, each at its own time.
    fn fire_timers(&mut self, at: u64) {
        while let Some(due) = self.router.next_timer() {
            if due.0 > at {
                break;
            }
            self.set_now(due.0);
            self.router.advance(&mut self.events);
            self.apply();
            if self.router.next_timer() == Some(due) {
                // A timer for a conversation already gone: the router
                // skips it; never spin on it.
                break;
            }
        }
    }

    fn arrival(&mut self, s: usize) {
        let now = self.now;
        let arrivals = &self.scenario.arrivals[s];
        let index = self.convs.len() as u32;
        let id = ConversationId(u64::from(index) + 1);
        let mut rng = SmallRng::seed_from_u64(self.streams[s].rng.next_u64());
        let handle_ms = arrivals.handle.sample_ms(&mut rng);
        let patience_ms = arrivals.patience.as_ref().map(|p| p.sample_ms(&mut rng));
        let buying_intent =
            arrivals.buying_intent.as_ref().map_or(0.0, |b| b.sample(&mut rng).min(1.0)) as f32;
        let measured = now >= self.window.0 && now < self.window.1;
        self.counts.conversations += 1;
        if measured {
            self.counts.offered += 1;
            self.counts.streams[s].offered += 1;
        }
        self.convs.push(Conv {
            arrived: now,
            stream: s as u16,
            state: State::Queued,
            measured,
            agent: 0,
            assigned: false,
            first_reply_at: 0,
            patience_due: u64::MAX,
            close_due: u64::MAX,
            person_since: now,
            buying_intent,
            messages_left: arrivals.messages - 1,
            handle_ms,
            rng,
        });
        let stream = &mut self.streams[s];
        stream.message.conversation = id;
        stream.message.customer = CustomerId(id.0);
        stream.message.buying_intent = buying_intent;
        if measured && let Some(m) = self.metering.as_mut() {
            let router = &self.router;
            // Cannot fail: facts come in time order and the conversation is new.
            let _ = m.message(now, &stream.message, "", |skill| router.skill_name(skill));
        }
        self.router.route(&stream.message, &mut self.events);
        self.apply();
        let conv = &self.convs[index as usize];
        if conv.state == State::Queued
            && let Some(patience) = patience_ms
        {
            self.convs[index as usize].patience_due = now + patience;
            self.schedule(now + patience, Kind::Patience(index));
        }
        self.next_arrival(s);
    }

    /// A customer's patience ran out: one still waiting for an agent (on
    /// arrival, or for a person after a bot's hand-off) leaves.
    fn patience(&mut self, c: u32) {
        let conv = &mut self.convs[c as usize];
        if conv.patience_due != self.now || !matches!(conv.state, State::Queued | State::Escalating)
        {
            return;
        }
        if conv.measured {
            self.counts.abandoned += 1;
            if !conv.assigned {
                self.counts.wait_ms_sum += self.now - conv.arrived;
            }
        }
        if conv.person_since != u64::MAX {
            conv.person_since = u64::MAX;
            self.counts.person_waited(conv, false);
        }
        let _ = self.router.close(ConversationId(u64::from(c) + 1), &mut self.events);
        self.apply();
    }

    fn reply_delay(&mut self, c: u32) -> u64 {
        let conv = &mut self.convs[c as usize];
        match &self.scenario.arrivals[conv.stream as usize].reply_delay {
            Some(d) => d.sample_ms(&mut conv.rng),
            None => 0,
        }
    }

    fn reply(&mut self, c: u32) {
        let now = self.now;
        let conv = &mut self.convs[c as usize];
        if !matches!(conv.state, State::Human | State::Bot) {
            return;
        }
        if conv.first_reply_at == 0 {
            conv.first_reply_at = now;
        }
        let agent = AgentId(u64::from(conv.agent) + 1);
        if conv.measured
            && let Some(m) = self.metering.as_mut()
        {
            let _ = m.reply(now, ConversationId(u64::from(c) + 1), agent);
        }
        if conv.state == State::Human && conv.messages_left > 0 {
            // Counted down here, where the next message is scheduled, so a
            // reassignment's second reply chain cannot send more.
            conv.messages_left -= 1;
            let gap = self.scenario.arrivals[conv.stream as usize].gap.sample_ms(&mut conv.rng);
            self.schedule(now + gap, Kind::Customer(c));
        }
    }

    fn customer(&mut self, c: u32) {
        let now = self.now;
        let conv = &mut self.convs[c as usize];
        if conv.state != State::Human {
            return;
        }
        let measured = conv.measured;
        let stream = &mut self.streams[conv.stream as usize];
        stream.message.conversation = ConversationId(u64::from(c) + 1);
        stream.message.customer = CustomerId(u64::from(c) + 1);
        stream.message.buying_intent = conv.buying_intent;
        if measured && let Some(m) = self.metering.as_mut() {
            let router = &self.router;
            let _ = m.message(now, &stream.message, "", |skill| router.skill_name(skill));
        }
        self.router.route(&stream.message, &mut self.events);
        self.apply();
        let delay = self.reply_delay(c);
        self.schedule(now + delay, Kind::Reply(c));
    }

    fn close(&mut self, c: u32) {
        let now = self.now;
        let conversion = &self.scenario.conversion;
        let conv = &mut self.convs[c as usize];
        if !matches!(conv.state, State::Human | State::Bot) {
            return;
        }
        let id = ConversationId(u64::from(c) + 1);
        if conv.first_reply_at > 0 {
            let p = conversion
                .probability(f64::from(conv.buying_intent), conv.first_reply_at - conv.arrived);
            if p > 0.0 && conv.rng.random::<f64>() < p {
                let value = conversion.order_value.sample(&mut conv.rng);
                let money = Money::from_decimal(value, conversion.currency)
                    .unwrap_or(Money { minor: 0, currency: conversion.currency });
                if conv.measured {
                    self.counts.conversions += 1;
                    self.counts.revenue_minor += money.minor;
                    if let Some(m) = self.metering.as_mut() {
                        let _ = m.order(now, id, money);
                    }
                }
            }
        }
        let _ = self.router.close(id, &mut self.events);
        self.apply();
    }

    fn bot_done(&mut self, c: u32) {
        let conv = &mut self.convs[c as usize];
        if conv.state != State::Bot {
            return;
        }
        let group = &self.scenario.agents[self.agents[conv.agent as usize].group as usize];
        let u: f64 = conv.rng.random();
        if u < group.resolve || u >= group.resolve + group.escalate {
            self.close(c);
            return;
        }
        // Escalate: the customer asks for a person.
        let stream = &mut self.streams[conv.stream as usize];
        let mut message = stream.message.clone();
        message.conversation = ConversationId(u64::from(c) + 1);
        message.customer = CustomerId(u64::from(c) + 1);
        message.buying_intent = conv.buying_intent;
        message.signals.human_request = true;
        if conv.measured
            && let Some(m) = self.metering.as_mut()
        {
            let router = &self.router;
            let _ = m.message(self.now, &message, "", |skill| router.skill_name(skill));
        }
        self.router.route(&message, &mut self.events);
        self.apply();
        if self.convs[c as usize].state == State::Bot {
            // The policy does not escalate on request: the bot ends it.
            self.close(c);
        }
    }

    fn shift(&mut self, g: usize) -> Result<(), SimError> {
        let now = self.now;
        let group = &self.scenario.agents[g];
        let on = on_shift(&group.shifts, self.time_of_day(now));
        if on != self.group_on[g] {
            self.group_on[g] = on;
            let presence = if on { Presence::Available } else { Presence::Offline };
            let mut delta = 0.0;
            for (i, agent) in self.agents.iter().enumerate() {
                if agent.group as usize == g {
                    let id = AgentId(i as u64 + 1);
                    self.router.set_presence(id, presence, &mut self.events)?;
                    if let Some(m) = self.metering.as_mut() {
                        // The meter's occupancy follows the shifts too.
                        m.agent_changed(now, &self.router, id);
                    }
                    if agent.human {
                        delta += f64::from(agent.capacity);
                    }
                }
            }
            let value = self.capacity.value + if on { delta } else { -delta };
            self.capacity.set(now, value, self.window);
            self.apply();
        }
        if now < self.window.1 {
            let at = self.next_boundary(g, now);
            self.schedule(at, Kind::Shift(g as u32));
        }
        Ok(())
    }

    /// Applies the router's events: assignments schedule replies and
    /// closes, queueing marks waiting, closes end conversations; the meter
    /// sees the events of measured conversations.
    fn apply(&mut self) {
        let mut events = std::mem::take(&mut self.events);
        loop {
            for event in &events {
                let Some(conversation) = event.conversation else { continue };
                let c = (conversation.0 - 1) as u32;
                let Some(conv) = self.convs.get(c as usize) else { continue };
                if conv.measured
                    && let Some(m) = self.metering.as_mut()
                {
                    m.decisions(std::slice::from_ref(event));
                }
                match event.kind {
                    EventKind::Assigned { reason: AssignReason::Sticky, .. } => {}
                    EventKind::Assigned { .. } | EventKind::OfferAccepted => {
                        if let Some(agent) = event.agent {
                            self.assigned(c, (agent.0 - 1) as u32);
                        }
                    }
                    EventKind::Offered { .. } => {
                        if let Some(agent) = event.agent {
                            self.offers.push((conversation, agent));
                        }
                    }
                    EventKind::Queued { .. } => {
                        let conv = &mut self.convs[c as usize];
                        if !conv.assigned && conv.state == State::Queued && conv.measured {
                            self.counts.waited += 1;
                        }
                        if conv.state == State::Human {
                            // Taken back from a person (gone offline):
                            // no longer held.
                            let value = self.held.value - 1.0;
                            self.held.set(self.now, value, self.window);
                        }
                        let conv = &mut self.convs[c as usize];
                        if conv.state != State::Queued {
                            conv.state = State::Escalating;
                        }
                    }
                    EventKind::Escalated { .. } => {
                        let now = self.now;
                        let conv = &mut self.convs[c as usize];
                        conv.state = State::Escalating;
                        conv.person_since = now;
                        // Waiting for a person again: patience runs anew.
                        let arrivals = &self.scenario.arrivals[conv.stream as usize];
                        if let Some(patience) = &arrivals.patience {
                            let due = now + patience.sample_ms(&mut conv.rng);
                            conv.patience_due = due;
                            self.schedule(due, Kind::Patience(c));
                        }
                    }
                    EventKind::Closed | EventKind::Erased => {
                        let conv = &mut self.convs[c as usize];
                        let was_human = conv.state == State::Human;
                        conv.state = State::Closed;
                        if was_human {
                            let value = self.held.value - 1.0;
                            self.held.set(self.now, value, self.window);
                        }
                    }
                    _ => {}
                }
            }
            events.clear();
            if self.offers.is_empty() {
                break;
            }
            for (conversation, agent) in std::mem::take(&mut self.offers) {
                let _ = self.router.accept_offer(conversation, agent, &mut events);
            }
        }
        self.events = events;
        if let Some(m) = self.metering.as_mut() {
            self.sla_drain += 1;
            if self.sla_drain >= 4096 {
                self.sla_drain = 0;
                drop(m.take_sla_events());
            }
        }
    }

    fn assigned(&mut self, c: u32, agent: u32) {
        let now = self.now;
        let target = self.scenario.service_level_ms;
        let info = self.agents[agent as usize];
        let conv = &mut self.convs[c as usize];
        if conv.state == State::Closed {
            return;
        }
        let was_human = conv.state == State::Human;
        if !conv.assigned {
            conv.assigned = true;
            if conv.measured {
                let waited = now - conv.arrived;
                self.counts.served += 1;
                self.counts.wait_ms_sum += waited;
                if waited <= target {
                    self.counts.served_within_target += 1;
                    self.counts.streams[usize::from(conv.stream)].served_within_target += 1;
                }
            }
        }
        if conv.person_since != u64::MAX {
            let within = now - conv.person_since <= target;
            conv.person_since = u64::MAX;
            // Taken by a bot, a conversation no longer waits for a person.
            if info.human {
                self.counts.person_waited(conv, within);
            }
        }
        conv.agent = agent;
        conv.patience_due = u64::MAX;
        let arrivals = &self.scenario.arrivals[conv.stream as usize];
        let delay = arrivals.reply_delay.as_ref().map_or(0, |d| d.sample_ms(&mut conv.rng));
        if info.human {
            conv.state = State::Human;
            let handle = conv.handle_ms;
            conv.close_due = now + handle;
            if !was_human {
                let value = self.held.value + 1.0;
                self.held.set(now, value, self.window);
            }
            // The first reply comes before the close.
            self.schedule(now + delay.min(handle), Kind::Reply(c));
            self.schedule(now + handle, Kind::Close(c));
        } else {
            conv.state = State::Bot;
            let group = &self.scenario.agents[info.group as usize];
            let hold = match &group.handle {
                Some(d) => d.sample_ms(&mut conv.rng),
                None => conv.handle_ms,
            };
            self.schedule(now + delay.min(hold), Kind::Reply(c));
            self.schedule(now + hold, Kind::BotDone(c));
        }
    }

    fn finish(mut self, options: Options) -> Result<Outcome, SimError> {
        let end = self.window.1.max(self.now);
        let held = self.held.value;
        self.held.set(end, held, self.window);
        let capacity = self.capacity.value;
        self.capacity.set(end, capacity, self.window);
        self.counts.held_ms = self.held.area;
        self.counts.capacity_ms = self.capacity.area;
        // Still waiting for a person when the run ends: not in time.
        for conv in &self.convs {
            if conv.person_since != u64::MAX {
                self.counts.person_waited(conv, false);
            }
        }
        let (report, pages) = match self.metering.as_mut() {
            None => (None, None),
            Some(m) => {
                m.advance(self.now);
                drop(m.take_sla_events());
                let names = agent_names(self.scenario);
                let name = |agent: AgentId| names.get((agent.0 as usize).wrapping_sub(1)).cloned();
                let query = Query {
                    from: self.window.0,
                    to: self.window.1,
                    interval: self.scenario.interval,
                    group_by: Vec::new(),
                };
                let report = m.report(&query, name)?;
                let pages = if options.pages {
                    let by_group =
                        Query { group_by: vec![Dimension::Channel, Dimension::Agent], ..query };
                    Some((report.clone(), m.report(&by_group, name)?))
                } else {
                    None
                };
                (Some(report), pages)
            }
        };
        Ok(Outcome { counts: self.counts, report, pages })
    }
}

fn on_shift(shifts: &[(u64, u64)], tod: u64) -> bool {
    shifts.iter().any(|&(from, to)| from <= tod && tod < to)
}
