//! A customer message: a new conversation is placed (past the bots when its
//! first message already calls for a person), a message in an open one stays
//! with its agent or escalates.

use super::*;

impl Inner {
    pub(super) fn route(&self, message: &Message, out: &mut Vec<Event>) -> Event {
        // The conversation's slot is the first thing read, and usually not
        // in cache: start loading it while the clock is read.
        self.conversations.prefetch(message.conversation);
        let now = self.clock.now();
        let id = message.conversation;
        let mut op = Operation::new(now, out);
        let decision = match self.conversations.entry(id) {
            Entry::Occupied(mut conv) => {
                let conv = &mut *conv;
                if conv.state == ConversationState::Closed {
                    *conv = Conversation::new(message, now, self.incarnation());
                    self.open(&mut op, id, conv, message)
                } else {
                    self.route_existing(&mut op, id, conv, message)
                }
            }
            Entry::Vacant(vacant) => {
                // Placing reads the customer's history first: start that
                // cache miss now, to overlap with storing the conversation.
                if self.config.affinity_lookback_ms > 0 {
                    self.customers.prefetch(message.customer);
                }
                // Stored first and placed in the table: the shard stays locked
                // throughout, so nobody sees it half-placed, and the stores
                // into the (cold) slot complete while placing instead of
                // stalling the unlock at the end.
                let mut conv = vacant.insert(Conversation::new(message, now, self.incarnation()));
                self.open(&mut op, id, &mut conv, message)
            }
        };
        self.finish(op);
        decision
    }

    /// A fresh incarnation number. Threads take blocks of numbers from a
    /// process-wide counter, so opening conversations on several threads
    /// does not bounce one cache line between cores. A restored router
    /// offsets them past the incarnations in its snapshot.
    pub(super) fn incarnation(&self) -> u32 {
        const BLOCK: u32 = 1024;
        static NEXT_BLOCK: AtomicU32 = AtomicU32::new(0);
        thread_local! {
            static RANGE: std::cell::Cell<(u32, u32)> = const { std::cell::Cell::new((0, 0)) };
        }
        RANGE.with(|range| {
            let (mut next, mut end) = range.get();
            if next == end {
                next = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
                end = next.wrapping_add(BLOCK);
            }
            range.set((next.wrapping_add(1), end));
            next.wrapping_add(self.incarnation_base)
        })
    }

    /// Places a conversation that starts with `message`. Under bot-first, a
    /// first message that already meets an escalation trigger skips the
    /// bot: it escalates at once (an `escalated` event, then a human or a
    /// place ahead in the queue), as a later message would.
    pub(super) fn open(
        &self,
        op: &mut Operation<'_>,
        id: ConversationId,
        conv: &mut Conversation,
        message: &Message,
    ) -> Event {
        if self.config.bot_first
            && let Some(trigger) = self.escalation_trigger(message)
        {
            op.emit(id, None, EventKind::Escalated { trigger });
            conv.escalated = true;
            return self.place(op, id, conv, Placement::Escalate);
        }
        self.place(op, id, conv, Placement::New)
    }

    pub(super) fn escalation_trigger(&self, message: &Message) -> Option<EscalationTrigger> {
        let policy = &self.config.escalation;
        if policy.on_human_request && message.signals.human_request {
            Some(EscalationTrigger::HumanRequest)
        } else if policy.on_complaint && message.signals.complaint {
            Some(EscalationTrigger::Complaint)
        } else if policy.on_doubt && message.signals.doubt {
            Some(EscalationTrigger::Doubt)
        } else if clamp_unit(message.buying_intent) >= policy.buying_intent_threshold {
            Some(EscalationTrigger::BuyingIntent)
        } else {
            None
        }
    }

    /// The decision for a message that stays with the agent holding it.
    pub(super) fn sticky(
        &self,
        op: &mut Operation<'_>,
        id: ConversationId,
        conv: &Conversation,
    ) -> Event {
        let kind = EventKind::Assigned { reason: AssignReason::Sticky, waited_ms: 0 };
        op.emit(id, conv.holder.map(|h| h.agent), kind)
    }

    pub(super) fn route_existing(
        &self,
        op: &mut Operation<'_>,
        id: ConversationId,
        conv: &mut Conversation,
        message: &Message,
    ) -> Event {
        conv.last_message_at = op.now;
        conv.messages = conv.messages.saturating_add(1);
        conv.buying_intent = clamp_unit(message.buying_intent);
        let holder_online =
            conv.holder.is_some_and(|h| self.roster.cell(h.slot).presence().keeps_conversations());
        match conv.state {
            ConversationState::Assigned | ConversationState::Offered if holder_online => {
                self.sticky(op, id, conv)
            }
            ConversationState::Bot if holder_online => match self.escalation_trigger(message) {
                Some(trigger) => {
                    op.emit(id, conv.holder.map(|h| h.agent), EventKind::Escalated { trigger });
                    conv.escalated = true;
                    self.place(op, id, conv, Placement::Escalate)
                }
                None => self.sticky(op, id, conv),
            },
            ConversationState::WrapUp if holder_online => {
                // The customer wrote again during wrap-up: reopen with the same agent.
                let holder = conv.holder.map(|h| h.slot);
                conv.state = match holder.map(|slot| self.roster.cell(slot).kind()) {
                    Some(AgentKind::Bot) => ConversationState::Bot,
                    _ => ConversationState::Assigned,
                };
                conv.bump();
                self.sticky(op, id, conv)
            }
            ConversationState::Queued => {
                let holder = conv.holder.map(|h| h.agent);
                let backlog = self.backlog.lock();
                let (position, priority) = backlog
                    .get(id)
                    .map(|w| (backlog.position(id), w.priority))
                    .unwrap_or((0, self.priority(conv)));
                drop(backlog);
                let reason = QueueReason::AlreadyQueued;
                op.emit(id, holder, EventKind::Queued { reason, position, priority, why: None })
            }
            // The holder is away, offline or removed (the reassignment sweep
            // has not reached this conversation yet), or wrap-up ended.
            _ => {
                let reopened = conv.state == ConversationState::WrapUp;
                self.release_holder(id, conv);
                conv.boosted = !reopened;
                if reopened {
                    self.open(op, id, conv, message)
                } else {
                    self.place(op, id, conv, Placement::Reassign)
                }
            }
        }
    }
}
