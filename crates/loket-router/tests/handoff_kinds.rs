//! Each hand-off kind the pipeline passes on (a request for a person, doubt,
//! a complaint) escalates a conversation under `bot_first`: on its first
//! message, which goes past the bot to a person, and on a later message of
//! a conversation the bot holds, which moves it to a person. Each names its
//! trigger in an `escalated` event, and a plain later message does not.

use std::sync::Arc;

use loket_router::{
    AgentId, AgentKind, AgentSpec, AssignReason, Capacity, Channel, ConversationId, CustomerId,
    EscalationTrigger, Event, EventKind, Language, ManualClock, Message, Router, RouterConfig,
    Signals, Timestamp,
};

const KINDS: [(&str, Signals, EscalationTrigger); 3] = [
    (
        "human request",
        Signals { human_request: true, doubt: false, complaint: false },
        EscalationTrigger::HumanRequest,
    ),
    (
        "doubt",
        Signals { human_request: false, doubt: true, complaint: false },
        EscalationTrigger::Doubt,
    ),
    (
        "complaint",
        Signals { human_request: false, doubt: false, complaint: true },
        EscalationTrigger::Complaint,
    ),
];

const BOT: AgentId = AgentId(9);
const PERSON: AgentId = AgentId(1);

struct Desk {
    router: Router,
    clock: Arc<ManualClock>,
    events: Vec<Event>,
}

impl Desk {
    /// A bot with room for many chats and one person with room for one.
    fn new() -> Desk {
        let clock = Arc::new(ManualClock::new(Timestamp(1_795_424_400_000)));
        let config =
            RouterConfig { bot_first: true, affinity_lookback_ms: 0, ..RouterConfig::default() };
        let router = Router::builder().config(config).clock(clock.clone()).build().unwrap();
        let mut desk = Desk { router, clock, events: Vec::new() };
        for (id, kind, chats) in [(BOT, AgentKind::Bot, 50), (PERSON, AgentKind::Human, 1)] {
            let mut spec = AgentSpec::new(id);
            spec.kind = kind;
            spec.languages = vec![Language::NL, Language::EN];
            spec.capacity = Capacity { chat: chats, total: chats, ..Capacity::ZERO };
            desk.router.upsert_agent(spec, &mut desk.events).unwrap();
        }
        desk
    }

    fn say(&mut self, conversation: u64, signals: Signals) -> Event {
        self.clock.advance(5_000);
        let mut message = Message::new(
            ConversationId(conversation),
            CustomerId(conversation),
            Channel::Chat,
            Language::NL,
        );
        message.signals = signals;
        self.router.route(&message, &mut self.events)
    }

    fn escalations(&self, conversation: u64) -> Vec<EscalationTrigger> {
        self.events
            .iter()
            .filter(|e| e.conversation == Some(ConversationId(conversation)))
            .filter_map(|e| match e.kind {
                EventKind::Escalated { trigger } => Some(trigger),
                _ => None,
            })
            .collect()
    }
}

fn is_escalation(event: &Event) -> bool {
    matches!(event.kind, EventKind::Assigned { reason: AssignReason::Escalation, .. })
}

#[test]
fn a_first_message_of_each_kind_goes_past_the_bot() {
    for (name, signals, trigger) in KINDS {
        let mut desk = Desk::new();
        let decision = desk.say(10, signals);
        assert_eq!(decision.agent, Some(PERSON), "{name}: {decision:?}");
        assert!(is_escalation(&decision), "{name}: {decision:?}");
        assert_eq!(desk.escalations(10), [trigger], "{name}");
    }
}

#[test]
fn a_later_message_of_each_kind_moves_the_conversation_from_the_bot() {
    for (name, signals, trigger) in KINDS {
        let mut desk = Desk::new();
        let first = desk.say(10, Signals::default());
        assert_eq!(first.agent, Some(BOT), "{name}: a plain first message goes to the bot");
        let plain = desk.say(10, Signals::default());
        assert_eq!(plain.agent, Some(BOT), "{name}: a plain later message stays");
        assert!(desk.escalations(10).is_empty(), "{name}");

        let decision = desk.say(10, signals);
        assert_eq!(decision.agent, Some(PERSON), "{name}: {decision:?}");
        assert!(is_escalation(&decision), "{name}: {decision:?}");
        assert_eq!(desk.escalations(10), [trigger], "{name}");
        // Escalated once: the next message of the same kind stays with the
        // person and escalates nothing more.
        let again = desk.say(10, signals);
        assert_eq!(again.agent, Some(PERSON), "{name}: {again:?}");
        assert_eq!(desk.escalations(10), [trigger], "{name}");
    }
}
