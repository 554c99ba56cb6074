//! A tenant's state machine: the one place where state changes are applied,
//! live and when the journal is replayed.
//!
//! # Invariants
//!
//! - Only the tenant's sequencer thread calls [`TenantState::apply`]; every
//!   command that changes state is applied here, in journal order, with the
//!   tenant clock set to the record's time. Replaying a journal from a
//!   snapshot therefore rebuilds the same state and the same decisions with
//!   the same event sequence numbers.
//! - A command that fails changes nothing and is not journaled.
//! - No I/O here: the sequencer writes the journal and snapshots.
//! - The platform's ids are interned here, in journal order, into the
//!   tenant's [`TenantIds`], which lets go of a conversation's id once the
//!   router forgets the conversation; readers name events through it.
//!
//! # Code map
//!
//! This file holds the state, its outcomes and the command dispatch;
//! `messages` routes batches (and finds string ids on the receiving
//! thread), `measuring` feeds reply times and conversions to the meter,
//! `snapshot` saves and restores, `codes` maps journal and wire codes to
//! router values.

use std::collections::BTreeMap;
use std::sync::Arc;

use loket_catalog::Catalog;
use loket_ids::{Id, Name, SavedTenantIds, TenantIds};
use loket_intent::{ConversationScore, IntentId, Score, Signals};
use loket_metering::{Metering, MeteringError, RecentlyClosed};
use loket_pipeline::{Inbound, Pipeline};
use loket_report::{Currency, FactError, MeterConfig, Money};
use loket_router::{
    AgentId, AgentKind, AgentSpec, Capacity, Channel, ConversationId, CustomerId,
    EscalationTrigger, Event, EventKind, Language, ManualClock, Presence, Router, RouterError,
    RouterSnapshot, SkillLevel, Timestamp,
};
use parking_lot::RwLock;
use rkyv::{Archive, Deserialize, Serialize};

use crate::command::{AgentRecord, Command, Record, ScoredMessage, SkillRecord};

mod codes;
mod measuring;
mod messages;
mod snapshot;

pub use codes::*;
use measuring::*;
pub use messages::*;
pub use snapshot::*;

/// One decision or state change with its place in the tenant's stream.
/// Its conversation and agent are router integers; [`TenantState::ids`]
/// names them (a conversation's id stays readable for `event_retention`
/// releases after the router forgets it, so every kept event can be named).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeqEvent {
    /// Position in the tenant's event stream, from 1, without gaps.
    pub seq: u64,
    /// The event.
    pub event: StreamEvent,
}

/// What the tenant's event stream carries: the router's decisions and
/// state changes, and the SLA events of its measuring.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StreamEvent {
    /// A decision or state change of the router.
    Routed(Event),
    /// `sla_warning` or `sla_breached`; its conversation is the router's
    /// integer.
    Sla(loket_report::SlaEvent),
}

impl StreamEvent {
    /// The conversation concerned, as the router's integer.
    pub fn conversation(&self) -> Option<ConversationId> {
        match self {
            StreamEvent::Routed(event) => event.conversation,
            StreamEvent::Sla(event) => Some(ConversationId(event.conversation)),
        }
    }

    /// When it happened, ms (tenant clock).
    pub fn at_ms(&self) -> u64 {
        match self {
            StreamEvent::Routed(event) => event.at.0,
            StreamEvent::Sla(event) => event.at,
        }
    }

    /// The router's event, if it is one.
    pub fn routed(&self) -> Option<&Event> {
        match self {
            StreamEvent::Routed(event) => Some(event),
            StreamEvent::Sla(_) => None,
        }
    }
}

/// The routing decision for one message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// The decision event's sequence number.
    pub seq: u64,
    /// The decision.
    pub event: Event,
    /// The conversation's buying intent after the message.
    pub conversation_score: f32,
    /// The message escalated the conversation to a person, for this.
    pub escalation: Option<EscalationTrigger>,
}

