//! The reference model: the routing policy written as plainly as possible.
//!
//! Everything is a `Vec` and a linear scan; there is no concurrency, no index
//! and no cleverness, so that each rule can be read off the code and checked
//! against the policy. Agents keep their registration order (the
//! router's slot order) for good: a removed agent stays in the list, marked
//! removed, and registering its id again appends a new entry.

use loket_router::{
    AgentId, AgentKind, AgentSpec, AssignReason, Capacity, Channel, ConversationId,
    ConversationState, CustomerId, EscalationTrigger, Event, EventKind, Language, Message,
    Presence, QueueReason, Requirements, RouterConfig, SkillLevel, Strategy, Timestamp, Why, Widen,
};

/// How many agents a customer's history remembers (as the router).
const HISTORY: usize = 4;
/// Largest per-channel and overall limits (as `loket_capacity`).
const MAX_PER_CHANNEL: u32 = 0xFF;
const MAX_TOTAL: u32 = 0xFFFF;

/// What the model refuses; mirrors the `RouterError` variants it can meet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// No live agent with this id.
    #[error("unknown agent {}", .0.0)]
    UnknownAgent(AgentId),
    /// No open conversation with this id.
    #[error("unknown conversation {}", .0.0)]
    UnknownConversation(ConversationId),
    /// A proficiency outside 1..=10.
    #[error("proficiency {0} is outside 1..=10")]
    InvalidProficiency(u8),
    /// A limit above what a capacity cell holds.
    #[error("capacity for {0} is too large")]
    CapacityTooLarge(&'static str),
    /// A transfer target that is not available, does not speak the
    /// conversation's language or has no room on its channel.
    #[error("agent {} cannot take the conversation", .0.0)]
    AgentCannotTake(AgentId),
    /// No pending offer of this conversation to this agent.
    #[error("no pending offer of conversation {} to agent {}", .0.0, .1.0)]
    NoSuchOffer(ConversationId, AgentId),
}

/// The configuration knobs the model does not implement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the model does not implement {0}")]
pub struct Unsupported(pub &'static str);

/// One agent as the model sees it: its spec and what it holds.
#[derive(Debug, Clone)]
struct Agent {
    spec: AgentSpec,
    removed: bool,
    load: [u32; 6],
    total: u32,
    /// Held conversations in the order the router keeps them: appended on
    /// assignment, removed by swapping the last one into the hole.
    holding: Vec<ConversationId>,
    last_assigned: Timestamp,
    /// Offers missed in a row.
    missed_offers: u32,
}

impl Agent {
    fn presence(&self) -> Presence {
        if self.removed { Presence::Offline } else { self.spec.presence }
    }

    fn has_room(&self, channel: Channel) -> bool {
        self.load[channel.index()] < self.spec.capacity.channel(channel)
            && self.total < self.spec.capacity.total
    }

    fn level(&self, skill: loket_router::SkillId) -> Option<u8> {
        self.spec.skills.iter().find(|s| s.skill == skill).map(|s| s.level)
    }

    /// Has every required skill at or above its minimum.
    fn qualifies(&self, required: &[SkillLevel]) -> bool {
        required.iter().all(|r| self.level(r.skill).is_some_and(|level| level >= r.level))
    }
}

/// A place in the queue: lower `(rank, seq)` is served first.
#[derive(Debug, Clone, Copy)]
struct Queued {
    rank: i64,
    seq: u64,
    priority: u32,
    enqueued_at: Timestamp,
}

#[derive(Debug, Clone)]
struct Conversation {
    id: ConversationId,
    customer: CustomerId,
    channel: Channel,
    language: Language,
    required: Requirements,
    tier: u8,
    buying_intent: f32,
    state: ConversationState,
    /// Index into `Model::agents`.
    holder: Option<usize>,
    escalated: bool,
    boosted: bool,
    queued: Option<Queued>,
    /// In wrap-up: when capacity returns, and the timer's order among
    /// timers due at the same time.
    wrap_up_until: Option<(Timestamp, u64)>,
    /// Overflow steps applied.
    overflow_step: u8,
    /// When it first started waiting (overflow steps count from here).
    first_queued_at: Option<Timestamp>,
    /// While waiting: when the next overflow step applies, and the timer's order.
    overflow_timer: Option<(Timestamp, u64)>,
    /// While offered: when the offer lapses, and the timer's order.
    offer_timer: Option<(Timestamp, u64)>,
    /// The agent (slot) that last declined or missed its offer: skipped
    /// until the conversation is placed again.
    excluded: Option<usize>,
}

#[derive(Debug, Clone, Copy)]
struct Served {
    slot: usize,
    at: Timestamp,
}

/// Which agents may take a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pool {
    Humans,
    Bots,
    HumansOrBots,
}

/// What a conversation needs from an agent now.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Need {
    channel: Channel,
    language: Language,
    required: Requirements,
    pool: Pool,
}

/// What a timer does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    OfferExpiry,
    WrapUpEnd,
    Overflow,
}

/// One overflow step's widening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Widening {
    Lower(u8),
    Group(loket_router::SkillId),
    Bot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    New,
    Reassign,
    Escalate,
    /// Requirements widened by an overflow step while waiting.
    Widened,
    /// An offer was declined or lapsed.
    OfferNotTaken,
}

/// An agent's state as the model has it, for comparison with `Router::agent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentState {
    /// Presence.
    pub presence: Presence,
    /// Load per channel, indexed as `Channel::ALL`.
    pub load: [u32; 6],
    /// Overall load.
    pub total_load: u32,
    /// Conversations holding its capacity, in the router's order.
    pub holding: Vec<ConversationId>,
    /// Offers missed in a row.
    pub missed_offers: u32,
}

/// The reference model. See the module docs.
#[derive(Debug, Clone)]
pub struct Model {
    config: RouterConfig,
    /// Overflow steps in order of `after_ms`, group names resolved.
    overflow: Vec<(u64, Widening)>,
    now: Timestamp,
    agents: Vec<Agent>,
    conversations: Vec<Conversation>,
    history: Vec<(CustomerId, Vec<Served>)>,
    next_seq: u64,
    next_timer: u64,
    round_robin: usize,
}

fn clamp_unit(value: f32) -> f32 {
    if value.is_nan() { 0.0 } else { value.clamp(0.0, 1.0) }
}

