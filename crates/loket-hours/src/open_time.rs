//! [`OpenTime`]: open milliseconds between two instants, from open
//! intervals materialised per UTC week.

use crate::{DAY_MS, LAST_MS, OpeningHours, weekday_of};

/// A block of seven UTC days, counted from the epoch.
const WEEK_MS: u64 = 7 * DAY_MS as u64;

/// Weeks kept materialised; the one farthest from a new one makes room.
const KEPT_WEEKS: usize = 8;

/// Opening hours with their open intervals materialised as UTC millisecond
/// ranges, a week at a time, so that [`OpenTime::open_ms_between`] costs
/// two binary searches and no time-zone conversion once the weeks it
/// touches are built.
///
/// A week is built the first time an instant in it is asked about: about
/// ten time-zone conversions (one offset per day, a binary search for the
/// instant of a daylight-saving change) and one vector per week. At most
/// eight weeks are kept; the one farthest from a new week makes room.
#[derive(Debug, Clone)]
pub struct OpenTime {
    hours: OpeningHours,
    /// Sorted by `index`.
    weeks: Vec<Week>,
}

/// The open ranges of one UTC week.
#[derive(Debug, Clone)]
struct Week {
    /// The week's number: it covers `[index × WEEK_MS, (index + 1) × WEEK_MS)`.
    index: u64,
    /// Open ranges `[start, end)` within the week, sorted, disjoint and not
    /// touching.
    ranges: Vec<(u64, u64)>,
    /// `before[i]`: open ms of `ranges[..i]`; one longer than `ranges`.
    before: Vec<u64>,
}

impl Week {
    /// Open ms of the week before `at` (`at` within or at the end of the week).
    fn open_before(&self, at: u64) -> u64 {
        let after = self.ranges.partition_point(|&(start, _)| start < at);
        match after.checked_sub(1) {
            None => 0,
            Some(last) => {
                let (start, end) = self.ranges[last];
                self.before[last] + (at.min(end) - start)
            }
        }
    }

    fn total(&self) -> u64 {
        self.before.last().copied().unwrap_or(0)
    }
}

impl OpenTime {
    /// Nothing materialised yet.
    pub fn new(hours: OpeningHours) -> OpenTime {
        OpenTime { hours, weeks: Vec::with_capacity(KEPT_WEEKS) }
    }

    /// The hours.
    pub fn hours(&self) -> &OpeningHours {
        &self.hours
    }

    /// The milliseconds of `[from_ms, to_ms)` that are open (0 when `to_ms
    /// <= from_ms`): exactly the number of instants `t` in the span with
    /// [`OpeningHours::is_open`]`(t)`. A span over `n` weeks costs `n`
    /// lookups; the weeks it touches are built on first use.
    pub fn open_ms_between(&mut self, from_ms: u64, to_ms: u64) -> u64 {
        let to_ms = to_ms.min(LAST_MS);
        if to_ms <= from_ms {
            return 0;
        }
        let (first, last) = (from_ms / WEEK_MS, (to_ms - 1) / WEEK_MS);
        if first == last {
            let week = self.week(first);
            return week.open_before(to_ms) - week.open_before(from_ms);
        }
        let head = self.week(first);
        let mut open = head.total() - head.open_before(from_ms);
        for index in first + 1..last {
            open += self.week(index).total();
        }
        open + self.week(last).open_before(to_ms)
    }

    /// The materialised week `index`, built if need be.
    fn week(&mut self, index: u64) -> &Week {
        let at = match self.weeks.binary_search_by_key(&index, |week| week.index) {
            Ok(at) => at,
            Err(mut at) => {
                if self.weeks.len() >= KEPT_WEEKS {
                    // The farthest kept week is the first or the last.
                    let (low, high) = (self.weeks[0].index, self.weeks[self.weeks.len() - 1].index);
                    if index.abs_diff(low) >= index.abs_diff(high) {
                        self.weeks.remove(0);
                        at -= 1;
                    } else {
                        self.weeks.pop();
                        at = at.min(self.weeks.len());
                    }
                }
                let week = self.build(index);
                self.weeks.insert(at, week);
                at
            }
        };
        &self.weeks[at]
    }

    /// The open ranges of week `index`: for each stretch of the week with
    /// one UTC offset, every interval of every local date it touches,
    /// shifted to UTC and cut to the stretch.
    fn build(&self, index: u64) -> Week {
        let start = index.saturating_mul(WEEK_MS).min(LAST_MS);
        let end = start.saturating_add(WEEK_MS).min(LAST_MS);
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        let mut stretch_start = start;
        while stretch_start < end {
            let Some(offset) = self.hours.offset_ms(stretch_start) else { break };
            let stretch_end = self.same_offset_until(stretch_start, end, offset);
            self.add_ranges(stretch_start, stretch_end, offset, &mut ranges);
            stretch_start = stretch_end;
        }
        let mut before = Vec::with_capacity(ranges.len() + 1);
        let mut open = 0;
        before.push(0);
        for &(from, to) in &ranges {
            open += to - from;
            before.push(open);
        }
        Week { index, ranges, before }
    }

