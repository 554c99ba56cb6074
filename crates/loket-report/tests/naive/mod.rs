//! A naive recomputation of reports from the raw fact log, for the
//! differential test. It shares no code with the meter: no timers, no
//! slots kept incrementally, no histogram. It replays each conversation's
//! facts on their own, decides SLA breaches from when the clock stopped,
//! and computes quantiles by sorting. Only the crate's input and output
//! types (Fact, MeterConfig, Query, Report) are used. Business hours are
//! integrated minute by minute with chrono-tz and a parser of its own.

use std::collections::{BTreeMap, HashMap};

use crate::streams::Step;
use chrono::{Datelike, NaiveDate, TimeZone, Timelike};
use chrono_tz::Tz;
use loket_report::{
    Average, BandConversion, Breaches, BusinessHours, Channel, Dimension, DurationSummary, Fact,
    FactKind, MeasuresReport, MeterConfig, Money, Query, Report, ResponseBands, Row, SlaTargets,
};

/// Opening hours as a table of open minutes per weekday (Monday first).
struct OpenMinutes {
    zone: Tz,
    open: Vec<[bool; 1440]>,
    holidays: Vec<NaiveDate>,
}

impl OpenMinutes {
    fn new(hours: &BusinessHours) -> OpenMinutes {
        let days = [
            &hours.monday,
            &hours.tuesday,
            &hours.wednesday,
            &hours.thursday,
            &hours.friday,
            &hours.saturday,
            &hours.sunday,
        ];
        let mut open = vec![[false; 1440]; 7];
        for (day, list) in days.iter().enumerate() {
            for interval in list.iter() {
                let n: Vec<usize> =
                    interval.split(['-', ':']).map(|p| p.trim().parse().unwrap()).collect();
                open[day][n[0] * 60 + n[1]..n[2] * 60 + n[3]].fill(true);
            }
        }
        let holidays = hours.holidays.iter().map(|h| h.parse().unwrap()).collect();
        OpenMinutes { zone: hours.timezone.parse().unwrap(), open, holidays }
    }

    /// Open ms of `[from, to)`: each UTC minute is open or closed as a whole
    /// (whole-minute offsets), as its first instant's local time says.
    fn between(&self, from: u64, to: u64) -> u64 {
        let mut total = 0;
        let mut minute = from / 60_000;
        while minute * 60_000 < to {
            let local = self.zone.timestamp_millis_opt((minute * 60_000) as i64).unwrap();
            let day = local.weekday().num_days_from_monday() as usize;
            let of_day = (local.hour() * 60 + local.minute()) as usize;
            if !self.holidays.contains(&local.date_naive()) && self.open[day][of_day] {
                total += ((minute + 1) * 60_000).min(to) - (minute * 60_000).max(from);
            }
            minute += 1;
        }
        total
    }
}

/// What the naive model says about refusals.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Refused {
    pub out_of_order: u64,
    pub unknown_conversation: u64,
    pub closed: u64,
    pub unknown_intent: u64,
}

/// One conversation from its first message to its last fact.
struct Life {
    facts: Vec<Fact>,
    closed_at: Option<u64>,
}

pub struct Naive {
    lives: Vec<Life>,
    last_time: u64,
    pub refused: Refused,
}

const QUARTER: u64 = 900_000;

impl Naive {
    /// Splits the steps into accepted conversation lives.
    pub fn new(config: &MeterConfig, intents: usize, steps: &[Step]) -> Naive {
        let mut lives: Vec<Life> = Vec::new();
        let mut current: HashMap<u64, usize> = HashMap::new();
        let mut refused = Refused::default();
        let mut now = 0;
        for step in steps {
            let fact = match step {
                Step::Advance(t) => {
                    if *t < now {
                        refused.out_of_order += 1;
                    } else {
                        now = *t;
                    }
                    continue;
                }
                Step::Fact(fact) => fact,
            };
            if fact.at < now {
                refused.out_of_order += 1;
                continue;
            }
            let life = current.get(&fact.conversation).copied();
            if let FactKind::CustomerMessage(m) = &fact.kind {
                if m.intent.0 as usize >= intents {
                    refused.unknown_intent += 1;
                    continue;
                }
                now = fact.at;
                match life {
                    Some(i) if lives[i].closed_at.is_none() => lives[i].facts.push(*fact),
                    _ => {
                        current.insert(fact.conversation, lives.len());
                        lives.push(Life { facts: vec![*fact], closed_at: None });
                    }
                }
                continue;
            }
            let Some(i) = life else {
                refused.unknown_conversation += 1;
                continue;
            };
            if let Some(closed) = lives[i].closed_at {
                if fact.at > closed + config.order_window_ms {
                    refused.unknown_conversation += 1;
                    continue;
                }
                if !matches!(fact.kind, FactKind::Order { .. }) {
                    refused.closed += 1;
                    continue;
                }
            }
            now = fact.at;
            if matches!(fact.kind, FactKind::Closed) {
                lives[i].closed_at = Some(fact.at);
            }
            lives[i].facts.push(*fact);
        }
        Naive { lives, last_time: now, refused }
    }

