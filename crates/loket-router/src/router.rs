//! The router: every operation, and the locking discipline that keeps them
//! correct when many threads call at once.
//!
//! # Locks, in the only order they may be taken
//!
//! 1. one conversation entry (a [`Conversations`] shard guard), never two at
//!    once;
//! 2. one shard of the customer histories ([`CustomerHistories`]), briefly;
//! 3. the roster's writer lock;
//! 4. the backlog mutex;
//! 5. the timer heap mutex and an agent's `holding` list (leaves).
//!
//! Draining the backlog takes conversation guards, so it only ever runs when
//! the caller holds no guard: operations collect the slots whose capacity they
//! freed and drain after dropping their guard.
//!
//! # No lost wake-ups
//!
//! A conversation that finds no agent announces itself (`waiting += 1`),
//! looks again under the backlog lock and only then waits. Whoever frees
//! capacity frees it first and then reads `waiting`. With a `SeqCst` fence on
//! both sides, either the second look sees the freed capacity or the freer
//! sees `waiting > 0` and drains after the backlog lock is released.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};

use loket_capacity::Channel;
use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::agent::{AgentKind, AgentSpec, Capacity, Presence};
use crate::backlog::{Backlog, Need, Pool, QueueKey, Waiting};
use crate::bitset::{SlotSet, for_each_in_intersection_from};
use crate::clock::{Clock, SystemClock};
use crate::config::{RouterConfig, Strategy, Widen};
use crate::conversation::{
    Conversation, ConversationState, ConversationView, Holder, Message, clamp_unit,
};
use crate::conversations::{Conversations, Entry};
use crate::customers::CustomerHistories;
use crate::error::RouterError;
use crate::event::{AssignReason, EscalationTrigger, Event, EventKind, QueueReason, Why};
use crate::history::{HISTORY, History};
use crate::hours::{HoursGate, OpeningHours};
use crate::ids::{
    AgentId, ConversationId, CustomerId, Requirements, SkillId, SkillLevel, Timestamp,
};
use crate::roster::{Change, Indexes, Roster, tie_origin};

/// Slots whose freed capacity should be offered to the backlog.
type Drains = SmallVec<[u32; 4]>;

/// A cheap-to-clone, `Send + Sync` handle to one router. See the crate docs.
#[derive(Clone, Debug)]
pub struct Router {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Widening {
    Lower(u8),
    Group(SkillId),
    Bot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    OfferExpiry,
    WrapUpEnd,
    Overflow,
    AffinityEnd,
    HoursChange,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: Timestamp,
    seq: u64,
    kind: TimerKind,
    conversation: ConversationId,
    generation: u64,
}

#[derive(Debug, Default)]
struct SkillNames {
    by_name: FxHashMap<String, SkillId>,
    names: Vec<String>,
}

#[derive(Debug)]
struct Inner {
    config: RouterConfig,
    clock: Arc<dyn Clock>,
    roster: Roster,
    conversations: Conversations,
    customers: CustomerHistories,
    backlog: Mutex<Backlog>,
    /// Conversations in the backlog plus those about to look again before
    /// waiting; see the module docs.
    waiting: AtomicUsize,
    timers: Mutex<BinaryHeap<Reverse<Timer>>>,
    timer_seq: AtomicU64,
    skills: RwLock<SkillNames>,
    hours: Vec<(SkillId, HoursGate)>,
    overflow: Vec<(u64, Widening)>,
    round_robin: AtomicU32,
    /// When customer histories older than the look-back were last dropped.
    customers_swept_at: AtomicU64,
    /// Added to every incarnation number this router hands out: 0 for a new
    /// router; past every incarnation in the snapshot for a restored one.
    incarnation_base: u32,
}

/// Why a conversation is being placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    New,
    Reassign,
    Escalate,
    OfferNotTaken,
    Widened,
    AffinityOver,
}

/// A read-only view of an agent.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AgentView {
    /// The agent as registered.
    pub spec: AgentSpec,
    /// Current load per channel, indexed as [`Channel::ALL`].
    pub load: [u32; loket_capacity::CHANNELS],
    /// Current overall load.
    pub total_load: u32,
    /// Conversations holding this agent's capacity.
    pub holding: Vec<ConversationId>,
    /// Offers missed in a row.
    pub missed_offers: u32,
}

/// One (channel, language) lane of the backlog: see [`Router::queues`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LaneView {
    /// The channel.
    pub channel: Channel,
    /// The language.
    pub language: crate::ids::Language,
    /// Conversations waiting.
    pub depth: usize,
    /// When the longest-waiting of them first started waiting.
    pub oldest_since: Timestamp,
}

/// How loaded the agents are: see [`Router::agent_load`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AgentLoad {
    /// Registered agents that are not offline (available, away or not
    /// responding: they may hold conversations).
    pub agents: usize,
    /// Conversations those agents hold capacity for, summed.
    pub held: u64,
    /// Their overall capacity, summed.
    pub capacity: u64,
    /// Those holding as many conversations as their overall capacity allows.
    pub at_capacity: usize,
}

impl AgentLoad {
    /// `held / capacity`, or 0 without capacity.
    pub fn ratio(&self) -> f64 {
        if self.capacity == 0 { 0.0 } else { self.held as f64 / self.capacity as f64 }
    }
}

/// Counts for dashboards and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RouterStats {
    /// Registered agents.
    pub agents: usize,
    /// Conversations the router holds (open, queued or in wrap-up).
    pub conversations: usize,
    /// Conversations waiting in the backlog.
    pub queued: usize,
    /// Timers pending.
    pub timers: usize,
}

/// Builds a [`Router`].
#[derive(Debug, Default)]
pub struct RouterBuilder {
    config: RouterConfig,
    clock: Option<Arc<dyn Clock>>,
}

impl RouterBuilder {
    /// The routing policy (default: [`RouterConfig::default`]).
    #[must_use]
    pub fn config(mut self, config: RouterConfig) -> Self {
        self.config = config;
        self
    }

    /// The clock (default: [`SystemClock`]).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Checks the configuration (opening hours, overflow groups) and builds.
    pub fn build(self) -> Result<Router, RouterError> {
        let parts = self.prepare(SkillNames::default())?;
        let router = Router { inner: Arc::new(parts.into_inner(Roster::new())) };
        let now = router.inner.clock.now();
        router.inner.schedule_hours(now);
        Ok(router)
    }

    /// Checks the configuration, interning its skill names after `skills`.
    fn prepare(self, mut skills: SkillNames) -> Result<Parts, RouterError> {
        let mut config = self.config;
        config.overflow.sort_by_key(|step| step.after_ms);
        let mut hours = Vec::new();
        for group in &config.business_hours {
            let skill = intern(&mut skills, &group.skill)?;
            hours.push((skill, HoursGate::new(OpeningHours::parse(&group.hours)?)));
        }
        let mut overflow = Vec::new();
        for step in &config.overflow {
            let widening = match &step.widen {
                Widen::LowerProficiency { by } => Widening::Lower(*by),
                Widen::SkillGroup { skill } => Widening::Group(intern(&mut skills, skill)?),
                Widen::Bot => Widening::Bot,
            };
            overflow.push((step.after_ms, widening));
        }
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        Ok(Parts { config, clock, skills, hours, overflow })
    }
}

/// A checked configuration, ready to become a router.
struct Parts {
    config: RouterConfig,
    clock: Arc<dyn Clock>,
    skills: SkillNames,
    hours: Vec<(SkillId, HoursGate)>,
    overflow: Vec<(u64, Widening)>,
}

impl Parts {
    /// An empty router around `roster`.
    fn into_inner(self, roster: Roster) -> Inner {
        Inner {
            config: self.config,
            clock: self.clock,
            roster,
            conversations: Conversations::default(),
            customers: CustomerHistories::default(),
            backlog: Mutex::new(Backlog::default()),
            waiting: AtomicUsize::new(0),
            timers: Mutex::new(BinaryHeap::new()),
            timer_seq: AtomicU64::new(0),
            skills: RwLock::new(self.skills),
            hours: self.hours,
            overflow: self.overflow,
            round_robin: AtomicU32::new(0),
            customers_swept_at: AtomicU64::new(0),
            incarnation_base: 0,
        }
    }
}

