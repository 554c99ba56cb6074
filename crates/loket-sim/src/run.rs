//! Replications in parallel, and their summary with 95% confidence
//! intervals.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::Serialize;

use crate::scenario::Scenario;
use crate::sim::{Options, Outcome, SimError, replicate, replication_seed};

/// How to run a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// The run's seed; replication `i` runs with
    /// [`replication_seed`]`(seed, i)`.
    pub seed: u64,
    /// Independent replications (1 and up).
    pub replications: u32,
    /// What each replication measures.
    pub options: Options,
}

/// The replications of one run, in index order.
#[derive(Debug, Clone)]
pub struct Run {
    /// One outcome per replication.
    pub outcomes: Vec<Outcome>,
    /// Wall-clock time of the whole run.
    pub wall: Duration,
}

/// Runs the replications on the current rayon pool. The outcome depends
/// only on the scenario and the options, never on the number of threads.
pub fn run(scenario: &Scenario, options: &RunOptions) -> Result<Run, SimError> {
    let started = Instant::now();
    let outcomes = (0..u64::from(options.replications.max(1)))
        .into_par_iter()
        .map(|i| replicate(scenario, replication_seed(options.seed, i), options.options))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Run { outcomes, wall: started.elapsed() })
}

/// A measure's mean over replications and its 95% interval (Student t
/// over the replications' values; `null` with fewer than two).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// The mean.
    pub mean: Option<f64>,
    /// `[lo, hi]`.
    pub ci95: Option<[f64; 2]>,
}

impl Estimate {
    /// From the replications' values (`None`s left out).
    pub fn of(values: impl IntoIterator<Item = Option<f64>>) -> Estimate {
        let values: Vec<f64> = values.into_iter().flatten().filter(|v| v.is_finite()).collect();
        let n = values.len();
        if n == 0 {
            return Estimate { mean: None, ci95: None };
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        if n < 2 {
            return Estimate { mean: Some(mean), ci95: None };
        }
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let half = t975(n as u64 - 1) * (var / n as f64).sqrt();
        Estimate { mean: Some(mean), ci95: Some([mean - half, mean + half]) }
    }

    /// Whether `value` lies in the interval (a mean with no interval
    /// contains only itself).
    pub fn contains(&self, value: f64) -> bool {
        match (self.ci95, self.mean) {
            (Some([lo, hi]), _) => lo <= value && value <= hi,
            (None, Some(mean)) => mean == value,
            _ => false,
        }
    }
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom: the
/// table for 1..=30, the Cornish–Fisher expansion above (error below
/// 10^−4 there).
pub fn t975(df: u64) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df as usize - 1],
        _ => {
            let z = 1.959_963_984_540_054f64;
            let d = df as f64;
            z + (z.powi(3) + z) / (4.0 * d)
                + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * d * d)
        }
    }
}

/// `{avg, p50, p90}` means over replications.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Durations {
    /// Mean of the replications' averages.
    pub avg: Option<f64>,
    /// Mean of the replications' medians.
    pub p50: Option<f64>,
    /// Mean of the replications' 90th percentiles.
    pub p90: Option<f64>,
}

/// The simulator's own counts (every arrival of the measured period
/// followed to its end), as Erlang C and A define their measures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Direct {
    /// P(wait > 0).
    pub p_wait: Estimate,
    /// Mean wait of all arrivals, ms (to assignment or to leaving).
    pub wait_ms_avg: Estimate,
    /// P(abandon).
    pub abandon_rate: Estimate,
    /// Share of all arrivals given to an agent within `service_level_s`.
    pub service_level: Estimate,
    /// Of the conversations that needed a person (on arrival, or after a
    /// bot's hand-off), the share a person took within `service_level_s`
    /// of that moment.
    pub person_service_level: Estimate,
    /// Occupancy of people.
    pub occupancy: Estimate,
}

/// The 95% intervals of the headline measures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Intervals {
    /// Service level (the meter's).
    pub service_level: Option<[f64; 2]>,
    /// Mean wait, ms (the meter's: answered conversations).
    pub wait_ms_avg: Option<[f64; 2]>,
    /// Abandoned / offered.
    pub abandon_rate: Option<[f64; 2]>,
    /// Occupancy.
    pub occupancy: Option<[f64; 2]>,
    /// First response p90, ms.
    pub first_response_ms_p90: Option<[f64; 2]>,
    /// Conversion rate.
    pub conversion_rate: Option<[f64; 2]>,
    /// Revenue per replication, the scenario's currency.
    pub revenue: Option<[f64; 2]>,
}

