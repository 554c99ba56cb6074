//! Staffing by simulation (`loket simulate --staffing "sl=0.8@20s"`): per
//! report interval of the day, the fewest people per agent group that
//! meet a service-level target, with Erlang C as the starting guess.
//!
//! Each interval is simulated on its own, in steady state at that
//! interval's arrival rates (the stationary, interval-by-interval method of
//! the Erlang calculators, with the real router, channels, concurrency,
//! bots and patience instead of Erlang's assumptions). A count of agents is
//! tried on the run's replications, every count with the same seed (common
//! random numbers: the same customers whatever the staffing), so two
//! counts differ by their agents alone. The target is met when, for every
//! arrival stream whose conversations need people in the interval, the
//! mean over the replications of its people's service level is at least
//! the target: of the conversations that needed a person (on arrival, or
//! when a bot handed them over), the share a person took within the
//! target time of that moment; those who leave first count against it.
//! Conversations a bot resolves never need a person, so bots that answer
//! first lower the people needed to their hand-offs.

use std::collections::HashMap;
use std::str::FromStr;

use loket_router::AgentKind;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde::Serialize;

use crate::erlang::{ErlangError, erlang_c_agents};
use crate::run::{Estimate, RunOptions, run};
use crate::scenario::{AgentGroup, Arrivals, Scenario};
use crate::sim::{Options, SimError};

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 86_400_000;

/// A service-level target: `service_level` of arrivals answered within
/// `within_ms`. Written `sl=0.8@20s`: the level as a fraction (`0.8`) or a
/// percentage (`80%`), after `@` the time in seconds (`20s`, `20`) or
/// minutes (`2m`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StaffingTarget {
    /// The share of arrivals to answer in time, strictly between 0 and 1.
    pub service_level: f64,
    /// The time, in milliseconds.
    pub within_ms: u64,
}

/// Why staffing could not be found.
#[derive(Debug, thiserror::Error)]
pub enum StaffingError {
    /// The target is not written as `sl=0.8@20s`.
    #[error("the staffing target {spec:?} {problem}; write it as sl=0.8@20s (or sl=80%@20s)")]
    Spec {
        /// The text given.
        spec: String,
        /// What is wrong with it.
        problem: String,
    },
    /// An arrival stream has arrivals but no agent group can take it.
    #[error(
        "arrivals[{stream}] ({channel}, {language}) has arrivals but no agent group can take it (its channel's capacity, its language and its skills): no staffing meets the target"
    )]
    Unservable {
        /// The stream's index in the scenario.
        stream: usize,
        /// Its channel.
        channel: String,
        /// Its language.
        language: String,
    },
    /// The target is not met even with the most agents the search may try.
    #[error(
        "the interval from {from} does not meet the target with up to {max_agents} people per group: the lowest stream's service level is {achieved:.3} (arrivals[{stream}]); allow more agents or lower the target"
    )]
    Unreachable {
        /// The interval's start, `HH:MM` of the day.
        from: String,
        /// The most agents tried per group.
        max_agents: u32,
        /// The lowest stream's service level there.
        achieved: f64,
        /// That stream.
        stream: usize,
    },
    /// The Erlang C guess failed (an input out of its domain).
    #[error("Erlang C: {0}")]
    Erlang(#[from] ErlangError),
    /// A replication failed.
    #[error(transparent)]
    Sim(#[from] SimError),
}

impl FromStr for StaffingTarget {
    type Err = StaffingError;

    fn from_str(spec: &str) -> Result<StaffingTarget, StaffingError> {
        let fail = |problem: &str| StaffingError::Spec {
            spec: spec.to_owned(),
            problem: problem.to_owned(),
        };
        let text = spec.trim();
        let rest = text
            .strip_prefix("sl=")
            .ok_or_else(|| fail("does not start with `sl=` (the service level)"))?;
        let (level, time) = rest
            .split_once('@')
            .ok_or_else(|| fail("has no `@` before the time (`@20s`: answered within 20 s)"))?;
        let level = level.trim();
        let service_level = match level.strip_suffix('%') {
            Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
            None => level.parse::<f64>(),
        }
        .map_err(|_| {
            fail(&format!("has no number for the service level: {level:?} (0.8 or 80%)"))
        })?;
        if !(service_level > 0.0 && service_level < 1.0) {
            return Err(fail(&format!(
                "asks for a service level of {service_level}: it must be above 0 and below 1 (100%: no finite staffing guarantees every arrival)"
            )));
        }
        let time = time.trim();
        let (number, unit_ms) = if let Some(s) = time.strip_suffix("ms") {
            (s, 1.0)
        } else if let Some(s) = time.strip_suffix('s') {
            (s, 1_000.0)
        } else if let Some(m) = time.strip_suffix('m') {
            (m, 60_000.0)
        } else {
            (time, 1_000.0)
        };
        let value = number.trim().parse::<f64>().map_err(|_| {
            fail(&format!("has no time after `@`: {time:?} (20s, 20, 2m or 500ms)"))
        })?;
        let ms = value * unit_ms;
        if !(ms.is_finite() && (0.0..=1e12).contains(&ms)) {
            return Err(fail(&format!("has a time of {time:?}: it must be 0 or more")));
        }
        Ok(StaffingTarget { service_level, within_ms: ms.round() as u64 })
    }
}

/// How to search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StaffingOptions {
    /// The run's seed: every count is tried with it (common random numbers).
    pub seed: u64,
    /// Replications per count tried; the target is met on their mean.
    pub replications: u32,
    /// The target.
    pub target: StaffingTarget,
    /// The most people per group the search may try; `None`: twice the
    /// Erlang C guess plus 10.
    pub max_agents: Option<u32>,
    /// Arrivals (all streams) in each replication's measured stretch: it
    /// lasts this many arrivals at the interval's rate, at least an hour
    /// and at most 30 days, after a warm-up of an hour, 20 mean handle
    /// times or the scenario's `warmup_s`, whichever is longest.
    pub arrivals_per_replication: u32,
}

