//! Waiting conversations, ordered by priority with aging.
//!
//! Entries are grouped by what they need (channel, language, skills, which
//! kinds of agent may take them), so that when an agent frees up the router
//! checks each group once instead of every waiting conversation.
//!
//! Aging is built into the key: with priority `p` points and one point per
//! `aging_ms_per_point` of waiting, the effective priority at time `t` is
//! `p + (t - enqueued_at) / aging`. Ordering by that is the same at every
//! `t` as ordering by `enqueued_at - p * aging`, so the key never changes
//! while an entry waits and nothing starves.

use std::hash::BuildHasher;

use loket_capacity::Channel;
use rustc_hash::{FxBuildHasher, FxHashMap};

use crate::ids::{ConversationId, Language, Requirements, Timestamp};

/// Sort key: lower is served first; `seq` makes it unique and FIFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct QueueKey {
    pub(crate) rank: i64,
    pub(crate) seq: u64,
}

/// Conversations waiting in order, best first.
/// One line of waiting conversations, best first. An order-statistic B-tree,
/// so a conversation's place in line costs O(log n), not O(position).
type Line = indexset::BTreeSet<(QueueKey, ConversationId)>;

/// Which agents may take a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Pool {
    Humans,
    HumansOrBots,
    Bots,
}

/// What a waiting conversation needs from an agent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Need {
    pub(crate) channel: Channel,
    pub(crate) language: Language,
    pub(crate) required: Requirements,
    pub(crate) pool: Pool,
}

#[derive(Debug, Clone)]
pub(crate) struct Waiting {
    pub(crate) key: QueueKey,
    pub(crate) need: Need,
    pub(crate) priority: u32,
    pub(crate) enqueued_at: Timestamp,
    /// Only this slot may take it, until the given time.
    pub(crate) preferred: Option<(u32, Timestamp)>,
    /// This slot may not take it.
    pub(crate) excluded: Option<u32>,
    /// The conversation's generation when it was queued.
    pub(crate) generation: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Backlog {
    /// By (channel, language) first, so an agent only looks at the lanes it
    /// can serve, then by the full need.
    groups: FxHashMap<(Channel, Language), FxHashMap<Need, Line>>,
    preferred: FxHashMap<u32, Line>,
    entries: Entries,
    next_seq: u64,
}

/// Waiting conversations by id, in fixed shards: a shard that grows rehashes
/// only its own part, so a backlog of 100,000 never stalls the router for
/// milliseconds while one map doubles.
#[derive(Debug)]
struct Entries {
    shards: Box<[FxHashMap<ConversationId, Waiting>]>,
    len: usize,
}

impl Entries {
    const SHARDS: usize = 64;

    /// Bits 51..57 of the hash: the table inside a shard uses the low bits
    /// for the bucket and the top seven for its tags, as in DashMap.
    fn shard(conversation: &ConversationId) -> usize {
        ((FxBuildHasher.hash_one(conversation) << 7) >> 58) as usize % Self::SHARDS
    }

    fn len(&self) -> usize {
        self.len
    }

    fn insert(&mut self, conversation: ConversationId, waiting: Waiting) {
        let replaced = self.shards[Self::shard(&conversation)].insert(conversation, waiting);
        self.len += usize::from(replaced.is_none());
    }

    fn remove(&mut self, conversation: &ConversationId) -> Option<Waiting> {
        let removed = self.shards[Self::shard(conversation)].remove(conversation);
        self.len -= usize::from(removed.is_some());
        removed
    }

    fn get(&self, conversation: &ConversationId) -> Option<&Waiting> {
        self.shards[Self::shard(conversation)].get(conversation)
    }

    fn iter(&self) -> impl Iterator<Item = (&ConversationId, &Waiting)> {
        self.shards.iter().flat_map(|shard| shard.iter())
    }
}

impl Default for Entries {
    fn default() -> Self {
        Entries { shards: (0..Self::SHARDS).map(|_| FxHashMap::default()).collect(), len: 0 }
    }
}

impl Backlog {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// An empty backlog whose next key follows `next_seq` (restoring).
    pub(crate) fn resuming(next_seq: u64) -> Backlog {
        Backlog { next_seq, ..Backlog::default() }
    }

    /// The last sequence number handed out.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub(crate) fn next_key(&mut self, rank: i64) -> QueueKey {
        self.next_seq += 1;
        QueueKey { rank, seq: self.next_seq }
    }

    pub(crate) fn insert(&mut self, conversation: ConversationId, waiting: Waiting) {
        self.remove(conversation);
        let member = (waiting.key, conversation);
        match waiting.preferred {
            Some((slot, _)) => self.preferred.entry(slot).or_default().insert(member),
            None => self
                .groups
                .entry(lane(&waiting.need))
                .or_default()
                .entry(waiting.need.clone())
                .or_default()
                .insert(member),
        };
        self.entries.insert(conversation, waiting);
    }

    pub(crate) fn remove(&mut self, conversation: ConversationId) -> Option<Waiting> {
        let waiting = self.entries.remove(&conversation)?;
        let member = (waiting.key, conversation);
        match waiting.preferred {
            Some((slot, _)) => {
                if let Some(set) = self.preferred.get_mut(&slot) {
                    set.remove(&member);
                    if set.is_empty() {
                        self.preferred.remove(&slot);
                    }
                }
            }
            None => {
                let lane = lane(&waiting.need);
                if let Some(needs) = self.groups.get_mut(&lane) {
                    if let Some(set) = needs.get_mut(&waiting.need) {
                        set.remove(&member);
                        if set.is_empty() {
                            needs.remove(&waiting.need);
                        }
                    }
                    if needs.is_empty() {
                        self.groups.remove(&lane);
                    }
                }
            }
        }
        Some(waiting)
    }

