//! Driving a router from JSONL lines on a virtual clock.

use std::collections::BTreeMap;
use std::sync::Arc;

use loket_ids::{Id, TenantIds};
use loket_router::{
    AgentId, AgentSpec, Capacity, Clock, ConversationId, CustomerId, Event, EventKind, Language,
    ManualClock, Message, Presence, Router, RouterConfig, RouterError, SkillLevel, Timestamp,
};
use rustc_hash::FxHashSet;
use serde::Serialize;

use loket_metering::MeteringError;
use loket_report::{
    ConfigError, Currency, FactError, MeterConfig, Money, Query, QueryError, Report,
};

use crate::measuring::Measuring;
use crate::wire::{
    AgentLine, At, CapacityLine, DecisionRecord, EventBody, EventLine, MessageLine, SlaRecord,
    WhyRecord,
};

/// A problem with one input line. The replay goes on with the next line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}{}: {message}", field.as_ref().map(|f| format!(", field `{f}`")).unwrap_or_default())]
pub struct LineError {
    /// 1-based line number.
    pub line: u64,
    /// The offending field as a dotted path, where known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl LineError {
    fn new(line: u64, field: impl Into<Option<String>>, message: impl Into<String>) -> LineError {
        LineError { line, field: field.into(), message: message.into() }
    }
}

/// Counts for the summary line.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Input lines read (agents file and events file).
    pub lines: u64,
    /// Lines rejected with an error.
    pub errors: u64,
    /// Lines applied with a warning (a message asking for a skill no agent
    /// has ever had).
    pub warnings: u64,
    /// Messages routed.
    pub messages: u64,
    /// Decision and state-change records written.
    pub decisions: u64,
    /// Records by type and reason, e.g. `assigned/sticky`.
    pub by_kind: BTreeMap<String, u64>,
    /// Agents registered at the end.
    pub agents: usize,
    /// Conversations the router still holds at the end.
    pub open_conversations: usize,
    /// Conversations still waiting at the end.
    pub queued: usize,
    /// Virtual time covered, first to last event, in milliseconds.
    pub virtual_ms: u64,
    /// Replies applied.
    pub replies: u64,
    /// Orders applied.
    pub orders: u64,
    /// SLA events (`sla_warning`, `sla_breached`) written; 0 unless
    /// measuring ([`Replayer::measure`]).
    pub sla_events: u64,
}

/// Replays agents and events into a router on a [`ManualClock`].
#[derive(Debug)]
pub struct Replayer {
    router: Router,
    clock: Arc<ManualClock>,
    ids: TenantIds,
    /// Skills some agent has been registered with, or the configuration
    /// names (overflow groups, opening hours).
    known_skills: FxHashSet<String>,
    warnings: Vec<LineError>,
    /// When customer ids kept for their history were last checked.
    swept_at: u64,
    events: Vec<Event>,
    first_at: Option<u64>,
    summary: Summary,
    measuring: Option<Box<Measuring>>,
}

impl Replayer {
    /// A replayer with a fresh router under `config`; the clock starts at 0
    /// and jumps to the first event's time.
    pub fn new(config: RouterConfig) -> Result<Replayer, RouterError> {
        let clock = Arc::new(ManualClock::new(Timestamp(0)));
        let mut known_skills = FxHashSet::default();
        known_skills.extend(config.business_hours.iter().map(|hours| hours.skill.clone()));
        known_skills.extend(config.overflow.iter().filter_map(|step| match &step.widen {
            loket_router::Widen::SkillGroup { skill } => Some(skill.clone()),
            _ => None,
        }));
        let router = Router::builder().config(config).clock(clock.clone()).build()?;
        Ok(Replayer {
            router,
            clock,
            ids: TenantIds::default(),
            known_skills,
            warnings: Vec::new(),
            swept_at: 0,
            events: Vec::new(),
            first_at: None,
            summary: Summary::default(),
            measuring: None,
        })
    }