/// Checks and normalises a spec as the router does: proficiencies 1..=10,
/// limits within range, skills sorted by id with the highest level kept,
/// languages sorted and de-duplicated.
fn normalise(mut spec: AgentSpec) -> Result<AgentSpec, ModelError> {
    for skill in &spec.skills {
        if !(1..=10).contains(&skill.level) {
            return Err(ModelError::InvalidProficiency(skill.level));
        }
    }
    for channel in Channel::ALL {
        if spec.capacity.channel(channel) > MAX_PER_CHANNEL {
            return Err(ModelError::CapacityTooLarge(channel.as_str()));
        }
    }
    if spec.capacity.total > MAX_TOTAL {
        return Err(ModelError::CapacityTooLarge("total"));
    }
    let mut skills: Vec<SkillLevel> = Vec::new();
    for skill in &spec.skills {
        match skills.iter_mut().find(|s| s.skill == skill.skill) {
            Some(kept) => kept.level = kept.level.max(skill.level),
            None => skills.push(*skill),
        }
    }
    skills.sort_by_key(|s| s.skill);
    spec.skills = skills;
    spec.languages.sort();
    spec.languages.dedup();
    Ok(spec)
}

/// Requirements as a conversation keeps them: minimums clamped to 1..=10
/// (so a 0 still asks for the skill), each skill once at its highest
/// minimum, in the order first listed.
fn normalise_requirements(required: &[SkillLevel]) -> Requirements {
    let mut normalised = Requirements::new();
    for requirement in required {
        let level = requirement.level.clamp(1, 10);
        match normalised.iter_mut().find(|r| r.skill == requirement.skill) {
            Some(kept) => kept.level = kept.level.max(level),
            None => normalised.push(SkillLevel { skill: requirement.skill, level }),
        }
    }
    normalised
}

impl Model {
    /// A model with this policy, its clock standing at `now`; `skills`
    /// names the skill ids in order (`skills[i]` is `SkillId(i)`), as the
    /// router interned them, for overflow skill groups.
    ///
    /// Supported: every strategy, affinity with a look-back (no affinity
    /// wait), bot-first, escalation, the priority policy with aging,
    /// wrap-up, overflow steps, offers. Not supported: business hours.
    pub fn new(
        config: RouterConfig,
        now: Timestamp,
        skills: &[&str],
    ) -> Result<Model, Unsupported> {
        if !config.business_hours.is_empty() {
            return Err(Unsupported("business hours"));
        }
        if config.affinity_wait_ms > 0 {
            return Err(Unsupported("waiting for the preferred agent"));
        }
        let mut steps = config.overflow.clone();
        steps.sort_by_key(|step| step.after_ms);
        let mut overflow = Vec::new();
        for step in steps {
            let widening = match step.widen {
                Widen::LowerProficiency { by } => Widening::Lower(by),
                Widen::SkillGroup { skill } => {
                    let id = skills
                        .iter()
                        .position(|name| *name == skill)
                        .ok_or(Unsupported("an overflow group not among the named skills"))?;
                    Widening::Group(loket_router::SkillId(id as u16))
                }
                Widen::Bot => Widening::Bot,
            };
            overflow.push((step.after_ms, widening));
        }
        Ok(Model {
            config,
            overflow,
            now,
            agents: Vec::new(),
            conversations: Vec::new(),
            history: Vec::new(),
            next_seq: 0,
            next_timer: 0,
            round_robin: 0,
        })
    }

    /// The model's clock.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Moves the clock forward and fires every timer that is due, earliest
    /// first (ties in the order they were set): wrap-ups end, waiting
    /// conversations take their next overflow step.
    pub fn advance(&mut self, ms: u64, out: &mut Vec<Event>) {
        self.now = self.now.plus_ms(ms);
        // Firing can set timers that are due at once (a conversation that
        // waited through several steps): look again after each.
        while let Some((_, _, id, timer)) = self.next_due() {
            let index = self.index_of(id).expect("timers belong to known conversations");
            let mut drains = Vec::new();
            if timer == Timer::OfferExpiry {
                let slot = self.conversations[index].holder.expect("an offer has a holder");
                let agent = self.agents[slot].spec.id;
                out.push(Event {
                    at: self.now,
                    conversation: Some(id),
                    agent: Some(agent),
                    kind: EventKind::OfferExpired,
                });
                let max_missed = self.config.offers.map_or(u32::MAX, |o| o.max_missed);
                let holder = &mut self.agents[slot];
                holder.missed_offers += 1;
                if holder.missed_offers >= max_missed
                    && !holder.removed
                    && holder.spec.presence != Presence::NotResponding
                {
                    // Keeps its conversations, gets no new ones.
                    holder.spec.presence = Presence::NotResponding;
                    out.push(Event {
                        at: self.now,
                        conversation: None,
                        agent: Some(agent),
                        kind: EventKind::AgentNotResponding,
                    });
                }
                self.offer_not_taken(index, out, &mut drains);
            } else if timer == Timer::WrapUpEnd {
                let agent = self.conversations[index].holder.map(|slot| self.agents[slot].spec.id);
                if let Some(slot) = self.release_holder(index) {
                    drains.push(slot);
                }
                out.push(Event {
                    at: self.now,
                    conversation: Some(id),
                    agent,
                    kind: EventKind::Released,
                });
                self.conversations.remove(index);
            } else {
                let conv = &mut self.conversations[index];
                conv.queued = None;
                conv.overflow_timer = None;
                let step = conv.overflow_step;
                conv.overflow_step += 1;
                out.push(Event {
                    at: self.now,
                    conversation: Some(id),
                    agent: None,
                    kind: EventKind::OverflowStep { step },
                });
                self.place(index, Placement::Widened, out, &mut drains);
            }
            self.drain(drains, out);
        }
    }

    /// The earliest live timer due now: (at, order, conversation, kind).
    fn next_due(&self) -> Option<(Timestamp, u64, ConversationId, Timer)> {
        self.conversations
            .iter()
            .filter_map(|c| match c.state {
                ConversationState::WrapUp => {
                    c.wrap_up_until.map(|(at, seq)| (at, seq, c.id, Timer::WrapUpEnd))
                }
                ConversationState::Queued => {
                    c.overflow_timer.map(|(at, seq)| (at, seq, c.id, Timer::Overflow))
                }
                ConversationState::Offered => {
                    c.offer_timer.map(|(at, seq)| (at, seq, c.id, Timer::OfferExpiry))
                }
                _ => None,
            })
            .filter(|(at, ..)| *at <= self.now)
            .min()
    }

