//! Queries: the stored slots merged into intervals and groups, rendered as
//! the measures' JSON shape or CSV.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::error::QueryError;
use crate::group::{Dimension, GroupKey};
use crate::histogram::Histogram;
use crate::intents::Intents;
use crate::interval::{Interval, SLOT_MS};
use crate::measures::{BusinessClocks, Measures};
use crate::meter::Meter;

/// What to report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    /// Start, epoch milliseconds; widened down to its interval's start.
    pub from: u64,
    /// End (exclusive), epoch milliseconds; widened up to an interval end.
    pub to: u64,
    /// The length of each row's interval.
    pub interval: Interval,
    /// The dimensions to group by, each on its own (no cross products);
    /// empty means [`Dimension::Total`].
    pub group_by: Vec<Dimension>,
}

/// A report: `{"intervals": [...], "groups": [...], "totals": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The aligned start of the range.
    pub from: u64,
    /// The aligned end of the range (exclusive).
    pub to: u64,
    /// The interval of the rows.
    pub interval: Interval,
    /// One row per interval with data and group, by interval start, then
    /// the query's dimension order, then group.
    pub intervals: Vec<Row>,
    /// One row per group over the whole range (`start` = `from`, `end` = `to`).
    pub groups: Vec<Row>,
    /// Every conversation of the range together.
    pub totals: MeasuresReport,
}

/// The measures of one group in one span.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Start, epoch milliseconds.
    pub start: u64,
    /// End (exclusive), epoch milliseconds.
    pub end: u64,
    /// The dimension.
    pub group: Dimension,
    /// The group's value: a channel or language code, an intent name, a
    /// band, or the decimal integer of a queue, team, agent or tier; empty
    /// for the total.
    pub key: String,
    /// The measures.
    #[serde(flatten)]
    pub measures: MeasuresReport,
}

/// The measures, with the JSON names of the issue. Averages and rates are
/// computed from stored integers when the report is made; `null` when
/// there is nothing to compute them from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeasuresReport {
    /// Conversations that arrived.
    pub offered: u64,
    /// Of those, the ones that got a reply.
    pub answered: u64,
    /// Closed before any reply.
    pub abandoned: u64,
    /// Abandoned within `short_abandon_ms`.
    pub short_abandoned: u64,
    /// answered within target / (answered + abandoned − short_abandoned).
    pub service_level: Option<f64>,
    /// Start to a person's assignment.
    pub wait_ms: DurationSummary,
    /// Start to a person's first reply.
    pub first_response_ms: DurationSummary,
    /// Oldest unanswered message to the next reply.
    pub next_reply_ms: DurationSummary,
    /// First message to close.
    pub resolution_ms: DurationSummary,
    /// First human assignment to close.
    pub handle_ms: Average,
    /// `wait_ms` counting only open time (opening hours); `null` without
    /// opening hours configured.
    #[serde(default)]
    pub wait_business_ms: Option<DurationSummary>,
    /// `first_response_ms` in business hours; `null` without opening hours.
    #[serde(default)]
    pub first_response_business_ms: Option<DurationSummary>,
    /// `next_reply_ms` in business hours; `null` without opening hours.
    #[serde(default)]
    pub next_reply_business_ms: Option<DurationSummary>,
    /// `resolution_ms` in business hours; `null` without opening hours.
    #[serde(default)]
    pub resolution_business_ms: Option<DurationSummary>,
    /// `handle_ms` in business hours; `null` without opening hours.
    #[serde(default)]
    pub handle_business_ms: Option<Average>,
    /// SLA breaches per clock.
    pub sla_breaches: Breaches,
    /// Conversations a bot handed to people.
    pub escalations: u64,
    /// Conversations a bot closed alone.
    pub bot_resolved: u64,
    /// Conversations with an order.
    pub conversions: u64,
    /// conversions / offered.
    pub conversion_rate: Option<f64>,
    /// Order values per currency, in major units.
    pub revenue: BTreeMap<String, f64>,
    /// People's occupancy: the conversation-time they held over the
    /// capacity-time they were staffed for (`held_ms / staffed_ms`); in
    /// total, team and agent rows only, `null` elsewhere and where nobody
    /// was staffed. Above 1 when people held more than their capacity.
    pub occupancy: Option<f64>,
    /// Conversion per first-response band.
    pub conversion_by_first_response: ResponseBands,
}

