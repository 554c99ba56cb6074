//! Giving a conversation to an agent (capacity reserved first, returned
//! exactly once) or to the backlog, after one more look under its lock.

use super::*;

impl Inner {
    /// Gives the conversation to `slot`, whose capacity the caller reserved.
    /// The previous holder, if any, is released and drained when `op`
    /// finishes.
    pub(super) fn assign(
        &self,
        op: &mut Operation<'_>,
        id: ConversationId,
        conv: &mut Conversation,
        slot: u32,
        reason: AssignReason,
        waited_ms: u64,
    ) -> Event {
        let now = op.now;
        if let Some(previous) = self.release_holder(id, conv) {
            op.drain_later(previous);
        }
        let cell = self.roster.cell(slot);
        let agent = cell.id();
        cell.hold(id);
        // Pairs with the fence in `reassign_all`: either that sweep sees this
        // conversation in the agent's list, or we see the agent leaving here.
        fence(Ordering::SeqCst);
        if !cell.presence().keeps_conversations() {
            cell.unhold(id);
            self.roster.release(slot, conv.channel);
            conv.excluded = Some(slot);
            return self.place(op, id, conv, Placement::Reassign);
        }
        cell.last_assigned_ms.store(now.0, Ordering::Relaxed);
        conv.holder = Some(Holder { slot, agent });
        conv.excluded = None;
        let kind = cell.kind();
        let event_kind = match (kind, self.config.offers) {
            (AgentKind::Bot, _) => {
                conv.state = ConversationState::Bot;
                EventKind::Assigned { reason, waited_ms }
            }
            (AgentKind::Human, Some(offers)) => {
                conv.state = ConversationState::Offered;
                let expires_at = now.plus_ms(offers.timeout_ms);
                let generation = conv.bump();
                self.schedule(expires_at, TimerKind::OfferExpiry, id, generation);
                EventKind::Offered { reason, expires_at }
            }
            (AgentKind::Human, None) => {
                conv.state = ConversationState::Assigned;
                EventKind::Assigned { reason, waited_ms }
            }
        };
        if conv.state != ConversationState::Offered {
            conv.bump();
        }
        if kind == AgentKind::Human {
            self.remember(conv.customer, slot, now);
        }
        conv.first_queued_at = None;
        conv.boosted = false;
        op.emit(id, Some(agent), event_kind)
    }

    /// Remembers that `slot` served `customer` at `at`, for affinity; with
    /// affinity off (a look-back of 0) nothing is kept, since nothing reads
    /// it.
    pub(super) fn remember(&self, customer: CustomerId, slot: u32, at: Timestamp) {
        if self.config.affinity_lookback_ms == 0 {
            return;
        }
        self.customers.update(customer, |history| history.remember(slot, at));
    }

    /// Returns the holder's capacity; the caller decides whether to drain.
    pub(super) fn release_holder(
        &self,
        id: ConversationId,
        conv: &mut Conversation,
    ) -> Option<u32> {
        let holder = conv.holder.take()?;
        self.roster.cell(holder.slot).unhold(id);
        let released = self.roster.release(holder.slot, conv.channel);
        debug_assert!(released, "a holder always holds capacity");
        Some(holder.slot)
    }

    // ----- Placing a conversation --------------------------------------------

