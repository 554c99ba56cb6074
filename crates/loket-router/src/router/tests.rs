//! One test per routing policy, driven through the public API on a manual clock.

use std::sync::Arc;

use super::*;
use crate::clock::ManualClock;
use crate::config::{OfferPolicy, OverflowStep, SkillHours};
use crate::conversation::Signals;
use crate::hours::BusinessHours;
use crate::ids::Language;

/// A router on a manual clock plus an event buffer, with terse helpers.
struct Desk {
    router: Router,
    clock: Arc<ManualClock>,
    events: Vec<Event>,
}

impl Desk {
    fn new(config: RouterConfig) -> Desk {
        // Monday 2026-07-06 12:00 UTC.
        let clock = Arc::new(ManualClock::new(Timestamp(1_783_339_200_000)));
        let router = Router::builder().config(config).clock(clock.clone()).build().unwrap();
        Desk { router, clock, events: Vec::new() }
    }

    fn skill(&self, name: &str) -> SkillId {
        self.router.skill(name).unwrap()
    }

    fn agent(
        &mut self,
        id: u64,
        skills: &[(&str, u8)],
        languages: &[Language],
        capacity: Capacity,
    ) {
        self.agent_kind(id, AgentKind::Human, skills, languages, capacity);
    }

    fn bot(&mut self, id: u64, languages: &[Language]) {
        let capacity = Capacity { chat: 50, whatsapp: 50, email: 50, total: 200, ..Capacity::ZERO };
        self.agent_kind(id, AgentKind::Bot, &[], languages, capacity);
    }

    fn agent_kind(
        &mut self,
        id: u64,
        kind: AgentKind,
        skills: &[(&str, u8)],
        languages: &[Language],
        capacity: Capacity,
    ) {
        let mut spec = AgentSpec::new(AgentId(id));
        spec.kind = kind;
        spec.skills = skills
            .iter()
            .map(|(name, level)| SkillLevel { skill: self.skill(name), level: *level })
            .collect();
        spec.languages = languages.to_vec();
        spec.capacity = capacity;
        self.router.upsert_agent(spec, &mut self.events).unwrap();
    }

    fn message(
        &self,
        conversation: u64,
        customer: u64,
        channel: Channel,
        needs: &[(&str, u8)],
    ) -> Message {
        let mut message =
            Message::new(ConversationId(conversation), CustomerId(customer), channel, Language::NL);
        for (name, level) in needs {
            message.required.push(SkillLevel { skill: self.skill(name), level: *level });
        }
        message
    }

    fn send(&mut self, message: &Message) -> Event {
        let event = self.router.route(message, &mut self.events);
        self.assert_sound();
        event
    }

    /// The first conversation id above `after` whose ties start at `slot`
    /// (see [`crate::roster::tie_origin`]) with the agents registered now.
    fn starting_at(&self, slot: u32, after: u64) -> u64 {
        let slots = self.router.inner.roster.indexes().slots;
        (after + 1..)
            .find(|&id| crate::roster::tie_origin(ConversationId(id), slots) == slot)
            .expect("some id starts at every slot")
    }

    fn chat(&mut self, conversation: u64, customer: u64, needs: &[(&str, u8)]) -> Event {
        let message = self.message(conversation, customer, Channel::Chat, needs);
        self.send(&message)
    }

    fn close(&mut self, conversation: u64) {
        self.router.close(ConversationId(conversation), &mut self.events).unwrap();
        self.assert_sound();
    }

    fn tick(&mut self, ms: u64) {
        self.clock.advance(ms);
        self.router.advance(&mut self.events);
        self.assert_sound();
    }

    fn holder(&self, conversation: u64) -> Option<u64> {
        self.router.conversation(ConversationId(conversation)).and_then(|c| c.agent).map(|a| a.0)
    }

    fn state(&self, conversation: u64) -> Option<ConversationState> {
        self.router.conversation(ConversationId(conversation)).map(|c| c.state)
    }

    fn load(&self, agent: u64) -> u32 {
        self.router.agent(AgentId(agent)).unwrap().total_load
    }

    fn assert_sound(&self) {
        let problems = self.router.audit();
        assert!(problems.is_empty(), "{problems:#?}");
    }

    fn last_for(&self, conversation: u64) -> Event {
        *self
            .events
            .iter()
            .rev()
            .find(|e| e.conversation == Some(ConversationId(conversation)))
            .unwrap()
    }
}

const NL: &[Language] = &[Language::NL];
const CHAT1: Capacity = Capacity { chat: 1, whatsapp: 1, email: 1, total: 1, ..Capacity::ZERO };
const CHAT2: Capacity = Capacity { chat: 2, whatsapp: 2, email: 2, total: 2, ..Capacity::ZERO };

fn reason(event: &Event) -> Option<AssignReason> {
    match event.kind {
        EventKind::Assigned { reason, .. } | EventKind::Offered { reason, .. } => Some(reason),
        _ => None,
    }
}

#[test]
fn sticky_messages_go_to_the_same_agent_without_taking_capacity_again() {
    let mut desk = Desk::new(RouterConfig::default());
    desk.agent(1, &[("plants", 5)], NL, CHAT2);
    desk.agent(2, &[("plants", 5)], NL, CHAT2);
    let first = desk.chat(10, 100, &[("plants", 3)]);
    let agent = first.agent.unwrap().0;
    for _ in 0..5 {
        let again = desk.chat(10, 100, &[("plants", 3)]);
        assert_eq!(again.agent.unwrap().0, agent);
        assert_eq!(reason(&again), Some(AssignReason::Sticky));
    }
    assert_eq!(desk.load(agent), 1);
}

