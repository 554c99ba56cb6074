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

/// Saved state of a tenant at a journal position.
#[derive(Debug, Clone, PartialEq, Archive, Serialize, Deserialize)]
pub struct TenantSnapshot {
    /// Format version.
    pub version: u32,
    /// Every journal record before this one is reflected.
    pub lsn: u64,
    /// The next event sequence number.
    pub next_seq: u64,
    /// The tenant clock.
    pub clock_ms: u64,
    /// The router.
    pub router: RouterSnapshot,
    /// Conversations' buying intent: id, value at last update, last update.
    pub scores: Vec<SavedScore>,
    /// Stock levels set through the API since the catalog was loaded.
    pub stock: Vec<SavedStock>,
    /// The platform's ids and their router integers.
    pub ids: SavedTenantIds,
    /// When customer ids kept for their history were last checked.
    pub ids_swept_ms: u64,
    /// The tenant's measuring (`loket_metering::Metering` as JSON); empty
    /// when the tenant does not measure.
    pub metering: Vec<u8>,
}

/// One conversation's buying-intent state.
#[derive(Debug, Clone, Copy, PartialEq, Archive, Serialize, Deserialize)]
pub struct SavedScore {
    /// Conversation.
    pub conversation: u64,
    /// Value at the last update.
    pub value: f32,
    /// Last update, ms.
    pub last_ms: u64,
}

/// One stock level set through the API.
#[derive(Debug, Clone, PartialEq, Archive, Serialize, Deserialize)]
pub struct SavedStock {
    /// Product.
    pub sku: String,
    /// Units.
    pub stock: i64,
}

/// The snapshot format this build writes and reads.
pub const SNAPSHOT_VERSION: u32 = 3;

