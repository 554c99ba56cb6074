//! Opening hours of skill groups, time-zone aware.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{Datelike, NaiveDate, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::RouterError;
use crate::ids::Timestamp;

/// Weekly opening hours in a time zone, as written in configuration.
///
/// Each day lists intervals `"HH:MM-HH:MM"` in local time; a day with no
/// intervals is closed. `"00:00-24:00"` is the whole day.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BusinessHours {
    /// An IANA time zone such as `Europe/Amsterdam`.
    pub timezone: String,
    /// Monday's intervals.
    pub monday: Vec<String>,
    /// Tuesday's intervals.
    pub tuesday: Vec<String>,
    /// Wednesday's intervals.
    pub wednesday: Vec<String>,
    /// Thursday's intervals.
    pub thursday: Vec<String>,
    /// Friday's intervals.
    pub friday: Vec<String>,
    /// Saturday's intervals.
    pub saturday: Vec<String>,
    /// Sunday's intervals.
    pub sunday: Vec<String>,
}

/// Parsed opening hours: minutes of the day per weekday (Monday first).
#[derive(Debug, Clone)]
pub(crate) struct OpeningHours {
    zone: Tz,
    days: [Vec<(u16, u16)>; 7],
}

fn parse_minute(text: &str, whole: &str) -> Result<u16, RouterError> {
    let bad = || RouterError::InvalidHours(whole.chars().take(64).collect());
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl OpeningHours {
    pub(crate) fn parse(hours: &BusinessHours) -> Result<OpeningHours, RouterError> {
        let zone: Tz = hours
            .timezone
            .parse()
            .map_err(|_| RouterError::UnknownTimeZone(hours.timezone.chars().take(64).collect()))?;
        let lists = [
            &hours.monday,
            &hours.tuesday,
            &hours.wednesday,
            &hours.thursday,
            &hours.friday,
            &hours.saturday,
            &hours.sunday,
        ];
        let mut days: [Vec<(u16, u16)>; 7] = Default::default();
        for (day, list) in days.iter_mut().zip(lists) {
            for interval in list {
                let (open, close) = interval.split_once('-').ok_or_else(|| {
                    RouterError::InvalidHours(interval.chars().take(64).collect())
                })?;
                let (open, close) = (parse_minute(open, interval)?, parse_minute(close, interval)?);
                if open >= close {
                    return Err(RouterError::InvalidHours(interval.chars().take(64).collect()));
                }
                day.push((open, close));
            }
            day.sort_unstable();
        }
        Ok(OpeningHours { zone, days })
    }

    /// Is the group open at `at`?
    pub(crate) fn is_open(&self, at: Timestamp) -> bool {
        let Some(local) = self.zone.timestamp_millis_opt(at.0 as i64).single() else {
            return false;
        };
        let day = local.weekday().num_days_from_monday() as usize;
        let minute = (local.hour() * 60 + local.minute()) as u16;
        self.days[day].iter().any(|&(open, close)| open <= minute && minute < close)
    }

    /// The first instant after `at` where opening or closing happens, looking
    /// at most eight days ahead; `None` if the hours never change (always
    /// closed).
    pub(crate) fn next_change(&self, at: Timestamp) -> Option<Timestamp> {
        let local = self.zone.timestamp_millis_opt(at.0 as i64).single()?;
        let today = local.date_naive();
        let mut best: Option<Timestamp> = None;
        for offset in 0..8 {
            let Some(date) = today.checked_add_days(chrono::Days::new(offset)) else { break };
            let day = date.weekday().num_days_from_monday() as usize;
            for &(open, close) in &self.days[day] {
                for minute in [open, close] {
                    if let Some(instant) = self.instant(date, minute)
                        && instant > at
                        && best.is_none_or(|b| instant < b)
                    {
                        best = Some(instant);
                    }
                }
            }
            if best.is_some() {
                break;
            }
        }
        best
    }

    fn instant(&self, date: NaiveDate, minute: u16) -> Option<Timestamp> {
        let naive = if minute >= 24 * 60 {
            date.checked_add_days(chrono::Days::new(1))?.and_time(NaiveTime::MIN)
        } else {
            date.and_hms_opt(u32::from(minute / 60), u32::from(minute % 60), 0)?
        };
        // In a DST gap the local time does not exist: take the first instant after it.
        let local = self.zone.from_local_datetime(&naive).earliest().or_else(|| {
            self.zone.from_local_datetime(&(naive + chrono::Duration::hours(1))).earliest()
        })?;
        u64::try_from(local.timestamp_millis()).ok().map(Timestamp)
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
        })
        .unwrap()
    }

    #[test]
    fn open_in_local_time_across_daylight_saving() {
        let hours = shop();
        // Winter: Amsterdam is UTC+1. Monday 2026-01-05.
        assert!(!hours.is_open(ms("2026-01-05T07:59:00Z")));
        assert!(hours.is_open(ms("2026-01-05T08:00:00Z")));
        assert!(!hours.is_open(ms("2026-01-05T16:30:00Z")));
        // Summer: UTC+2. Monday 2026-07-06.
        assert!(hours.is_open(ms("2026-07-06T07:00:00Z")));
        assert!(!hours.is_open(ms("2026-07-06T15:30:00Z")));
        // Sunday closed.
        assert!(!hours.is_open(ms("2026-07-05T10:00:00Z")));
    }

    #[test]
    fn next_change_finds_monday_morning_from_saturday_night() {
        let hours = shop();
        let saturday_night = ms("2026-07-04T20:00:00Z");
        assert_eq!(hours.next_change(saturday_night), Some(ms("2026-07-06T07:00:00Z")));
        assert_eq!(hours.next_change(ms("2026-07-06T07:00:00Z")), Some(ms("2026-07-06T15:30:00Z")));
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
        hours.monday = vec!["00:00-24:00".into()];
        assert!(OpeningHours::parse(&hours).unwrap().is_open(ms("2026-07-06T23:59:00Z")));
    }
}