    /// Measures from now on: reply times, SLAs and conversions under
    /// `config` (`loket-report`), from the router's decisions and the
    /// `reply` and `order` lines. Call it before the first line; a
    /// conversation opened before it is never measured. SLA events are
    /// then taken with [`Replayer::take_sla_records`], and
    /// [`Replayer::report`] answers queries.
    pub fn measure(&mut self, config: MeterConfig) -> Result<(), ConfigError> {
        self.measuring = Some(Box::new(Measuring::new(config)?));
        Ok(())
    }

    /// The virtual time the replay covered: the first event's time and the
    /// clock's time now (the last event's); `None` before any event.
    pub fn span(&self) -> Option<(u64, u64)> {
        Some((self.first_at?, self.clock.now().0))
    }

    /// Takes the SLA events fired since the last call (none unless
    /// measuring), in order.
    pub fn take_sla_records(&mut self) -> Vec<SlaRecord> {
        self.measuring.as_mut().map(|m| std::mem::take(&mut m.records)).unwrap_or_default()
    }

    /// The report for `query` over what was measured, agents named by the
    /// platform's ids; `None` unless measuring.
    pub fn report(&self, query: &Query) -> Option<Result<Report, QueryError>> {
        let measuring = self.measuring.as_ref()?;
        let agents = &self.ids.agents;
        Some(measuring.metering.report(query, |agent| agents.name(agent.0).map(|n| n.to_string())))
    }

    /// Moves measuring's time to the router's and fires the SLA timers due
    /// by then (for the end of a replay: timers up to the last event fire
    /// on their own).
    pub fn finish_measuring(&mut self, line: u64) {
        let now = self.clock.now().0;
        if let Some(measuring) = self.measuring.as_mut() {
            measuring.metering.advance(now);
        }
        self.flush(line, &mut Vec::new());
    }

    /// The router being driven.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Counts so far.
    pub fn summary(&self) -> Summary {
        let stats = self.router.stats();
        Summary {
            agents: stats.agents,
            open_conversations: stats.conversations,
            queued: stats.queued,
            virtual_ms: self.first_at.map_or(0, |first| self.clock.now().0.saturating_sub(first)),
            ..self.summary.clone()
        }
    }

    /// Takes the warnings of the lines applied since the last call: lines
    /// that applied, but probably not as meant.
    pub fn take_warnings(&mut self) -> Vec<LineError> {
        std::mem::take(&mut self.warnings)
    }

    /// Records that a line was rejected before parsing (too long, not UTF-8).
    pub fn reject(&mut self, line: u64, message: impl Into<String>) -> LineError {
        self.summary.lines += 1;
        self.summary.errors += 1;
        LineError::new(line, None, message)
    }

    /// Applies one line of `agents.jsonl`. Decisions it causes (queued
    /// conversations going to a new agent) are appended to `out`.
    pub fn agent_line(
        &mut self,
        line: u64,
        text: &[u8],
        out: &mut Vec<DecisionRecord>,
    ) -> Result<(), LineError> {
        self.summary.lines += 1;
        let result =
            parse::<AgentLine>(line, text).and_then(|agent| self.upsert(line, &agent, "", out));
        self.summary.errors += u64::from(result.is_err());
        result
    }

    /// Applies one line of `events.jsonl`: moves the clock to the event's
    /// time, fires due timers, then applies the event. Every decision and
    /// state change is appended to `out`.
    pub fn event_line(
        &mut self,
        line: u64,
        text: &[u8],
        out: &mut Vec<DecisionRecord>,
    ) -> Result<(), LineError> {
        self.summary.lines += 1;
        let result = parse::<EventLine>(line, text).and_then(|event| self.apply(line, event, out));
        self.summary.errors += u64::from(result.is_err());
        result
    }