/// The customer passed to the router with a later message of an open
/// conversation: the router reads a conversation's customer from its first
/// message only (see `loket_router::Message::customer`).
const CUSTOMER_OF_AN_OPEN_CONVERSATION: u64 = u64::MAX;

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

    /// Measures reply times, SLAs and conversions under `config`
    /// (`loket-report`): customer messages and the router's decisions as
    /// they apply, and the [`Command::Reply`] and [`Command::Order`]
    /// records. Without it those two records are refused.
    pub fn measure(
        mut self,
        config: MeterConfig,
    ) -> Result<TenantState, loket_report::ConfigError> {
        let mut metering = Metering::new(config)?;
        metering.set_observing(true);
        self.metering = Some(Arc::new(RwLock::new(metering)));
        Ok(self)
    }

    /// Takes the reply clocks stopped and the SLA breaches (first reply,
    /// next reply) since the last call, for live metrics; `f` gets each
    /// stopped clock.
    pub fn take_measured(&mut self, mut f: impl FnMut(loket_report::Observation)) -> [u64; 2] {
        for observation in self.observations.drain(..) {
            f(observation);
        }
        std::mem::take(&mut self.breaches)
    }

    /// The tenant's measuring, for reports (take the read lock briefly).
    pub fn metering(&self) -> Option<&Arc<RwLock<Metering>>> {
        self.metering.as_ref()
    }

    /// Lets messages ask for skills no agent has had yet (they wait, with
    /// `why: no_skill`, until one does); refused by default.
    pub fn allow_new_skills(mut self, allow: bool) -> TenantState {
        self.allow_new_skills = allow;
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

    /// Integers found for the next command's string conversation ids, by
    /// message, 0 where none was found: [`find_conversations`] run by the
    /// thread that received the messages, so this one skips their hash
    /// lookups. Only the next [`TenantState::apply`] uses them, each
    /// checked ([`loket_ids::Interner::holds`]) first: a stale one costs
    /// the lookup it would have saved, never a wrong integer, and replay,
    /// which has none, finds the same integers the long way.
    pub fn hint_conversations(&mut self, hints: Vec<u64>) {
        self.conversation_hints = hints;
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
            } else if self.clock_ms >= self.ids_swept_ms.saturating_add(IDS_SWEEP_EVERY_MS) {
                self.ids_swept_ms = self.clock_ms;
                let router = self.pipeline.router();
                self.ids.write().sweep(self.clock_ms, |c| remembered_until(router, c));
            }
        }
        result.map(|()| applied)
    }

    /// Routes a batch, all or nothing: every message is checked and its
    /// skills resolved before any is routed, so a refused batch changed
    /// nothing. Whether a message may name a skill no agent has is decided
    /// where it comes in ([`TenantState::admits_skill`]), not here: a
    /// journaled message always applies again.
    fn route_messages(
        &mut self,
        messages: &[ScoredMessage],
        applied: &mut Applied,
    ) -> Result<(), ApplyError> {
        let router = self.pipeline.router().clone();
        let mut required: Vec<SkillLevel> = Vec::new();
        let mut spans: Vec<(usize, usize)> = Vec::with_capacity(messages.len());
        for message in messages {
            inbound(message, ConversationId(0), CustomerId(0), &[])?;
            // Ids were checked where they came in (HTTP, the binary
            // protocol), as they are journaled: not again on this thread.
            debug_assert!(message.conversation.check().is_ok() && message.customer.check().is_ok());
            let start = required.len();
            for skill in &message.skills {
                check_skill(skill)?;
                required.push(SkillLevel { skill: router.skill(&skill.name)?, level: skill.level });
            }
            spans.push((start, required.len()));
        }
        // The router integers: decimal ids are themselves; string ids take
        // the lock, once.
        let mut keys: Vec<(u64, u64, bool)> = Vec::with_capacity(messages.len());
        let mut tracked = false;
        {
            let mut ids = None;
            for (index, message) in messages.iter().enumerate() {
                let conversation = match message.conversation.as_number() {
                    Some(n) if n < loket_ids::TEXT_BASE => (n, false),
                    _ => {
                        let ids = ids.get_or_insert_with(|| self.ids.write());
                        match self.conversation_hints.get(index) {
                            Some(&hint) if ids.conversations.holds(hint) => {
                                debug_assert_eq!(
                                    ids.conversations.find(&message.conversation),
                                    Some(hint)
                                );
                                (hint, false)
                            }
                            _ => ids.conversations.intern_new(&message.conversation),
                        }
                    }
                };
                // A string-id conversation seen before is open in the
                // router (its id goes when the router forgets it), and the
                // router reads the customer from a conversation's first
                // message only: skip the lookup.
                let known = !conversation.1 && conversation.0 >= loket_ids::TEXT_BASE;
                let customer = if known {
                    CUSTOMER_OF_AN_OPEN_CONVERSATION
                } else {
                    match message.customer.as_number() {
                        Some(n) if n < loket_ids::TEXT_BASE => n,
                        _ => ids
                            .get_or_insert_with(|| self.ids.write())
                            .customers
                            .intern(&message.customer),
                    }
                };
                let track = !known
                    && (conversation.0 >= loket_ids::TEXT_BASE || customer >= loket_ids::TEXT_BASE);
                tracked |= track;
                keys.push((conversation.0, customer, track));
            }
        }
        applied.decisions.reserve(messages.len());
        for ((message, &(start, end)), &(conversation, customer, _)) in
            messages.iter().zip(&spans).zip(&keys)
        {
            let conversation = ConversationId(conversation);
            let inbound =
                inbound(message, conversation, CustomerId(customer), &required[start..end])?;
            let score = score(message);
            let prepared = self.pipeline.prepare(&inbound, &score);
            if let Some(metering) = &self.metering {
                // The message opens (or continues) the conversation before
                // its decision is measured.
                let mut metering = metering.write();
                metering.decisions(&self.scratch[self.metered..]);
                self.metered = self.scratch.len();
                let intent = self.pipeline.model().label(score.intent);
                let _ = metering.message(self.clock_ms, &prepared.message, intent, |skill| {
                    router.skill_name(skill)
                });
            }
            let before = self.scratch.len();
            let routed = self.pipeline.route_prepared(prepared, &mut self.scratch);
            let offset = self.scratch[before..]
                .iter()
                .position(|event| *event == routed.decision)
                .map_or(self.scratch.len(), |i| before + i);
            if offset == self.scratch.len() {
                // A decision the router did not also report: report it.
                self.scratch.push(routed.decision);
            }
            let escalation = self.scratch[before..].iter().find_map(|event| match event.kind {
                EventKind::Escalated { trigger } if event.conversation == Some(conversation) => {
                    Some(trigger)
                }
                _ => None,
            });
            applied.decisions.push(Decision {
                seq: self.next_seq + offset as u64,
                event: routed.decision,
                conversation_score: routed.conversation_score,
                escalation,
            });
        }
        // An opening message ties its customer to its conversation.
        if tracked {
            let mut ids = self.ids.write();
            for &(conversation, customer, track) in &keys {
                if track {
                    ids.routed(conversation, customer, |c| remembered_until(&router, c));
                }
            }
        }
        Ok(())
    }

    /// May a message that comes in now ask for `skill`? Yes if some agent
    /// has ever had it (or the configuration names it), or the tenant
    /// allows new skills. Asked where messages come in, before they are
    /// journaled.
    pub fn admits_skill(router: &Router, allow_new_skills: bool, skill: &str) -> bool {
        allow_new_skills || router.find_skill(skill).is_some()
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
                let metered_spec = self.metering.as_ref().map(|_| spec.clone());
                if let Err(error) = router.upsert_agent(spec, &mut self.scratch) {
                    if new {
                        self.ids.write().agents.release(key);
                    }
                    return Err(error.into());
                }
                if let (Some(metering), Some(spec)) = (&self.metering, metered_spec) {
                    metering.write().agent(&spec);
                }
            }
            Command::SetPresence { agent, presence } => {
                let presence = presence_from(*presence)?;
                router
                    .set_presence(self.agent(agent)?, presence, &mut self.scratch)
                    .map_err(|e| named(e, agent, None))?;
            }
            Command::SetCapacity { agent, capacity } => {
                router
                    .set_capacity(self.agent(agent)?, capacity_from(capacity), &mut self.scratch)
                    .map_err(|e| named(e, agent, None))?;
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
            }
            Command::RemoveAgent { agent } => router
                .remove_agent(self.agent(agent)?, &mut self.scratch)
                .map_err(|e| named(e, agent, None))?,
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

    /// Measures the router's events not yet measured, remembers closed
    /// conversations for orders, and fires due SLA timers.
    fn measure_events(&mut self) {
        let Some(metering) = &self.metering else { return };
        let mut metering = metering.write();
        metering.decisions(&self.scratch[self.metered..]);
        self.metered = self.scratch.len();
        let window = metering.meter().config().order_window_ms;
        let ids = self.ids.read();
        for event in &self.scratch {
            if let (Some(conversation), EventKind::Closed) = (event.conversation, event.kind)
                && let Some(name) = ids.conversations.name(conversation.0)
            {
                self.closed.closed(
                    &name.to_string(),
                    conversation.0,
                    self.clock_ms.saturating_add(window),
                );
            }
        }
        self.closed.expire(self.clock_ms);
        metering.advance(self.clock_ms);
        self.observations.extend(metering.take_observations());
        // SLA events go to the event stream after the command's own events
        // (numbered in `number`), and to the metrics.
        for event in metering.take_sla_events() {
            if event.kind == loket_report::SlaEventKind::Breached {
                self.breaches[usize::from(event.clock == loket_report::SlaClock::NextReply)] += 1;
            }
            self.sla_events.push(event);
        }
    }

    /// A conversation a reply or an order names: an open one, or one closed
    /// within the order window.
    fn measured_conversation(&self, id: &Id) -> Result<ConversationId, ApplyError> {
        if let Some(key) = self.closed.key(&id.to_string())
            && self.ids.read().conversations.find(id).is_none()
        {
            return Ok(ConversationId(key));
        }
        self.conversation(id)
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

    /// The state at journal position `lsn`. Call between commands.
    pub fn snapshot(&self, lsn: u64) -> TenantSnapshot {
        TenantSnapshot {
            version: SNAPSHOT_VERSION,
            lsn,
            next_seq: self.next_seq,
            clock_ms: self.clock_ms,
            router: self.router().snapshot(),
            scores: self
                .pipeline
                .conversation_scores()
                .into_iter()
                .map(|(id, score)| SavedScore {
                    conversation: id.0,
                    value: score.last_value(),
                    last_ms: score.last_update_ms(),
                })
                .collect(),
            stock: self
                .stock
                .iter()
                .map(|(sku, &stock)| SavedStock { sku: sku.clone(), stock })
                .collect(),
            ids: self.ids.read().save(),
            ids_swept_ms: self.ids_swept_ms,
            metering: self.metering.as_ref().map_or_else(Vec::new, |metering| {
                // Plain data (maps keyed by strings or as pairs): cannot fail.
                serde_json::to_vec(&*metering.read()).expect("metering serialises")
            }),
        }
    }

    /// Restores the non-router parts of a snapshot (the router is rebuilt
    /// from the snapshot before the pipeline is made).
    pub fn restore(&mut self, snapshot: &TenantSnapshot) -> Result<(), ApplyError> {
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(ApplyError::Invalid(format!(
                "snapshot format {} (this build reads {SNAPSHOT_VERSION})",
                snapshot.version
            )));
        }
        let ids = TenantIds::restore(&snapshot.ids, self.recent_ids)
            .map_err(|e| ApplyError::Invalid(format!("snapshot ids: {e}")))?;
        *self.ids.write() = ids;
        self.ids_swept_ms = snapshot.ids_swept_ms;
        self.next_seq = snapshot.next_seq.max(1);
        self.clock_ms = snapshot.clock_ms;
        self.clock.set(Timestamp(self.clock_ms));
        self.pipeline.restore_conversation_scores(snapshot.scores.iter().map(|saved| {
            (
                ConversationId(saved.conversation),
                ConversationScore::from_parts(saved.value, saved.last_ms),
            )
        }));
        if let Some(metering) = &self.metering
            && !snapshot.metering.is_empty()
        {
            let restored: Metering = serde_json::from_slice(&snapshot.metering)
                .map_err(|e| ApplyError::Invalid(format!("snapshot metering: {e}")))?;
            let mut restored = restored.restored();
            restored.set_observing(true);
            *metering.write() = restored;
        }
        self.stock.clear();
        for saved in &snapshot.stock {
            // A product that left the catalog since keeps no stock override.
            if let Some(catalog) = self.pipeline.catalog()
                && catalog.set_stock(&saved.sku, saved.stock).is_ok()
            {
                self.stock.insert(saved.sku.clone(), saved.stock);
            }
        }
        Ok(())
    }
}