#[test]
fn reassignment_prefers_earlier_agents_and_queues_when_nobody_is_free() {
    let mut desk = Desk::new(RouterConfig::default());
    desk.agent(1, &[("plants", 5)], NL, CHAT2);
    desk.agent(2, &[("plants", 5)], NL, CHAT2);
    desk.agent(3, &[("plants", 5)], NL, CHAT2);
    // Customer 100 was served by agent 3 before.
    desk.router.set_presence(AgentId(1), Presence::Away, &mut desk.events).unwrap();
    desk.router.set_presence(AgentId(2), Presence::Away, &mut desk.events).unwrap();
    assert_eq!(desk.chat(10, 100, &[]).agent, Some(AgentId(3)));
    desk.close(10);
    desk.router.set_presence(AgentId(1), Presence::Available, &mut desk.events).unwrap();
    desk.router.set_presence(AgentId(2), Presence::Available, &mut desk.events).unwrap();
    // Now agent 1 gets it (least-loaded tie, lowest slot; affinity skipped by a second customer).
    desk.router.set_presence(AgentId(3), Presence::Away, &mut desk.events).unwrap();
    assert_eq!(desk.chat(11, 100, &[]).agent, Some(AgentId(1)));
    desk.router.set_presence(AgentId(3), Presence::Available, &mut desk.events).unwrap();
    // Agent 1 leaves: customer 100's conversation goes to agent 3, who served them before.
    desk.router.set_presence(AgentId(1), Presence::Offline, &mut desk.events).unwrap();
    assert_eq!(desk.holder(11), Some(3));
    assert_eq!(reason(&desk.last_for(11)), Some(AssignReason::Reassignment));
    // Everyone leaves: it waits, it is not dropped.
    desk.router.remove_agent(AgentId(3), &mut desk.events).unwrap();
    desk.router.set_presence(AgentId(2), Presence::Offline, &mut desk.events).unwrap();
    assert_eq!(desk.state(11), Some(ConversationState::Queued));
    assert!(matches!(
        desk.last_for(11).kind,
        EventKind::Queued { reason: QueueReason::Reassignment, .. }
    ));
    // And comes back the moment someone logs in.
    desk.router.set_presence(AgentId(2), Presence::Available, &mut desk.events).unwrap();
    assert_eq!(desk.holder(11), Some(2));
}

#[test]
fn returning_customers_get_their_last_agent_and_may_wait_for_them() {
    let config = RouterConfig { affinity_wait_ms: 30_000, ..RouterConfig::default() };
    let mut desk = Desk::new(config);
    desk.agent(1, &[], NL, CHAT1);
    desk.agent(2, &[], NL, CHAT1);
    assert_eq!(desk.chat(10, 100, &[]).agent, Some(AgentId(1)));
    desk.close(10);
    // Agent 2 is busier in history terms, but customer 100 comes back to agent 1...
    desk.chat(20, 200, &[]); // takes agent 1 (least-loaded tie -> lowest slot)
    assert_eq!(desk.holder(20), Some(1));
    // ...who is now full: customer 100 waits for agent 1 rather than going to agent 2.
    let waiting = desk.chat(11, 100, &[]);
    assert!(matches!(
        waiting.kind,
        EventKind::Queued { reason: QueueReason::WaitingForPreferredAgent, .. }
    ));
    // Agent 1 frees up within the wait: the conversation goes to agent 1.
    desk.tick(10_000);
    desk.close(20);
    assert_eq!(desk.holder(11), Some(1));
    assert_eq!(reason(&desk.last_for(11)), Some(AssignReason::Affinity));

    // Second round: agent 1 stays busy past the wait, so it widens to agent 2.
    desk.chat(21, 201, &[]);
    assert_eq!(desk.holder(21), Some(2));
    desk.close(21);
    desk.close(11);
    desk.chat(22, 202, &[]); // agent 1 busy again
    assert_eq!(desk.holder(22), Some(1));
    let waiting = desk.chat(12, 100, &[]);
    assert!(matches!(waiting.kind, EventKind::Queued { .. }));
    desk.tick(29_000);
    assert_eq!(desk.state(12), Some(ConversationState::Queued));
    desk.tick(1_000);
    assert_eq!(desk.holder(12), Some(2));
}

#[test]
fn a_full_preferred_agent_offered_the_backlog_skips_the_conversation_waiting_for_it() {
    // Regression: draining for the preferred agent while it is still full
    // used to pick the waiting conversation, fail to reserve, and spin.
    let config = RouterConfig { affinity_wait_ms: 30_000, ..RouterConfig::default() };
    let mut desk = Desk::new(config);
    desk.agent(1, &[], NL, CHAT1);
    desk.agent(2, &[], NL, CHAT1);
    desk.chat(10, 100, &[]);
    desk.close(10);
    desk.chat(20, 200, &[]);
    let waiting = desk.chat(11, 100, &[]);
    assert!(matches!(
        waiting.kind,
        EventKind::Queued { reason: QueueReason::WaitingForPreferredAgent, .. }
    ));
    // A presence update (available again) offers agent 1 the backlog while it is full.
    desk.router.set_presence(AgentId(1), Presence::Available, &mut desk.events).unwrap();
    assert_eq!(desk.state(11), Some(ConversationState::Queued));
    desk.close(20);
    assert_eq!(desk.holder(11), Some(1));
}

#[test]
fn affinity_look_back_expires() {
    let config = RouterConfig { affinity_lookback_ms: 60_000, ..RouterConfig::default() };
    let mut desk = Desk::new(config);
    desk.agent(1, &[], NL, CHAT2);
    desk.agent(2, &[], NL, CHAT2);
    desk.router.set_presence(AgentId(1), Presence::Away, &mut desk.events).unwrap();
    assert_eq!(desk.chat(10, 100, &[]).agent, Some(AgentId(2)));
    desk.close(10);
    desk.router.set_presence(AgentId(1), Presence::Available, &mut desk.events).unwrap();
    assert_eq!(reason(&desk.chat(11, 100, &[])), Some(AssignReason::Affinity));
    assert_eq!(desk.holder(11), Some(2));
    desk.close(11);
    desk.tick(61_000);
    // Both idle: the tie goes to the first agent from the conversation's origin.
    let late = desk.chat(desk.starting_at(0, 11), 100, &[]);
    assert_eq!(late.agent, Some(AgentId(1)));
    assert!(matches!(reason(&late), Some(AssignReason::SkillMatch { .. })));
}

#[test]
fn customer_histories_are_forgotten_after_the_look_back() {
    let config = RouterConfig { affinity_lookback_ms: 3_600_000, ..RouterConfig::default() };
    let mut desk = Desk::new(config);
    desk.agent(1, &[], NL, CHAT2);
    desk.chat(10, 100, &[]);
    desk.close(10);
    desk.tick(60_000);
    assert_eq!(desk.router.inner.customers.len(), 1);
    desk.tick(3_600_000);
    assert_eq!(desk.router.inner.customers.len(), 0);
}

