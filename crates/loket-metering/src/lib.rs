//! The bridge from routing to measuring.
//!
//! `loket-report`'s [`Meter`] knows nothing of the router: it is fed
//! [`loket_report::Fact`]s keyed by integers. A [`Metering`] is the one
//! place that turns what a router does into those facts, for `loket route`,
//! `loket report` and `loketd` alike:
//!
//! - a customer message ([`Metering::message`]) becomes a
//!   `customer_message` fact, its required skills numbered as a queue and
//!   its intent interned;
//! - the router's events ([`Metering::decisions`]) become `assigned`
//!   (an assignment other than a sticky one, or an accepted offer),
//!   `handed_off` (an escalation) and `closed` facts, each assignment
//!   knowing its agent's team and whether the agent is a person from the
//!   agents registered with [`Metering::agent`];
//! - the platform's `reply` and `order` inputs ([`Metering::reply`],
//!   [`Metering::order`]) become their facts;
//! - for occupancy, each person's staffed capacity follows their presence
//!   and limits ([`Metering::agent_changed`] after every change), and each
//!   conversation a person holds counts from its assignment to its release.
//!
//! Facts must come in time order, as the router's events do. The SLA events
//! the meter fires on the way are collected for the caller
//! ([`Metering::take_sla_events`]). [`Metering::report`] answers a query
//! with every group named as the platform names it: queues by their skills
//! (`billing:3+sales:1`), teams by their label, agents by the caller's ids.
//!
//! ```
//! use loket_metering::Metering;
//! use loket_report::{MeterConfig, Query, Interval};
//! use loket_router::{
//!     AgentId, AgentSpec, Channel, ConversationId, CustomerId, Language, ManualClock, Message,
//!     Router, Timestamp,
//! };
//! use std::sync::Arc;
//!
//! let clock = Arc::new(ManualClock::new(Timestamp(0)));
//! let router = Router::builder().clock(clock.clone()).build()?;
//! let mut metering = Metering::new(MeterConfig::default())?;
//! let mut events = Vec::new();
//! let mut anna = AgentSpec::new(AgentId(1));
//! anna.languages = vec![Language::NL];
//! anna.team = Some("sales".into());
//! metering.agent(&anna);
//! router.upsert_agent(anna, &mut events)?;
//!
//! let message = Message::new(ConversationId(7), CustomerId(42), Channel::Chat, Language::NL);
//! metering.message(router.now().0, &message, "", |_| None)?;
//! router.route(&message, &mut events);
//! metering.decisions(&events);
//! clock.set(Timestamp(30_000));
//! metering.reply(router.now().0, ConversationId(7), AgentId(1))?;
//!
//! let query = Query { from: 0, to: 3_600_000, interval: Interval::Hour, group_by: vec![] };
//! let report = metering.report(&query, |agent| Some(agent.0.to_string()))?;
//! assert_eq!(report.totals.answered, 1);
//! assert_eq!(report.totals.first_response_ms.p50, Some(30_000));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod closed;
mod labels;
mod metering;

pub use closed::RecentlyClosed;
pub use labels::Labels;
pub use metering::{Metering, MeteringError};

pub use loket_report::Meter;
