//! [`Meter`]: one tenant's clocks, SLA timers and aggregates, fed fact by
//! fact.

use std::collections::VecDeque;

use loket_hours::OpenTime;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::config::MeterConfig;
use crate::conversation::{ArrivalGroups, Closed, Conversation, Handler, Tally};
use crate::error::{ConfigError, FactError, IntentError, Rejections};
use crate::fact::{Channel, CustomerMessage, Fact, FactKind, IntentId, Money};
use crate::group::{BuyingBand, GroupKey, response_band};
use crate::intents::Intents;
use crate::interval::{SLOT_MS, slot_of};
use crate::measures::Measures;
use crate::occupancy::Staffing;
use crate::sla::{SlaClock, SlaEvent, SlaEventKind};
use crate::store::Store;
use crate::timers::{TimerKey, TimerKind, Timers};

/// One tenant's measurements.
///
/// Feed it [`Fact`]s in time order with [`Meter::ingest`]; call
/// [`Meter::advance`] when time passes without facts so SLA events fire;
/// ask [`Meter::report`]. It does no I/O and reads no clock: the same facts
/// and advances give the same events and reports, and a meter serialised
/// (serde) and restored gives the same reports and, fed the same later
/// facts, the same events.
///
/// Clocks never run backwards: facts are in time order, and a restored
/// meter's durations saturate at zero rather than wrap. Histograms are
/// checked when read from a snapshot; the rest of a snapshot is trusted
/// (the journal's snapshot store checksums it).
///
/// Memory: one entry per open conversation (about 250 bytes); after the
/// close a compact record (about 120 bytes with its expiry) for
/// `order_window_ms`; one set of [`Measures`] per group that saw a
/// conversation in a retained 15-minute slot; at most two timers per open
/// conversation.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "Saved")]
pub struct Meter {
    config: MeterConfig,
    /// The configured opening hours, for the business-hours clocks (built
    /// from the configuration; not part of the state).
    #[serde(skip)]
    open_time: Option<OpenTime>,
    now: u64,
    current_slot: u64,
    /// Open conversations (only these move clocks and hold timers).
    #[serde(with = "crate::pairs")]
    conversations: FxHashMap<u64, Conversation>,
    /// Closed conversations within their order window. A conversation
    /// reopened within it is also open; the open one answers first.
    #[serde(with = "crate::pairs")]
    closed: FxHashMap<u64, Closed>,
    /// Closed conversations in order of close: (expiry, key, closed at).
    expiries: VecDeque<(u64, u64, u64)>,
    timers: Timers,
    pub(crate) store: Store,
    pub(crate) intents: Intents,
    rejections: Rejections,
    /// People's occupancy clocks.
    pub(crate) staffing: Staffing,
    /// Whether a fact or an advance set the meter's time yet.
    started: bool,
    /// Reply clocks stopped since the last [`Meter::take_observations`];
    /// not part of the state (a restored meter starts with none).
    #[serde(skip)]
    observations: Vec<Observation>,
    /// Whether stopped clocks are kept for [`Meter::take_observations`].
    #[serde(skip)]
    observing: bool,
    /// Before this time no closed conversation passes its window and the
    /// slot stays the same (0: not known; not part of the state).
    #[serde(skip)]
    quiet_before: u64,
}

/// A reply clock that stopped, for live metrics (Prometheus histograms):
/// the same values the reports count, as they happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observation {
    /// A person's first reply: `first_response_ms`.
    FirstResponse {
        /// The conversation's channel.
        channel: Channel,
        /// The clock, ms.
        ms: u64,
    },
    /// A person's next reply: one `next_reply_ms`.
    NextReply {
        /// The conversation's channel.
        channel: Channel,
        /// The clock, ms.
        ms: u64,
    },
}

