//! Taking a [`RouterSnapshot`] of a router and restoring one, checked.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use loket_capacity::{CHANNELS, Channel, MAX_PER_CHANNEL, MAX_TOTAL};

use super::*;
use crate::agent::Capacity;
use crate::roster::{MAX_AGENTS, SlotState};
use crate::snapshot::{
    RouterSnapshot, SNAPSHOT_VERSION, SnapshotAgent, SnapshotAgentSpec, SnapshotBacklog,
    SnapshotConversation, SnapshotCustomer, SnapshotError, SnapshotHolder, SnapshotPool,
    SnapshotServed, SnapshotSkill, SnapshotTimer, SnapshotTimerKind, SnapshotWaiting, quote,
};

impl Router {
    /// Everything that influences the router's future behaviour, as plain
    /// data: skills, agents with their hot state, conversations, the backlog,
    /// pending timers, customer histories and the round-robin cursor. See
    /// [`crate::snapshot`] and [`RouterBuilder::restore`].
    ///
    /// # Contract
    ///
    /// The caller guarantees that no other thread changes the router while
    /// the snapshot is taken (the daemon applies every command of a tenant on
    /// one thread and snapshots on that thread); under that guarantee the
    /// snapshot is consistent. Taken while another thread routes, it may mix
    /// states from before and after that thread's change.
    pub fn snapshot(&self) -> RouterSnapshot {
        let inner = &*self.inner;
        let skills = inner.skills.read().names.clone();
        let agents = inner.roster.export().into_iter().enumerate().map(agent_out).collect();
        let mut conversations: Vec<SnapshotConversation> = Vec::new();
        inner.conversations.for_each(|id, conv| conversations.push(conversation_out(id, conv)));
        conversations.sort_unstable_by_key(|c| c.id);
        let backlog = {
            let backlog = inner.backlog.lock();
            let mut entries: Vec<(QueueKey, ConversationId, &Waiting)> =
                backlog.conversations().map(|(id, waiting)| (waiting.key, *id, waiting)).collect();
            entries.sort_unstable_by_key(|(key, id, _)| (*key, *id));
            SnapshotBacklog {
                next_seq: backlog.next_seq(),
                entries: entries.into_iter().map(|(_, id, w)| waiting_out(id, w)).collect(),
            }
        };
        let mut timers: Vec<SnapshotTimer> =
            inner.timers.lock().iter().map(|Reverse(timer)| timer_out(timer)).collect();
        timers.sort_unstable_by_key(|t| (t.at, t.seq));
        let mut customers: Vec<SnapshotCustomer> = inner
            .customers
            .to_vec()
            .into_iter()
            .map(|(customer, history)| SnapshotCustomer {
                customer: customer.0,
                served: history
                    .iter()
                    .map(|(slot, at)| SnapshotServed {
                        agent: inner.roster.cell(slot).id().0,
                        slot,
                        at: at.0,
                    })
                    .collect(),
            })
            .collect();
        customers.sort_unstable_by_key(|c| c.customer);
        RouterSnapshot {
            version: SNAPSHOT_VERSION,
            taken_at: inner.clock.now().0,
            skills,
            agents,
            conversations,
            backlog,
            timers,
            timer_seq: inner.timer_seq.load(Ordering::Relaxed),
            customers,
            round_robin: inner.round_robin.load(Ordering::Relaxed),
            customers_swept_at: inner.customers_swept_at.load(Ordering::Relaxed),
        }
    }
}