fn not_measuring() -> ApplyError {
    ApplyError::Invalid(
        "this tenant does not measure (set [tenants.reports] enabled = true)".to_owned(),
    )
}

/// A reply or order the meter refused, naming the conversation as the
/// platform does.
fn measuring_error(conversation: &Id, error: MeteringError) -> ApplyError {
    match error {
        MeteringError::Fact(FactError::Closed(_)) => {
            ApplyError::Invalid(format!("conversation {:?} is closed", conversation.to_string()))
        }
        MeteringError::Fact(FactError::UnknownConversation(_)) => {
            ApplyError::UnknownConversation(conversation.to_string())
        }
        other => ApplyError::Invalid(other.to_string()),
    }
}

fn clock_now(clock: &ManualClock) -> u64 {
    use loket_router::Clock;
    clock.now().0
}

/// The router's channel for a wire channel code.
pub fn channel_from(code: u8) -> Result<Channel, ApplyError> {
    Channel::ALL.get(usize::from(code)).copied().ok_or_else(|| {
        let last = loket_wire::channel::COUNT - 1;
        ApplyError::Invalid(format!("channel code {code} is not 0..={last}"))
    })
}

/// The wire code of a language: 0 none, 1 Dutch, 2 English.
pub fn language_from(code: u8) -> Result<Option<Language>, ApplyError> {
    use loket_wire::language;
    match code {
        language::DETECT => Ok(None),
        language::NL => Ok(Some(Language::NL)),
        language::EN => Ok(Some(Language::EN)),
        other => Err(ApplyError::Invalid(format!("language code {other} is not 0, 1 or 2"))),
    }
}