    /// Finds a place for a conversation that needs one: an agent now, or the
    /// backlog. The conversation may still be held by a bot (escalation).
    pub(super) fn place(
        &self,
        op: &mut Operation<'_>,
        id: ConversationId,
        conv: &mut Conversation,
        placement: Placement,
    ) -> Event {
        let now = op.now;
        let need = self.need_of(conv);
        let human_reason = match placement {
            Placement::Reassign => AssignReason::Reassignment,
            Placement::Escalate => AssignReason::Escalation,
            Placement::Widened => AssignReason::Overflow { step: conv.overflow_step - 1 },
            _ => AssignReason::SkillMatch { strategy: self.config.strategy },
        };
        let queue_reason = match placement {
            Placement::Reassign => QueueReason::Reassignment,
            Placement::Escalate => QueueReason::Escalation,
            Placement::OfferNotTaken => QueueReason::OfferNotTaken,
            _ => QueueReason::NoEligibleAgent,
        };

        let indexes = self.roster.indexes();
        let origin = tie_origin(id, indexes.slots);
        if placement == Placement::New {
            self.prefetch_skill_words(&indexes, origin, &need.required);
        }

        if placement == Placement::New && self.config.bot_first {
            let bots = Need { required: Requirements::new(), pool: Pool::Bots, ..need.clone() };
            if let Some(slot) = self.select(&indexes, origin, &bots, None, now) {
                return self.assign(op, id, conv, slot, AssignReason::BotFirst, 0);
            }
        }

        if let Some(skill) = self.closed_group(&need.required, now) {
            op.emit(id, None, EventKind::OutsideBusinessHours { skill });
            // An escalation waits for a person (a bot that holds it keeps
            // answering meanwhile); anything else may go to a bot.
            let for_a_person = placement == Placement::Escalate
                || conv.holder.is_some_and(|h| self.roster.cell(h.slot).kind() == AgentKind::Bot);
            if !for_a_person {
                let bots = Need { required: Requirements::new(), pool: Pool::Bots, ..need.clone() };
                if let Some(slot) = self.select(&indexes, origin, &bots, None, now) {
                    return self.assign(op, id, conv, slot, AssignReason::AfterHours, 0);
                }
            }
            return self.enqueue(op, id, conv, need, QueueReason::OutsideBusinessHours, None);
        }

        // Customer affinity: the agents who served this customer, most recent first.
        let affinity = matches!(placement, Placement::New | Placement::Reassign)
            && self.config.affinity_lookback_ms > 0;
        if affinity && let Some(history) = self.history(conv.customer) {
            // The checks below miss the cache on each agent's skill words,
            // one after another: start those loads together first.
            for (slot, _) in history.iter() {
                self.prefetch_skill_words(&indexes, slot, &need.required);
            }
            for (index, (slot, served_at)) in history.iter().enumerate() {
                if now.since(served_at) > self.config.affinity_lookback_ms
                    || conv.excluded == Some(slot)
                    || !self.eligible(&indexes, slot, &need, now)
                {
                    continue;
                }
                if self.roster.reserve(slot, need.channel) {
                    let reason = if placement == Placement::Reassign {
                        AssignReason::Reassignment
                    } else {
                        AssignReason::Affinity
                    };
                    return self.assign(op, id, conv, slot, reason, 0);
                }
                if index == 0 && placement == Placement::New && self.config.affinity_wait_ms > 0 {
                    let until = now.plus_ms(self.config.affinity_wait_ms);
                    let reason = QueueReason::WaitingForPreferredAgent;
                    return self.enqueue(op, id, conv, need, reason, Some((slot, until)));
                }
            }
        }

        if let Some(slot) = self.select(&indexes, origin, &need, conv.excluded, now) {
            return self.assign(op, id, conv, slot, human_reason, 0);
        }
        self.enqueue(op, id, conv, need, queue_reason, None)
    }

    /// A copy of the customer's history (the shard lock is released at once).
    pub(super) fn history(&self, customer: CustomerId) -> Option<History> {
        self.customers.get(customer)
    }

    /// Puts a conversation in the backlog, after one more look for an agent
    /// under the backlog lock (see the module docs).
    pub(super) fn enqueue(
        &self,
        op: &mut Operation<'_>,
        id: ConversationId,
        conv: &mut Conversation,
        need: Need,
        reason: QueueReason,
        preferred: Option<(u32, Timestamp)>,
    ) -> Event {
        let now = op.now;
        let priority = self.priority(conv);
        let mut backlog = self.backlog.lock();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let again = match preferred {
            Some((slot, _)) => self.roster.reserve(slot, need.channel).then_some(slot),
            None if reason == QueueReason::OutsideBusinessHours => None,
            None => {
                let indexes = self.roster.indexes();
                self.select(&indexes, tie_origin(id, indexes.slots), &need, conv.excluded, now)
            }
        };
        if let Some(slot) = again {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            drop(backlog);
            let reason = if preferred.is_some() {
                AssignReason::Affinity
            } else {
                AssignReason::SkillMatch { strategy: self.config.strategy }
            };
            return self.assign(op, id, conv, slot, reason, 0);
        }
        let first_queued = *conv.first_queued_at.get_or_insert(now);
        // Waiting counts from the first queueing, also after an overflow step
        // or an affinity wait re-queues the conversation.
        let rank = self.config.priority.rank(first_queued.0, need.channel, priority);
        let key = backlog.next_key(rank);
        conv.state = ConversationState::Queued;
        let generation = conv.bump();
        let excluded = conv.excluded;
        // Explaining the wait reads the roster: done after the backlog lock
        // is released, from a copy of the need.
        let explain = (reason == QueueReason::NoEligibleAgent).then(|| need.clone());
        let waiting = Waiting {
            key,
            need,
            priority,
            enqueued_at: first_queued,
            preferred,
            excluded,
            generation,
        };
        backlog.insert(id, waiting);
        let position = backlog.position(id);
        drop(backlog);

        if let Some(&(after, _)) = self.overflow.get(conv.overflow_step as usize) {
            let at = first_queued.plus_ms(after).max(now);
            self.schedule(at, TimerKind::Overflow, id, generation);
        }
        if let Some((_, until)) = preferred {
            self.schedule(until, TimerKind::AffinityEnd, id, generation);
        }
        let why = explain.map(|need| self.why(&self.roster.indexes(), &need, excluded));
        op.emit(
            id,
            conv.holder.map(|h| h.agent),
            EventKind::Queued { reason, position, priority, why },
        )
    }

    pub(super) fn unqueue(&self, id: ConversationId) -> Option<Waiting> {
        let removed = self.backlog.lock().remove(id);
        if removed.is_some() {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
        removed
    }
}