impl Meter {
    /// A meter with nothing measured, its time at 0.
    pub fn new(config: MeterConfig) -> Result<Meter, ConfigError> {
        config.validate()?;
        Ok(Meter {
            open_time: config.opening_hours()?.map(OpenTime::new),
            config,
            now: 0,
            current_slot: 0,
            conversations: FxHashMap::default(),
            closed: FxHashMap::default(),
            expiries: VecDeque::new(),
            timers: Timers::default(),
            store: Store::default(),
            intents: Intents::default(),
            rejections: Rejections::default(),
            staffing: Staffing::default(),
            started: false,
            observations: Vec::new(),
            observing: false,
            quiet_before: 0,
        })
    }

    /// The id of an intent name, interning it on first sight (at most
    /// [`crate::MAX_INTENTS`] names of at most [`crate::MAX_INTENT_BYTES`]).
    pub fn intern_intent(&mut self, name: &str) -> Result<IntentId, IntentError> {
        self.intents.intern(name)
    }

    /// The name of an interned intent (empty for one never interned).
    pub fn intent_name(&self, id: IntentId) -> &str {
        self.intents.name(id)
    }

    /// Applies one fact: first fires, in order, the SLA timers due at or
    /// before `fact.at` (their events are pushed onto `events`), then counts
    /// the fact. A fact that is refused changes nothing, fires nothing and
    /// is counted in [`Meter::rejections`].
    pub fn ingest(&mut self, fact: &Fact, events: &mut Vec<SlaEvent>) -> Result<(), FactError> {
        if let Err(error) = self.check(fact) {
            self.rejections.count(&error);
            return Err(error);
        }
        self.advance_to(fact.at, events);
        self.apply(fact);
        Ok(())
    }

    /// Moves the meter's time to `now`, firing the SLA timers due by then
    /// in order (instant, conversation, clock, warning before breach) and
    /// dropping closed conversations past their order window and slots past
    /// retention. `now` before the meter's time is refused.
    pub fn advance(&mut self, now: u64, events: &mut Vec<SlaEvent>) -> Result<(), FactError> {
        if now < self.now {
            let error = FactError::OutOfOrder { at: now, now: self.now };
            self.rejections.count(&error);
            return Err(error);
        }
        self.advance_to(now, events);
        Ok(())
    }

    /// From `at`, the person `agent` of `team` can hold `capacity`
    /// conversations at once (0: away, offline or gone), for occupancy.
    /// `at` of `None` means the meter's time, or its first time if it has
    /// none yet (people registered before anything is measured are staffed
    /// from the first fact, not from time 0). Fires the SLA timers due by
    /// `at` first, as [`Meter::advance`] does; `at` before the meter's time
    /// is refused.
    pub fn staff(
        &mut self,
        at: Option<u64>,
        agent: u64,
        team: u32,
        capacity: u32,
        events: &mut Vec<SlaEvent>,
    ) -> Result<(), FactError> {
        let at = match at {
            Some(at) => {
                self.advance(at, events)?;
                Some(at)
            }
            None => self.started.then_some(self.now),
        };
        let first_kept = self.first_kept_slot();
        self.staffing.staff(&mut self.store, first_kept, at, agent, team, capacity);
        Ok(())
    }

    /// The person `agent` starts (`starts`) or stops holding a
    /// conversation at `at`, for occupancy (assignment to release, wrap-up
    /// included). Fires the SLA timers due by `at` first; `at` before the
    /// meter's time is refused.
    pub fn hold(
        &mut self,
        at: u64,
        agent: u64,
        starts: bool,
        events: &mut Vec<SlaEvent>,
    ) -> Result<(), FactError> {
        self.advance(at, events)?;
        let first_kept = self.first_kept_slot();
        self.staffing.hold(&mut self.store, first_kept, at, agent, starts);
        Ok(())
    }

    /// The oldest slot retained at the meter's time.
    fn first_kept_slot(&self) -> u64 {
        (self.current_slot + 1).saturating_sub(self.config.retained_slots())
    }