    // ----- Agents ------------------------------------------------------------

    fn live(&self, agent: AgentId) -> Option<usize> {
        self.agents.iter().position(|a| !a.removed && a.spec.id == agent)
    }

    /// Registers or updates an agent; see `Router::upsert_agent`.
    pub fn upsert_agent(
        &mut self,
        spec: AgentSpec,
        out: &mut Vec<Event>,
    ) -> Result<(), ModelError> {
        let spec = normalise(spec)?;
        let (slot, before) = match self.live(spec.id) {
            Some(slot) => (slot, Some(self.agents[slot].spec.presence)),
            None => {
                self.agents.push(Agent {
                    spec: spec.clone(),
                    removed: false,
                    load: [0; 6],
                    total: 0,
                    holding: Vec::new(),
                    last_assigned: Timestamp(0),
                    missed_offers: 0,
                });
                (self.agents.len() - 1, None)
            }
        };
        let after = spec.presence;
        if after == Presence::Available {
            // Setting an agent available forgives its missed offers.
            self.agents[slot].missed_offers = 0;
        }
        self.agents[slot].spec = spec;
        self.follow_up(slot, before, after, out);
        Ok(())
    }

    fn edit(
        &mut self,
        agent: AgentId,
        edit: impl FnOnce(&mut AgentSpec),
        out: &mut Vec<Event>,
    ) -> Result<(), ModelError> {
        let slot = self.live(agent).ok_or(ModelError::UnknownAgent(agent))?;
        let mut spec = self.agents[slot].spec.clone();
        edit(&mut spec);
        self.upsert_agent(spec, out)
    }

    /// Changes an agent's presence.
    pub fn set_presence(
        &mut self,
        agent: AgentId,
        presence: Presence,
        out: &mut Vec<Event>,
    ) -> Result<(), ModelError> {
        self.edit(agent, |spec| spec.presence = presence, out)
    }

    /// Changes an agent's capacity.
    pub fn set_capacity(
        &mut self,
        agent: AgentId,
        capacity: Capacity,
        out: &mut Vec<Event>,
    ) -> Result<(), ModelError> {
        self.edit(agent, |spec| spec.capacity = capacity, out)
    }

    /// Replaces an agent's skills.
    pub fn set_skills(
        &mut self,
        agent: AgentId,
        skills: Vec<SkillLevel>,
        out: &mut Vec<Event>,
    ) -> Result<(), ModelError> {
        self.edit(agent, |spec| spec.skills = skills, out)
    }

    /// Removes an agent for good.
    pub fn remove_agent(&mut self, agent: AgentId, out: &mut Vec<Event>) -> Result<(), ModelError> {
        let slot = self.live(agent).ok_or(ModelError::UnknownAgent(agent))?;
        let before = self.agents[slot].spec.presence;
        self.agents[slot].removed = true;
        self.agents[slot].spec.presence = Presence::Offline;
        self.follow_up(slot, Some(before), Presence::Offline, out);
        Ok(())
    }

    /// After an agent change: an agent that stops keeping its conversations
    /// has them re-routed; an available agent is offered waiting work.
    fn follow_up(
        &mut self,
        slot: usize,
        before: Option<Presence>,
        after: Presence,
        out: &mut Vec<Event>,
    ) {
        let mut drains = Vec::new();
        if before.is_some_and(Presence::keeps_conversations) && !after.keeps_conversations() {
            self.reassign_all(slot, out, &mut drains);
        }
        if after == Presence::Available {
            drains.push(slot);
        }
        self.drain(drains, out);
    }

    fn reassign_all(&mut self, slot: usize, out: &mut Vec<Event>, drains: &mut Vec<usize>) {
        let held = self.agents[slot].holding.clone();
        for id in held {
            let Some(index) = self.index_of(id) else { continue };
            if self.conversations[index].holder != Some(slot) {
                continue;
            }
            self.release_holder(index);
            if self.conversations[index].state == ConversationState::WrapUp {
                // Closed already: the capacity returns now, and it is forgotten.
                out.push(Event {
                    at: self.now,
                    conversation: Some(id),
                    agent: None,
                    kind: EventKind::Released,
                });
                self.conversations.remove(index);
                continue;
            }
            if self.conversations[index].state != ConversationState::Queued {
                // A queued conversation was only held by a bot while
                // escalating: it keeps its place in the queue.
                self.conversations[index].boosted = true;
                self.place(index, Placement::Reassign, out, drains);
            }
        }
    }

    // ----- Eligibility and selection ------------------------------------------

    /// What a conversation needs now: its requirements with the first
    /// `overflow_step` widenings applied, in order.
    fn need(&self, conv: &Conversation) -> Need {
        let mut required = conv.required.clone();
        let mut pool = Pool::Humans;
        for &(_, widening) in self.overflow.iter().take(usize::from(conv.overflow_step)) {
            match widening {
                Widening::Lower(by) => {
                    for r in &mut required {
                        r.level = r.level.saturating_sub(by).max(1);
                    }
                }
                Widening::Group(skill) => {
                    required.clear();
                    required.push(SkillLevel { skill, level: 1 });
                }
                Widening::Bot => pool = Pool::HumansOrBots,
            }
        }
        Need { channel: conv.channel, language: conv.language, required, pool }
    }

    /// Why nobody can take a waiting conversation: checked in this order,
    /// over the pool's humans (or its bots, for a pool of bots only):
    /// nobody registered with a language; nobody with the required skills,
    /// one more at a time; nobody of those who speaks the language; nobody
    /// of those available; the only one with room declined; else all are
    /// at capacity.
    fn why(&self, need: &Need, excluded: Option<usize>) -> Why {
        let kind = match need.pool {
            Pool::Humans | Pool::HumansOrBots => AgentKind::Human,
            Pool::Bots => AgentKind::Bot,
        };
        let pool: Vec<&Agent> =
            self.agents.iter().filter(|a| !a.removed && a.spec.kind == kind).collect();
        if pool.iter().all(|a| a.spec.languages.is_empty()) {
            return Why::NoAgents;
        }
        if kind == AgentKind::Human {
            for (i, requirement) in need.required.iter().enumerate() {
                if !pool.iter().any(|a| a.qualifies(&need.required[..=i])) {
                    return Why::NoSkill { skill: requirement.skill, level: requirement.level };
                }
            }
        }
        let skilled = |a: &&&Agent| kind == AgentKind::Bot || a.qualifies(&need.required);
        let speaking: Vec<&Agent> = pool
            .iter()
            .filter(skilled)
            .filter(|a| a.spec.languages.contains(&need.language))
            .copied()
            .collect();
        if speaking.is_empty() {
            return Why::NoLanguage { language: need.language };
        }
        if speaking.iter().all(|a| a.presence() != Presence::Available) {
            return Why::Unavailable;
        }
        if let Some(slot) = excluded {
            let agent = &self.agents[slot];
            if speaking.iter().any(|a| std::ptr::eq(*a, agent))
                && agent.presence() == Presence::Available
                && agent.has_room(need.channel)
            {
                return Why::Declined;
            }
        }
        Why::AtCapacity { channel: need.channel }
    }

