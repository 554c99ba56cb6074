//! Property tests over random operation sequences (the ops of
//! `loket_spec::ops`: agents registering, changing presence, capacity and
//! skills, leaving; messages; closes; time passing).
//!
//! - `router_agrees_with_the_model`: the router and the reference model make
//!   the same decision, with the same reason, for every operation, and agree
//!   on every conversation's holder and every agent's loads afterwards.
//! - `invariants_hold_after_every_operation`: checked on the router alone,
//!   from what the test itself saw: capacity is never exceeded; a
//!   conversation is held by at most one agent; every message is delivered or
//!   queued and no open conversation is lost; skills and language are
//!   honoured (only the bot-first step, explicit transfers and announced
//!   overflow steps widen who may take it, and an agent that let an offer go
//!   is not offered it again at once); nothing waits while an agent who could
//!   take it has room (the backlog drains on every event); the queue is
//!   ordered by priority with aging, and priorities follow the policy.
//!
//! `PROPTEST_CASES` overrides the case count (default 256).

use std::collections::BTreeMap;

use loket_router::{
    AgentId, AgentKind, AgentView, AssignReason, Channel, ConversationId, ConversationState, Event,
    EventKind, Language, ManualClock, Message, PriorityPolicy, QueueReason, Requirements, Router,
    SkillId, SkillLevel,
};
use loket_spec::ops::{
    AGENTS, CONVERSATIONS, Differential, Op, Outcome, Scenario, apply_to_router, run_scenario,
};
use loket_spec::strategy;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn router_agrees_with_the_model(scenario in strategy::scenario(), ops in strategy::ops(60)) {
        if let Err(disagreement) = run_scenario(scenario, &ops) {
            prop_assert!(false, "{}", disagreement);
        }
    }

    #[test]
    fn invariants_hold_after_every_operation(
        scenario in strategy::scenario(),
        ops in strategy::ops(60),
    ) {
        // Wrap-up keeps closed conversations holding capacity for a while;
        // the book-keeping below treats a close as final, so it runs without.
        let mut desk = Checked::new(Scenario { wrap_up: false, ..scenario });
        for (index, op) in ops.iter().enumerate() {
            if let Err(problem) = desk.step(op) {
                prop_assert!(false, "op #{} {:?}: {}", index, op, problem);
            }
        }
    }
}

/// What the test remembers about an open conversation, from its messages.
#[derive(Debug, Clone)]
struct Open {
    channel: Channel,
    language: Language,
    required: Requirements,
    tier: u8,
    /// Buying intent of the latest message.
    intent: f32,
    escalated: bool,
    /// Queued after a reassignment or a missed offer and not placed since:
    /// goes ahead.
    boosted: bool,
    /// The agent that declined or missed its offer: not offered it again
    /// until it is placed elsewhere.
    excluded: Option<AgentId>,
    /// `OverflowStep` events seen.
    overflow_steps: u8,
    /// The latest `Queued` event that placed it in the queue: (rank, order).
    queued_at: Option<(i64, u64)>,
    /// When it first queued since it last had an agent: waiting counts from here.
    first_queued_ms: Option<u64>,
}

/// The overflow step (0-based) that lets bots in, in `overflow_steps()`.
const BOT_STEP: u8 = 2;

/// The requirements after `steps` overflow steps of `overflow_steps()`,
/// computed here independently of the router: minimums down by three (not
/// below one), then skill group `s0` alone, then bots too.
fn widened(required: &Requirements, steps: u8) -> Requirements {
    let mut widened: Requirements = Requirements::new();
    for need in required {
        let level = need.level.clamp(1, 10);
        match widened.iter_mut().find(|w| w.skill == need.skill) {
            Some(kept) => kept.level = kept.level.max(level),
            None => widened.push(SkillLevel { skill: need.skill, level }),
        }
    }
    if steps >= 1 {
        for need in &mut widened {
            need.level = need.level.saturating_sub(3).max(1);
        }
    }
    if steps >= 2 {
        widened.clear();
        widened.push(SkillLevel { skill: SkillId(0), level: 1 });
    }
    widened
}

/// The router plus the test's own book-keeping, checking the invariants
/// after every operation.
struct Checked {
    router: Router,
    clock: std::sync::Arc<ManualClock>,
    policy: PriorityPolicy,
    open: BTreeMap<ConversationId, Open>,
    events: Vec<Event>,
    agents: Vec<Option<AgentView>>,
    order: u64,
}