    /// The meter's time: the latest fact or advance applied.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Keeps (or stops keeping) every reply clock that stops, for
    /// [`Meter::take_observations`]; off by default, and after a restore.
    pub fn set_observing(&mut self, observing: bool) {
        self.observing = observing;
        if !observing {
            self.observations.clear();
        }
    }

    /// Takes the reply clocks stopped since the last call, in order (none
    /// unless [`Meter::set_observing`] is on).
    pub fn take_observations(&mut self) -> Vec<Observation> {
        std::mem::take(&mut self.observations)
    }

    /// The refused facts, by reason.
    pub fn rejections(&self) -> &Rejections {
        &self.rejections
    }

    /// The configuration.
    pub fn config(&self) -> &MeterConfig {
        &self.config
    }

    /// Measures under `config` from now on: a restored meter takes the
    /// configuration the operator runs with rather than the one saved with
    /// it. What was counted stays counted; conversations already open keep
    /// their SLA targets; a shorter retention drops the older slots at the
    /// next 15-minute boundary, a new order window applies to later closes,
    /// new opening hours to clocks that stop later. An invalid `config` is
    /// refused and changes nothing.
    pub fn reconfigure(&mut self, config: MeterConfig) -> Result<(), ConfigError> {
        config.validate()?;
        self.open_time = config.opening_hours()?.map(OpenTime::new);
        self.config = config;
        self.quiet_before = 0;
        Ok(())
    }

    /// Whether the business-hours clocks are measured (opening hours are
    /// configured).
    pub fn measures_business_hours(&self) -> bool {
        self.open_time.is_some()
    }

    /// Conversations held: open ones and closed ones still in their order
    /// window (a conversation reopened within the window of its earlier
    /// close counts twice until that window ends).
    pub fn conversations_held(&self) -> usize {
        self.conversations.len() + self.closed.len()
    }

    /// Whether `conversation` is open: a customer message in it continues
    /// it (its groups are fixed) rather than opening it.
    pub fn is_open(&self, conversation: u64) -> bool {
        self.conversations.contains_key(&conversation)
    }

    /// When the earliest pending SLA timer is due: advancing to it fires
    /// an event.
    pub fn next_timer(&self) -> Option<u64> {
        self.timers.next()
    }

    /// SLA timers pending.
    pub fn timers_pending(&self) -> usize {
        self.timers.len()
    }

    /// 15-minute slots held.
    pub fn slots_held(&self) -> usize {
        self.store.len()
    }

    fn check(&self, fact: &Fact) -> Result<(), FactError> {
        if fact.at < self.now {
            return Err(FactError::OutOfOrder { at: fact.at, now: self.now });
        }
        let id = fact.conversation;
        if let FactKind::CustomerMessage(message) = &fact.kind {
            if !self.intents.contains(message.intent) {
                return Err(FactError::UnknownIntent(message.intent.0));
            }
            return Ok(());
        }
        if self.conversations.contains_key(&id) {
            return Ok(());
        }
        match self.closed.get(&id) {
            None => Err(FactError::UnknownConversation(id)),
            // Past its window a closed conversation is as good as
            // forgotten, whether or not it has been dropped yet.
            Some(closed)
                if fact.at > closed.closed_at.saturating_add(self.config.order_window_ms) =>
            {
                Err(FactError::UnknownConversation(id))
            }
            Some(_) if matches!(fact.kind, FactKind::Order { .. }) => Ok(()),
            Some(_) => Err(FactError::Closed(id)),
        }
    }