impl RouterBuilder {
    /// Builds a router in the state `snapshot` describes, with this builder's
    /// configuration and clock: given the same configuration and a clock at
    /// the same time, it behaves exactly as the router the snapshot was taken
    /// of would have (the same events for the same operations).
    ///
    /// The snapshot is checked first and refused, with a
    /// [`RouterError::Snapshot`] naming the problem, if it is not one a
    /// router could have written: another format version; duplicate skill
    /// names or skill ids past them; agent slots not listed `0, 1, 2, ...`
    /// or registered agent ids twice; agent specs the router would refuse;
    /// holders, exclusions, preferred agents or histories naming slots that
    /// do not exist or another agent; histories longer than four agents or
    /// listing a slot twice; loads that differ from the
    /// conversations held or exceed what a capacity cell counts; holding
    /// lists that differ from the holders; queued conversations not in the
    /// backlog exactly once; duplicate or future sequence numbers. Skill ids
    /// must come from [`Router::skill`]: a snapshot of a router that used
    /// raw ids past its interned names does not restore.
    ///
    /// The configuration's skill names (opening hours, overflow groups) are
    /// interned after the snapshot's. If the configuration has opening hours
    /// but the snapshot no opening-hours timer, the chain of those timers is
    /// started from the clock's time.
    pub fn restore(self, snapshot: RouterSnapshot) -> Result<Router, RouterError> {
        let checked = check(snapshot)?;
        let parts = self.prepare(checked.skills)?;
        let roster = Roster::new();
        roster.restore(checked.slots);
        let mut inner = parts.into_inner(roster);
        inner.incarnation_base = checked.incarnation_base;
        for (id, conv) in checked.conversations {
            inner.conversations.insert(id, conv);
        }
        // A customer whose history names no agent is stored as none: the
        // same for affinity, and a router's own snapshots never list one.
        for (customer, history) in checked.customers {
            inner.customers.insert(customer, history);
        }
        {
            let mut backlog = Backlog::resuming(checked.next_seq);
            for (id, waiting) in checked.waiting {
                backlog.insert(id, waiting);
            }
            *inner.waiting.get_mut() = backlog.len();
            *inner.backlog.get_mut() = backlog;
        }
        let has_hours_timer = checked.timers.iter().any(|t| t.kind == TimerKind::HoursChange);
        *inner.timers.get_mut() = checked.timers.into_iter().map(Reverse).collect();
        *inner.timer_seq.get_mut() = checked.timer_seq;
        *inner.round_robin.get_mut() = checked.round_robin;
        *inner.customers_swept_at.get_mut() = checked.customers_swept_at;
        let router = Router { inner: Arc::new(inner) };
        if !has_hours_timer {
            let now = router.inner.clock.now();
            router.inner.schedule_hours(now);
        }
        Ok(router)
    }
}

// ----- Out: live state to snapshot --------------------------------------------

fn skill_out(skill: &SkillLevel) -> SnapshotSkill {
    SnapshotSkill { skill: skill.skill.0, level: skill.level }
}

fn agent_out((slot, state): (usize, SlotState)) -> SnapshotAgent {
    let spec = state.spec;
    let mut capacity = [0; CHANNELS];
    for channel in Channel::ALL {
        capacity[channel.index()] = spec.capacity.channel(channel);
    }
    SnapshotAgent {
        slot: slot as u32,
        removed: state.removed,
        spec: SnapshotAgentSpec {
            id: spec.id.0,
            kind: spec.kind.into(),
            skills: spec.skills.iter().map(skill_out).collect(),
            languages: spec.languages.iter().map(|l| l.as_str().to_owned()).collect(),
            capacity,
            capacity_total: spec.capacity.total,
            presence: spec.presence.into(),
            team: spec.team,
            tenant: spec.tenant,
        },
        missed_offers: state.missed_offers,
        last_assigned_ms: state.last_assigned_ms,
        load: state.load,
        holding: state.holding.iter().map(|c| c.0).collect(),
    }
}

fn conversation_out(id: ConversationId, conv: &Conversation) -> SnapshotConversation {
    SnapshotConversation {
        id: id.0,
        customer: conv.customer.0,
        channel: conv.channel.into(),
        language: conv.language.as_str().to_owned(),
        state: conv.state.into(),
        holder: conv.holder.map(|h| SnapshotHolder { slot: h.slot, agent: h.agent.0 }),
        required: conv.required.iter().map(skill_out).collect(),
        tier: conv.tier,
        overflow_step: conv.overflow_step,
        escalated: conv.escalated,
        boosted: conv.boosted,
        buying_intent: conv.buying_intent,
        created_at: conv.created_at.0,
        last_message_at: conv.last_message_at.0,
        first_queued_at: conv.first_queued_at.map(|t| t.0),
        excluded: conv.excluded,
        generation: conv.generation,
        messages: conv.messages,
    }
}