fn inbound<'a>(
    message: &'a ScoredMessage,
    conversation: ConversationId,
    customer: CustomerId,
    required: &'a [SkillLevel],
) -> Result<Inbound<'a>, ApplyError> {
    let mut inbound =
        Inbound::new(conversation, customer, channel_from(message.channel)?, &message.text);
    inbound.language = language_from(message.language)?;
    inbound.tier = message.tier;
    inbound.required = required;
    Ok(inbound)
}

/// Until when (ms) the router's history of a customer steers routing.
/// The integers `ids` holds now for `messages`' string conversation ids,
/// by message, 0 where it holds none (or the id is decimal); empty, without
/// taking the lock, when no message has a string conversation id. Run where
/// messages come in, for [`TenantState::hint_conversations`].
pub fn find_conversations(ids: &RwLock<TenantIds>, messages: &[ScoredMessage]) -> Vec<u64> {
    let is_string = |message: &ScoredMessage| {
        message.conversation.as_number().is_none_or(|n| n >= loket_ids::TEXT_BASE)
    };
    if !messages.iter().any(is_string) {
        return Vec::new();
    }
    let ids = ids.read();
    messages
        .iter()
        .map(|message| match message.conversation.as_number() {
            Some(n) if n < loket_ids::TEXT_BASE => 0,
            _ => ids.conversations.find(&message.conversation).unwrap_or(0),
        })
        .collect()
}

fn remembered_until(router: &Router, customer: u64) -> Option<u64> {
    router.remembered_until(CustomerId(customer)).map(|until| until.0)
}

fn unknown_agent(id: &Id) -> ApplyError {
    ApplyError::UnknownAgent(id.to_string())
}

fn invalid_id(prefix: &str, field: &str, error: &loket_ids::IdError) -> ApplyError {
    ApplyError::Invalid(format!("{prefix}{field}: {error}"))
}

/// A skill as a message or an agent names it: 1 to
/// [`loket_wire::MAX_SKILL_NAME`] bytes, proficiency 1..=10.
pub fn check_skill(skill: &SkillRecord) -> Result<(), ApplyError> {
    if skill.name.is_empty() || skill.name.len() > loket_wire::MAX_SKILL_NAME {
        return Err(ApplyError::Invalid(format!(
            "skill names are 1 to {} bytes; {:?} has {}",
            loket_wire::MAX_SKILL_NAME,
            skill.name.chars().take(80).collect::<String>(),
            skill.name.len()
        )));
    }
    if (1..=10).contains(&skill.level) {
        Ok(())
    } else {
        Err(ApplyError::Invalid(format!(
            "skill {:?}: proficiency {} is outside 1..=10",
            skill.name, skill.level
        )))
    }
}

