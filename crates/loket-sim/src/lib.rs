//! Simulation of a contact centre on the real router, and the Erlang formulas.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod erlang;