    fn apply(
        &mut self,
        line: u64,
        event: EventLine,
        out: &mut Vec<DecisionRecord>,
    ) -> Result<(), LineError> {
        let at = match &event.at {
            At::Millis(ms) => *ms,
            At::Text(text) => parse_time(text).ok_or_else(|| {
                LineError::new(line, "at".to_string(), format!("not an RFC 3339 time: {text:?}"))
            })?,
        };
        let now = self.clock.now().0;
        if self.first_at.is_some() && at < now {
            return Err(LineError::new(
                line,
                "at".to_string(),
                format!("time goes backwards: {at} is before {now}"),
            ));
        }
        self.first_at.get_or_insert(at);
        self.clock.set(Timestamp(at));
        self.router.advance(&mut self.events);
        self.flush(line, out);
        let router_error = |error: RouterError, field: &str| {
            LineError::new(line, field.to_string(), error.to_string())
        };
        let accept = matches!(event.body, EventBody::Accept { .. });
        match event.body {
            EventBody::Message(message) => {
                let routed = self.message(line, &message)?;
                if let Some(measuring) = self.measuring.as_mut() {
                    let router = &self.router;
                    let intent = message.intent.as_deref().unwrap_or("");
                    measuring
                        .metering
                        .message(at, &routed, intent, |skill| router.skill_name(skill))
                        .map_err(|e| LineError::new(line, "intent".to_string(), e.to_string()))?;
                }
                self.summary.messages += 1;
                self.router.route(&routed, &mut self.events);
                let router = &self.router;
                self.ids.routed(routed.conversation.0, routed.customer.0, |customer| {
                    router.remembered_until(CustomerId(customer)).map(|until| until.0)
                });
                let unknown: Vec<&String> =
                    message.skills.keys().filter(|s| !self.known_skills.contains(*s)).collect();
                if !unknown.is_empty() {
                    let field = format!("skills.{}", unknown[0]);
                    let message = format!(
                        "warning: no agent has ever had skill {:?}; the conversation waits until one does",
                        unknown[0]
                    );
                    self.summary.warnings += 1;
                    self.warnings.push(LineError::new(line, field, message));
                }
            }
            EventBody::Close { conversation } => {
                let id = self.existing_conversation(line, &conversation)?;
                self.router
                    .close(id, &mut self.events)
                    .map_err(|e| router_error(e, "conversation"))?;
            }
            EventBody::Agent { agent } => self.upsert(line, &agent, "agent.", out)?,
            EventBody::Presence { agent, presence } => {
                let id = self.existing_agent(line, &agent)?;
                self.router
                    .set_presence(id, presence, &mut self.events)
                    .map_err(|e| router_error(e, "agent"))?;
                self.measure_agent(id);
            }
            EventBody::Logout { agent } => {
                let id = self.existing_agent(line, &agent)?;
                self.router
                    .set_presence(id, Presence::Offline, &mut self.events)
                    .map_err(|e| router_error(e, "agent"))?;
                self.measure_agent(id);
            }
            EventBody::Capacity { agent, capacity } => {
                let id = self.existing_agent(line, &agent)?;
                let capacity = capacity_of(line, &capacity, "capacity.")?;
                self.router
                    .set_capacity(id, capacity, &mut self.events)
                    .map_err(|e| router_error(e, "capacity"))?;
                self.measure_agent(id);
            }
            EventBody::Skills { agent, skills } => {
                let id = self.existing_agent(line, &agent)?;
                let levels = self.skills(line, &skills, "skills.")?;
                self.router
                    .set_skills(id, levels, &mut self.events)
                    .map_err(|e| router_error(e, "skills"))?;
                self.known_skills.extend(skills.into_keys());
            }
            EventBody::Remove { agent } => {
                let id = self.existing_agent(line, &agent)?;
                self.router
                    .remove_agent(id, &mut self.events)
                    .map_err(|e| router_error(e, "agent"))?;
                self.measure_agent(id);
            }
            EventBody::Accept { conversation, agent }
            | EventBody::Decline { conversation, agent } => {
                let conversation_id = self.existing_conversation(line, &conversation)?;
                let agent_id = self.existing_agent(line, &agent)?;
                let result = if accept {
                    self.router.accept_offer(conversation_id, agent_id, &mut self.events)
                } else {
                    self.router.decline_offer(conversation_id, agent_id, &mut self.events)
                };
                result.map_err(|e| router_error(e, "conversation"))?;
            }
            EventBody::Transfer { conversation, agent } => {
                let conversation_id = self.existing_conversation(line, &conversation)?;
                let agent_id = self.existing_agent(line, &agent)?;
                self.router
                    .transfer(conversation_id, agent_id, &mut self.events)
                    .map_err(|e| router_error(e, "agent"))?;
            }
            EventBody::Reply { conversation, agent } => {
                let conversation_id = self.measured_conversation(line, &conversation)?;
                let agent_id = self.existing_agent(line, &agent)?;
                if let Some(measuring) = self.measuring.as_mut() {
                    measuring
                        .metering
                        .reply(at, conversation_id, agent_id)
                        .map_err(|e| measuring_error(line, &conversation, e))?;
                }
                self.summary.replies += 1;
            }
            EventBody::Order { conversation, value, currency } => {
                let conversation_id = self.measured_conversation(line, &conversation)?;
                let currency = Currency::parse(&currency).ok_or_else(|| {
                    LineError::new(
                        line,
                        "currency".to_string(),
                        format!("{currency:?} is not a three-letter currency code"),
                    )
                })?;
                let value = Money::from_decimal(value, currency)
                    .filter(|money| money.minor >= 0)
                    .ok_or_else(|| {
                    LineError::new(
                        line,
                        "value".to_string(),
                        format!("{value} is not an amount of 0 or more"),
                    )
                })?;
                if let Some(measuring) = self.measuring.as_mut() {
                    measuring
                        .metering
                        .order(at, conversation_id, value)
                        .map_err(|e| measuring_error(line, &conversation, e))?;
                }
                self.summary.orders += 1;
            }
            EventBody::Tick => {}
        }
        self.flush(line, out);
        Ok(())
    }

