//! `Router::audit`: the router's bookkeeping checked against itself.

use super::*;

impl Inner {
    pub(super) fn audit(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut held: FxHashMap<(u32, Channel), u32> = FxHashMap::default();
        let mut holders: FxHashMap<ConversationId, u32> = FxHashMap::default();
        // The conversations first, then the backlog: the lock order puts a
        // conversation's shard before the backlog, so neither is read while
        // holding the other (a concurrent caller would deadlock).
        let mut states: Vec<(ConversationId, ConversationState)> = Vec::new();
        self.conversations.for_each(|id, conv| {
            states.push((id, conv.state));
            if let Some(holder) = conv.holder {
                *held.entry((holder.slot, conv.channel)).or_default() += 1;
                holders.insert(id, holder.slot);
                if conv.state == ConversationState::Closed {
                    problems.push(format!("conversation {} is closed but held", id.0));
                }
            } else if matches!(
                conv.state,
                ConversationState::Assigned | ConversationState::Bot | ConversationState::Offered
            ) {
                problems
                    .push(format!("conversation {} is {:?} without an agent", id.0, conv.state));
            }
        });
        states.sort_unstable_by_key(|&(id, _)| id);
        let backlog = self.backlog.lock();
        for &(id, state) in &states {
            let queued = backlog.get(id).is_some();
            if queued != (state == ConversationState::Queued) {
                problems.push(format!(
                    "conversation {} is {:?} but {} the backlog",
                    id.0,
                    state,
                    if queued { "in" } else { "not in" }
                ));
            }
        }
        for (id, _) in backlog.conversations() {
            if states.binary_search_by_key(id, |&(id, _)| id).is_err() {
                problems.push(format!("backlog holds unknown conversation {}", id.0));
            }
        }
        if self.waiting.load(Ordering::SeqCst) != backlog.len() {
            problems.push(format!(
                "waiting counter {} but backlog holds {}",
                self.waiting.load(Ordering::SeqCst),
                backlog.len()
            ));
        }
        drop(backlog);
        let writer = self.roster.writer.lock();
        for slot in 0..writer.profiles.len() as u32 {
            let cell = self.roster.cell(slot);
            for channel in Channel::ALL {
                let load = cell.capacity.load(channel);
                let expected = held.get(&(slot, channel)).copied().unwrap_or(0);
                if load != expected {
                    problems.push(format!(
                        "agent {} holds {expected} {channel} conversations but its load is {load}",
                        cell.id().0
                    ));
                }
            }
            for conversation in cell.held().iter() {
                if holders.get(conversation) != Some(&slot) {
                    problems.push(format!(
                        "agent {} lists conversation {} it does not hold",
                        cell.id().0,
                        conversation.0
                    ));
                }
            }
        }
        problems
    }
}
