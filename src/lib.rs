//! Loket: conversation routing, buying-intent scoring and stock lookup for
//! contact centres. This crate only re-exports the component crates.

pub use loket_capacity as capacity;
pub use loket_catalog as catalog;
pub use loket_intent as intent;
pub use loket_pipeline as pipeline;
pub use loket_router as router;
