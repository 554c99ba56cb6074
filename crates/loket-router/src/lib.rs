//! An embeddable, lock-light conversation router for contact centres.
//!
//! For every inbound customer message, [`Router::route`] decides who answers:
//! the agent already in the conversation (sticky), the agent who served this
//! customer last (affinity), or the best agent with the required skills,
//! language and free capacity on the channel, picked by a [`Strategy`]. With
//! nobody free the conversation waits in a priority queue with aging; bots can
//! take conversations first and escalate to humans on buying intent, doubt,
//! complaints or a request for a person. Every decision is an [`Event`] with
//! its reason.
//!
//! ```
//! use loket_router::{
//!     AgentId, AgentSpec, Channel, ConversationId, CustomerId, EventKind, Language, Message,
//!     Router, SkillLevel,
//! };
//!
//! let router = Router::new();
//! let plants = router.skill("plants").unwrap();
//! let mut events = Vec::new();
//!
//! let mut anna = AgentSpec::new(AgentId(1));
//! anna.languages = vec![Language::NL, Language::EN];
//! anna.skills = vec![SkillLevel { skill: plants, level: 8 }];
//! router.upsert_agent(anna, &mut events).unwrap();
//!
//! let mut message = Message::new(ConversationId(7), CustomerId(42), Channel::Chat, Language::NL);
//! message.required.push(SkillLevel { skill: plants, level: 5 });
//! let decision = router.route(&message, &mut events);
//! assert_eq!(decision.agent, Some(AgentId(1)));
//! assert!(matches!(decision.kind, EventKind::Assigned { .. }));
//! ```
//!
//! # Architecture invariants
//!
//! - No I/O and no async: the router is a data structure. Time comes from an
//!   injected [`Clock`]; timers fire only when [`Router::advance`] is called.
//! - No global lock on the message path: conversations live in a sharded
//!   table, agent eligibility in immutable indexes swapped atomically,
//!   capacity in one atomic word per agent ([`loket_capacity::CapacityCell`]).
//! - Capacity is reserved before a conversation is given to an agent and is
//!   returned exactly once; it never exceeds an agent's limits.
//! - A message in an assigned conversation never takes capacity again.
//! - Waiting conversations are offered the moment an eligible agent has
//!   room (on completion, log-in, capacity or presence change), never only
//!   on a timer.
//!
//! # Snapshots
//!
//! [`Router::snapshot`] captures, as plain owned data ([`RouterSnapshot`],
//! serde and validated-rkyv serialisable, versioned by
//! [`SNAPSHOT_VERSION`]), everything that influences what the router does
//! next: interned skills, every agent slot with its presence, loads, held
//! conversations, missed offers and last assignment, every conversation
//! record, the backlog, pending timers, customer histories and the
//! round-robin cursor. [`RouterBuilder::restore`] checks a snapshot as
//! untrusted input and rebuilds the router from it.
//!
//! The contract:
//!
//! - The caller guarantees that no other thread changes the router while a
//!   snapshot is taken (a daemon applies all commands of a tenant on one
//!   thread and snapshots between them); under that guarantee the snapshot
//!   is consistent.
//! - Restored with the same [`RouterConfig`] and a clock at the same time,
//!   the router emits exactly the events the original would have for any
//!   operations that follow, and shows the same conversations, agents,
//!   stats and queue. Restoring a snapshot and taking one again gives it
//!   back unchanged. A journal of commands replayed after the snapshot
//!   therefore reproduces the state before a crash.
//! - Skill ids in agents and messages must come from [`Router::skill`]:
//!   restore refuses ids past the interned names.
//! - Conversations opened after a restore never reuse an incarnation
//!   (generation) of the snapshot, so stale timers of an earlier life of a
//!   conversation id never act on a new one.
//!
//! [`Router::erase_customer`] removes a customer's conversations and history
//! at once (GDPR), so the next snapshot holds nothing of them.

#![deny(missing_docs)]

mod agent;
mod backlog;
mod bitset;
mod clock;
mod config;
mod conversation;
mod conversations;
mod customers;
mod error;
mod event;
mod history;
mod hours;
mod ids;
mod prefetch;
mod roster;
mod router;
pub mod snapshot;
mod table;

pub use agent::{AgentKind, AgentSpec, Capacity, Presence};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    EscalationPolicy, OfferPolicy, OverflowStep, PriorityPolicy, RouterConfig, SkillHours,
    Strategy, Widen,
};
pub use conversation::{ConversationState, ConversationView, Message, Signals};
pub use error::RouterError;
pub use event::{AssignReason, EscalationTrigger, Event, EventKind, QueueReason, Why};
pub use hours::BusinessHours;
pub use ids::{
    AgentId, ConversationId, CustomerId, Language, Proficiency, Requirements, SkillId, SkillLevel,
    Timestamp,
};
pub use loket_capacity::{CHANNELS, Channel};
pub use roster::MAX_AGENTS;
pub use router::{AgentLoad, AgentView, LaneView, Router, RouterBuilder, RouterStats};
pub use snapshot::{RouterSnapshot, SNAPSHOT_VERSION, SnapshotError};