    /// A conversation a reply or an order names: an open one, or (when
    /// measuring) one closed within the order window.
    fn measured_conversation(
        &self,
        line: u64,
        conversation: &Id,
    ) -> Result<ConversationId, LineError> {
        if let Some(measuring) = &self.measuring
            && let Some(key) = measuring.closed_key(&conversation.to_string())
            && self.ids.conversations.find(conversation).is_none()
        {
            return Ok(ConversationId(key));
        }
        self.existing_conversation(line, conversation)
    }

    fn upsert(
        &mut self,
        line: u64,
        agent: &AgentLine,
        prefix: &str,
        out: &mut Vec<DecisionRecord>,
    ) -> Result<(), LineError> {
        let mut spec = AgentSpec::new(AgentId(0));
        spec.kind = agent.kind;
        spec.skills = self.skills(line, &agent.skills, &format!("{prefix}skills."))?;
        spec.languages = agent
            .languages
            .iter()
            .enumerate()
            .map(|(i, code)| {
                code.parse::<Language>().map_err(|e| {
                    LineError::new(line, format!("{prefix}languages[{i}]"), e.to_string())
                })
            })
            .collect::<Result<_, _>>()?;
        if let Some(capacity) = &agent.capacity {
            spec.capacity = capacity_of(line, capacity, &format!("{prefix}capacity."))?;
        }
        spec.presence = agent.presence.unwrap_or(Presence::Available);
        spec.team = agent.team.clone();
        spec.tenant = agent.tenant.clone();
        // Intern only once the line is known to be good.
        let id = AgentId(self.ids.agents.intern(&agent.id));
        spec.id = id;
        self.router
            .upsert_agent(spec, &mut self.events)
            .map_err(|e| LineError::new(line, format!("{prefix}id"), e.to_string()))?;
        self.measure_agent(id);
        self.known_skills.extend(agent.skills.keys().cloned());
        self.flush(line, out);
        Ok(())
    }

    fn skills(
        &self,
        line: u64,
        skills: &BTreeMap<String, i64>,
        prefix: &str,
    ) -> Result<Vec<SkillLevel>, LineError> {
        skills
            .iter()
            .map(|(name, &level)| {
                let field = || format!("{prefix}{name}");
                let level =
                    u8::try_from(level).ok().filter(|l| (1..=10).contains(l)).ok_or_else(|| {
                        LineError::new(
                            line,
                            field(),
                            format!("proficiency {level} is outside 1..=10"),
                        )
                    })?;
                let skill = self
                    .router
                    .skill(name)
                    .map_err(|e| LineError::new(line, field(), e.to_string()))?;
                Ok(SkillLevel { skill, level })
            })
            .collect()
    }