fn intern(skills: &mut SkillNames, name: &str) -> Result<SkillId, RouterError> {
    if let Some(&id) = skills.by_name.get(name) {
        return Ok(id);
    }
    let id = SkillId(u16::try_from(skills.names.len()).map_err(|_| RouterError::TooManySkills)?);
    skills.by_name.insert(name.to_owned(), id);
    skills.names.push(name.to_owned());
    Ok(id)
}

impl Router {
    /// A router with the default policy and the system clock.
    pub fn new() -> Router {
        Router::builder().build().expect("the default configuration is valid")
    }

    /// Starts building a router.
    pub fn builder() -> RouterBuilder {
        RouterBuilder::default()
    }

    /// The policy in force.
    pub fn config(&self) -> &RouterConfig {
        &self.inner.config
    }

    /// The router's clock.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// The id of a skill name, interning it on first use.
    pub fn skill(&self, name: &str) -> Result<SkillId, RouterError> {
        if let Some(&id) = self.inner.skills.read().by_name.get(name) {
            return Ok(id);
        }
        intern(&mut self.inner.skills.write(), name)
    }

    /// The id of a skill name, if it was ever interned.
    pub fn find_skill(&self, name: &str) -> Option<SkillId> {
        self.inner.skills.read().by_name.get(name).copied()
    }

    /// The name of an interned skill.
    pub fn skill_name(&self, skill: SkillId) -> Option<String> {
        self.inner.skills.read().names.get(skill.0 as usize).cloned()
    }

    /// Registers agents or updates them in place (a log-in is an upsert with
    /// presence available). One index publish for the whole batch. Agents
    /// that become available are offered waiting conversations; agents that
    /// go away or offline have their conversations re-routed.
    ///
    /// Fails without changing anything if any spec is invalid.
    pub fn upsert_agents(
        &self,
        specs: impl IntoIterator<Item = AgentSpec>,
        out: &mut Vec<Event>,
    ) -> Result<(), RouterError> {
        let specs = specs.into_iter().map(AgentSpec::normalise).collect::<Result<Vec<_>, _>>()?;
        let mut changes = Vec::with_capacity(specs.len());
        self.inner.roster.upsert(specs, &mut changes)?;
        self.inner.follow_up(&changes, out);
        Ok(())
    }

    /// Registers or updates one agent; see [`Router::upsert_agents`].
    pub fn upsert_agent(&self, spec: AgentSpec, out: &mut Vec<Event>) -> Result<(), RouterError> {
        self.upsert_agents([spec], out)
    }

    /// Changes an agent's presence.
    pub fn set_presence(
        &self,
        agent: AgentId,
        presence: Presence,
        out: &mut Vec<Event>,
    ) -> Result<(), RouterError> {
        let spec = self.inner.roster.edit(agent, |spec| spec.presence = presence)?;
        self.apply(spec, out)
    }

    /// Changes an agent's capacity. Lowering it below the current load keeps
    /// the conversations the agent holds and stops new ones.
    pub fn set_capacity(
        &self,
        agent: AgentId,
        capacity: Capacity,
        out: &mut Vec<Event>,
    ) -> Result<(), RouterError> {
        let spec = self.inner.roster.edit(agent, |spec| spec.capacity = capacity)?;
        self.apply(spec, out)
    }

    /// Replaces an agent's skills.
    pub fn set_skills(
        &self,
        agent: AgentId,
        skills: Vec<SkillLevel>,
        out: &mut Vec<Event>,
    ) -> Result<(), RouterError> {
        let spec = self.inner.roster.edit(agent, |spec| spec.skills = skills)?;
        self.apply(spec, out)
    }

    fn apply(
        &self,
        (spec, limits): (AgentSpec, loket_capacity::Limits),
        out: &mut Vec<Event>,
    ) -> Result<(), RouterError> {
        let mut changes = Vec::with_capacity(1);
        self.inner.roster.upsert(vec![(spec, limits)], &mut changes)?;
        self.inner.follow_up(&changes, out);
        Ok(())
    }

    /// Removes an agent; its conversations are re-routed or queued.
    pub fn remove_agent(&self, agent: AgentId, out: &mut Vec<Event>) -> Result<(), RouterError> {
        let change = self.inner.roster.remove(agent)?;
        self.inner.follow_up(&[change], out);
        Ok(())
    }

    /// Routes one message. Every event it causes is appended to `out`; the
    /// return value is the decision for this message (also in `out`).
    ///
    /// A message in a conversation whose agent is still online is sticky and
    /// never takes capacity again; a message with a new conversation id opens
    /// a conversation.
    pub fn route(&self, message: &Message, out: &mut Vec<Event>) -> Event {
        self.inner.route(message, out)
    }

    /// Closes a conversation. Its capacity returns after the wrap-up time.
    pub fn close(
        &self,
        conversation: ConversationId,
        out: &mut Vec<Event>,
    ) -> Result<(), RouterError> {
        self.inner.close(conversation, out)
    }

    /// Erases a customer (GDPR): every conversation of `customer` goes at
    /// once, whatever its state, and the router forgets who served them.
    ///
    /// Queued conversations leave the backlog; held ones (assigned, offered,
    /// with a bot, in wrap-up) give their agent's capacity back at once, with
    /// no wrap-up, and the backlog is offered that capacity as on a close.
    /// Their pending timers are dropped, and the customer's history with
    /// them, so a later conversation of theirs starts without affinity.
    /// Emits one [`EventKind::Erased`] per conversation (in id order, before
    /// any assignment the freed capacity causes) and returns the erased ids,
    /// sorted; an unknown customer erases nothing.
    ///
    /// Costs a scan of every conversation the router holds: it is meant for
    /// rare erasure requests, not the message path.
    pub fn erase_customer(
        &self,
        customer: CustomerId,
        out: &mut Vec<Event>,
    ) -> Vec<ConversationId> {
        self.inner.erase_customer(customer, out)
    }

    /// The agent accepts a pending offer.
    pub fn accept_offer(
        &self,
        conversation: ConversationId,
        agent: AgentId,
        out: &mut Vec<Event>,
    ) -> Result<(), RouterError> {
        self.inner.answer_offer(conversation, agent, true, out)
    }

    /// The agent declines a pending offer; the conversation goes to someone
    /// else, ahead in the queue.
    pub fn decline_offer(
        &self,
        conversation: ConversationId,
        agent: AgentId,
        out: &mut Vec<Event>,
    ) -> Result<(), RouterError> {
        self.inner.answer_offer(conversation, agent, false, out)
    }

    /// Moves a conversation to a named agent, who must be available, speak
    /// the language and have room on the channel (skills are the platform's
    /// call).
    pub fn transfer(
        &self,
        conversation: ConversationId,
        agent: AgentId,
        out: &mut Vec<Event>,
    ) -> Result<(), RouterError> {
        self.inner.transfer(conversation, agent, out)
    }

    /// Fires every timer that is due by the clock: offer expiry, wrap-up end,
    /// overflow steps, affinity waits and opening-hour changes. Call it
    /// regularly (the daemon does every few milliseconds); routing never
    /// depends on it to drain the backlog.
    pub fn advance(&self, out: &mut Vec<Event>) {
        self.inner.advance(out);
    }

    /// When the next timer is due, if any.
    pub fn next_timer(&self) -> Option<Timestamp> {
        self.inner.timers.lock().peek().map(|t| t.0.at)
    }

    /// A conversation's current state.
    pub fn conversation(&self, conversation: ConversationId) -> Option<ConversationView> {
        let conv = self.inner.conversations.get(conversation)?;
        Some(self.inner.view(conversation, &conv))
    }

