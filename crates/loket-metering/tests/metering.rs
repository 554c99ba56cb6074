//! A router driven through a bot-first conversation, measured: the facts
//! the bridge derives from the router's events give the expected report.

use std::sync::Arc;

use loket_metering::Metering;
use loket_report::{Currency, Dimension, Interval, MeterConfig, Money, Query, Report};
use loket_router::{
    AgentId, AgentKind, AgentSpec, Channel, ConversationId, CustomerId, Event, Language,
    ManualClock, Message, Presence, Router, RouterConfig, SkillLevel, Timestamp,
};

struct World {
    clock: Arc<ManualClock>,
    router: Router,
    metering: Metering,
    events: Vec<Event>,
}

impl World {
    fn new() -> World {
        let clock = Arc::new(ManualClock::new(Timestamp(0)));
        let config = RouterConfig { bot_first: true, ..RouterConfig::default() };
        let router = Router::builder().config(config).clock(clock.clone()).build().unwrap();
        let metering = Metering::new(MeterConfig::default()).unwrap();
        let mut world = World { clock, router, metering, events: Vec::new() };
        let sales = world.router.skill("sales").unwrap();
        for (id, kind, team) in [(1, AgentKind::Bot, None), (2, AgentKind::Human, Some("webshop"))]
        {
            let mut spec = AgentSpec::new(AgentId(id));
            spec.kind = kind;
            spec.languages = vec![Language::NL];
            spec.skills = vec![SkillLevel { skill: sales, level: 5 }];
            spec.team = team.map(str::to_owned);
            world.metering.agent(&spec);
            world.router.upsert_agent(spec, &mut world.events).unwrap();
        }
        world.events.clear();
        world
    }

    fn at(&mut self, ms: u64) {
        self.clock.set(Timestamp(ms));
        self.router.advance(&mut self.events);
        self.metering.advance(ms);
        self.settle();
    }

    fn settle(&mut self) {
        self.metering.decisions(&self.events);
        self.events.clear();
    }

    fn message(&mut self, conversation: u64, human_request: bool) {
        let mut message =
            Message::new(ConversationId(conversation), CustomerId(9), Channel::Chat, Language::NL);
        message.required.push(SkillLevel { skill: self.router.skill("sales").unwrap(), level: 2 });
        message.signals.human_request = human_request;
        let router = &self.router;
        let now = router.now().0;
        self.metering.message(now, &message, "sales.product", |s| router.skill_name(s)).unwrap();
        self.router.route(&message, &mut self.events);
        self.settle();
    }

    fn report(&self, group_by: Vec<Dimension>) -> Report {
        let query = Query { from: 0, to: 3_600_000, interval: Interval::Hour, group_by };
        self.metering
            .report(&query, |agent| Some(["", "bot", "anna"][agent.0 as usize].to_owned()))
            .unwrap()
    }
}

#[test]
fn a_bot_first_conversation_handed_to_a_person_is_measured_from_the_hand_off() {
    let mut world = World::new();
    // 0 s: the first message goes to the bot (bot first).
    world.message(7, false);
    // 5 s: the bot replies; bot replies never stop the first-response clock.
    world.at(5_000);
    world.metering.reply(5_000, ConversationId(7), AgentId(1)).unwrap();
    // 10 s: the customer asks for a person: escalation, Anna is assigned.
    world.at(10_000);
    world.message(7, true);
    // 40 s: Anna replies: first response 30 s after the hand-off.
    world.at(40_000);
    world.metering.reply(40_000, ConversationId(7), AgentId(2)).unwrap();
    // 100 s: closed; 200 s: an order follows.
    world.at(100_000);
    world.router.close(ConversationId(7), &mut world.events).unwrap();
    world.settle();
    world.at(200_000);
    let order = Money::from_decimal(49.95, Currency::EUR).unwrap();
    world.metering.order(200_000, ConversationId(7), order).unwrap();

    let report = world.report(vec![Dimension::Queue, Dimension::Team, Dimension::Agent]);
    let totals = &report.totals;
    assert_eq!((totals.offered, totals.answered, totals.abandoned), (1, 1, 0));
    assert_eq!(totals.escalations, 1);
    assert_eq!(totals.bot_resolved, 0);
    assert_eq!(totals.first_response_ms.p50, Some(30_000));
    assert_eq!(totals.wait_ms.p50, Some(0), "Anna was assigned at the hand-off");
    assert_eq!(totals.resolution_ms.p50, Some(100_000));
    assert_eq!(totals.conversions, 1);
    assert_eq!(totals.revenue.get("EUR"), Some(&49.95));
    let keys: Vec<(Dimension, &str)> =
        report.groups.iter().map(|row| (row.group, row.key.as_str())).collect();
    assert_eq!(
        keys,
        [(Dimension::Queue, "sales:2"), (Dimension::Team, "webshop"), (Dimension::Agent, "anna")]
    );
    assert_eq!(*world.metering.meter().rejections(), loket_report::Rejections::default());
}