fn waiting_out(id: ConversationId, waiting: &Waiting) -> SnapshotWaiting {
    SnapshotWaiting {
        conversation: id.0,
        rank: waiting.key.rank,
        seq: waiting.key.seq,
        channel: waiting.need.channel.into(),
        language: waiting.need.language.as_str().to_owned(),
        required: waiting.need.required.iter().map(skill_out).collect(),
        pool: waiting.need.pool.into(),
        priority: waiting.priority,
        enqueued_at: waiting.enqueued_at.0,
        preferred: waiting.preferred.map(|(slot, _)| slot),
        preferred_until: waiting.preferred.map_or(0, |(_, until)| until.0),
        excluded: waiting.excluded,
        generation: waiting.generation,
    }
}

fn timer_out(timer: &Timer) -> SnapshotTimer {
    SnapshotTimer {
        at: timer.at.0,
        seq: timer.seq,
        kind: timer.kind.into(),
        conversation: timer.conversation.0,
        generation: timer.generation,
    }
}

crate::snapshot::mirror!(Pool <=> SnapshotPool { Humans, HumansOrBots, Bots });
crate::snapshot::mirror!(TimerKind <=> SnapshotTimerKind {
    OfferExpiry,
    WrapUpEnd,
    Overflow,
    AffinityEnd,
    HoursChange,
});

// ----- In: snapshot to live state, checked -------------------------------------

/// A snapshot turned into live values, every cross-reference checked.
struct Checked {
    skills: SkillNames,
    slots: Vec<(SlotState, loket_capacity::Limits)>,
    conversations: Vec<(ConversationId, Conversation)>,
    next_seq: u64,
    waiting: Vec<(ConversationId, Waiting)>,
    timers: Vec<Timer>,
    timer_seq: u64,
    customers: Vec<(CustomerId, History)>,
    round_robin: u32,
    customers_swept_at: u64,
    incarnation_base: u32,
}

fn language(code: &str) -> Result<crate::ids::Language, SnapshotError> {
    // `Language::from_str` also takes regions (`nl-BE`); a snapshot holds
    // exactly what the router writes: two lowercase letters.
    let bad = || SnapshotError::InvalidLanguage(quote(code));
    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(bad());
    }
    crate::ids::Language::from_str(code).map_err(|_| bad())
}

fn skill_in(
    skill: &SnapshotSkill,
    interned: usize,
    what: &'static str,
) -> Result<SkillLevel, SnapshotError> {
    if usize::from(skill.skill) >= interned {
        return Err(SnapshotError::UnknownSkill { what, skill: skill.skill, interned });
    }
    Ok(SkillLevel { skill: SkillId(skill.skill), level: skill.level })
}

/// Conversation and backlog requirements: known skills, minimums 1..=10,
/// each skill once (as the router normalises them).
fn requirements_in(
    required: &[SnapshotSkill],
    interned: usize,
    conversation: u64,
    what: &'static str,
) -> Result<Requirements, SnapshotError> {
    let mut out = Requirements::new();
    for skill in required {
        let skill = skill_in(skill, interned, what)?;
        if !(1..=10).contains(&skill.level) || out.iter().any(|r| r.skill == skill.skill) {
            return Err(SnapshotError::InvalidConversation {
                conversation,
                problem: "requirements are not normalised (minimums 1..=10, each skill once)",
            });
        }
        out.push(skill);
    }
    Ok(out)
}

fn check_slot(slot: u32, slots: usize, what: &'static str) -> Result<u32, SnapshotError> {
    if (slot as usize) < slots {
        Ok(slot)
    } else {
        Err(SnapshotError::SlotOutOfRange { what, slot, slots })
    }
}

/// Checks a snapshot section by section, in the order the sections build on
/// each other (skills, agents, conversations, holdings, backlog, timers,
/// customers); the first problem found is the error.
fn check(snapshot: RouterSnapshot) -> Result<Checked, SnapshotError> {
    if snapshot.version != SNAPSHOT_VERSION {
        return Err(SnapshotError::UnsupportedVersion {
            found: snapshot.version,
            supported: SNAPSHOT_VERSION,
        });
    }
    let skills = check_skills(snapshot.skills)?;
    let interned = skills.names.len();
    let agents = check_agents(snapshot.agents, interned)?;
    // The incarnations (a generation's upper half) the snapshot uses.
    let mut incarnations: Vec<u32> = Vec::new();
    let conversations =
        check_conversations(snapshot.conversations, &agents, interned, &mut incarnations)?;
    check_holdings(&agents, &conversations)?;
    let next_seq = snapshot.backlog.next_seq;
    let waiting =
        check_backlog(snapshot.backlog, &conversations, &agents, interned, &mut incarnations)?;
    let timer_seq = snapshot.timer_seq;
    let timers = check_timers(snapshot.timers, timer_seq, &mut incarnations)?;
    let customers = check_customers(snapshot.customers, &agents)?;
    Ok(Checked {
        skills,
        slots: agents.slots,
        conversations: conversations.into_snapshot_order(),
        next_seq,
        waiting,
        timers,
        timer_seq,
        customers,
        round_robin: snapshot.round_robin,
        customers_swept_at: snapshot.customers_swept_at,
        incarnation_base: incarnation_base(incarnations),
    })
}

