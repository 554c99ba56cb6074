//! The open conversations, by id: a [`crate::table`] of 128-byte slots,
//! each aligned to a cache line.
//!
//! Every message looks up its conversation, and every close finds one that
//! was last touched thousands of messages ago: a cache miss either way. A
//! slot starts with the id and then the fields a message, a close or a
//! sticky decision reads (state, holder, channel), so such a lookup costs
//! one line; a `DashMap` bucket costs the control bytes and then a
//! 128-byte bucket that straddles three lines.
//!
//! Locking follows the `DashMap` it replaces: [`Conversations::entry`] and
//! [`Conversations::get`] hold the conversation's shard until the guard
//! drops. While a guard is alive its thread must not look up another
//! conversation (it may share the shard: a deadlock). The router's lock
//! order puts a conversation's shard before the backlog, the timers, the
//! customer histories and the agents' holding locks.

use std::ops::{Deref, DerefMut};

use crate::conversation::Conversation;
use crate::ids::ConversationId;
use crate::table::{Locked, Shards, Slot};

/// One conversation's slot: its id, then the conversation (`None`:
/// vacant). Two cache lines; the first holds the id and the fields every
/// lookup reads (see [`Conversation`]'s field order).
#[derive(Debug, Default)]
#[repr(C, align(64))]
pub(crate) struct ConversationSlot {
    id: u64,
    conversation: Option<Conversation>,
}

const _: () = assert!(std::mem::size_of::<ConversationSlot>() == 128);

impl Slot for ConversationSlot {
    fn key(&self) -> u64 {
        self.id
    }

    fn is_vacant(&self) -> bool {
        self.conversation.is_none()
    }
}

/// The conversations by id. `Send + Sync`.
#[derive(Debug, Default)]
pub(crate) struct Conversations {
    table: Shards<ConversationSlot>,
}

/// A conversation's shard, locked, where the conversation is or would go.
pub(crate) enum Entry<'a> {
    /// The conversation is stored.
    Occupied(Held<'a>),
    /// It is not; [`Vacant::insert`] stores it.
    Vacant(Vacant<'a>),
}

/// A stored conversation, its shard locked until this drops.
pub(crate) struct Held<'a> {
    locked: Locked<'a, ConversationSlot>,
    index: usize,
}

/// Where a conversation not stored would go, its shard locked.
pub(crate) struct Vacant<'a> {
    locked: Locked<'a, ConversationSlot>,
    id: ConversationId,
}

impl Conversations {
    /// Asks the CPU to start loading `id`'s home slot (its first line), so
    /// a lookup a little later finds it in cache. Takes no lock and reads
    /// no slot.
    #[inline]
    pub(crate) fn prefetch(&self, id: ConversationId) {
        self.table.prefetch(id.0);
    }

    /// Locks `id`'s shard and finds it there.
    #[inline]
    pub(crate) fn entry(&self, id: ConversationId) -> Entry<'_> {
        let locked = self.table.lock(id.0);
        match locked.find() {
            Some(index) => Entry::Occupied(Held { locked, index }),
            None => Entry::Vacant(Vacant { locked, id }),
        }
    }

    /// The conversation `id`, if stored, its shard locked.
    #[inline]
    pub(crate) fn get(&self, id: ConversationId) -> Option<Held<'_>> {
        match self.entry(id) {
            Entry::Occupied(held) => Some(held),
            Entry::Vacant(_) => None,
        }
    }

    /// Stores `conversation` as `id`, replacing any stored.
    pub(crate) fn insert(&self, id: ConversationId, conversation: Conversation) {
        match self.entry(id) {
            Entry::Occupied(mut held) => *held = conversation,
            Entry::Vacant(vacant) => {
                vacant.insert(conversation);
            }
        }
    }

    /// Removes `id` if `remove` says so of it.
    pub(crate) fn remove_if(&self, id: ConversationId, remove: impl FnOnce(&Conversation) -> bool) {
        if let Some(held) = self.get(id)
            && remove(&held)
        {
            held.remove();
        }
    }

    /// Calls `visit` on every conversation, one shard at a time under its
    /// lock (not a consistent cut while other threads route). `visit` must
    /// not look up conversations.
    pub(crate) fn for_each(&self, mut visit: impl FnMut(ConversationId, &Conversation)) {
        self.table.for_each(|slot| {
            if let Some(conversation) = &slot.conversation {
                visit(ConversationId(slot.id), conversation);
            }
        });
    }

    /// Number of conversations stored.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}

