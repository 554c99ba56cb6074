//! A tenant's event stream: decisions and state changes, numbered, kept for
//! resuming subscribers.

use std::collections::{BTreeSet, VecDeque};

use loket_ids::{NameRef, TenantIds};
use loket_replay::WhyRecord;
use loket_router::{EventKind, Router};
use parking_lot::RwLock;
use serde::Serialize;
use tokio::sync::watch;

use crate::state::{SeqEvent, StreamEvent};

/// The last `retention` published events of a tenant. Events are published
/// only once the journal records that caused them are durable, so a
/// subscriber never sees a decision that a crash could take back.
#[derive(Debug)]
pub struct EventLog {
    events: RwLock<VecDeque<SeqEvent>>,
    retention: usize,
    latest: watch::Sender<u64>,
}

/// What [`EventLog::read_from`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    /// The oldest sequence number still kept (the next to be published if none).
    pub oldest: u64,
    /// The next sequence number to ask for.
    pub next: u64,
}

impl EventLog {
    /// An empty log keeping at most `retention` events (at least 1), whose
    /// next event will be `next_seq` (events before it are not kept: a
    /// subscriber asking for them is told of the gap).
    pub fn new(retention: usize, next_seq: u64) -> EventLog {
        // Allocated up front: growing a large ring by doubling would stall
        // the sequencer while it copies.
        EventLog {
            events: RwLock::new(VecDeque::with_capacity(retention.clamp(1, 1 << 22))),
            retention: retention.max(1),
            latest: watch::channel(next_seq.saturating_sub(1)).0,
        }
    }

    /// Appends events (in sequence order) and wakes subscribers.
    pub fn publish(&self, events: &[SeqEvent]) {
        let Some(last) = events.last() else { return };
        {
            let mut kept = self.events.write();
            if events.len() >= self.retention {
                kept.clear();
                kept.extend(&events[events.len() - self.retention..]);
            } else {
                let overflow = (kept.len() + events.len()).saturating_sub(self.retention);
                kept.drain(..overflow);
                kept.extend(events);
            }
        }
        self.latest.send_replace(last.seq);
    }

    /// The highest published sequence number (0 before any).
    pub fn latest(&self) -> u64 {
        *self.latest.borrow()
    }

    /// Wakes when something is published.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.latest.subscribe()
    }

    /// Copies up to `max` events with `seq >= from` into `out`.
    pub fn read_from(&self, from: u64, max: usize, out: &mut Vec<SeqEvent>) -> Read {
        let kept = self.events.read();
        let oldest = kept.front().map_or(self.latest() + 1, |event| event.seq);
        let start = kept.partition_point(|event| event.seq < from);
        out.extend(kept.range(start..).take(max));
        let next = out.last().map_or(from.max(oldest), |event| event.seq + 1);
        Read { oldest, next }
    }

    /// Removes the oldest kept events that happened before `cutoff_ms`
    /// (retention); returns how many are left.
    pub fn drop_before(&self, cutoff_ms: u64) -> usize {
        let mut kept = self.events.write();
        while kept.front().is_some_and(|event| event.event.at_ms() < cutoff_ms) {
            kept.pop_front();
        }
        kept.len()
    }

    /// Removes every kept event about one of `conversations` (erasure);
    /// returns how many.
    pub fn purge(&self, conversations: &BTreeSet<u64>) -> usize {
        if conversations.is_empty() {
            return 0;
        }
        let mut kept = self.events.write();
        let before = kept.len();
        kept.retain(|event| {
            event.event.conversation().is_none_or(|id| !conversations.contains(&id.0))
        });
        before - kept.len()
    }
}

/// An event as the API shows it: its sequence number, the caller's ids,
/// what happened, and skills by name (`skill_name` for a closed skill
/// group; `why` for a conversation that waits with `no_eligible_agent`).
#[derive(Debug, Serialize)]
pub struct EventJson<'a> {
    /// Sequence number.
    pub seq: u64,
    /// When, ms since the Unix epoch (tenant clock).
    pub at: u64,
    /// The conversation, as the platform names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation: Option<NameRef<'a>>,
    /// The agent, as the platform names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<NameRef<'a>>,
    /// What happened and why.
    #[serde(flatten)]
    pub kind: KindJson<'a>,
    /// For `outside_business_hours`: the skill group's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skill_name: Option<String>,
    /// For `queued` with `no_eligible_agent`: which requirement nobody meets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<WhyRecord>,
}