    /// The end of the stretch from `from` (before `end`) with the UTC
    /// offset `offset`: the offset is looked up once a day, and a change
    /// within a day is found by binary search (the tz database changes an
    /// offset at most once a day).
    fn same_offset_until(&self, from: u64, end: u64, offset: i64) -> u64 {
        let mut good = from;
        loop {
            let probe = good.saturating_add(DAY_MS as u64).min(end);
            if probe == end {
                // The last day: the stretch ends at `end` unless its last
                // millisecond has another offset.
                if self.hours.offset_ms(end - 1) == Some(offset) {
                    return end;
                }
                return self.change_between(good, end - 1, offset);
            }
            if self.hours.offset_ms(probe) != Some(offset) {
                return self.change_between(good, probe, offset);
            }
            good = probe;
        }
    }

    /// The first instant in `(good, bad]` whose offset is not `offset`,
    /// given `good` has it and `bad` does not.
    fn change_between(&self, mut good: u64, mut bad: u64, offset: i64) -> u64 {
        while bad - good > 1 {
            let middle = good + (bad - good) / 2;
            if self.hours.offset_ms(middle) == Some(offset) {
                good = middle;
            } else {
                bad = middle;
            }
        }
        bad
    }

    /// Adds the open ranges of `[from, to)`, where the local time is the
    /// UTC time plus `offset`.
    fn add_ranges(&self, from: u64, to: u64, offset: i64, ranges: &mut Vec<(u64, u64)>) {
        let (local_from, local_to) = (from as i64 + offset, to as i64 + offset);
        for day in local_from.div_euclid(DAY_MS)..=(local_to - 1).div_euclid(DAY_MS) {
            if self.hours.is_holiday(day) {
                continue;
            }
            for &(open, close) in self.hours.intervals(weekday_of(day)) {
                let open = day * DAY_MS + i64::from(open) * 60_000 - offset;
                let close = day * DAY_MS + i64::from(close) * 60_000 - offset;
                let (open, close) = (open.max(from as i64), close.min(to as i64));
                if open >= close {
                    continue;
                }
                let (open, close) = (open as u64, close as u64);
                match ranges.last_mut() {
                    Some(last) if last.1 == open => last.1 = close,
                    _ => ranges.push((open, close)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BusinessHours;
    use crate::tests::ms;

    fn hours(zone: &str, every_day: &[&str]) -> OpenTime {
        let day: Vec<String> = every_day.iter().map(|s| s.to_string()).collect();
        OpenTime::new(
            OpeningHours::parse(&BusinessHours {
                timezone: zone.into(),
                monday: day.clone(),
                tuesday: day.clone(),
                wednesday: day.clone(),
                thursday: day.clone(),
                friday: day.clone(),
                saturday: day.clone(),
                sunday: day,
                holidays: vec![],
            })
            .unwrap(),
        )
    }

    #[test]
    fn a_night_message_answered_after_opening_counts_the_open_minutes() {
        let mut open = hours("Europe/Amsterdam", &["09:00-17:00"]);
        // 22:00 local to 09:05 local the next day: five open minutes.
        assert_eq!(
            open.open_ms_between(ms("2026-12-07T21:00:00Z"), ms("2026-12-08T08:05:00Z")),
            300_000
        );
    }

    #[test]
    fn daylight_saving_nights_are_shorter_and_longer() {
        let mut open = hours("Europe/Amsterdam", &["00:00-06:00"]);
        // 2026-03-29 (a local day of 23 hours): 02:00 becomes 03:00, the
        // night is open 5 hours.
        let day = ms("2026-03-28T23:00:00Z");
        assert_eq!(open.open_ms_between(day, day + 23 * 3_600_000), 5 * 3_600_000);
        // 2026-10-25 (25 hours): 03:00 becomes 02:00, open 7 hours.
        let day = ms("2026-10-24T22:00:00Z");
        assert_eq!(open.open_ms_between(day, day + DAY_MS as u64), 7 * 3_600_000);
        // An interval inside the repeated hour is open during both passes.
        let mut repeated = hours("Europe/Amsterdam", &["02:15-02:45"]);
        assert_eq!(repeated.open_ms_between(day, day + DAY_MS as u64), 3_600_000);
        // An interval inside the skipped hour never happens.
        let mut skipped = hours("Europe/Amsterdam", &["02:15-02:45"]);
        let day = ms("2026-03-28T23:00:00Z");
        assert_eq!(skipped.open_ms_between(day, day + DAY_MS as u64), 0);
    }

    #[test]
    fn always_open_and_always_closed() {
        let (from, to) = (ms("2026-01-01T00:00:00Z"), ms("2026-03-01T00:00:00Z"));
        assert_eq!(hours("Asia/Kolkata", &["00:00-24:00"]).open_ms_between(from, to), to - from);
        assert_eq!(hours("Asia/Kolkata", &[]).open_ms_between(from, to), 0);
        assert_eq!(hours("UTC", &["00:00-24:00"]).open_ms_between(to, from), 0);
        assert_eq!(hours("UTC", &["00:00-24:00"]).open_ms_between(LAST_MS - 5, u64::MAX), 5);
    }

    #[test]
    fn kept_weeks_are_bounded() {
        let mut open = hours("America/New_York", &["22:00-24:00", "00:00-06:00"]);
        let start = ms("2026-01-01T00:00:00Z");
        for week in (0..9).rev().chain(0..9) {
            let at = start + week * WEEK_MS;
            assert_eq!(open.open_ms_between(at, at + WEEK_MS), 7 * 8 * 3_600_000, "{week}");
            assert!(open.weeks.len() <= KEPT_WEEKS);
            assert!(open.weeks.windows(2).all(|w| w[0].index < w[1].index));
        }
    }
}
