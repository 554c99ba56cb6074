//! Text in, decision out: intent to skills, buying intent to priority and
//! escalation, handoff signals to escalation, stock attached to product
//! questions, all through a real router, model and catalog.

use std::sync::Arc;

use loket_catalog::Catalog;
use loket_intent::{HandoffKind, IntentId, Model, Score, Signals};
use loket_pipeline::{Escalation, EscalationSource, Inbound, Pipeline, PipelineConfig};
use loket_router::{
    AgentId, AgentKind, AgentSpec, AssignReason, Capacity, Channel, ConversationId, CustomerId,
    EscalationTrigger, Event, EventKind, Language, ManualClock, QueueReason, Router, RouterConfig,
    SkillLevel, Timestamp,
};

const CATALOG: &str = "sku,name,latin_name,aliases,category,stock,price\n\
    B1,Bananenboom Musa basjoo,Musa basjoo,,tropisch,3,24.95\n\
    O1,Olijfboom,Olea europaea,,mediterraan,0,39.95\n\
    C1,Citroenboom,Citrus limon,,mediterraan,5,29.95\n";

struct Shop {
    pipeline: Pipeline,
    clock: Arc<ManualClock>,
    events: Vec<Event>,
    scratch: loket_pipeline::Scratch,
}

impl Shop {
    fn new(config: RouterConfig) -> Shop {
        let clock = Arc::new(ManualClock::new(Timestamp(1_795_424_400_000)));
        let router = Router::builder().config(config).clock(clock.clone()).build().unwrap();
        let (catalog, report) = Catalog::from_csv_reader(CATALOG.as_bytes()).unwrap();
        assert_eq!(report.imported, 3);
        let pipeline = Pipeline::new(
            router,
            Model::builtin(),
            Some(Arc::new(catalog)),
            PipelineConfig::default(),
        )
        .unwrap();
        let scratch = pipeline.scratch();
        Shop { pipeline, clock, events: Vec::new(), scratch }
    }

    fn agent(&mut self, id: u64, kind: AgentKind, skills: &[&str], capacity: Capacity) {
        let router = self.pipeline.router();
        let mut spec = AgentSpec::new(AgentId(id));
        spec.kind = kind;
        spec.languages = vec![Language::NL, Language::EN];
        spec.skills = skills
            .iter()
            .map(|s| SkillLevel { skill: router.skill(s).unwrap(), level: 5 })
            .collect();
        spec.capacity = capacity;
        router.upsert_agent(spec, &mut self.events).unwrap();
    }

    fn say(&mut self, conversation: u64, text: &str) -> loket_pipeline::Outcome {
        self.clock.advance(5_000);
        let inbound = Inbound::new(
            ConversationId(conversation),
            CustomerId(conversation),
            Channel::Chat,
            text,
        );
        self.pipeline.handle(&inbound, &mut self.scratch, &mut self.events)
    }
}

const ONE: Capacity = Capacity { chat: 1, total: 1, ..Capacity::ZERO };
const BOT: Capacity = Capacity { chat: 50, total: 50, ..Capacity::ZERO };

#[test]
fn intents_choose_the_skill_group() {
    let mut shop = Shop::new(RouterConfig::default());
    shop.agent(1, AgentKind::Human, &["sales"], ONE);
    shop.agent(2, AgentKind::Human, &["service"], ONE);
    shop.agent(3, AgentKind::Human, &["returns"], ONE);
    assert_eq!(shop.say(10, "wat kost de olijfboom?").decision.agent, Some(AgentId(1)));
    assert_eq!(
        shop.say(11, "waar blijft mijn pakket, ik heb vorige week besteld").decision.agent,
        Some(AgentId(2))
    );
    assert_eq!(shop.say(12, "ik wil de potten terugsturen").decision.agent, Some(AgentId(3)));
}

#[test]
fn product_questions_carry_stock_and_service_questions_do_not() {
    let mut shop = Shop::new(RouterConfig::default());
    shop.agent(1, AgentKind::Human, &["sales", "service"], Capacity::default());
    let outcome = shop.say(10, "hebben jullie nog bananenbomen op voorraad?");
    assert_eq!(&*outcome.products[0].sku, "B1");
    assert_eq!(outcome.products[0].stock, 3);
    assert!(outcome.products[0].in_stock);
    let outcome = shop.say(11, "do you have olive trees in stock");
    assert_eq!(&*outcome.products[0].sku, "O1");
    assert!(!outcome.products[0].in_stock, "found, and marked out of stock");
    assert_eq!(outcome.language, Language::EN);
    let outcome = shop.say(12, "waar blijft mijn pakket");
    assert!(outcome.products.is_empty());
}