    /// Could `slot` take a conversation with this need, capacity aside?
    /// Bots answer in any skill area once the pool lets them in.
    fn eligible(&self, slot: usize, need: &Need) -> bool {
        let agent = &self.agents[slot];
        let kind_ok = match need.pool {
            Pool::Humans => agent.spec.kind == AgentKind::Human,
            Pool::Bots => agent.spec.kind == AgentKind::Bot,
            Pool::HumansOrBots => true,
        };
        kind_ok
            && agent.presence() == Presence::Available
            && agent.spec.languages.contains(&need.language)
            && (agent.spec.kind == AgentKind::Bot || agent.qualifies(&need.required))
    }

    /// The strategy's pick for conversation `index` among eligible agents
    /// with room; humans before bots when both may take it. Ties go to the
    /// first slot at or after the conversation's tie origin, wrapping around
    /// (round robin: the lowest slot at or after its cursor).
    fn select(&mut self, index: usize, need: &Need, excluded: Option<usize>) -> Option<usize> {
        let kinds: &[Pool] = match need.pool {
            Pool::HumansOrBots => &[Pool::Humans, Pool::Bots],
            _ => &[need.pool],
        };
        let origin = tie_origin(self.conversations[index].id, self.agents.len());
        kinds
            .iter()
            .find_map(|&pool| self.select_among(&Need { pool, ..need.clone() }, excluded, origin))
    }

    fn select_among(
        &mut self,
        need: &Need,
        excluded: Option<usize>,
        origin: usize,
    ) -> Option<usize> {
        let channel = need.channel;
        let slots = self.agents.len();
        let candidates: Vec<usize> = (origin..slots)
            .chain(0..origin)
            .filter(|&slot| {
                excluded != Some(slot)
                    && self.eligible(slot, need)
                    && self.agents[slot].has_room(channel)
            })
            .collect();
        let score = |slot: usize| -> u64 {
            let agent = &self.agents[slot];
            match self.config.strategy {
                Strategy::LeastLoaded => {
                    (u64::from(agent.total) << 8) | u64::from(agent.load[channel.index()])
                }
                Strategy::LongestIdle => agent.last_assigned.0,
                Strategy::MostProficient => {
                    // Bots answer without skills: they score nothing for them.
                    let sum: u64 = match agent.spec.kind {
                        AgentKind::Bot => 0,
                        AgentKind::Human => need
                            .required
                            .iter()
                            .map(|r| u64::from(agent.level(r.skill).unwrap_or(0)))
                            .sum(),
                    };
                    ((1000 - sum) << 32) | u64::from(agent.total)
                }
                Strategy::RoundRobin => 0,
            }
        };
        let chosen = if self.config.strategy == Strategy::RoundRobin {
            let cursor = self.round_robin;
            let pick = candidates
                .iter()
                .copied()
                .filter(|&slot| slot >= cursor)
                .min()
                .or_else(|| candidates.iter().copied().min())?;
            self.round_robin = pick + 1;
            pick
        } else {
            // `min_by_key` keeps the first of equal keys: the first from the
            // origin.
            candidates.iter().copied().min_by_key(|&slot| score(slot))?
        };
        Some(chosen)
    }

    fn priority(&self, conv: &Conversation) -> u32 {
        let policy = &self.config.priority;
        let mut points = policy.channel_urgency[conv.channel.index()];
        points += (conv.buying_intent * policy.buying_intent_weight as f32).round() as u32;
        points += u32::from(conv.tier) * policy.tier_weight;
        if conv.boosted || conv.escalated {
            points += policy.escalation_boost;
        }
        points
    }

    // ----- Holding capacity ---------------------------------------------------

    fn reserve(&mut self, slot: usize, channel: Channel) {
        let agent = &mut self.agents[slot];
        assert!(agent.has_room(channel), "the model reserves only where there is room");
        agent.load[channel.index()] += 1;
        agent.total += 1;
    }

    fn release_holder(&mut self, index: usize) -> Option<usize> {
        let conv = &mut self.conversations[index];
        let slot = conv.holder.take()?;
        let (id, channel) = (conv.id, conv.channel);
        let agent = &mut self.agents[slot];
        if let Some(position) = agent.holding.iter().position(|&c| c == id) {
            agent.holding.swap_remove(position);
        }
        agent.load[channel.index()] -= 1;
        agent.total -= 1;
        Some(slot)
    }

    /// Gives the conversation to `slot`, reserving its capacity; the previous
    /// holder (a bot, on escalation) is released into `drains`.
    fn assign(
        &mut self,
        index: usize,
        slot: usize,
        reason: AssignReason,
        waited_ms: u64,
        out: &mut Vec<Event>,
        drains: &mut Vec<usize>,
    ) -> Event {
        let channel = self.conversations[index].channel;
        self.reserve(slot, channel);
        if let Some(previous) = self.release_holder(index) {
            drains.push(previous);
        }
        let now = self.now;
        let id = self.conversations[index].id;
        let agent = &mut self.agents[slot];
        agent.holding.push(id);
        agent.last_assigned = now;
        let (agent_id, kind) = (agent.spec.id, agent.spec.kind);
        let offer = match (kind, self.config.offers) {
            (AgentKind::Human, Some(offers)) => {
                self.next_timer += 1;
                Some((now.plus_ms(offers.timeout_ms), self.next_timer))
            }
            _ => None,
        };
        let conv = &mut self.conversations[index];
        conv.holder = Some(slot);
        conv.queued = None;
        conv.boosted = false;
        conv.first_queued_at = None;
        conv.overflow_timer = None;
        conv.excluded = None;
        conv.offer_timer = offer;
        conv.state = match (kind, offer) {
            (AgentKind::Bot, _) => ConversationState::Bot,
            (AgentKind::Human, Some(_)) => ConversationState::Offered,
            (AgentKind::Human, None) => ConversationState::Assigned,
        };
        let customer = conv.customer;
        if kind == AgentKind::Human {
            self.remember(customer, slot);
        }
        let kind = match offer {
            Some((expires_at, _)) => EventKind::Offered { reason, expires_at },
            None => EventKind::Assigned { reason, waited_ms },
        };
        let event = Event { at: now, conversation: Some(id), agent: Some(agent_id), kind };
        out.push(event);
        event
    }

