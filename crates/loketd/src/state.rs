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

use std::collections::BTreeMap;
use std::sync::Arc;

use loket_catalog::Catalog;
use loket_intent::{ConversationScore, IntentId, Score, Signals};
use loket_pipeline::{Inbound, Pipeline};
use loket_router::{
    AgentId, AgentKind, AgentSpec, Capacity, Channel, ConversationId, CustomerId, Event, Language,
    ManualClock, Presence, Router, RouterError, RouterSnapshot, SkillLevel, Timestamp,
};
use rkyv::{Archive, Deserialize, Serialize};

use crate::command::{AgentRecord, Command, Record, ScoredMessage, SkillRecord};

/// One decision or state change with its place in the tenant's stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeqEvent {
    /// Position in the tenant's event stream, from 1, without gaps.
    pub seq: u64,
    /// The event.
    pub event: Event,
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
}

/// What applying a command produced, besides events.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Applied {
    /// One per message, for [`Command::Messages`].
    pub decisions: Vec<Decision>,
    /// Erased conversations, for [`Command::EraseCustomer`].
    pub erased: Vec<u64>,
}

/// A command that cannot apply. Nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The router refused (unknown agent or conversation, bad capacity, ...).
    #[error(transparent)]
    Router(#[from] RouterError),
    /// The catalog refused (unknown product, ...).
    #[error(transparent)]
    Catalog(#[from] loket_catalog::CatalogError),
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
pub const SNAPSHOT_VERSION: u32 = 1;

/// A tenant's routing, scoring and stock state; see the module docs.
#[derive(Debug)]
pub struct TenantState {
    pipeline: Arc<Pipeline>,
    clock: Arc<ManualClock>,
    stock: BTreeMap<String, i64>,
    next_seq: u64,
    clock_ms: u64,
    scratch: Vec<Event>,
}

impl TenantState {
    /// A state over a fresh pipeline whose router reads `clock`.
    pub fn new(pipeline: Arc<Pipeline>, clock: Arc<ManualClock>) -> TenantState {
        let clock_ms = clock_now(&clock);
        TenantState {
            pipeline,
            clock,
            stock: BTreeMap::new(),
            next_seq: 1,
            clock_ms,
            scratch: Vec::new(),
        }
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
        let result = self.apply_command(&record.command, &mut applied);
        // A failed command changed nothing, so it reported nothing; number
        // whatever the router reported either way.
        self.number(events);
        result.map(|()| applied)
    }

    fn apply_command(
        &mut self,
        command: &Command,
        applied: &mut Applied,
    ) -> Result<(), ApplyError> {
        let router = self.pipeline.router().clone();
        match command {
            Command::Messages(messages) => {
                // All or nothing: check every message before routing any.
                for message in messages {
                    inbound(message)?;
                }
                applied.decisions.reserve(messages.len());
                for message in messages {
                    let inbound = inbound(message)?;
                    let score = score(message);
                    let before = self.scratch.len();
                    let routed = self.pipeline.route_scored(&inbound, &score, &mut self.scratch);
                    let offset = self.scratch[before..]
                        .iter()
                        .position(|event| *event == routed.decision)
                        .map_or(self.scratch.len(), |i| before + i);
                    if offset == self.scratch.len() {
                        // A decision the router did not also report: report it.
                        self.scratch.push(routed.decision);
                    }
                    let seq = self.next_seq + offset as u64;
                    applied.decisions.push(Decision {
                        seq,
                        event: routed.decision,
                        conversation_score: routed.conversation_score,
                    });
                }
            }
            Command::UpsertAgent(agent) => {
                let spec = agent_spec(&router, agent)?;
                router.upsert_agent(spec, &mut self.scratch)?;
            }
            Command::SetPresence { agent, presence } => {
                router.set_presence(
                    AgentId(*agent),
                    presence_from(*presence)?,
                    &mut self.scratch,
                )?;
            }
            Command::SetCapacity { agent, capacity } => {
                router.set_capacity(AgentId(*agent), capacity_from(capacity), &mut self.scratch)?;
            }
            Command::SetSkills { agent, skills } => {
                let skills = skills_from(&router, skills)?;
                router.set_skills(AgentId(*agent), skills, &mut self.scratch)?;
            }
            Command::RemoveAgent { agent } => {
                router.remove_agent(AgentId(*agent), &mut self.scratch)?
            }
            Command::Close { conversation } => {
                self.pipeline.close(ConversationId(*conversation), &mut self.scratch)?;
            }
            Command::Transfer { conversation, agent } => {
                router.transfer(
                    ConversationId(*conversation),
                    AgentId(*agent),
                    &mut self.scratch,
                )?;
            }
            Command::AnswerOffer { conversation, agent, accept } => {
                let (conversation, agent) = (ConversationId(*conversation), AgentId(*agent));
                if *accept {
                    router.accept_offer(conversation, agent, &mut self.scratch)?;
                } else {
                    router.decline_offer(conversation, agent, &mut self.scratch)?;
                }
            }
            Command::Tick => router.advance(&mut self.scratch),
            Command::SetStock { sku, stock } => {
                let catalog = self.catalog()?;
                catalog.set_stock(sku, *stock)?;
                self.stock.insert(sku.clone(), *stock);
            }
            Command::EraseCustomer { customer } => {
                let erased = router.erase_customer(CustomerId(*customer), &mut self.scratch);
                for conversation in &erased {
                    self.pipeline.forget(*conversation);
                }
                applied.erased = erased.iter().map(|c| c.0).collect();
            }
        }
        Ok(())
    }

    fn catalog(&self) -> Result<&Catalog, ApplyError> {
        self.pipeline
            .catalog()
            .ok_or_else(|| ApplyError::Invalid("this tenant has no catalog".to_owned()))
    }

    /// Moves the router's events from scratch into `events`, numbered.
    fn number(&mut self, events: &mut Vec<SeqEvent>) {
        for event in self.scratch.drain(..) {
            events.push(SeqEvent { seq: self.next_seq, event });
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
        self.next_seq = snapshot.next_seq.max(1);
        self.clock_ms = snapshot.clock_ms;
        self.clock.set(Timestamp(self.clock_ms));
        self.pipeline.restore_conversation_scores(snapshot.scores.iter().map(|saved| {
            (
                ConversationId(saved.conversation),
                ConversationScore::from_parts(saved.value, saved.last_ms),
            )
        }));
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

fn inbound(message: &ScoredMessage) -> Result<Inbound<'_>, ApplyError> {
    let mut inbound = Inbound::new(
        ConversationId(message.conversation),
        CustomerId(message.customer),
        channel_from(message.channel)?,
        &message.text,
    );
    inbound.language = language_from(message.language)?;
    inbound.tier = message.tier;
    Ok(inbound)
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
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// Conversation id.
    pub conversation: u64,
    /// Customer id.
    pub customer: u64,
    /// Channel code.
    pub channel: u8,
    /// Language code: 0 detect, 1 Dutch, 2 English.
    pub language: u8,
    /// Customer tier.
    pub tier: u8,
    /// The text.
    pub text: &'a str,
}

/// A message scored now, ready to journal.
pub fn scored(
    pipeline: &Pipeline,
    scratch: &mut loket_pipeline::Scratch,
    incoming: &Incoming<'_>,
) -> ScoredMessage {
    let score = pipeline.score(incoming.text, scratch);
    ScoredMessage {
        conversation: incoming.conversation,
        customer: incoming.customer,
        channel: incoming.channel,
        language: incoming.language,
        tier: incoming.tier,
        text: incoming.text.to_owned(),
        intent: score.intent.0,
        confidence: score.confidence,
        buying_intent: score.buying_intent,
        detected_language: match score.language {
            loket_intent::Language::Dutch => 1,
            loket_intent::Language::English => 2,
            loket_intent::Language::Unknown => 0,
        },
        signals: score.signals.0,
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
            if !(1..=10).contains(&skill.level) {
                return Err(ApplyError::Invalid(format!(
                    "skill {:?}: proficiency {} is outside 1..=10",
                    skill.name, skill.level
                )));
            }
            Ok(SkillLevel { skill: router.skill(&skill.name)?, level: skill.level })
        })
        .collect()
}

fn agent_spec(router: &Router, agent: &AgentRecord) -> Result<AgentSpec, ApplyError> {
    let mut spec = AgentSpec::new(AgentId(agent.id));
    spec.kind = if agent.bot { AgentKind::Bot } else { AgentKind::Human };
    spec.skills = skills_from(router, &agent.skills)?;
    spec.languages =
        agent.languages.iter().map(|code| code.parse::<Language>()).collect::<Result<_, _>>()?;
    spec.capacity = capacity_from(&agent.capacity);
    spec.presence = presence_from(agent.presence)?;
    spec.team.clone_from(&agent.team);
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
}
