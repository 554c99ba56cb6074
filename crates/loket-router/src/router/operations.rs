//! Closing, erasure, offers, transfers, and agents coming and going; freed
//! capacity drains the backlog once no conversation guard is held.

use super::*;

impl Inner {
    pub(super) fn close(
        &self,
        id: ConversationId,
        out: &mut Vec<Event>,
    ) -> Result<(), RouterError> {
        // As in `route`: the slot's cache miss overlaps with the clock read.
        self.conversations.prefetch(id);
        let now = self.clock.now();
        let mut op = Operation::new(now, out);
        // One lookup: the conversation is closed and, unless wrap-up keeps
        // it, forgotten under the same guard.
        let mut conv = self.conversations.get(id).ok_or(RouterError::UnknownConversation(id))?;
        match conv.state {
            ConversationState::Closed | ConversationState::WrapUp => return Ok(()),
            ConversationState::Queued => {
                self.unqueue(id);
            }
            _ => {}
        }
        let agent = conv.holder.map(|h| h.agent);
        op.emit(id, agent, EventKind::Closed);
        // Wrap-up keeps a human's capacity; the agent's kind is read last
        // (its cell is the next cache miss, and without wrap-up it is not
        // needed before the release).
        if self.config.wrap_up_ms > 0
            && conv.state == ConversationState::Assigned
            && conv.holder.is_some_and(|h| self.roster.cell(h.slot).kind() == AgentKind::Human)
        {
            conv.state = ConversationState::WrapUp;
            let generation = conv.bump();
            self.schedule(
                now.plus_ms(self.config.wrap_up_ms),
                TimerKind::WrapUpEnd,
                id,
                generation,
            );
            return Ok(());
        }
        if let Some(slot) = self.release_holder(id, &mut conv) {
            op.drain_later(slot);
            op.emit(id, agent, EventKind::Released);
        }
        conv.remove();
        self.finish(op);
        Ok(())
    }

    pub(super) fn erase_customer(
        &self,
        customer: CustomerId,
        out: &mut Vec<Event>,
    ) -> Vec<ConversationId> {
        let mut op = Operation::new(self.clock.now(), out);
        let mut ids: Vec<ConversationId> = Vec::new();
        self.conversations.for_each(|id, conv| {
            if conv.customer == customer {
                ids.push(id);
            }
        });
        ids.sort_unstable();
        let mut erased = Vec::with_capacity(ids.len());
        for id in ids {
            {
                let Some(mut conv) = self.conversations.get(id) else { continue };
                if conv.customer != customer {
                    continue;
                }
                if conv.state == ConversationState::Queued {
                    self.unqueue(id);
                }
                let agent = conv.holder.map(|h| h.agent);
                if let Some(slot) = self.release_holder(id, &mut conv) {
                    op.drain_later(slot);
                }
                conv.state = ConversationState::Closed;
                conv.bump();
                op.emit(id, agent, EventKind::Erased);
            }
            self.conversations.remove_if(id, |c| c.state == ConversationState::Closed);
            erased.push(id);
        }
        if !erased.is_empty() {
            self.timers.lock().retain(|Reverse(timer)| {
                timer.kind == TimerKind::HoursChange
                    || erased.binary_search(&timer.conversation).is_err()
            });
        }
        self.customers.remove(customer);
        self.finish(op);
        erased
    }

    pub(super) fn answer_offer(
        &self,
        id: ConversationId,
        agent: AgentId,
        accept: bool,
        out: &mut Vec<Event>,
    ) -> Result<(), RouterError> {
        let mut op = Operation::new(self.clock.now(), out);
        {
            let mut conv =
                self.conversations.get(id).ok_or(RouterError::UnknownConversation(id))?;
            let holder = conv.holder.filter(|h| h.agent == agent);
            let (Some(holder), ConversationState::Offered) = (holder, conv.state) else {
                return Err(RouterError::NoSuchOffer { conversation: id, agent });
            };
            let cell = self.roster.cell(holder.slot);
            if accept {
                conv.state = ConversationState::Assigned;
                conv.bump();
                cell.missed_offers.store(0, Ordering::Relaxed);
                op.emit(id, Some(agent), EventKind::OfferAccepted);
            } else {
                op.emit(id, Some(agent), EventKind::OfferDeclined);
                self.offer_not_taken(&mut op, id, &mut conv);
            }
        }
        self.finish(op);
        Ok(())
    }

    pub(super) fn offer_not_taken(
        &self,
        op: &mut Operation<'_>,
        id: ConversationId,
        conv: &mut Conversation,
    ) {
        if let Some(slot) = self.release_holder(id, conv) {
            conv.excluded = Some(slot);
            op.drain_later(slot);
        }
        conv.boosted = true;
        self.place(op, id, conv, Placement::OfferNotTaken);
    }