    /// The report, recomputed from scratch.
    pub fn report(&self, config: &MeterConfig, intent_names: &[String], query: &Query) -> Report {
        let length = query.interval.millis();
        let from = query.from / length * length;
        let to = (query.to - 1) / length * length + length;
        let kept_from =
            (self.last_time / QUARTER + 1).saturating_sub(config.retention_ms / QUARTER);
        let mut dimensions: Vec<Dimension> = Vec::new();
        for d in &query.group_by {
            if !dimensions.contains(d) {
                dimensions.push(*d);
            }
        }
        if dimensions.is_empty() {
            dimensions.push(Dimension::Total);
        }
        // (interval start, dimension position, sortable key) -> outcomes
        let mut cells: BTreeMap<(u64, usize, SortKey), Vec<Outcome>> = BTreeMap::new();
        let mut groups: BTreeMap<(usize, SortKey), Vec<Outcome>> = BTreeMap::new();
        let mut everything = Vec::new();
        for life in &self.lives {
            let first = life.facts[0].at;
            if first / QUARTER < kept_from || first < from || first >= to {
                continue;
            }
            let outcome = replay(config, intent_names, life, self.last_time);
            everything.push(outcome.clone());
            for (position, dimension) in dimensions.iter().enumerate() {
                for key in outcome.keys(*dimension) {
                    let start = first / length * length;
                    cells.entry((start, position, key.clone())).or_default().push(outcome.clone());
                    groups.entry((position, key)).or_default().push(outcome.clone());
                }
            }
        }
        let row = |start, end, dimension: Dimension, key: &SortKey, outcomes: &[Outcome]| Row {
            start,
            end,
            group: dimension,
            key: key.name(intent_names),
            measures: measure(config, outcomes),
        };
        Report {
            from,
            to,
            interval: query.interval,
            intervals: cells
                .iter()
                .map(|((start, p, key), o)| row(*start, start + length, dimensions[*p], key, o))
                .collect(),
            groups: groups
                .iter()
                .map(|((p, key), o)| row(from, to, dimensions[*p], key, o))
                .collect(),
            totals: measure(config, &everything),
        }
    }

    /// Per group over the whole log: conversations open and never answered.
    pub fn open_unanswered(
        &self,
        config: &MeterConfig,
        names: &[String],
        dimension: Dimension,
    ) -> BTreeMap<String, u64> {
        let mut open = BTreeMap::new();
        for life in &self.lives {
            let outcome = replay(config, names, life, self.last_time);
            if outcome.closed.is_none() && !outcome.answered {
                for key in outcome.keys(dimension) {
                    *open.entry(key.name(names)).or_default() += 1;
                }
            }
        }
        open
    }
}

/// A group key that sorts the way the report orders groups.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SortKey {
    Total,
    Channel(u8),
    Number(u64),
    Language([u8; 2]),
    Intent(u32),
    Band(u8),
}

impl SortKey {
    fn name(&self, intents: &[String]) -> String {
        match self {
            SortKey::Total => String::new(),
            SortKey::Channel(c) => {
                ["chat", "whatsapp", "messenger", "sms", "email", "voice"][*c as usize].into()
            }
            SortKey::Number(n) => n.to_string(),
            SortKey::Language(l) => String::from_utf8_lossy(l).into_owned(),
            SortKey::Intent(i) => intents[*i as usize].clone(),
            SortKey::Band(b) => ["0-0.3", "0.3-0.7", "0.7-1"][*b as usize].into(),
        }
    }
}