/// What applying a command produced, besides events.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Applied {
    /// One per message, for [`Command::Messages`].
    pub decisions: Vec<Decision>,
    /// Erased conversations (router integers), for [`Command::EraseCustomer`].
    pub erased: Vec<u64>,
    /// The same, as the platform names them.
    pub erased_names: Vec<Name>,
    /// Earlier conversations of the erased customer, closed before: their
    /// events still kept go too (router integers).
    pub erased_earlier: Vec<u64>,
    /// The erased customer's router integer, if the tenant knew them.
    erased_customer: Option<u64>,
}

/// A command that cannot apply. Nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The router refused (bad capacity, no such offer, ...).
    #[error(transparent)]
    Router(#[from] RouterError),
    /// No agent has this id.
    #[error("no agent {0:?}")]
    UnknownAgent(String),
    /// No open conversation has this id.
    #[error("no conversation {0:?}")]
    UnknownConversation(String),
    /// The conversation has no pending offer for this agent.
    #[error("conversation {conversation:?} has no pending offer for agent {agent:?}")]
    NoSuchOffer {
        /// The conversation, as the platform names it.
        conversation: String,
        /// The agent, as the platform names it.
        agent: String,
    },
    /// A transfer to an agent who cannot take the conversation.
    #[error("agent {agent:?} cannot take conversation {conversation:?}: {why}")]
    AgentCannotTake {
        /// The conversation, as the platform names it.
        conversation: String,
        /// The agent, as the platform names it.
        agent: String,
        /// Why not.
        why: &'static str,
    },
    /// A message asks for a skill no agent has ever had, and the tenant
    /// does not take new skills from messages (`allow_new_skills`).
    /// Decided where messages come in, never when the journal is applied.
    #[error(
        "{field}: no agent has skill {skill:?} (set allow_new_skills to route to skills no agent has yet)"
    )]
    UnknownSkill {
        /// Where, e.g. `skills.plants` or `messages[3].skills.plants`.
        field: String,
        /// The skill.
        skill: String,
    },
    /// The catalog refused (unknown product, ...).
    #[error(transparent)]
    Catalog(#[from] loket_catalog::CatalogError),
    /// A stock change for a tenant without a catalog.
    #[error("this tenant has no catalog")]
    NoCatalog,
    /// A value out of range.
    #[error("{0}")]
    Invalid(String),
}

/// How often (tenant clock) customer ids kept only for their routing
/// history are checked again.
const IDS_SWEEP_EVERY_MS: u64 = 60_000;

/// A tenant's routing, scoring and stock state; see the module docs.
#[derive(Debug)]
pub struct TenantState {
    pipeline: Arc<Pipeline>,
    clock: Arc<ManualClock>,
    /// Written only here; handlers read it to look ids up.
    ids: Arc<RwLock<TenantIds>>,
    /// When customer ids kept for their history were last looked at (0:
    /// not since the tenant started, from the first command that applies).
    ids_swept_ms: u64,
    /// How often (tenant clock) that is.
    ids_sweep_every_ms: u64,
    /// Released conversation ids kept readable: the event log's length.
    recent_ids: usize,
    /// Messages may ask for skills no agent has had yet.
    allow_new_skills: bool,
    stock: BTreeMap<String, i64>,
    next_seq: u64,
    clock_ms: u64,
    scratch: Vec<Event>,
    /// Reply times, SLAs and conversions, when the tenant measures.
    /// Written only here; report handlers read it.
    metering: Option<Arc<RwLock<Metering>>>,
    /// How many of `scratch`'s events measuring has seen.
    metered: usize,
    /// Conversations closed within the order window, for orders.
    closed: RecentlyClosed,
    /// Reply clocks stopped and SLA breaches (first reply, next reply)
    /// since the last [`TenantState::take_measured`], for live metrics.
    observations: Vec<loket_report::Observation>,
    breaches: [u64; 2],
    /// SLA events of the command being applied, numbered after its
    /// router events.
    sla_events: Vec<loket_report::SlaEvent>,
    /// For the next command only: see [`TenantState::hint_conversations`].
    conversation_hints: Vec<u64>,
}

