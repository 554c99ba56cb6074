//! The JSONL formats of Loket's command line, and a replayer that drives a
//! [`loket_router::Router`] from them on a virtual clock.
//!
//! Two inputs: `agents.jsonl` ([`AgentLine`], one agent a line) and
//! `events.jsonl` ([`EventLine`], one timestamped event a line: messages,
//! closes, log-ins, presence, capacity and skill changes, offers, transfers).
//! One output: [`DecisionRecord`], one decision or state change a line.
//!
//! Bad input never stops a replay: each bad line gets a [`LineError`] naming
//! the line and the field, and the replay goes on with the next.
//!
//! ```
//! use loket_replay::{Replayer, RouterConfig};
//!
//! let mut replayer = Replayer::new(RouterConfig::default()).unwrap();
//! let mut decisions = Vec::new();
//! replayer
//!     .agent_line(1, br#"{"id": "anna", "languages": ["nl"]}"#, &mut decisions)
//!     .unwrap();
//! replayer
//!     .event_line(
//!         1,
//!         br#"{"at": 1000, "type": "message", "conversation": "c1", "customer": "k1", "channel": "chat", "language": "nl"}"#,
//!         &mut decisions,
//!     )
//!     .unwrap();
//! assert_eq!(decisions[0].agent.as_deref(), Some("anna"));
//! let error = replayer.event_line(2, b"{", &mut decisions).unwrap_err();
//! assert_eq!(error.line, 2);
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod lines;
mod measuring;
mod replay;
mod wire;

pub use lines::{BoundedLines, DEFAULT_MAX_LINE, Line};
pub use loket_ids::{Id, MAX_ID_BYTES};
pub use loket_report::{Dimension, Interval, MeterConfig, Query, Report};
pub use loket_router::RouterConfig;
pub use replay::{LineError, Replayer, Summary, kind_label};
pub use wire::{
    AgentLine, At, CapacityError, CapacityLine, DecisionRecord, EventBody, EventLine, MessageLine,
    SlaRecord, WhyRecord,
};

/// Checks for the fuzz targets; not part of the API.
#[doc(hidden)]
pub mod fuzz_checks {
    use crate::{Replayer, RouterConfig};

    /// Feeds arbitrary bytes as agent lines (before the first `0xFF` byte)
    /// and event lines (after it), measuring. Never panics on any input;
    /// afterwards the router's bookkeeping must be consistent and a report
    /// over everything must reconcile.
    pub fn replay_events(data: &[u8]) {
        let (agents, events) = match data.iter().position(|&b| b == 0xFF) {
            Some(split) => (&data[..split], &data[split + 1..]),
            None => (data, &[][..]),
        };
        let mut replayer = Replayer::new(RouterConfig::default()).expect("default config is valid");
        replayer.measure(crate::MeterConfig::default()).expect("default config is valid");
        let mut out = Vec::new();
        for (number, line) in agents.split(|&b| b == b'\n').enumerate() {
            let _ = replayer.agent_line(number as u64 + 1, line, &mut out);
        }
        for (number, line) in events.split(|&b| b == b'\n').enumerate() {
            let _ = replayer.event_line(number as u64 + 1, line, &mut out);
        }
        replayer.take_sla_records();
        if let Some((first, last)) = replayer.span() {
            replayer.finish_measuring(0);
            let query = crate::Query {
                from: first,
                to: last.saturating_add(1),
                interval: crate::Interval::Day,
                group_by: crate::Dimension::ALL.to_vec(),
            };
            let report = replayer.report(&query).expect("measuring is on");
            // A range past the end of time is refused, never a panic.
            if let Ok(report) = report {
                let totals = &report.totals;
                assert!(totals.answered + totals.abandoned <= totals.offered);
            }
        }
        let problems = replayer.router().audit();
        assert!(problems.is_empty(), "router inconsistent after replay: {problems:?}");
    }
}