impl StaffingOptions {
    /// The default length of a replication, in arrivals.
    pub const ARRIVALS_PER_REPLICATION: u32 = 20_000;
}

/// The staffing of one agent group in one interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupStaffing {
    /// The group's name.
    pub group: String,
    /// People needed (for a bot group: its count, never searched; 0 when
    /// off shift).
    pub agents: u32,
    /// Erlang C's answer for the group's share of the load (the search's
    /// starting point); `None` for bots.
    pub erlang_c_guess: Option<u32>,
    /// Whether the group is bots.
    pub bot: bool,
}

/// One report interval of the day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntervalStaffing {
    /// Its start, seconds after midnight.
    pub from_s: u64,
    /// Arrivals per hour, all streams.
    pub rate_per_hour: f64,
    /// Per agent group, in the scenario's order.
    pub groups: Vec<GroupStaffing>,
    /// People's service level, all streams, at that staffing (mean and
    /// 95% interval over the replications); `null` when no conversation
    /// needed a person.
    pub service_level: Estimate,
    /// The lowest stream's mean people's service level, the one the rule
    /// tests.
    pub lowest_stream_service_level: Option<f64>,
    /// People's occupancy at that staffing.
    pub occupancy: Estimate,
}

/// The answer of [`staffing`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Staffing {
    /// The target.
    pub target: StaffingTarget,
    /// Each report interval of the (first) day, in order.
    pub intervals: Vec<IntervalStaffing>,
    /// Counts of agents simulated, all intervals.
    pub counts_tried: u32,
    /// Conversations simulated, all counts and replications.
    pub conversations: u64,
}

/// One count tried: per stream, its mean service level; overall measures.
#[derive(Debug, Clone)]
struct Tried {
    streams: Vec<Option<f64>>,
    service_level: Estimate,
    occupancy: Estimate,
}