/// The scores as journaled.
pub fn score(message: &ScoredMessage) -> Score {
    Score {
        intent: IntentId(message.intent),
        confidence: message.confidence,
        buying_intent: message.buying_intent,
        language: match message.detected_language {
            1 => loket_intent::Language::Dutch,
            2 => loket_intent::Language::English,
            _ => loket_intent::Language::Unknown,
        },
        signals: Signals(message.signals),
    }
}

/// A message as it arrives, before scoring.
#[derive(Debug, Clone)]
pub struct Incoming<'a> {
    /// Conversation id.
    pub conversation: Id,
    /// Customer id.
    pub customer: Id,
    /// Channel code.
    pub channel: u8,
    /// Language code: 0 detect, 1 Dutch, 2 English.
    pub language: u8,
    /// Customer tier.
    pub tier: u8,
    /// The text.
    pub text: &'a str,
    /// Skills the platform requires.
    pub skills: Vec<SkillRecord>,
}

/// A message scored now, ready to journal.
///
/// The text is kept only with `store_text` (the tenant's opt-in); without
/// it the record holds everything replay needs and no customer words.
pub fn scored(
    pipeline: &Pipeline,
    scratch: &mut loket_pipeline::Scratch,
    incoming: Incoming<'_>,
    store_text: bool,
) -> ScoredMessage {
    let score = pipeline.score(incoming.text, scratch);
    ScoredMessage {
        conversation: incoming.conversation,
        customer: incoming.customer,
        channel: incoming.channel,
        language: incoming.language,
        tier: incoming.tier,
        text: if store_text { incoming.text.to_owned() } else { String::new() },
        intent: score.intent.0,
        confidence: score.confidence,
        buying_intent: score.buying_intent,
        detected_language: match score.language {
            loket_intent::Language::Dutch => 1,
            loket_intent::Language::English => 2,
            loket_intent::Language::Unknown => 0,
        },
        signals: score.signals.0,
        skills: incoming.skills,
    }
}

/// Presence from its code: 0 available, 1 away, 2 offline, 3 not responding.
pub fn presence_from(code: u8) -> Result<Presence, ApplyError> {
    match code {
        0 => Ok(Presence::Available),
        1 => Ok(Presence::Away),
        2 => Ok(Presence::Offline),
        3 => Ok(Presence::NotResponding),
        other => Err(ApplyError::Invalid(format!("presence code {other} is not 0..=3"))),
    }
}

/// The code of a presence.
pub fn presence_code(presence: Presence) -> u8 {
    match presence {
        Presence::Available => 0,
        Presence::Away => 1,
        Presence::Offline => 2,
        Presence::NotResponding => 3,
    }
}

fn capacity_from(values: &[u32; 7]) -> Capacity {
    Capacity {
        chat: values[0],
        whatsapp: values[1],
        messenger: values[2],
        sms: values[3],
        email: values[4],
        voice: values[5],
        total: values[6],
    }
}

/// A capacity as journaled.
pub fn capacity_values(capacity: &Capacity) -> [u32; 7] {
    [
        capacity.chat,
        capacity.whatsapp,
        capacity.messenger,
        capacity.sms,
        capacity.email,
        capacity.voice,
        capacity.total,
    ]
}

fn skills_from(router: &Router, skills: &[SkillRecord]) -> Result<Vec<SkillLevel>, ApplyError> {
    skills
        .iter()
        .map(|skill| {
            check_skill(skill)?;
            Ok(SkillLevel { skill: router.skill(&skill.name)?, level: skill.level })
        })
        .collect()
}