    fn advance_to(&mut self, now: u64, events: &mut Vec<SlaEvent>) {
        if now < self.quiet_before && self.timers.quiet_at(now) {
            // No timer due, no closed conversation past its window, the
            // same slot.
            self.now = now;
            return;
        }
        while let Some(key) = self.timers.pop_due(now) {
            self.fire(key, events);
        }
        if !self.started {
            self.started = true;
            self.staffing.start(now);
        }
        self.now = now;
        while let Some(&(expiry, id, closed_at)) = self.expiries.front() {
            if expiry >= now {
                break;
            }
            self.expiries.pop_front();
            if self.closed.get(&id).is_some_and(|c| c.closed_at == closed_at) {
                self.closed.remove(&id);
            }
        }
        let slot = slot_of(now);
        if slot != self.current_slot {
            self.current_slot = slot;
            let first_kept = self.first_kept_slot();
            self.staffing.roll(&mut self.store, first_kept, now);
            self.store.drop_before(first_kept);
        }
        let next_slot = slot.saturating_add(1).saturating_mul(SLOT_MS);
        let next_expiry =
            self.expiries.front().map_or(u64::MAX, |&(expiry, ..)| expiry.saturating_add(1));
        self.quiet_before = next_slot.min(next_expiry);
    }

    fn fire(&mut self, key: TimerKey, events: &mut Vec<SlaEvent>) {
        let Some(conversation) = self.conversations.get_mut(&key.conversation) else {
            return;
        };
        let mut parts = Parts {
            store: &mut self.store,
            timers: &mut self.timers,
            rejections: &mut self.rejections,
            observations: if self.observing { Some(&mut self.observations) } else { None },
            config: &self.config,
            open_time: self.open_time.as_mut(),
            id: key.conversation,
        };
        let (clock, kind) = match key.kind {
            TimerKind::FirstReplyWarning => (SlaClock::FirstReply, SlaEventKind::Warning),
            TimerKind::FirstReplyBreach => (SlaClock::FirstReply, SlaEventKind::Breached),
            TimerKind::NextReplyWarning => (SlaClock::NextReply, SlaEventKind::Warning),
            TimerKind::NextReplyBreach => (SlaClock::NextReply, SlaEventKind::Breached),
        };
        let (target_ms, start) = match clock {
            SlaClock::FirstReply => (conversation.targets.first_reply_ms, conversation.clock_start),
            SlaClock::NextReply => {
                (conversation.targets.next_reply_ms, conversation.unanswered_since)
            }
        };
        match (clock, kind) {
            (SlaClock::FirstReply, SlaEventKind::Warning) => {
                conversation.first_reply_timer = start
                    .map(|start| parts.arm_breach(start, target_ms, TimerKind::FirstReplyBreach));
            }
            (SlaClock::NextReply, SlaEventKind::Warning) => {
                conversation.next_reply_timer = start
                    .map(|start| parts.arm_breach(start, target_ms, TimerKind::NextReplyBreach));
            }
            (SlaClock::FirstReply, SlaEventKind::Breached) => {
                conversation.first_reply_timer = None;
                conversation.tally.breaches_first_reply += 1;
                parts.count(conversation, |m| m.breaches_first_reply += 1);
            }
            (SlaClock::NextReply, SlaEventKind::Breached) => {
                conversation.next_reply_timer = None;
                conversation.tally.breaches_next_reply += 1;
                parts.count(conversation, |m| m.breaches_next_reply += 1);
            }
        }
        events.push(SlaEvent {
            kind,
            at: key.at,
            conversation: key.conversation,
            clock,
            target_ms,
        });
    }