#[test]
fn skills_proficiency_language_and_channel_capacity_decide_eligibility() {
    let mut desk = Desk::new(RouterConfig::default());
    desk.agent(1, &[("plants", 3)], NL, CHAT2);
    desk.agent(2, &[("plants", 8)], &[Language::EN], CHAT2);
    desk.agent(
        3,
        &[("plants", 8), ("payments", 6)],
        NL,
        Capacity { email: 1, total: 5, ..Capacity::ZERO },
    );
    desk.agent(4, &[("plants", 8), ("payments", 6)], NL, CHAT2);
    // Needs plants >= 5 in Dutch on chat: agent 1 too weak, 2 speaks no Dutch, 3 has no chat.
    assert_eq!(desk.chat(10, 100, &[("plants", 5)]).agent, Some(AgentId(4)));
    // Two skills: only 3 and 4 have both; on email only 3 has room.
    let email = desk.message(11, 101, Channel::Email, &[("plants", 5), ("payments", 5)]);
    assert_eq!(desk.send(&email).agent, Some(AgentId(3)));
    // Nobody speaks English with payments.
    let mut english = desk.message(12, 102, Channel::Chat, &[("payments", 1)]);
    english.language = Language::EN;
    assert!(matches!(desk.send(&english).kind, EventKind::Queued { .. }));
    // An unknown skill is nobody's.
    assert!(matches!(desk.chat(13, 103, &[("cactus", 1)]).kind, EventKind::Queued { .. }));
}

fn strategy_desk(strategy: Strategy) -> Desk {
    let mut desk =
        Desk::new(RouterConfig { strategy, affinity_lookback_ms: 0, ..RouterConfig::default() });
    let capacity = Capacity { chat: 5, total: 5, ..Capacity::ZERO };
    desk.agent(1, &[("plants", 4)], NL, capacity);
    desk.agent(2, &[("plants", 9)], NL, capacity);
    desk.agent(3, &[("plants", 6)], NL, capacity);
    desk
}

#[test]
fn least_loaded_spreads_work_and_breaks_ties_from_the_conversation_origin() {
    let mut desk = strategy_desk(Strategy::LeastLoaded);
    // Every conversation's ties start at slot 1 (agent 2), wrapping around.
    let mut ids = Vec::new();
    let mut agents = Vec::new();
    for i in 0..6 {
        let id = desk.starting_at(1, ids.last().copied().unwrap_or(0));
        ids.push(id);
        agents.push(desk.chat(id, 100 + i, &[("plants", 1)]).agent.unwrap().0);
    }
    assert_eq!(agents, vec![2, 3, 1, 2, 3, 1]);
    // Another origin breaks the same tie differently.
    desk.close(ids[0]);
    desk.close(ids[2]);
    let from_slot_2 = desk.starting_at(2, ids[5]);
    assert_eq!(desk.chat(from_slot_2, 200, &[("plants", 1)]).agent, Some(AgentId(1)));
    // Loads are now 2, 1, 2: the least loaded wins wherever the origin is.
    let from_slot_0 = desk.starting_at(0, from_slot_2);
    assert_eq!(desk.chat(from_slot_0, 201, &[("plants", 1)]).agent, Some(AgentId(2)));
}

#[test]
fn longest_idle_picks_the_agent_waiting_longest() {
    let mut desk = strategy_desk(Strategy::LongestIdle);
    let mut agents = Vec::new();
    let mut id = 0;
    for i in 0..4 {
        // Ties (never assigned) start at slot 0.
        id = desk.starting_at(0, id);
        agents.push(desk.chat(id, 100 + i, &[("plants", 1)]).agent.unwrap().0);
        desk.tick(1_000);
    }
    assert_eq!(agents, vec![1, 2, 3, 1]);
}

#[test]
fn most_proficient_picks_the_expert_then_the_least_loaded() {
    let mut desk = strategy_desk(Strategy::MostProficient);
    assert_eq!(desk.chat(10, 100, &[("plants", 1)]).agent, Some(AgentId(2)));
    assert_eq!(desk.chat(11, 101, &[("plants", 1)]).agent, Some(AgentId(2)));
    for i in 0..3 {
        desk.chat(12 + i, 102 + i, &[("plants", 1)]);
    }
    // Agent 2 is full at 5: the next best is agent 3.
    assert_eq!(desk.chat(20, 200, &[("plants", 1)]).agent, Some(AgentId(3)));
}

#[test]
fn round_robin_takes_turns() {
    let mut desk = strategy_desk(Strategy::RoundRobin);
    let agents: Vec<_> =
        (0..7).map(|i| desk.chat(10 + i, 100 + i, &[("plants", 1)]).agent.unwrap().0).collect();
    assert_eq!(agents, vec![1, 2, 3, 1, 2, 3, 1]);
}

#[test]
fn the_backlog_serves_urgent_channels_and_high_intent_first_and_ages() {
    let mut desk = Desk::new(RouterConfig { affinity_lookback_ms: 0, ..RouterConfig::default() });
    desk.agent(1, &[], NL, Capacity { chat: 1, email: 1, total: 1, ..Capacity::ZERO });
    desk.chat(1, 1, &[]); // agent busy
    let email = desk.message(2, 2, Channel::Email, &[]);
    desk.send(&email);
    desk.tick(1_000);
    desk.chat(3, 3, &[]);
    let mut hot = desk.message(4, 4, Channel::Chat, &[]);
    hot.buying_intent = 0.9;
    let queued = desk.send(&hot);
    assert!(matches!(queued.kind, EventKind::Queued { position: 0, .. }), "{queued:?}");
    assert_eq!(desk.router.queued(), vec![ConversationId(4), ConversationId(3), ConversationId(2)]);
    desk.close(1);
    assert_eq!(desk.holder(4), Some(1), "high buying intent first");
    desk.close(4);
    assert_eq!(desk.holder(3), Some(1), "chat before email");
    desk.close(3);
    assert_eq!(desk.holder(2), Some(1));

    // Aging: an email that has waited long enough overtakes a fresh chat.
    desk.close(2);
    desk.chat(5, 5, &[]);
    let email = desk.message(6, 6, Channel::Email, &[]);
    desk.send(&email);
    desk.tick(61_000); // 60 points of chat urgency at 1 s per point
    desk.chat(7, 7, &[]);
    assert_eq!(desk.router.queued(), vec![ConversationId(6), ConversationId(7)]);
}