    fn remember(&mut self, customer: CustomerId, slot: usize) {
        let served = Served { slot, at: self.now };
        let history = match self.history.iter().position(|(c, _)| *c == customer) {
            Some(position) => &mut self.history[position].1,
            None => {
                self.history.push((customer, Vec::new()));
                &mut self.history.last_mut().expect("just pushed").1
            }
        };
        // By slot, as the router: an agent removed and registered again
        // has a new slot, and its old one stays until it drops out.
        history.retain(|s| s.slot != slot);
        history.truncate(HISTORY - 1);
        history.insert(0, served);
    }

    // ----- Placing ------------------------------------------------------------

    fn place(
        &mut self,
        index: usize,
        placement: Placement,
        out: &mut Vec<Event>,
        drains: &mut Vec<usize>,
    ) -> Event {
        let strategy = self.config.strategy;
        let need = self.need(&self.conversations[index]);
        let bots = Need { required: Requirements::new(), pool: Pool::Bots, ..need.clone() };
        if placement == Placement::New
            && self.config.bot_first
            && let Some(slot) = self.select(index, &bots, None)
        {
            return self.assign(index, slot, AssignReason::BotFirst, 0, out, drains);
        }
        // Affinity: the humans who served this customer, most recent first,
        // within the look-back, if eligible and with room.
        if matches!(placement, Placement::New | Placement::Reassign)
            && self.config.affinity_lookback_ms > 0
        {
            let customer = self.conversations[index].customer;
            let history = self
                .history
                .iter()
                .find(|(c, _)| *c == customer)
                .map(|(_, h)| h.clone())
                .unwrap_or_default();
            for served in history {
                if self.now.since(served.at) > self.config.affinity_lookback_ms
                    || !self.eligible(served.slot, &need)
                    || !self.agents[served.slot].has_room(need.channel)
                {
                    continue;
                }
                let reason = match placement {
                    Placement::Reassign => AssignReason::Reassignment,
                    _ => AssignReason::Affinity,
                };
                return self.assign(index, served.slot, reason, 0, out, drains);
            }
        }
        let excluded = self.conversations[index].excluded;
        if let Some(slot) = self.select(index, &need, excluded) {
            let step = self.conversations[index].overflow_step;
            let reason = match placement {
                Placement::Reassign => AssignReason::Reassignment,
                Placement::Escalate => AssignReason::Escalation,
                Placement::Widened => AssignReason::Overflow { step: step - 1 },
                Placement::New | Placement::OfferNotTaken => AssignReason::SkillMatch { strategy },
            };
            return self.assign(index, slot, reason, 0, out, drains);
        }
        let reason = match placement {
            Placement::Reassign => QueueReason::Reassignment,
            Placement::Escalate => QueueReason::Escalation,
            Placement::OfferNotTaken => QueueReason::OfferNotTaken,
            Placement::New | Placement::Widened => QueueReason::NoEligibleAgent,
        };
        self.enqueue(index, reason, out)
    }

    fn enqueue(&mut self, index: usize, reason: QueueReason, out: &mut Vec<Event>) -> Event {
        let priority = self.priority(&self.conversations[index]);
        let policy = &self.config.priority;
        let aging = policy.aging_ms_per_point.min(i64::MAX as u64 / 1_000_000) as i64;
        // Waiting counts from the first time the conversation queued, also
        // when an overflow step re-queues it. With `sla_aware`, from its
        // first-reply breach instead (written out here, not shared with the
        // router's `PriorityPolicy::rank`).
        let first = self.conversations[index].first_queued_at.unwrap_or(self.now);
        let target = if policy.sla_aware {
            policy.sla_first_reply_ms[self.conversations[index].channel.index()]
                .min(i64::MAX as u64 / 4) as i64
        } else {
            0
        };
        let rank = first.0.min(i64::MAX as u64 / 2) as i64 + target - i64::from(priority) * aging;
        self.next_seq += 1;
        let queued = Queued { rank, seq: self.next_seq, priority, enqueued_at: first };
        let position = self.ahead_of(index, queued);
        let holder = self.conversations[index].holder.map(|slot| self.agents[slot].spec.id);
        // The next overflow step, counted from when it first started waiting.
        let step = usize::from(self.conversations[index].overflow_step);
        let timer = self.overflow.get(step).map(|&(after, _)| {
            self.next_timer += 1;
            let first = self.conversations[index].first_queued_at.unwrap_or(self.now);
            (first.plus_ms(after).max(self.now), self.next_timer)
        });
        let why = (reason == QueueReason::NoEligibleAgent).then(|| {
            let conv = &self.conversations[index];
            self.why(&self.need(conv), conv.excluded)
        });
        let conv = &mut self.conversations[index];
        conv.first_queued_at.get_or_insert(self.now);
        conv.overflow_timer = timer;
        conv.queued = Some(queued);
        conv.state = ConversationState::Queued;
        let event = Event {
            at: self.now,
            conversation: Some(conv.id),
            agent: holder,
            kind: EventKind::Queued { reason, position, priority, why },
        };
        out.push(event);
        event
    }

    /// Its place in line: how many waiting conversations that need the
    /// same (channel, language, required skills as listed, kinds of agent,
    /// overflow applied) are served before
    /// `place`. Waiting conversations with other needs are served by other
    /// agents and do not count.
    fn ahead_of(&self, index: usize, place: Queued) -> u32 {
        let mine = self.need(&self.conversations[index]);
        let ahead = self
            .conversations
            .iter()
            .filter(|c| c.queued.is_some() && self.need(c) == mine)
            .filter_map(|c| c.queued)
            .filter(|q| (q.rank, q.seq) < (place.rank, place.seq))
            .count();
        u32::try_from(ahead).unwrap_or(u32::MAX)
    }