    pub(crate) fn get(&self, conversation: ConversationId) -> Option<&Waiting> {
        self.entries.get(&conversation)
    }

    /// How many conversations that need the same kind of agent wait ahead
    /// of this one: its place in line. Conversations that need other skills,
    /// another language or another channel are served by other agents and do
    /// not count. Costs O(log n).
    pub(crate) fn position(&self, conversation: ConversationId) -> u32 {
        let Some(waiting) = self.entries.get(&conversation) else { return 0 };
        let set = match waiting.preferred {
            Some((slot, _)) => self.preferred.get(&slot),
            None => {
                self.groups.get(&lane(&waiting.need)).and_then(|needs| needs.get(&waiting.need))
            }
        };
        let ahead = set.map_or(0, |set| set.rank(&(waiting.key, conversation)));
        u32::try_from(ahead).unwrap_or(u32::MAX)
    }

    /// The best entry `slot` may take: its preferred entries and the head of
    /// every group `accepts` says yes to (skipping entries that exclude it),
    /// looking only at the (channel, language) lanes `serves` says yes to,
    /// for preferred entries too.
    pub(crate) fn best_for(
        &self,
        slot: u32,
        serves: impl Fn(Channel, Language) -> bool,
        mut accepts: impl FnMut(&Need) -> bool,
    ) -> Option<(QueueKey, ConversationId)> {
        let mut best: Option<(QueueKey, ConversationId)> = None;
        let mut consider = |candidate: Option<&(QueueKey, ConversationId)>| {
            if let Some(&candidate) = candidate
                && best.is_none_or(|b| candidate < b)
            {
                best = Some(candidate);
            }
        };
        if let Some(set) = self.preferred.get(&slot) {
            // The agent may be full on the entry's channel (that is why it
            // waits): skip it then, as the lanes below are skipped.
            let head = set.iter().find(|(_, c)| {
                self.entries.get(c).is_some_and(|w| {
                    serves(w.need.channel, w.need.language)
                        && accepts(&w.need)
                        && w.excluded != Some(slot)
                })
            });
            consider(head);
        }
        let lanes =
            self.groups.iter().filter(|((channel, language), _)| serves(*channel, *language));
        for (need, set) in lanes.flat_map(|(_, needs)| needs.iter()) {
            if !accepts(need) {
                continue;
            }
            let head = set
                .iter()
                .find(|(_, c)| self.entries.get(c).is_some_and(|w| w.excluded != Some(slot)));
            consider(head);
        }
        best
    }

    pub(crate) fn conversations(&self) -> impl Iterator<Item = (&ConversationId, &Waiting)> {
        self.entries.iter()
    }
}

fn lane(need: &Need) -> (Channel, Language) {
    (need.channel, need.language)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(channel: Channel) -> Need {
        Need { channel, language: Language::NL, required: Requirements::new(), pool: Pool::Humans }
    }

    fn waiting(backlog: &mut Backlog, rank: i64, channel: Channel) -> Waiting {
        Waiting {
            key: backlog.next_key(rank),
            need: need(channel),
            priority: 0,
            enqueued_at: Timestamp(0),
            preferred: None,
            excluded: None,
            generation: 0,
        }
    }

    #[test]
    fn best_is_lowest_key_among_accepted_groups() {
        let mut backlog = Backlog::default();
        let a = waiting(&mut backlog, 10, Channel::Chat);
        let b = waiting(&mut backlog, 5, Channel::Email);
        let c = waiting(&mut backlog, 7, Channel::Chat);
        backlog.insert(ConversationId(1), a);
        backlog.insert(ConversationId(2), b);
        backlog.insert(ConversationId(3), c);
        assert_eq!(backlog.best_for(0, |_, _| true, |_| true).unwrap().1, ConversationId(2));
        assert_eq!(
            backlog.best_for(0, |c, _| c == Channel::Chat, |_| true).unwrap().1,
            ConversationId(3)
        );
        let a = waiting(&mut backlog, 1, Channel::Chat);
        backlog.insert(ConversationId(4), a);
        // Conversation 3 waits behind 4 among chats; the email does not count.
        assert_eq!(backlog.position(ConversationId(3)), 1);
        assert_eq!(backlog.position(ConversationId(1)), 2);
        assert_eq!(backlog.position(ConversationId(2)), 0);
        backlog.remove(ConversationId(4));
        assert_eq!(backlog.position(ConversationId(3)), 0);
        assert_eq!(backlog.len(), 3);
    }

    #[test]
    fn preferred_entries_only_go_to_their_agent_and_exclusions_hold() {
        let mut backlog = Backlog::default();
        let mut a = waiting(&mut backlog, 1, Channel::Chat);
        a.preferred = Some((7, Timestamp(100)));
        backlog.insert(ConversationId(1), a);
        let mut b = waiting(&mut backlog, 2, Channel::Chat);
        b.excluded = Some(7);
        backlog.insert(ConversationId(2), b);
        // Slot 3 may not take the entry preferred to slot 7, only the other one.
        assert_eq!(backlog.best_for(3, |_, _| true, |_| true).unwrap().1, ConversationId(2));
        assert_eq!(backlog.best_for(7, |_, _| true, |_| true).unwrap().1, ConversationId(1));
        backlog.remove(ConversationId(1));
        // Slot 7 is excluded from the remaining entry.
        assert_eq!(backlog.best_for(7, |_, _| true, |_| true), None);
    }
}