/// Everything one conversation contributes.
#[derive(Clone, Debug, Default)]
struct Outcome {
    channel: u8,
    queue: u32,
    language: [u8; 2],
    intent: u32,
    band: u8,
    tier: u8,
    person: Option<(u64, u32)>,
    answered: bool,
    closed: Option<u64>,
    abandoned: bool,
    short: bool,
    in_target: bool,
    wait: Option<u64>,
    first_response: Option<u64>,
    next_replies: Vec<u64>,
    resolution: Option<u64>,
    handle: Option<u64>,
    /// The clocks in business hours (with opening hours configured).
    wait_business: Option<u64>,
    first_response_business: Option<u64>,
    next_replies_business: Vec<u64>,
    resolution_business: Option<u64>,
    handle_business: Option<u64>,
    first_breaches: u64,
    next_breaches: u64,
    escalated: bool,
    bot_resolved: bool,
    orders: Vec<Money>,
}

impl Outcome {
    fn keys(&self, dimension: Dimension) -> Vec<SortKey> {
        match dimension {
            Dimension::Total => vec![SortKey::Total],
            Dimension::Channel => vec![SortKey::Channel(self.channel)],
            Dimension::Queue => vec![SortKey::Number(self.queue.into())],
            Dimension::Language => vec![SortKey::Language(self.language)],
            Dimension::Intent => vec![SortKey::Intent(self.intent)],
            Dimension::BuyingIntent => vec![SortKey::Band(self.band)],
            Dimension::Tier => vec![SortKey::Number(self.tier.into())],
            Dimension::Agent => self.person.map(|(a, _)| SortKey::Number(a)).into_iter().collect(),
            Dimension::Team => {
                self.person.map(|(_, t)| SortKey::Number(t.into())).into_iter().collect()
            }
        }
    }
}

fn channel_index(channel: Channel) -> u8 {
    Channel::ALL.iter().position(|c| *c == channel).unwrap() as u8
}

fn targets(config: &MeterConfig, channel: Channel, tier: u8, intent: &str) -> SlaTargets {
    let d = &config.sla.defaults;
    let mut t = match channel {
        Channel::Chat => d.chat,
        Channel::Whatsapp => d.whatsapp,
        Channel::Messenger => d.messenger,
        Channel::Sms => d.sms,
        Channel::Email => d.email,
        Channel::Voice => d.voice,
    };
    let mut best_first: Option<(usize, bool, bool)> = None;
    let mut best_next: Option<(usize, bool, bool)> = None;
    for rule in &config.sla.rules {
        let ok = rule.channel.is_none_or(|c| c == channel)
            && rule.tier.is_none_or(|x| x == tier)
            && rule.intent_prefix.as_ref().is_none_or(|p| intent.starts_with(p.as_str()));
        if !ok {
            continue;
        }
        let rank = (
            rule.intent_prefix.as_ref().map_or(0, |p| p.len()),
            rule.tier.is_some(),
            rule.channel.is_some(),
        );
        if let Some(ms) = rule.first_reply_ms
            && best_first.is_none_or(|b| rank > b)
        {
            t.first_reply_ms = ms;
            best_first = Some(rank);
        }
        if let Some(ms) = rule.next_reply_ms
            && best_next.is_none_or(|b| rank > b)
        {
            t.next_reply_ms = ms;
            best_next = Some(rank);
        }
    }
    t
}

