//! Weekly opening hours in a time zone.
//!
//! One job: given opening hours as configuration writes them
//! ([`BusinessHours`]: an IANA time zone, a list of `"HH:MM-HH:MM"` local
//! intervals per weekday, and holidays closed all day), answer
//!
//! - is it open at an instant ([`OpeningHours::is_open`]),
//! - when does that next change ([`OpeningHours::next_change`]),
//! - how many milliseconds between two instants are open
//!   ([`OpenTime::open_ms_between`]), cheaply enough to ask every time a
//!   clock stops.
//!
//! Instants are epoch milliseconds (UTC). **An instant is open** when its
//! local wall-clock time, on its local date, lies in one of that weekday's
//! intervals and the date is not a holiday. Everything follows from that
//! rule, daylight saving time included: on the night clocks go forward an
//! interval over the skipped hour is that much shorter, on the night they go
//! back an interval over the repeated hour is open during both passes. An
//! overnight opening is written as two intervals, `"22:00-24:00"` on one day
//! and `"00:00-06:00"` on the next. Instants from the year 10000 on are
//! closed.
//!
//! ```
//! use loket_hours::{BusinessHours, OpenTime, OpeningHours};
//!
//! let weekday = vec!["09:00-17:00".to_string()];
//! let config = BusinessHours {
//!     timezone: "Europe/Amsterdam".into(),
//!     monday: weekday.clone(),
//!     tuesday: weekday.clone(),
//!     wednesday: weekday.clone(),
//!     thursday: weekday.clone(),
//!     friday: weekday,
//!     holidays: vec!["2026-12-25".into()],
//!     ..BusinessHours::default()
//! };
//! let hours = OpeningHours::parse(&config)?;
//! // Monday 2026-12-07 08:55 local (07:55 UTC) is closed, 09:05 open.
//! let monday_0855 = 1_796_630_100_000;
//! assert!(!hours.is_open(monday_0855));
//! assert!(hours.is_open(monday_0855 + 600_000));
//! // A message at 08:55 answered at 09:05: five open minutes.
//! let mut open = OpenTime::new(hours);
//! assert_eq!(open.open_ms_between(monday_0855, monday_0855 + 600_000), 300_000);
//! # Ok::<(), loket_hours::HoursError>(())
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod open_time;

use chrono::{Datelike, NaiveDate, NaiveTime, Offset, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use open_time::OpenTime;

/// Milliseconds in a day.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// The first instant that is always closed: 10000-01-01T00:00:00Z.
pub const LAST_MS: u64 = 253_402_300_800_000;

/// Weekly opening hours in a time zone, as written in configuration.
///
/// Each day lists intervals `"HH:MM-HH:MM"` in local time; a day with no
/// intervals is closed. `"00:00-24:00"` is the whole day; intervals of a day
/// may overlap (they are merged). `holidays` are local dates
/// `"YYYY-MM-DD"` closed all day. Unknown keys are refused when the hours
/// are read on their own (not when flattened into another table).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    /// Local dates (`"YYYY-MM-DD"`) closed all day.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub holidays: Vec<String>,
}

/// Opening hours that cannot be used. Values are quoted as written, cut
/// to 64 characters.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum HoursError {
    /// The time zone is not in the tz database.
    #[error("unknown time zone {0:?}")]
    UnknownTimeZone(String),
    /// An interval that does not parse, or closes before it opens.
    #[error(
        "{day}: invalid opening hours {interval:?}: expected HH:MM-HH:MM, opening before closing"
    )]
    InvalidInterval {
        /// The weekday it was listed under (`monday` .. `sunday`).
        day: &'static str,
        /// The interval as written.
        interval: String,
    },
    /// A holiday that is not a date.
    #[error("invalid holiday {0:?}: expected YYYY-MM-DD")]
    InvalidHoliday(String),
}

/// The weekday names, Monday first.
pub const WEEKDAYS: [&str; 7] =
    ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

/// Parsed opening hours: merged intervals in minutes of the local day per
/// weekday (Monday first) and the holidays as days since the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpeningHours {
    zone: Tz,
    /// Sorted, disjoint, non-touching `[open, close)` minutes, per weekday.
    days: [Vec<(u16, u16)>; 7],
    /// Local dates closed all day, as days since 1970-01-01, sorted.
    holidays: Vec<i64>,
}

fn cut(text: &str) -> String {
    text.chars().take(64).collect()
}