    fn apply(&mut self, fact: &Fact) {
        let (id, at) = (fact.conversation, fact.at);
        let Some(conversation) = self.conversations.get_mut(&id) else {
            match &fact.kind {
                FactKind::CustomerMessage(message) => {
                    let conversation = self.open(id, at, message);
                    self.conversations.insert(id, conversation);
                }
                FactKind::Order { value } => {
                    if let Some(closed) = self.closed.get_mut(&id) {
                        let mut parts = Parts {
                            store: &mut self.store,
                            timers: &mut self.timers,
                            rejections: &mut self.rejections,
                            observations: None,
                            config: &self.config,
                            open_time: None,
                            id,
                        };
                        parts.ordered_after_close(closed, *value);
                    }
                }
                _ => {} // check() refused this; unreachable
            }
            return;
        };
        let mut parts = Parts {
            store: &mut self.store,
            timers: &mut self.timers,
            rejections: &mut self.rejections,
            observations: if self.observing { Some(&mut self.observations) } else { None },
            config: &self.config,
            open_time: self.open_time.as_mut(),
            id,
        };
        match fact.kind {
            FactKind::CustomerMessage(_) => parts.customer_wrote(conversation, at),
            FactKind::Assigned { agent, team, human } => {
                if human {
                    parts.person_assigned(conversation, at, Handler { agent, team });
                } else {
                    parts.bot_took(conversation);
                }
            }
            FactKind::HandedOff => parts.hand_off(conversation, at),
            FactKind::Reply { agent, team, human } => {
                parts.replied(conversation, at, human.then_some(Handler { agent, team }));
            }
            FactKind::Order { value } => parts.ordered(conversation, value),
            FactKind::Closed => {
                parts.closed(conversation, at);
                let record = Closed::of(conversation, at);
                self.conversations.remove(&id);
                self.closed.insert(id, record);
                // Dropped once time passes the window (with a window of 0,
                // once it passes the close).
                let expiry = at.saturating_add(self.config.order_window_ms);
                self.expiries.push_back((expiry, id, at));
                self.quiet_before = self.quiet_before.min(expiry.saturating_add(1));
            }
        }
    }

    fn open(&mut self, id: u64, at: u64, message: &CustomerMessage) -> Conversation {
        let intent = self.intents.name(message.intent);
        let targets = self.config.sla.targets(message.channel, message.tier, intent);
        let mut conversation = Conversation {
            first_at: at,
            slot: slot_of(at),
            groups: ArrivalGroups {
                channel: message.channel,
                queue: message.queue,
                language: message.language,
                intent: message.intent,
                band: BuyingBand::of(message.buying_intent),
                tier: message.tier,
            },
            positions: [0; 9],
            handler: None,
            targets,
            clock_start: Some(at),
            wait_recorded: false,
            human_assigned_at: None,
            first_response_ms: None,
            unanswered_since: None,
            bot_held: false,
            tally: Tally::default(),
            first_reply_timer: None,
            next_reply_timer: None,
            closed_at: None,
        };
        let groups = self.store.slot_mut(conversation.slot);
        let keys = conversation.arrival_keys();
        for (position, key) in conversation.positions.iter_mut().zip(keys) {
            *position = groups.position(key);
        }
        let mut parts = Parts {
            store: &mut self.store,
            timers: &mut self.timers,
            rejections: &mut self.rejections,
            observations: if self.observing { Some(&mut self.observations) } else { None },
            config: &self.config,
            open_time: self.open_time.as_mut(),
            id,
        };
        parts.count(&conversation, |m| m.offered += 1);
        conversation.first_reply_timer =
            Some(parts.arm(at, targets.first_reply_ms, TimerKind::FirstReplyWarning));
        conversation
    }
}

/// The meter's parts a fact about one conversation touches, borrowed apart
/// from the conversation table.
struct Parts<'a> {
    store: &'a mut Store,
    timers: &'a mut Timers,
    rejections: &'a mut Rejections,
    /// Where stopped clocks go, when the meter is observing.
    observations: Option<&'a mut Vec<Observation>>,
    config: &'a MeterConfig,
    /// The opening hours, when business-hours clocks are measured.
    open_time: Option<&'a mut OpenTime>,
    id: u64,
}

