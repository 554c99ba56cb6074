//! [`TenantIds`]: a tenant's three interners, and when their names may go.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::interner::{Interner, Name, RestoreError, SavedNames, TEXT_BASE};

/// The conversation, customer and agent ids of one tenant.
///
/// Names are kept exactly as long as something can still refer to them:
///
/// - a conversation's until the router forgets the conversation
///   ([`TenantIds::forgotten`]);
/// - a customer's while an open conversation is theirs, and after that
///   while the router's history of the customer can still steer routing
///   (affinity): [`TenantIds::settle`] and [`TenantIds::sweep`] ask;
/// - an agent's for the tenant's lifetime (agents are few, and events about
///   them outlive their removal).
///
/// Every decision depends only on the calls made, in order, so a journal
/// replay rebuilds the same integers.
///
/// A conversation's released id stays readable for a while
/// ([`TenantIds::keep_recent`]), so that events about it that are still
/// kept (an event stream, say) can be shown with it; an erased customer's
/// conversations are dropped from there at once.
#[derive(Debug, Default)]
pub struct TenantIds {
    /// Conversation ids.
    pub conversations: Interner,
    /// Customer ids.
    pub customers: Interner,
    /// Agent ids.
    pub agents: Interner,
    /// Open conversations whose customer has a string id: conversation →
    /// customer.
    customer_of: FxHashMap<u64, u64>,
    /// String-id customers → their open conversations (never 0: removed).
    open: FxHashMap<u64, u32>,
    /// String-id customers with no open conversation whose routing history
    /// still counted when last asked.
    lingering: BTreeSet<u64>,
    /// Conversation ids released lately, oldest first, at most
    /// `recent_capacity` of them.
    recent: FxHashMap<u64, Arc<str>>,
    recent_order: VecDeque<u64>,
    recent_capacity: usize,
}

/// [`TenantIds`] as saved in a snapshot.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct SavedTenantIds {
    /// Conversation ids.
    pub conversations: SavedNames,
    /// Customer ids.
    pub customers: SavedNames,
    /// Agent ids.
    pub agents: SavedNames,
    /// Open conversations whose customer has a string id, with that customer.
    pub customer_of: Vec<(u64, u64)>,
    /// Customers kept for their routing history.
    pub lingering: Vec<u64>,
}

impl TenantIds {
    /// Keeps the last `count` released conversation ids readable through
    /// [`TenantIds::conversation_name`] (0, the default: none). Each release
    /// goes with an event about the conversation, so an event log holding
    /// at most `count` events can always name its conversations.
    pub fn keep_recent(&mut self, count: usize) {
        self.recent_capacity = count;
        while self.recent_order.len() > count {
            self.drop_oldest_recent();
        }
    }

    /// The caller's id of a conversation, held or recently released.
    pub fn conversation_name(&self, key: u64) -> Option<Name> {
        self.conversations
            .name(key)
            .or_else(|| self.recent.get(&key).map(|text| Name::Text(text.clone())))
    }

    fn drop_oldest_recent(&mut self) {
        if let Some(key) = self.recent_order.pop_front() {
            self.recent.remove(&key);
        }
    }

    /// Records that a message for `conversation` from `customer` was
    /// routed. The first such call for a conversation ties the customer's
    /// name to it; a later one with another customer (which the router
    /// ignores) leaves the customer to [`TenantIds::settle`].
    pub fn routed(&mut self, conversation: u64, customer: u64, remembered: impl Fn(u64) -> bool) {
        if customer < TEXT_BASE {
            return;
        }
        match self.customer_of.get(&conversation) {
            Some(&owner) if owner == customer => {}
            Some(_) => self.settle(customer, remembered),
            None => {
                self.customer_of.insert(conversation, customer);
                *self.open.entry(customer).or_insert(0) += 1;
                self.lingering.remove(&customer);
            }
        }
    }