fn parse_minute(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    if h.is_empty() || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

fn parse_interval(text: &str) -> Option<(u16, u16)> {
    let (open, close) = text.split_once('-')?;
    let (open, close) = (parse_minute(open)?, parse_minute(close)?);
    (open < close).then_some((open, close))
}

/// Days since 1970-01-01 of a date.
fn epoch_day(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce()) - 719_163
}

/// Monday = 0 of a day since 1970-01-01 (a Thursday).
pub(crate) fn weekday_of(epoch_day: i64) -> usize {
    (epoch_day + 3).rem_euclid(7) as usize
}

impl OpeningHours {
    /// Parses `hours`: the time zone, every interval (trimmed `H:MM` or
    /// `HH:MM`, minutes two digits, up to `24:00`, opening before closing)
    /// and every holiday.
    pub fn parse(hours: &BusinessHours) -> Result<OpeningHours, HoursError> {
        let zone: Tz = hours
            .timezone
            .parse()
            .map_err(|_| HoursError::UnknownTimeZone(cut(&hours.timezone)))?;
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
        for ((day, list), name) in days.iter_mut().zip(lists).zip(WEEKDAYS) {
            for interval in list {
                let parsed = parse_interval(interval).ok_or_else(|| {
                    HoursError::InvalidInterval { day: name, interval: cut(interval) }
                })?;
                day.push(parsed);
            }
            day.sort_unstable();
            let mut merged: Vec<(u16, u16)> = Vec::with_capacity(day.len());
            for &(open, close) in day.iter() {
                match merged.last_mut() {
                    Some(last) if open <= last.1 => last.1 = last.1.max(close),
                    _ => merged.push((open, close)),
                }
            }
            *day = merged;
        }
        let mut holidays = Vec::with_capacity(hours.holidays.len());
        for holiday in &hours.holidays {
            let date = NaiveDate::parse_from_str(holiday.trim(), "%Y-%m-%d")
                .map_err(|_| HoursError::InvalidHoliday(cut(holiday)))?;
            holidays.push(epoch_day(date));
        }
        holidays.sort_unstable();
        holidays.dedup();
        Ok(OpeningHours { zone, days, holidays })
    }

    /// The time zone.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// Whether the local date `epoch_day` (days since 1970-01-01) is a
    /// holiday.
    pub(crate) fn is_holiday(&self, epoch_day: i64) -> bool {
        self.holidays.binary_search(&epoch_day).is_ok()
    }

    /// The merged `[open, close)` minutes of a weekday (Monday = 0).
    pub(crate) fn intervals(&self, weekday: usize) -> &[(u16, u16)] {
        &self.days[weekday]
    }

    /// The zone's offset from UTC at `at_ms`, in ms (`None` past the
    /// dates chrono represents).
    pub(crate) fn offset_ms(&self, at_ms: u64) -> Option<i64> {
        let at = chrono::DateTime::from_timestamp_millis(i64::try_from(at_ms).ok()?)?;
        let offset = self.zone.offset_from_utc_datetime(&at.naive_utc()).fix();
        Some(i64::from(offset.local_minus_utc()) * 1000)
    }

    /// Is it open at `at_ms` (epoch ms)? Closed from [`LAST_MS`] on.
    pub fn is_open(&self, at_ms: u64) -> bool {
        if at_ms >= LAST_MS {
            return false;
        }
        let Some(offset) = self.offset_ms(at_ms) else { return false };
        let local = at_ms as i64 + offset;
        let (day, in_day) = (local.div_euclid(DAY_MS), local.rem_euclid(DAY_MS));
        !self.is_holiday(day)
            && self.days[weekday_of(day)].iter().any(|&(open, close)| {
                i64::from(open) * 60_000 <= in_day && in_day < i64::from(close) * 60_000
            })
    }