#[test]
fn sticky_messages_change_nothing_and_a_snapshot_restores_the_same_reports() {
    let mut world = World::new();
    world.message(7, true);
    for second in 1..5 {
        world.at(second * 1_000);
        world.message(7, false);
    }
    world.at(20_000);
    world.metering.reply(20_000, ConversationId(7), AgentId(2)).unwrap();
    let report = world.report(vec![Dimension::Agent]);
    assert_eq!(report.totals.offered, 1);
    assert_eq!(report.totals.first_response_ms.p50, Some(20_000));
    // The first message asked for a person: the bot-first policy escalates
    // it at once, and the meter counts that escalation.
    assert_eq!(report.totals.escalations, 1);
    assert_eq!(report.totals.wait_ms.p50, Some(0));

    let saved = serde_json::to_string(&world.metering).unwrap();
    let restored: Metering = serde_json::from_str::<Metering>(&saved).unwrap().restored();
    let query = Query { from: 0, to: 3_600_000, interval: Interval::Hour, group_by: vec![] };
    let name = |agent: AgentId| Some(agent.0.to_string());
    assert_eq!(
        restored.report(&query, name).unwrap(),
        world.metering.report(&query, name).unwrap()
    );
}

#[test]
fn a_chat_left_unanswered_fires_its_sla_warning_then_its_breach() {
    let mut world = World::new();
    // No bot, no person free: the conversation waits for a person.
    world.router.remove_agent(AgentId(1), &mut world.events).unwrap();
    world.router.remove_agent(AgentId(2), &mut world.events).unwrap();
    world.settle();
    world.message(8, false);
    world.at(120_000);
    let fired: Vec<(String, u64)> = world
        .metering
        .take_sla_events()
        .iter()
        .map(|e| (serde_json::to_value(e.kind).unwrap().as_str().unwrap().to_owned(), e.at))
        .collect();
    // Chat's first-reply target is 60 s; the warning comes at 80%.
    assert_eq!(fired, [("sla_warning".to_owned(), 48_000), ("sla_breached".to_owned(), 60_001)]);
    assert!(world.metering.take_sla_events().is_empty());
}

#[test]
fn occupancy_is_held_time_over_staffed_capacity_time_for_people_only() {
    let mut world = World::new();
    // Anna (capacity: the default's channel limits capped at 10 at once)
    // is staffed from the first fact, at 0 s. The bot counts for nothing.
    world.message(7, true); // escalated at once: Anna holds it from 0 s
    world.at(30_000);
    world.message(8, true); // and this one from 30 s
    world.at(60_000);
    world.router.close(ConversationId(7), &mut world.events).unwrap();
    world.settle(); // no wrap-up: released at 60 s
    world.at(90_000);
    // Anna goes away at 90 s: conversation 8 returns to the queue, and she
    // is no longer staffed.
    world.router.set_presence(AgentId(2), Presence::Away, &mut world.events).unwrap();
    world.settle();
    world.metering.agent_changed(90_000, &world.router, AgentId(2));
    world.at(120_000);

    // Held: 60 s of conversation 7 and 60 s of conversation 8; staffed:
    // 90 s at 10 conversations.
    let expected = (60_000.0 + 60_000.0) / (90_000.0 * 10.0);
    let report = world.report(vec![Dimension::Team, Dimension::Agent, Dimension::Channel]);
    assert_eq!(report.totals.occupancy, Some(expected));
    for row in &report.groups {
        match row.group {
            Dimension::Team | Dimension::Agent => {
                assert_eq!(row.measures.occupancy, Some(expected), "{}", row.key)
            }
            _ => assert_eq!(row.measures.occupancy, None, "{:?} {}", row.group, row.key),
        }
    }
    // A snapshot taken now restores the same occupancy, pending time included.
    let saved = serde_json::to_string(&world.metering).unwrap();
    let mut restored: Metering = serde_json::from_str::<Metering>(&saved).unwrap().restored();
    assert_eq!(restored.meter().report(&query_hour()).unwrap().totals.occupancy, Some(expected));
    // Back at 180 s for a minute more: both copies count the same.
    for metering in [&mut world.metering, &mut restored] {
        let mut spec = AgentSpec::new(AgentId(2));
        spec.team = Some("webshop".into());
        metering.agent_at(180_000, &spec);
        metering.advance(240_000);
    }
    let expected = 120_000.0 / (150_000.0 * 10.0);
    assert_eq!(
        world.metering.meter().report(&query_hour()).unwrap().totals.occupancy,
        Some(expected)
    );
    assert_eq!(
        restored.meter().report(&query_hour()).unwrap(),
        world.metering.meter().report(&query_hour()).unwrap()
    );
}

fn query_hour() -> Query {
    Query { from: 0, to: 3_600_000, interval: Interval::Hour, group_by: vec![Dimension::Agent] }
}