fn agent_spec(router: &Router, agent: &AgentRecord) -> Result<AgentSpec, ApplyError> {
    let mut spec = AgentSpec::new(AgentId(0));
    spec.kind = if agent.bot { AgentKind::Bot } else { AgentKind::Human };
    spec.languages =
        agent.languages.iter().map(|code| code.parse::<Language>()).collect::<Result<_, _>>()?;
    spec.capacity = capacity_from(&agent.capacity);
    spec.presence = presence_from(agent.presence)?;
    spec.team.clone_from(&agent.team);
    for skill in &agent.skills {
        check_skill(skill)?;
    }
    // Registers new skill names: last, once everything else is known good.
    spec.skills = skills_from(router, &agent.skills)?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_codes_match_the_router_channels_and_languages() {
        for code in 0..loket_wire::channel::COUNT {
            let channel = channel_from(code).unwrap();
            assert_eq!(channel.index(), usize::from(code));
            assert_eq!(loket_wire::channel::name(code), Some(channel.as_str()));
        }
        assert!(channel_from(loket_wire::channel::COUNT).is_err());
        assert_eq!(language_from(loket_wire::language::DETECT).unwrap(), None);
        assert_eq!(language_from(loket_wire::language::NL).unwrap(), Some(Language::NL));
        assert_eq!(language_from(loket_wire::language::EN).unwrap(), Some(Language::EN));
        assert!(language_from(loket_wire::language::COUNT).is_err());
    }

    /// A state like a tenant's: a router with affinity on a manual clock,
    /// new or restored from `saved`.
    fn state_from(start_ms: u64, saved: Option<&TenantSnapshot>) -> TenantState {
        let clock = Arc::new(ManualClock::new(Timestamp(start_ms)));
        let config = loket_router::RouterConfig {
            affinity_lookback_ms: 120_000,
            ..loket_router::RouterConfig::default()
        };
        let builder = Router::builder().config(config).clock(clock.clone());
        let router = match saved {
            Some(saved) => builder.restore(saved.router.clone()).unwrap(),
            None => builder.build().unwrap(),
        };
        let pipeline = Pipeline::new(
            router,
            loket_pipeline::SharedModel::from(loket_intent::Model::builtin()),
            None,
            loket_pipeline::PipelineConfig::default(),
        )
        .unwrap();
        let mut state = TenantState::new(Arc::new(pipeline), clock, 64);
        if let Some(saved) = saved {
            state.restore(saved).unwrap();
        }
        state
    }

    fn state(start_ms: u64) -> TenantState {
        state_from(start_ms, None)
    }

    fn agent(id: &str) -> Command {
        Command::UpsertAgent(AgentRecord {
            id: id.parse().unwrap(),
            bot: false,
            skills: vec![SkillRecord { name: "sales".into(), level: 5 }],
            languages: vec!["nl".into()],
            capacity: [3, 3, 3, 3, 3, 1, 10],
            presence: 0,
            team: None,
        })
    }

    fn message(conversation: &str, customer: &str) -> Command {
        Command::Messages(vec![ScoredMessage {
            conversation: conversation.parse().unwrap(),
            customer: customer.parse().unwrap(),
            channel: 0,
            language: 1,
            tier: 0,
            text: "hoi".into(),
            intent: 0,
            confidence: 0.5,
            buying_intent: 0.1,
            detected_language: 1,
            signals: 0,
            skills: Vec::new(),
        }])
    }

    #[test]
    fn replaying_what_applied_rebuilds_the_same_ids_and_events() {
        let start = 1_795_424_400_000;
        let close = |c: &str| Command::Close { conversation: c.parse().unwrap() };
        // Commands at their times; some fail (and are not journaled), one
        // of them after the ids sweep is due.
        let script = [
            (0, agent("anna")),
            (1, message("wa:1", "+316-1")),
            (2, message("wa:2", "+316-2")),
            (3, message("wa:1", "someone-else")),
            (4, close("wa:1")),
            (5, close("nope")),
            (61_000, close("nope-either")),
            (62_000, close("wa:2")),
            (200_000, close("still-nope")),
            (200_001, message("wa:1", "+316-1")),
            (400_000, message("wa:3", "+316-2")),
            (400_001, Command::EraseCustomer { customer: "+316-2".parse().unwrap() }),
            (400_002, message("7", "+316-9")),
            (460_000, Command::Tick),
        ];
        let mut live = state(start);
        let mut journal = Vec::new();
        let mut live_events = Vec::new();
        for (offset, command) in script {
            // Live, the receiving thread finds the conversations first, as
            // a tenant does; replay has no such hints.
            if let Command::Messages(messages) = &command {
                live.hint_conversations(find_conversations(live.ids(), messages));
            }
            let record = Record { at_ms: start + offset, command };
            if live.apply(&record, &mut live_events).is_ok() {
                journal.push(record);
            }
        }
        assert!(journal.len() < 14, "some commands failed");
        let mut replayed = state(start);
        let mut replayed_events = Vec::new();
        for record in &journal {
            replayed.apply(record, &mut replayed_events).expect("a journaled command applies");
        }
        assert_eq!(replayed.snapshot(1).ids, live.snapshot(1).ids);
        assert_eq!(replayed_events, live_events);
        // The erased customer and their conversations are gone by name.
        let ids = live.ids().read();
        assert_eq!(ids.customers.find_str("+316-2"), None);
        assert!(ids.customers.find_str("+316-1").is_some(), "served, within the look-back");
    }

    #[test]
    fn a_stale_conversation_hint_is_looked_up_again() {
        let start = 1_795_424_400_000;
        let mut state = state(start);
        let mut events = Vec::new();
        let mut apply = |state: &mut TenantState, offset: u64, command: Command| {
            state.apply(&Record { at_ms: start + offset, command }, &mut events).unwrap()
        };
        apply(&mut state, 0, agent("anna"));
        apply(&mut state, 1, message("wa:1", "+316-1"));
        let Command::Messages(again) = message("wa:1", "+316-1") else { unreachable!() };
        let stale = find_conversations(state.ids(), &again);
        let first = stale[0];
        assert!(state.ids().read().conversations.holds(first), "found while open");
        // The conversation goes, and its slot is reused by another.
        apply(&mut state, 2, Command::Close { conversation: "wa:1".parse().unwrap() });
        state.ids().write().sweep(start + 10_000_000, |_| None);
        apply(&mut state, 3, message("wa:9", "+316-9"));
        let reused = state.ids().read().conversations.find_str("wa:9").unwrap();
        assert_eq!(reused & 0xFFFF_FFFF, first & 0xFFFF_FFFF, "the same slot");
        assert_ne!(reused, first, "a newer generation");
        // The stale hint is not taken: "wa:1" opens anew, not as "wa:9".
        state.hint_conversations(stale);
        let applied = apply(&mut state, 4, Command::Messages(again));
        let ids = state.ids().read();
        let now = ids.conversations.find_str("wa:1").expect("wa:1 is open again");
        assert!(now != first && now != reused);
        assert_eq!(applied.decisions[0].event.conversation, Some(ConversationId(now)));
        // A hint is for one command: the next one looks up as usual.
        assert!(state.conversation_hints.is_empty());
    }

    #[test]
    fn a_restored_state_names_conversations_it_forgets_afterwards() {
        let start = 1_795_424_400_000;
        let mut live = state(start);
        let mut events = Vec::new();
        for (offset, command) in [(0, agent("anna")), (1, message("wa:1", "+316-1"))] {
            live.apply(&Record { at_ms: start + offset, command }, &mut events).unwrap();
        }
        let snapshot = live.snapshot(2);
        let mut restored = state_from(start, Some(&snapshot));
        let close = Command::Close { conversation: "wa:1".parse().unwrap() };
        let mut after = Vec::new();
        restored.apply(&Record { at_ms: start + 10, command: close }, &mut after).unwrap();
        let ids = restored.ids().read();
        for event in &after {
            let key = event.event.conversation().unwrap().0;
            assert_eq!(ids.conversation_name(key).map(|n| n.to_string()).as_deref(), Some("wa:1"));
        }
    }
}

