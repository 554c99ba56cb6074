//! The bridge from routing to measuring.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