impl TenantState {
    /// A state over a fresh pipeline whose router reads `clock`; ids of
    /// conversations the router forgot stay readable for the last
    /// `event_retention` of them (the events kept for subscribers).
    pub fn new(
        pipeline: Arc<Pipeline>,
        clock: Arc<ManualClock>,
        event_retention: usize,
    ) -> TenantState {
        let clock_ms = clock_now(&clock);
        let mut ids = TenantIds::default();
        ids.keep_recent(event_retention);
        TenantState {
            pipeline,
            clock,
            ids: Arc::new(RwLock::new(ids)),
            ids_swept_ms: 0,
            ids_sweep_every_ms: IDS_SWEEP_EVERY_MS,
            recent_ids: event_retention,
            allow_new_skills: false,
            stock: BTreeMap::new(),
            next_seq: 1,
            clock_ms,
            scratch: Vec::new(),
            metering: None,
            metered: 0,
            closed: RecentlyClosed::default(),
            observations: Vec::new(),
            breaches: [0; 2],
            sla_events: Vec::new(),
            conversation_hints: Vec::new(),
        }
    }

    /// Lets messages ask for skills no agent has had yet (they wait, with
    /// `why: no_skill`, until one does); refused by default.
    pub fn allow_new_skills(mut self, allow: bool) -> TenantState {
        self.allow_new_skills = allow;
        self
    }

    /// Looks at customer ids kept for their routing history every `ms` of
    /// tenant time (at most every minute; sooner under a short retention).
    pub fn sweep_ids_every(mut self, ms: u64) -> TenantState {
        self.ids_sweep_every_ms = ms.clamp(1, IDS_SWEEP_EVERY_MS);
        self
    }

    /// The tenant's ids, for looking them up (take the read lock briefly).
    pub fn ids(&self) -> &Arc<RwLock<TenantIds>> {
        &self.ids
    }

    /// The pipeline (scoring, routing, catalog).
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    /// The router.
    pub fn router(&self) -> &Router {
        self.pipeline.router()
    }

    /// The next event sequence number.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The tenant clock, ms.
    pub fn clock_ms(&self) -> u64 {
        self.clock_ms
    }

    /// The time the next command applies at: `wall_ms`, or the tenant clock
    /// if the wall clock went back (the tenant clock never does).
    pub fn time_for(&self, wall_ms: u64) -> u64 {
        wall_ms.max(self.clock_ms)
    }

    /// Is a router timer due at `at_ms`?
    pub fn timer_due(&self, at_ms: u64) -> bool {
        self.router().next_timer().is_some_and(|due| due.0 <= at_ms)
            || self
                .metering
                .as_ref()
                .and_then(|m| m.read().next_timer())
                .is_some_and(|due| due <= at_ms)
    }

    /// Applies one record, appending its events (numbered) to `events`.
    pub fn apply(
        &mut self,
        record: &Record,
        events: &mut Vec<SeqEvent>,
    ) -> Result<Applied, ApplyError> {
        self.clock_ms = self.time_for(record.at_ms);
        self.clock.set(Timestamp(self.clock_ms));
        let mut applied = Applied::default();
        self.scratch.clear();
        self.metered = 0;
        let result = self.apply_command(&record.command, &mut applied);
        self.conversation_hints.clear();
        // A command that failed changed nothing and is not journaled: it
        // must not move measuring either (replay would not see it).
        if result.is_ok() {
            self.measure_events();
        }
        // A failed command changed nothing, so it reported nothing; number
        // whatever the router reported either way.
        self.number(events);
        if let Some(customer) = applied.erased_customer {
            applied.erased_earlier = self.ids.write().erase_customer(customer, &applied.erased);
        }
        // Customer ids kept for their history are looked at again every
        // minute of tenant time, counted from the first command that
        // applies (a failed one is not journaled: replay must see the same).
        if result.is_ok() {
            if self.ids_swept_ms == 0 {
                self.ids_swept_ms = self.clock_ms;
            } else if self.clock_ms >= self.ids_swept_ms.saturating_add(self.ids_sweep_every_ms) {
                self.ids_swept_ms = self.clock_ms;
                let router = self.pipeline.router();
                self.ids.write().sweep(self.clock_ms, |c| remembered_until(router, c));
            }
        }
        result.map(|()| applied)
    }

