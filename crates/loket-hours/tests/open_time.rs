//! `OpenTime::open_ms_between` equals a naive integration, minute by
//! minute, of "is the local wall-clock time within an interval of its
//! local weekday, on a date that is not a holiday", computed here with
//! chrono-tz and a parser of its own (no code shared with the crate), on
//! random spans across daylight-saving weeks in Europe/Amsterdam and
//! America/New_York, overnight intervals, holidays, and always-open and
//! always-closed hours. `is_open` agrees with it at every instant tried.
//!
//! `LOKET_HOURS_CASES=5000 cargo test -p loket-hours --release --test
//! open_time` runs more cases.

use chrono::{Datelike, NaiveDate, TimeZone, Timelike};
use chrono_tz::Tz;
use loket_hours::{BusinessHours, OpenTime, OpeningHours};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("LOKET_HOURS_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(96)
}

const MINUTE: u64 = 60_000;

/// The naive model: per weekday the open minutes of the day, as a table.
struct Naive {
    zone: Tz,
    open: [[bool; 1440]; 7],
    holidays: Vec<NaiveDate>,
}

impl Naive {
    fn new(config: &BusinessHours) -> Naive {
        let days = [
            &config.monday,
            &config.tuesday,
            &config.wednesday,
            &config.thursday,
            &config.friday,
            &config.saturday,
            &config.sunday,
        ];
        let mut open = [[false; 1440]; 7];
        for (day, list) in days.iter().enumerate() {
            for interval in list.iter() {
                let minutes: Vec<usize> = interval
                    .split(['-', ':'])
                    .map(|part| part.trim().parse::<usize>().unwrap())
                    .collect();
                let (from, to) = (minutes[0] * 60 + minutes[1], minutes[2] * 60 + minutes[3]);
                for minute in &mut open[day][from..to] {
                    *minute = true;
                }
            }
        }
        let holidays = config.holidays.iter().map(|h| h.parse().unwrap()).collect();
        Naive { zone: config.timezone.parse().unwrap(), open, holidays }
    }

    /// Open at the start of the UTC minute `minute` (offsets are whole
    /// minutes in the years tried, so it holds for the whole minute).
    fn open_minute(&self, minute: u64) -> bool {
        let local = self.zone.timestamp_millis_opt((minute * MINUTE) as i64).unwrap();
        let day = local.weekday().num_days_from_monday() as usize;
        !self.holidays.contains(&local.date_naive())
            && self.open[day][(local.hour() * 60 + local.minute()) as usize]
    }

    fn open_ms_between(&self, from: u64, to: u64) -> u64 {
        let mut open = 0;
        let mut minute = from / MINUTE;
        while minute * MINUTE < to {
            if self.open_minute(minute) {
                let (start, end) = ((minute * MINUTE).max(from), ((minute + 1) * MINUTE).min(to));
                open += end - start;
            }
            minute += 1;
        }
        open
    }
}

fn ms(text: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis() as u64
}

/// A random day: none to three intervals on 5-minute marks (so they hit
/// 02:00-03:00 and midnight now and then), or the whole day.
fn day() -> impl Strategy<Value = Vec<String>> {
    let interval = (0..288u32, 1..96u32).prop_map(|(start, length)| {
        let end = (start + length).min(288);
        let start = start.min(287);
        format!("{:02}:{:02}-{:02}:{:02}", start / 12, start % 12 * 5, end / 12, end % 12 * 5)
    });
    prop_oneof![
        4 => prop::collection::vec(interval, 0..4),
        1 => Just(vec!["00:00-24:00".to_string()]),
        1 => Just(vec!["22:00-24:00".to_string(), "00:00-06:00".to_string()]),
        1 => Just(vec![]),
    ]
}

