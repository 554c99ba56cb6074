//! Operation sequences, and running them against the router and the model
//! side by side.
//!
//! Ids come from small spaces ([`AGENTS`] agents, [`CONVERSATIONS`]
//! conversations, [`CUSTOMERS`] customers, [`SKILLS`] skills, two languages)
//! so that random sequences collide: the same agent is changed while it holds
//! work, a closed conversation id opens again, a customer comes back.

use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use loket_router::{
    AgentId, AgentKind, AgentSpec, Capacity, Channel, ConversationId, ConversationState,
    CustomerId, Event, Language, ManualClock, Message, OfferPolicy, OverflowStep, Presence, Router,
    RouterConfig, RouterError, SkillId, SkillLevel, Strategy, Timestamp, Widen,
};

use crate::model::{AgentState, Model, ModelError};

/// Agent ids are `0..AGENTS`.
pub const AGENTS: u8 = 6;
/// Conversation ids are `0..CONVERSATIONS`.
pub const CONVERSATIONS: u8 = 12;
/// Customer ids are `0..CUSTOMERS`.
pub const CUSTOMERS: u8 = 6;
/// Skill ids are `0..SKILLS` (interned as `s0`, `s1`, ...).
pub const SKILLS: u8 = 4;
/// The languages agents speak and customers write.
pub const LANGUAGES: [Language; 2] = [Language::NL, Language::EN];
/// The channels messages come in on.
pub const CHANNELS: [Channel; 3] = [Channel::Chat, Channel::Whatsapp, Channel::Email];
/// The time steps [`Op::Advance`] takes, in milliseconds.
pub const STEPS_MS: [u64; 6] = [0, 1, 400, 1_000, 3_000, 20_000];
/// The affinity look-back of scenarios with affinity: a few steps long.
pub const LOOKBACK_MS: u64 = 10_000;
/// The wrap-up time of scenarios with wrap-up: between two steps.
pub const WRAP_UP_MS: u64 = 2_000;
/// Skill names, interned in this order so that `SkillId(i)` is `s{i}`.
pub const SKILL_NAMES: [&str; SKILLS as usize] = ["s0", "s1", "s2", "s3"];

/// The overflow steps of scenarios with overflow: after a second, minimums
/// drop by three; after three seconds, skill group `s0` (interned first, by
/// the router's builder, so it stays `SkillId(0)`) replaces the
/// requirements; after twenty seconds, bots may take it.
pub fn overflow_steps() -> Vec<OverflowStep> {
    vec![
        OverflowStep { after_ms: 1_000, widen: Widen::LowerProficiency { by: 3 } },
        OverflowStep { after_ms: 3_000, widen: Widen::SkillGroup { skill: SKILL_NAMES[0].into() } },
        OverflowStep { after_ms: 20_000, widen: Widen::Bot },
    ]
}

/// Offer mode of scenarios with offers: an offer lapses after 1.5 s; two
/// missed in a row make the agent not-responding.
pub const OFFERS: OfferPolicy = OfferPolicy { timeout_ms: 1_500, max_missed: 2 };

/// Where the clocks start: Monday 2026-07-06 12:00 UTC.
pub const START: Timestamp = Timestamp(1_783_339_200_000);

/// A required or offered skill with a level. Agent levels outside 1..=10
/// (0 here) are invalid and must be refused by both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skill {
    /// `0..SKILLS`.
    pub skill: u8,
    /// 0..=10.
    pub level: u8,
}

impl<'a> Arbitrary<'a> for Skill {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Skill> {
        let skill = u.int_in_range(0..=SKILLS - 1)?;
        // One in thirty is the invalid level 0.
        let raw: u8 = u.int_in_range(0..=29)?;
        let level = if raw == 0 { 0 } else { 1 + (raw - 1) % 10 };
        Ok(Skill { skill, level })
    }
}

/// An agent's limits on the three channels in use, and overall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Chat, 0..=3.
    pub chat: u8,
    /// WhatsApp, 0..=3.
    pub whatsapp: u8,
    /// Email, 0..=3.
    pub email: u8,
    /// Overall, 0..=4.
    pub total: u8,
}