    /// Every conversation the router holds, oldest first (by creation, then
    /// id). Walks the whole table, one shard lock at a time: for listings
    /// and debugging, not for every decision.
    pub fn conversations(&self) -> Vec<ConversationView> {
        let mut views = Vec::new();
        self.inner.conversations.for_each(|id, conv| views.push(self.inner.view(id, conv)));
        views.sort_unstable_by_key(|view| (view.created_at, view.id));
        views
    }

    /// The registered agents' ids, in registration order.
    pub fn agent_ids(&self) -> Vec<AgentId> {
        self.inner.roster.ids()
    }

    /// The backlog per (channel, language) lane: how many wait and since
    /// when the longest-waiting one has waited. Lanes with nobody waiting
    /// are left out; the order is by channel, then language.
    pub fn queues(&self) -> Vec<LaneView> {
        let backlog = self.inner.backlog.lock();
        let mut lanes: Vec<LaneView> = Vec::new();
        for (_, waiting) in backlog.conversations() {
            let (channel, language) = (waiting.need.channel, waiting.need.language);
            match lanes.iter_mut().find(|l| l.channel == channel && l.language == language) {
                Some(lane) => {
                    lane.depth += 1;
                    lane.oldest_since = lane.oldest_since.min(waiting.enqueued_at);
                }
                None => lanes.push(LaneView {
                    channel,
                    language,
                    depth: 1,
                    oldest_since: waiting.enqueued_at,
                }),
            }
        }
        drop(backlog);
        lanes.sort_unstable_by_key(|l| (l.channel.index(), l.language.as_str().to_owned()));
        lanes
    }

    /// Can the customer's history still steer routing: did an agent serve
    /// them within the affinity look-back? (Always `false` with affinity
    /// off.) Callers that keep data per customer, such as the customer's
    /// own id, keep it while this holds.
    pub fn remembers_customer(&self, customer: CustomerId) -> bool {
        self.remembered_until(customer).is_some()
    }

    /// Until when (the first instant it no longer will, by the router's
    /// clock) the customer's history steers routing, if it does now. Serving
    /// the customer again moves it later.
    pub fn remembered_until(&self, customer: CustomerId) -> Option<Timestamp> {
        let lookback = self.inner.config.affinity_lookback_ms;
        if lookback == 0 {
            return None;
        }
        let served = self.inner.history(customer)?.last_served_at()?;
        let until = served.plus_ms(lookback).plus_ms(1);
        (self.inner.clock.now() < until).then_some(until)
    }

    /// An agent's current state.
    pub fn agent(&self, agent: AgentId) -> Option<AgentView> {
        let (slot, spec) = self.inner.roster.spec(agent)?;
        let cell = self.inner.roster.cell(slot);
        let mut load = [0; loket_capacity::CHANNELS];
        for channel in Channel::ALL {
            load[channel.index()] = cell.capacity.load(channel);
        }
        Some(AgentView {
            spec,
            load,
            total_load: cell.capacity.total_load(),
            holding: cell.held(),
            missed_offers: cell.missed_offers.load(Ordering::Relaxed),
        })
    }

    /// Counts.
    pub fn stats(&self) -> RouterStats {
        RouterStats {
            agents: self.inner.roster.len(),
            conversations: self.inner.conversations.len(),
            queued: self.inner.backlog.lock().len(),
            timers: self.inner.timers.lock().len(),
        }
    }

    /// Load of the agents that are not offline. Walks every agent (one
    /// atomic load each): meant for gauges refreshed a few times a second,
    /// not for every decision.
    pub fn agent_load(&self) -> AgentLoad {
        self.inner.roster.load_summary()
    }

    /// Ids of the conversations waiting in the backlog, best first.
    pub fn queued(&self) -> Vec<ConversationId> {
        let backlog = self.inner.backlog.lock();
        let mut entries: Vec<(QueueKey, ConversationId)> =
            backlog.conversations().map(|(id, w)| (w.key, *id)).collect();
        entries.sort_unstable();
        entries.into_iter().map(|(_, id)| id).collect()
    }

    /// Checks the router's bookkeeping and returns every inconsistency found.
    /// Meant for tests and debugging endpoints. Safe to call while other
    /// threads route (it takes the locks in the documented order), but then
    /// it may report changes in flight: call it when nothing else changes
    /// the router for a verdict.
    pub fn audit(&self) -> Vec<String> {
        self.inner.audit()
    }
}

impl Default for Router {
    fn default() -> Self {
        Router::new()
    }
}

impl Inner {
    /// Starts the one chain of opening-hour timers: the next change of any group.
    fn schedule_hours(&self, now: Timestamp) {
        if let Some(at) = self.hours.iter().filter_map(|(_, gate)| gate.next_change(now)).min() {
            self.schedule(at, TimerKind::HoursChange, ConversationId(0), 0);
        }
    }

    fn schedule(
        &self,
        at: Timestamp,
        kind: TimerKind,
        conversation: ConversationId,
        generation: u64,
    ) {
        let seq = self.timer_seq.fetch_add(1, Ordering::Relaxed);
        self.timers.lock().push(Reverse(Timer { at, seq, kind, conversation, generation }));
    }

    fn event(
        &self,
        at: Timestamp,
        id: ConversationId,
        agent: Option<AgentId>,
        kind: EventKind,
    ) -> Event {
        Event { at, conversation: Some(id), agent, kind }
    }

    // ----- Requirements, eligibility and selection ---------------------------

    fn view(&self, id: ConversationId, conv: &Conversation) -> ConversationView {
        ConversationView {
            id,
            customer: conv.customer,
            channel: conv.channel,
            language: conv.language,
            state: conv.state,
            agent: conv.holder.map(|h| h.agent),
            required: self.need_of(conv).required,
            overflow_step: conv.overflow_step,
            escalated: conv.escalated,
            buying_intent: conv.buying_intent,
            created_at: conv.created_at,
            last_message_at: conv.last_message_at,
            messages: conv.messages,
        }
    }