impl Tried {
    /// The lowest stream's service level and the stream.
    fn lowest(&self) -> Option<(f64, usize)> {
        self.streams
            .iter()
            .enumerate()
            .filter_map(|(s, v)| v.map(|v| (v, s)))
            .min_by(|a, b| a.0.total_cmp(&b.0))
    }

    fn meets(&self, target: f64) -> bool {
        self.lowest().is_none_or(|(v, _)| v >= target)
    }
}

/// Finds, for each report interval of the scenario's first day (profiles
/// and shifts repeat daily), the fewest people per human agent group that
/// meet `options.target`.
///
/// The search starts from Erlang C's answer for each group's share of the
/// load (a stream's load split over the groups that can take it in
/// proportion to their counts in the scenario; a person with concurrency
/// `k` on the channel counts as `k` servers). While the target is not met,
/// every group that can take the interval's arrivals grows by an eighth
/// (at least one); then each group in turn shrinks to the fewest that
/// still meet it (halving steps, then bisection), until no group can lose
/// one. The result is minimal: no group can do with one fewer. Bot groups
/// keep their count (0 when off shift at the interval's start). Intervals
/// with the same rates and bots share one search.
pub fn staffing(scenario: &Scenario, options: &StaffingOptions) -> Result<Staffing, StaffingError> {
    let target = options.target;
    let interval_ms = scenario.interval.millis();
    let day_ms = scenario.duration_ms.min(DAY_MS);
    let intervals = day_ms.div_ceil(interval_ms);
    for (s, a) in scenario.arrivals.iter().enumerate() {
        if a.peak_per_hour > 0.0 && !scenario.agents.iter().any(|g| g.count > 0 && can_take(g, a)) {
            return Err(StaffingError::Unservable {
                stream: s,
                channel: a.channel.to_string(),
                language: a.language.to_string(),
            });
        }
    }
    let handles: Vec<f64> = scenario.arrivals.iter().map(mean_handle_s).collect();
    let mut search = Search { scenario, options, handles, counts_tried: 0, conversations: 0 };
    let mut done: HashMap<(Vec<u64>, Vec<bool>), IntervalStaffing> = HashMap::new();
    let mut out = Vec::with_capacity(intervals as usize);
    for k in 0..intervals {
        let from_ms = k * interval_ms;
        let rates: Vec<f64> =
            scenario.arrivals.iter().map(|a| a.profile[k as usize % a.profile.len()]).collect();
        let bots_on: Vec<bool> = scenario
            .agents
            .iter()
            .map(|g| {
                g.kind == AgentKind::Bot
                    && (g.shifts.is_empty()
                        || g.shifts.iter().any(|&(a, b)| a <= from_ms && from_ms < b))
            })
            .collect();
        let key = (rates.iter().map(|r| r.to_bits()).collect(), bots_on.clone());
        let found = match done.get(&key) {
            Some(found) => found.clone(),
            None => {
                let found = search.interval(from_ms, &rates, &bots_on)?;
                done.insert(key, found.clone());
                found
            }
        };
        out.push(IntervalStaffing { from_s: from_ms / 1000, ..found });
    }
    Ok(Staffing {
        target,
        intervals: out,
        counts_tried: search.counts_tried,
        conversations: search.conversations,
    })
}

/// `HH:MM` for seconds after midnight.
pub fn time_of_day(seconds: u64) -> String {
    format!("{:02}:{:02}", seconds / 3600, seconds % 3600 / 60)
}

struct Search<'a> {
    scenario: &'a Scenario,
    options: &'a StaffingOptions,
    handles: Vec<f64>,
    counts_tried: u32,
    conversations: u64,
}