    /// Offers waiting conversations to the agents in `slots` (last first)
    /// while each is available and has room: always the best-placed waiting
    /// conversation it may take.
    fn drain(&mut self, mut slots: Vec<usize>, out: &mut Vec<Event>) {
        while let Some(slot) = slots.pop() {
            loop {
                if self.agents[slot].presence() != Presence::Available {
                    break;
                }
                let pick = (0..self.conversations.len())
                    .filter(|&i| {
                        let conv = &self.conversations[i];
                        conv.queued.is_some()
                            && conv.excluded != Some(slot)
                            && self.agents[slot].has_room(conv.channel)
                            && self.eligible(slot, &self.need(conv))
                    })
                    .min_by_key(|&i| {
                        let q = self.conversations[i].queued.expect("filtered on queued");
                        (q.rank, q.seq)
                    });
                let Some(index) = pick else { break };
                let conv = &self.conversations[index];
                let queued = conv.queued.expect("picked a queued conversation");
                let reason = if conv.escalated {
                    AssignReason::Escalation
                } else if conv.overflow_step > 0 {
                    AssignReason::Overflow { step: conv.overflow_step - 1 }
                } else {
                    AssignReason::SkillMatch { strategy: self.config.strategy }
                };
                let waited = self.now.since(queued.enqueued_at);
                let mut more = Vec::new();
                self.assign(index, slot, reason, waited, out, &mut more);
                slots.extend(more);
            }
        }
    }

    // ----- Messages and closes ------------------------------------------------

    fn index_of(&self, id: ConversationId) -> Option<usize> {
        self.conversations.iter().position(|c| c.id == id)
    }

    fn escalation_trigger(&self, message: &Message) -> Option<EscalationTrigger> {
        let policy = &self.config.escalation;
        if policy.on_human_request && message.signals.human_request {
            Some(EscalationTrigger::HumanRequest)
        } else if policy.on_complaint && message.signals.complaint {
            Some(EscalationTrigger::Complaint)
        } else if policy.on_doubt && message.signals.doubt {
            Some(EscalationTrigger::Doubt)
        } else if clamp_unit(message.buying_intent) >= policy.buying_intent_threshold {
            Some(EscalationTrigger::BuyingIntent)
        } else {
            None
        }
    }

    /// Places a conversation that `message` starts (or restarts after its
    /// wrap-up outlived its agent). With bot-first, a message that meets an
    /// escalation trigger goes past the bots: escalated at once.
    fn open(
        &mut self,
        index: usize,
        message: &Message,
        out: &mut Vec<Event>,
        drains: &mut Vec<usize>,
    ) -> Event {
        if self.config.bot_first
            && let Some(trigger) = self.escalation_trigger(message)
        {
            out.push(Event {
                at: self.now,
                conversation: Some(message.conversation),
                agent: None,
                kind: EventKind::Escalated { trigger },
            });
            self.conversations[index].escalated = true;
            return self.place(index, Placement::Escalate, out, drains);
        }
        self.place(index, Placement::New, out, drains)
    }

    /// Routes one message; see `Router::route`.
    pub fn route(&mut self, message: &Message, out: &mut Vec<Event>) -> Event {
        let mut drains = Vec::new();
        let decision = match self.index_of(message.conversation) {
            Some(index) => self.route_existing(index, message, out, &mut drains),
            None => {
                self.conversations.push(Conversation {
                    id: message.conversation,
                    customer: message.customer,
                    channel: message.channel,
                    language: message.language,
                    required: normalise_requirements(&message.required),
                    tier: message.tier,
                    buying_intent: clamp_unit(message.buying_intent),
                    state: ConversationState::Queued,
                    holder: None,
                    escalated: false,
                    boosted: false,
                    queued: None,
                    wrap_up_until: None,
                    overflow_step: 0,
                    first_queued_at: None,
                    overflow_timer: None,
                    offer_timer: None,
                    excluded: None,
                });
                let index = self.conversations.len() - 1;
                self.open(index, message, out, &mut drains)
            }
        };
        self.drain(drains, out);
        decision
    }

    fn route_existing(
        &mut self,
        index: usize,
        message: &Message,
        out: &mut Vec<Event>,
        drains: &mut Vec<usize>,
    ) -> Event {
        let now = self.now;
        let conv = &mut self.conversations[index];
        conv.buying_intent = clamp_unit(message.buying_intent);
        let holder = conv.holder;
        let holder_id = holder.map(|slot| self.agents[slot].spec.id);
        let holder_online =
            holder.is_some_and(|slot| self.agents[slot].presence().keeps_conversations());
        let sticky = Event {
            at: now,
            conversation: Some(message.conversation),
            agent: holder_id,
            kind: EventKind::Assigned { reason: AssignReason::Sticky, waited_ms: 0 },
        };
        match self.conversations[index].state {
            ConversationState::Assigned | ConversationState::Offered if holder_online => {
                out.push(sticky);
                sticky
            }
            ConversationState::Bot if holder_online => match self.escalation_trigger(message) {
                Some(trigger) => {
                    out.push(Event {
                        at: now,
                        conversation: Some(message.conversation),
                        agent: holder_id,
                        kind: EventKind::Escalated { trigger },
                    });
                    self.conversations[index].escalated = true;
                    self.place(index, Placement::Escalate, out, drains)
                }
                None => {
                    out.push(sticky);
                    sticky
                }
            },
            ConversationState::WrapUp if holder_online => {
                // The customer wrote again during wrap-up: reopen with the
                // same agent; the wrap-up timer lapses.
                let kind = holder.map(|slot| self.agents[slot].spec.kind);
                let conv = &mut self.conversations[index];
                conv.wrap_up_until = None;
                conv.state = match kind {
                    Some(AgentKind::Bot) => ConversationState::Bot,
                    _ => ConversationState::Assigned,
                };
                out.push(sticky);
                sticky
            }
            ConversationState::Queued => {
                let queued =
                    self.conversations[index].queued.expect("a queued conversation has a place");
                let event = Event {
                    at: now,
                    conversation: Some(message.conversation),
                    agent: holder_id,
                    kind: EventKind::Queued {
                        why: None,
                        reason: QueueReason::AlreadyQueued,
                        position: self.ahead_of(index, queued),
                        priority: queued.priority,
                    },
                };
                out.push(event);
                event
            }
            // The holder left without its conversations being swept: the
            // model always sweeps, so this only mirrors the router's rule.
            // A conversation whose wrap-up outlived its agent starts afresh.
            _ => {
                let reopened = self.conversations[index].state == ConversationState::WrapUp;
                self.release_holder(index);
                let conv = &mut self.conversations[index];
                conv.wrap_up_until = None;
                conv.boosted = !reopened;
                if reopened {
                    self.open(index, message, out, drains)
                } else {
                    self.place(index, Placement::Reassign, out, drains)
                }
            }
        }
    }