/// Skill names: at most one per possible id, none twice.
fn check_skills(names: Vec<String>) -> Result<SkillNames, SnapshotError> {
    if names.len() > usize::from(u16::MAX) + 1 {
        return Err(SnapshotError::TooManySkills(names.len()));
    }
    let mut skills = SkillNames::default();
    for (id, name) in names.into_iter().enumerate() {
        if skills.by_name.contains_key(&name) {
            return Err(SnapshotError::DuplicateSkillName(quote(&name)));
        }
        skills.by_name.insert(name.clone(), SkillId(id as u16));
        skills.names.push(name);
    }
    Ok(skills)
}

/// The agents section, checked: every slot's live state and limits, and the
/// agent id registered in each slot (a removed agent's too).
struct CheckedAgents {
    slots: Vec<(SlotState, loket_capacity::Limits)>,
    ids: Vec<AgentId>,
}

impl CheckedAgents {
    fn slot_count(&self) -> usize {
        self.ids.len()
    }

    /// `slot` exists and holds `agent`; `what` names the reference in the
    /// error.
    fn same_agent(&self, what: &'static str, slot: u32, agent: u64) -> Result<(), SnapshotError> {
        check_slot(slot, self.slot_count(), what)?;
        let actual = self.ids[slot as usize].0;
        if actual == agent {
            Ok(())
        } else {
            Err(SnapshotError::AgentMismatch { what, slot, agent, actual })
        }
    }
}

/// Agents: slots listed `0, 1, 2, ...`; specs the router would accept; a
/// removed agent offline; no live agent id twice; loads a capacity cell can
/// count.
fn check_agents(
    agents: Vec<SnapshotAgent>,
    interned: usize,
) -> Result<CheckedAgents, SnapshotError> {
    let slot_count = agents.len();
    if slot_count > MAX_AGENTS as usize {
        return Err(SnapshotError::TooManyAgents(slot_count));
    }
    let mut live_ids: HashSet<AgentId> = HashSet::with_capacity(slot_count);
    let mut checked = CheckedAgents {
        slots: Vec::with_capacity(slot_count),
        ids: Vec::with_capacity(slot_count),
    };
    for (position, agent) in agents.into_iter().enumerate() {
        if agent.slot as usize != position {
            return Err(SnapshotError::SlotOutOfOrder { position, slot: agent.slot });
        }
        let slot = agent.slot;
        let (live, limits) = agent_spec_in(agent.spec, slot, interned)?;
        if agent.removed {
            if live.presence != Presence::Offline {
                return Err(SnapshotError::RemovedAgentOnline(slot));
            }
        } else if !live_ids.insert(live.id) {
            return Err(SnapshotError::DuplicateAgent(live.id.0));
        }
        let mut total = 0u32;
        for channel in Channel::ALL {
            let load = agent.load[channel.index()];
            if load > MAX_PER_CHANNEL {
                return Err(SnapshotError::LoadTooLarge { slot });
            }
            total += load;
        }
        if total > MAX_TOTAL {
            return Err(SnapshotError::LoadTooLarge { slot });
        }
        checked.ids.push(live.id);
        let state = SlotState {
            spec: live,
            removed: agent.removed,
            missed_offers: agent.missed_offers,
            last_assigned_ms: agent.last_assigned_ms,
            load: agent.load,
            holding: agent.holding.into_iter().map(ConversationId).collect(),
        };
        checked.slots.push((state, limits));
    }
    Ok(checked)
}