#[cfg(test)]
mod measuring_tests {
    use loket_report::{Interval, Query, Report};

    use super::*;

    fn measured(start_ms: u64, saved: Option<&TenantSnapshot>) -> TenantState {
        let clock = Arc::new(ManualClock::new(Timestamp(start_ms)));
        let builder = Router::builder().clock(clock.clone());
        let router = match saved {
            Some(saved) => builder.restore(saved.router.clone()).unwrap(),
            None => builder.build().unwrap(),
        };
        let pipeline = Pipeline::new(
            router,
            loket_pipeline::SharedModel::from(loket_intent::Model::builtin()),
            None,
            loket_pipeline::PipelineConfig::default(),
        )
        .unwrap();
        let mut state = TenantState::new(Arc::new(pipeline), clock, 64)
            .measure(MeterConfig::default())
            .unwrap();
        if let Some(saved) = saved {
            state.restore(saved).unwrap();
        }
        state
    }

    fn report(state: &TenantState, start: u64) -> Report {
        let query = Query {
            from: start,
            to: start + 3_600_000,
            interval: Interval::Minutes15,
            group_by: vec![loket_report::Dimension::Channel, loket_report::Dimension::Agent],
        };
        state.metering().unwrap().read().report(&query, |agent| Some(agent.0.to_string())).unwrap()
    }

    fn message(conversation: &str) -> Command {
        Command::Messages(vec![ScoredMessage {
            conversation: conversation.parse().unwrap(),
            customer: "k".parse().unwrap(),
            channel: 0,
            language: 1,
            tier: 0,
            text: String::new(),
            intent: 0,
            confidence: 0.5,
            buying_intent: 0.1,
            detected_language: 1,
            signals: 0,
            skills: Vec::new(),
        }])
    }

