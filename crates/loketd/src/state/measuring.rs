//! Measuring: reply times, SLAs and conversions as commands apply
//! (`loket-metering`), for tenants that measure.

use super::*;

impl TenantState {
    /// Measures reply times, SLAs and conversions under `config`
    /// (`loket-report`): customer messages and the router's decisions as
    /// they apply, and the [`Command::Reply`] and [`Command::Order`]
    /// records. Without it those two records are refused.
    pub fn measure(
        mut self,
        config: MeterConfig,
    ) -> Result<TenantState, loket_report::ConfigError> {
        let mut metering = Metering::new(config)?;
        metering.set_observing(true);
        self.metering = Some(Arc::new(RwLock::new(metering)));
        Ok(self)
    }

    /// Takes the reply clocks stopped and the SLA breaches (first reply,
    /// next reply) since the last call, for live metrics; `f` gets each
    /// stopped clock.
    pub fn take_measured(&mut self, mut f: impl FnMut(loket_report::Observation)) -> [u64; 2] {
        for observation in self.observations.drain(..) {
            f(observation);
        }
        std::mem::take(&mut self.breaches)
    }

    /// The tenant's measuring, for reports (take the read lock briefly).
    pub fn metering(&self) -> Option<&Arc<RwLock<Metering>>> {
        self.metering.as_ref()
    }

    /// After a command changed `agent`, brings measuring's view of it (its
    /// team, kind and staffed capacity, for occupancy) in line with the
    /// router's.
    pub(super) fn measure_agent(&self, router: &Router, agent: AgentId) {
        if let Some(metering) = &self.metering {
            let mut metering = metering.write();
            let at = self.clock_ms.max(metering.meter().now());
            metering.agent_changed(at, router, agent);
        }
    }

    /// Measures the router's events not yet measured, remembers closed
    /// conversations for orders, and fires due SLA timers.
    pub(super) fn measure_events(&mut self) {
        let Some(metering) = &self.metering else { return };
        let mut metering = metering.write();
        metering.decisions(&self.scratch[self.metered..]);
        self.metered = self.scratch.len();
        let window = metering.meter().config().order_window_ms;
        let ids = self.ids.read();
        for event in &self.scratch {
            if let (Some(conversation), EventKind::Closed) = (event.conversation, event.kind)
                && let Some(name) = ids.conversations.name(conversation.0)
            {
                self.closed.closed(
                    &name.to_string(),
                    conversation.0,
                    self.clock_ms.saturating_add(window),
                );
            }
        }
        self.closed.expire(self.clock_ms);
        metering.advance(self.clock_ms);
        self.observations.extend(metering.take_observations());
        // SLA events go to the event stream after the command's own events
        // (numbered in `number`), and to the metrics.
        for event in metering.take_sla_events() {
            if event.kind == loket_report::SlaEventKind::Breached {
                self.breaches[usize::from(event.clock == loket_report::SlaClock::NextReply)] += 1;
            }
            self.sla_events.push(event);
        }
    }

    /// A conversation a reply or an order names: an open one, or one closed
    /// within the order window.
    pub(super) fn measured_conversation(&self, id: &Id) -> Result<ConversationId, ApplyError> {
        if let Some(key) = self.closed.key(&id.to_string())
            && self.ids.read().conversations.find(id).is_none()
        {
            return Ok(ConversationId(key));
        }
        self.conversation(id)
    }
}

pub(super) fn not_measuring() -> ApplyError {
    ApplyError::Invalid(
        "this tenant does not measure (set [tenants.reports] enabled = true)".to_owned(),
    )
}

/// A reply or order the meter refused, naming the conversation as the
/// platform does.
pub(super) fn measuring_error(conversation: &Id, error: MeteringError) -> ApplyError {
    match error {
        MeteringError::Fact(FactError::Closed(_)) => {
            ApplyError::Invalid(format!("conversation {:?} is closed", conversation.to_string()))
        }
        MeteringError::Fact(FactError::UnknownConversation(_)) => {
            ApplyError::UnknownConversation(conversation.to_string())
        }
        other => ApplyError::Invalid(other.to_string()),
    }
}