/// The spec of the agent in `slot`, normalised as the router normalises one
/// it registers: known skills, valid languages, a spec the router accepts.
fn agent_spec_in(
    spec: SnapshotAgentSpec,
    slot: u32,
    interned: usize,
) -> Result<(AgentSpec, loket_capacity::Limits), SnapshotError> {
    let mut capacity = Capacity::ZERO;
    capacity.chat = spec.capacity[Channel::Chat.index()];
    capacity.whatsapp = spec.capacity[Channel::Whatsapp.index()];
    capacity.messenger = spec.capacity[Channel::Messenger.index()];
    capacity.sms = spec.capacity[Channel::Sms.index()];
    capacity.email = spec.capacity[Channel::Email.index()];
    capacity.voice = spec.capacity[Channel::Voice.index()];
    capacity.total = spec.capacity_total;
    let live = AgentSpec {
        id: AgentId(spec.id),
        kind: spec.kind.into(),
        skills: spec
            .skills
            .iter()
            .map(|s| skill_in(s, interned, "an agent's skills"))
            .collect::<Result<_, _>>()?,
        languages: spec.languages.iter().map(|l| language(l)).collect::<Result<_, _>>()?,
        capacity,
        presence: spec.presence.into(),
        team: spec.team,
        tenant: spec.tenant,
    };
    live.normalise().map_err(|e| SnapshotError::InvalidAgentSpec { slot, reason: e.to_string() })
}

/// The conversations section, checked: the conversations by id, their order
/// in the snapshot, and how many each slot holds per channel.
struct CheckedConversations {
    by_id: HashMap<ConversationId, Conversation>,
    order: Vec<ConversationId>,
    held: Vec<[u32; CHANNELS]>,
}

impl CheckedConversations {
    /// The conversations in the snapshot's order.
    fn into_snapshot_order(mut self) -> Vec<(ConversationId, Conversation)> {
        let mut ordered = Vec::with_capacity(self.order.len());
        for id in self.order {
            if let Some(conv) = self.by_id.remove(&id) {
                ordered.push((id, conv));
            }
        }
        ordered
    }

    /// Whether the conversation `id` is held by the agent in `slot`.
    fn held_by(&self, id: &ConversationId, slot: u32) -> bool {
        self.by_id.get(id).and_then(|c| c.holder).is_some_and(|h| h.slot == slot)
    }
}

/// Conversations: each id once; holders that name their agent; a state that
/// agrees with having a holder; excluded agents that exist; values in range;
/// normalised requirements.
fn check_conversations(
    snapshot: Vec<SnapshotConversation>,
    agents: &CheckedAgents,
    interned: usize,
    incarnations: &mut Vec<u32>,
) -> Result<CheckedConversations, SnapshotError> {
    let slot_count = agents.slot_count();
    let mut checked = CheckedConversations {
        by_id: HashMap::with_capacity(snapshot.len()),
        order: Vec::with_capacity(snapshot.len()),
        held: vec![[0u32; CHANNELS]; slot_count],
    };
    for conv in snapshot {
        let id = ConversationId(conv.id);
        let invalid =
            |problem| SnapshotError::InvalidConversation { conversation: conv.id, problem };
        if checked.by_id.contains_key(&id) {
            return Err(SnapshotError::DuplicateConversation(conv.id));
        }
        let state: ConversationState = conv.state.into();
        let channel: Channel = conv.channel.into();
        let holder = match conv.holder {
            Some(holder) => {
                agents.same_agent("a conversation's holder", holder.slot, holder.agent)?;
                checked.held[holder.slot as usize][channel.index()] += 1;
                Some(Holder { slot: holder.slot, agent: AgentId(holder.agent) })
            }
            None => None,
        };
        match (state, holder.is_some()) {
            (ConversationState::Closed, true) => return Err(invalid("closed but held")),
            (
                ConversationState::Assigned | ConversationState::Bot | ConversationState::Offered,
                false,
            ) => return Err(invalid("assigned, offered or with a bot, but held by no agent")),
            _ => {}
        }
        if let Some(slot) = conv.excluded {
            check_slot(slot, slot_count, "a conversation's excluded agent")?;
        }
        if !(0.0..=1.0).contains(&conv.buying_intent) {
            return Err(invalid("buying intent outside 0..=1"));
        }
        if conv.overflow_step == u8::MAX {
            return Err(invalid("overflow step past the last possible step"));
        }
        incarnations.push((conv.generation >> 32) as u32);
        let live = Conversation {
            customer: CustomerId(conv.customer),
            channel,
            language: language(&conv.language)?,
            state,
            holder,
            required: requirements_in(&conv.required, interned, conv.id, "a conversation")?,
            tier: conv.tier,
            overflow_step: conv.overflow_step,
            escalated: conv.escalated,
            boosted: conv.boosted,
            buying_intent: conv.buying_intent,
            created_at: Timestamp(conv.created_at),
            last_message_at: Timestamp(conv.last_message_at),
            first_queued_at: conv.first_queued_at.map(Timestamp),
            excluded: conv.excluded,
            generation: conv.generation,
            messages: conv.messages,
        };
        checked.order.push(id);
        checked.by_id.insert(id, live);
    }
    Ok(checked)
}