/// `{"avg","p50","p90","p99"}` of a duration, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DurationSummary {
    /// Mean.
    pub avg: Option<f64>,
    /// Median (nearest rank, within 1/32 above the exact value).
    pub p50: Option<u64>,
    /// 90th percentile.
    pub p90: Option<u64>,
    /// 99th percentile.
    pub p99: Option<u64>,
}

/// `{"avg"}` of a duration, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Average {
    /// Mean.
    pub avg: Option<f64>,
}

/// `{"first_reply","next_reply"}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breaches {
    /// First-reply SLA breaches.
    pub first_reply: u64,
    /// Next-reply SLA breaches.
    pub next_reply: u64,
}

/// One first-response band's conversion.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BandConversion {
    /// Conversations whose first response fell in the band.
    pub conversations: u64,
    /// Of those, the ones with an order.
    pub conversions: u64,
    /// conversions / conversations.
    pub rate: Option<f64>,
}

/// The five first-response bands.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResponseBands {
    /// Under a minute.
    #[serde(rename = "<1m")]
    pub under_1m: BandConversion,
    /// One to five minutes.
    #[serde(rename = "1-5m")]
    pub from_1m_to_5m: BandConversion,
    /// Five to fifteen minutes.
    #[serde(rename = "5-15m")]
    pub from_5m_to_15m: BandConversion,
    /// Fifteen minutes to an hour.
    #[serde(rename = "15-60m")]
    pub from_15m_to_60m: BandConversion,
    /// An hour or more.
    #[serde(rename = ">1h")]
    pub over_1h: BandConversion,
}

fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

fn summary(histogram: &Histogram) -> DurationSummary {
    DurationSummary {
        avg: histogram.mean(),
        p50: histogram.quantile(50),
        p90: histogram.quantile(90),
        p99: histogram.quantile(99),
    }
}

fn average(sum: u64, count: u64) -> Average {
    Average { avg: (count > 0).then(|| sum as f64 / count as f64) }
}

impl MeasuresReport {
    /// Renders stored measures; the business-hours clocks are `None`
    /// unless `business_hours` (opening hours are configured).
    pub fn from_measures(m: &Measures, business_hours: bool) -> MeasuresReport {
        let empty = BusinessClocks::default();
        let business = business_hours.then(|| m.business.as_deref().unwrap_or(&empty));
        let denominator = (m.answered + m.abandoned).saturating_sub(m.short_abandoned);
        let band = |i: usize| BandConversion {
            conversations: m.band_conversations[i],
            conversions: m.band_conversions[i],
            rate: ratio(m.band_conversions[i], m.band_conversations[i]),
        };
        MeasuresReport {
            offered: m.offered,
            answered: m.answered,
            abandoned: m.abandoned,
            short_abandoned: m.short_abandoned,
            service_level: ratio(m.answered_in_target, denominator),
            wait_ms: summary(&m.wait_ms),
            first_response_ms: summary(&m.first_response_ms),
            next_reply_ms: summary(&m.next_reply_ms),
            resolution_ms: summary(&m.resolution_ms),
            handle_ms: average(m.handle_ms_sum, m.handle_count),
            wait_business_ms: business.map(|b| summary(&b.wait_ms)),
            first_response_business_ms: business.map(|b| summary(&b.first_response_ms)),
            next_reply_business_ms: business.map(|b| summary(&b.next_reply_ms)),
            resolution_business_ms: business.map(|b| summary(&b.resolution_ms)),
            handle_business_ms: business.map(|b| average(b.handle_ms_sum, b.handle_count)),
            sla_breaches: Breaches {
                first_reply: m.breaches_first_reply,
                next_reply: m.breaches_next_reply,
            },
            escalations: m.escalations,
            bot_resolved: m.bot_resolved,
            conversions: m.conversions,
            conversion_rate: ratio(m.conversions, m.offered),
            revenue: m
                .revenue
                .iter()
                .map(|(currency, minor)| (currency.as_str().to_owned(), *minor as f64 / 100.0))
                .collect(),
            occupancy: ratio(m.held_ms, m.staffed_ms),
            conversion_by_first_response: ResponseBands {
                under_1m: band(0),
                from_1m_to_5m: band(1),
                from_5m_to_15m: band(2),
                from_15m_to_60m: band(3),
                over_1h: band(4),
            },
        }
    }
}