#[test]
fn overflow_widens_step_by_step() {
    let config = RouterConfig {
        affinity_lookback_ms: 0,
        overflow: vec![
            OverflowStep { after_ms: 10_000, widen: Widen::LowerProficiency { by: 3 } },
            OverflowStep { after_ms: 20_000, widen: Widen::SkillGroup { skill: "general".into() } },
            OverflowStep { after_ms: 30_000, widen: Widen::Bot },
        ],
        ..RouterConfig::default()
    };
    let mut desk = Desk::new(config);
    desk.agent(1, &[("plants", 5)], NL, CHAT1);
    desk.agent(2, &[("general", 5)], NL, CHAT1);
    desk.bot(9, NL);
    // Needs plants 7: agent 1 has 5. After 10 s the minimum drops to 4.
    assert!(matches!(desk.chat(10, 100, &[("plants", 7)]).kind, EventKind::Queued { .. }));
    desk.tick(9_999);
    assert_eq!(desk.state(10), Some(ConversationState::Queued));
    desk.tick(1);
    assert_eq!(desk.holder(10), Some(1));
    assert_eq!(reason(&desk.last_for(10)), Some(AssignReason::Overflow { step: 0 }));
    // Needs plants 9 (never met by lowering 3): goes to the general group at 20 s.
    desk.chat(11, 101, &[("plants", 9)]);
    desk.tick(10_000);
    assert_eq!(desk.state(11), Some(ConversationState::Queued));
    desk.tick(10_000);
    assert_eq!(desk.holder(11), Some(2));
    // Everyone busy: at 30 s a bot takes it.
    desk.chat(12, 102, &[("plants", 9)]);
    desk.tick(20_000);
    assert_eq!(desk.state(12), Some(ConversationState::Queued));
    desk.tick(10_000);
    assert_eq!(desk.holder(12), Some(9));
    let steps = desk
        .events
        .iter()
        .filter(|e| {
            e.conversation == Some(ConversationId(12))
                && matches!(e.kind, EventKind::OverflowStep { .. })
        })
        .count();
    assert_eq!(steps, 3);
}

#[test]
fn bots_go_first_and_escalate_to_humans_ahead_of_the_queue() {
    let config =
        RouterConfig { bot_first: true, affinity_lookback_ms: 0, ..RouterConfig::default() };
    let mut desk = Desk::new(config);
    desk.bot(9, NL);
    desk.agent(1, &[("plants", 5)], NL, CHAT1);
    let first = desk.chat(10, 100, &[("plants", 3)]);
    assert_eq!(first.agent, Some(AgentId(9)));
    assert_eq!(reason(&first), Some(AssignReason::BotFirst));
    // A plain follow-up stays with the bot.
    assert_eq!(desk.chat(10, 100, &[]).agent, Some(AgentId(9)));
    // Buying intent over the threshold: escalate to the human.
    let mut buying = desk.message(10, 100, Channel::Chat, &[]);
    buying.buying_intent = 0.8;
    let escalated = desk.send(&buying);
    assert_eq!(escalated.agent, Some(AgentId(1)));
    assert_eq!(reason(&escalated), Some(AssignReason::Escalation));
    assert_eq!(desk.load(9), 0, "the bot's capacity is returned");

    // A second conversation asks for a person while the human is busy: it
    // waits with the bot still answering, and goes ahead of normal waiting.
    desk.chat(11, 101, &[("plants", 3)]);
    let normal = desk.message(12, 102, Channel::Chat, &[("plants", 3)]);
    desk.send(&normal); // bot again
    let mut person = desk.message(11, 101, Channel::Chat, &[]);
    person.signals = Signals { human_request: true, ..Signals::default() };
    let waiting = desk.send(&person);
    assert!(matches!(waiting.kind, EventKind::Queued { reason: QueueReason::Escalation, .. }));
    assert_eq!(waiting.agent, Some(AgentId(9)), "the bot keeps answering meanwhile");
    let mut complaint = desk.message(12, 102, Channel::Chat, &[]);
    complaint.signals = Signals { doubt: true, ..Signals::default() };
    desk.send(&complaint);
    assert_eq!(desk.router.queued(), vec![ConversationId(11), ConversationId(12)]);
    desk.close(10);
    assert_eq!(desk.holder(11), Some(1));
    assert_eq!(reason(&desk.last_for(11)), Some(AssignReason::Escalation));
}

#[test]
fn a_first_message_that_meets_a_trigger_goes_past_the_bots() {
    type Meet = fn(&mut Message);
    let triggers: [(&str, Meet, EscalationTrigger); 4] = [
        ("human request", |m| m.signals.human_request = true, EscalationTrigger::HumanRequest),
        ("complaint", |m| m.signals.complaint = true, EscalationTrigger::Complaint),
        ("doubt", |m| m.signals.doubt = true, EscalationTrigger::Doubt),
        ("buying intent", |m| m.buying_intent = 0.95, EscalationTrigger::BuyingIntent),
    ];
    for (name, meet, trigger) in triggers {
        let config =
            RouterConfig { bot_first: true, affinity_lookback_ms: 0, ..RouterConfig::default() };
        let mut desk = Desk::new(config);
        desk.bot(9, NL);
        desk.agent(1, &[("sales", 5)], NL, CHAT1);
        let mut first = desk.message(10, 100, Channel::Chat, &[("sales", 3)]);
        meet(&mut first);
        let decision = desk.send(&first);
        assert_eq!(decision.agent, Some(AgentId(1)), "{name}: a human takes it");
        assert_eq!(reason(&decision), Some(AssignReason::Escalation), "{name}");
        assert!(
            desk.events.iter().any(|e| e.conversation == Some(ConversationId(10))
                && e.kind == EventKind::Escalated { trigger }),
            "{name}: the escalation and its trigger are reported"
        );
        assert_eq!(desk.load(9), 0, "{name}: the bot never held it");

        // The human is busy now: the next such conversation waits for a
        // human, ahead of conversations that merely wait.
        desk.chat(11, 101, &[("sales", 3)]); // a plain one goes to the bot
        let mut second = desk.message(12, 102, Channel::Chat, &[("sales", 3)]);
        meet(&mut second);
        let waiting = desk.send(&second);
        assert!(
            matches!(waiting.kind, EventKind::Queued { reason: QueueReason::Escalation, .. }),
            "{name}: {waiting:?}"
        );
        assert_eq!(desk.state(12), Some(ConversationState::Queued));
        desk.close(10);
        assert_eq!(desk.holder(12), Some(1), "{name}: the escalation gets the freed human");
    }
}