/// Every agent's loads and holding list against the conversations that name
/// it as their holder.
fn check_holdings(
    agents: &CheckedAgents,
    conversations: &CheckedConversations,
) -> Result<(), SnapshotError> {
    for (slot, (state, _)) in agents.slots.iter().enumerate() {
        let held = &conversations.held[slot];
        let slot = slot as u32;
        for channel in Channel::ALL {
            let (recorded, count) = (state.load[channel.index()], held[channel.index()]);
            if recorded != count {
                return Err(SnapshotError::LoadMismatch {
                    slot,
                    channel: channel.as_str(),
                    recorded,
                    held: count,
                });
            }
        }
        let mut listed = HashSet::with_capacity(state.holding.len());
        for &id in &state.holding {
            if !conversations.held_by(&id, slot) || !listed.insert(id) {
                return Err(SnapshotError::HoldingMismatch { slot, conversation: id.0 });
            }
        }
        let count: u32 = held.iter().sum();
        if listed.len() as u32 != count {
            // Some conversation names this agent but is not in its list.
            let missing = conversations
                .order
                .iter()
                .find(|id| !listed.contains(id) && conversations.held_by(id, slot))
                .map_or(0, |id| id.0);
            return Err(SnapshotError::HoldingMismatch { slot, conversation: missing });
        }
    }
    Ok(())
}

/// The backlog: exactly the queued conversations, each once, with sequence
/// numbers unique and not past `next_seq`, agents that exist, and the
/// channel, language and generation of the conversation.
fn check_backlog(
    backlog: SnapshotBacklog,
    conversations: &CheckedConversations,
    agents: &CheckedAgents,
    interned: usize,
    incarnations: &mut Vec<u32>,
) -> Result<Vec<(ConversationId, Waiting)>, SnapshotError> {
    let next_seq = backlog.next_seq;
    let slot_count = agents.slot_count();
    let mut queue_seqs = HashSet::with_capacity(backlog.entries.len());
    let mut waiting = Vec::with_capacity(backlog.entries.len());
    let mut queued = HashSet::with_capacity(backlog.entries.len());
    for entry in backlog.entries {
        let id = ConversationId(entry.conversation);
        let conv = conversations.by_id.get(&id);
        let is_queued = conv.is_some_and(|c| c.state == ConversationState::Queued);
        if !is_queued || !queued.insert(id) {
            return Err(SnapshotError::QueueMismatch(entry.conversation));
        }
        if entry.seq > next_seq || !queue_seqs.insert(entry.seq) {
            return Err(SnapshotError::QueueSequence { seq: entry.seq, next_seq });
        }
        let preferred = match entry.preferred {
            Some(slot) => Some((
                check_slot(slot, slot_count, "a backlog entry's preferred agent")?,
                Timestamp(entry.preferred_until),
            )),
            None => None,
        };
        if let Some(slot) = entry.excluded {
            check_slot(slot, slot_count, "a backlog entry's excluded agent")?;
        }
        incarnations.push((entry.generation >> 32) as u32);
        let need = Need {
            channel: entry.channel.into(),
            language: language(&entry.language)?,
            required: requirements_in(
                &entry.required,
                interned,
                entry.conversation,
                "a backlog entry",
            )?,
            pool: entry.pool.into(),
        };
        // Capacity is reserved on the entry's channel and returned on the
        // conversation's: they must agree, as must the generation that tells
        // a live entry from a stale one.
        if let Some(conv) = conv {
            let invalid = |problem| SnapshotError::InvalidConversation {
                conversation: entry.conversation,
                problem,
            };
            if need.channel != conv.channel || need.language != conv.language {
                return Err(invalid("its backlog entry needs another channel or language"));
            }
            if entry.generation != conv.generation {
                return Err(invalid("its backlog entry is of another generation"));
            }
        }
        waiting.push((
            id,
            Waiting {
                key: QueueKey { rank: entry.rank, seq: entry.seq },
                need,
                priority: entry.priority,
                enqueued_at: Timestamp(entry.enqueued_at),
                preferred,
                excluded: entry.excluded,
                generation: entry.generation,
            },
        ));
    }
    if let Some(id) = conversations.order.iter().find(|id| {
        conversations.by_id[id].state == ConversationState::Queued && !queued.contains(id)
    }) {
        return Err(SnapshotError::QueueMismatch(id.0));
    }
    Ok(waiting)
}