impl Limits {
    /// As the router's capacity.
    pub fn capacity(self) -> Capacity {
        Capacity {
            chat: self.chat.into(),
            whatsapp: self.whatsapp.into(),
            email: self.email.into(),
            total: self.total.into(),
            ..Capacity::ZERO
        }
    }
}

impl<'a> Arbitrary<'a> for Limits {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Limits> {
        Ok(Limits {
            chat: u.int_in_range(0..=3)?,
            whatsapp: u.int_in_range(0..=3)?,
            email: u.int_in_range(0..=3)?,
            total: u.int_in_range(0..=4)?,
        })
    }
}

/// Registers or updates an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentOp {
    /// `0..AGENTS`.
    pub agent: u8,
    /// Bot rather than human.
    pub bot: bool,
    /// Skills (at most three; duplicates allowed, the router keeps the highest).
    pub skills: Vec<Skill>,
    /// Bit 0: Dutch, bit 1: English.
    pub languages: u8,
    /// Limits.
    pub limits: Limits,
    /// Presence.
    pub presence: Presence,
}

impl<'a> Arbitrary<'a> for AgentOp {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<AgentOp> {
        let count = u.int_in_range(0..=3)?;
        let mut skills = Vec::with_capacity(count);
        for _ in 0..count {
            skills.push(Skill::arbitrary(u)?);
        }
        Ok(AgentOp {
            agent: u.int_in_range(0..=AGENTS - 1)?,
            // One agent in five is a bot.
            bot: u.int_in_range(0..=4u8)? == 0,
            skills,
            languages: arbitrary_languages(u)?,
            limits: Limits::arbitrary(u)?,
            presence: arbitrary_presence(u)?,
        })
    }
}

/// Mostly Dutch, some English, some both, rarely none.
fn arbitrary_languages(u: &mut Unstructured<'_>) -> arbitrary::Result<u8> {
    Ok(match u.int_in_range(0..=9u8)? {
        0 => 0b00,
        1..=4 => 0b01,
        5 | 6 => 0b10,
        _ => 0b11,
    })
}

/// Mostly available; sometimes away, offline or not responding.
fn arbitrary_presence(u: &mut Unstructured<'_>) -> arbitrary::Result<Presence> {
    Ok(match u.int_in_range(0..=7u8)? {
        0..=3 => Presence::Available,
        4 => Presence::Away,
        5 | 6 => Presence::Offline,
        _ => Presence::NotResponding,
    })
}

/// One inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageOp {
    /// `0..CONVERSATIONS`.
    pub conversation: u8,
    /// `0..CUSTOMERS`.
    pub customer: u8,
    /// Index into [`CHANNELS`].
    pub channel: u8,
    /// Index into [`LANGUAGES`].
    pub language: u8,
    /// Required skills (at most two, levels 0..=6; 0 asks for the skill at any level).
    pub required: Vec<Skill>,
    /// 0..=3.
    pub tier: u8,
    /// Buying intent in tenths, 0..=10.
    pub intent: u8,
    /// 0: none, 1: asks for a person, 2: complaint, 3: doubt.
    pub signal: u8,
}

impl<'a> Arbitrary<'a> for MessageOp {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<MessageOp> {
        // Mostly one requirement or none, at moderate levels, so that
        // agents often qualify and queues drain as well as fill.
        let count = [0, 0, 1, 1, 1, 2][usize::from(u.int_in_range(0..=5u8)?)];
        let mut required = Vec::with_capacity(count);
        for _ in 0..count {
            let skill = u.int_in_range(0..=SKILLS - 1)?;
            // Level 0 (below the valid 1..=10) means "has the skill at all".
            required.push(Skill { skill, level: u.int_in_range(0..=6)? });
        }
        let signal: u8 = u.int_in_range(0..=11)?;
        Ok(MessageOp {
            conversation: u.int_in_range(0..=CONVERSATIONS - 1)?,
            customer: u.int_in_range(0..=CUSTOMERS - 1)?,
            channel: u.int_in_range(0..=2)?,
            language: u8::from(u.int_in_range(0..=9u8)? >= 7),
            required,
            tier: u.int_in_range(0..=3)?,
            intent: u.int_in_range(0..=10)?,
            signal: signal.saturating_sub(8),
        })
    }
}