    /// Closes a conversation. A human's conversation keeps its capacity
    /// through the wrap-up time; anything else returns it at once. Closing a
    /// conversation in wrap-up does nothing.
    pub fn close(&mut self, id: ConversationId, out: &mut Vec<Event>) -> Result<(), ModelError> {
        let index = self.index_of(id).ok_or(ModelError::UnknownConversation(id))?;
        let conv = &self.conversations[index];
        if conv.state == ConversationState::WrapUp {
            return Ok(());
        }
        let holder = conv.holder.map(|slot| &self.agents[slot]);
        let agent = holder.map(|a| a.spec.id);
        let human = holder.is_some_and(|a| a.spec.kind == AgentKind::Human);
        let at = self.now;
        out.push(Event { at, conversation: Some(id), agent, kind: EventKind::Closed });
        if human && self.config.wrap_up_ms > 0 && conv.state == ConversationState::Assigned {
            self.next_timer += 1;
            let conv = &mut self.conversations[index];
            conv.state = ConversationState::WrapUp;
            conv.wrap_up_until = Some((at.plus_ms(self.config.wrap_up_ms), self.next_timer));
            return Ok(());
        }
        let mut drains = Vec::new();
        if let Some(slot) = self.release_holder(index) {
            drains.push(slot);
            out.push(Event { at, conversation: Some(id), agent, kind: EventKind::Released });
        }
        self.conversations.remove(index);
        self.drain(drains, out);
        Ok(())
    }

    /// The agent accepts (or declines) a pending offer; a declined
    /// conversation goes to someone else, ahead in the queue.
    pub fn answer_offer(
        &mut self,
        id: ConversationId,
        agent: AgentId,
        accept: bool,
        out: &mut Vec<Event>,
    ) -> Result<(), ModelError> {
        let index = self.index_of(id).ok_or(ModelError::UnknownConversation(id))?;
        let conv = &self.conversations[index];
        let slot = conv
            .holder
            .filter(|&slot| self.agents[slot].spec.id == agent)
            .filter(|_| conv.state == ConversationState::Offered)
            .ok_or(ModelError::NoSuchOffer(id, agent))?;
        let mut drains = Vec::new();
        if accept {
            let conv = &mut self.conversations[index];
            conv.state = ConversationState::Assigned;
            conv.offer_timer = None;
            self.agents[slot].missed_offers = 0;
            out.push(Event {
                at: self.now,
                conversation: Some(id),
                agent: Some(agent),
                kind: EventKind::OfferAccepted,
            });
        } else {
            out.push(Event {
                at: self.now,
                conversation: Some(id),
                agent: Some(agent),
                kind: EventKind::OfferDeclined,
            });
            self.offer_not_taken(index, out, &mut drains);
        }
        self.drain(drains, out);
        Ok(())
    }

    /// Releases the offered agent, who is skipped when the conversation is
    /// placed again, ahead in the queue.
    fn offer_not_taken(&mut self, index: usize, out: &mut Vec<Event>, drains: &mut Vec<usize>) {
        if let Some(slot) = self.release_holder(index) {
            self.conversations[index].excluded = Some(slot);
            drains.push(slot);
        }
        let conv = &mut self.conversations[index];
        conv.offer_timer = None;
        conv.boosted = true;
        self.place(index, Placement::OfferNotTaken, out, drains);
    }

    /// Moves a conversation to a named agent, who must be available, speak
    /// the language and have room on the channel (skills are not checked).
    pub fn transfer(
        &mut self,
        id: ConversationId,
        agent: AgentId,
        out: &mut Vec<Event>,
    ) -> Result<(), ModelError> {
        let slot = self.live(agent).ok_or(ModelError::UnknownAgent(agent))?;
        let index = self.index_of(id).ok_or(ModelError::UnknownConversation(id))?;
        let conv = &self.conversations[index];
        if conv.state == ConversationState::WrapUp {
            return Err(ModelError::UnknownConversation(id));
        }
        if conv.holder == Some(slot) {
            return Ok(());
        }
        let target = &self.agents[slot];
        if target.presence() != Presence::Available
            || !target.spec.languages.contains(&conv.language)
            || !target.has_room(conv.channel)
        {
            return Err(ModelError::AgentCannotTake(agent));
        }
        let mut drains = Vec::new();
        self.assign(index, slot, AssignReason::Transfer, 0, out, &mut drains);
        self.drain(drains, out);
        Ok(())
    }

    // ----- Views --------------------------------------------------------------

    /// A conversation's state and holder, if it is open.
    pub fn conversation(&self, id: ConversationId) -> Option<(ConversationState, Option<AgentId>)> {
        let conv = &self.conversations[self.index_of(id)?];
        Some((conv.state, conv.holder.map(|slot| self.agents[slot].spec.id)))
    }

    /// A live agent's presence, loads and held conversations.
    pub fn agent(&self, id: AgentId) -> Option<AgentState> {
        let agent = &self.agents[self.live(id)?];
        Some(AgentState {
            presence: agent.spec.presence,
            load: agent.load,
            total_load: agent.total,
            holding: agent.holding.clone(),
            missed_offers: agent.missed_offers,
        })
    }

    /// Waiting conversations, best first.
    pub fn queued(&self) -> Vec<ConversationId> {
        let mut waiting: Vec<(i64, u64, ConversationId)> = self
            .conversations
            .iter()
            .filter_map(|c| c.queued.map(|q| (q.rank, q.seq, c.id)))
            .collect();
        waiting.sort_unstable();
        waiting.into_iter().map(|(_, _, id)| id).collect()
    }
}