    /// An agent's router integer, or an error naming the caller's id.
    fn agent(&self, id: &Id) -> Result<AgentId, ApplyError> {
        self.ids.read().agents.find(id).map(AgentId).ok_or_else(|| unknown_agent(id))
    }

    /// A conversation's router integer, or an error naming the caller's id.
    fn conversation(&self, id: &Id) -> Result<ConversationId, ApplyError> {
        self.ids
            .read()
            .conversations
            .find(id)
            .map(ConversationId)
            .ok_or_else(|| ApplyError::UnknownConversation(id.to_string()))
    }

    fn apply_command(
        &mut self,
        command: &Command,
        applied: &mut Applied,
    ) -> Result<(), ApplyError> {
        let router = self.pipeline.router().clone();
        // The caller's ids in an error, never the router's integers.
        let named = |error: RouterError, agent: &Id, conversation: Option<&Id>| {
            let conversation_name = || conversation.map(Id::to_string).unwrap_or_default();
            match error {
                RouterError::UnknownAgent(_) => unknown_agent(agent),
                RouterError::UnknownConversation(_) => {
                    ApplyError::UnknownConversation(conversation_name())
                }
                RouterError::NoSuchOffer { .. } => ApplyError::NoSuchOffer {
                    conversation: conversation_name(),
                    agent: agent.to_string(),
                },
                RouterError::AgentCannotTake { why, .. } => ApplyError::AgentCannotTake {
                    conversation: conversation_name(),
                    agent: agent.to_string(),
                    why,
                },
                other => ApplyError::Router(other),
            }
        };
        match command {
            Command::Messages(messages) => self.route_messages(messages, applied)?,
            Command::UpsertAgent(agent) => {
                agent.id.check().map_err(|e| invalid_id("", "id", &e))?;
                let mut spec = agent_spec(&router, agent)?;
                let (key, new) = self.ids.write().agents.intern_new(&agent.id);
                spec.id = AgentId(key);
                if let Err(error) = router.upsert_agent(spec, &mut self.scratch) {
                    if new {
                        self.ids.write().agents.release(key);
                    }
                    return Err(error.into());
                }
                self.measure_agent(&router, AgentId(key));
            }
            Command::SetPresence { agent, presence } => {
                let presence = presence_from(*presence)?;
                let id = self.agent(agent)?;
                router
                    .set_presence(id, presence, &mut self.scratch)
                    .map_err(|e| named(e, agent, None))?;
                self.measure_agent(&router, id);
            }
            Command::SetCapacity { agent, capacity } => {
                let id = self.agent(agent)?;
                router
                    .set_capacity(id, capacity_from(capacity), &mut self.scratch)
                    .map_err(|e| named(e, agent, None))?;
                self.measure_agent(&router, id);
            }
            Command::SetSkills { agent, skills } => {
                let id = self.agent(agent)?;
                let skills = skills_from(&router, skills)?;
                router
                    .set_skills(id, skills, &mut self.scratch)
                    .map_err(|e| named(e, agent, None))?;
            }
            Command::UpdateAgent { agent, skills, capacity, presence } => {
                let id = self.agent(agent)?;
                let presence = presence.map(presence_from).transpose()?;
                for skill in skills.iter().flatten() {
                    check_skill(skill)?;
                }
                if let Some(skills) = skills {
                    let skills = skills_from(&router, skills)?;
                    router
                        .set_skills(id, skills, &mut self.scratch)
                        .map_err(|e| named(e, agent, None))?;
                }
                if let Some(capacity) = capacity {
                    router
                        .set_capacity(id, capacity_from(capacity), &mut self.scratch)
                        .map_err(|e| named(e, agent, None))?;
                }
                if let Some(presence) = presence {
                    router
                        .set_presence(id, presence, &mut self.scratch)
                        .map_err(|e| named(e, agent, None))?;
                }
                self.measure_agent(&router, id);
            }
            Command::RemoveAgent { agent } => {
                let id = self.agent(agent)?;
                router.remove_agent(id, &mut self.scratch).map_err(|e| named(e, agent, None))?;
                self.measure_agent(&router, id);
            }
            Command::Close { conversation } => {
                let id = self.conversation(conversation)?;
                self.pipeline
                    .close(id, &mut self.scratch)
                    .map_err(|e| named(e, &Id::Number(0), Some(conversation)))?;
            }
            Command::Transfer { conversation, agent } => {
                let id = self.conversation(conversation)?;
                router
                    .transfer(id, self.agent(agent)?, &mut self.scratch)
                    .map_err(|e| named(e, agent, Some(conversation)))?;
            }
            Command::AnswerOffer { conversation, agent, accept } => {
                let id = self.conversation(conversation)?;
                let agent_id = self.agent(agent)?;
                let result = if *accept {
                    router.accept_offer(id, agent_id, &mut self.scratch)
                } else {
                    router.decline_offer(id, agent_id, &mut self.scratch)
                };
                result.map_err(|e| named(e, agent, Some(conversation)))?;
            }
            Command::Tick => router.advance(&mut self.scratch),
            Command::SetStock { sku, stock } => {
                let catalog = self.catalog()?;
                catalog.set_stock(sku, *stock)?;
                self.stock.insert(sku.clone(), *stock);
            }
            Command::Reply { conversation, agent, at_ms } => {
                let id = self.measured_conversation(conversation)?;
                let agent_id = self.agent(agent)?;
                let metering = self.metering.as_ref().ok_or_else(not_measuring)?;
                let mut metering = metering.write();
                let at = at_ms.unwrap_or(self.clock_ms).max(metering.meter().now());
                metering.reply(at, id, agent_id).map_err(|e| measuring_error(conversation, e))?;
            }
            Command::Order { conversation, value_minor, currency, at_ms } => {
                let id = self.measured_conversation(conversation)?;
                let currency = Currency::parse(currency).ok_or_else(|| {
                    ApplyError::Invalid(format!("currency {currency:?} is not a three-letter code"))
                })?;
                if *value_minor < 0 {
                    return Err(ApplyError::Invalid("an order's value is 0 or more".to_owned()));
                }
                let metering = self.metering.as_ref().ok_or_else(not_measuring)?;
                let mut metering = metering.write();
                let at = at_ms.unwrap_or(self.clock_ms).max(metering.meter().now());
                let value = Money { minor: *value_minor, currency };
                metering.order(at, id, value).map_err(|e| measuring_error(conversation, e))?;
            }
            Command::EraseCustomer { customer } => {
                let key = self.ids.read().customers.find(customer);
                if let Some(key) = key {
                    applied.erased_customer = Some(key);
                    let erased = router.erase_customer(CustomerId(key), &mut self.scratch);
                    let ids = self.ids.read();
                    for conversation in &erased {
                        self.pipeline.forget(*conversation);
                        applied.erased.push(conversation.0);
                        applied
                            .erased_names
                            .extend(ids.conversation_name(conversation.0).map(|n| n.to_name()));
                    }
                }
            }
        }
        Ok(())
    }

