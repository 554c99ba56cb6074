//! [`Metering`]: a [`Meter`] fed from a router's decisions.

use loket_report::{
    ConfigError, CustomerMessage, Dimension, Fact, FactError, FactKind, IntentError, IntentId,
    Language, Meter, MeterConfig, Money, Query, QueryError, Report, SlaEvent,
};
use loket_router::{
    AgentId, AgentKind, AgentSpec, AssignReason, Capacity, Channel, ConversationId, Event,
    EventKind, Message, Router, SkillId,
};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::labels::Labels;

/// Why a customer message, reply or order was not measured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeteringError {
    /// The meter refused the fact (out of order, unknown or closed
    /// conversation).
    #[error(transparent)]
    Fact(#[from] FactError),
    /// The intent name cannot be interned.
    #[error("intent: {0}")]
    Intent(#[from] IntentError),
}

/// What the meter needs to know of an agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct AgentFacts {
    team: u32,
    human: bool,
}

/// A queue's key: its required skills with their minimums, sorted.
type QueueKey = SmallVec<[(u16, u8); 4]>;

/// One tenant's measuring: a [`Meter`] and the numbering of the groups it
/// keys by integer. See the crate docs.
///
/// Serialisable as a whole, so a snapshot keeps it; after deserialising,
/// call [`Metering::restored`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Metering {
    meter: Meter,
    /// Queues by name (`billing:3+sales:1`); 0 is "no skills".
    queues: Labels,
    #[serde(skip)]
    queue_numbers: FxHashMap<QueueKey, u32>,
    /// Queue numbers by a message's requirements as given (unsorted), for
    /// up to four requirements: most messages skip building the key.
    #[serde(skip)]
    queue_memo: QueueMemo,
    /// The last language converted (the router's, the meter's).
    #[serde(skip)]
    last_language: Option<(loket_router::Language, Language)>,
    /// Teams by label; 0 is "no team".
    teams: Labels,
    #[serde(with = "pairs")]
    agents: FxHashMap<u64, AgentFacts>,
    /// The person holding each conversation a person holds (assignment to
    /// release), for occupancy.
    #[serde(default, with = "pairs")]
    holders: FxHashMap<u64, u64>,
    #[serde(skip)]
    sla_events: Vec<SlaEvent>,
}

impl Metering {
    /// Measuring under `config`, with nothing measured yet.
    pub fn new(config: MeterConfig) -> Result<Metering, ConfigError> {
        Ok(Metering {
            meter: Meter::new(config)?,
            queues: Labels::default(),
            queue_numbers: FxHashMap::default(),
            queue_memo: QueueMemo::default(),
            last_language: None,
            teams: Labels::default(),
            agents: FxHashMap::default(),
            holders: FxHashMap::default(),
            sla_events: Vec::new(),
        })
    }

    /// Rebuilds the lookups a deserialised metering does not carry. Queue
    /// numbers are found again by name on their next use.
    pub fn restored(mut self) -> Metering {
        self.queues.reindex();
        self.teams.reindex();
        self
    }

    /// The meter.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// Measures under `config` from now on (see [`Meter::reconfigure`]).
    pub fn reconfigure(&mut self, config: MeterConfig) -> Result<(), ConfigError> {
        self.meter.reconfigure(config)
    }

    /// Registers (or updates) an agent: its team, whether it is a person,
    /// and, for occupancy, what a person can hold while staffed, from the
    /// meter's time (before anything is measured: from the first fact).
    /// Assignments and replies of an agent never registered count as a
    /// person's, with no team.
    pub fn agent(&mut self, spec: &AgentSpec) {
        self.register(None, spec);
    }

    /// As [`Metering::agent`], at `at` (the router's time of the change).
    /// A time before the meter's is refused for occupancy (counted in the
    /// meter's rejections); the team and kind are registered regardless.
    pub fn agent_at(&mut self, at: u64, spec: &AgentSpec) {
        self.register(Some(at), spec);
    }

    /// Brings the agent in line with `router` at `at` after a change of
    /// presence, capacity or registration: an agent the router no longer
    /// knows is no longer staffed.
    pub fn agent_changed(&mut self, at: u64, router: &Router, agent: AgentId) {
        match router.agent(agent) {
            Some(view) => self.register(Some(at), &view.spec),
            None => {
                let team = self.agent_facts(agent).team;
                let _ = self.meter.staff(Some(at), agent.0, team, 0, &mut self.sla_events);
            }
        }
    }