#[test]
fn a_conversation_turning_to_buying_escalates_from_bot_to_human() {
    let config = RouterConfig { bot_first: true, ..RouterConfig::default() };
    let mut shop = Shop::new(config);
    shop.agent(9, AgentKind::Bot, &[], BOT);
    shop.agent(1, AgentKind::Human, &["sales", "service"], Capacity::default());
    let first = shop.say(10, "hoi");
    assert_eq!(first.decision.agent, Some(AgentId(9)));
    let mut escalated = None;
    for text in [
        "wat kost de citroenboom?",
        "kan ik met ideal betalen?",
        "kunnen jullie een betaallink sturen?",
    ] {
        let outcome = shop.say(10, text);
        if outcome.decision.agent == Some(AgentId(1)) {
            escalated = Some(outcome);
            break;
        }
    }
    let escalated = escalated.expect("buying intent hands the conversation to a human");
    assert!(escalated.conversation_score >= 0.7, "{}", escalated.conversation_score);
    assert!(matches!(
        escalated.decision.kind,
        EventKind::Assigned { reason: AssignReason::Escalation, .. }
    ));
    assert!(shop.events.iter().any(|e| matches!(
        e.kind,
        EventKind::Escalated { trigger: EscalationTrigger::BuyingIntent }
    )));
}

#[test]
fn asking_for_a_person_escalates_at_once_and_goes_ahead_in_the_queue() {
    let config = RouterConfig { bot_first: true, ..RouterConfig::default() };
    let mut shop = Shop::new(config);
    shop.agent(9, AgentKind::Bot, &[], BOT);
    shop.agent(1, AgentKind::Human, &["sales", "service"], ONE);
    shop.say(20, "hallo");
    shop.say(21, "hallo");
    shop.say(22, "goedemiddag");
    // Agent 1 takes the first escalation; the next ones wait, the bot still answering.
    let taken = shop.say(20, "ik wil een medewerker spreken");
    assert_eq!(taken.decision.agent, Some(AgentId(1)));
    let waiting = shop.say(21, "ik twijfel nog tussen de twee");
    assert!(
        matches!(waiting.decision.kind, EventKind::Queued { reason: QueueReason::Escalation, .. }),
        "{waiting:?}"
    );
    let person = shop.say(22, "mag ik een echt persoon spreken alsjeblieft");
    assert!(matches!(
        person.decision.kind,
        EventKind::Queued { reason: QueueReason::Escalation, .. }
    ));
    assert_eq!(
        shop.pipeline.router().queued(),
        vec![ConversationId(21), ConversationId(22)],
        "escalations in order of waiting"
    );
    shop.pipeline.close(ConversationId(20), &mut shop.events).unwrap();
    assert_eq!(
        shop.pipeline.router().conversation(ConversationId(21)).unwrap().agent,
        Some(AgentId(1))
    );
}

#[test]
fn a_conversation_that_goes_cold_cools_down() {
    let mut shop = Shop::new(RouterConfig::default());
    shop.agent(1, AgentKind::Human, &["sales"], ONE);
    let hot = shop.say(30, "kan ik met ideal betalen?").conversation_score;
    shop.clock.advance(3_600_000);
    let later = shop.pipeline.conversation_score(ConversationId(30)).unwrap();
    assert!(later < hot / 10.0, "{hot} -> {later}");
}

#[test]
fn scoring_apart_from_routing_decides_the_same_and_scores_survive_a_restore() {
    let texts = ["hoi", "is de olijfboom op voorraad?", "kan ik met ideal betalen?", "ok"];
    let mut whole = Shop::new(RouterConfig::default());
    let mut split = Shop::new(RouterConfig::default());
    for shop in [&mut whole, &mut split] {
        shop.agent(1, AgentKind::Human, &["sales", "service"], ONE);
        shop.agent(2, AgentKind::Human, &["sales", "service"], ONE);
    }
    for (i, text) in texts.iter().enumerate() {
        let conversation = 40 + (i as u64 % 2);
        let expected = whole.say(conversation, text);
        split.clock.advance(5_000);
        let inbound = Inbound::new(
            ConversationId(conversation),
            CustomerId(conversation),
            Channel::Chat,
            text,
        );
        let score = split.pipeline.score(text, &mut split.scratch);
        let routed = split.pipeline.route_scored(&inbound, &score, &mut split.events);
        assert_eq!(score, expected.score);
        assert_eq!(routed.decision, expected.decision);
        assert_eq!(routed.conversation_score, expected.conversation_score);
        assert_eq!(split.pipeline.products(text, &score), expected.products);
    }
    assert_eq!(split.events, whole.events);

    let saved = split.pipeline.conversation_scores();
    assert_eq!(saved.len(), 2);
    split.pipeline.forget(ConversationId(40));
    assert_eq!(split.pipeline.conversation_score(ConversationId(40)), None);
    split.pipeline.restore_conversation_scores(saved.clone());
    assert_eq!(split.pipeline.conversation_scores(), saved);
}