impl<'a> Vacant<'a> {
    /// Stores `conversation` and keeps its shard locked.
    #[inline]
    pub(crate) fn insert(mut self, conversation: Conversation) -> Held<'a> {
        let index = self
            .locked
            .insert(ConversationSlot { id: self.id.0, conversation: Some(conversation) });
        Held { locked: self.locked, index }
    }
}

impl Held<'_> {
    /// Forgets the conversation and unlocks its shard.
    pub(crate) fn remove(mut self) {
        self.locked.remove(self.index);
    }
}

impl Deref for Held<'_> {
    type Target = Conversation;

    #[inline]
    fn deref(&self) -> &Conversation {
        match &self.locked.at(self.index).conversation {
            Some(conversation) => conversation,
            None => unreachable!("a held slot is occupied"),
        }
    }
}

impl DerefMut for Held<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Conversation {
        match &mut self.locked.at_mut(self.index).conversation {
            Some(conversation) => conversation,
            None => unreachable!("a held slot is occupied"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{ConversationState, Message};
    use crate::ids::{CustomerId, Language, Timestamp};
    use loket_capacity::Channel;

    fn conversation(customer: u64) -> Conversation {
        let message =
            Message::new(ConversationId(0), CustomerId(customer), Channel::Chat, Language::NL);
        Conversation::new(&message, Timestamp(1), 0)
    }

    #[test]
    fn a_guard_changes_removes_and_replaces_in_place() {
        let conversations = Conversations::default();
        let id = ConversationId(u64::MAX);
        assert!(conversations.get(id).is_none());
        match conversations.entry(id) {
            Entry::Vacant(vacant) => {
                let mut held = vacant.insert(conversation(7));
                held.state = ConversationState::Assigned;
            }
            Entry::Occupied(_) => panic!("nothing stored yet"),
        }
        assert!(conversations.get(id).is_some());
        assert_eq!(conversations.get(id).unwrap().state, ConversationState::Assigned);
        assert_eq!(conversations.get(id).unwrap().customer, CustomerId(7));

        // `insert` replaces; `remove_if` only removes what it is told to.
        conversations.insert(id, conversation(8));
        assert_eq!(conversations.len(), 1);
        assert_eq!(conversations.get(id).unwrap().customer, CustomerId(8));
        conversations.remove_if(id, |c| c.customer == CustomerId(9));
        assert!(conversations.get(id).is_some());
        conversations.remove_if(id, |c| c.customer == CustomerId(8));
        assert!(conversations.get(id).is_none());
        assert_eq!(conversations.len(), 0);
    }

    #[test]
    fn removing_through_a_guard_keeps_the_others_reachable() {
        let conversations = Conversations::default();
        for id in 0..2_000u64 {
            conversations.prefetch(ConversationId(id));
            conversations.insert(ConversationId(id), conversation(id));
        }
        for id in (0..2_000u64).step_by(3) {
            conversations.get(ConversationId(id)).unwrap().remove();
        }
        let mut seen = Vec::new();
        conversations.for_each(|id, conv| {
            assert_eq!(conv.customer, CustomerId(id.0));
            seen.push(id.0);
        });
        seen.sort_unstable();
        let expected: Vec<u64> = (0..2_000u64).filter(|id| id % 3 != 0).collect();
        assert_eq!(seen, expected);
        assert_eq!(conversations.len(), expected.len());
        for id in 0..2_000u64 {
            assert_eq!(conversations.get(ConversationId(id)).is_some(), id % 3 != 0);
        }
    }
}