impl Parts<'_> {
    /// The open time of `[from, to)`, when business-hours clocks are
    /// measured.
    fn business_ms(&mut self, from: u64, to: u64) -> Option<u64> {
        self.open_time.as_deref_mut().map(|open| open.open_ms_between(from, to))
    }

    /// Applies `update` to the measures of every group of `conversation`
    /// in its arrival slot (if still retained).
    fn count(&mut self, conversation: &Conversation, update: impl Fn(&mut Measures)) {
        self.count_in(conversation.slot, conversation.counted_positions(), update);
    }

    /// Applies `update` to the measures at `positions` of `slot` (if still
    /// retained).
    fn count_in(&mut self, slot: u64, positions: &[u32], update: impl Fn(&mut Measures)) {
        match self.store.existing_slot_mut(slot) {
            Some(groups) => {
                for &position in positions {
                    if let Some(measures) = groups.at(position) {
                        update(measures);
                    }
                }
            }
            None => self.rejections.expired_interval += 1,
        }
    }

    /// Arms a clock's first timer: the warning (`warning` kind) if the
    /// policy sends one before the breach, else the breach (the kind after
    /// `warning`).
    fn arm(&mut self, start: u64, target_ms: u64, warning: TimerKind) -> TimerKey {
        let breach = match warning {
            TimerKind::FirstReplyWarning => TimerKind::FirstReplyBreach,
            _ => TimerKind::NextReplyBreach,
        };
        let permille = u64::from(self.config.sla.warning_permille);
        if (1..1000).contains(&permille) {
            let offset = (u128::from(target_ms) * u128::from(permille) / 1000) as u64;
            let key =
                TimerKey { at: start.saturating_add(offset), conversation: self.id, kind: warning };
            self.timers.insert(key);
            return key;
        }
        self.arm_breach(start, target_ms, breach)
    }

    /// Arms the breach: the first millisecond past the target.
    fn arm_breach(&mut self, start: u64, target_ms: u64, kind: TimerKind) -> TimerKey {
        let key = TimerKey {
            at: start.saturating_add(target_ms).saturating_add(1),
            conversation: self.id,
            kind,
        };
        self.timers.insert(key);
        key
    }

    fn customer_wrote(&mut self, conversation: &mut Conversation, at: u64) {
        if conversation.first_response_ms.is_some()
            && !conversation.bot_held
            && conversation.unanswered_since.is_none()
        {
            conversation.unanswered_since = Some(at);
            let target = conversation.targets.next_reply_ms;
            conversation.next_reply_timer = Some(self.arm(at, target, TimerKind::NextReplyWarning));
        }
    }

    /// A bot holds the conversation: no person is expected, so the
    /// first-response (if still running) and next-reply clocks stop
    /// without a measurement.
    fn bot_took(&mut self, conversation: &mut Conversation) {
        conversation.bot_held = true;
        if conversation.first_response_ms.is_none() {
            conversation.clock_start = None;
            self.timers.cancel(conversation.first_reply_timer.take());
        }
        conversation.unanswered_since = None;
        self.timers.cancel(conversation.next_reply_timer.take());
    }

    /// Bot to people: counts the escalation once and restarts the wait and
    /// first-response clocks from now if no person has replied yet.
    fn hand_off(&mut self, conversation: &mut Conversation, at: u64) {
        if !conversation.tally.escalated {
            conversation.tally.escalated = true;
            self.count(conversation, |m| m.escalations += 1);
        }
        conversation.bot_held = false;
        if conversation.first_response_ms.is_none() {
            conversation.clock_start = Some(at);
            self.timers.cancel(conversation.first_reply_timer.take());
            let target = conversation.targets.first_reply_ms;
            conversation.first_reply_timer =
                Some(self.arm(at, target, TimerKind::FirstReplyWarning));
        }
    }

    /// The first person to take the conversation: it joins their agent and
    /// team groups, which catch up on what the others already counted.
    fn join(&mut self, conversation: &mut Conversation, handler: Handler) {
        conversation.handler = Some(handler);
        let tally = &conversation.tally;
        let catch_up = |m: &mut Measures| {
            m.offered += 1;
            m.answered += u64::from(tally.answered);
            m.escalations += u64::from(tally.escalated);
            m.conversions += u64::from(tally.converted);
            m.breaches_first_reply += u64::from(tally.breaches_first_reply);
            m.breaches_next_reply += u64::from(tally.breaches_next_reply);
            for &value in &tally.revenue {
                m.add_revenue(value);
            }
        };
        match self.store.existing_slot_mut(conversation.slot) {
            Some(groups) => {
                let keys = [GroupKey::Agent(handler.agent), GroupKey::Team(handler.team)];
                for (index, key) in [7, 8].into_iter().zip(keys) {
                    let position = groups.position(key);
                    conversation.positions[index] = position;
                    if let Some(measures) = groups.at(position) {
                        catch_up(measures);
                    }
                }
            }
            None => self.rejections.expired_interval += 1,
        }
        // Revenue from now on is counted in every group directly.
        conversation.tally.revenue = Vec::new();
    }

    fn person_assigned(&mut self, conversation: &mut Conversation, at: u64, handler: Handler) {
        if conversation.bot_held {
            self.hand_off(conversation, at);
        }
        if conversation.handler.is_none() {
            self.join(conversation, handler);
        }
        if conversation.human_assigned_at.is_none() {
            conversation.human_assigned_at = Some(at);
        }
        if !conversation.wait_recorded
            && let Some(start) = conversation.clock_start
        {
            conversation.wait_recorded = true;
            let business = self.business_ms(start, at);
            self.count(conversation, |m| {
                m.wait_ms.record(at.saturating_sub(start));
                if let Some(business) = business {
                    m.business_mut().wait_ms.record(business);
                }
            });
        }
    }

    /// A reply; `person` is `None` for a bot's.
    fn replied(&mut self, conversation: &mut Conversation, at: u64, person: Option<Handler>) {
        if let Some(handler) = person {
            if conversation.bot_held {
                self.hand_off(conversation, at);
            }
            if conversation.handler.is_none() {
                self.join(conversation, handler);
            }
        }
        if !conversation.tally.answered {
            conversation.tally.answered = true;
            self.count(conversation, |m| m.answered += 1);
        }
        if person.is_none() {
            return; // bot replies stop no clock
        }
        if conversation.first_response_ms.is_none() {
            let Some(start) = conversation.clock_start else {
                return;
            };
            let first_response = at.saturating_sub(start);
            let business = self.business_ms(start, at);
            conversation.first_response_ms = Some(first_response);
            self.timers.cancel(conversation.first_reply_timer.take());
            let in_target = first_response <= conversation.targets.first_reply_ms;
            let band = response_band(first_response);
            let converted = conversation.tally.converted;
            let channel = conversation.groups.channel;
            if let Some(observations) = self.observations.as_deref_mut() {
                observations.push(Observation::FirstResponse { channel, ms: first_response });
            }
            self.count(conversation, |m| {
                m.first_response_ms.record(first_response);
                if let Some(business) = business {
                    m.business_mut().first_response_ms.record(business);
                }
                m.answered_in_target += u64::from(in_target);
                m.band_conversations[band] += 1;
                m.band_conversions[band] += u64::from(converted);
            });
        } else if let Some(since) = conversation.unanswered_since.take() {
            self.timers.cancel(conversation.next_reply_timer.take());
            let ms = at.saturating_sub(since);
            let business = self.business_ms(since, at);
            let channel = conversation.groups.channel;
            if let Some(observations) = self.observations.as_deref_mut() {
                observations.push(Observation::NextReply { channel, ms });
            }
            self.count(conversation, |m| {
                m.next_reply_ms.record(ms);
                if let Some(business) = business {
                    m.business_mut().next_reply_ms.record(business);
                }
            });
        }
    }

    fn ordered(&mut self, conversation: &mut Conversation, value: Money) {
        if !conversation.tally.converted {
            conversation.tally.converted = true;
            let band = conversation.first_response_ms.map(response_band);
            self.count(conversation, |m| {
                m.conversions += 1;
                if let Some(band) = band {
                    m.band_conversions[band] += 1;
                }
            });
        }
        if conversation.handler.is_none() {
            conversation.tally.revenue.push(value);
        }
        self.count(conversation, |m| m.add_revenue(value));
    }

    /// An order within the window after the close: as [`Parts::ordered`]
    /// (no person can take the conversation any more, so there is no
    /// revenue to keep for catching up).
    fn ordered_after_close(&mut self, closed: &mut Closed, value: Money) {
        if !closed.converted {
            closed.converted = true;
            let band = closed.band.map(usize::from);
            self.count_in(closed.slot, closed.counted_positions(), |m| {
                m.conversions += 1;
                if let Some(band) = band {
                    m.band_conversions[band] += 1;
                }
            });
        }
        self.count_in(closed.slot, closed.counted_positions(), |m| m.add_revenue(value));
    }

    fn closed(&mut self, conversation: &mut Conversation, at: u64) {
        conversation.closed_at = Some(at);
        self.timers.cancel(conversation.first_reply_timer.take());
        self.timers.cancel(conversation.next_reply_timer.take());
        let resolution = at.saturating_sub(conversation.first_at);
        let handle = conversation.human_assigned_at.map(|assigned| at.saturating_sub(assigned));
        let resolution_business = self.business_ms(conversation.first_at, at);
        let handle_business = match conversation.human_assigned_at {
            Some(assigned) => self.business_ms(assigned, at),
            None => None,
        };
        let answered = conversation.tally.answered;
        let short = resolution <= self.config.short_abandon_ms;
        let bot_resolved =
            answered && conversation.handler.is_none() && !conversation.tally.escalated;
        self.count(conversation, |m| {
            m.resolution_ms.record(resolution);
            if let Some(handle) = handle {
                m.handle_ms_sum = m.handle_ms_sum.saturating_add(handle);
                m.handle_count += 1;
            }
            if let Some(business) = resolution_business {
                let clocks = m.business_mut();
                clocks.resolution_ms.record(business);
                if let Some(handle) = handle_business {
                    clocks.handle_ms_sum = clocks.handle_ms_sum.saturating_add(handle);
                    clocks.handle_count += 1;
                }
            }
            if !answered {
                m.abandoned += 1;
                m.short_abandoned += u64::from(short);
            }
            if bot_resolved {
                m.bot_resolved += 1;
                m.answered_in_target += 1;
            }
        });
    }
}