#[test]
fn a_first_message_with_a_hand_off_signal_goes_to_a_person_at_once() {
    for (text, trigger) in [
        (
            "mag ik een medewerker spreken? ik wil een klacht indienen",
            EscalationTrigger::HumanRequest,
        ),
        ("dit is echt belachelijk, al drie weken niks gehoord", EscalationTrigger::Complaint),
        ("ik twijfel tussen de twee jassen", EscalationTrigger::Doubt),
    ] {
        let mut shop = Shop::new(RouterConfig { bot_first: true, ..RouterConfig::default() });
        shop.agent(9, AgentKind::Bot, &[], BOT);
        shop.agent(1, AgentKind::Human, &["sales", "service", "returns"], ONE);
        let outcome = shop.say(10, text);
        assert_eq!(outcome.decision.agent, Some(AgentId(1)), "{text}: {:?}", outcome.decision);
        assert!(
            matches!(
                outcome.decision.kind,
                EventKind::Assigned { reason: AssignReason::Escalation, .. }
            ),
            "{text}: {:?}",
            outcome.decision
        );
        assert!(
            shop.events.iter().any(|e| e.kind == EventKind::Escalated { trigger }),
            "{text}: {:?}",
            shop.events
        );
        // A plain first message still starts with the bot.
        let plain = shop.say(11, "hallo, goedemorgen");
        assert_eq!(plain.decision.agent, Some(AgentId(9)), "{:?}", plain.decision);
    }
}

/// Messages of each hand-off kind, Dutch and English, with the router's
/// trigger for it.
const HANDOFFS: &[(&str, HandoffKind, EscalationTrigger)] = &[
    ("Vallen de schoenen groot of klein uit?", HandoffKind::Doubt, EscalationTrigger::Doubt),
    ("Kan deze auto mijn caravan wel trekken?", HandoffKind::Doubt, EscalationTrigger::Doubt),
    (
        "I can't decide between the 128 GB and the 256 GB model",
        HandoffKind::Doubt,
        EscalationTrigger::Doubt,
    ),
    (
        "Waardeloze service, niemand reageert op mijn mails",
        HandoffKind::Complaint,
        EscalationTrigger::Complaint,
    ),
    (
        "still no refund after three weeks, I've emailed four times",
        HandoffKind::Complaint,
        EscalationTrigger::Complaint,
    ),
    ("kan iemand me ff terugbellen?", HandoffKind::Human, EscalationTrigger::HumanRequest),
    ("can i talk to a real person", HandoffKind::Human, EscalationTrigger::HumanRequest),
];

fn bot_first_shop() -> Shop {
    let mut shop = Shop::new(RouterConfig { bot_first: true, ..RouterConfig::default() });
    shop.agent(9, AgentKind::Bot, &[], BOT);
    shop.agent(1, AgentKind::Human, &["sales", "service", "returns"], ONE);
    shop
}

/// The outcome went to the person with reason escalation, an `escalated`
/// event named the trigger, and the model's judgement explains it.
fn assert_escalated(
    shop: &Shop,
    outcome: &loket_pipeline::Outcome,
    text: &str,
    kind: HandoffKind,
    trigger: EscalationTrigger,
) {
    assert_eq!(outcome.decision.agent, Some(AgentId(1)), "{text}: {:?}", outcome.decision);
    assert!(
        matches!(
            outcome.decision.kind,
            EventKind::Assigned { reason: AssignReason::Escalation, .. }
        ),
        "{text}: {:?}",
        outcome.decision
    );
    assert!(
        shop.events.iter().any(|e| e.kind == EventKind::Escalated { trigger }),
        "{text}: {:?}",
        shop.events
    );
    assert_eq!(outcome.handoff.kind, kind, "{text}: {:?}", outcome.handoff);
    assert!(outcome.handoff.p >= shop.pipeline.model().handoff_threshold(), "{text}");
    assert!(!outcome.handoff.words.is_empty(), "{text}: {:?}", outcome.handoff);
    assert_eq!(outcome.escalation.source, EscalationSource::Model, "{text}");
    let s = outcome.escalation.signals;
    let set = [s.human_request, s.doubt, s.complaint];
    assert_eq!(set.iter().filter(|&&b| b).count(), 1, "{text}: one reason, {s:?}");
}