#[test]
fn without_bot_first_a_first_message_routes_as_before() {
    let mut desk = Desk::new(RouterConfig { affinity_lookback_ms: 0, ..RouterConfig::default() });
    desk.bot(9, NL);
    desk.agent(1, &[("sales", 5)], NL, CHAT1);
    let mut first = desk.message(10, 100, Channel::Chat, &[("sales", 3)]);
    first.signals.human_request = true;
    let decision = desk.send(&first);
    assert_eq!(decision.agent, Some(AgentId(1)));
    assert!(matches!(reason(&decision), Some(AssignReason::SkillMatch { .. })));
}

/// The `why` of a conversation that waits with `no_eligible_agent`.
fn why_of(event: &Event) -> Option<Why> {
    match event.kind {
        EventKind::Queued { reason: QueueReason::NoEligibleAgent, why, .. } => why,
        _ => None,
    }
}

#[test]
fn a_conversation_that_waits_says_which_requirement_nobody_meets() {
    let config = RouterConfig { affinity_lookback_ms: 0, ..RouterConfig::default() };
    let mut desk = Desk::new(config.clone());
    assert_eq!(why_of(&desk.chat(1, 1, &[])), Some(Why::NoAgents));

    desk.agent(1, &[("plants", 4), ("advice", 9)], NL, CHAT1);
    desk.agent(2, &[("plants", 8)], &[Language::EN], CHAT1);
    let plants = desk.skill("plants");
    let advice = desk.skill("advice");
    let tools = desk.skill("tools");
    // Nobody has tools at all; nobody has plants at 9.
    assert_eq!(
        why_of(&desk.chat(2, 2, &[("tools", 1)])),
        Some(Why::NoSkill { skill: tools, level: 1 })
    );
    assert_eq!(
        why_of(&desk.chat(3, 3, &[("plants", 9)])),
        Some(Why::NoSkill { skill: plants, level: 9 })
    );
    // Each skill on its own exists, but not together at these levels.
    assert_eq!(
        why_of(&desk.chat(4, 4, &[("plants", 6), ("advice", 5)])),
        Some(Why::NoSkill { skill: advice, level: 5 })
    );
    // Agent 2 has plants at 8, but speaks English only.
    assert_eq!(
        why_of(&desk.chat(5, 5, &[("plants", 6)])),
        Some(Why::NoLanguage { language: Language::NL })
    );
    // Agent 1 qualifies but is away.
    desk.router.set_presence(AgentId(1), Presence::Away, &mut desk.events).unwrap();
    assert_eq!(why_of(&desk.chat(6, 6, &[("plants", 2)])), Some(Why::Unavailable));
    desk.router.set_presence(AgentId(1), Presence::Available, &mut desk.events).unwrap();
    // Back and given the waiting conversation 1 (the oldest that fits):
    // now at capacity on chat.
    assert_eq!(desk.load(1), 1);
    assert_eq!(
        why_of(&desk.chat(7, 7, &[("plants", 2)])),
        Some(Why::AtCapacity { channel: Channel::Chat })
    );
}

#[test]
fn a_declined_offer_with_nobody_else_says_so() {
    let config = RouterConfig {
        affinity_lookback_ms: 0,
        offers: Some(OfferPolicy { timeout_ms: 60_000, max_missed: 3 }),
        overflow: vec![OverflowStep { after_ms: 10_000, widen: Widen::LowerProficiency { by: 1 } }],
        ..RouterConfig::default()
    };
    let mut desk = Desk::new(config);
    desk.agent(1, &[("plants", 4)], NL, CHAT1);
    let offered = desk.chat(1, 1, &[("plants", 2)]);
    assert!(matches!(offered.kind, EventKind::Offered { .. }));
    desk.router.decline_offer(ConversationId(1), AgentId(1), &mut desk.events).unwrap();
    let queued = desk.last_for(1);
    assert!(
        matches!(
            queued.kind,
            EventKind::Queued { reason: QueueReason::OfferNotTaken, why: None, .. }
        ),
        "only no_eligible_agent explains itself: {queued:?}"
    );
    // The overflow step looks again, without the agent who declined.
    desk.tick(10_000);
    assert_eq!(why_of(&desk.last_for(1)), Some(Why::Declined));
}

#[test]
fn offers_expire_reroute_and_mark_unresponsive_agents() {
    let config = RouterConfig {
        offers: Some(OfferPolicy { timeout_ms: 15_000, max_missed: 2 }),
        affinity_lookback_ms: 0,
        ..RouterConfig::default()
    };
    let mut desk = Desk::new(config);
    desk.agent(1, &[], NL, CHAT2);
    desk.agent(2, &[], NL, CHAT2);
    let offered = desk.chat(10, 100, &[]);
    assert!(matches!(offered.kind, EventKind::Offered { .. }));
    assert_eq!(offered.agent, Some(AgentId(1)));
    assert_eq!(desk.load(1), 1, "an offer reserves capacity");
    desk.router.accept_offer(ConversationId(10), AgentId(1), &mut desk.events).unwrap();
    assert_eq!(desk.state(10), Some(ConversationState::Assigned));
    // Accepting someone else's offer is refused.
    assert!(desk.router.accept_offer(ConversationId(10), AgentId(2), &mut desk.events).is_err());

    // Declined: goes to the other agent.
    let offered = desk.chat(11, 101, &[]);
    assert_eq!(offered.agent, Some(AgentId(2)));
    desk.router.decline_offer(ConversationId(11), AgentId(2), &mut desk.events).unwrap();
    assert_eq!(desk.holder(11), Some(1));
    desk.router.accept_offer(ConversationId(11), AgentId(1), &mut desk.events).unwrap();

    // Agent 2 misses two offers in a row: not responding.
    desk.chat(12, 102, &[]);
    assert_eq!(desk.holder(12), Some(2));
    desk.tick(15_000);
    assert!(
        desk.events.iter().any(
            |e| e.conversation == Some(ConversationId(12)) && e.kind == EventKind::OfferExpired
        )
    );
    assert_eq!(
        desk.state(12),
        Some(ConversationState::Queued),
        "agent 1 is full, agent 2 excluded"
    );
    desk.close(10);
    assert_eq!(desk.holder(12), Some(1));
    desk.router.accept_offer(ConversationId(12), AgentId(1), &mut desk.events).unwrap();
    desk.chat(13, 103, &[]);
    assert_eq!(desk.holder(13), Some(2));
    desk.tick(15_000);
    assert!(
        desk.events
            .iter()
            .any(|e| e.agent == Some(AgentId(2)) && e.kind == EventKind::AgentNotResponding)
    );
    assert_eq!(desk.router.agent(AgentId(2)).unwrap().spec.presence, Presence::NotResponding);
    assert!(matches!(desk.chat(14, 104, &[]).kind, EventKind::Queued { .. }));
}

