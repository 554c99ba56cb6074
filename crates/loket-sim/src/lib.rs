//! Simulation of a contact centre on the real router (`loket simulate`),
//! and the exact Erlang formulas (`loket erlang`).
//!
//! - [`Scenario`]: a TOML scenario (arrival streams, agent groups, the
//!   routing policy, the conversion model), checked so that every value
//!   is usable; errors name the key.
//! - [`replicate`]: one replication, an event calendar on a virtual clock
//!   driving [`loket_router::Router`] and feeding a
//!   [`loket_metering::Metering`], so simulated measures mean what
//!   `loket report`'s do.
//! - [`run()`]: replications in parallel (rayon), each seeded from the run's
//!   seed and its index, so the output never depends on the threads;
//!   [`Summary`] gives means and 95% intervals (Student t).
//! - [`staffing()`]: per report interval, the fewest agents per group that
//!   meet a service-level target, by simulation from Erlang C's guess.
//! - [`erlang`]: Erlang B, C and A (Garnett, Mandelbaum and Reiman 2002).
//!
//! ```
//! use loket_sim::{Options, RunOptions, Scenario, Summary, run};
//!
//! let scenario = Scenario::from_toml(r#"
//!     duration_s = 3600
//!     [[arrivals]]
//!     channel = "chat"
//!     language = "nl"
//!     rate_per_hour = 60
//!     handle = { dist = "exponential", mean_s = 240 }
//!     [[agents]]
//!     count = 6
//!     languages = ["nl"]
//!     capacity = { chat = 1 }
//! "#)?;
//! let options = Options { meter: true, pages: false };
//! let done = run(&scenario, &RunOptions { seed: 7, replications: 2, options })?;
//! let summary = Summary::new(&done, 7);
//! assert!(summary.offered.unwrap() > 0.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod dist;
pub mod erlang;
mod run;
mod scenario;
mod sim;
mod staffing;

pub use dist::{Dist, DistSpec};
pub use run::{Direct, Durations, Estimate, Intervals, Run, RunOptions, Summary, run, t975};
pub use scenario::{
    AgentGroup, AgentGroupSpec, ArrivalSpec, Arrivals, Conversion, ConversionSpec, MAX_AGENTS,
    Scenario, ScenarioError, ScenarioSpec, ShiftSpec,
};
pub use sim::{
    Counts, EPOCH_MS, Options, Outcome, SimError, StreamCounts, agent_names, meter_config,
    replicate, replication_seed,
};
pub use staffing::{
    GroupStaffing, IntervalStaffing, Staffing, StaffingError, StaffingOptions, StaffingTarget,
    staffing, time_of_day,
};