impl Checked {
    fn new(scenario: Scenario) -> Checked {
        let (router, clock) = scenario.router();
        let policy = router.config().priority.clone();
        Checked {
            router,
            clock,
            policy,
            open: BTreeMap::new(),
            events: Vec::new(),
            agents: vec![None; AGENTS.into()],
            order: 0,
        }
    }

    fn agent_views(&self) -> Vec<Option<AgentView>> {
        (0..u64::from(AGENTS)).map(|id| self.router.agent(AgentId(id))).collect()
    }

    fn step(&mut self, op: &Op) -> Result<(), String> {
        self.events.clear();
        let message: Option<Message> = match op {
            Op::Message(m) => Some(m.message()),
            _ => None,
        };
        let opens = message.as_ref().filter(|m| !self.open.contains_key(&m.conversation));
        let escalates_at_once = opens.is_some_and(|m| {
            let config = self.router.config();
            let policy = &config.escalation;
            config.bot_first
                && ((policy.on_human_request && m.signals.human_request)
                    || (policy.on_complaint && m.signals.complaint)
                    || (policy.on_doubt && m.signals.doubt)
                    || m.buying_intent.clamp(0.0, 1.0) >= policy.buying_intent_threshold)
        });
        if let Some(message) = &message
            && !self.open.contains_key(&message.conversation)
        {
            self.open.insert(
                message.conversation,
                Open {
                    channel: message.channel,
                    language: message.language,
                    required: message.required.clone(),
                    tier: message.tier,
                    intent: 0.0,
                    escalated: false,
                    boosted: false,
                    excluded: None,
                    overflow_steps: 0,
                    queued_at: None,
                    first_queued_ms: None,
                },
            );
        }
        if let Some(message) = &message {
            let open = self.open.get_mut(&message.conversation).expect("just inserted");
            open.intent = message.buying_intent;
        }
        let outcome = apply_to_router(&self.router, &self.clock, op, &mut self.events);
        if let (Op::Close { conversation }, Outcome::Done) = (op, &outcome) {
            self.open.remove(&ConversationId((*conversation).into()));
        }
        if let (Op::Remove { agent }, Outcome::Done) = (op, &outcome) {
            // A removed agent registered again is a new agent to the router.
            let agent = AgentId((*agent).into());
            for open in self.open.values_mut().filter(|o| o.excluded == Some(agent)) {
                open.excluded = None;
            }
        }
        let views = self.agent_views();
        let before = std::mem::replace(&mut self.agents, views);

        // Every message is delivered or queued.
        if let Outcome::Decision(decision) = outcome {
            let delivered = decision.is_assignment() && decision.agent.is_some();
            let queued = matches!(decision.kind, EventKind::Queued { .. });
            if !(delivered || queued) || !self.events.contains(&decision) {
                return Err(format!("decision {decision:?} is neither delivery nor queueing"));
            }
        }
        // A first message that meets an escalation trigger goes past the
        // bots at once.
        if escalates_at_once {
            let escalated =
                self.events.iter().any(|e| matches!(e.kind, EventKind::Escalated { .. }));
            let to_bot = self.events.iter().any(|e| {
                matches!(e.kind, EventKind::Assigned { reason: AssignReason::BotFirst, .. })
            });
            if !escalated || to_bot {
                return Err(format!("a first message that escalates: {:?}", self.events));
            }
        }
        self.check_events()?;
        self.check_capacity(&before)?;
        self.check_holders()?;
        self.check_queue()?;
        self.check_settled()?;
        let problems = self.router.audit();
        if !problems.is_empty() {
            return Err(format!("audit: {problems:?}"));
        }
        Ok(())
    }

