//! Prometheus metrics. Handles are registered once per tenant and updated
//! once per group of commands, so the message path pays a few atomic adds.

use std::sync::OnceLock;
use std::time::Duration;

use loket_router::{AssignReason, CHANNELS, Channel, Event, EventKind, Router};
use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The process-wide recorder (installed on first use) and its renderer.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let seconds = [
            0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.001_5, 0.002,
            0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            300.0,
        ];
        // Reply times: seconds for chat up to a day for e-mail.
        let replies = [
            5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1_800.0, 3_600.0, 7_200.0,
            14_400.0, 28_800.0, 86_400.0,
        ];
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &seconds)
            .expect("bucket lists are non-empty")
            .set_buckets_for_metric(
                Matcher::Full("loketd_first_response_seconds".to_owned()),
                &replies,
            )
            .expect("bucket lists are non-empty")
            .set_buckets_for_metric(Matcher::Full("loketd_next_reply_seconds".to_owned()), &replies)
            .expect("bucket lists are non-empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (an embedding program's):
        // then ours renders only what it records itself, which is nothing.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// The labels of assignments, by [`AssignReason`], in [`reason_index`]
/// order.
const ASSIGN_REASONS: [&str; 9] = [
    "sticky",
    "affinity",
    "skill_match",
    "reassignment",
    "escalation",
    "overflow",
    "bot_first",
    "after_hours",
    "transfer",
];

/// Decision and state-change labels, in [`reason_index`] order: the
/// assignments by reason, then every other event type as
/// [`EventKind::TYPE_NAMES`] names it.
pub const REASONS: [&str; ASSIGN_REASONS.len() + EventKind::TYPE_NAMES.len() - 1] = {
    let mut all = [""; ASSIGN_REASONS.len() + EventKind::TYPE_NAMES.len() - 1];
    let mut index = 0;
    while index < ASSIGN_REASONS.len() {
        all[index] = ASSIGN_REASONS[index];
        index += 1;
    }
    // `TYPE_NAMES[0]` is "assigned", split by reason above.
    let mut kind = 1;
    while kind < EventKind::TYPE_NAMES.len() {
        all[ASSIGN_REASONS.len() + kind - 1] = EventKind::TYPE_NAMES[kind];
        kind += 1;
    }
    all
};

/// The index in [`REASONS`] of an event.
pub fn reason_index(kind: &EventKind) -> usize {
    match kind {
        EventKind::Assigned { reason, .. } => match reason {
            AssignReason::Sticky => 0,
            AssignReason::Affinity => 1,
            AssignReason::SkillMatch { .. } => 2,
            AssignReason::Reassignment => 3,
            AssignReason::Escalation => 4,
            AssignReason::Overflow { .. } => 5,
            AssignReason::BotFirst => 6,
            AssignReason::AfterHours => 7,
            AssignReason::Transfer => 8,
        },
        other => ASSIGN_REASONS.len() + other.type_index() - 1,
    }
}

/// One tenant's metric handles.
#[derive(Debug)]
pub struct TenantMetrics {
    /// Messages routed.
    pub messages: Counter,
    /// Events by reason, [`REASONS`] order.
    pub events: Vec<Counter>,
    /// Conversations waiting.
    pub queue_depth: Gauge,
    /// Conversations the router holds.
    pub conversations: Gauge,
    /// Registered agents.
    pub agents: Gauge,
    /// Conversations held by agents that are not offline, over their
    /// overall capacity (0..1).
    pub agent_load: Gauge,
    /// Conversations held by agents that are not offline.
    pub agent_held: Gauge,
    /// Overall capacity of agents that are not offline.
    pub agent_capacity: Gauge,
    /// Agents holding as many conversations as they may.
    pub agents_at_capacity: Gauge,
    /// Waiting time of conversations when assigned.
    pub queue_wait: Histogram,
    /// From a batch's arrival to its decisions.
    pub ingest_to_decision: Histogram,
    /// Scoring a batch on its handler, from its arrival until it is sent
    /// to the sequencer.
    pub scoring: Histogram,
    /// How long a command waits in the sequencer's queue.
    pub sequencer_wait: Histogram,
    /// From a batch's arrival to its acknowledgement (durable).
    pub ingest_to_ack: Histogram,
    /// One journal fsync.
    pub fsync: Histogram,
    /// Journal bytes written.
    pub journal_bytes: Counter,
    /// Snapshots written.
    pub snapshots: Counter,
    /// Requests refused by the rate limit, in messages.
    pub rate_limited: Counter,
    /// 1 while the tenant serves, 0 once it stopped or its journal failed.
    pub up: Gauge,
    /// Per channel ([`Channel::ALL`] order): how long the longest-waiting
    /// conversation has waited, by the tenant clock; 0 with none waiting.
    pub oldest_wait: [Gauge; CHANNELS],
    /// Per channel: first responses (a person's first reply), seconds.
    pub first_response: [Histogram; CHANNELS],
    /// Per channel: next replies, seconds.
    pub next_reply: [Histogram; CHANNELS],
    /// SLA breaches: first reply, next reply.
    pub sla_breaches: [Counter; 2],
    /// Per channel: the service level of the conversations that arrived in
    /// the last hour (answered within target / (answered + abandoned −
    /// short abandoned)); NaN with none. Read at scrape time.
    pub service_level: [Gauge; CHANNELS],
}

impl TenantMetrics {
    /// Registers the handles of tenant `name`.
    pub fn new(name: &str) -> TenantMetrics {
        prometheus();
        let tenant = name.to_owned();
        TenantMetrics {
            messages: metrics::counter!("loketd_messages_total", "tenant" => tenant.clone()),
            events: REASONS
                .iter()
                .map(|reason| {
                    metrics::counter!("loketd_events_total", "tenant" => tenant.clone(), "reason" => *reason)
                })
                .collect(),
            queue_depth: metrics::gauge!("loketd_queue_depth", "tenant" => tenant.clone()),
            conversations: metrics::gauge!("loketd_conversations", "tenant" => tenant.clone()),
            agents: metrics::gauge!("loketd_agents", "tenant" => tenant.clone()),
            agent_load: metrics::gauge!("loketd_agent_load_ratio", "tenant" => tenant.clone()),
            agent_held: metrics::gauge!("loketd_agent_conversations", "tenant" => tenant.clone()),
            agent_capacity: metrics::gauge!("loketd_agent_capacity", "tenant" => tenant.clone()),
            agents_at_capacity: metrics::gauge!("loketd_agents_at_capacity", "tenant" => tenant.clone()),
            queue_wait: metrics::histogram!("loketd_queue_wait_seconds", "tenant" => tenant.clone()),
            ingest_to_decision: metrics::histogram!("loketd_ingest_to_decision_seconds", "tenant" => tenant.clone()),
            ingest_to_ack: metrics::histogram!("loketd_ingest_to_ack_seconds", "tenant" => tenant.clone()),
            scoring: metrics::histogram!("loketd_scoring_seconds", "tenant" => tenant.clone()),
            sequencer_wait: metrics::histogram!("loketd_sequencer_wait_seconds", "tenant" => tenant.clone()),
            fsync: metrics::histogram!("loketd_journal_fsync_seconds", "tenant" => tenant.clone()),
            journal_bytes: metrics::counter!("loketd_journal_bytes_total", "tenant" => tenant.clone()),
            snapshots: metrics::counter!("loketd_snapshots_total", "tenant" => tenant.clone()),
            rate_limited: metrics::counter!("loketd_rate_limited_messages_total", "tenant" => tenant.clone()),
            up: metrics::gauge!("loketd_tenant_up", "tenant" => tenant.clone()),
            oldest_wait: Channel::ALL.map(|channel| {
                metrics::gauge!("loketd_queue_oldest_wait_seconds", "tenant" => tenant.clone(), "channel" => channel.as_str())
            }),
            first_response: Channel::ALL.map(|channel| {
                metrics::histogram!("loketd_first_response_seconds", "tenant" => tenant.clone(), "channel" => channel.as_str())
            }),
            next_reply: Channel::ALL.map(|channel| {
                metrics::histogram!("loketd_next_reply_seconds", "tenant" => tenant.clone(), "channel" => channel.as_str())
            }),
            sla_breaches: ["first_reply", "next_reply"].map(|clock| {
                metrics::counter!("loketd_sla_breaches_total", "tenant" => tenant.clone(), "clock" => clock)
            }),
            service_level: Channel::ALL.map(|channel| {
                metrics::gauge!("loketd_service_level_ratio", "tenant" => tenant.clone(), "channel" => channel.as_str())
            }),
        }
    }

    /// Records a reply clock that stopped.
    pub fn observe_reply(&self, observation: loket_report::Observation) {
        let (histograms, channel, ms) = match observation {
            loket_report::Observation::FirstResponse { channel, ms } => {
                (&self.first_response, channel, ms)
            }
            loket_report::Observation::NextReply { channel, ms } => (&self.next_reply, channel, ms),
        };
        histograms[channel.index()].record(Duration::from_millis(ms).as_secs_f64());
    }

    /// Counts SLA breaches (first reply, next reply).
    pub fn count_breaches(&self, breaches: [u64; 2]) {
        for (counter, count) in self.sla_breaches.iter().zip(breaches) {
            if count > 0 {
                counter.increment(count);
            }
        }
    }

    /// Sets the rolling service level per channel (the last hour's
    /// arrivals) from the tenant's measures, at scrape time.
    pub fn observe_reports(&self, metering: &loket_metering::Metering, now_ms: u64) {
        let query = loket_report::Query {
            from: now_ms.saturating_sub(3_600_000),
            to: now_ms.saturating_add(1),
            interval: loket_report::Interval::Day,
            group_by: vec![loket_report::Dimension::Channel],
        };
        let mut levels = [f64::NAN; CHANNELS];
        if let Ok(report) = metering.meter().report(&query) {
            for row in &report.groups {
                if let Some(channel) = Channel::ALL.iter().find(|c| c.as_str() == row.key)
                    && let Some(level) = row.measures.service_level
                {
                    levels[channel.index()] = level;
                }
            }
        }
        for (gauge, level) in self.service_level.iter().zip(levels) {
            gauge.set(level);
        }
    }

    /// Sets the gauges that are read at scrape time rather than kept up to
    /// date by the sequencer: whether the tenant serves, and per channel the
    /// longest wait now. Walks the waiting conversations once.
    pub fn observe(&self, healthy: bool, router: &Router) {
        self.up.set(if healthy { 1.0 } else { 0.0 });
        let now = router.now();
        let mut oldest = [0u64; CHANNELS];
        for lane in router.queues() {
            let waited = now.since(lane.oldest_since);
            let slot = &mut oldest[lane.channel.index()];
            *slot = (*slot).max(waited);
        }
        for (gauge, waited_ms) in self.oldest_wait.iter().zip(oldest) {
            gauge.set(Duration::from_millis(waited_ms).as_secs_f64());
        }
    }

    /// Counts a group's events by reason and records queue waits.
    pub fn record_events<'a>(&self, events: impl IntoIterator<Item = &'a Event>) {
        let mut counts = [0u64; REASONS.len()];
        for event in events {
            counts[reason_index(&event.kind)] += 1;
            if let EventKind::Assigned { waited_ms, .. } = event.kind
                && waited_ms > 0
            {
                self.queue_wait.record(Duration::from_millis(waited_ms).as_secs_f64());
            }
        }
        for (counter, count) in self.events.iter().zip(counts) {
            if count > 0 {
                counter.increment(count);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_labels_are_the_assign_reasons_then_the_other_event_types() {
        assert_eq!(
            REASONS,
            [
                "sticky",
                "affinity",
                "skill_match",
                "reassignment",
                "escalation",
                "overflow",
                "bot_first",
                "after_hours",
                "transfer",
                "offered",
                "offer_accepted",
                "offer_declined",
                "offer_expired",
                "queued",
                "overflow_step",
                "escalated",
                "outside_business_hours",
                "closed",
                "released",
                "agent_not_responding",
                "erased",
            ]
        );
        assert_eq!(REASONS[reason_index(&EventKind::Closed)], "closed");
        assert_eq!(REASONS[reason_index(&EventKind::Erased)], "erased");
        let transfer = EventKind::Assigned { reason: AssignReason::Transfer, waited_ms: 0 };
        assert_eq!(REASONS[reason_index(&transfer)], "transfer");
    }
}