impl MessageOp {
    /// As the router's message.
    pub fn message(&self) -> Message {
        let mut message = Message::new(
            ConversationId(self.conversation.into()),
            CustomerId(self.customer.into()),
            CHANNELS[usize::from(self.channel) % CHANNELS.len()],
            LANGUAGES[usize::from(self.language) % LANGUAGES.len()],
        );
        message.required.extend(self.required.iter().map(|s| skill_level(*s)));
        message.tier = self.tier;
        message.buying_intent = f32::from(self.intent) / 10.0;
        message.signals.human_request = self.signal == 1;
        message.signals.complaint = self.signal == 2;
        message.signals.doubt = self.signal == 3;
        message
    }
}

/// One operation on a router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `upsert_agent`.
    Upsert(AgentOp),
    /// `set_presence`.
    Presence {
        /// `0..AGENTS`.
        agent: u8,
        /// The new presence.
        presence: Presence,
    },
    /// `set_capacity`.
    Capacity {
        /// `0..AGENTS`.
        agent: u8,
        /// The new limits.
        limits: Limits,
    },
    /// `set_skills`.
    Skills {
        /// `0..AGENTS`.
        agent: u8,
        /// The new skills.
        skills: Vec<Skill>,
    },
    /// `remove_agent`.
    Remove {
        /// `0..AGENTS`.
        agent: u8,
    },
    /// `route`.
    Message(MessageOp),
    /// `transfer`.
    Transfer {
        /// `0..CONVERSATIONS`.
        conversation: u8,
        /// `0..AGENTS`.
        agent: u8,
    },
    /// `accept_offer` or `decline_offer`, answered by the agent holding the
    /// conversation (agent 0 if none: then there is no such offer).
    Answer {
        /// `0..CONVERSATIONS`.
        conversation: u8,
        /// Accept rather than decline.
        accept: bool,
    },
    /// `close`.
    Close {
        /// `0..CONVERSATIONS`.
        conversation: u8,
    },
    /// Moves the clock by `STEPS_MS[step]` and calls `advance`.
    Advance {
        /// Index into [`STEPS_MS`].
        step: u8,
    },
}

impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Op> {
        let agent = |u: &mut Unstructured<'a>| u.int_in_range(0..=AGENTS - 1);
        // Messages are the common case, as in a contact centre.
        Ok(match u.int_in_range(0..=22u8)? {
            0..=2 => Op::Upsert(AgentOp::arbitrary(u)?),
            3 | 4 => Op::Presence { agent: agent(u)?, presence: arbitrary_presence(u)? },
            5 => Op::Capacity { agent: agent(u)?, limits: Limits::arbitrary(u)? },
            6 => {
                let count = u.int_in_range(0..=3)?;
                let mut skills = Vec::with_capacity(count);
                for _ in 0..count {
                    skills.push(Skill::arbitrary(u)?);
                }
                Op::Skills { agent: agent(u)?, skills }
            }
            7 => Op::Remove { agent: agent(u)? },
            8..=13 => Op::Message(MessageOp::arbitrary(u)?),
            14..=16 => Op::Close { conversation: u.int_in_range(0..=CONVERSATIONS - 1)? },
            17..=19 => Op::Advance { step: u.int_in_range(0..=5)? },
            20 | 21 => Op::Answer {
                conversation: u.int_in_range(0..=CONVERSATIONS - 1)?,
                accept: u.int_in_range(0..=2u8)? > 0,
            },
            _ => Op::Transfer {
                conversation: u.int_in_range(0..=CONVERSATIONS - 1)?,
                agent: agent(u)?,
            },
        })
    }
}

/// The routing policy a sequence runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scenario {
    /// The selection strategy.
    pub strategy: Strategy,
    /// New conversations start with bots.
    pub bot_first: bool,
    /// Customer affinity with a [`LOOKBACK_MS`] look-back (else off).
    pub affinity: bool,
    /// Capacity returns [`WRAP_UP_MS`] after a human's close (else at once).
    pub wrap_up: bool,
    /// Waiting conversations widen by [`overflow_steps`] (else never).
    pub overflow: bool,
    /// Humans get offers they must accept ([`OFFERS`]), else assignments.
    pub offers: bool,
    /// The queue is ordered by time to the first-reply breach
    /// (`priority.sla_aware`, the default targets).
    pub sla_aware: bool,
}