/// The `type` of an event and its fields.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum KindJson<'a> {
    /// The router's decisions and state changes.
    Routed(&'a EventKind),
    /// `sla_warning` or `sla_breached`.
    Sla(SlaJson),
}

/// An SLA event's fields: `{"type": "sla_warning" | "sla_breached",
/// "clock": "first_reply" | "next_reply", "target_ms"}`.
#[derive(Debug, Serialize)]
pub struct SlaJson {
    /// `sla_warning` or `sla_breached`.
    #[serde(rename = "type")]
    pub kind: loket_report::SlaEventKind,
    /// Which reply clock.
    pub clock: loket_report::SlaClock,
    /// The target, ms.
    pub target_ms: u64,
}

impl<'a> EventJson<'a> {
    /// The JSON form of `event`, naming ids with `ids` and skills with
    /// `router`.
    pub fn new(event: &'a SeqEvent, router: &Router, ids: &'a TenantIds) -> EventJson<'a> {
        let skill_name = |skill| router.skill_name(skill);
        let conversation = event.event.conversation().and_then(|c| ids.conversation_name(c.0));
        match &event.event {
            StreamEvent::Routed(inner) => EventJson {
                seq: event.seq,
                at: inner.at.0,
                conversation,
                agent: inner.agent.and_then(|a| ids.agents.name_ref(a.0)),
                kind: KindJson::Routed(&inner.kind),
                skill_name: match inner.kind {
                    EventKind::OutsideBusinessHours { skill } => skill_name(skill),
                    _ => None,
                },
                why: WhyRecord::of(&inner.kind, skill_name),
            },
            StreamEvent::Sla(sla) => EventJson {
                seq: event.seq,
                at: sla.at,
                conversation,
                agent: None,
                kind: KindJson::Sla(SlaJson {
                    kind: sla.kind,
                    clock: sla.clock,
                    target_ms: sla.target_ms,
                }),
                skill_name: None,
                why: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use loket_router::{ConversationId, Event, Timestamp};

    use super::*;

    fn event(seq: u64, conversation: u64) -> SeqEvent {
        SeqEvent {
            seq,
            event: crate::state::StreamEvent::Routed(Event {
                at: Timestamp(seq),
                conversation: Some(ConversationId(conversation)),
                agent: None,
                kind: EventKind::Closed,
            }),
        }
    }

    #[test]
    fn keeps_the_newest_and_resumes_from_any_point() {
        let log = EventLog::new(3, 1);
        log.publish(&(1..=5).map(|seq| event(seq, seq)).collect::<Vec<_>>());
        assert_eq!(log.latest(), 5);
        let mut out = Vec::new();
        let read = log.read_from(1, 10, &mut out);
        assert_eq!(read.oldest, 3, "1 and 2 are gone");
        assert_eq!(out.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(read.next, 6);
        out.clear();
        let read = log.read_from(5, 10, &mut out);
        assert_eq!((out.len(), read.next), (1, 6));
        out.clear();
        assert_eq!(log.read_from(6, 10, &mut out).next, 6);
        assert!(out.is_empty());
        log.publish(&[event(6, 6)]);
        assert_eq!(log.read_from(0, 1, &mut out).next, 5);
    }

    #[test]
    fn a_log_that_starts_late_reports_what_it_never_had() {
        let log = EventLog::new(10, 50);
        assert_eq!(log.latest(), 49);
        let mut out = Vec::new();
        let read = log.read_from(1, 10, &mut out);
        assert_eq!((read.oldest, read.next), (50, 50));
        assert!(out.is_empty());
    }

    #[test]
    fn retention_drops_the_oldest_events() {
        let log = EventLog::new(10, 1);
        log.publish(&(1..=5).map(|seq| event(seq, seq)).collect::<Vec<_>>());
        assert_eq!(log.drop_before(4), 2, "events at 1, 2 and 3 go");
        let mut out = Vec::new();
        let read = log.read_from(1, 10, &mut out);
        assert_eq!((read.oldest, out.len()), (4, 2));
    }

    #[test]
    fn purge_drops_only_the_erased_conversations() {
        let log = EventLog::new(10, 1);
        log.publish(&[event(1, 7), event(2, 8), event(3, 7)]);
        assert_eq!(log.purge(&BTreeSet::from([7])), 2);
        let mut out = Vec::new();
        log.read_from(0, 10, &mut out);
        assert_eq!(out.iter().map(|e| e.seq).collect::<Vec<_>>(), [2]);
    }
}
