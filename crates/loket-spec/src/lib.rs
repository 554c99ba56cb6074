//! An executable specification of Loket's routing policy, and the harness
//! that checks `loket-router` against it.
//!
//! [`Model`] is the routing policy written as plainly as possible: `Vec`s,
//! linear scans, one thread. It covers agents (registration, presence,
//! capacity and skill changes, removal), messages (new conversations, sticky
//! messages, required skills, buying intent, hand-off signals), closes,
//! transfers, time and wrap-up, customer affinity with a look-back, every
//! selection strategy, the priority queue with aging, draining on every
//! event, reassignment when an agent leaves, bot-first routing, escalation
//! to humans, overflow steps (lower proficiency, skill group, bots) and
//! offer mode (accept, decline, expiry, not-responding agents).
//!
//! [`ops`] generates operation sequences over small id spaces and runs them
//! against a [`loket_router::Router`] and the model in lock-step; the two
//! must agree on every event and on every agent's and conversation's state
//! afterwards. The same check backs the `router_ops` fuzz target, the
//! router's property tests and the seed-corpus replay.
//!
//! ```
//! use loket_spec::ops::{AgentOp, Limits, MessageOp, Op, run_differential};
//! use loket_router::Presence;
//!
//! let agent = AgentOp {
//!     agent: 1,
//!     bot: false,
//!     skills: vec![],
//!     languages: 0b01,
//!     limits: Limits { chat: 1, whatsapp: 0, email: 0, total: 1 },
//!     presence: Presence::Available,
//! };
//! let message = |conversation| MessageOp {
//!     conversation,
//!     customer: 1,
//!     channel: 0,
//!     language: 0,
//!     required: vec![],
//!     tier: 0,
//!     intent: 0,
//!     signal: 0,
//! };
//! let ops = [
//!     Op::Upsert(agent),
//!     Op::Message(message(1)),
//!     Op::Message(message(2)), // queued: the agent is full
//!     Op::Close { conversation: 1 }, // the queued conversation is offered at once
//! ];
//! run_differential(&ops).unwrap();
//! ```
//!
//! The model implements neither affinity waits (preferred-agent routing)
//! nor opening hours; [`Model::new`] refuses configurations that use them.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod model;
pub mod ops;
#[cfg(feature = "proptest")]
pub mod strategy;

pub use model::{AgentState, Model, ModelError, Unsupported};

/// Entry points for the fuzz targets in `fuzz/`.
#[doc(hidden)]
pub mod fuzz_checks {
    /// Decodes a scenario and operations, runs them against the router and
    /// the model, and panics on any disagreement or audit finding.
    pub fn router_ops(data: &[u8]) {
        let (scenario, ops) = crate::ops::decode(data);
        if let Err(disagreement) = crate::ops::run_scenario(scenario, &ops) {
            panic!("router and model disagree: {disagreement}");
        }
    }
}