    fn message(&mut self, line: u64, message: &MessageLine) -> Result<Message, LineError> {
        let language = message
            .language
            .parse::<Language>()
            .map_err(|e| LineError::new(line, "language".to_string(), e.to_string()))?;
        let required = self.skills(line, &message.skills, "skills.")?;
        let tier = match message.tier {
            None => 0,
            Some(tier) => u8::try_from(tier).map_err(|_| {
                LineError::new(line, "tier".to_string(), format!("tier {tier} is outside 0..=255"))
            })?,
        };
        let buying_intent = match message.buying_intent {
            None => 0.0,
            Some(value) if (0.0..=1.0).contains(&value) => value as f32,
            Some(value) => {
                return Err(LineError::new(
                    line,
                    "buying_intent".to_string(),
                    format!("{value} is outside 0..=1"),
                ));
            }
        };
        let mut routed = Message::new(
            ConversationId(self.ids.conversations.intern(&message.conversation)),
            CustomerId(self.ids.customers.intern(&message.customer)),
            message.channel,
            language,
        );
        routed.required.extend(required);
        routed.tier = tier;
        routed.buying_intent = buying_intent;
        routed.signals = message.signals;
        Ok(routed)
    }

    fn existing_agent(&self, line: u64, agent: &Id) -> Result<AgentId, LineError> {
        self.ids.agents.find(agent).map(AgentId).ok_or_else(|| {
            LineError::new(line, "agent".to_string(), format!("unknown agent \"{agent}\""))
        })
    }

    fn existing_conversation(
        &self,
        line: u64,
        conversation: &Id,
    ) -> Result<ConversationId, LineError> {
        self.ids.conversations.find(conversation).map(ConversationId).ok_or_else(|| {
            LineError::new(
                line,
                "conversation".to_string(),
                format!("unknown conversation \"{conversation}\""),
            )
        })
    }

    /// Turns the router's events into records with the platform's ids, then
    /// lets go of the ids of conversations the router forgot.
    /// After a line changed `agent`, brings measuring's view of it (team,
    /// kind, staffed capacity) in line with the router's.
    fn measure_agent(&mut self, agent: AgentId) {
        if let Some(measuring) = self.measuring.as_mut() {
            let at = self.clock.now().0.max(measuring.metering.meter().now());
            measuring.metering.agent_changed(at, &self.router, agent);
        }
    }

    fn flush(&mut self, line: u64, out: &mut Vec<DecisionRecord>) {
        if let Some(measuring) = self.measuring.as_mut() {
            measuring.metering.decisions(&self.events);
            measuring.metering.advance(self.clock.now().0);
            for event in &self.events {
                if let (Some(conversation), EventKind::Closed) = (event.conversation, event.kind)
                    && let Some(name) = self.ids.conversations.name(conversation.0)
                {
                    measuring.closed(&name.to_string(), conversation.0, event.at.0);
                }
            }
            measuring.expire(self.clock.now().0);
            for event in measuring.metering.take_sla_events() {
                measuring.records.push(SlaRecord {
                    line,
                    at: event.at,
                    conversation: self
                        .ids
                        .conversation_name(event.conversation)
                        .map(|name| name.to_string()),
                    kind: event.kind,
                    clock: event.clock,
                    target_ms: event.target_ms,
                });
                self.summary.sla_events += 1;
            }
        }
        let router = &self.router;
        let skill_name = |skill| router.skill_name(skill);
        for event in &self.events {
            let record = DecisionRecord {
                line,
                at: event.at.0,
                conversation: event
                    .conversation
                    .and_then(|c| self.ids.conversations.name(c.0))
                    .map(|name| name.to_string()),
                agent: event.agent.and_then(|a| self.ids.agents.name(a.0)).map(|n| n.to_string()),
                kind: event.kind,
                skill_name: match event.kind {
                    EventKind::OutsideBusinessHours { skill } => skill_name(skill),
                    _ => None,
                },
                why: WhyRecord::of(&event.kind, skill_name),
            };
            *self.summary.by_kind.entry(kind_label(&event.kind)).or_default() += 1;
            self.summary.decisions += 1;
            out.push(record);
        }
        let remembered =
            |customer| router.remembered_until(CustomerId(customer)).map(|until| until.0);
        for event in self.events.drain(..) {
            if let Some(conversation) = event.conversation
                && matches!(event.kind, EventKind::Closed | EventKind::Released | EventKind::Erased)
                && router.conversation(conversation).is_none()
            {
                self.ids.forgotten(conversation.0, remembered);
            }
        }
        let now = self.clock.now().0;
        if now >= self.swept_at.saturating_add(SWEEP_EVERY_MS) {
            self.swept_at = now;
            self.ids.sweep(now, remembered);
        }
    }
}