/// The zone, the start of the period spans are drawn from, and holidays
/// in it: the DST weeks of both zones and a quiet winter week.
fn zone_and_period() -> impl Strategy<Value = (&'static str, u64, Vec<String>)> {
    let periods = vec![
        ("Europe/Amsterdam", "2026-03-26T00:00:00Z", "2026-03-29"),
        ("Europe/Amsterdam", "2026-10-22T00:00:00Z", "2026-10-26"),
        ("America/New_York", "2026-03-05T00:00:00Z", "2026-03-08"),
        ("America/New_York", "2026-10-29T00:00:00Z", "2026-11-02"),
        ("Asia/Kolkata", "2026-12-20T00:00:00Z", "2026-12-25"),
        ("UTC", "2026-12-20T00:00:00Z", "2026-12-25"),
    ];
    (prop::sample::select(periods), any::<bool>()).prop_map(|((zone, start, holiday), with)| {
        let holidays = if with { vec![holiday.to_string()] } else { vec![] };
        (zone, ms(start), holidays)
    })
}

fn config() -> impl Strategy<Value = (BusinessHours, u64)> {
    (zone_and_period(), prop::collection::vec(day(), 7), any::<bool>()).prop_map(
        |((zone, start, holidays), days, same)| {
            // Half the time every day the same (a shop's usual week).
            let day = |i: usize| if same { days[0].clone() } else { days[i].clone() };
            let config = BusinessHours {
                timezone: zone.into(),
                monday: day(0),
                tuesday: day(1),
                wednesday: day(2),
                thursday: day(3),
                friday: day(4),
                saturday: day(5),
                sunday: day(6),
                holidays,
            };
            (config, start)
        },
    )
}

/// A span within ten days of the period's start: ms offsets, some on
/// whole minutes.
fn span() -> impl Strategy<Value = (u64, u64)> {
    let offset = prop_oneof![0..10 * 86_400_000u64, (0..10 * 1440u64).prop_map(|m| m * MINUTE),];
    (offset.clone(), offset)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn open_time_equals_minute_by_minute_integration(
        (config, start) in config(),
        spans in prop::collection::vec(span(), 1..8),
    ) {
        let naive = Naive::new(&config);
        let mut open = OpenTime::new(OpeningHours::parse(&config).unwrap());
        for (a, b) in spans {
            let (from, to) = (start + a.min(b), start + a.max(b));
            prop_assert_eq!(
                open.open_ms_between(from, to),
                naive.open_ms_between(from, to),
                "{:?} from {} to {}", config, from, to
            );
            // Additive: splitting a span changes nothing.
            let middle = from + (to - from) / 3;
            prop_assert_eq!(
                open.open_ms_between(from, middle) + open.open_ms_between(middle, to),
                open.open_ms_between(from, to)
            );
            // is_open agrees with the materialised ranges at both ends.
            for at in [from, to, middle] {
                prop_assert_eq!(
                    open.hours().is_open(at),
                    open.open_ms_between(at, at + 1) == 1,
                    "{:?} at {}", config, at
                );
                prop_assert_eq!(open.hours().is_open(at), naive.open_minute(at / MINUTE));
            }
        }
    }
}

#[test]
fn a_late_evening_message_answered_after_the_weekend() {
    // A shop open 09:00-17:30 on weekdays in Amsterdam. Friday 2026-12-04
    // 17:20 local (16:20Z): ten open minutes on Friday, nothing on the
    // weekend, then Monday 09:00-09:05 local: fifteen open minutes.
    let weekday = vec!["09:00-17:30".to_string()];
    let config = BusinessHours {
        timezone: "Europe/Amsterdam".into(),
        monday: weekday.clone(),
        tuesday: weekday.clone(),
        wednesday: weekday.clone(),
        thursday: weekday.clone(),
        friday: weekday,
        ..BusinessHours::default()
    };
    let mut open = OpenTime::new(OpeningHours::parse(&config).unwrap());
    let (from, to) = (ms("2026-12-04T16:20:00Z"), ms("2026-12-07T08:05:00Z"));
    assert_eq!(open.open_ms_between(from, to), 15 * MINUTE);
    assert_eq!(Naive::new(&config).open_ms_between(from, to), 15 * MINUTE);
}