/// Timers: sequence numbers unique and below `timer_seq`.
fn check_timers(
    snapshot: Vec<SnapshotTimer>,
    timer_seq: u64,
    incarnations: &mut Vec<u32>,
) -> Result<Vec<Timer>, SnapshotError> {
    let mut timer_seqs = HashSet::with_capacity(snapshot.len());
    let mut timers = Vec::with_capacity(snapshot.len());
    for timer in snapshot {
        if timer.seq >= timer_seq || !timer_seqs.insert(timer.seq) {
            return Err(SnapshotError::TimerSequence { seq: timer.seq, timer_seq });
        }
        incarnations.push((timer.generation >> 32) as u32);
        timers.push(Timer {
            at: Timestamp(timer.at),
            seq: timer.seq,
            kind: timer.kind.into(),
            conversation: ConversationId(timer.conversation),
            generation: timer.generation,
        });
    }
    Ok(timers)
}

/// Customer histories: each customer once, at most [`HISTORY`] agents, each
/// slot once and holding the agent named.
fn check_customers(
    snapshot: Vec<SnapshotCustomer>,
    agents: &CheckedAgents,
) -> Result<Vec<(CustomerId, History)>, SnapshotError> {
    let mut customers = Vec::with_capacity(snapshot.len());
    let mut seen = HashSet::with_capacity(snapshot.len());
    for customer in snapshot {
        if !seen.insert(customer.customer) {
            return Err(SnapshotError::DuplicateCustomer(customer.customer));
        }
        if customer.served.len() > HISTORY {
            return Err(SnapshotError::HistoryTooLong {
                customer: customer.customer,
                len: customer.served.len(),
                max: HISTORY,
            });
        }
        let mut history = History::default();
        for served in customer.served {
            agents.same_agent("a customer's history", served.slot, served.agent)?;
            if history.contains(served.slot) {
                return Err(SnapshotError::DuplicateSlotInHistory {
                    customer: customer.customer,
                    slot: served.slot,
                });
            }
            history.push_oldest(served.slot, Timestamp(served.at));
        }
        customers.push((CustomerId(customer.customer), history));
    }
    Ok(customers)
}

/// Where a restored router's incarnations start: just past the largest run
/// of numbers (counting round, as they wrap) that the snapshot does not use,
/// so the new ones meet the snapshot's only after that whole run is spent.
fn incarnation_base(mut used: Vec<u32>) -> u32 {
    used.sort_unstable();
    used.dedup();
    let (Some(&first), Some(&last)) = (used.first(), used.last()) else { return 0 };
    // The gap that wraps round: after the last, through u32::MAX, to the first.
    let mut best_gap = u64::from(u32::MAX - last) + u64::from(first);
    let mut base = last.wrapping_add(1);
    for pair in used.windows(2) {
        let gap = u64::from(pair[1] - pair[0] - 1);
        if gap > best_gap {
            best_gap = gap;
            base = pair[0] + 1;
        }
    }
    base
}

#[cfg(test)]
mod tests {
    use super::incarnation_base;

    #[test]
    fn incarnations_start_past_the_snapshot() {
        assert_eq!(incarnation_base(vec![]), 0);
        assert_eq!(incarnation_base(vec![0, 1, 2, 5000]), 5001);
        assert_eq!(incarnation_base(vec![7, 7, 3]), 8);
        // Near the top the run wraps round to the low numbers.
        assert_eq!(incarnation_base(vec![u32::MAX, 0, 1]), 2);
        // A big hole in the middle beats the short wrap-round run.
        assert_eq!(incarnation_base(vec![0, 10, u32::MAX - 3]), 11);
    }
}
