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

/// A state like a tenant's over a manual clock at `start_ms`: its router
/// under `config`, measuring under `measure` when given, new or restored
/// from `saved`.
pub(super) fn tenant_state(
    start_ms: u64,
    config: loket_router::RouterConfig,
    measure: Option<MeterConfig>,
    saved: Option<&TenantSnapshot>,
) -> TenantState {
    let clock = Arc::new(ManualClock::new(Timestamp(start_ms)));
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
    if let Some(measure) = measure {
        state = state.measure(measure).unwrap();
    }
    if let Some(saved) = saved {
        state.restore(saved).unwrap();
    }
    state
}

/// A state like a tenant's: a router with affinity, not measuring.
fn state_from(start_ms: u64, saved: Option<&TenantSnapshot>) -> TenantState {
    let config = loket_router::RouterConfig {
        affinity_lookback_ms: 120_000,
        ..loket_router::RouterConfig::default()
    };
    tenant_state(start_ms, config, None, saved)
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