#[test]
fn capacity_returns_after_wrap_up() {
    let config = RouterConfig { wrap_up_ms: 30_000, ..RouterConfig::default() };
    let mut desk = Desk::new(config);
    desk.agent(1, &[], NL, CHAT1);
    desk.chat(10, 100, &[]);
    desk.close(10);
    assert_eq!(desk.load(1), 1);
    assert!(matches!(desk.chat(11, 101, &[]).kind, EventKind::Queued { .. }));
    desk.tick(29_999);
    assert_eq!(desk.state(11), Some(ConversationState::Queued));
    desk.tick(1);
    assert_eq!(desk.holder(11), Some(1));
    assert_eq!(desk.state(10), None, "released conversations are forgotten");
}

#[test]
fn outside_business_hours_conversations_go_to_bots_or_wait_for_opening() {
    let hours = BusinessHours {
        timezone: "Europe/Amsterdam".into(),
        monday: vec!["09:00-17:00".into()],
        ..BusinessHours::default()
    };
    let config = RouterConfig {
        business_hours: vec![SkillHours { skill: "advice".into(), hours }],
        ..RouterConfig::default()
    };
    let mut desk = Desk::new(config);
    desk.agent(1, &[("advice", 5)], NL, CHAT1);
    // 12:00 UTC = 14:00 in Amsterdam: open.
    assert_eq!(desk.chat(10, 100, &[("advice", 1)]).agent, Some(AgentId(1)));
    desk.close(10);
    // 16:00 UTC = 18:00: closed, nobody but a human with the skill -> waits.
    desk.tick(4 * 3_600_000);
    let closed = desk.chat(11, 101, &[("advice", 1)]);
    assert!(matches!(
        closed.kind,
        EventKind::Queued { reason: QueueReason::OutsideBusinessHours, .. }
    ));
    assert!(desk.events.iter().any(|e| matches!(e.kind, EventKind::OutsideBusinessHours { .. })));
    // With a bot present, the next one goes to the bot.
    desk.bot(9, NL);
    let to_bot = desk.chat(12, 102, &[("advice", 1)]);
    assert_eq!(to_bot.agent, Some(AgentId(9)));
    assert_eq!(reason(&to_bot), Some(AssignReason::AfterHours));
    // Tuesday has no hours; next Monday 09:00 Amsterdam (07:00 UTC) opens and drains the queue.
    desk.tick(6 * 24 * 3_600_000 + 14 * 3_600_000); // Monday 06:00 UTC
    assert_eq!(desk.state(11), Some(ConversationState::Queued));
    desk.tick(3_600_000);
    assert_eq!(desk.holder(11), Some(1));
}

#[test]
fn the_backlog_drains_on_login_capacity_change_and_skill_change() {
    let mut desk = Desk::new(RouterConfig { affinity_lookback_ms: 0, ..RouterConfig::default() });
    assert!(matches!(desk.chat(10, 100, &[("plants", 2)]).kind, EventKind::Queued { .. }));
    desk.agent(1, &[("plants", 5)], NL, CHAT1);
    assert_eq!(desk.holder(10), Some(1), "log-in drains");
    desk.chat(11, 101, &[("plants", 2)]);
    assert_eq!(desk.state(11), Some(ConversationState::Queued));
    desk.router.set_capacity(AgentId(1), CHAT2, &mut desk.events).unwrap();
    assert_eq!(desk.holder(11), Some(1), "capacity change drains");
    desk.chat(12, 102, &[("roses", 2)]);
    desk.router
        .set_capacity(
            AgentId(1),
            Capacity { chat: 3, total: 3, ..Capacity::ZERO },
            &mut desk.events,
        )
        .unwrap();
    assert_eq!(desk.state(12), Some(ConversationState::Queued));
    let skills = vec![
        SkillLevel { skill: desk.skill("plants"), level: 5 },
        SkillLevel { skill: desk.skill("roses"), level: 2 },
    ];
    desk.router.set_skills(AgentId(1), skills, &mut desk.events).unwrap();
    assert_eq!(desk.holder(12), Some(1), "skill change drains");
}

#[test]
fn transfers_check_the_target_and_move_capacity() {
    let mut desk = Desk::new(RouterConfig::default());
    desk.agent(1, &[], NL, CHAT1);
    desk.agent(2, &[], &[Language::EN], CHAT1);
    desk.agent(3, &[], NL, CHAT1);
    let first = desk.starting_at(0, 0);
    desk.chat(first, 100, &[]);
    assert_eq!(desk.holder(first), Some(1));
    let refused = desk.router.transfer(ConversationId(first), AgentId(2), &mut desk.events);
    assert!(matches!(refused, Err(RouterError::AgentCannotTake { .. })));
    desk.router.transfer(ConversationId(first), AgentId(3), &mut desk.events).unwrap();
    assert_eq!(desk.holder(first), Some(3));
    assert_eq!((desk.load(1), desk.load(3)), (0, 1));
    assert_eq!(reason(&desk.last_for(first)), Some(AssignReason::Transfer));
}

#[test]
fn errors_name_what_is_wrong_and_change_nothing() {
    let mut desk = Desk::new(RouterConfig::default());
    let mut spec = AgentSpec::new(AgentId(1));
    spec.capacity.chat = 300;
    assert_eq!(
        desk.router.upsert_agent(spec.clone(), &mut desk.events),
        Err(RouterError::CapacityTooLarge { field: "chat", value: 300, max: 255 })
    );
    spec.capacity.chat = 1;
    spec.skills = vec![SkillLevel { skill: SkillId(0), level: 11 }];
    assert_eq!(
        desk.router.upsert_agent(spec, &mut desk.events),
        Err(RouterError::InvalidProficiency(11))
    );
    assert_eq!(desk.router.stats().agents, 0);
    assert_eq!(
        desk.router.set_presence(AgentId(5), Presence::Away, &mut desk.events),
        Err(RouterError::UnknownAgent(AgentId(5)))
    );
    assert_eq!(
        desk.router.close(ConversationId(5), &mut desk.events),
        Err(RouterError::UnknownConversation(ConversationId(5)))
    );
}

