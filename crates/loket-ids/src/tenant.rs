//! [`TenantIds`]: a tenant's three interners, and when their names may go.

use std::collections::{BTreeSet, VecDeque};

use rustc_hash::FxHashMap;

use crate::interner::{Interner, NameRef, RestoreError, SavedNames, TEXT_BASE};

/// The conversation, customer and agent ids of one tenant.
///
/// Names are kept exactly as long as something can still refer to them:
///
/// - a conversation's until the router forgets the conversation
///   ([`TenantIds::forgotten`]);
/// - a customer's while an open conversation is theirs, and after that
///   until the router's history of the customer stops steering routing
///   (affinity): [`TenantIds::settle`] and [`TenantIds::sweep`] ask the
///   router until when it remembers them;
/// - an agent's for the tenant's lifetime (agents are few, and events about
///   them outlive their removal).
///
/// Every decision depends only on the calls made, in order, so a journal
/// replay rebuilds the same integers.
///
/// A conversation's released id stays readable for a while
/// ([`TenantIds::keep_recent`]), so that events about it that are still
/// kept (an event stream, say) can be shown with it; erasing a customer
/// drops their earlier conversations from there at once.
#[derive(Debug, Default)]
pub struct TenantIds {
    /// Conversation ids.
    pub conversations: Interner,
    /// Customer ids.
    pub customers: Interner,
    /// Agent ids.
    pub agents: Interner,
    /// Open conversations with a string id or a string-id customer:
    /// conversation → customer.
    customer_of: FxHashMap<u64, u64>,
    /// String-id customers → their open conversations (never 0: removed).
    open: FxHashMap<u64, u32>,
    /// String-id customers with no open conversation, kept while the router
    /// remembers them: (remembered until, customer), and the other way.
    lingering: BTreeSet<(u64, u64)>,
    lingering_until: FxHashMap<u64, u64>,
    /// Conversation ids released lately, oldest first, with their customer,
    /// at most `recent_capacity` of them.
    recent: FxHashMap<u64, Recent>,
    recent_order: VecDeque<u64>,
    recent_capacity: usize,
}

#[derive(Debug)]
struct Recent {
    text: Box<str>,
    customer: u64,
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
    /// Open conversations with a string id or a string-id customer, with
    /// that customer.
    pub customer_of: Vec<(u64, u64)>,
    /// Customers kept for their history: (remembered until, customer).
    pub lingering: Vec<(u64, u64)>,
}

impl TenantIds {
    /// Keeps the last `count` released conversation ids readable through
    /// [`TenantIds::conversation_name`] (0, the default: none). Each release
    /// goes with an event about the conversation, so an event log holding
    /// at most `count` events can name every conversation in it.
    pub fn keep_recent(&mut self, count: usize) {
        self.recent_capacity = count;
        while self.recent_order.len() > count {
            self.drop_oldest_recent();
        }
    }