    /// What a conversation needs now, overflow steps applied.
    fn need_of(&self, conv: &Conversation) -> Need {
        let mut required = conv.required.clone();
        let mut pool = Pool::Humans;
        for &(_, widening) in self.overflow.iter().take(conv.overflow_step as usize) {
            match widening {
                Widening::Lower(by) => {
                    for skill in &mut required {
                        skill.level = skill.level.saturating_sub(by).max(1);
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

    /// The first required skill whose group is closed now.
    fn closed_group(&self, required: &[SkillLevel], now: Timestamp) -> Option<SkillId> {
        if self.hours.is_empty() {
            return None;
        }
        required.iter().map(|r| r.skill).find(|skill| {
            self.hours.iter().any(|(group, gate)| group == skill && !gate.is_open(now))
        })
    }

    /// Could `slot` take a conversation with this need (capacity aside)?
    ///
    /// Reads only the published indexes, as [`Inner::select`] does: an
    /// agent's kind is the availability set it is in, so the check does not
    /// touch the agent's cell (a cache miss per history entry on the
    /// affinity path, where most entries are not eligible).
    fn eligible(&self, indexes: &Indexes, slot: u32, need: &Need, now: Timestamp) -> bool {
        let available_as = |kind: AgentKind| indexes.available(kind).contains(slot);
        let kind = match need.pool {
            Pool::Humans if available_as(AgentKind::Human) => AgentKind::Human,
            Pool::Bots if available_as(AgentKind::Bot) => AgentKind::Bot,
            Pool::HumansOrBots if available_as(AgentKind::Human) => AgentKind::Human,
            Pool::HumansOrBots if available_as(AgentKind::Bot) => AgentKind::Bot,
            _ => return false,
        };
        if !indexes.language(need.language).is_some_and(|set| set.contains(slot)) {
            return false;
        }
        if kind == AgentKind::Bot {
            // Bots answer in any skill area once the pool lets them in.
            return true;
        }
        need.required
            .iter()
            .all(|r| indexes.skill(r.skill).is_some_and(|s| s.at_least(r.level).contains(slot)))
            && self.closed_group(&need.required, now).is_none()
    }

    /// Picks an agent for a conversation's `need` by the strategy and
    /// reserves its capacity. Ties go to the first agent in slot order from
    /// `origin`, the conversation's [`tie_origin`], wrapping around.
    ///
    /// `indexes` is the caller's snapshot of the roster's indexes (one load
    /// per placement: each load costs two atomic read-modify-writes), and
    /// `origin` was computed from it.
    fn select(
        &self,
        indexes: &Indexes,
        origin: u32,
        need: &Need,
        excluded: Option<u32>,
        now: Timestamp,
    ) -> Option<u32> {
        let kinds: &[AgentKind] = match need.pool {
            Pool::Humans => &[AgentKind::Human],
            Pool::Bots => &[AgentKind::Bot],
            Pool::HumansOrBots => &[AgentKind::Human, AgentKind::Bot],
        };
        for &kind in kinds {
            // Bots take conversations by language and channel; humans by skill too.
            let required: &[SkillLevel] = if kind == AgentKind::Bot { &[] } else { &need.required };
            if kind == AgentKind::Human && self.closed_group(required, now).is_some() {
                continue;
            }
            for _attempt in 0..4 {
                let Some(slot) =
                    self.best_candidate(indexes, kind, need, required, excluded, origin)
                else {
                    break;
                };
                if self.roster.reserve(slot, need.channel) {
                    return Some(slot);
                }
                // Another thread took the last slot in between: look again.
            }
        }
        None
    }

    /// Why nobody in `need`'s pool can take a conversation: the first
    /// requirement, in [`Why`]'s order, that no agent meets. For a pool of
    /// humans or bots it explains the humans. Slow (it scans the roster's
    /// sets), so only called for a conversation that queues.
    fn why(&self, indexes: &Indexes, need: &Need, excluded: Option<u32>) -> Why {
        /// Does the intersection of `sets` hold a slot that `accept`s?
        fn any(sets: &[&SlotSet], mut accept: impl FnMut(u32) -> bool) -> bool {
            let mut found = false;
            for_each_in_intersection_from(sets, None, 0, |slot| {
                found = accept(slot);
                !found
            });
            found
        }
        let kind = match need.pool {
            Pool::Humans | Pool::HumansOrBots => AgentKind::Human,
            Pool::Bots => AgentKind::Bot,
        };
        let of_kind = |slot: u32| self.roster.cell(slot).kind() == kind;
        if !indexes.by_language.iter().any(|(_, set)| any(&[&**set], of_kind)) {
            return Why::NoAgents;
        }
        let mut sets: SmallVec<[&SlotSet; 8]> = SmallVec::new();
        if kind == AgentKind::Human {
            for requirement in &need.required {
                let no_skill = Why::NoSkill { skill: requirement.skill, level: requirement.level };
                let Some(index) = indexes.skill(requirement.skill) else { return no_skill };
                sets.push(index.at_least(requirement.level));
                if !any(&sets, of_kind) {
                    return no_skill;
                }
            }
        }
        let no_language = Why::NoLanguage { language: need.language };
        let Some(language) = indexes.language(need.language) else { return no_language };
        sets.push(language);
        if !any(&sets, of_kind) {
            return no_language;
        }
        sets.push(indexes.available(kind));
        if !any(&sets, |_| true) {
            return Why::Unavailable;
        }
        if let Some(slot) = excluded
            && sets.iter().all(|set| set.contains(slot))
            && self.roster.cell(slot).capacity.has_room(need.channel)
        {
            return Why::Declined;
        }
        Why::AtCapacity { channel: need.channel }
    }

    /// Starts loading each required skill's eligibility-set word for slot
    /// `at`: where [`Inner::select`] starts its scan (`at` = the origin),
    /// or what [`Inner::eligible`] reads for an agent (`at` = its slot).
    /// They miss the cache (there are thousands of such sets), and the
    /// loads overlap with each other and with the work that comes first.
    fn prefetch_skill_words(&self, indexes: &Indexes, at: u32, required: &[SkillLevel]) {
        for requirement in required {
            if let Some(index) = indexes.skill(requirement.skill) {
                index.at_least(requirement.level).prefetch(at);
            }
        }
    }

    fn best_candidate(
        &self,
        indexes: &Indexes,
        kind: AgentKind,
        need: &Need,
        required: &[SkillLevel],
        excluded: Option<u32>,
        origin: u32,
    ) -> Option<u32> {
        let language = indexes.language(need.language)?;
        let mut sets: SmallVec<[&SlotSet; 8]> = SmallVec::new();
        sets.push(indexes.available(kind));
        sets.push(language);
        let mut skills: SmallVec<[&crate::roster::SkillIndex; 4]> = SmallVec::new();
        for requirement in required {
            let index = indexes.skill(requirement.skill)?;
            sets.push(index.at_least(requirement.level));
            skills.push(index);
        }
        // Sparsest first: most words of the scan then cost one load.
        sets.sort_unstable_by_key(|set| set.len());
        let strategy = self.config.strategy;
        let cursor = if strategy == Strategy::RoundRobin {
            self.round_robin.load(Ordering::Relaxed)
        } else {
            0
        };
        // Round robin has its own order (the cursor); the others break ties
        // from the origin.
        let start = if strategy == Strategy::RoundRobin { 0 } else { origin };
        let qualifies = |slot: u32| excluded != Some(slot);
        if strategy == Strategy::LeastLoaded {
            // An idle agent is always least loaded: look among the idle ones
            // first (in the same order as the full scan below).
            let mut idle = None;
            for_each_in_intersection_from(&sets, Some(self.roster.idle_words()), start, |slot| {
                let cell = self.roster.cell(slot);
                if qualifies(slot)
                    && cell.capacity.total_load() == 0
                    && cell.capacity.has_room(need.channel)
                {
                    idle = Some(slot);
                    return false;
                }
                true
            });
            if idle.is_some() {
                return idle;
            }
        }
        // Lower is better; the first in scan order wins ties.
        let mut best: Option<(u64, u32)> = None;
        let mut first_wrapped: Option<u32> = None;
        for_each_in_intersection_from(&sets, None, start, |slot| {
            if !qualifies(slot) {
                return true;
            }
            let cell = self.roster.cell(slot);
            if !cell.capacity.has_room(need.channel) {
                return true;
            }
            let score = match strategy {
                Strategy::LeastLoaded => {
                    let total = u64::from(cell.capacity.total_load());
                    (total << 8) | u64::from(cell.capacity.load(need.channel))
                }
                Strategy::LongestIdle => cell.last_assigned_ms.load(Ordering::Relaxed),
                Strategy::MostProficient => {
                    let sum: u64 = skills.iter().map(|index| u64::from(index.level(slot))).sum();
                    ((1000 - sum) << 32) | u64::from(cell.capacity.total_load())
                }
                Strategy::RoundRobin => {
                    if slot < cursor {
                        first_wrapped.get_or_insert(slot);
                        return true;
                    }
                    best = Some((0, slot));
                    return false;
                }
            };
            if best.is_none_or(|(b, _)| score < b) {
                best = Some((score, slot));
            }
            // Nobody beats an idle agent under least-loaded.
            !(strategy == Strategy::LeastLoaded && score == 0)
        });
        let chosen = best.map(|(_, slot)| slot).or(first_wrapped)?;
        if strategy == Strategy::RoundRobin {
            self.round_robin.store(chosen + 1, Ordering::Relaxed);
        }
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

    // ----- Holding and releasing capacity ------------------------------------

    /// Gives the conversation to `slot`, whose capacity the caller reserved.
    /// Releases the previous holder, if any, into `drains`.
    #[allow(clippy::too_many_arguments)]
    fn assign(
        &self,
        id: ConversationId,
        conv: &mut Conversation,
        slot: u32,
        now: Timestamp,
        reason: AssignReason,
        waited_ms: u64,
        out: &mut Vec<Event>,
        drains: &mut Drains,
    ) -> Event {
        if let Some(previous) = self.release_holder(id, conv) {
            drains.push(previous);
        }
        let cell = self.roster.cell(slot);
        let agent = cell.id();
        cell.hold(id);
        // Pairs with the fence in `reassign_all`: either that sweep sees this
        // conversation in the agent's list, or we see the agent leaving here.
        fence(Ordering::SeqCst);
        if !cell.presence().keeps_conversations() {
            cell.unhold(id);
            self.roster.release(slot, conv.channel);
            conv.excluded = Some(slot);
            return self.place(id, conv, now, Placement::Reassign, out, drains);
        }
        cell.last_assigned_ms.store(now.0, Ordering::Relaxed);
        conv.holder = Some(Holder { slot, agent });
        conv.excluded = None;
        let kind = cell.kind();
        let event_kind = match (kind, self.config.offers) {
            (AgentKind::Bot, _) => {
                conv.state = ConversationState::Bot;
                EventKind::Assigned { reason, waited_ms }
            }
            (AgentKind::Human, Some(offers)) => {
                conv.state = ConversationState::Offered;
                let expires_at = now.plus_ms(offers.timeout_ms);
                let generation = conv.bump();
                self.schedule(expires_at, TimerKind::OfferExpiry, id, generation);
                EventKind::Offered { reason, expires_at }
            }
            (AgentKind::Human, None) => {
                conv.state = ConversationState::Assigned;
                EventKind::Assigned { reason, waited_ms }
            }
        };
        if conv.state != ConversationState::Offered {
            conv.bump();
        }
        if kind == AgentKind::Human {
            self.remember(conv.customer, slot, now);
        }
        conv.first_queued_at = None;
        conv.boosted = false;
        let event = self.event(now, id, Some(agent), event_kind);
        out.push(event);
        event
    }

    fn remember(&self, customer: CustomerId, slot: u32, at: Timestamp) {
        self.customers.update(customer, |history| history.remember(slot, at));
    }

    /// Returns the holder's capacity; the caller decides whether to drain.
    fn release_holder(&self, id: ConversationId, conv: &mut Conversation) -> Option<u32> {
        let holder = conv.holder.take()?;
        self.roster.cell(holder.slot).unhold(id);
        let released = self.roster.release(holder.slot, conv.channel);
        debug_assert!(released, "a holder always holds capacity");
        Some(holder.slot)
    }

    // ----- Placing a conversation --------------------------------------------

    /// Finds a place for a conversation that needs one: an agent now, or the
    /// backlog. The conversation may still be held by a bot (escalation).
    fn place(
        &self,
        id: ConversationId,
        conv: &mut Conversation,
        now: Timestamp,
        placement: Placement,
        out: &mut Vec<Event>,
        drains: &mut Drains,
    ) -> Event {
        let need = self.need_of(conv);
        let human_reason = match placement {
            Placement::Reassign => AssignReason::Reassignment,
            Placement::Escalate => AssignReason::Escalation,
            Placement::Widened => AssignReason::Overflow { step: conv.overflow_step - 1 },
            _ => AssignReason::SkillMatch { strategy: self.config.strategy },
        };
        let queue_reason = match placement {
            Placement::Reassign => QueueReason::Reassignment,
            Placement::Escalate => QueueReason::Escalation,
            Placement::OfferNotTaken => QueueReason::OfferNotTaken,
            _ => QueueReason::NoEligibleAgent,
        };

        let indexes = self.roster.indexes();
        let origin = tie_origin(id, indexes.slots);
        if placement == Placement::New {
            self.prefetch_skill_words(&indexes, origin, &need.required);
        }

        if placement == Placement::New && self.config.bot_first {
            let bots = Need { required: Requirements::new(), pool: Pool::Bots, ..need.clone() };
            if let Some(slot) = self.select(&indexes, origin, &bots, None, now) {
                return self.assign(id, conv, slot, now, AssignReason::BotFirst, 0, out, drains);
            }
        }

        if let Some(skill) = self.closed_group(&need.required, now) {
            out.push(self.event(now, id, None, EventKind::OutsideBusinessHours { skill }));
            // An escalation waits for a person (a bot that holds it keeps
            // answering meanwhile); anything else may go to a bot.
            let for_a_person = placement == Placement::Escalate
                || conv.holder.is_some_and(|h| self.roster.cell(h.slot).kind() == AgentKind::Bot);
            if !for_a_person {
                let bots = Need { required: Requirements::new(), pool: Pool::Bots, ..need.clone() };
                if let Some(slot) = self.select(&indexes, origin, &bots, None, now) {
                    return self.assign(
                        id,
                        conv,
                        slot,
                        now,
                        AssignReason::AfterHours,
                        0,
                        out,
                        drains,
                    );
                }
            }
            return self.enqueue(
                id,
                conv,
                need,
                now,
                QueueReason::OutsideBusinessHours,
                None,
                out,
                drains,
            );
        }

        // Customer affinity: the agents who served this customer, most recent first.
        let affinity = matches!(placement, Placement::New | Placement::Reassign)
            && self.config.affinity_lookback_ms > 0;
        if affinity && let Some(history) = self.history(conv.customer) {
            // The checks below miss the cache on each agent's skill words,
            // one after another: start those loads together first.
            for (slot, _) in history.iter() {
                self.prefetch_skill_words(&indexes, slot, &need.required);
            }
            for (index, (slot, served_at)) in history.iter().enumerate() {
                if now.since(served_at) > self.config.affinity_lookback_ms
                    || conv.excluded == Some(slot)
                    || !self.eligible(&indexes, slot, &need, now)
                {
                    continue;
                }
                if self.roster.reserve(slot, need.channel) {
                    let reason = if placement == Placement::Reassign {
                        AssignReason::Reassignment
                    } else {
                        AssignReason::Affinity
                    };
                    return self.assign(id, conv, slot, now, reason, 0, out, drains);
                }
                if index == 0 && placement == Placement::New && self.config.affinity_wait_ms > 0 {
                    let until = now.plus_ms(self.config.affinity_wait_ms);
                    return self.enqueue(
                        id,
                        conv,
                        need,
                        now,
                        QueueReason::WaitingForPreferredAgent,
                        Some((slot, until)),
                        out,
                        drains,
                    );
                }
            }
        }

        if let Some(slot) = self.select(&indexes, origin, &need, conv.excluded, now) {
            return self.assign(id, conv, slot, now, human_reason, 0, out, drains);
        }
        self.enqueue(id, conv, need, now, queue_reason, None, out, drains)
    }

    /// A copy of the customer's history (the shard lock is released at once).
    fn history(&self, customer: CustomerId) -> Option<History> {
        self.customers.get(customer)
    }

    /// Puts a conversation in the backlog, after one more look for an agent
    /// under the backlog lock (see the module docs).
    #[allow(clippy::too_many_arguments)]
    fn enqueue(
        &self,
        id: ConversationId,
        conv: &mut Conversation,
        need: Need,
        now: Timestamp,
        reason: QueueReason,
        preferred: Option<(u32, Timestamp)>,
        out: &mut Vec<Event>,
        drains: &mut Drains,
    ) -> Event {
        let priority = self.priority(conv);
        let mut backlog = self.backlog.lock();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let again = match preferred {
            Some((slot, _)) => self.roster.reserve(slot, need.channel).then_some(slot),
            None if reason == QueueReason::OutsideBusinessHours => None,
            None => {
                let indexes = self.roster.indexes();
                self.select(&indexes, tie_origin(id, indexes.slots), &need, conv.excluded, now)
            }
        };
        if let Some(slot) = again {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            drop(backlog);
            let reason = if preferred.is_some() {
                AssignReason::Affinity
            } else {
                AssignReason::SkillMatch { strategy: self.config.strategy }
            };
            return self.assign(id, conv, slot, now, reason, 0, out, drains);
        }
        let first_queued = *conv.first_queued_at.get_or_insert(now);
        let aging = self.config.priority.aging_ms_per_point.min(i64::MAX as u64 / 1_000_000) as i64;
        // Waiting counts from the first queueing, also after an overflow step
        // or an affinity wait re-queues the conversation.
        let rank = first_queued.0.min(i64::MAX as u64) as i64 - i64::from(priority) * aging;
        let key = backlog.next_key(rank);
        conv.state = ConversationState::Queued;
        let generation = conv.bump();
        let excluded = conv.excluded;
        // Explaining the wait reads the roster: done after the backlog lock
        // is released, from a copy of the need.
        let explain = (reason == QueueReason::NoEligibleAgent).then(|| need.clone());
        let waiting = Waiting {
            key,
            need,
            priority,
            enqueued_at: first_queued,
            preferred,
            excluded,
            generation,
        };
        backlog.insert(id, waiting);
        let position = backlog.position(id);
        drop(backlog);

        if let Some(&(after, _)) = self.overflow.get(conv.overflow_step as usize) {
            let at = first_queued.plus_ms(after).max(now);
            self.schedule(at, TimerKind::Overflow, id, generation);
        }
        if let Some((_, until)) = preferred {
            self.schedule(until, TimerKind::AffinityEnd, id, generation);
        }
        let why = explain.map(|need| self.why(&self.roster.indexes(), &need, excluded));
        let event = self.event(
            now,
            id,
            conv.holder.map(|h| h.agent),
            EventKind::Queued { reason, position, priority, why },
        );
        out.push(event);
        event
    }

    fn unqueue(&self, id: ConversationId) -> Option<Waiting> {
        let removed = self.backlog.lock().remove(id);
        if removed.is_some() {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
        removed
    }

    // ----- Messages ----------------------------------------------------------

    fn route(&self, message: &Message, out: &mut Vec<Event>) -> Event {
        // The conversation's slot is the first thing read, and usually not
        // in cache: start loading it while the clock is read.
        self.conversations.prefetch(message.conversation);
        let now = self.clock.now();
        let id = message.conversation;
        let mut drains = Drains::new();
        let decision = match self.conversations.entry(id) {
            Entry::Occupied(mut conv) => {
                let conv = &mut *conv;
                if conv.state == ConversationState::Closed {
                    *conv = Conversation::new(message, now, self.incarnation());
                    self.open(id, conv, message, now, out, &mut drains)
                } else {
                    self.route_existing(id, conv, message, now, out, &mut drains)
                }
            }
            Entry::Vacant(vacant) => {
                // Placing reads the customer's history first: start that
                // cache miss now, to overlap with storing the conversation.
                if self.config.affinity_lookback_ms > 0 {
                    self.customers.prefetch(message.customer);
                }
                // Stored first and placed in the table: the shard stays locked
                // throughout, so nobody sees it half-placed, and the stores
                // into the (cold) slot complete while placing instead of
                // stalling the unlock at the end.
                let mut conv = vacant.insert(Conversation::new(message, now, self.incarnation()));
                self.open(id, &mut conv, message, now, out, &mut drains)
            }
        };
        self.drain(drains, out);
        decision
    }

    /// A fresh incarnation number. Threads take blocks of numbers from a
    /// process-wide counter, so opening conversations on several threads
    /// does not bounce one cache line between cores. A restored router
    /// offsets them past the incarnations in its snapshot.
    fn incarnation(&self) -> u32 {
        const BLOCK: u32 = 1024;
        static NEXT_BLOCK: AtomicU32 = AtomicU32::new(0);
        thread_local! {
            static RANGE: std::cell::Cell<(u32, u32)> = const { std::cell::Cell::new((0, 0)) };
        }
        RANGE.with(|range| {
            let (mut next, mut end) = range.get();
            if next == end {
                next = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
                end = next.wrapping_add(BLOCK);
            }
            range.set((next.wrapping_add(1), end));
            next.wrapping_add(self.incarnation_base)
        })
    }

    /// Places a conversation that starts with `message`. Under bot-first, a
    /// first message that already meets an escalation trigger skips the
    /// bot: it escalates at once (an `escalated` event, then a human or a
    /// place ahead in the queue), as a later message would.
    fn open(
        &self,
        id: ConversationId,
        conv: &mut Conversation,
        message: &Message,
        now: Timestamp,
        out: &mut Vec<Event>,
        drains: &mut Drains,
    ) -> Event {
        if self.config.bot_first
            && let Some(trigger) = self.escalation_trigger(message)
        {
            out.push(self.event(now, id, None, EventKind::Escalated { trigger }));
            conv.escalated = true;
            return self.place(id, conv, now, Placement::Escalate, out, drains);
        }
        self.place(id, conv, now, Placement::New, out, drains)
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

    /// The decision for a message that stays with the agent holding it.
    fn sticky(
        &self,
        id: ConversationId,
        conv: &Conversation,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Event {
        let kind = EventKind::Assigned { reason: AssignReason::Sticky, waited_ms: 0 };
        let event = self.event(now, id, conv.holder.map(|h| h.agent), kind);
        out.push(event);
        event
    }

    fn route_existing(
        &self,
        id: ConversationId,
        conv: &mut Conversation,
        message: &Message,
        now: Timestamp,
        out: &mut Vec<Event>,
        drains: &mut Drains,
    ) -> Event {
        conv.last_message_at = now;
        conv.messages = conv.messages.saturating_add(1);
        conv.buying_intent = clamp_unit(message.buying_intent);
        let holder_online =
            conv.holder.is_some_and(|h| self.roster.cell(h.slot).presence().keeps_conversations());
        match conv.state {
            ConversationState::Assigned | ConversationState::Offered if holder_online => {
                self.sticky(id, conv, now, out)
            }
            ConversationState::Bot if holder_online => match self.escalation_trigger(message) {
                Some(trigger) => {
                    out.push(self.event(
                        now,
                        id,
                        conv.holder.map(|h| h.agent),
                        EventKind::Escalated { trigger },
                    ));
                    conv.escalated = true;
                    self.place(id, conv, now, Placement::Escalate, out, drains)
                }
                None => self.sticky(id, conv, now, out),
            },
            ConversationState::WrapUp if holder_online => {
                // The customer wrote again during wrap-up: reopen with the same agent.
                let holder = conv.holder.map(|h| h.slot);
                conv.state = match holder.map(|slot| self.roster.cell(slot).kind()) {
                    Some(AgentKind::Bot) => ConversationState::Bot,
                    _ => ConversationState::Assigned,
                };
                conv.bump();
                self.sticky(id, conv, now, out)
            }
            ConversationState::Queued => {
                let holder = conv.holder.map(|h| h.agent);
                let backlog = self.backlog.lock();
                let (position, priority) = backlog
                    .get(id)
                    .map(|w| (backlog.position(id), w.priority))
                    .unwrap_or((0, self.priority(conv)));
                drop(backlog);
                let event = self.event(
                    now,
                    id,
                    holder,
                    EventKind::Queued {
                        reason: QueueReason::AlreadyQueued,
                        position,
                        priority,
                        why: None,
                    },
                );
                out.push(event);
                event
            }
            // The holder is away, offline or removed (the reassignment sweep
            // has not reached this conversation yet), or wrap-up ended.
            _ => {
                let reopened = conv.state == ConversationState::WrapUp;
                self.release_holder(id, conv);
                conv.boosted = !reopened;
                if reopened {
                    self.open(id, conv, message, now, out, drains)
                } else {
                    self.place(id, conv, now, Placement::Reassign, out, drains)
                }
            }
        }
    }

    // ----- Closing, offers, transfers ----------------------------------------

    fn close(&self, id: ConversationId, out: &mut Vec<Event>) -> Result<(), RouterError> {
        // As in `route`: the slot's cache miss overlaps with the clock read.
        self.conversations.prefetch(id);
        let now = self.clock.now();
        let mut drains = Drains::new();
        // One lookup: the conversation is closed and, unless wrap-up keeps
        // it, forgotten under the same guard.
        let mut conv = self.conversations.get(id).ok_or(RouterError::UnknownConversation(id))?;
        match conv.state {
            ConversationState::Closed | ConversationState::WrapUp => return Ok(()),
            ConversationState::Queued => {
                self.unqueue(id);
            }
            _ => {}
        }
        let agent = conv.holder.map(|h| h.agent);
        out.push(self.event(now, id, agent, EventKind::Closed));
        // Wrap-up keeps a human's capacity; the agent's kind is read last
        // (its cell is the next cache miss, and without wrap-up it is not
        // needed before the release).
        if self.config.wrap_up_ms > 0
            && conv.state == ConversationState::Assigned
            && conv.holder.is_some_and(|h| self.roster.cell(h.slot).kind() == AgentKind::Human)
        {
            conv.state = ConversationState::WrapUp;
            let generation = conv.bump();
            self.schedule(
                now.plus_ms(self.config.wrap_up_ms),
                TimerKind::WrapUpEnd,
                id,
                generation,
            );
            return Ok(());
        }
        if let Some(slot) = self.release_holder(id, &mut conv) {
            drains.push(slot);
            out.push(self.event(now, id, agent, EventKind::Released));
        }
        conv.remove();
        self.drain(drains, out);
        Ok(())
    }

    fn erase_customer(&self, customer: CustomerId, out: &mut Vec<Event>) -> Vec<ConversationId> {
        let now = self.clock.now();
        let mut ids: Vec<ConversationId> = Vec::new();
        self.conversations.for_each(|id, conv| {
            if conv.customer == customer {
                ids.push(id);
            }
        });
        ids.sort_unstable();
        let mut drains = Drains::new();
        let mut erased = Vec::with_capacity(ids.len());
        for id in ids {
            {
                let Some(mut conv) = self.conversations.get(id) else { continue };
                if conv.customer != customer {
                    continue;
                }
                if conv.state == ConversationState::Queued {
                    self.unqueue(id);
                }
                let agent = conv.holder.map(|h| h.agent);
                if let Some(slot) = self.release_holder(id, &mut conv) {
                    drains.push(slot);
                }
                conv.state = ConversationState::Closed;
                conv.bump();
                out.push(self.event(now, id, agent, EventKind::Erased));
            }
            self.conversations.remove_if(id, |c| c.state == ConversationState::Closed);
            erased.push(id);
        }
        if !erased.is_empty() {
            self.timers.lock().retain(|Reverse(timer)| {
                timer.kind == TimerKind::HoursChange
                    || erased.binary_search(&timer.conversation).is_err()
            });
        }
        self.customers.remove(customer);
        self.drain(drains, out);
        erased
    }

    fn answer_offer(
        &self,
        id: ConversationId,
        agent: AgentId,
        accept: bool,
        out: &mut Vec<Event>,
    ) -> Result<(), RouterError> {
        let now = self.clock.now();
        let mut drains = Drains::new();
        {
            let mut conv =
                self.conversations.get(id).ok_or(RouterError::UnknownConversation(id))?;
            let holder = conv.holder.filter(|h| h.agent == agent);
            let (Some(holder), ConversationState::Offered) = (holder, conv.state) else {
                return Err(RouterError::NoSuchOffer { conversation: id, agent });
            };
            let cell = self.roster.cell(holder.slot);
            if accept {
                conv.state = ConversationState::Assigned;
                conv.bump();
                cell.missed_offers.store(0, Ordering::Relaxed);
                out.push(self.event(now, id, Some(agent), EventKind::OfferAccepted));
            } else {
                out.push(self.event(now, id, Some(agent), EventKind::OfferDeclined));
                self.offer_not_taken(id, &mut conv, now, out, &mut drains);
            }
        }
        self.drain(drains, out);
        Ok(())
    }

    fn offer_not_taken(
        &self,
        id: ConversationId,
        conv: &mut Conversation,
        now: Timestamp,
        out: &mut Vec<Event>,
        drains: &mut Drains,
    ) {
        if let Some(slot) = self.release_holder(id, conv) {
            conv.excluded = Some(slot);
            drains.push(slot);
        }
        conv.boosted = true;
        self.place(id, conv, now, Placement::OfferNotTaken, out, drains);
    }

    fn transfer(
        &self,
        id: ConversationId,
        agent: AgentId,
        out: &mut Vec<Event>,
    ) -> Result<(), RouterError> {
        let now = self.clock.now();
        let slot = self.roster.slot_of(agent).ok_or(RouterError::UnknownAgent(agent))?;
        let mut drains = Drains::new();
        {
            let mut conv =
                self.conversations.get(id).ok_or(RouterError::UnknownConversation(id))?;
            let cannot = |why| RouterError::AgentCannotTake { conversation: id, agent, why };
            if matches!(conv.state, ConversationState::Closed | ConversationState::WrapUp) {
                return Err(RouterError::UnknownConversation(id));
            }
            if conv.holder.is_some_and(|h| h.slot == slot) {
                return Ok(());
            }
            let cell = self.roster.cell(slot);
            let indexes = self.roster.indexes();
            if !indexes.available(cell.kind()).contains(slot) {
                return Err(cannot("agent is not available"));
            }
            if !indexes.language(conv.language).is_some_and(|set| set.contains(slot)) {
                return Err(cannot("agent does not speak the conversation's language"));
            }
            if !self.roster.reserve(slot, conv.channel) {
                return Err(cannot("agent has no room on the channel"));
            }
            if conv.state == ConversationState::Queued {
                self.unqueue(id);
            }
            self.assign(id, &mut conv, slot, now, AssignReason::Transfer, 0, out, &mut drains);
        }
        self.drain(drains, out);
        Ok(())
    }

    // ----- Agents coming and going --------------------------------------------

    fn follow_up(&self, changes: &[Change], out: &mut Vec<Event>) {
        let mut drains = Drains::new();
        for change in changes {
            let kept = change.before.is_some_and(Presence::keeps_conversations);
            if kept && !change.after.keeps_conversations() {
                self.reassign_all(change.slot, out, &mut drains);
            }
            if change.after == Presence::Available {
                drains.push(change.slot);
            }
        }
        self.drain(drains, out);
    }

    fn reassign_all(&self, slot: u32, out: &mut Vec<Event>, drains: &mut Drains) {
        // The agent's new presence is published; see the fence in `assign`.
        fence(Ordering::SeqCst);
        let held: Vec<ConversationId> = self.roster.cell(slot).held();
        for id in held {
            let now = self.clock.now();
            let Some(mut conv) = self.conversations.get(id) else { continue };
            if conv.holder.is_none_or(|h| h.slot != slot) {
                continue;
            }
            match conv.state {
                ConversationState::WrapUp => {
                    self.release_holder(id, &mut conv);
                    conv.state = ConversationState::Closed;
                    conv.bump();
                    out.push(self.event(now, id, None, EventKind::Released));
                    drop(conv);
                    self.conversations.remove_if(id, |c| c.state == ConversationState::Closed);
                }
                ConversationState::Queued => {
                    // A bot was holding it while it waits for a human.
                    self.release_holder(id, &mut conv);
                }
                _ => {
                    self.release_holder(id, &mut conv);
                    conv.boosted = true;
                    self.place(id, &mut conv, now, Placement::Reassign, out, drains);
                }
            }
        }
    }

    /// Offers waiting conversations to the agents in `slots` while they have
    /// room. Must be called with no conversation guard held.
    fn drain(&self, mut slots: Drains, out: &mut Vec<Event>) {
        if slots.is_empty() {
            return;
        }
        fence(Ordering::SeqCst);
        while let Some(slot) = slots.pop() {
            loop {
                if self.waiting.load(Ordering::SeqCst) == 0 {
                    return;
                }
                let cell = self.roster.cell(slot);
                if cell.presence() != Presence::Available {
                    break;
                }
                let now = self.clock.now();
                let indexes = self.roster.indexes();
                let mut backlog = self.backlog.lock();
                let serves = |channel: Channel, language| {
                    cell.capacity.has_room(channel)
                        && indexes.language(language).is_some_and(|set| set.contains(slot))
                };
                let pick =
                    backlog.best_for(slot, serves, |need| self.eligible(&indexes, slot, need, now));
                let Some((_, id)) = pick else { break };
                let channel = backlog.get(id).map(|w| w.need.channel).unwrap_or(Channel::Chat);
                if !self.roster.reserve(slot, channel) {
                    continue;
                }
                let Some(waiting) = backlog.remove(id) else {
                    self.roster.release(slot, channel);
                    break;
                };
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                drop(backlog);
                drop(indexes);
                let mut more = Drains::new();
                match self.conversations.get(id) {
                    // The same life of the conversation that was queued, still waiting.
                    Some(mut conv)
                        if conv.state == ConversationState::Queued
                            && conv.generation == waiting.generation =>
                    {
                        let reason = if conv.escalated {
                            AssignReason::Escalation
                        } else if waiting.preferred.is_some() {
                            AssignReason::Affinity
                        } else if conv.overflow_step > 0 {
                            AssignReason::Overflow { step: conv.overflow_step - 1 }
                        } else {
                            AssignReason::SkillMatch { strategy: self.config.strategy }
                        };
                        let waited = now.since(waiting.enqueued_at);
                        self.assign(id, &mut conv, slot, now, reason, waited, out, &mut more);
                    }
                    _ => {
                        // Closed (or closed and opened again) while we were
                        // reserving: give the slot back.
                        self.roster.release(slot, channel);
                    }
                }
                slots.extend(more);
            }
        }
    }

    // ----- Timers ------------------------------------------------------------

    fn advance(&self, out: &mut Vec<Event>) {
        let now = self.clock.now();
        self.sweep_customers(now);
        // Firing may schedule timers that are already due (the next overflow
        // step of a conversation that waited through several): fire those too.
        loop {
            let due = {
                let mut timers = self.timers.lock();
                match timers.peek() {
                    Some(next) if next.0.at <= now => timers.pop().map(|t| t.0),
                    _ => None,
                }
            };
            match due {
                Some(timer) => self.fire(timer, now, out),
                None => break,
            }
        }
    }

    /// Forgets customers whose last agent is older than the affinity
    /// look-back, at most once a minute, so the history stays bounded by the
    /// customers active within the look-back.
    fn sweep_customers(&self, now: Timestamp) {
        const EVERY_MS: u64 = 60_000;
        let last = self.customers_swept_at.load(Ordering::Relaxed);
        if now.0 < last.saturating_add(EVERY_MS)
            || self
                .customers_swept_at
                .compare_exchange(last, now.0, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let lookback = self.config.affinity_lookback_ms;
        self.customers.retain(|_, history| {
            history.last_served_at().is_some_and(|at| now.since(at) <= lookback)
        });
    }

    fn fire(&self, timer: Timer, now: Timestamp, out: &mut Vec<Event>) {
        let id = timer.conversation;
        let mut drains = Drains::new();
        if timer.kind == TimerKind::HoursChange {
            drains.extend(self.roster.available_slots());
            // One chain of opening-hour timers: the next change of any group.
            if let Some(at) = self.hours.iter().filter_map(|(_, gate)| gate.next_change(now)).min()
            {
                self.schedule(at, TimerKind::HoursChange, ConversationId(0), 0);
            }
            self.drain(drains, out);
            return;
        }
        let mut forget = false;
        {
            let Some(mut conv) = self.conversations.get(id) else { return };
            if conv.generation != timer.generation {
                return;
            }
            match (timer.kind, conv.state) {
                (TimerKind::OfferExpiry, ConversationState::Offered) => {
                    let holder = conv.holder;
                    out.push(self.event(now, id, holder.map(|h| h.agent), EventKind::OfferExpired));
                    if let (Some(holder), Some(offers)) = (holder, self.config.offers) {
                        let missed = self
                            .roster
                            .cell(holder.slot)
                            .missed_offers
                            .fetch_add(1, Ordering::Relaxed)
                            + 1;
                        if missed >= offers.max_missed
                            && self
                                .roster
                                .set_presence(holder.slot, Presence::NotResponding)
                                .is_some()
                        {
                            out.push(Event {
                                at: now,
                                conversation: None,
                                agent: Some(holder.agent),
                                kind: EventKind::AgentNotResponding,
                            });
                        }
                    }
                    self.offer_not_taken(id, &mut conv, now, out, &mut drains);
                }
                (TimerKind::WrapUpEnd, ConversationState::WrapUp) => {
                    let agent = conv.holder.map(|h| h.agent);
                    if let Some(slot) = self.release_holder(id, &mut conv) {
                        drains.push(slot);
                    }
                    conv.state = ConversationState::Closed;
                    conv.bump();
                    out.push(self.event(now, id, agent, EventKind::Released));
                    forget = true;
                }
                (TimerKind::Overflow, ConversationState::Queued) if self.unqueue(id).is_some() => {
                    let step = conv.overflow_step;
                    conv.overflow_step += 1;
                    out.push(self.event(now, id, None, EventKind::OverflowStep { step }));
                    self.place(id, &mut conv, now, Placement::Widened, out, &mut drains);
                }
                (TimerKind::AffinityEnd, ConversationState::Queued)
                    if self.unqueue(id).is_some() =>
                {
                    self.place(id, &mut conv, now, Placement::AffinityOver, out, &mut drains);
                }
                _ => {}
            }
        }
        if forget {
            self.conversations.remove_if(id, |c| c.state == ConversationState::Closed);
        }
        self.drain(drains, out);
    }

    // ----- Audit -------------------------------------------------------------

    fn audit(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut held: FxHashMap<(u32, Channel), u32> = FxHashMap::default();
        let mut holders: FxHashMap<ConversationId, u32> = FxHashMap::default();
        // The conversations first, then the backlog: the lock order puts a
        // conversation's shard before the backlog, so neither is read while
        // holding the other (a concurrent caller would deadlock).
        let mut states: Vec<(ConversationId, ConversationState)> = Vec::new();
        self.conversations.for_each(|id, conv| {
            states.push((id, conv.state));
            if let Some(holder) = conv.holder {
                *held.entry((holder.slot, conv.channel)).or_default() += 1;
                holders.insert(id, holder.slot);
                if conv.state == ConversationState::Closed {
                    problems.push(format!("conversation {} is closed but held", id.0));
                }
            } else if matches!(
                conv.state,
                ConversationState::Assigned | ConversationState::Bot | ConversationState::Offered
            ) {
                problems
                    .push(format!("conversation {} is {:?} without an agent", id.0, conv.state));
            }
        });
        states.sort_unstable_by_key(|&(id, _)| id);
        let backlog = self.backlog.lock();
        for &(id, state) in &states {
            let queued = backlog.get(id).is_some();
            if queued != (state == ConversationState::Queued) {
                problems.push(format!(
                    "conversation {} is {:?} but {} the backlog",
                    id.0,
                    state,
                    if queued { "in" } else { "not in" }
                ));
            }
        }
        for (id, _) in backlog.conversations() {
            if states.binary_search_by_key(id, |&(id, _)| id).is_err() {
                problems.push(format!("backlog holds unknown conversation {}", id.0));
            }
        }
        if self.waiting.load(Ordering::SeqCst) != backlog.len() {
            problems.push(format!(
                "waiting counter {} but backlog holds {}",
                self.waiting.load(Ordering::SeqCst),
                backlog.len()
            ));
        }
        drop(backlog);
        let writer = self.roster.writer.lock();
        for slot in 0..writer.profiles.len() as u32 {
            let cell = self.roster.cell(slot);
            for channel in Channel::ALL {
                let load = cell.capacity.load(channel);
                let expected = held.get(&(slot, channel)).copied().unwrap_or(0);
                if load != expected {
                    problems.push(format!(
                        "agent {} holds {expected} {channel} conversations but its load is {load}",
                        cell.id().0
                    ));
                }
            }
            for conversation in cell.held().iter() {
                if holders.get(conversation) != Some(&slot) {
                    problems.push(format!(
                        "agent {} lists conversation {} it does not hold",
                        cell.id().0,
                        conversation.0
                    ));
                }
            }
        }
        problems
    }
}

mod persist;
#[cfg(test)]
mod tests;