/// A reply or order the meter refused, naming the conversation as the
/// platform does.
fn measuring_error(line: u64, conversation: &Id, error: MeteringError) -> LineError {
    let message = match error {
        MeteringError::Fact(FactError::Closed(_)) => {
            format!("conversation \"{conversation}\" is closed")
        }
        MeteringError::Fact(FactError::UnknownConversation(_)) => {
            format!("conversation \"{conversation}\" was never opened or closed too long ago")
        }
        other => other.to_string(),
    };
    LineError::new(line, "conversation".to_string(), message)
}

/// How often (virtual time) customer ids kept for their history are
/// checked again.
const SWEEP_EVERY_MS: u64 = 60_000;

/// `type/reason` (for example `assigned/sticky`), for counting events by kind.
pub fn kind_label(kind: &EventKind) -> String {
    let value = serde_json::to_value(kind).unwrap_or_default();
    let kind = value.get("type").and_then(|v| v.as_str()).unwrap_or("event");
    match value.get("reason").and_then(|v| v.as_str()) {
        Some(reason) => format!("{kind}/{reason}"),
        None => kind.to_owned(),
    }
}

fn parse<'a, T: serde::Deserialize<'a>>(line: u64, text: &'a [u8]) -> Result<T, LineError> {
    let text = std::str::from_utf8(text)
        .map_err(|e| LineError::new(line, None, format!("not UTF-8 (byte {})", e.valid_up_to())))?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let field = (path != "." && !path.is_empty()).then_some(path);
        let inner = error.into_inner();
        LineError::new(line, field, format!("{inner}"))
    })?;
    deserializer.end().map_err(|e| {
        LineError::new(line, None, format!("trailing characters after the JSON object: {e}"))
    })?;
    Ok(value)
}

fn capacity_of(line: u64, capacity: &CapacityLine, prefix: &str) -> Result<Capacity, LineError> {
    capacity
        .to_capacity()
        .map_err(|error| LineError::new(line, format!("{prefix}{}", error.field), error.message))
}