    fn register(&mut self, at: Option<u64>, spec: &AgentSpec) {
        let team = self.teams.intern(spec.team.as_deref().unwrap_or(""));
        let human = spec.kind == AgentKind::Human;
        self.agents.insert(spec.id.0, AgentFacts { team, human });
        let capacity = if human && spec.presence.keeps_conversations() {
            staffed_capacity(&spec.capacity)
        } else {
            0
        };
        // Refusals are counted by the meter.
        let _ = self.meter.staff(at, spec.id.0, team, capacity, &mut self.sla_events);
    }

    /// Measures a customer message at `at` (the router's time, before the
    /// message is routed): the first of a conversation opens it with the
    /// message's channel, language, tier, buying intent, `intent` (a name;
    /// `""` for none) and its required skills as the queue, named with
    /// `skill_name`.
    pub fn message(
        &mut self,
        at: u64,
        message: &Message,
        intent: &str,
        skill_name: impl Fn(SkillId) -> Option<String>,
    ) -> Result<(), MeteringError> {
        let intent =
            if intent.is_empty() { IntentId::NONE } else { self.meter.intern_intent(intent)? };
        let queue = self.queue(message, skill_name);
        let language = match self.last_language {
            Some((router, meter)) if router == message.language => meter,
            _ => {
                let code = message.language.as_str().as_bytes();
                let meter = Language([code[0], code[1]]);
                self.last_language = Some((message.language, meter));
                meter
            }
        };
        let fact = CustomerMessage {
            channel: message.channel,
            language,
            tier: message.tier,
            intent,
            buying_intent: message.buying_intent,
            queue,
        };
        self.ingest(at, message.conversation, FactKind::CustomerMessage(fact))
    }

    /// Measures the router's events: assignments (except sticky ones, which
    /// change nothing) and accepted offers, escalations, closes and
    /// erasures; for occupancy, who holds each conversation from an
    /// assignment to its release (wrap-up included), its return to the
    /// queue or its erasure. An event dated before the meter's time (a
    /// reply or order dated ahead of the router's clock moved it) counts
    /// at the meter's time. Events the meter refuses (a conversation it
    /// never saw open, say one opened before measuring began) are counted
    /// in its [`Meter::rejections`] and otherwise skipped.
    pub fn decisions(&mut self, events: &[Event]) {
        for event in events {
            let Some(conversation) = event.conversation else { continue };
            let at = event.at.0.max(self.meter.now());
            let kind = match (event.kind, event.agent) {
                (EventKind::Assigned { reason: AssignReason::Sticky, .. }, _) => continue,
                (EventKind::Assigned { .. } | EventKind::OfferAccepted, Some(agent)) => {
                    let facts = self.agent_facts(agent);
                    self.holder(at, conversation, facts.human.then_some(agent.0));
                    FactKind::Assigned { agent: agent.0, team: facts.team, human: facts.human }
                }
                (EventKind::Escalated { .. }, _) => FactKind::HandedOff,
                (EventKind::Closed, _) => FactKind::Closed,
                (EventKind::Erased, _) => {
                    self.holder(at, conversation, None);
                    FactKind::Closed
                }
                (EventKind::Released | EventKind::Queued { .. }, _) => {
                    self.holder(at, conversation, None);
                    continue;
                }
                _ => continue,
            };
            // Refusals are counted by the meter; nothing else to do here.
            let _ = self.ingest(at, conversation, kind);
        }
    }

    /// The person holding `conversation` from `at` on (`None`: nobody, or
    /// a bot), for occupancy.
    fn holder(&mut self, at: u64, conversation: ConversationId, person: Option<u64>) {
        let before = match person {
            Some(person) => self.holders.insert(conversation.0, person),
            None => self.holders.remove(&conversation.0),
        };
        if before == person {
            return;
        }
        // Refusals are counted by the meter.
        if let Some(before) = before {
            let _ = self.meter.hold(at, before, false, &mut self.sla_events);
        }
        if let Some(person) = person {
            let _ = self.meter.hold(at, person, true, &mut self.sla_events);
        }
    }

    /// Measures a reply by `agent` in `conversation` at `at`.
    pub fn reply(
        &mut self,
        at: u64,
        conversation: ConversationId,
        agent: AgentId,
    ) -> Result<(), MeteringError> {
        let facts = self.agent_facts(agent);
        let kind = FactKind::Reply { agent: agent.0, team: facts.team, human: facts.human };
        self.ingest(at, conversation, kind)
    }