impl Search<'_> {
    fn interval(
        &mut self,
        from_ms: u64,
        rates: &[f64],
        bots_on: &[bool],
    ) -> Result<IntervalStaffing, StaffingError> {
        let scenario = self.scenario;
        let target = self.options.target;
        let total_rate: f64 = rates.iter().sum();
        let human = |g: &AgentGroup| g.kind == AgentKind::Human;
        let useful: Vec<bool> = scenario
            .agents
            .iter()
            .map(|g| {
                human(g)
                    && scenario.arrivals.iter().zip(rates).any(|(a, &r)| r > 0.0 && can_take(g, a))
            })
            .collect();
        let guesses = self.guesses(rates, bots_on)?;
        let max_agents: Vec<u32> = guesses
            .iter()
            .map(|g| self.options.max_agents.unwrap_or(g.saturating_mul(2).saturating_add(10)))
            .collect();
        let mut n: Vec<u32> = guesses
            .iter()
            .zip(&useful)
            .zip(&max_agents)
            .map(|((&g, &u), &cap)| if u { g.min(cap) } else { 0 })
            .collect();
        let mut tried: HashMap<Vec<u32>, Tried> = HashMap::new();
        let stationary = self.stationary(rates, bots_on);
        let mut try_n = |search: &mut Self, n: &[u32]| -> Result<Tried, StaffingError> {
            if let Some(t) = tried.get(n) {
                return Ok(t.clone());
            }
            let t = search.simulate(&stationary, n)?;
            tried.insert(n.to_vec(), t.clone());
            Ok(t)
        };
        if total_rate > 0.0 {
            // Grow until the target is met.
            loop {
                let t = try_n(self, &n)?;
                if t.meets(target.service_level) {
                    break;
                }
                let mut grew = false;
                for g in 0..n.len() {
                    if useful[g] && n[g] < max_agents[g] {
                        n[g] = (n[g] + (n[g] / 8).max(1)).min(max_agents[g]);
                        grew = true;
                    }
                }
                if !grew {
                    let (achieved, stream) = t.lowest().unwrap_or((0.0, 0));
                    return Err(StaffingError::Unreachable {
                        from: time_of_day(from_ms / 1000),
                        max_agents: max_agents.iter().copied().max().unwrap_or(0),
                        achieved,
                        stream,
                    });
                }
            }
            // Shrink each group to the fewest that still meet it.
            for _sweep in 0..4 {
                let before = n.clone();
                for g in 0..n.len() {
                    if !useful[g] {
                        continue;
                    }
                    let mut at = |m: u32, search: &mut Self| -> Result<bool, StaffingError> {
                        let mut probe = n.clone();
                        probe[g] = m;
                        Ok(try_n(search, &probe)?.meets(target.service_level))
                    };
                    let mut ok = n[g];
                    let mut fail = None;
                    let mut step = 1u32;
                    while ok > 0 {
                        let m = ok.saturating_sub(step);
                        if at(m, self)? {
                            ok = m;
                            step = step.saturating_mul(2);
                        } else {
                            fail = Some(m);
                            break;
                        }
                    }
                    if let Some(mut fail) = fail {
                        while ok - fail > 1 {
                            let mid = fail + (ok - fail) / 2;
                            if at(mid, self)? {
                                ok = mid;
                            } else {
                                fail = mid;
                            }
                        }
                    }
                    n[g] = ok;
                }
                if n == before {
                    break;
                }
            }
        }
        let t = if total_rate > 0.0 { Some(try_n(self, &n)?) } else { None };
        let groups = scenario
            .agents
            .iter()
            .enumerate()
            .map(|(g, group)| {
                let bot = !human(group);
                GroupStaffing {
                    group: group.name.clone(),
                    agents: if bot { if bots_on[g] { group.count } else { 0 } } else { n[g] },
                    erlang_c_guess: (!bot).then_some(guesses[g]),
                    bot,
                }
            })
            .collect();
        let none = Estimate { mean: None, ci95: None };
        Ok(IntervalStaffing {
            from_s: from_ms / 1000,
            rate_per_hour: total_rate,
            groups,
            service_level: t.as_ref().map_or(none, |t| t.service_level),
            lowest_stream_service_level: t.as_ref().and_then(|t| t.lowest()).map(|(v, _)| v),
            occupancy: t.as_ref().map_or(none, |t| t.occupancy),
        })
    }

    /// Erlang C's people per group for the interval's rates: each stream's
    /// load for people split over the human groups that can take it, in
    /// proportion to their counts in the scenario. With bots answering
    /// first, a stream's load for people is its rate times the escalation
    /// share of the first bot group on duty that can take it.
    fn guesses(&self, rates: &[f64], bots_on: &[bool]) -> Result<Vec<u32>, StaffingError> {
        let scenario = self.scenario;
        let groups = &scenario.agents;
        let mut rate = vec![0.0f64; groups.len()];
        let mut work = vec![0.0f64; groups.len()];
        let mut servers = vec![0.0f64; groups.len()];
        for ((a, &r), &h) in scenario.arrivals.iter().zip(rates).zip(&self.handles) {
            let bot = groups.iter().zip(bots_on).find_map(|(g, &on)| {
                (on && g.kind == AgentKind::Bot && g.count > 0 && can_take(g, a)).then_some(g)
            });
            let r = match bot {
                Some(bot) if scenario.router.bot_first => r * bot.escalate,
                _ => r,
            };
            if r <= 0.0 {
                continue;
            }
            let takers: Vec<usize> = (0..groups.len())
                .filter(|&g| groups[g].kind == AgentKind::Human && can_take(&groups[g], a))
                .collect();
            let weight: f64 = takers.iter().map(|&g| f64::from(groups[g].count)).sum();
            for &g in &takers {
                let share = if weight > 0.0 {
                    f64::from(groups[g].count) / weight
                } else {
                    1.0 / takers.len() as f64
                };
                let c = &groups[g].capacity;
                let k = f64::from(c.channel(a.channel).min(c.total).max(1));
                rate[g] += share * r;
                work[g] += share * r * h;
                servers[g] += share * r * h * k;
            }
        }
        let target = self.options.target;
        (0..groups.len())
            .map(|g| {
                if rate[g] <= 0.0 || work[g] <= 0.0 {
                    return Ok(0);
                }
                let handle_s = work[g] / rate[g];
                let per_agent = (servers[g] / work[g]).max(1.0);
                let within_s = target.within_ms as f64 / 1000.0;
                let needed = erlang_c_agents(rate[g], handle_s, within_s, target.service_level)?
                    .unwrap_or(100_000);
                Ok((f64::from(needed) / per_agent).ceil() as u32)
            })
            .collect()
    }

    /// The scenario in steady state at `rates`: one rate per stream all
    /// day, no shifts, bots on or off, the target's time as the service
    /// level's.
    fn stationary(&self, rates: &[f64], bots_on: &[bool]) -> Scenario {
        let scenario = self.scenario;
        let total: f64 = rates.iter().sum();
        let longest_handle = self.handles.iter().copied().fold(0.0, f64::max);
        let warmup_ms =
            scenario.warmup_ms.max(HOUR_MS).max((longest_handle * 20.0 * 1000.0).round() as u64);
        let arrivals = f64::from(self.options.arrivals_per_replication.max(1));
        let duration_ms = if total > 0.0 {
            ((arrivals / total * HOUR_MS as f64) as u64).clamp(HOUR_MS, 30 * DAY_MS)
        } else {
            HOUR_MS
        };
        let mut s = scenario.clone();
        s.warmup_ms = warmup_ms;
        s.duration_ms = duration_ms;
        s.service_level_ms = self.options.target.within_ms;
        for (a, &r) in s.arrivals.iter_mut().zip(rates) {
            a.profile = vec![r];
            a.peak_per_hour = r;
        }
        for (g, on) in s.agents.iter_mut().zip(bots_on) {
            g.shifts.clear();
            if g.kind == AgentKind::Bot && !on {
                g.count = 0;
            }
        }
        s
    }

    /// Runs the replications with `n` people in the human groups.
    fn simulate(&mut self, stationary: &Scenario, n: &[u32]) -> Result<Tried, StaffingError> {
        let mut s = stationary.clone();
        for (g, &count) in s.agents.iter_mut().zip(n) {
            if g.kind == AgentKind::Human {
                g.count = count;
            }
        }
        let options = RunOptions {
            seed: self.options.seed,
            replications: self.options.replications.max(1),
            options: Options { meter: false, pages: false },
        };
        let done = run(&s, &options)?;
        self.counts_tried += 1;
        self.conversations += done.outcomes.iter().map(|o| o.counts.conversations).sum::<u64>();
        let streams = (0..s.arrivals.len())
            .map(|i| {
                Estimate::of(
                    done.outcomes.iter().map(|o| o.counts.streams[i].person_service_level()),
                )
                .mean
            })
            .collect();
        Ok(Tried {
            streams,
            service_level: Estimate::of(
                done.outcomes.iter().map(|o| o.counts.person_service_level()),
            ),
            occupancy: Estimate::of(done.outcomes.iter().map(|o| o.counts.occupancy())),
        })
    }
}

