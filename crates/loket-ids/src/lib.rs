//! The platform's own identifiers, and the router's integers behind them.
//!
//! Platforms name conversations, customers and agents with strings: UUIDs,
//! `WT…` ids, phone-number keys. The router works on `u64`s. This crate sits
//! between the two:
//!
//! - [`Id`] is an identifier as a caller sends it: a string of 1 to
//!   [`MAX_ID_BYTES`] bytes without control characters, or a non-negative
//!   integer, which means the same as its decimal string (`42` and `"42"`
//!   are one id; `"042"` is another).
//! - [`Interner`] maps the ids of one kind (conversations, say) of one
//!   tenant to router integers and back. A decimal id below [`TEXT_BASE`]
//!   is its own integer and costs no lookup; any other string gets an
//!   integer from [`TEXT_BASE`] up that no other string ever had, chosen by
//!   the calls made alone, so the same sequence of calls gives the same
//!   integers (journal replay depends on it). Names can be released and the
//!   interner saved and restored.
//! - [`Name`] is what output carries: the caller's id, cheap to clone.
//! - [`TenantIds`] keeps the three interners of a tenant and decides when a
//!   name may go: a conversation's when the router forgets it, a customer's
//!   when no open conversation and no routing history needs it any more.
//!
//! ```
//! use loket_ids::{Id, Interner, TEXT_BASE};
//!
//! let mut conversations = Interner::default();
//! let uuid: Id = "0b8e0c8e-5a4f-4f7e-9d5c-1f2a3b4c5d6e".parse()?;
//! let key = conversations.intern(&uuid);
//! assert_eq!(key, TEXT_BASE);
//! assert_eq!(conversations.intern(&Id::Number(42)), 42);
//! assert_eq!(conversations.intern(&"42".parse()?), 42);
//! assert_eq!(conversations.name(key).unwrap().to_string(), uuid.to_string());
//! # Ok::<(), loket_ids::IdError>(())
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod id;
mod interner;
mod tenant;

#[doc(hidden)]
pub mod fuzz_checks;

pub use id::{ArchivedId, Id, IdError, MAX_ID_BYTES, check_text};
pub use interner::{INLINE, Interner, Name, NameRef, RestoreError, SavedNames, TEXT_BASE};
pub use tenant::{SavedTenantIds, TenantIds};