    /// Measures an order of `value` in `conversation` at `at` (up to the
    /// meter's `order_window_ms` after its close).
    pub fn order(
        &mut self,
        at: u64,
        conversation: ConversationId,
        value: Money,
    ) -> Result<(), MeteringError> {
        self.ingest(at, conversation, FactKind::Order { value })
    }

    /// Moves the meter's time to `now`, firing due SLA timers. A `now`
    /// before the meter's time changes nothing.
    pub fn advance(&mut self, now: u64) {
        if now > self.meter.now() {
            // Cannot fail: `now` is not before the meter's time.
            let _ = self.meter.advance(now, &mut self.sla_events);
        }
    }

    /// Keeps every reply clock that stops for
    /// [`Metering::take_observations`] (live metrics); off by default and
    /// after a restore.
    pub fn set_observing(&mut self, observing: bool) {
        self.meter.set_observing(observing);
    }

    /// Takes the reply clocks stopped since the last call.
    pub fn take_observations(&mut self) -> Vec<loket_report::Observation> {
        self.meter.take_observations()
    }

    /// When the earliest SLA timer is due ([`Metering::advance`] to it
    /// fires an event).
    pub fn next_timer(&self) -> Option<u64> {
        self.meter.next_timer()
    }

    /// Takes the SLA events fired since the last call, in order.
    pub fn take_sla_events(&mut self) -> Vec<SlaEvent> {
        std::mem::take(&mut self.sla_events)
    }

    /// The SLA events fired since the last [`Metering::take_sla_events`].
    pub fn sla_events(&self) -> &[SlaEvent] {
        &self.sla_events
    }

    /// The report for `query`, with queues named by their skills, teams by
    /// their labels and agents by `agent_name` (an agent it cannot name
    /// keeps its integer).
    pub fn report(
        &self,
        query: &Query,
        agent_name: impl Fn(AgentId) -> Option<String>,
    ) -> Result<Report, QueryError> {
        let mut report = self.meter.report(query)?;
        for row in report.intervals.iter_mut().chain(report.groups.iter_mut()) {
            let named = match row.group {
                Dimension::Queue => row.key.parse().ok().map(|n| self.queues.name(n).to_owned()),
                Dimension::Team => row.key.parse().ok().map(|n| self.teams.name(n).to_owned()),
                Dimension::Agent => row.key.parse().ok().and_then(|n| agent_name(AgentId(n))),
                _ => None,
            };
            if let Some(name) = named {
                row.key = name;
            }
        }
        Ok(report)
    }

    fn ingest(
        &mut self,
        at: u64,
        conversation: ConversationId,
        kind: FactKind,
    ) -> Result<(), MeteringError> {
        let fact = Fact { at, conversation: conversation.0, kind };
        self.meter.ingest(&fact, &mut self.sla_events)?;
        Ok(())
    }

    fn agent_facts(&self, agent: AgentId) -> AgentFacts {
        self.agents.get(&agent.0).copied().unwrap_or(AgentFacts { team: 0, human: true })
    }

    /// The number of the message's queue (its required skills), numbering
    /// it by name on first sight.
    fn queue(&mut self, message: &Message, skill_name: impl Fn(SkillId) -> Option<String>) -> u32 {
        if message.required.is_empty() {
            return 0;
        }
        let packed = QueueMemo::pack(message);
        if let Some(number) = packed.and_then(|packed| self.queue_memo.get(packed)) {
            return number;
        }
        let number = self.number_queue(message, skill_name);
        if let Some(packed) = packed {
            self.queue_memo.insert(packed, number);
        }
        number
    }

    /// The number of the message's queue from its sorted key, numbering it
    /// by name on first sight.
    fn number_queue(
        &mut self,
        message: &Message,
        skill_name: impl Fn(SkillId) -> Option<String>,
    ) -> u32 {
        let mut key: QueueKey =
            message.required.iter().map(|need| (need.skill.0, need.level)).collect();
        key.sort_unstable();
        key.dedup_by(|later, earlier| {
            // A skill listed twice counts at its higher minimum.
            later.0 == earlier.0 && {
                earlier.1 = earlier.1.max(later.1);
                true
            }
        });
        if let Some(&number) = self.queue_numbers.get(&key) {
            return number;
        }
        let mut parts: Vec<String> = key
            .iter()
            .map(|&(skill, level)| {
                let name = skill_name(SkillId(skill)).unwrap_or_else(|| format!("#{skill}"));
                format!("{name}:{level}")
            })
            .collect();
        parts.sort();
        let number = self.queues.intern(&parts.join("+"));
        self.queue_numbers.insert(key, number);
        number
    }
}

