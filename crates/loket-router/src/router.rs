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
//! the caller holds no guard: an operation collects the slots whose capacity
//! it freed in its [`Operation`] and drains them in [`Inner::finish`], after
//! dropping its guard.
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

/// Slots whose freed capacity should be offered to the backlog: inline up to
/// four, so an ordinary operation allocates nothing for them.
type Drains = SmallVec<[u32; 4]>;

/// One operation in progress (a message, a close, an erasure, an offer
/// answered, a transfer, agents changing, a timer firing): its time, where
/// its events go, and the agents it released, whose capacity the backlog is
/// offered when it ends.
///
/// An operation makes one at its start and passes it to everything that
/// places, assigns or queues a conversation for it. Every operation ends
/// with [`Inner::finish`], which drains the agents released while it ran;
/// draining takes conversation guards, so `finish` is called only after the
/// operation dropped its own (see the module docs). Dropping an operation
/// that still has agents to drain would lose their wake-ups: debug builds
/// check that it never happens.
#[derive(Debug)]
struct Operation<'out> {
    /// The time its decisions and events carry: the clock's when it
    /// started. A sweep over a leaving agent's conversations, and the
    /// draining in `finish`, read the clock again for each conversation
    /// they reach.
    now: Timestamp,
    /// Where its events go, in the order they happen.
    out: &'out mut Vec<Event>,
    /// Agents whose capacity it freed (or who became available).
    drains: Drains,
}

impl<'out> Operation<'out> {
    fn new(now: Timestamp, out: &'out mut Vec<Event>) -> Self {
        Operation { now, out, drains: Drains::new() }
    }

    /// Appends an event about conversation `id`, at the operation's time,
    /// and returns it.
    fn emit(&mut self, id: ConversationId, agent: Option<AgentId>, kind: EventKind) -> Event {
        let event = Event { at: self.now, conversation: Some(id), agent, kind };
        self.out.push(event);
        event
    }

    /// Offers the backlog to `slot` when the operation finishes.
    fn drain_later(&mut self, slot: u32) {
        self.drains.push(slot);
    }
}

impl Drop for Operation<'_> {
    fn drop(&mut self) {
        debug_assert!(
            self.drains.is_empty() || std::thread::panicking(),
            "an operation ended without `Inner::finish`: agents it released were never offered \
             the backlog"
        );
    }
}

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
}

mod audit;
mod messages;
mod operations;
mod persist;
mod place;
mod select;
#[cfg(test)]
mod tests;
mod timers;