impl Meter {
    /// The report for `query`, from the retained slots. Costs one merge per
    /// retained slot and group in the range; needs no conversation state.
    pub fn report(&self, query: &Query) -> Result<Report, QueryError> {
        if query.from >= query.to {
            return Err(QueryError::EmptyRange { from: query.from, to: query.to });
        }
        let length = query.interval.millis();
        let from = query.interval.start_of(query.from);
        let to = query.interval.start_of(query.to - 1).saturating_add(length);
        let mut dimensions: Vec<Dimension> = Vec::new();
        for &dimension in &query.group_by {
            if !dimensions.contains(&dimension) {
                dimensions.push(dimension);
            }
        }
        if dimensions.is_empty() {
            dimensions.push(Dimension::Total);
        }
        let mut rows: BTreeMap<(u64, usize, GroupKey), Measures> = BTreeMap::new();
        let mut groups: BTreeMap<(usize, GroupKey), Measures> = BTreeMap::new();
        let mut totals = Measures::default();
        let mut add = |slot: u64, key: &GroupKey, measures: &Measures| {
            if *key == GroupKey::Total {
                totals.merge(measures);
            }
            if let Some(order) = dimensions.iter().position(|&d| d == key.dimension()) {
                let start = query.interval.start_of(slot * SLOT_MS);
                rows.entry((start, order, *key)).or_default().merge(measures);
                groups.entry((order, *key)).or_default().merge(measures);
            }
        };
        let slots = from / SLOT_MS..to.div_ceil(SLOT_MS);
        for (slot, slot_groups) in self.store.range(slots.start, slots.end) {
            for (key, measures) in slot_groups.iter() {
                add(slot, key, measures);
            }
        }
        // Occupancy counted up to the meter's time but not stored yet.
        for pending in self.staffing.pending(self.now()) {
            if !slots.contains(&pending.slot) {
                continue;
            }
            let area = Measures {
                held_ms: pending.held_ms,
                staffed_ms: pending.staffed_ms,
                ..Measures::default()
            };
            for key in
                [GroupKey::Agent(pending.agent), GroupKey::Team(pending.team), GroupKey::Total]
            {
                add(pending.slot, &key, &area);
            }
        }
        let business_hours = self.measures_business_hours();
        let row = |start: u64, end: u64, key: &GroupKey, measures: &Measures| Row {
            start,
            end,
            group: key.dimension(),
            key: key_name(key, &self.intents),
            measures: MeasuresReport::from_measures(measures, business_hours),
        };
        Ok(Report {
            from,
            to,
            interval: query.interval,
            intervals: rows
                .iter()
                .map(|((start, _, key), m)| row(*start, start.saturating_add(length), key, m))
                .collect(),
            groups: groups.iter().map(|((_, key), m)| row(from, to, key, m)).collect(),
            totals: MeasuresReport::from_measures(&totals, business_hours),
        })
    }
}

/// The `key` of a row.
fn key_name(key: &GroupKey, intents: &Intents) -> String {
    match key {
        GroupKey::Total => String::new(),
        GroupKey::Channel(channel) => channel.as_str().to_owned(),
        GroupKey::Queue(queue) => queue.to_string(),
        GroupKey::Team(team) => team.to_string(),
        GroupKey::Agent(agent) => agent.to_string(),
        GroupKey::Language(language) => language.to_string(),
        GroupKey::Intent(intent) => intents.name(*intent).to_owned(),
        GroupKey::BuyingIntent(band) => band.as_str().to_owned(),
        GroupKey::Tier(tier) => tier.to_string(),
    }
}