#[test]
fn a_first_message_of_each_hand_off_kind_goes_past_the_bot() {
    for &(text, kind, trigger) in HANDOFFS {
        let mut shop = bot_first_shop();
        let outcome = shop.say(10, text);
        assert_escalated(&shop, &outcome, text, kind, trigger);
    }
}

#[test]
fn a_later_message_of_each_hand_off_kind_takes_the_conversation_from_the_bot() {
    for &(text, kind, trigger) in HANDOFFS {
        let mut shop = bot_first_shop();
        let first = shop.say(10, "hallo, ik heb een vraag");
        assert_eq!(first.decision.agent, Some(AgentId(9)), "{text}: {:?}", first.decision);
        assert_eq!(first.handoff.kind, HandoffKind::None);
        assert!(!first.escalation.any());
        let second = shop.say(10, "wat kost die dan?");
        assert_eq!(second.decision.agent, Some(AgentId(9)), "{text}: a plain question stays");
        let outcome = shop.say(10, text);
        assert_escalated(&shop, &outcome, text, kind, trigger);
    }
}

#[test]
fn plain_questions_about_sizes_stay_with_the_bot() {
    let mut shop = bot_first_shop();
    for (i, text) in
        ["Welke maten heeft deze broek?", "do you have a size chart", "hoe lang is de levertijd"]
            .iter()
            .enumerate()
    {
        let outcome = shop.say(20 + i as u64, text);
        assert_eq!(outcome.decision.agent, Some(AgentId(9)), "{text}: {:?}", outcome.decision);
        assert_eq!(outcome.handoff.kind, HandoffKind::None, "{text}");
        assert_eq!(outcome.escalation, Escalation::default(), "{text}");
    }
    // The lexicon still names the size (for explanations), but the model
    // decides.
    let outcome = shop.say(30, "Welke maten heeft deze broek?");
    assert!(outcome.score.signals.contains(Signals::SIZE_DOUBT));
}

#[test]
fn scores_no_hand_off_head_judged_escalate_on_the_lexicon() {
    let mut shop = bot_first_shop();
    let route = |shop: &mut Shop, conversation: u64, signals: Signals| {
        shop.clock.advance(5_000);
        let score = Score {
            intent: IntentId::OOS,
            confidence: 0.0,
            buying_intent: 0.0,
            language: loket_intent::Language::Dutch,
            signals,
        };
        let inbound = Inbound::new(
            ConversationId(conversation),
            CustomerId(conversation),
            Channel::Chat,
            "(stored score)",
        );
        shop.pipeline.route_scored(&inbound, &score, &mut shop.events)
    };
    // A score stored before there was a hand-off head: the lexicon decides.
    let routed = route(&mut shop, 40, Signals::COMPLAINT | Signals::QUESTION);
    assert_eq!(routed.escalation.source, EscalationSource::Lexicon);
    assert!(routed.escalation.signals.complaint);
    assert_eq!(routed.decision.agent, Some(AgentId(1)), "{:?}", routed.decision);
    // A judged score: the model's none wins over the lexicon's size doubt.
    let routed = route(&mut shop, 41, Signals::SIZE_DOUBT | Signals::HANDOFF_JUDGED);
    assert_eq!(routed.escalation, Escalation::default());
    assert_eq!(routed.decision.agent, Some(AgentId(9)), "{:?}", routed.decision);
    // And its doubt escalates without any lexicon signal.
    let routed = route(&mut shop, 42, Signals::HANDOFF_JUDGED | Signals::HANDOFF_DOUBT);
    assert!(routed.escalation.signals.doubt && routed.escalation.source == EscalationSource::Model);
    assert!(matches!(
        routed.decision.kind,
        EventKind::Queued { reason: QueueReason::Escalation, .. }
    ));
}
