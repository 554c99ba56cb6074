//! Opening hours of skill groups, time-zone aware.

use std::sync::atomic::{AtomicU64, Ordering};

pub use loket_hours::BusinessHours;

use crate::error::RouterError;
use crate::ids::Timestamp;

/// Parsed opening hours (`loket-hours`), with the router's errors and
/// timestamps.
#[derive(Debug, Clone)]
pub(crate) struct OpeningHours(loket_hours::OpeningHours);

impl OpeningHours {
    pub(crate) fn parse(hours: &BusinessHours) -> Result<OpeningHours, RouterError> {
        loket_hours::OpeningHours::parse(hours).map(OpeningHours).map_err(|error| match error {
            loket_hours::HoursError::UnknownTimeZone(zone) => RouterError::UnknownTimeZone(zone),
            loket_hours::HoursError::InvalidInterval { interval, .. } => {
                RouterError::InvalidHours(interval)
            }
            loket_hours::HoursError::InvalidHoliday(date) => RouterError::InvalidHours(date),
        })
    }

    /// Is the group open at `at`?
    pub(crate) fn is_open(&self, at: Timestamp) -> bool {
        self.0.is_open(at.0)
    }

    /// The first instant after `at` where opening or closing happens, looking
    /// at most eight days ahead; `None` if the hours never change (always
    /// closed).
    pub(crate) fn next_change(&self, at: Timestamp) -> Option<Timestamp> {
        self.0.next_change(at.0).map(Timestamp)
    }
}

/// Opening hours with the answer cached until the next change, so the
/// routing path pays one atomic load, not a time-zone conversion.
#[derive(Debug)]
pub(crate) struct HoursGate {
    hours: OpeningHours,
    /// Bit 63: open. Bits 0..63: the answer is valid before this millisecond.
    cached: AtomicU64,
}

const OPEN_BIT: u64 = 1 << 63;

impl HoursGate {
    pub(crate) fn new(hours: OpeningHours) -> HoursGate {
        HoursGate { hours, cached: AtomicU64::new(0) }
    }

    pub(crate) fn is_open(&self, at: Timestamp) -> bool {
        let cached = self.cached.load(Ordering::Relaxed);
        if at.0 < cached & !OPEN_BIT {
            return cached & OPEN_BIT != 0;
        }
        let open = self.hours.is_open(at);
        let until = self.hours.next_change(at).map_or(at.0.saturating_add(3_600_000), |t| t.0);
        self.cached.store((until & !OPEN_BIT) | if open { OPEN_BIT } else { 0 }, Ordering::Relaxed);
        open
    }

    pub(crate) fn next_change(&self, at: Timestamp) -> Option<Timestamp> {
        self.hours.next_change(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> Timestamp {
        Timestamp(chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis() as u64)
    }

    fn shop() -> OpeningHours {
        let weekday = vec!["09:00-17:30".to_string()];
        OpeningHours::parse(&BusinessHours {
            timezone: "Europe/Amsterdam".into(),
            monday: weekday.clone(),
            tuesday: weekday.clone(),
            wednesday: weekday.clone(),
            thursday: weekday.clone(),
            friday: weekday,
            saturday: vec!["10:00-16:00".into()],
            sunday: vec![],
            holidays: vec![],
        })
        .unwrap()
    }

    #[test]
    fn gate_caches_until_the_next_change() {
        let gate = HoursGate::new(shop());
        assert!(!gate.is_open(ms("2026-07-06T06:59:00Z")));
        assert!(gate.is_open(ms("2026-07-06T07:00:00Z")));
        assert!(gate.is_open(ms("2026-07-06T15:29:00Z")));
        assert!(!gate.is_open(ms("2026-07-06T15:30:00Z")));
    }

    #[test]
    fn bad_hours_and_zones_are_named() {
        let mut hours = BusinessHours { timezone: "Mars/Olympus".into(), ..Default::default() };
        assert_eq!(
            OpeningHours::parse(&hours).unwrap_err(),
            RouterError::UnknownTimeZone("Mars/Olympus".into())
        );
        hours.timezone = "UTC".into();
        for bad in ["9-17", "17:00-09:00", "09:00-25:00", "09:60-10:00", "x"] {
            hours.monday = vec![bad.into()];
            assert!(
                matches!(OpeningHours::parse(&hours), Err(RouterError::InvalidHours(_))),
                "{bad}"
            );
        }
        hours.monday = vec![];
        hours.holidays = vec!["2026-13-01".into()];
        assert_eq!(
            OpeningHours::parse(&hours).unwrap_err(),
            RouterError::InvalidHours("2026-13-01".into())
        );
        hours.holidays = vec![];
        hours.monday = vec!["00:00-24:00".into()];
        assert!(OpeningHours::parse(&hours).unwrap().is_open(ms("2026-07-06T23:59:00Z")));
    }
}