    #[test]
    fn replies_and_orders_are_measured_and_survive_replay_and_snapshots() {
        let start = 1_795_424_400_000;
        let anna = Command::UpsertAgent(AgentRecord {
            id: "anna".parse().unwrap(),
            bot: false,
            skills: Vec::new(),
            languages: vec!["nl".into()],
            capacity: [3, 3, 3, 3, 3, 1, 10],
            presence: 0,
            team: Some("garden".into()),
        });
        let reply = |c: &str, at_ms| Command::Reply {
            conversation: c.parse().unwrap(),
            agent: "anna".parse().unwrap(),
            at_ms,
        };
        let order = |c: &str, currency: &str, value_minor| Command::Order {
            conversation: c.parse().unwrap(),
            value_minor,
            currency: currency.into(),
            at_ms: None,
        };
        let close = |c: &str| Command::Close { conversation: c.parse().unwrap() };
        let first = [(0, anna), (0, message("c1")), (20_000, reply("c1", Some(start + 15_000)))];
        let second = [
            (30_000, message("c2")),
            (40_000, close("c1")),
            (50_000, order("c1", "eur", 4_995)),
            (50_000, order("c1", "euro", 100)),
            (50_000, order("nope", "EUR", 100)),
            (50_000, reply("c1", None)),
            (200_000, Command::Tick),
        ];
        let mut live = measured(start, None);
        let mut journal = Vec::new();
        let mut refused = Vec::new();
        let mut events = Vec::new();
        for (offset, command) in first {
            let record = Record { at_ms: start + offset, command };
            live.apply(&record, &mut events).unwrap();
            journal.push(record);
        }
        let snapshot = live.snapshot(journal.len() as u64);
        let mut restored = measured(start, Some(&snapshot));
        for (offset, command) in second {
            let record = Record { at_ms: start + offset, command };
            match live.apply(&record, &mut events) {
                Ok(_) => {
                    restored.apply(&record, &mut Vec::new()).unwrap();
                    journal.push(record);
                }
                Err(error) => refused.push(error.to_string()),
            }
        }
        assert_eq!(
            refused,
            [
                "currency \"euro\" is not a three-letter code",
                "no conversation \"nope\"",
                "conversation \"c1\" is closed",
            ]
        );
        let totals = report(&live, start).totals;
        assert_eq!((totals.offered, totals.answered, totals.conversions), (2, 1, 1));
        // The platform's `at` is used: the reply came 15 s after the message.
        assert_eq!(totals.first_response_ms.avg, Some(15_000.0));
        assert_eq!(totals.sla_breaches.first_reply, 1, "c2 waited past chat's 60 s");
        assert_eq!(totals.revenue.get("EUR"), Some(&49.95));

        let mut replayed = measured(start, None);
        let mut replayed_events = Vec::new();
        for record in &journal {
            replayed.apply(record, &mut replayed_events).unwrap();
        }
        // The same events with the same numbers, SLA events among them (the
        // refused commands moved nothing).
        assert_eq!(replayed_events, events);
        let sla: Vec<_> = events
            .iter()
            .filter_map(|e| match e.event {
                StreamEvent::Sla(sla) => Some((sla.kind, sla.clock)),
                StreamEvent::Routed(_) => None,
            })
            .collect();
        assert_eq!(
            sla,
            [
                (loket_report::SlaEventKind::Warning, loket_report::SlaClock::FirstReply),
                (loket_report::SlaEventKind::Breached, loket_report::SlaClock::FirstReply),
            ],
            "c2 waited past chat's 60 s"
        );
        assert_eq!(report(&replayed, start), report(&live, start));
        assert_eq!(report(&restored, start), report(&live, start));
        let teams: Vec<String> = report(&live, start)
            .groups
            .iter()
            .map(|row| format!("{:?}={}", row.group, row.key))
            .collect();
        assert!(teams.iter().any(|t| t.starts_with("Agent=")), "{teams:?}");
    }

    #[test]
    fn a_tenant_that_does_not_measure_refuses_replies() {
        let start = 1_795_424_400_000;
        let clock = Arc::new(ManualClock::new(Timestamp(start)));
        let router = Router::builder().clock(clock.clone()).build().unwrap();
        let pipeline = Pipeline::new(
            router,
            loket_pipeline::SharedModel::from(loket_intent::Model::builtin()),
            None,
            loket_pipeline::PipelineConfig::default(),
        )
        .unwrap();
        let mut state = TenantState::new(Arc::new(pipeline), clock, 64);
        let mut events = Vec::new();
        state.apply(&Record { at_ms: start, command: message("c1") }, &mut events).unwrap();
        let reply = Command::Order {
            conversation: "c1".parse().unwrap(),
            value_minor: 1,
            currency: "EUR".into(),
            at_ms: None,
        };
        let error = state.apply(&Record { at_ms: start, command: reply }, &mut events).unwrap_err();
        assert!(error.to_string().contains("does not measure"), "{error}");
        assert!(state.snapshot(1).metering.is_empty());
    }
}