    /// The router forgot `conversation` (closed and released, or erased):
    /// its name goes, and its customer's too when nothing else needs it.
    pub fn forgotten(&mut self, conversation: u64, remembered: impl Fn(u64) -> bool) {
        if let Some(text) = self.conversations.take(conversation)
            && self.recent_capacity > 0
        {
            if self.recent_order.len() == self.recent_capacity {
                self.drop_oldest_recent();
            }
            self.recent.insert(conversation, text);
            self.recent_order.push_back(conversation);
        }
        let Some(customer) = self.customer_of.remove(&conversation) else { return };
        if let Some(count) = self.open.get_mut(&customer) {
            *count -= 1;
            if *count == 0 {
                self.open.remove(&customer);
            }
        }
        self.settle(customer, remembered);
    }

    /// Releases a customer's name if no open conversation is theirs and
    /// `remembered` (does the router's history of them still count?) says
    /// no; keeps it for [`TenantIds::sweep`] if it says yes.
    pub fn settle(&mut self, customer: u64, remembered: impl Fn(u64) -> bool) {
        if customer < TEXT_BASE || self.open.contains_key(&customer) {
            return;
        }
        if remembered(customer) {
            self.lingering.insert(customer);
        } else {
            self.lingering.remove(&customer);
            self.customers.release(customer);
        }
    }

    /// Releases the customers kept for their history once the router no
    /// longer remembers them. Cost: one `remembered` call per such customer.
    pub fn sweep(&mut self, remembered: impl Fn(u64) -> bool) {
        let gone: Vec<u64> = self.lingering.iter().copied().filter(|&c| !remembered(c)).collect();
        for customer in gone {
            self.lingering.remove(&customer);
            self.customers.release(customer);
        }
    }

    /// Forgets a customer outright (erasure): call after the router erased
    /// them and [`TenantIds::forgotten`] ran for each of `conversations`,
    /// theirs; those ids go from the recently released ones too.
    pub fn erase_customer(&mut self, customer: u64, conversations: &[u64]) {
        for conversation in conversations {
            if self.recent.remove(conversation).is_some() {
                self.recent_order.retain(|key| key != conversation);
            }
        }
        self.lingering.remove(&customer);
        self.open.remove(&customer);
        self.customer_of.retain(|_, owner| *owner != customer);
        self.customers.release(customer);
    }

    /// String-id customers kept only for their routing history.
    pub fn lingering(&self) -> usize {
        self.lingering.len()
    }

    /// For a snapshot.
    pub fn save(&self) -> SavedTenantIds {
        let mut customer_of: Vec<(u64, u64)> =
            self.customer_of.iter().map(|(&c, &u)| (c, u)).collect();
        customer_of.sort_unstable();
        SavedTenantIds {
            conversations: self.conversations.save(),
            customers: self.customers.save(),
            agents: self.agents.save(),
            customer_of,
            lingering: self.lingering.iter().copied().collect(),
        }
    }