    /// The caller's id of a conversation, held or recently released.
    pub fn conversation_name(&self, key: u64) -> Option<NameRef<'_>> {
        self.conversations
            .name_ref(key)
            .or_else(|| self.recent.get(&key).map(|recent| NameRef::Text(&recent.text)))
    }

    /// Lets go of the oldest released conversation ids until at most `keep`
    /// remain readable (retention: the events that named them are gone);
    /// the capacity set by [`TenantIds::keep_recent`] stays.
    pub fn trim_recent(&mut self, keep: usize) {
        while self.recent_order.len() > keep {
            self.drop_oldest_recent();
        }
    }

    fn drop_oldest_recent(&mut self) {
        if let Some(key) = self.recent_order.pop_front() {
            self.recent.remove(&key);
        }
    }

    /// Records that a message for `conversation` from `customer` was routed.
    /// The first such call for a conversation ties the customer to it; a
    /// later one with another customer (which the router ignores) leaves
    /// the customer to [`TenantIds::settle`]. `remembered_until` says until
    /// when (ms) the router's history of a customer steers routing, if it
    /// does.
    pub fn routed(
        &mut self,
        conversation: u64,
        customer: u64,
        remembered_until: impl Fn(u64) -> Option<u64>,
    ) {
        if conversation < TEXT_BASE && customer < TEXT_BASE {
            return;
        }
        match self.customer_of.get(&conversation) {
            Some(&owner) if owner == customer => {}
            Some(_) => self.settle(customer, remembered_until),
            None => {
                self.customer_of.insert(conversation, customer);
                if customer >= TEXT_BASE {
                    *self.open.entry(customer).or_insert(0) += 1;
                    self.unlinger(customer);
                }
            }
        }
    }

    fn unlinger(&mut self, customer: u64) {
        if let Some(until) = self.lingering_until.remove(&customer) {
            self.lingering.remove(&(until, customer));
        }
    }

    /// The router forgot `conversation` (closed and released, or erased):
    /// its name goes (readable a while longer, see
    /// [`TenantIds::keep_recent`]), and its customer's too when nothing else
    /// needs it.
    pub fn forgotten(&mut self, conversation: u64, remembered_until: impl Fn(u64) -> Option<u64>) {
        let customer = self.customer_of.remove(&conversation);
        if let Some(text) = self.conversations.take(conversation)
            && self.recent_capacity > 0
        {
            if self.recent_order.len() == self.recent_capacity {
                self.drop_oldest_recent();
            }
            let customer = customer.unwrap_or(u64::MAX);
            self.recent.insert(conversation, Recent { text, customer });
            self.recent_order.push_back(conversation);
        }
        let Some(customer) = customer.filter(|&c| c >= TEXT_BASE) else { return };
        if let Some(count) = self.open.get_mut(&customer) {
            *count -= 1;
            if *count == 0 {
                self.open.remove(&customer);
            }
        }
        self.settle(customer, remembered_until);
    }

    /// Releases a customer's name if no open conversation is theirs and the
    /// router does not remember them; keeps it, until the time
    /// `remembered_until` gives, if it does.
    pub fn settle(&mut self, customer: u64, remembered_until: impl Fn(u64) -> Option<u64>) {
        if customer < TEXT_BASE || self.open.contains_key(&customer) {
            return;
        }
        self.unlinger(customer);
        match remembered_until(customer) {
            Some(until) => {
                self.lingering.insert((until, customer));
                self.lingering_until.insert(customer, until);
            }
            None => {
                self.customers.release(customer);
            }
        }
    }

    /// Looks again at the customers kept for their history whose time came
    /// (at or before `now`, ms): released, or kept longer if the router
    /// remembers them longer. Cost: the customers looked at.
    pub fn sweep(&mut self, now: u64, remembered_until: impl Fn(u64) -> Option<u64>) {
        while let Some(&(until, customer)) = self.lingering.first() {
            if until > now {
                break;
            }
            self.unlinger(customer);
            match remembered_until(customer).filter(|&later| later > now) {
                Some(later) => {
                    self.lingering.insert((later, customer));
                    self.lingering_until.insert(customer, later);
                }
                None => {
                    self.customers.release(customer);
                }
            }
        }
    }

    /// Forgets a customer outright (erasure): call after the router erased
    /// them and [`TenantIds::forgotten`] ran for each of `erased`, their
    /// open conversations (whose ids stay readable for the events that
    /// report the erasure). Their earlier conversations' ids go from the
    /// recently released ones at once; their integers are returned, so
    /// events about them can go too.
    pub fn erase_customer(&mut self, customer: u64, erased: &[u64]) -> Vec<u64> {
        let earlier: Vec<u64> = self
            .recent
            .iter()
            .filter(|(key, recent)| recent.customer == customer && !erased.contains(key))
            .map(|(&key, _)| key)
            .collect();
        for key in &earlier {
            self.recent.remove(key);
        }
        if !earlier.is_empty() {
            self.recent_order.retain(|key| self.recent.contains_key(key));
        }
        self.unlinger(customer);
        self.open.remove(&customer);
        self.customer_of.retain(|_, owner| *owner != customer);
        self.customers.release(customer);
        earlier
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
    /// customer referred to is held), keeping the last `recent` released
    /// conversation ids readable from here on.
    ///
    /// # Errors
    /// The first inconsistency.
    pub fn restore(saved: &SavedTenantIds, recent: usize) -> Result<TenantIds, RestoreError> {
        let mut ids = TenantIds {
            conversations: Interner::restore(&saved.conversations)?,
            customers: Interner::restore(&saved.customers)?,
            agents: Interner::restore(&saved.agents)?,
            recent_capacity: recent,
            ..TenantIds::default()
        };
        for &(conversation, customer) in &saved.customer_of {
            let bad = |key: u64, message: String| RestoreError { key, message };
            if customer >= TEXT_BASE && ids.customers.name(customer).is_none() {
                return Err(bad(customer, format!("customer of {conversation} is not held")));
            }
            if conversation >= TEXT_BASE && ids.conversations.name(conversation).is_none() {
                return Err(bad(conversation, "conversation not held".to_owned()));
            }
            if ids.customer_of.insert(conversation, customer).is_some() {
                return Err(bad(conversation, "conversation listed twice".to_owned()));
            }
            if customer >= TEXT_BASE {
                *ids.open.entry(customer).or_insert(0) += 1;
            }
        }
        for &(until, customer) in &saved.lingering {
            if ids.customers.name(customer).is_none()
                || ids.open.contains_key(&customer)
                || ids.lingering_until.insert(customer, until).is_some()
            {
                return Err(RestoreError {
                    key: customer,
                    message: "lingering customer not held, held twice, or with open conversations"
                        .to_owned(),
                });
            }
            ids.lingering.insert((until, customer));
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEVER: fn(u64) -> Option<u64> = |_| None;
    const UNTIL_100: fn(u64) -> Option<u64> = |_| Some(100);

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
        ids.forgotten(second, UNTIL_100);
        assert!(ids.customers.name(anna).is_some(), "her history still counts");
        assert_eq!(ids.lingering(), 1);
        // She comes back: one id, no longer lingering.
        let third = ids.conversations.intern_str("c-3");
        assert_eq!(ids.customers.intern_str("anna"), anna);
        ids.routed(third, anna, UNTIL_100);
        assert_eq!(ids.lingering(), 0);
        ids.forgotten(third, UNTIL_100);
        ids.sweep(99, NEVER);
        assert!(ids.customers.name(anna).is_some(), "not yet due");
        ids.sweep(100, |_| Some(200));
        assert!(ids.customers.name(anna).is_some(), "remembered longer now");
        ids.sweep(200, NEVER);
        assert_eq!(ids.customers.name(anna), None);
        assert!(ids.customers.is_empty() && ids.conversations.is_empty());
        assert_eq!(ids.lingering(), 0);
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
    fn erasure_forgets_the_customer_and_their_earlier_conversations() {
        let mut ids = TenantIds::default();
        ids.keep_recent(8);
        let anna = ids.customers.intern_str("anna");
        let bob = ids.customers.intern_str("bob");
        let (c1, c2, c3) = (
            ids.conversations.intern_str("wa:anna:1"),
            ids.conversations.intern_str("wa:anna:2"),
            ids.conversations.intern_str("wa:bob:1"),
        );
        ids.routed(c1, anna, NEVER);
        ids.routed(c2, anna, NEVER);
        ids.routed(c3, bob, NEVER);
        ids.forgotten(c1, UNTIL_100);
        assert_eq!(ids.conversation_name(c1), Some(NameRef::Text("wa:anna:1")), "readable");
        // The router erases anna: c2 was open; c1 closed before.
        ids.forgotten(c2, NEVER);
        assert_eq!(ids.erase_customer(anna, &[c2]), [c1]);
        assert_eq!(ids.conversation_name(c1), None, "earlier conversations go at once");
        assert!(ids.conversation_name(c2).is_some(), "kept for the erasure's own events");
        assert_eq!(ids.customers.find_str("anna"), None);
        assert_eq!(ids.lingering(), 0);
        ids.forgotten(c3, NEVER);
        assert_eq!(ids.conversation_name(c3), Some(NameRef::Text("wa:bob:1")), "bob's stay");
    }

    #[test]
    fn snapshots_round_trip() {
        let mut ids = TenantIds::default();
        let anna = ids.customers.intern_str("anna");
        let bob = ids.customers.intern_str("bob");
        let c1 = ids.conversations.intern_str("c-1");
        ids.routed(c1, anna, NEVER);
        ids.routed(7, bob, NEVER);
        let carl = ids.customers.intern_str("carl");
        ids.settle(carl, UNTIL_100);
        ids.agents.intern_str("agent-anna");
        let restored = TenantIds::restore(&ids.save(), 4).unwrap();
        assert_eq!(restored.save(), ids.save());
        assert_eq!(restored.lingering(), 1);
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
        assert_eq!(ids.conversation_name(7), Some(NameRef::Number(7)));
        ids.keep_recent(1);
        assert_eq!(ids.conversation_name(keys[1]), None);
    }

    #[test]
    fn trimming_recent_ids_keeps_the_capacity() {
        let mut ids = TenantIds::default();
        ids.keep_recent(3);
        let keys: Vec<u64> =
            (0..4).map(|i| ids.conversations.intern_str(&format!("c-{i}"))).collect();
        for &key in &keys[..3] {
            ids.forgotten(key, NEVER);
        }
        ids.trim_recent(1);
        assert_eq!(ids.conversation_name(keys[1]), None, "older than the one kept");
        assert!(ids.conversation_name(keys[2]).is_some());
        ids.forgotten(keys[3], NEVER);
        assert!(ids.conversation_name(keys[2]).is_some(), "room for 3 again");
        assert!(ids.conversation_name(keys[3]).is_some());
    }

    #[test]
    fn inconsistent_saves_are_refused() {
        let mut saved = SavedTenantIds::default();
        saved.customer_of.push((1, TEXT_BASE));
        assert!(TenantIds::restore(&saved, 0).is_err());
        let mut saved = SavedTenantIds::default();
        saved.lingering.push((5, TEXT_BASE));
        assert!(TenantIds::restore(&saved, 0).is_err());
    }
}
