//! Timers: offer expiry, wrap-up end, overflow steps, affinity waits and
//! opening hours, fired by `Router::advance`.

use super::*;

impl Inner {
    pub(super) fn advance(&self, out: &mut Vec<Event>) {
        let now = self.clock.now();
        self.sweep_customers(now);
        // Firing may schedule timers that are already due (the next overflow
        // step of a conversation that waited through several): fire those too.
        loop {
            let due = {
                let mut timers = self.timers.lock();
                match timers.peek() {
                    Some(next) if next.0.at <= now => timers.pop().map(|t| t.0),
                    _ => None,
                }
            };
            match due {
                Some(timer) => self.fire(timer, now, out),
                None => break,
            }
        }
    }

    /// Forgets customers whose last agent is older than the affinity
    /// look-back, at most once a minute, so the history stays bounded by the
    /// customers active within the look-back.
    pub(super) fn sweep_customers(&self, now: Timestamp) {
        const EVERY_MS: u64 = 60_000;
        let last = self.customers_swept_at.load(Ordering::Relaxed);
        if now.0 < last.saturating_add(EVERY_MS)
            || self
                .customers_swept_at
                .compare_exchange(last, now.0, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let lookback = self.config.affinity_lookback_ms;
        self.customers.retain(|_, history| {
            history.last_served_at().is_some_and(|at| now.since(at) <= lookback)
        });
    }

    pub(super) fn fire(&self, timer: Timer, now: Timestamp, out: &mut Vec<Event>) {
        let id = timer.conversation;
        let mut op = Operation::new(now, out);
        if timer.kind == TimerKind::HoursChange {
            op.drains.extend(self.roster.available_slots());
            // One chain of opening-hour timers: the next change of any group.
            if let Some(at) = self.hours.iter().filter_map(|(_, gate)| gate.next_change(now)).min()
            {
                self.schedule(at, TimerKind::HoursChange, ConversationId(0), 0);
            }
            self.finish(op);
            return;
        }
        let mut forget = false;
        {
            let Some(mut conv) = self.conversations.get(id) else { return };
            if conv.generation != timer.generation {
                return;
            }
            match (timer.kind, conv.state) {
                (TimerKind::OfferExpiry, ConversationState::Offered) => {
                    let holder = conv.holder;
                    op.emit(id, holder.map(|h| h.agent), EventKind::OfferExpired);
                    if let (Some(holder), Some(offers)) = (holder, self.config.offers) {
                        let missed = self
                            .roster
                            .cell(holder.slot)
                            .missed_offers
                            .fetch_add(1, Ordering::Relaxed)
                            + 1;
                        if missed >= offers.max_missed
                            && self
                                .roster
                                .set_presence(holder.slot, Presence::NotResponding)
                                .is_some()
                        {
                            op.out.push(Event {
                                at: now,
                                conversation: None,
                                agent: Some(holder.agent),
                                kind: EventKind::AgentNotResponding,
                            });
                        }
                    }
                    self.offer_not_taken(&mut op, id, &mut conv);
                }
                (TimerKind::WrapUpEnd, ConversationState::WrapUp) => {
                    let agent = conv.holder.map(|h| h.agent);
                    if let Some(slot) = self.release_holder(id, &mut conv) {
                        op.drain_later(slot);
                    }
                    conv.state = ConversationState::Closed;
                    conv.bump();
                    op.emit(id, agent, EventKind::Released);
                    forget = true;
                }
                (TimerKind::Overflow, ConversationState::Queued) if self.unqueue(id).is_some() => {
                    let step = conv.overflow_step;
                    conv.overflow_step += 1;
                    op.emit(id, None, EventKind::OverflowStep { step });
                    self.place(&mut op, id, &mut conv, Placement::Widened);
                }
                (TimerKind::AffinityEnd, ConversationState::Queued)
                    if self.unqueue(id).is_some() =>
                {
                    self.place(&mut op, id, &mut conv, Placement::AffinityOver);
                }
                _ => {}
            }
        }
        if forget {
            self.conversations.remove_if(id, |c| c.state == ConversationState::Closed);
        }
        self.finish(op);
    }
}