/// Whether agents of `group` can take conversations of `arrivals`: room on
/// the channel, the language, every required skill at its minimum.
fn can_take(group: &AgentGroup, arrivals: &Arrivals) -> bool {
    group.capacity.channel(arrivals.channel) > 0
        && group.capacity.total > 0
        && group.languages.contains(&arrivals.language)
        && arrivals
            .skills
            .iter()
            .all(|(name, min)| group.skills.iter().any(|(n, level)| n == name && level >= min))
}

/// The mean handle time of a stream, in seconds, from 20,000 draws of a
/// fixed seed (only the Erlang guess uses it).
fn mean_handle_s(arrivals: &Arrivals) -> f64 {
    let mut rng = SmallRng::seed_from_u64(24);
    let draws = 20_000;
    (0..draws).map(|_| arrivals.handle.sample(&mut rng)).sum::<f64>() / f64::from(draws)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(spec: &str) -> Result<StaffingTarget, String> {
        spec.parse::<StaffingTarget>().map_err(|e| e.to_string())
    }

    #[test]
    fn targets_parse_in_every_spelling() {
        let t = |level, ms| Ok(StaffingTarget { service_level: level, within_ms: ms });
        assert_eq!(parse("sl=0.8@20s"), t(0.8, 20_000));
        assert_eq!(parse("sl=0.9@30s"), t(0.9, 30_000));
        assert_eq!(parse("sl=80%@20s"), t(0.8, 20_000));
        assert_eq!(parse("sl=0.8@20"), t(0.8, 20_000));
        assert_eq!(parse("sl=0.95@2m"), t(0.95, 120_000));
        assert_eq!(parse("sl=0.5@500ms"), t(0.5, 500));
        assert_eq!(parse(" sl=0.8@0s "), t(0.8, 0));
    }

    #[test]
    fn bad_targets_name_the_problem() {
        let e = parse("0.8@20s").unwrap_err();
        assert!(
            e.contains("\"0.8@20s\"") && e.contains("`sl=`") && e.contains("sl=0.8@20s"),
            "{e}"
        );
        let e = parse("sl=0.8").unwrap_err();
        assert!(e.contains("no `@`"), "{e}");
        let e = parse("sl=high@20s").unwrap_err();
        assert!(e.contains("\"high\""), "{e}");
        let e = parse("sl=1.2@20s").unwrap_err();
        assert!(e.contains("1.2") && e.contains("below 1"), "{e}");
        let e = parse("sl=100%@20s").unwrap_err();
        assert!(e.contains("below 1"), "{e}");
        let e = parse("sl=0@20s").unwrap_err();
        assert!(e.contains("above 0"), "{e}");
        let e = parse("sl=0.8@20h").unwrap_err();
        assert!(e.contains("\"20h\""), "{e}");
        let e = parse("sl=0.8@-5s").unwrap_err();
        assert!(e.contains("0 or more"), "{e}");
    }

    #[test]
    fn times_of_day() {
        assert_eq!(time_of_day(0), "00:00");
        assert_eq!(time_of_day(8 * 3600 + 15 * 60), "08:15");
    }
}