    /// As saved, checked (each interner as [`Interner::restore`]; every
    /// customer referred to is held).
    ///
    /// # Errors
    /// The first inconsistency.
    pub fn restore(saved: &SavedTenantIds) -> Result<TenantIds, RestoreError> {
        let mut ids = TenantIds {
            conversations: Interner::restore(&saved.conversations)?,
            customers: Interner::restore(&saved.customers)?,
            agents: Interner::restore(&saved.agents)?,
            ..TenantIds::default()
        };
        for &(conversation, customer) in &saved.customer_of {
            if ids.customers.name(customer).is_none() {
                return Err(RestoreError {
                    key: customer,
                    message: format!("customer of conversation {conversation} is not held"),
                });
            }
            if ids.customer_of.insert(conversation, customer).is_some() {
                return Err(RestoreError {
                    key: conversation,
                    message: "conversation listed twice".to_owned(),
                });
            }
            *ids.open.entry(customer).or_insert(0) += 1;
        }
        for &customer in &saved.lingering {
            if ids.customers.name(customer).is_none() || ids.open.contains_key(&customer) {
                return Err(RestoreError {
                    key: customer,
                    message: "lingering customer not held, or with open conversations".to_owned(),
                });
            }
            ids.lingering.insert(customer);
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEVER: fn(u64) -> bool = |_| false;
    const ALWAYS: fn(u64) -> bool = |_| true;

    #[test]
    fn a_customer_name_lives_while_a_conversation_or_history_needs_it() {
        let mut ids = TenantIds::default();
        let anna = ids.customers.intern_str("anna");
        let first = ids.conversations.intern_str("c-1");
        let second = ids.conversations.intern_str("c-2");
        ids.routed(first, anna, NEVER);
        ids.routed(first, anna, NEVER);
        ids.routed(second, anna, NEVER);
        ids.forgotten(first, NEVER);
        assert_eq!(ids.conversations.name(first), None);
        assert!(ids.customers.name(anna).is_some(), "c-2 is still open");
        ids.forgotten(second, ALWAYS);
        assert!(ids.customers.name(anna).is_some(), "her history still counts");
        assert_eq!(ids.lingering(), 1);
        // She comes back: one id, no longer lingering.
        let third = ids.conversations.intern_str("c-3");
        assert_eq!(ids.customers.intern_str("anna"), anna);
        ids.routed(third, anna, ALWAYS);
        assert_eq!(ids.lingering(), 0);
        ids.forgotten(third, ALWAYS);
        ids.sweep(ALWAYS);
        assert!(ids.customers.name(anna).is_some());
        ids.sweep(NEVER);
        assert_eq!(ids.customers.name(anna), None);
        assert!(ids.customers.is_empty() && ids.conversations.is_empty());
    }

    #[test]
    fn a_customer_the_router_ignored_is_settled_at_once() {
        let mut ids = TenantIds::default();
        let anna = ids.customers.intern_str("anna");
        let conversation = ids.conversations.intern_str("c-1");
        ids.routed(conversation, anna, NEVER);
        let bob = ids.customers.intern_str("bob");
        ids.routed(conversation, bob, NEVER);
        assert_eq!(ids.customers.name(bob), None, "c-1 stays anna's");
        assert!(ids.customers.name(anna).is_some());
    }

    #[test]
    fn erasure_forgets_the_customer_and_snapshots_round_trip() {
        let mut ids = TenantIds::default();
        let anna = ids.customers.intern_str("anna");
        let bob = ids.customers.intern_str("bob");
        let (c1, c2) = (ids.conversations.intern_str("c-1"), ids.conversations.intern(&7.into()));
        ids.routed(c1, anna, NEVER);
        ids.routed(c2, bob, NEVER);
        ids.agents.intern_str("agent-anna");
        let restored = TenantIds::restore(&ids.save()).unwrap();
        assert_eq!(restored.save(), ids.save());
        ids.keep_recent(4);
        ids.forgotten(c1, ALWAYS);
        assert_eq!(ids.conversation_name(c1).unwrap().to_string(), "c-1", "still readable");
        ids.erase_customer(anna, &[c1]);
        assert_eq!(ids.conversation_name(c1), None, "erased conversations go at once");
        assert_eq!(ids.customers.find_str("anna"), None);
        assert_eq!(ids.lingering(), 0);
        assert!(ids.customers.find_str("bob").is_some());
    }

    #[test]
    fn only_the_most_recently_released_ids_stay_readable() {
        let mut ids = TenantIds::default();
        ids.keep_recent(2);
        let keys: Vec<u64> =
            (0..3).map(|i| ids.conversations.intern_str(&format!("c-{i}"))).collect();
        for &key in &keys {
            ids.forgotten(key, NEVER);
        }
        assert_eq!(ids.conversation_name(keys[0]), None);
        assert!(
            ids.conversation_name(keys[1]).is_some() && ids.conversation_name(keys[2]).is_some()
        );
        assert_eq!(ids.conversation_name(7), Some(Name::Number(7)));
        ids.keep_recent(1);
        assert_eq!(ids.conversation_name(keys[1]), None);
    }

    #[test]
    fn inconsistent_saves_are_refused() {
        let mut saved = SavedTenantIds::default();
        saved.customer_of.push((1, TEXT_BASE));
        assert!(TenantIds::restore(&saved).is_err());
        let mut saved = SavedTenantIds::default();
        saved.lingering.push(TEXT_BASE);
        assert!(TenantIds::restore(&saved).is_err());
    }
}