    /// Skills, language and presence are honoured by every assignment that
    /// is not sticky; only the bot-first step gives work to bots; queued
    /// priorities follow the policy.
    fn check_events(&mut self) -> Result<(), String> {
        for event in self.events.clone() {
            let Some(id) = event.conversation else { continue };
            match event.kind {
                EventKind::Escalated { .. } => {
                    if let Some(open) = self.open.get_mut(&id) {
                        open.escalated = true;
                    }
                }
                EventKind::OverflowStep { step } => {
                    let open = self.open.get_mut(&id).ok_or(format!("widened unknown {id:?}"))?;
                    if step != open.overflow_steps {
                        return Err(format!("{event:?} after {} steps", open.overflow_steps));
                    }
                    open.overflow_steps += 1;
                }
                EventKind::OfferDeclined | EventKind::OfferExpired => {
                    let open = self.open.get_mut(&id).ok_or(format!("offered unknown {id:?}"))?;
                    open.excluded = event.agent;
                }
                EventKind::Assigned { reason, .. } | EventKind::Offered { reason, .. }
                    if reason != AssignReason::Sticky =>
                {
                    let open = self.open.get_mut(&id).ok_or(format!("assigned unknown {id:?}"))?;
                    open.boosted = false;
                    open.first_queued_ms = None;
                    // (An explicit transfer is the platform's call.)
                    if open.excluded.is_some()
                        && open.excluded == event.agent
                        && reason != AssignReason::Transfer
                    {
                        return Err(format!("{event:?}: the agent let this offer go"));
                    }
                    open.excluded = None;
                    let open = &self.open[&id];
                    // Requirements widen only by overflow steps the router
                    // announced, and exactly as configured.
                    let required = widened(&open.required, open.overflow_steps);
                    if let AssignReason::Overflow { step } = reason
                        && step + 1 != open.overflow_steps
                    {
                        return Err(format!("{event:?} after {} steps", open.overflow_steps));
                    }
                    let agent = event.agent.ok_or("an assignment without agent")?;
                    let view =
                        self.router.agent(agent).ok_or(format!("assigned to gone {agent:?}"))?;
                    let spec = &view.spec;
                    // Available, or it missed offers later in the same operation.
                    let stopped = self
                        .events
                        .iter()
                        .any(|e| e.kind == EventKind::AgentNotResponding && e.agent == Some(agent));
                    if spec.presence != loket_router::Presence::Available && !stopped {
                        return Err(format!("{event:?}: agent is {:?}", spec.presence));
                    }
                    if !spec.languages.contains(&open.language) {
                        return Err(format!("{event:?}: agent does not speak {}", open.language));
                    }
                    match spec.kind {
                        // An explicit transfer is the platform's call on skills.
                        _ if reason == AssignReason::Transfer => {}
                        AgentKind::Bot
                            if reason != AssignReason::BotFirst
                                && open.overflow_steps <= BOT_STEP =>
                        {
                            return Err(format!(
                                "{event:?}: a bot, neither bot-first nor overflow"
                            ));
                        }
                        AgentKind::Bot => {}
                        AgentKind::Human => {
                            for need in &required {
                                let level = spec
                                    .skills
                                    .iter()
                                    .find(|s| s.skill == need.skill)
                                    .map(|s| s.level);
                                if level.is_none_or(|level| level < need.level) {
                                    return Err(format!("{event:?}: agent lacks {need:?}"));
                                }
                            }
                        }
                    }
                }
                EventKind::Queued { reason, priority, why, .. } => {
                    if why.is_some() != (reason == QueueReason::NoEligibleAgent) {
                        return Err(format!("{event:?}: a why is for no_eligible_agent only"));
                    }
                    let open = self.open.get_mut(&id).ok_or(format!("queued unknown {id:?}"))?;
                    if matches!(reason, QueueReason::Reassignment | QueueReason::OfferNotTaken) {
                        open.boosted = true;
                    }
                    let boosted = open.boosted || open.escalated;
                    let want = self.policy.channel_urgency[open.channel.index()]
                        + (open.intent * self.policy.buying_intent_weight as f32).round() as u32
                        + u32::from(open.tier) * self.policy.tier_weight
                        + if boosted { self.policy.escalation_boost } else { 0 };
                    if reason != QueueReason::AlreadyQueued {
                        if priority != want {
                            return Err(format!(
                                "{event:?}: priority {priority}, policy says {want}"
                            ));
                        }
                        let aging = self.policy.aging_ms_per_point as i64;
                        self.order += 1;
                        let first = *open.first_queued_ms.get_or_insert(event.at.0);
                        // With `sla_aware` the first-reply breach is the
                        // start of the wait that counts.
                        let breach = if self.policy.sla_aware {
                            self.policy.sla_first_reply_ms[open.channel.index()] as i64
                        } else {
                            0
                        };
                        open.queued_at =
                            Some((first as i64 + breach - i64::from(priority) * aging, self.order));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// A load above its limit is only ever left over from a lowered limit:
    /// it never grows.
    fn check_capacity(&self, before: &[Option<AgentView>]) -> Result<(), String> {
        for (now, before) in self.agents.iter().zip(before) {
            let Some(now) = now else { continue };
            let limits = now.spec.capacity;
            let same = before.as_ref().filter(|b| b.spec.id == now.spec.id);
            for channel in Channel::ALL {
                let load = now.load[channel.index()];
                let was = same.map_or(0, |b| b.load[channel.index()]);
                if load > limits.channel(channel) && load > was {
                    return Err(format!(
                        "agent {:?}: {channel} load {load} over limit, was {was}",
                        now.spec.id
                    ));
                }
            }
            let was = same.map_or(0, |b| b.total_load);
            if now.total_load > limits.total && now.total_load > was {
                return Err(format!(
                    "agent {:?}: total load {} over limit",
                    now.spec.id, now.total_load
                ));
            }
        }
        Ok(())
    }

    /// Each open conversation is held by its one agent or waits; nothing
    /// else is held; loads count exactly the held conversations.
    fn check_holders(&self) -> Result<(), String> {
        let mut holder_of: BTreeMap<ConversationId, AgentId> = BTreeMap::new();
        for view in self.agents.iter().flatten() {
            let mut load = [0u32; 6];
            for &id in &view.holding {
                if let Some(other) = holder_of.insert(id, view.spec.id) {
                    return Err(format!("{id:?} held by {other:?} and {:?}", view.spec.id));
                }
                let open =
                    self.open.get(&id).ok_or(format!("{:?} holds closed {id:?}", view.spec.id))?;
                load[open.channel.index()] += 1;
            }
            if load != view.load || view.total_load != view.holding.len() as u32 {
                return Err(format!(
                    "agent {:?}: loads {:?} for holding {:?}",
                    view.spec.id, view.load, view.holding
                ));
            }
        }
        let queued = self.router.queued();
        for id in (0..u64::from(CONVERSATIONS)).map(ConversationId) {
            let view = self.router.conversation(id);
            match (self.open.get(&id), view) {
                (None, None) => {}
                (None, Some(view)) => {
                    return Err(format!("{id:?} closed but still {:?}", view.state));
                }
                (Some(_), None) => return Err(format!("{id:?} is lost")),
                (Some(open), Some(view)) => {
                    if view.overflow_step != open.overflow_steps
                        || view.required != widened(&open.required, open.overflow_steps)
                    {
                        return Err(format!(
                            "{id:?} needs {:?} after {} steps, test expects {:?} after {}",
                            view.required,
                            view.overflow_step,
                            widened(&open.required, open.overflow_steps),
                            open.overflow_steps
                        ));
                    }
                    if view.agent != holder_of.get(&id).copied() {
                        return Err(format!(
                            "{id:?} names {:?}, holders say {:?}",
                            view.agent,
                            holder_of.get(&id)
                        ));
                    }
                    let ok = match view.state {
                        ConversationState::Assigned
                        | ConversationState::Offered
                        | ConversationState::Bot => view.agent.is_some(),
                        ConversationState::Queued => queued.contains(&id),
                        _ => false,
                    };
                    if !ok {
                        return Err(format!("{id:?} is {:?} with {:?}", view.state, view.agent));
                    }
                }
            }
        }
        Ok(())
    }

    /// The backlog drains on every event (policy 11): after any operation,
    /// no waiting conversation could be taken by an available human agent
    /// who speaks its language, has its skills and has room on its channel.
    fn check_settled(&self) -> Result<(), String> {
        for id in self.router.queued() {
            let view = self.router.conversation(id).ok_or("queued but unknown")?;
            let excluded = self.open.get(&id).and_then(|open| open.excluded);
            for agent in self.agents.iter().flatten().filter(|a| Some(a.spec.id) != excluded) {
                let spec = &agent.spec;
                let channel = view.channel;
                let skilled = match spec.kind {
                    AgentKind::Human => view.required.iter().all(|need| {
                        spec.skills.iter().any(|s| s.skill == need.skill && s.level >= need.level)
                    }),
                    AgentKind::Bot => view.overflow_step > BOT_STEP,
                };
                let could = spec.presence == loket_router::Presence::Available
                    && skilled
                    && spec.languages.contains(&view.language)
                    && agent.load[channel.index()] < spec.capacity.channel(channel)
                    && agent.total_load < spec.capacity.total;
                if could {
                    return Err(format!("{id:?} waits while {:?} could take it", spec.id));
                }
            }
        }
        Ok(())
    }

    /// The queue is ordered by `enqueued_at - priority * aging` (the
    /// effective priority with aging at any time), first come first served
    /// on ties; an `AlreadyQueued` answer gives the true place in line.
    fn check_queue(&self) -> Result<(), String> {
        let queued = self.router.queued();
        let mut want: Vec<((i64, u64), ConversationId)> = Vec::new();
        for (&id, open) in &self.open {
            if self.router.conversation(id).is_some_and(|v| v.state == ConversationState::Queued) {
                want.push((open.queued_at.ok_or(format!("{id:?} queued without an event"))?, id));
            }
        }
        want.sort();
        let want: Vec<ConversationId> = want.into_iter().map(|(_, id)| id).collect();
        if queued != want {
            return Err(format!("queue {queued:?}, priority and aging say {want:?}"));
        }
        // An `AlreadyQueued` answer gives the place in line among the
        // conversations waiting for the same kind of agent (channel,
        // language, required skills, bots allowed or not).
        let need = |id: ConversationId| {
            self.router
                .conversation(id)
                .map(|v| (v.channel, v.language, v.required, v.overflow_step > BOT_STEP))
        };
        for event in &self.events {
            if let (
                EventKind::Queued { reason: QueueReason::AlreadyQueued, position, .. },
                Some(id),
            ) = (event.kind, event.conversation)
            {
                let mine = need(id);
                let index =
                    queued.iter().position(|&q| q == id).ok_or("answered queued, not queued")?;
                let ahead = queued[..index].iter().filter(|&&q| need(q) == mine).count();
                if ahead != position as usize {
                    return Err(format!("{event:?}: {ahead} ahead in line, queue {queued:?}"));
                }
            }
        }
        Ok(())
    }
}

/// A requirement with minimum proficiency 0 (below the valid 1..=10) was
/// treated two ways: `select` needed the agent to have the skill, the
/// backlog drain did not. Regression test: requirements are normalised to 1..=10.
#[test]
fn a_level_zero_requirement_is_judged_the_same_when_routing_and_draining() {
    use loket_spec::ops::{AgentOp, Limits, MessageOp, Skill};
    let chat1 = Limits { chat: 1, whatsapp: 0, email: 0, total: 1 };
    let agent = |agent, skills: Vec<Skill>, presence| {
        Op::Upsert(AgentOp { agent, bot: false, skills, languages: 0b01, limits: chat1, presence })
    };
    let ops = [
        // Agent 0 knows s1 but is offline; agent 1 knows nothing and is free.
        agent(0, vec![Skill { skill: 1, level: 3 }], loket_router::Presence::Offline),
        agent(1, vec![], loket_router::Presence::Available),
        // A conversation needing s1 at "level 0": nobody with s1 is free, so it waits.
        Op::Message(MessageOp {
            conversation: 1,
            customer: 1,
            channel: 0,
            language: 0,
            required: vec![Skill { skill: 1, level: 0 }],
            tier: 0,
            intent: 0,
            signal: 0,
        }),
        // Any event that drains for agent 1 (here: the same capacity again)
        // hands it the conversation it was just refused.
        Op::Capacity { agent: 1, limits: chat1 },
    ];
    let mut both = Differential::new(Scenario::DEFAULT);
    for op in &ops {
        both.step(op).unwrap();
    }
}

/// The same decisions, independently of the model: what the bug looked
/// like from the router's API alone.
#[test]
fn a_level_zero_requirement_never_goes_to_an_agent_without_the_skill() {
    use loket_router::{AgentSpec, Capacity, CustomerId, SkillLevel};
    let router = Router::new();
    let skill = router.skill("returns").unwrap();
    let chat1 = Capacity { chat: 1, total: 1, ..Capacity::ZERO };
    let mut events = Vec::new();
    let mut expert = AgentSpec::new(AgentId(0));
    expert.skills = vec![SkillLevel { skill, level: 3 }];
    expert.languages = vec![Language::NL];
    expert.capacity = chat1;
    expert.presence = loket_router::Presence::Offline;
    router.upsert_agent(expert, &mut events).unwrap();
    let mut novice = AgentSpec::new(AgentId(1));
    novice.languages = vec![Language::NL];
    novice.capacity = chat1;
    router.upsert_agent(novice, &mut events).unwrap();
    let mut message = Message::new(ConversationId(1), CustomerId(1), Channel::Chat, Language::NL);
    message.required.push(SkillLevel { skill, level: 0 });
    let decision = router.route(&message, &mut events);
    assert!(matches!(decision.kind, EventKind::Queued { .. }), "{decision:?}");
    router.set_capacity(AgentId(1), chat1, &mut events).unwrap();
    assert_eq!(router.conversation(ConversationId(1)).unwrap().agent, None, "{events:#?}");
}

/// Waiting time counts from when a conversation started waiting: an overflow
/// step widens its requirements but must not send it behind conversations
/// of the same priority that arrived after it (`PriorityPolicy`: "a
/// conversation that has waited long enough overtakes any newer one").
/// Regression test: waiting counts from the first queueing.
#[test]
fn an_overflow_step_keeps_the_time_already_waited() {
    use loket_router::CustomerId;
    let scenario = Scenario { overflow: true, ..Scenario::DEFAULT };
    let (router, clock) = scenario.router();
    let mut events = Vec::new();
    let chat = |id| Message::new(ConversationId(id), CustomerId(id), Channel::Chat, Language::NL);
    // Nobody is logged in: both wait, with the same priority.
    router.route(&chat(1), &mut events);
    clock.advance(500);
    router.route(&chat(2), &mut events);
    assert_eq!(router.queued(), [ConversationId(1), ConversationId(2)]);
    // Conversation 1 takes its first overflow step (after 1 s of waiting).
    clock.advance(600);
    router.advance(&mut events);
    assert_eq!(router.conversation(ConversationId(1)).unwrap().overflow_step, 1);
    assert_eq!(
        router.queued(),
        [ConversationId(1), ConversationId(2)],
        "conversation 1 has waited 1.1 s, conversation 2 only 0.6 s"
    );
}

proptest! {
    /// `priority.sla_aware`: among conversations equal in points, the one
    /// whose first-reply target runs out first goes first, whatever the
    /// channels and the order they came in.
    #[test]
    fn with_sla_aware_the_nearer_breach_goes_first(
        channels in (0..6usize, 0..6usize),
        arrivals in (0..600_000u64, 0..600_000u64),
        targets in prop::array::uniform6(1_000..20_000_000u64),
    ) {
        use loket_router::{AgentSpec, Capacity, CustomerId, RouterConfig};
        let breach = |i: usize| [arrivals.0, arrivals.1][i] + targets[[channels.0, channels.1][i]];
        prop_assume!(breach(0) != breach(1));
        let mut config = RouterConfig::default();
        config.priority.channel_urgency = [0; 6];
        config.priority.sla_aware = true;
        config.priority.sla_first_reply_ms = targets;
        let start = 1_796_544_000_000;
        let clock = std::sync::Arc::new(ManualClock::new(loket_router::Timestamp(start)));
        let router = Router::builder().config(config).clock(clock.clone()).build().unwrap();
        let mut events = Vec::new();
        // Nobody is logged in: both wait, with the same points.
        let mut order = [0usize, 1];
        order.sort_by_key(|&i| [arrivals.0, arrivals.1][i]);
        for i in order {
            clock.set(loket_router::Timestamp(start + [arrivals.0, arrivals.1][i]));
            let channel = Channel::ALL[[channels.0, channels.1][i]];
            let id = i as u64 + 1;
            let decision =
                router.route(&Message::new(ConversationId(id), CustomerId(id), channel, Language::NL), &mut events);
            prop_assert!(matches!(decision.kind, EventKind::Queued { .. }), "{decision:?}");
        }
        // One agent with room for one conversation on any channel comes.
        clock.set(loket_router::Timestamp(start + 600_000));
        let mut agent = AgentSpec::new(AgentId(9));
        agent.languages = vec![Language::NL];
        agent.capacity = Capacity { chat: 1, whatsapp: 1, messenger: 1, sms: 1, email: 1, voice: 1, total: 1 };
        events.clear();
        router.upsert_agent(agent, &mut events).unwrap();
        let assigned: Vec<ConversationId> = events
            .iter()
            .filter(|event| matches!(event.kind, EventKind::Assigned { .. }))
            .filter_map(|event| event.conversation)
            .collect();
        let nearer = if breach(0) < breach(1) { 1 } else { 2 };
        prop_assert_eq!(assigned, vec![ConversationId(nearer)]);
    }
}