    /// The first instant after `at_ms` where an interval opens or closes,
    /// looking at most eight local days ahead (holidays skipped); `None` if
    /// nothing opens or closes in that time (always closed, or a long run
    /// of holidays: ask again later).
    pub fn next_change(&self, at_ms: u64) -> Option<u64> {
        let at = chrono::DateTime::from_timestamp_millis(i64::try_from(at_ms).ok()?)?;
        let today = at.with_timezone(&self.zone).date_naive();
        let mut best: Option<u64> = None;
        for offset in 0..8 {
            let Some(date) = today.checked_add_days(chrono::Days::new(offset)) else { break };
            if self.is_holiday(epoch_day(date)) {
                continue;
            }
            let day = date.weekday().num_days_from_monday() as usize;
            for &(open, close) in &self.days[day] {
                for minute in [open, close] {
                    if let Some(instant) = self.instant(date, minute)
                        && instant > at_ms
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

    /// The instant of `minute` on the local `date` (`24:00` is the next
    /// midnight); in a DST gap, an hour later.
    fn instant(&self, date: NaiveDate, minute: u16) -> Option<u64> {
        let naive = if minute >= 24 * 60 {
            date.checked_add_days(chrono::Days::new(1))?.and_time(NaiveTime::MIN)
        } else {
            date.and_hms_opt(u32::from(minute / 60), u32::from(minute % 60), 0)?
        };
        // In a DST gap the local time does not exist: take the first instant after it.
        let local = self.zone.from_local_datetime(&naive).earliest().or_else(|| {
            self.zone.from_local_datetime(&(naive + chrono::Duration::hours(1))).earliest()
        })?;
        u64::try_from(local.timestamp_millis()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn ms(text: &str) -> u64 {
        chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis() as u64
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
            holidays: vec!["2026-12-25".into()],
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
    fn holidays_are_closed_all_day_and_skipped_by_next_change() {
        let hours = shop();
        // Friday 2026-12-25 is a holiday; Thursday and Monday are not.
        assert!(hours.is_open(ms("2026-12-24T10:00:00Z")));
        assert!(!hours.is_open(ms("2026-12-25T10:00:00Z")));
        // From Thursday's close the next change is Saturday's opening.
        assert_eq!(hours.next_change(ms("2026-12-24T16:30:00Z")), Some(ms("2026-12-26T09:00:00Z")));
    }

    #[test]
    fn next_change_finds_monday_morning_from_saturday_night() {
        let hours = shop();
        let saturday_night = ms("2026-07-04T20:00:00Z");
        assert_eq!(hours.next_change(saturday_night), Some(ms("2026-07-06T07:00:00Z")));
        assert_eq!(hours.next_change(ms("2026-07-06T07:00:00Z")), Some(ms("2026-07-06T15:30:00Z")));
    }

    #[test]
    fn overlapping_intervals_merge() {
        let hours = OpeningHours::parse(&BusinessHours {
            timezone: "UTC".into(),
            monday: vec!["11:00-13:00".into(), "09:00-12:00".into(), "13:00-14:00".into()],
            ..BusinessHours::default()
        })
        .unwrap();
        assert_eq!(hours.intervals(0), &[(540, 840)]);
    }

    #[test]
    fn bad_hours_zones_and_holidays_are_named() {
        let mut hours = BusinessHours { timezone: "Mars/Olympus".into(), ..Default::default() };
        assert_eq!(
            OpeningHours::parse(&hours).unwrap_err(),
            HoursError::UnknownTimeZone("Mars/Olympus".into())
        );
        hours.timezone = "UTC".into();
        for bad in [
            "9-17",
            "17:00-09:00",
            "09:00-25:00",
            "09:60-10:00",
            "x",
            "09:00-09:00",
            "9:5-10:00",
            "+9:00-10:00",
        ] {
            hours.tuesday = vec![bad.into()];
            assert_eq!(
                OpeningHours::parse(&hours).unwrap_err(),
                HoursError::InvalidInterval { day: "tuesday", interval: bad.into() },
                "{bad}"
            );
        }
        hours.tuesday = vec![" 9:00 - 17:00 ".into()];
        assert!(OpeningHours::parse(&hours).is_ok());
        hours.holidays = vec!["2026-02-30".into()];
        assert_eq!(
            OpeningHours::parse(&hours).unwrap_err().to_string(),
            "invalid holiday \"2026-02-30\": expected YYYY-MM-DD"
        );
        hours.holidays = vec![];
        hours.monday = vec!["00:00-24:00".into()];
        assert!(OpeningHours::parse(&hours).unwrap().is_open(ms("2026-07-06T23:59:00Z")));
        assert!(!OpeningHours::parse(&hours).unwrap().is_open(LAST_MS));
    }

    #[test]
    fn unknown_keys_are_refused_on_their_own() {
        let error = serde_json::from_str::<BusinessHours>(r#"{"timezone":"UTC","mondya":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("mondya"), "{error}");
    }
}