/// The slot ties start from for `conversation` among `slots` slots: the
/// router's rule, restated (splitmix64's finaliser of the id, modulo the
/// slots handed out).
fn tie_origin(conversation: ConversationId, slots: usize) -> usize {
    if slots == 0 {
        return 0;
    }
    let mut z = conversation.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z % slots as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_000_000);

    fn human(id: u64, chat: u32) -> AgentSpec {
        let mut spec = AgentSpec::new(AgentId(id));
        spec.languages = vec![Language::NL];
        spec.capacity = Capacity { chat, total: chat, ..Capacity::ZERO };
        spec
    }

    fn chat(conversation: u64, customer: u64) -> Message {
        Message::new(
            ConversationId(conversation),
            CustomerId(customer),
            Channel::Chat,
            Language::NL,
        )
    }

    fn model() -> Model {
        Model::new(RouterConfig::default(), T0, &[]).unwrap()
    }

    /// The first conversation id above `after` whose ties start at `slot`
    /// among `slots` slots.
    fn starting_at(slot: usize, slots: usize, after: u64) -> u64 {
        (after + 1..).find(|&id| tie_origin(ConversationId(id), slots) == slot).unwrap()
    }

    #[test]
    fn tie_origins_spread_over_the_slots() {
        let mut seen = [0u32; 4];
        for id in 0..4_000 {
            seen[tie_origin(ConversationId(id), 4)] += 1;
        }
        assert!(seen.iter().all(|&n| (900..=1_100).contains(&n)), "{seen:?}");
        assert_eq!(tie_origin(ConversationId(7), 0), 0);
    }

    #[test]
    fn least_loaded_breaks_ties_from_the_conversation_origin() {
        let mut model = model();
        let mut out = Vec::new();
        for id in [5, 2, 9] {
            model.upsert_agent(human(id, 2), &mut out).unwrap();
        }
        // Ties start at slot 1 (agent 2) and wrap around; slot 2 then 0 next.
        let mut agents = Vec::new();
        let mut id = 0;
        for start in [1, 1, 1, 0] {
            id = starting_at(start, 3, id);
            agents.push(model.route(&chat(id, id), &mut out).agent.unwrap().0);
        }
        assert_eq!(agents, [2, 9, 5, 5]);
    }

    #[test]
    fn the_queue_serves_priority_first_and_ages() {
        let mut model = model();
        let mut out = Vec::new();
        model.upsert_agent(human(1, 1), &mut out).unwrap();
        model.route(&chat(1, 1), &mut out);
        let mut email = chat(2, 2);
        email.channel = Channel::Email;
        model.route(&email, &mut out); // 0 points
        model.advance(30_000, &mut out); // 30 points of aging: still behind chat's 60
        model.route(&chat(3, 3), &mut out); // 60 points
        assert_eq!(model.queued(), [ConversationId(3), ConversationId(2)]);
        model.advance(100_000, &mut out);
        model.route(&chat(4, 4), &mut out); // 60 points, 100 s later
        assert_eq!(model.queued(), [ConversationId(3), ConversationId(2), ConversationId(4)]);
    }

    #[test]
    fn reassignment_prefers_the_customers_previous_agent() {
        let mut model = model();
        let mut out = Vec::new();
        model.upsert_agent(human(1, 2), &mut out).unwrap();
        model.upsert_agent(human(2, 2), &mut out).unwrap();
        model.upsert_agent(human(3, 2), &mut out).unwrap();
        let first = starting_at(0, 3, 100);
        assert_eq!(model.route(&chat(first, 7), &mut out).agent, Some(AgentId(1)));
        model.close(ConversationId(first), &mut out).unwrap();
        model.set_presence(AgentId(1), Presence::Offline, &mut out).unwrap();
        // Served by 3 now (1 is offline, 2 takes other work first).
        let other = starting_at(1, 3, first);
        assert_eq!(model.route(&chat(other, 10), &mut out).agent, Some(AgentId(2)));
        assert_eq!(model.route(&chat(2, 7), &mut out).agent, Some(AgentId(3)));
        model.set_presence(AgentId(1), Presence::Available, &mut out).unwrap();
        // Agent 1 gets busier than agent 2: least-loaded alone would pick 2.
        model.close(ConversationId(other), &mut out).unwrap();
        let third = starting_at(0, 3, other);
        assert_eq!(model.route(&chat(third, 11), &mut out).agent, Some(AgentId(1)));
        out.clear();
        model.set_presence(AgentId(3), Presence::Away, &mut out).unwrap();
        // Agent 3 left; agent 1 served the customer before it: affinity wins.
        assert_eq!(
            model.conversation(ConversationId(2)),
            Some((ConversationState::Assigned, Some(AgentId(1))))
        );
        assert!(matches!(
            out[0].kind,
            EventKind::Assigned { reason: AssignReason::Reassignment, .. }
        ));
    }

    #[test]
    fn missed_offers_go_elsewhere_and_stop_the_agent() {
        let offers = loket_router::OfferPolicy { timeout_ms: 100, max_missed: 2 };
        let config = RouterConfig { offers: Some(offers), ..RouterConfig::default() };
        let mut model = Model::new(config, T0, &[]).unwrap();
        let mut out = Vec::new();
        model.upsert_agent(human(1, 2), &mut out).unwrap();
        model.upsert_agent(human(2, 1), &mut out).unwrap();
        let id = starting_at(0, 2, 100);
        let first = model.route(&chat(id, 1), &mut out);
        assert!(matches!(first.kind, EventKind::Offered { .. }) && first.agent == Some(AgentId(1)));
        // Declined: agent 2 gets it; agent 1 is not offered it again.
        model.answer_offer(ConversationId(id), AgentId(1), false, &mut out).unwrap();
        assert_eq!(
            model.conversation(ConversationId(id)),
            Some((ConversationState::Offered, Some(AgentId(2))))
        );
        // Nobody answers: after two lapsed offers agent 1 stops getting work.
        model.route(&chat(2, 2), &mut out);
        model.advance(100, &mut out);
        model.route(&chat(3, 3), &mut out);
        model.advance(100, &mut out);
        assert_eq!(model.agent(AgentId(1)).unwrap().presence, Presence::NotResponding);
        assert!(out.iter().any(|e| e.kind == EventKind::AgentNotResponding));
    }

    #[test]
    fn unsupported_policies_are_refused() {
        let config = RouterConfig { affinity_wait_ms: 1, ..RouterConfig::default() };
        assert!(Model::new(config, T0, &[]).is_err());
    }
}
