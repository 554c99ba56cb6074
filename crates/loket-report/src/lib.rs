//! Reply times, SLAs, conversions and contact-centre reports, kept
//! incrementally from conversation facts.
//!
//! Loket routes, but routing alone cannot say how fast customers were
//! answered or whether a sale followed. A [`Meter`] is one tenant's
//! measurement state, fed [`Fact`]s (a customer message, an assignment, a
//! bot's hand-off, a reply, an order, a close) in time order:
//!
//! - per conversation it runs the clocks `wait_ms`, `first_response_ms`
//!   (bot replies never stop it; a hand-off restarts it), `next_reply_ms`,
//!   `resolution_ms` and `handle_ms`, and tells abandoned and short-abandoned
//!   conversations apart;
//! - an [`SlaPolicy`] sets first- and next-reply targets per channel, tier
//!   and intent prefix; timers fire [`SlaEvent`]s (`sla_warning`,
//!   `sla_breached`) in a deterministic order, from [`Meter::ingest`] and
//!   [`Meter::advance`];
//! - every measure is added, as it happens, to per-group [`Measures`] of the
//!   conversation's 15-minute slot (aligned to UTC); a [`Query`] merges
//!   slots into 15-minute, hourly or daily rows per [`Dimension`] and
//!   renders a [`Report`] as JSON or CSV.
//!
//! Everything stored is an integer (counts, sums, histogram buckets), so
//! the same facts give the same state whatever the grouping, merging slots
//! is exact, and a serialised meter restores to identical reports. The
//! crate does no I/O and reads no clock. The precise definitions are in
//! `docs/reports.md`.
//!
//! ```
//! use loket_report::{
//!     Channel, CustomerMessage, Fact, FactKind, Interval, IntentId, Language, Meter,
//!     MeterConfig, Query,
//! };
//!
//! let mut meter = Meter::new(MeterConfig::default())?;
//! let mut events = Vec::new();
//! let message = CustomerMessage {
//!     channel: Channel::Chat,
//!     language: Language::NL,
//!     tier: 0,
//!     intent: IntentId::NONE,
//!     buying_intent: 0.8,
//!     queue: 1,
//! };
//! let facts = [
//!     Fact { at: 0, conversation: 7, kind: FactKind::CustomerMessage(message) },
//!     Fact { at: 5_000, conversation: 7, kind: FactKind::Assigned { agent: 3, team: 1, human: true } },
//!     Fact { at: 30_000, conversation: 7, kind: FactKind::Reply { agent: 3, team: 1, human: true } },
//!     Fact { at: 90_000, conversation: 7, kind: FactKind::Closed },
//! ];
//! for fact in &facts {
//!     meter.ingest(fact, &mut events)?;
//! }
//! let query = Query { from: 0, to: 3_600_000, interval: Interval::Hour, group_by: vec![] };
//! let report = meter.report(&query)?;
//! assert_eq!(report.totals.offered, 1);
//! assert_eq!(report.totals.first_response_ms.p50, Some(30_000));
//! assert_eq!(report.totals.service_level, Some(1.0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod config;
mod conversation;
mod error;
mod fact;
#[doc(hidden)]
pub mod fuzz_checks;
mod group;
mod histogram;
mod intents;
mod interval;
mod measures;
mod meter;
mod occupancy;
mod pairs;
mod report;
mod sla;
mod store;
mod timers;

pub use config::MeterConfig;
pub use error::{ConfigError, FactError, IntentError, QueryError, Rejections};
pub use fact::{Channel, Currency, CustomerMessage, Fact, FactKind, IntentId, Language, Money};
pub use group::{BuyingBand, Dimension, GroupKey, RESPONSE_BAND_LIMITS_MS, response_band};
pub use histogram::Histogram;
pub use intents::{MAX_INTENT_BYTES, MAX_INTENTS};
pub use interval::{Interval, SLOT_MS};
pub use loket_hours::BusinessHours;
pub use measures::{BusinessClocks, Measures};
pub use meter::{Meter, Observation};
pub use report::{
    Average, BandConversion, Breaches, CSV_HEADER, DurationSummary, MeasuresReport, Query, Report,
    ResponseBands, Row,
};
pub use sla::{ChannelTargets, SlaClock, SlaEvent, SlaEventKind, SlaPolicy, SlaRule, SlaTargets};
