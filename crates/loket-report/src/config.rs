//! The meter's knobs.

use loket_hours::{BusinessHours, OpeningHours};
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::interval::SLOT_MS;
use crate::sla::SlaPolicy;

/// How a tenant's conversations are measured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeterConfig {
    /// A conversation closed before any reply and within this many
    /// milliseconds of its first message is a short abandon (default
    /// 10 s): left out of the service level's denominator.
    pub short_abandon_ms: u64,
    /// An order up to this long after the close still counts as the
    /// conversation's conversion (default 1 h). A closed conversation's
    /// state is kept this long, then dropped; with 0, an order in the same
    /// millisecond as the close still counts.
    pub order_window_ms: u64,
    /// Intervals whose start is this much older than the meter's current
    /// 15-minute interval are dropped (default 35 days); at least 15 min.
    pub retention_ms: u64,
    /// Reply targets and warnings.
    pub sla: SlaPolicy,
    /// Opening hours: with them every clock is also measured in business
    /// hours (`wait_business_ms` and its twins), the open time between
    /// the clock's start and stop. `None` (the default): no business-hours
    /// clocks.
    pub opening_hours: Option<BusinessHours>,
}

impl Default for MeterConfig {
    fn default() -> MeterConfig {
        MeterConfig {
            short_abandon_ms: 10_000,
            order_window_ms: 3_600_000,
            retention_ms: 35 * 24 * 3_600_000,
            sla: SlaPolicy::default(),
            opening_hours: None,
        }
    }
}

impl MeterConfig {
    /// Checks the SLA policy, the retention and the opening hours.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.retention_ms < SLOT_MS {
            return Err(ConfigError::Retention(self.retention_ms));
        }
        self.sla.validate()?;
        self.opening_hours()?;
        Ok(())
    }

    /// The opening hours, parsed.
    pub(crate) fn opening_hours(&self) -> Result<Option<OpeningHours>, ConfigError> {
        self.opening_hours.as_ref().map(OpeningHours::parse).transpose().map_err(Into::into)
    }

    /// How many 15-minute slots are kept, the current one included.
    pub(crate) fn retained_slots(&self) -> u64 {
        self.retention_ms / SLOT_MS
    }
}
