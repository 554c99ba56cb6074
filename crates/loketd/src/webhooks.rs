//! Webhooks: a tenant's events POSTed to the endpoints of
//! `[[tenants.webhooks]]`, signed per the Standard Webhooks specification,
//! at least once and in order per conversation.
//!
//! The pieces, in the order an event passes them:
//! - [`WebhookStore`] (`store.rs`): the syncer spools every durable event an
//!   endpoint wants, rendered once as its JSON body, into the tenant's
//!   outbox (`webhooks/outbox/`, a journal of its own, sealed like the
//!   tenant's journal); replay at start-up spools again what a crash took
//!   from the outbox's unsynced tail. It also keeps each endpoint's
//!   durable state (`webhooks/<endpoint>.state`): a cursor per lane, the
//!   dead letters, whether a 410 disabled it.
//! - `lanes.rs`: per endpoint, `lanes` tasks; a conversation always maps to
//!   the same lane, and a lane sends one event at a time, retrying it on
//!   the schedule before it moves on, so a conversation's events arrive in
//!   order. A flusher writes the endpoints' states and trims the outbox
//!   behind the slowest cursor.
//! - `sender.rs`: one signed HTTP POST and what its answer means.
//!
//! Invariants:
//! - Every event an endpoint wants with `seq` at or above a lane's durable
//!   cursor is in the outbox or is spooled again by replay: the outbox is
//!   synced before a snapshot lets the journal behind it go.
//! - A cursor moves past an event only once it was delivered or is in the
//!   dead-letter list, and the state file is written dead letters first.
//! - Erasure removes the customer's events from the outbox (rewritten) and
//!   from the dead letters before it reports success.

mod endpoint;
mod entry;
pub mod fuzz_checks;
mod lanes;
mod sender;
mod store;

pub use endpoint::{DeadLetter, Endpoint, EndpointStatus};
pub use entry::{Entry, EntryError};
pub use lanes::{Deliveries, start};
pub use store::{WebhookStore, WebhookStoreError, decode_state_file};

use crate::state::StreamEvent;
use loket_router::EventKind;

/// Every event type an endpoint can ask for, as the `type` field names it:
/// the router's ([`EventKind::TYPE_NAMES`]), then the two SLA events.
pub const EVENT_TYPES: [&str; ROUTED_TYPES + 2] = {
    let mut all = [""; ROUTED_TYPES + 2];
    let mut index = 0;
    while index < ROUTED_TYPES {
        all[index] = EventKind::TYPE_NAMES[index];
        index += 1;
    }
    all[ROUTED_TYPES] = "sla_warning";
    all[ROUTED_TYPES + 1] = "sla_breached";
    all
};

const ROUTED_TYPES: usize = EventKind::TYPE_NAMES.len();

/// The index in [`EVENT_TYPES`] of an event's type.
pub fn event_type_index(event: &StreamEvent) -> usize {
    match event {
        StreamEvent::Routed(event) => event.kind.type_index(),
        StreamEvent::Sla(sla) => match sla.kind {
            loket_report::SlaEventKind::Warning => ROUTED_TYPES,
            loket_report::SlaEventKind::Breached => ROUTED_TYPES + 1,
        },
    }
}

/// The set of event types an endpoint asked for, one bit per
/// [`EVENT_TYPES`] index (`"*"` sets them all).
pub fn type_mask<S: AsRef<str>>(events: &[S]) -> u32 {
    events.iter().fold(0, |mask, event| match event.as_ref() {
        "*" => mask | ((1 << EVENT_TYPES.len()) - 1),
        name => mask | EVENT_TYPES.iter().position(|known| *known == name).map_or(0, |i| 1 << i),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_name_the_types_asked_for() {
        assert_eq!(type_mask(&["assigned", "sla_breached"]), 1 | (1 << 14));
        assert_eq!(type_mask(&["*"]).count_ones() as usize, EVENT_TYPES.len());
        assert_eq!(type_mask(&["nonsense"]), 0);
    }

    #[test]
    fn the_sla_types_are_their_events_serialised_names() {
        use loket_report::SlaEventKind;
        for (kind, index) in [(SlaEventKind::Warning, 13), (SlaEventKind::Breached, 14)] {
            assert_eq!(serde_json::to_value(kind).unwrap(), EVENT_TYPES[index]);
        }
    }
}