    pub(super) fn transfer(
        &self,
        id: ConversationId,
        agent: AgentId,
        out: &mut Vec<Event>,
    ) -> Result<(), RouterError> {
        let now = self.clock.now();
        let slot = self.roster.slot_of(agent).ok_or(RouterError::UnknownAgent(agent))?;
        let mut op = Operation::new(now, out);
        {
            let mut conv =
                self.conversations.get(id).ok_or(RouterError::UnknownConversation(id))?;
            let cannot = |why| RouterError::AgentCannotTake { conversation: id, agent, why };
            if matches!(conv.state, ConversationState::Closed | ConversationState::WrapUp) {
                return Err(RouterError::UnknownConversation(id));
            }
            if conv.holder.is_some_and(|h| h.slot == slot) {
                return Ok(());
            }
            let cell = self.roster.cell(slot);
            let indexes = self.roster.indexes();
            if !indexes.available(cell.kind()).contains(slot) {
                return Err(cannot("agent is not available"));
            }
            if !indexes.language(conv.language).is_some_and(|set| set.contains(slot)) {
                return Err(cannot("agent does not speak the conversation's language"));
            }
            if !self.roster.reserve(slot, conv.channel) {
                return Err(cannot("agent has no room on the channel"));
            }
            if conv.state == ConversationState::Queued {
                self.unqueue(id);
            }
            self.assign(&mut op, id, &mut conv, slot, AssignReason::Transfer, 0);
        }
        self.finish(op);
        Ok(())
    }

    // ----- Agents coming and going --------------------------------------------

    pub(super) fn follow_up(&self, changes: &[Change], out: &mut Vec<Event>) {
        let mut op = Operation::new(self.clock.now(), out);
        for change in changes {
            let kept = change.before.is_some_and(Presence::keeps_conversations);
            if kept && !change.after.keeps_conversations() {
                self.reassign_all(&mut op, change.slot);
            }
            if change.after == Presence::Available {
                op.drain_later(change.slot);
            }
        }
        self.finish(op);
    }

    /// Re-routes the conversations held by `slot`, whose agent no longer
    /// keeps them, each at the time the sweep reaches it.
    pub(super) fn reassign_all(&self, op: &mut Operation<'_>, slot: u32) {
        // The agent's new presence is published; see the fence in `assign`.
        fence(Ordering::SeqCst);
        let held: Vec<ConversationId> = self.roster.cell(slot).held();
        for id in held {
            op.now = self.clock.now();
            let Some(mut conv) = self.conversations.get(id) else { continue };
            if conv.holder.is_none_or(|h| h.slot != slot) {
                continue;
            }
            match conv.state {
                ConversationState::WrapUp => {
                    self.release_holder(id, &mut conv);
                    conv.state = ConversationState::Closed;
                    conv.bump();
                    op.emit(id, None, EventKind::Released);
                    drop(conv);
                    self.conversations.remove_if(id, |c| c.state == ConversationState::Closed);
                }
                ConversationState::Queued => {
                    // A bot was holding it while it waits for a human.
                    self.release_holder(id, &mut conv);
                }
                _ => {
                    self.release_holder(id, &mut conv);
                    conv.boosted = true;
                    self.place(op, id, &mut conv, Placement::Reassign);
                }
            }
        }
    }

    // ----- Draining the backlog ----------------------------------------------

    /// Ends an operation: offers waiting conversations to the agents it
    /// released, while they have room. Must be called with no conversation
    /// guard held.
    ///
    /// Inlined: most operations (a sticky message) released nobody, and
    /// then this is one comparison.
    #[inline]
    pub(super) fn finish(&self, mut op: Operation<'_>) {
        if !op.drains.is_empty() {
            self.drain(&mut op);
        }
    }

    /// Offers waiting conversations to `op`'s released agents, last released
    /// first, while they have room; agents that the assignments release in
    /// turn are drained too. Empties `op.drains`.
    ///
    /// Never inlined, so that [`Inner::finish`] stays small enough to be.
    #[inline(never)]
    fn drain(&self, op: &mut Operation<'_>) {
        fence(Ordering::SeqCst);
        while let Some(slot) = op.drains.pop() {
            loop {
                if self.waiting.load(Ordering::SeqCst) == 0 {
                    op.drains.clear();
                    return;
                }
                let cell = self.roster.cell(slot);
                if cell.presence() != Presence::Available {
                    break;
                }
                let now = self.clock.now();
                op.now = now;
                let indexes = self.roster.indexes();
                let mut backlog = self.backlog.lock();
                let serves = |channel: Channel, language| {
                    cell.capacity.has_room(channel)
                        && indexes.language(language).is_some_and(|set| set.contains(slot))
                };
                let pick =
                    backlog.best_for(slot, serves, |need| self.eligible(&indexes, slot, need, now));
                let Some((_, id)) = pick else { break };
                let channel = backlog.get(id).map(|w| w.need.channel).unwrap_or(Channel::Chat);
                if !self.roster.reserve(slot, channel) {
                    continue;
                }
                let Some(waiting) = backlog.remove(id) else {
                    self.roster.release(slot, channel);
                    break;
                };
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                drop(backlog);
                drop(indexes);
                match self.conversations.get(id) {
                    // The same life of the conversation that was queued, still waiting.
                    Some(mut conv)
                        if conv.state == ConversationState::Queued
                            && conv.generation == waiting.generation =>
                    {
                        let reason = if conv.escalated {
                            AssignReason::Escalation
                        } else if waiting.preferred.is_some() {
                            AssignReason::Affinity
                        } else if conv.overflow_step > 0 {
                            AssignReason::Overflow { step: conv.overflow_step - 1 }
                        } else {
                            AssignReason::SkillMatch { strategy: self.config.strategy }
                        };
                        let waited = now.since(waiting.enqueued_at);
                        self.assign(op, id, &mut conv, slot, reason, waited);
                    }
                    _ => {
                        // Closed (or closed and opened again) while we were
                        // reserving: give the slot back.
                        self.roster.release(slot, channel);
                    }
                }
            }
        }
    }
}