    fn catalog(&self) -> Result<&Catalog, ApplyError> {
        self.pipeline.catalog().ok_or(ApplyError::NoCatalog)
    }

    /// Moves the router's events from scratch into `events`, numbered; then
    /// lets go of the ids and scores of conversations the router forgot.
    fn number(&mut self, events: &mut Vec<SeqEvent>) {
        let router = self.pipeline.router();
        let mut ids = None;
        for event in self.scratch.drain(..) {
            events.push(SeqEvent { seq: self.next_seq, event: StreamEvent::Routed(event) });
            self.next_seq += 1;
            if let Some(conversation) = event.conversation
                && matches!(event.kind, EventKind::Closed | EventKind::Released | EventKind::Erased)
                && router.conversation(conversation).is_none()
            {
                self.pipeline.forget(conversation);
                let ids = ids.get_or_insert_with(|| self.ids.write());
                ids.forgotten(conversation.0, |c| remembered_until(router, c));
            }
        }
        for event in self.sla_events.drain(..) {
            events.push(SeqEvent { seq: self.next_seq, event: StreamEvent::Sla(event) });
            self.next_seq += 1;
        }
    }
}

fn clock_now(clock: &ManualClock) -> u64 {
    use loket_router::Clock;
    clock.now().0
}

#[cfg(test)]
mod measuring_tests;
#[cfg(test)]
mod tests;