#[test]
fn a_closed_conversation_id_can_open_again() {
    let mut desk = Desk::new(RouterConfig::default());
    desk.agent(1, &[], NL, CHAT1);
    desk.chat(10, 100, &[]);
    desk.close(10);
    assert_eq!(
        desk.router.close(ConversationId(10), &mut desk.events),
        Err(RouterError::UnknownConversation(ConversationId(10))),
        "a closed conversation is forgotten"
    );
    assert_eq!(desk.chat(10, 100, &[]).agent, Some(AgentId(1)));
    assert_eq!(desk.load(1), 1);
}

// ----- Erasure ----------------------------------------------------------------

impl Desk {
    fn erase(&mut self, customer: u64) -> Vec<u64> {
        self.events.clear();
        let erased = self.router.erase_customer(CustomerId(customer), &mut self.events);
        self.assert_sound();
        erased.into_iter().map(|c| c.0).collect()
    }

    fn erased_events(&self) -> Vec<(u64, Option<u64>)> {
        self.events
            .iter()
            .filter(|e| e.kind == EventKind::Erased)
            .map(|e| (e.conversation.unwrap().0, e.agent.map(|a| a.0)))
            .collect()
    }
}

#[test]
fn erasure_removes_assigned_and_queued_conversations_and_frees_capacity_at_once() {
    let config = RouterConfig { wrap_up_ms: 60_000, ..RouterConfig::default() };
    let mut desk = Desk::new(config);
    desk.agent(1, &[], NL, CHAT1);
    desk.chat(11, 100, &[]); // assigned to agent 1
    desk.chat(10, 100, &[]); // queued: agent 1 is full
    desk.chat(20, 200, &[]); // queued behind it
    assert_eq!(desk.router.queued(), vec![ConversationId(10), ConversationId(20)]);

    assert_eq!(desk.erase(100), vec![10, 11]);
    assert_eq!(desk.erased_events(), vec![(10, None), (11, Some(1))]);
    // No wrap-up: the capacity went to the waiting conversation at once.
    assert_eq!(desk.holder(20), Some(1));
    let assigned = desk.events.last().unwrap();
    assert_eq!(assigned.conversation, Some(ConversationId(20)));
    assert!(assigned.is_assignment());
    assert!(!desk.events.iter().any(|e| e.kind == EventKind::Released));
    assert_eq!(desk.state(10), None);
    assert_eq!(desk.state(11), None);
    assert_eq!(desk.router.stats().conversations, 1);
    assert_eq!(desk.router.agent(AgentId(1)).unwrap().holding, vec![ConversationId(20)]);
    // Nothing about them fires later.
    desk.events.clear();
    desk.tick(120_000);
    assert!(desk.events.is_empty(), "{:?}", desk.events);
}

#[test]
fn erasure_during_wrap_up_releases_without_waiting_for_it() {
    let config = RouterConfig { wrap_up_ms: 60_000, ..RouterConfig::default() };
    let mut desk = Desk::new(config);
    desk.agent(1, &[], NL, CHAT1);
    desk.chat(10, 100, &[]);
    desk.close(10);
    assert_eq!(desk.state(10), Some(ConversationState::WrapUp));
    desk.chat(20, 200, &[]);
    assert_eq!(desk.state(20), Some(ConversationState::Queued));
    let timers = desk.router.stats().timers;
    assert_eq!(desk.erase(100), vec![10]);
    assert_eq!(desk.erased_events(), vec![(10, Some(1))]);
    assert_eq!(desk.holder(20), Some(1));
    assert_eq!(desk.router.stats().timers, timers - 1, "the wrap-up timer is dropped");
}

#[test]
fn erasure_withdraws_offers_and_their_timers() {
    let config = RouterConfig {
        offers: Some(OfferPolicy { timeout_ms: 15_000, max_missed: 1 }),
        ..RouterConfig::default()
    };
    let mut desk = Desk::new(config);
    desk.agent(1, &[], NL, CHAT1);
    assert!(matches!(desk.chat(10, 100, &[]).kind, EventKind::Offered { .. }));
    assert_eq!(desk.router.stats().timers, 1);
    assert_eq!(desk.erase(100), vec![10]);
    assert_eq!(desk.erased_events(), vec![(10, Some(1))]);
    assert_eq!(desk.load(1), 0);
    assert_eq!(desk.router.stats().timers, 0);
    // The offer cannot be answered, and the agent is not marked unresponsive.
    assert!(desk.router.accept_offer(ConversationId(10), AgentId(1), &mut desk.events).is_err());
    desk.tick(20_000);
    assert_eq!(desk.router.agent(AgentId(1)).unwrap().spec.presence, Presence::Available);
}

#[test]
fn erasure_of_bot_conversations_frees_the_bot_also_while_escalating() {
    let config =
        RouterConfig { bot_first: true, affinity_lookback_ms: 0, ..RouterConfig::default() };
    let mut desk = Desk::new(config);
    desk.bot(9, NL);
    desk.chat(10, 100, &[]);
    desk.chat(11, 100, &[]);
    assert_eq!(desk.state(10), Some(ConversationState::Bot));
    // Conversation 11 asks for a person; none is logged in: it waits, the bot holding it.
    let mut person = desk.message(11, 100, Channel::Chat, &[]);
    person.signals = Signals { human_request: true, ..Signals::default() };
    desk.send(&person);
    assert_eq!(desk.state(11), Some(ConversationState::Queued));
    assert_eq!(desk.holder(11), Some(9));
    assert_eq!(desk.load(9), 2);
    assert_eq!(desk.erase(100), vec![10, 11]);
    assert_eq!(desk.erased_events(), vec![(10, Some(9)), (11, Some(9))]);
    assert_eq!(desk.load(9), 0);
    assert!(desk.router.queued().is_empty());
    assert_eq!(desk.router.stats().conversations, 0);
}

#[test]
fn erasure_forgets_the_customer_history() {
    let mut desk = Desk::new(RouterConfig::default());
    desk.agent(1, &[], NL, CHAT2);
    desk.agent(2, &[], NL, CHAT2);
    // Customer 100 is served by agent 2 (agent 1 busy at the time).
    let busy = desk.starting_at(0, 0);
    desk.chat(busy, 999, &[]);
    assert_eq!(desk.chat(10, 100, &[]).agent, Some(AgentId(2)));
    desk.close(busy);
    desk.close(10);
    // Both idle now: without erasure customer 100 would go back to agent 2.
    let back = desk.chat(11, 100, &[]);
    assert_eq!((back.agent, reason(&back)), (Some(AgentId(2)), Some(AssignReason::Affinity)));
    desk.close(11);
    assert_eq!(desk.erase(100), Vec::<u64>::new(), "no open conversation left");
    let fresh = desk.chat(desk.starting_at(0, 11), 100, &[]);
    assert_eq!(fresh.agent, Some(AgentId(1)));
    assert!(matches!(reason(&fresh), Some(AssignReason::SkillMatch { .. })));
}