/// The summary line of `loket simulate --format json`. Measures are means
/// over replications of each replication's measured period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The run's seed.
    pub seed: u64,
    /// Replications.
    pub replications: u32,
    /// Conversations simulated in all, warm-up included.
    pub conversations: u64,
    /// Conversations that arrived in the measured period.
    pub offered: Option<f64>,
    /// Of those, answered (the meter's: a reply came).
    pub answered: Option<f64>,
    /// Abandoned (the meter's: closed before any reply).
    pub abandoned: Option<f64>,
    /// The meter's service level: answered within `service_level_s` over
    /// answered + abandoned − short abandoned.
    pub service_level: Option<f64>,
    /// Wait to a person, ms (answered conversations).
    pub wait_ms: Durations,
    /// Abandoned / offered.
    pub abandon_rate: Option<f64>,
    /// People's occupancy: held conversation-time over capacity on shift.
    pub occupancy: Option<f64>,
    /// First response, ms.
    pub first_response_ms: Durations,
    /// Conversions / offered.
    pub conversion_rate: Option<f64>,
    /// Revenue per replication, by currency.
    pub revenue: BTreeMap<String, f64>,
    /// 95% intervals.
    pub ci95: Intervals,
    /// Erlang's measures, from the simulator's own counts.
    pub direct: Direct,
    /// Conversations simulated per wall-clock second (all threads).
    pub sim_conversations_per_sec: f64,
    /// Wall-clock milliseconds.
    pub wall_ms: u64,
}

impl Summary {
    /// Summarises `run`.
    pub fn new(run: &Run, seed: u64) -> Summary {
        let o = &run.outcomes;
        let counts = || o.iter().map(|x| &x.counts);
        let reports = || o.iter().filter_map(|x| x.report.as_ref()).map(|r| &r.totals);
        let metered = o.iter().any(|x| x.report.is_some());
        let est = |f: &dyn Fn(&loket_report::MeasuresReport) -> Option<f64>| {
            Estimate::of(reports().map(f))
        };
        let offered = est(&|t| Some(t.offered as f64));
        let answered = est(&|t| Some(t.answered as f64));
        let abandoned = est(&|t| Some(t.abandoned as f64));
        let service_level = est(&|t| t.service_level);
        let abandon_rate = est(&|t| (t.offered > 0).then(|| t.abandoned as f64 / t.offered as f64));
        let wait_avg = est(&|t| t.wait_ms.avg);
        let fr_p90 = est(&|t| t.first_response_ms.p90.map(|v| v as f64));
        let conversion = est(&|t| t.conversion_rate);
        let occupancy = Estimate::of(counts().map(|c| c.occupancy()));
        let durations =
            |f: &dyn Fn(&loket_report::MeasuresReport) -> &loket_report::DurationSummary| {
                Durations {
                    avg: Estimate::of(reports().map(|t| f(t).avg)).mean,
                    p50: Estimate::of(reports().map(|t| f(t).p50.map(|v| v as f64))).mean,
                    p90: Estimate::of(reports().map(|t| f(t).p90.map(|v| v as f64))).mean,
                }
            };
        let mut revenue = BTreeMap::new();
        let mut currencies: Vec<String> =
            reports().flat_map(|t| t.revenue.keys().cloned()).collect();
        currencies.sort();
        currencies.dedup();
        let mut revenue_ci = None;
        for currency in currencies {
            let e = Estimate::of(
                reports().map(|t| Some(t.revenue.get(&currency).copied().unwrap_or(0.0))),
            );
            if let Some(mean) = e.mean {
                revenue.insert(currency, mean);
            }
            revenue_ci = revenue_ci.or(e.ci95);
        }
        let conversations: u64 = counts().map(|c| c.conversations).sum();
        let secs = run.wall.as_secs_f64();
        let pick = |e: Estimate| if metered { e.mean } else { None };
        Summary {
            seed,
            replications: o.len() as u32,
            conversations,
            offered: pick(offered)
                .or_else(|| Estimate::of(counts().map(|c| Some(c.offered as f64))).mean),
            answered: pick(answered),
            abandoned: pick(abandoned),
            service_level: service_level.mean,
            wait_ms: durations(&|t| &t.wait_ms),
            abandon_rate: pick(abandon_rate),
            occupancy: occupancy.mean,
            first_response_ms: durations(&|t| &t.first_response_ms),
            conversion_rate: conversion.mean,
            revenue,
            ci95: Intervals {
                service_level: service_level.ci95,
                wait_ms_avg: wait_avg.ci95,
                abandon_rate: abandon_rate.ci95,
                occupancy: occupancy.ci95,
                first_response_ms_p90: fr_p90.ci95,
                conversion_rate: conversion.ci95,
                revenue: revenue_ci,
            },
            direct: Direct {
                p_wait: Estimate::of(counts().map(|c| c.p_wait())),
                wait_ms_avg: Estimate::of(counts().map(|c| c.wait_ms_avg())),
                abandon_rate: Estimate::of(counts().map(|c| c.abandon_rate())),
                service_level: Estimate::of(counts().map(|c| c.service_level())),
                person_service_level: Estimate::of(counts().map(|c| c.person_service_level())),
                occupancy,
            },
            sim_conversations_per_sec: if secs > 0.0 { conversations as f64 / secs } else { 0.0 },
            wall_ms: run.wall.as_millis() as u64,
        }
    }
}