/// The CSV columns, in order.
pub const CSV_HEADER: &str = "start,end,group,key,offered,answered,abandoned,short_abandoned,\
service_level,wait_ms_avg,wait_ms_p50,wait_ms_p90,wait_ms_p99,first_response_ms_avg,\
first_response_ms_p50,first_response_ms_p90,first_response_ms_p99,next_reply_ms_avg,\
next_reply_ms_p50,next_reply_ms_p90,next_reply_ms_p99,resolution_ms_avg,resolution_ms_p50,\
resolution_ms_p90,resolution_ms_p99,handle_ms_avg,sla_breaches_first_reply,\
sla_breaches_next_reply,escalations,bot_resolved,conversions,conversion_rate,revenue,occupancy,\
frt_lt_1m_conversations,frt_lt_1m_conversions,frt_lt_1m_rate,\
frt_1_5m_conversations,frt_1_5m_conversions,frt_1_5m_rate,\
frt_5_15m_conversations,frt_5_15m_conversions,frt_5_15m_rate,\
frt_15_60m_conversations,frt_15_60m_conversions,frt_15_60m_rate,\
frt_gt_1h_conversations,frt_gt_1h_conversions,frt_gt_1h_rate,\
wait_business_ms_avg,wait_business_ms_p50,wait_business_ms_p90,wait_business_ms_p99,\
first_response_business_ms_avg,first_response_business_ms_p50,first_response_business_ms_p90,\
first_response_business_ms_p99,next_reply_business_ms_avg,next_reply_business_ms_p50,\
next_reply_business_ms_p90,next_reply_business_ms_p99,resolution_business_ms_avg,\
resolution_business_ms_p50,resolution_business_ms_p90,resolution_business_ms_p99,\
handle_business_ms_avg";

impl Report {
    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        // Only strings, integers, finite-or-null floats and string-keyed maps.
        serde_json::to_string(self).expect("a report always serialises")
    }

    /// The report as CSV: [`CSV_HEADER`], the interval rows, then the
    /// whole-range rows per group, then the totals (`group` `total`, `key`
    /// `all`). Empty values are `null`s; `revenue` is `EUR:12.50;USD:3.00`.
    pub fn to_csv(&self) -> String {
        let mut out = String::with_capacity(256 * (self.intervals.len() + self.groups.len() + 2));
        out.push_str(CSV_HEADER);
        out.push('\n');
        for row in self.intervals.iter().chain(&self.groups) {
            csv_row(&mut out, row.start, row.end, row.group.as_str(), &row.key, &row.measures);
        }
        csv_row(&mut out, self.from, self.to, "total", "all", &self.totals);
        out
    }
}

fn csv_row(out: &mut String, start: u64, end: u64, group: &str, key: &str, m: &MeasuresReport) {
    let _ = write!(out, "{start},{end},{group},");
    csv_text(out, key);
    let _ = write!(out, ",{},{},{},{},", m.offered, m.answered, m.abandoned, m.short_abandoned);
    csv_option(out, m.service_level);
    for summary in [&m.wait_ms, &m.first_response_ms, &m.next_reply_ms, &m.resolution_ms] {
        out.push(',');
        csv_option(out, summary.avg);
        for quantile in [summary.p50, summary.p90, summary.p99] {
            out.push(',');
            csv_option(out, quantile);
        }
    }
    out.push(',');
    csv_option(out, m.handle_ms.avg);
    let _ = write!(
        out,
        ",{},{},{},{},{},",
        m.sla_breaches.first_reply,
        m.sla_breaches.next_reply,
        m.escalations,
        m.bot_resolved,
        m.conversions
    );
    csv_option(out, m.conversion_rate);
    out.push(',');
    let revenue: Vec<String> = m.revenue.iter().map(|(c, v)| format!("{c}:{v:.2}")).collect();
    csv_text(out, &revenue.join(";"));
    out.push(',');
    csv_option(out, m.occupancy);
    let bands = &m.conversion_by_first_response;
    for band in [
        &bands.under_1m,
        &bands.from_1m_to_5m,
        &bands.from_5m_to_15m,
        &bands.from_15m_to_60m,
        &bands.over_1h,
    ] {
        let _ = write!(out, ",{},{},", band.conversations, band.conversions);
        csv_option(out, band.rate);
    }
    // The business-hours clocks last, so the calendar columns keep their
    // places; empty without opening hours.
    for summary in [
        &m.wait_business_ms,
        &m.first_response_business_ms,
        &m.next_reply_business_ms,
        &m.resolution_business_ms,
    ] {
        let summary = summary.as_ref();
        out.push(',');
        csv_option(out, summary.and_then(|s| s.avg));
        for quantile in summary.map_or([None; 3], |s| [s.p50, s.p90, s.p99]) {
            out.push(',');
            csv_option(out, quantile);
        }
    }
    out.push(',');
    csv_option(out, m.handle_business_ms.and_then(|h| h.avg));
    out.push('\n');
}

fn csv_option<T: std::fmt::Display>(out: &mut String, value: Option<T>) {
    if let Some(value) = value {
        let _ = write!(out, "{value}");
    }
}

/// A field, quoted when it holds a comma, quote or line break.
fn csv_text(out: &mut String, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}