#[test]
fn erasing_an_unknown_customer_does_nothing() {
    let mut desk = Desk::new(RouterConfig::default());
    desk.agent(1, &[], NL, CHAT1);
    desk.chat(10, 100, &[]);
    assert!(desk.erase(555).is_empty());
    assert!(desk.events.is_empty());
    assert_eq!(desk.holder(10), Some(1));
}

#[test]
fn erased_events_serialise_as_erased() {
    let event = Event {
        at: Timestamp(5),
        conversation: Some(ConversationId(1)),
        agent: None,
        kind: EventKind::Erased,
    };
    let json = serde_json::to_value(event).unwrap();
    assert_eq!(json["type"], "erased");
}

#[test]
fn agent_load_sums_the_agents_that_are_not_offline() {
    let mut desk = Desk::new(RouterConfig::default());
    let two = Capacity { chat: 2, total: 2, ..Capacity::ZERO };
    desk.agent(1, &[], &[Language::NL], two);
    desk.agent(2, &[], &[Language::NL], two);
    desk.agent(3, &[], &[Language::NL], two);
    desk.router.set_presence(AgentId(3), Presence::Offline, &mut desk.events).unwrap();
    assert_eq!(
        desk.router.agent_load(),
        AgentLoad { agents: 2, held: 0, capacity: 4, at_capacity: 0 }
    );
    for conversation in 1..=3 {
        let message = desk.message(conversation, conversation, Channel::Chat, &[]);
        desk.send(&message);
    }
    let load = desk.router.agent_load();
    assert_eq!(load, AgentLoad { agents: 2, held: 3, capacity: 4, at_capacity: 1 });
    assert!((load.ratio() - 0.75).abs() < 1e-9);
    desk.router.remove_agent(AgentId(2), &mut desk.events).unwrap();
    assert_eq!(desk.router.agent_load().agents, 1);
    assert_eq!(AgentLoad::default().ratio(), 0.0);
}

#[test]
fn agents_conversations_and_lanes_are_listed_in_order() {
    let mut desk = Desk::new(RouterConfig { affinity_lookback_ms: 0, ..RouterConfig::default() });
    desk.agent(5, &[("plants", 5)], NL, CHAT1);
    desk.agent(2, &[("plants", 5)], &[Language::NL, Language::EN], CHAT1);
    desk.agent(9, &[], NL, CHAT1);
    desk.router.remove_agent(AgentId(9), &mut desk.events).unwrap();
    assert_eq!(desk.router.agent_ids(), [AgentId(5), AgentId(2)], "registration order");

    desk.chat(30, 1, &[("plants", 1)]);
    desk.clock.advance(10);
    desk.chat(20, 2, &[("plants", 1)]);
    desk.clock.advance(10);
    // Both agents busy now: these wait, in two lanes.
    desk.chat(10, 3, &[("plants", 1)]);
    desk.clock.advance(10);
    let mut english = desk.message(40, 4, Channel::Email, &[("plants", 1)]);
    english.language = Language::EN;
    desk.send(&english);
    desk.clock.advance(10);
    desk.chat(50, 5, &[("plants", 1)]);
    let listed: Vec<u64> = desk.router.conversations().iter().map(|c| c.id.0).collect();
    assert_eq!(listed, [30, 20, 10, 40, 50], "oldest first, not by id");
    let lanes = desk.router.queues();
    assert_eq!(lanes.len(), 2, "{lanes:?}");
    assert_eq!(
        (lanes[0].channel, lanes[0].language, lanes[0].depth),
        (Channel::Chat, Language::NL, 2)
    );
    assert_eq!(
        lanes[0].oldest_since,
        desk.router.conversation(ConversationId(10)).unwrap().created_at
    );
    assert_eq!(
        (lanes[1].channel, lanes[1].language, lanes[1].depth),
        (Channel::Email, Language::EN, 1)
    );
}

#[test]
fn a_conversation_keeps_the_customer_of_its_first_message() {
    let mut desk = Desk::new(RouterConfig::default());
    desk.agent(1, &[], NL, CHAT2);
    desk.chat(10, 100, &[]);
    desk.chat(10, 999, &[]);
    let view = desk.router.conversation(ConversationId(10)).unwrap();
    assert_eq!(view.customer, CustomerId(100));
    assert_eq!(view.messages, 2);
    assert!(!desk.router.remembers_customer(CustomerId(999)));
    assert!(desk.router.remembers_customer(CustomerId(100)), "served within the look-back");
}

#[test]
fn a_first_message_that_escalates_outside_opening_hours_waits_for_a_person() {
    let hours = BusinessHours {
        timezone: "Europe/Amsterdam".into(),
        monday: vec!["09:00-17:00".into()],
        ..BusinessHours::default()
    };
    let config = RouterConfig {
        bot_first: true,
        affinity_lookback_ms: 0,
        business_hours: vec![SkillHours { skill: "advice".into(), hours }],
        ..RouterConfig::default()
    };
    let mut desk = Desk::new(config);
    desk.bot(9, NL);
    desk.agent(1, &[("advice", 5)], NL, CHAT1);
    // 16:00 UTC = 18:00 in Amsterdam: closed.
    desk.tick(4 * 3_600_000);
    let plain = desk.chat(10, 100, &[("advice", 1)]);
    assert_eq!(plain.agent, Some(AgentId(9)), "a plain first message goes to the bot");
    let mut person = desk.message(11, 101, Channel::Chat, &[("advice", 1)]);
    person.signals.human_request = true;
    let waiting = desk.send(&person);
    assert!(
        matches!(waiting.kind, EventKind::Queued { reason: QueueReason::OutsideBusinessHours, .. }),
        "{waiting:?}"
    );
    assert_eq!(waiting.agent, None, "not handed to a bot");
    // The next Monday 09:00 in Amsterdam (07:00 UTC): the person takes it.
    desk.tick(159 * 3_600_000);
    assert_eq!(desk.holder(11), Some(1));
    assert_eq!(reason(&desk.last_for(11)), Some(AssignReason::Escalation));
}