/// Replays one conversation; `end` is the last time the log reached.
fn replay(config: &MeterConfig, names: &[String], life: &Life, end: u64) -> Outcome {
    let FactKind::CustomerMessage(m) = life.facts[0].kind else { unreachable!() };
    let first = life.facts[0].at;
    let t = targets(config, m.channel, m.tier, &names[m.intent.0 as usize]);
    let mut o = Outcome {
        channel: channel_index(m.channel),
        queue: m.queue,
        language: m.language.0,
        intent: m.intent.0,
        band: if m.buying_intent >= 0.7 {
            2
        } else if m.buying_intent >= 0.3 {
            1
        } else {
            0
        },
        tier: m.tier,
        ..Outcome::default()
    };
    let breach_at = |start: u64, target: u64| start.saturating_add(target).saturating_add(1);
    let hours = config.opening_hours.as_ref().map(OpenMinutes::new);
    let business = |from: u64, to: u64| hours.as_ref().map(|h| h.between(from, to));
    // The first-response clock's start while it runs; the next-reply clock's.
    let mut first_clock: Option<u64> = Some(first);
    let mut clock_start: Option<u64> = Some(first);
    let mut next_clock: Option<u64> = None;
    let mut bot = false;
    let mut assigned_at: Option<u64> = None;
    for fact in &life.facts[1..] {
        let now = fact.at;
        if o.closed.is_some() {
            if let FactKind::Order { value } = fact.kind {
                o.orders.push(value);
            }
            continue;
        }
        // Stops a running clock at `now`, counting a breach if the target
        // had passed (the breach fires before the fact applies).
        let stop_first = |first_clock: &mut Option<u64>, o: &mut Outcome| {
            if let Some(s) = first_clock.take()
                && now >= breach_at(s, t.first_reply_ms)
            {
                o.first_breaches += 1;
            }
        };
        let stop_next = |next_clock: &mut Option<u64>, o: &mut Outcome| {
            if let Some(s) = next_clock.take()
                && now >= breach_at(s, t.next_reply_ms)
            {
                o.next_breaches += 1;
            }
        };
        let person_now = match fact.kind {
            FactKind::Assigned { human: true, agent, team }
            | FactKind::Reply { human: true, agent, team } => Some((agent, team)),
            _ => None,
        };
        let hands_off = matches!(fact.kind, FactKind::HandedOff) || (person_now.is_some() && bot);
        if hands_off {
            o.escalated = true;
            bot = false;
            if o.first_response.is_none() {
                stop_first(&mut first_clock, &mut o);
                first_clock = Some(now);
                clock_start = Some(now);
            }
        }
        if let Some(p) = person_now {
            o.person.get_or_insert(p);
        }
        match fact.kind {
            FactKind::CustomerMessage(_) => {
                if o.first_response.is_some() && !bot && next_clock.is_none() {
                    next_clock = Some(now);
                }
            }
            FactKind::Assigned { human: false, .. } => {
                bot = true;
                if o.first_response.is_none() {
                    stop_first(&mut first_clock, &mut o);
                    clock_start = None;
                }
                stop_next(&mut next_clock, &mut o);
            }
            FactKind::Assigned { human: true, .. } => {
                assigned_at.get_or_insert(now);
                if o.wait.is_none()
                    && let Some(s) = clock_start
                {
                    o.wait = Some(now - s);
                    o.wait_business = business(s, now);
                }
            }
            FactKind::HandedOff => {}
            FactKind::Reply { human, .. } => {
                o.answered = true;
                if human {
                    if o.first_response.is_none() {
                        if let Some(s) = clock_start {
                            stop_first(&mut first_clock, &mut o);
                            o.first_response = Some(now - s);
                            o.first_response_business = business(s, now);
                        }
                    } else if let Some(s) = next_clock {
                        stop_next(&mut next_clock, &mut o);
                        o.next_replies.push(now - s);
                        o.next_replies_business.extend(business(s, now));
                    }
                }
            }
            FactKind::Order { value } => o.orders.push(value),
            FactKind::Closed => {
                stop_first(&mut first_clock, &mut o);
                stop_next(&mut next_clock, &mut o);
                o.closed = Some(now);
            }
        }
    }
    // Clocks still running when the log ended.
    if let Some(s) = first_clock.filter(|_| o.closed.is_none())
        && end >= breach_at(s, t.first_reply_ms)
    {
        o.first_breaches += 1;
    }
    if let Some(s) = next_clock.filter(|_| o.closed.is_none())
        && end >= breach_at(s, t.next_reply_ms)
    {
        o.next_breaches += 1;
    }
    if let Some(closed) = o.closed {
        o.resolution = Some(closed - first);
        o.handle = assigned_at.map(|a| closed - a);
        o.resolution_business = business(first, closed);
        o.handle_business = assigned_at.and_then(|a| business(a, closed));
        o.abandoned = !o.answered;
        o.short = o.abandoned && closed - first <= config.short_abandon_ms;
        o.bot_resolved = o.answered && o.person.is_none() && !o.escalated;
    }
    o.in_target = o.first_response.is_some_and(|f| f <= t.first_reply_ms) || o.bot_resolved;
    o
}

fn band_of(ms: u64) -> usize {
    if ms < 60_000 {
        0
    } else if ms < 300_000 {
        1
    } else if ms < 900_000 {
        2
    } else if ms < 3_600_000 {
        3
    } else {
        4
    }
}

