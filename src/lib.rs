//! Loket: conversation routing, buying-intent scoring and stock lookup for
//! contact centres, in one dependency. This crate re-exports the component
//! crates, one feature each (all on by default): `router` (routing, with
//! `capacity` and the platform's `ids`), `intent` (scoring), `catalog`
//! (stock lookup) and `pipeline` (text to decision, all three together).
//!
//! ```
//! # #[cfg(feature = "pipeline")] {
//! use std::sync::Arc;
//!
//! use loket::catalog::Catalog;
//! use loket::intent::Model;
//! use loket::pipeline::{Inbound, Pipeline, PipelineConfig};
//! use loket::router::{AgentId, AgentSpec, Channel, ConversationId, CustomerId, Language, Router, SkillLevel};
//!
//! let router = Router::new();
//! let mut events = Vec::new();
//! let mut anna = AgentSpec::new(AgentId(1));
//! anna.languages = vec![Language::NL];
//! anna.skills = vec![SkillLevel { skill: router.skill("sales").unwrap(), level: 5 }];
//! router.upsert_agent(anna, &mut events).unwrap();
//!
//! let csv = "sku,name,latin_name,aliases,category,stock,price\nB1,Bananenboom,Musa basjoo,,tropisch,3,24.95\n";
//! let (catalog, _) = Catalog::from_csv_reader(csv.as_bytes()).unwrap();
//! let pipeline =
//!     Pipeline::new(router, Model::builtin(), Some(Arc::new(catalog)), PipelineConfig::default())
//!         .unwrap();
//! let mut scratch = pipeline.scratch();
//! let text = "hebben jullie nog bananenbomen op voorraad?";
//! let message = Inbound::new(ConversationId(7), CustomerId(42), Channel::Chat, text);
//! let outcome = pipeline.handle(&message, &mut scratch, &mut events);
//! assert_eq!(outcome.decision.agent, Some(AgentId(1)));
//! assert_eq!(outcome.products[0].sku.as_ref(), "B1");
//! # }
//! ```

#![forbid(unsafe_code)]

#[cfg(feature = "router")]
pub use loket_capacity as capacity;
#[cfg(feature = "catalog")]
pub use loket_catalog as catalog;
#[cfg(feature = "router")]
pub use loket_ids as ids;
#[cfg(feature = "intent")]
pub use loket_intent as intent;
#[cfg(feature = "pipeline")]
pub use loket_pipeline as pipeline;
#[cfg(feature = "router")]
pub use loket_router as router;
