//! Proptest strategies for [`crate::ops`]: the same operations the fuzz
//! target decodes, with the same weights, but shrinkable.

use loket_router::{Presence, Strategy as Pick};
use proptest::collection::vec;
use proptest::prelude::*;

use crate::ops::{
    AGENTS, AgentOp, CONVERSATIONS, CUSTOMERS, Limits, MessageOp, Op, SKILLS, STEPS_MS, Scenario,
};

fn presence() -> impl Strategy<Value = Presence> {
    prop_oneof![
        4 => Just(Presence::Available),
        1 => Just(Presence::Away),
        2 => Just(Presence::Offline),
        1 => Just(Presence::NotResponding),
    ]
}

/// An agent skill: mostly levels 1..=10, one in thirty the invalid 0.
fn agent_skill() -> impl Strategy<Value = crate::ops::Skill> {
    let level = prop_oneof![1 => Just(0u8), 29 => 1..=10u8];
    (0..SKILLS, level).prop_map(|(skill, level)| crate::ops::Skill { skill, level })
}

fn limits() -> impl Strategy<Value = Limits> {
    (0..=3u8, 0..=3u8, 0..=3u8, 0..=4u8).prop_map(|(chat, whatsapp, email, total)| Limits {
        chat,
        whatsapp,
        email,
        total,
    })
}

fn agent_op() -> impl Strategy<Value = AgentOp> {
    let languages =
        prop_oneof![1 => Just(0b00u8), 4 => Just(0b01), 2 => Just(0b10), 3 => Just(0b11)];
    (
        0..AGENTS,
        prop::bool::weighted(0.2),
        vec(agent_skill(), 0..=3),
        languages,
        limits(),
        presence(),
    )
        .prop_map(|(agent, bot, skills, languages, limits, presence)| AgentOp {
            agent,
            bot,
            skills,
            languages,
            limits,
            presence,
        })
}

fn message_op() -> impl Strategy<Value = MessageOp> {
    let required =
        (0..SKILLS, 1..=6u8).prop_map(|(skill, level)| crate::ops::Skill { skill, level });
    let signal = prop_oneof![9 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)];
    let count = prop_oneof![2 => Just(0usize), 3 => Just(1), 1 => Just(2)];
    let required = count.prop_flat_map(move |n| vec(required.clone(), n));
    let language = prop_oneof![7 => Just(0u8), 3 => Just(1u8)];
    (0..CONVERSATIONS, 0..CUSTOMERS, 0..3u8, language, required, 0..=3u8, 0..=10u8, signal)
        .prop_map(|(conversation, customer, channel, language, required, tier, intent, signal)| {
            MessageOp { conversation, customer, channel, language, required, tier, intent, signal }
        })
}

/// One operation, weighted as [`Op`]'s `Arbitrary` impl: mostly messages.
pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => agent_op().prop_map(Op::Upsert),
        2 => (0..AGENTS, presence()).prop_map(|(agent, presence)| Op::Presence { agent, presence }),
        1 => (0..AGENTS, limits()).prop_map(|(agent, limits)| Op::Capacity { agent, limits }),
        1 => (0..AGENTS, vec(agent_skill(), 0..=3)).prop_map(|(agent, skills)| Op::Skills { agent, skills }),
        1 => (0..AGENTS).prop_map(|agent| Op::Remove { agent }),
        6 => message_op().prop_map(Op::Message),
        3 => (0..CONVERSATIONS).prop_map(|conversation| Op::Close { conversation }),
        1 => (0..CONVERSATIONS, 0..AGENTS)
            .prop_map(|(conversation, agent)| Op::Transfer { conversation, agent }),
        2 => (0..CONVERSATIONS, prop::bool::weighted(0.67))
            .prop_map(|(conversation, accept)| Op::Answer { conversation, accept }),
        3 => (0..STEPS_MS.len() as u8).prop_map(|step| Op::Advance { step }),
    ]
}

/// A sequence of up to `max` operations.
pub fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
    vec(op(), 0..=max)
}

/// Any scenario.
pub fn scenario() -> impl Strategy<Value = Scenario> {
    let pick = prop_oneof![
        Just(Pick::LeastLoaded),
        Just(Pick::LongestIdle),
        Just(Pick::MostProficient),
        Just(Pick::RoundRobin),
    ];
    let knobs = (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>());
    (pick, knobs, any::<bool>()).prop_map(
        |(strategy, (bot_first, affinity, wrap_up, overflow, offers), sla_aware)| Scenario {
            strategy,
            bot_first,
            affinity,
            wrap_up,
            overflow,
            offers,
            sla_aware,
        },
    )
}