/// The top of the histogram bucket holding `v`, found another way: below
/// 64 exact; above, buckets 1/32 of the power of two they lie in.
fn bucket_top(v: u64) -> u64 {
    if v < 64 {
        return v;
    }
    let mut width: u64 = 1;
    while v / width >= 64 {
        width *= 2;
    }
    (v / width) * width + (width - 1)
}

fn summary(values: &[u64]) -> DurationSummary {
    if values.is_empty() {
        return DurationSummary { avg: None, p50: None, p90: None, p99: None };
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let max = *sorted.last().unwrap();
    let n = sorted.len() as u64;
    let q = |p: u64| {
        let rank = (n * p).div_ceil(100).max(1);
        Some(bucket_top(sorted[rank as usize - 1]).min(max))
    };
    let sum: u64 = sorted.iter().sum();
    DurationSummary { avg: Some(sum as f64 / n as f64), p50: q(50), p90: q(90), p99: q(99) }
}

fn rate(a: u64, b: u64) -> Option<f64> {
    if b == 0 { None } else { Some(a as f64 / b as f64) }
}

fn measure(config: &MeterConfig, outcomes: &[Outcome]) -> MeasuresReport {
    let count = |f: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count() as u64;
    let offered = outcomes.len() as u64;
    let answered = count(&|o| o.answered);
    let abandoned = count(&|o| o.abandoned);
    let short = count(&|o| o.short);
    let conversions = count(&|o| !o.orders.is_empty());
    let collect =
        |f: &dyn Fn(&Outcome) -> Vec<u64>| outcomes.iter().flat_map(f).collect::<Vec<u64>>();
    let handles = collect(&|o| o.handle.into_iter().collect());
    let average = |values: &[u64]| Average {
        avg: if values.is_empty() {
            None
        } else {
            Some(values.iter().sum::<u64>() as f64 / values.len() as f64)
        },
    };
    let with_hours = config.opening_hours.is_some();
    let business = |f: &dyn Fn(&Outcome) -> Vec<u64>| with_hours.then(|| summary(&collect(f)));
    let mut revenue: BTreeMap<String, i64> = BTreeMap::new();
    for order in outcomes.iter().flat_map(|o| &o.orders) {
        *revenue.entry(order.currency.as_str().to_owned()).or_default() += order.minor;
    }
    let band = |b: usize| {
        let conversations = count(&|o| o.first_response.is_some_and(|f| band_of(f) == b));
        let conversions =
            count(&|o| o.first_response.is_some_and(|f| band_of(f) == b) && !o.orders.is_empty());
        BandConversion { conversations, conversions, rate: rate(conversions, conversations) }
    };
    MeasuresReport {
        offered,
        answered,
        abandoned,
        short_abandoned: short,
        service_level: rate(count(&|o| o.in_target), answered + abandoned - short),
        wait_ms: summary(&collect(&|o| o.wait.into_iter().collect())),
        first_response_ms: summary(&collect(&|o| o.first_response.into_iter().collect())),
        next_reply_ms: summary(&collect(&|o| o.next_replies.clone())),
        resolution_ms: summary(&collect(&|o| o.resolution.into_iter().collect())),
        handle_ms: average(&handles),
        wait_business_ms: business(&|o| o.wait_business.into_iter().collect()),
        first_response_business_ms: business(&|o| o.first_response_business.into_iter().collect()),
        next_reply_business_ms: business(&|o| o.next_replies_business.clone()),
        resolution_business_ms: business(&|o| o.resolution_business.into_iter().collect()),
        handle_business_ms: with_hours
            .then(|| average(&collect(&|o| o.handle_business.into_iter().collect()))),
        sla_breaches: Breaches {
            first_reply: outcomes.iter().map(|o| o.first_breaches).sum(),
            next_reply: outcomes.iter().map(|o| o.next_breaches).sum(),
        },
        escalations: count(&|o| o.escalated),
        bot_resolved: count(&|o| o.bot_resolved),
        conversions,
        conversion_rate: rate(conversions, offered),
        revenue: revenue.into_iter().map(|(c, v)| (c, v as f64 / 100.0)).collect(),
        occupancy: None,
        conversion_by_first_response: ResponseBands {
            under_1m: band(0),
            from_1m_to_5m: band(1),
            from_5m_to_15m: band(2),
            from_15m_to_60m: band(3),
            over_1h: band(4),
        },
    }
}