/// A meter as a snapshot holds it. Snapshots written before closed
/// conversations had records of their own hold them among the open ones:
/// they are moved to their records here.
#[derive(Deserialize)]
struct Saved {
    config: MeterConfig,
    now: u64,
    current_slot: u64,
    #[serde(with = "crate::pairs")]
    conversations: FxHashMap<u64, Conversation>,
    #[serde(default, with = "crate::pairs")]
    closed: FxHashMap<u64, Closed>,
    expiries: VecDeque<(u64, u64, u64)>,
    timers: Timers,
    store: Store,
    intents: Intents,
    rejections: Rejections,
    #[serde(default)]
    staffing: Staffing,
    #[serde(default)]
    started: bool,
}

impl TryFrom<Saved> for Meter {
    type Error = ConfigError;

    /// Refuses a snapshot whose opening hours no longer parse (a time zone
    /// gone from the tz database).
    fn try_from(saved: Saved) -> Result<Meter, ConfigError> {
        let open_time = saved.config.opening_hours()?.map(OpenTime::new);
        let Saved { mut conversations, mut closed, .. } = saved;
        conversations.retain(|&id, conversation| match conversation.closed_at {
            None => true,
            Some(closed_at) => {
                closed.insert(id, Closed::of(conversation, closed_at));
                false
            }
        });
        Ok(Meter {
            config: saved.config,
            open_time,
            now: saved.now,
            current_slot: saved.current_slot,
            conversations,
            closed,
            expiries: saved.expiries,
            timers: saved.timers,
            store: saved.store,
            intents: saved.intents,
            rejections: saved.rejections,
            staffing: saved.staffing,
            // Snapshots from before this flag had a time once they had any.
            started: saved.started || saved.now > 0,
            observations: Vec::new(),
            observing: false,
            quiet_before: 0,
        })
    }
}