impl<'a> Arbitrary<'a> for Scenario {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Scenario> {
        let strategy = match u.int_in_range(0..=3u8)? {
            0 => Strategy::LeastLoaded,
            1 => Strategy::LongestIdle,
            2 => Strategy::MostProficient,
            _ => Strategy::RoundRobin,
        };
        Ok(Scenario {
            strategy,
            bot_first: u.arbitrary()?,
            affinity: u.arbitrary()?,
            wrap_up: u.arbitrary()?,
            overflow: u.arbitrary()?,
            offers: u.arbitrary()?,
            sla_aware: u.arbitrary()?,
        })
    }
}

impl Scenario {
    /// The default scenario: least-loaded, affinity on, humans first.
    pub const DEFAULT: Scenario = Scenario {
        strategy: Strategy::LeastLoaded,
        bot_first: false,
        affinity: true,
        wrap_up: false,
        overflow: false,
        offers: false,
        sla_aware: false,
    };

    /// The router configuration: defaults apart from the scenario's knobs
    /// (no affinity wait, no opening hours).
    pub fn config(self) -> RouterConfig {
        RouterConfig {
            strategy: self.strategy,
            bot_first: self.bot_first,
            affinity_lookback_ms: if self.affinity { LOOKBACK_MS } else { 0 },
            affinity_wait_ms: 0,
            wrap_up_ms: if self.wrap_up { WRAP_UP_MS } else { 0 },
            overflow: if self.overflow { overflow_steps() } else { Vec::new() },
            offers: self.offers.then_some(OFFERS),
            priority: loket_router::PriorityPolicy {
                sla_aware: self.sla_aware,
                ..loket_router::PriorityPolicy::default()
            },
            ..RouterConfig::default()
        }
    }

    /// A router on a manual clock at [`START`], skills `s0..` interned.
    pub fn router(self) -> (Router, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(START));
        let router = Router::builder()
            .config(self.config())
            .clock(clock.clone())
            .build()
            .expect("scenario configurations are valid");
        for (skill, name) in SKILL_NAMES.iter().enumerate() {
            let id = router.skill(name).expect("few skills");
            assert_eq!(id, SkillId(skill as u16), "skills intern in order");
        }
        (router, clock)
    }

    /// The reference model for the same policy.
    pub fn model(self) -> Model {
        Model::new(self.config(), START, &SKILL_NAMES)
            .expect("scenarios use only what the model implements")
    }
}

/// A skill requirement or proficiency as the router's type.
pub fn skill_level(skill: Skill) -> SkillLevel {
    SkillLevel { skill: SkillId(skill.skill.into()), level: skill.level }
}

/// The spec an [`AgentOp`] registers.
pub fn agent_spec(op: &AgentOp) -> AgentSpec {
    let mut spec = AgentSpec::new(AgentId(op.agent.into()));
    spec.kind = if op.bot { AgentKind::Bot } else { AgentKind::Human };
    spec.skills = op.skills.iter().map(|s| skill_level(*s)).collect();
    spec.languages = LANGUAGES
        .iter()
        .enumerate()
        .filter(|(i, _)| op.languages & (1 << i) != 0)
        .map(|(_, l)| *l)
        .collect();
    spec.capacity = op.limits.capacity();
    spec.presence = op.presence;
    spec
}

/// What one operation returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// An agent or close operation succeeded, or the clock moved.
    Done,
    /// A message was routed to this decision.
    Decision(Event),
    /// Refused (the error's debug form).
    Refused(String),
}