fn parse_time(text: &str) -> Option<u64> {
    At::Text(text.to_owned()).millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(agents: &str, events: &str) -> (Vec<DecisionRecord>, Vec<LineError>, Replayer) {
        let mut replayer = Replayer::new(RouterConfig::default()).unwrap();
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for (i, line) in agents.lines().enumerate() {
            if let Err(e) = replayer.agent_line(i as u64 + 1, line.as_bytes(), &mut out) {
                errors.push(e);
            }
        }
        for (i, line) in events.lines().enumerate() {
            if let Err(e) = replayer.event_line(i as u64 + 1, line.as_bytes(), &mut out) {
                errors.push(e);
            }
        }
        (out, errors, replayer)
    }

    const AGENTS: &str = r#"{"id": "anna", "skills": {"plants": 8}, "languages": ["nl", "en"], "capacity": {"chat": 2}}
{"id": 7, "kind": "bot", "languages": ["nl"], "capacity": {"chat": 50}}"#;

    #[test]
    fn replays_messages_and_closes_with_the_platform_ids() {
        let events = r#"{"at": 1000, "type": "message", "conversation": "c1", "customer": "k1", "channel": "chat", "language": "nl", "skills": {"plants": 5}, "text": "hebben jullie bananenbomen?"}
{"at": 1500, "type": "message", "conversation": "c1", "customer": "k1", "channel": "chat", "language": "nl"}
{"at": "1970-01-01T00:00:02Z", "type": "close", "conversation": "c1"}"#;
        let (out, errors, replayer) = replay(AGENTS, events);
        assert!(errors.is_empty(), "{errors:?}");
        let kinds: Vec<String> = out.iter().map(|r| kind_label(&r.kind)).collect();
        assert_eq!(kinds, vec!["assigned/skill_match", "assigned/sticky", "closed", "released"]);
        assert_eq!(out[0].agent.as_deref(), Some("anna"));
        assert_eq!(out[0].conversation.as_deref(), Some("c1"));
        assert_eq!(out[2].at, 2000);
        let summary = replayer.summary();
        assert_eq!((summary.messages, summary.decisions, summary.agents), (2, 4, 2));
        assert_eq!(summary.virtual_ms, 1000);
    }

    #[test]
    fn bad_lines_name_line_and_field_and_the_run_goes_on() {
        let agents = r#"{"id": "bob", "capacity": {"chat": -3}}
{"id": "carl", "skills": {"plants": 11}}
{"id": "dora", "languages": ["dutch"]}
not json"#;
        let events = r#"{"at": 10, "type": "presence", "agent": "zed", "presence": "away"}
{"at": 20, "type": "message", "conversation": "c", "customer": "k", "channel": "pigeon", "language": "nl"}
{"at": 5, "type": "tick"}
{"at": 30, "type": "close", "conversation": "nope"}
{"at": 40, "type": "message", "conversation": "c", "customer": "k", "channel": "chat", "language": "nl", "buying_intent": 2}"#;
        let (_, errors, replayer) = replay(agents, events);
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(shown[0], "line 1, field `capacity.chat`: negative capacity -3");
        assert_eq!(shown[1], "line 2, field `skills.plants`: proficiency 11 is outside 1..=10");
        assert!(
            shown[2].starts_with("line 3, field `languages[0]`: invalid language code"),
            "{}",
            shown[2]
        );
        assert!(shown[3].starts_with("line 4: expected ident"), "{}", shown[3]);
        assert_eq!(shown[4], "line 1, field `agent`: unknown agent \"zed\"");
        assert!(shown[5].starts_with("line 2"), "{}", shown[5]);
        assert!(shown[5].contains("pigeon"), "{}", shown[5]);
        assert_eq!(shown[6], "line 3, field `at`: time goes backwards: 5 is before 10");
        assert_eq!(shown[7], "line 4, field `conversation`: unknown conversation \"nope\"");
        assert_eq!(shown[8], "line 5, field `buying_intent`: 2 is outside 0..=1");
        assert_eq!(replayer.summary().errors, 9);
        assert_eq!(replayer.router().stats().agents, 0);
    }

    #[test]
    fn numbers_are_their_decimal_strings_and_names_go_with_their_conversations() {
        let agents =
            r#"{"id": 7, "skills": {"plants": 8}, "languages": ["nl"], "capacity": {"chat": 5}}"#;
        let events = r#"{"at": 1000, "type": "message", "conversation": "0b8e0c8e-5a4f-4f7e-9d5c-1f2a3b4c5d6e", "customer": "+31612345678", "channel": "chat", "language": "nl"}
{"at": 1001, "type": "message", "conversation": 42, "customer": "+31612345678", "channel": "chat", "language": "nl"}
{"at": 1002, "type": "message", "conversation": "42", "customer": 9, "channel": "chat", "language": "nl"}
{"at": 1003, "type": "transfer", "conversation": 42, "agent": "7"}
{"at": 1004, "type": "close", "conversation": "0b8e0c8e-5a4f-4f7e-9d5c-1f2a3b4c5d6e"}
{"at": 1005, "type": "close", "conversation": "42"}"#;
        let (out, errors, replayer) = replay(agents, events);
        assert!(errors.is_empty(), "{errors:?}");
        let conversations: Vec<&str> =
            out.iter().filter_map(|r| r.conversation.as_deref()).collect();
        assert_eq!(conversations[0], "0b8e0c8e-5a4f-4f7e-9d5c-1f2a3b4c5d6e");
        assert_eq!(conversations[1..3], ["42", "42"], "{conversations:?}");
        assert!(out.iter().filter_map(|r| r.agent.as_deref()).all(|a| a == "7"));
        let sticky = &out[2];
        assert_eq!(kind_label(&sticky.kind), "assigned/sticky", "42 and \"42\" are one");
        // Closed and forgotten: the conversation's id goes; the customer's
        // stays while affinity can still use their history.
        assert!(replayer.ids.conversations.is_empty());
        assert_eq!(replayer.ids.customers.find_str("+31612345678"), Some(loket_ids::TEXT_BASE));
        assert_eq!(replayer.ids.lingering(), 1);
    }

    #[test]
    fn a_waiting_conversation_says_why_and_an_unknown_skill_warns() {
        let events = r#"{"at": 1000, "type": "message", "conversation": "c1", "customer": "k1", "channel": "chat", "language": "nl", "skills": {"plants": 9}}
{"at": 1001, "type": "message", "conversation": "c2", "customer": "k2", "channel": "chat", "language": "nl", "skills": {"tools": 1}}"#;
        let (out, errors, mut replayer) = replay(AGENTS, events);
        assert!(errors.is_empty(), "{errors:?}");
        let why = out[0].why.as_ref().expect("queued with a why");
        assert_eq!(
            (why.code, why.skill.as_deref(), why.level),
            ("no_skill", Some("plants"), Some(9))
        );
        assert_eq!(why.message, "no agent has skill plants at level 9 or higher");
        let line = serde_json::to_value(&out[1]).unwrap();
        assert_eq!(line["why"]["code"], "no_skill");
        assert_eq!(line["why"]["skill"], "tools");
        let warnings = replayer.take_warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].line, 2);
        assert_eq!(warnings[0].field.as_deref(), Some("skills.tools"));
        assert!(warnings[0].message.contains("\"tools\""), "{}", warnings[0].message);
        assert_eq!(replayer.summary().warnings, 1);
    }

    #[test]
    fn a_first_message_asking_for_a_person_skips_the_bot() {
        let config: RouterConfig = serde_json::from_str(r#"{"bot_first": true}"#).unwrap();
        let mut replayer = Replayer::new(config).unwrap();
        let mut out = Vec::new();
        let agents = [
            r#"{"id": "bot", "kind": "bot", "languages": ["nl"], "capacity": {"chat": 50}}"#,
            r#"{"id": "anna", "skills": {"sales": 5}, "languages": ["nl"]}"#,
        ];
        for (i, line) in agents.iter().enumerate() {
            replayer.agent_line(i as u64 + 1, line.as_bytes(), &mut out).unwrap();
        }
        let message = r#"{"at": 1000, "type": "message", "conversation": "c1", "customer": "k1", "channel": "chat", "language": "nl", "skills": {"sales": 1}, "signals": {"human_request": true}, "buying_intent": 0.95}"#;
        replayer.event_line(1, message.as_bytes(), &mut out).unwrap();
        let kinds: Vec<String> = out.iter().map(|r| kind_label(&r.kind)).collect();
        assert_eq!(kinds, ["escalated", "assigned/escalation"]);
        let escalated = serde_json::to_value(&out[0]).unwrap();
        assert_eq!(escalated["trigger"], "human_request");
        assert_eq!(out[1].agent.as_deref(), Some("anna"));
    }

    #[test]
    fn rfc3339_times_parse_with_offsets() {
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_time("2026-11-23T10:00:00+01:00"), Some(1_795_424_400_000));
        assert_eq!(parse_time("2026-11-23T09:00:00.250Z"), Some(1_795_424_400_250));
        assert_eq!(parse_time("2026-13-23T09:00:00Z"), None);
        assert_eq!(parse_time("yesterday"), None);
    }
}