/// A direct-mapped cache of queue numbers keyed by up to four requirements
/// packed in a `u128` as the message lists them. A queue's number never
/// changes once given, so a hit is always right; a miss only costs the
/// sorted-key lookup.
#[derive(Clone, Debug, Default)]
struct QueueMemo {
    /// (packed requirements, number); empty until the first insert. A
    /// packed key has its top bit set, so 0 marks an empty entry.
    entries: Vec<(u128, u32)>,
}

impl QueueMemo {
    const ENTRIES: usize = 1024;

    /// The message's requirements packed, if it has one to four.
    fn pack(message: &Message) -> Option<u128> {
        let mut packed = 1 << 127 | (message.required.len() as u128) << 96;
        if message.required.len() > 4 {
            return None;
        }
        for (index, need) in message.required.iter().enumerate() {
            let need = u128::from(need.skill.0) << 8 | u128::from(need.level);
            packed |= need << (24 * index);
        }
        Some(packed)
    }

    fn slot(packed: u128) -> usize {
        let folded = (packed as u64) ^ ((packed >> 64) as u64);
        (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize % Self::ENTRIES
    }

    fn get(&self, packed: u128) -> Option<u32> {
        let &(key, number) = self.entries.get(Self::slot(packed))?;
        (key == packed).then_some(number)
    }

    fn insert(&mut self, packed: u128, number: u32) {
        if self.entries.is_empty() {
            self.entries = vec![(0, 0); Self::ENTRIES];
        }
        self.entries[Self::slot(packed)] = (packed, number);
    }
}

/// The conversations a person can hold at once: the sum of the channel
/// limits, capped by the overall limit.
fn staffed_capacity(capacity: &Capacity) -> u32 {
    let channels: u32 =
        Channel::ALL.iter().map(|&channel| capacity.channel(channel)).fold(0, u32::saturating_add);
    channels.min(capacity.total)
}

/// Maps keyed by `u64` as lists of pairs sorted by key: JSON keys must be
/// strings, and a snapshot's bytes must not depend on insertion history.
mod pairs {
    use rustc_hash::FxHashMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<V: Serialize, S: Serializer>(
        map: &FxHashMap<u64, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut pairs: Vec<(&u64, &V)> = map.iter().collect();
        pairs.sort_unstable_by_key(|(key, _)| **key);
        pairs.serialize(serializer)
    }

    pub fn deserialize<'de, V: Deserialize<'de>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<FxHashMap<u64, V>, D::Error> {
        Ok(Vec::<(u64, V)>::deserialize(deserializer)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use loket_router::{Channel, ConversationId, CustomerId, Language, SkillLevel};

    use super::*;

    fn message(required: &[(u16, u8)]) -> Message {
        let mut message =
            Message::new(ConversationId(1), CustomerId(1), Channel::Chat, Language::NL);
        for &(skill, level) in required {
            message.required.push(SkillLevel { skill: SkillId(skill), level });
        }
        message
    }

    #[test]
    fn queues_are_numbered_by_their_sorted_skills_whatever_the_order_or_count() {
        let mut metering = Metering::new(MeterConfig::default()).unwrap();
        let name = |skill: SkillId| Some(["a", "b", "c", "d", "e"][usize::from(skill.0)].into());
        let mut number = |required: &[(u16, u8)]| metering.queue(&message(required), name);
        assert_eq!(number(&[]), 0);
        assert_eq!(number(&[(1, 2), (0, 1)]), 1);
        assert_eq!(number(&[(0, 1), (1, 2)]), 1);
        assert_eq!(number(&[(1, 2), (0, 1)]), 1);
        assert_eq!(number(&[(0, 1), (1, 1), (1, 2)]), 1);
        assert_eq!(number(&[(4, 1), (3, 1), (2, 1), (1, 1), (0, 1)]), 2);
        assert_eq!(number(&[(2, 3)]), 3);
        assert_eq!(number(&[(0, 1), (1, 1), (2, 1), (3, 1), (4, 1)]), 2);
        assert_eq!(number(&[(2, 3)]), 3);
        assert_eq!(metering.queues.name(1), "a:1+b:2");
        assert_eq!(metering.queues.name(2), "a:1+b:1+c:1+d:1+e:1");
    }
}