/// Applies one operation to a router; events go to `out`.
pub fn apply_to_router(
    router: &Router,
    clock: &ManualClock,
    op: &Op,
    out: &mut Vec<Event>,
) -> Outcome {
    let result: Result<(), RouterError> = match op {
        Op::Upsert(agent) => router.upsert_agent(agent_spec(agent), out),
        Op::Presence { agent, presence } => {
            router.set_presence(AgentId((*agent).into()), *presence, out)
        }
        Op::Capacity { agent, limits } => {
            router.set_capacity(AgentId((*agent).into()), limits.capacity(), out)
        }
        Op::Skills { agent, skills } => router.set_skills(
            AgentId((*agent).into()),
            skills.iter().map(|s| skill_level(*s)).collect(),
            out,
        ),
        Op::Remove { agent } => router.remove_agent(AgentId((*agent).into()), out),
        Op::Message(message) => return Outcome::Decision(router.route(&message.message(), out)),
        Op::Close { conversation } => router.close(ConversationId((*conversation).into()), out),
        Op::Answer { conversation, accept } => {
            let id = ConversationId((*conversation).into());
            let agent = router.conversation(id).and_then(|v| v.agent).unwrap_or(AgentId(0));
            if *accept {
                router.accept_offer(id, agent, out)
            } else {
                router.decline_offer(id, agent, out)
            }
        }
        Op::Transfer { conversation, agent } => {
            router.transfer(ConversationId((*conversation).into()), AgentId((*agent).into()), out)
        }
        Op::Advance { step } => {
            clock.advance(STEPS_MS[usize::from(*step) % STEPS_MS.len()]);
            router.advance(out);
            Ok(())
        }
    };
    match result {
        Ok(()) => Outcome::Done,
        Err(error) => Outcome::Refused(router_error_name(&error).to_owned()),
    }
}

/// Applies one operation to the model; events go to `out`.
pub fn apply_to_model(model: &mut Model, op: &Op, out: &mut Vec<Event>) -> Outcome {
    let result: Result<(), ModelError> = match op {
        Op::Upsert(agent) => model.upsert_agent(agent_spec(agent), out),
        Op::Presence { agent, presence } => {
            model.set_presence(AgentId((*agent).into()), *presence, out)
        }
        Op::Capacity { agent, limits } => {
            model.set_capacity(AgentId((*agent).into()), limits.capacity(), out)
        }
        Op::Skills { agent, skills } => model.set_skills(
            AgentId((*agent).into()),
            skills.iter().map(|s| skill_level(*s)).collect(),
            out,
        ),
        Op::Remove { agent } => model.remove_agent(AgentId((*agent).into()), out),
        Op::Message(message) => return Outcome::Decision(model.route(&message.message(), out)),
        Op::Close { conversation } => model.close(ConversationId((*conversation).into()), out),
        Op::Answer { conversation, accept } => {
            let id = ConversationId((*conversation).into());
            let agent = model.conversation(id).and_then(|(_, agent)| agent).unwrap_or(AgentId(0));
            model.answer_offer(id, agent, *accept, out)
        }
        Op::Transfer { conversation, agent } => {
            model.transfer(ConversationId((*conversation).into()), AgentId((*agent).into()), out)
        }
        Op::Advance { step } => {
            model.advance(STEPS_MS[usize::from(*step) % STEPS_MS.len()], out);
            Ok(())
        }
    };
    match result {
        Ok(()) => Outcome::Done,
        Err(error) => Outcome::Refused(model_error_name(&error).to_owned()),
    }
}

fn router_error_name(error: &RouterError) -> &'static str {
    match error {
        RouterError::UnknownAgent(_) => "unknown agent",
        RouterError::UnknownConversation(_) => "unknown conversation",
        RouterError::InvalidProficiency(_) => "invalid proficiency",
        RouterError::CapacityTooLarge { .. } => "capacity too large",
        RouterError::AgentCannotTake { .. } => "agent cannot take",
        RouterError::NoSuchOffer { .. } => "no such offer",
        _ => "other router error",
    }
}

fn model_error_name(error: &ModelError) -> &'static str {
    match error {
        ModelError::UnknownAgent(_) => "unknown agent",
        ModelError::UnknownConversation(_) => "unknown conversation",
        ModelError::InvalidProficiency(_) => "invalid proficiency",
        ModelError::CapacityTooLarge(_) => "capacity too large",
        ModelError::AgentCannotTake(_) => "agent cannot take",
        ModelError::NoSuchOffer(..) => "no such offer",
    }
}

/// A router and the model, driven in lock-step.
#[derive(Debug)]
pub struct Differential {
    /// The router under test.
    pub router: Router,
    /// Its clock.
    pub clock: Arc<ManualClock>,
    /// The reference model.
    pub model: Model,
    router_events: Vec<Event>,
    model_events: Vec<Event>,
}

impl Differential {
    /// Both sides, fresh, under `scenario`.
    pub fn new(scenario: Scenario) -> Differential {
        let (router, clock) = scenario.router();
        Differential {
            router,
            clock,
            model: scenario.model(),
            router_events: Vec::new(),
            model_events: Vec::new(),
        }
    }

    /// Applies `op` to both sides and compares: the outcome, every event,
    /// then every conversation's state and holder, every agent's presence,
    /// loads and held conversations, the queue order, and the router's own
    /// audit. Returns the router's events for `op` on agreement.
    pub fn step(&mut self, op: &Op) -> Result<&[Event], String> {
        self.router_events.clear();
        self.model_events.clear();
        let got = apply_to_router(&self.router, &self.clock, op, &mut self.router_events);
        let want = apply_to_model(&mut self.model, op, &mut self.model_events);
        if got != want {
            return Err(format!("{op:?}: router returned {got:?}, model {want:?}"));
        }
        if self.router_events != self.model_events {
            return Err(format!(
                "{op:?}: events differ\nrouter: {:#?}\nmodel:  {:#?}",
                self.router_events, self.model_events
            ));
        }
        self.compare_state().map_err(|e| format!("{op:?}: {e}"))?;
        Ok(&self.router_events)
    }

    fn compare_state(&self) -> Result<(), String> {
        for id in 0..u64::from(CONVERSATIONS) {
            let id = ConversationId(id);
            let got: Option<(ConversationState, Option<AgentId>)> =
                self.router.conversation(id).map(|view| (view.state, view.agent));
            let want = self.model.conversation(id);
            if got != want {
                return Err(format!("conversation {}: router {got:?}, model {want:?}", id.0));
            }
        }
        for id in 0..u64::from(AGENTS) {
            let id = AgentId(id);
            let got = self.router.agent(id).map(|view| AgentState {
                presence: view.spec.presence,
                load: view.load,
                total_load: view.total_load,
                holding: view.holding,
                missed_offers: view.missed_offers,
            });
            let want = self.model.agent(id);
            if got != want {
                return Err(format!("agent {}: router {got:?}, model {want:?}", id.0));
            }
        }
        let (got, want) = (self.router.queued(), self.model.queued());
        if got != want {
            return Err(format!("queue: router {got:?}, model {want:?}"));
        }
        let problems = self.router.audit();
        if !problems.is_empty() {
            return Err(format!("router audit: {problems:#?}"));
        }
        Ok(())
    }
}

/// Runs `ops` under `scenario` against the router and the model; the first
/// disagreement (with the operation's index) is the error.
pub fn run_scenario(scenario: Scenario, ops: &[Op]) -> Result<(), String> {
    let mut both = Differential::new(scenario);
    for (index, op) in ops.iter().enumerate() {
        both.step(op).map_err(|e| format!("{scenario:?}, op #{index}: {e}"))?;
    }
    Ok(())
}

/// Runs `ops` under [`Scenario::DEFAULT`]; see [`run_scenario`].
pub fn run_differential(ops: &[Op]) -> Result<(), String> {
    run_scenario(Scenario::DEFAULT, ops)
}

/// Decodes a scenario and an operation sequence from fuzzer bytes.
pub fn decode(data: &[u8]) -> (Scenario, Vec<Op>) {
    let mut u = Unstructured::new(data);
    let scenario = Scenario::arbitrary(&mut u).unwrap_or(Scenario::DEFAULT);
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < 512 {
        match Op::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    (scenario, ops)
}

/// A fixed byte stream per seed (xorshift64*), for the seed corpus and the
/// always-on random tests: the same bytes on every machine and version, which
/// a general-purpose generator does not promise.
#[doc(hidden)]
pub fn seeded_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}
