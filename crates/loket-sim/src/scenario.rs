//! The scenario file: TOML as docs/simulate.md describes it, parsed
//! strictly ([`ScenarioSpec`]: unknown keys are errors) and checked into a
//! [`Scenario`] whose every value is usable.

use std::collections::BTreeMap;

use loket_replay::CapacityLine;
use loket_router::{AgentKind, Capacity, Channel, Language, RouterConfig};
use serde::{Deserialize, Deserializer, Serialize};

use crate::dist::{Dist, DistSpec};

/// A scenario that cannot be used, naming the key at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScenarioError {
    /// Not TOML, a key the scenario does not know, or a value of the wrong
    /// type; toml's message names the line, the column and the key.
    #[error("{0}")]
    Toml(String),
    /// A value of the right type that cannot be used.
    #[error("`{key}`: {message}")]
    Invalid {
        /// The key as a dotted path, e.g. `arrivals[0].handle`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid { key: key.into(), message: message.into() }
}

/// The scenario as written. See docs/simulate.md for every key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// Simulated time measured, after the warm-up, in seconds.
    pub duration_s: f64,
    /// Simulated time before measuring starts, in seconds.
    #[serde(default)]
    pub warmup_s: f64,
    /// Report interval: 900, 3600 or 86400 seconds.
    #[serde(default = "default_interval")]
    pub interval_s: u64,
    /// The service level's target, in seconds: the first-reply target of
    /// every channel's SLA in the meter.
    #[serde(default = "default_service_level")]
    pub service_level_s: f64,
    /// Arrival streams.
    pub arrivals: Vec<ArrivalSpec>,
    /// Agent groups.
    pub agents: Vec<AgentGroupSpec>,
    /// The routing policy, as `loket route --config` takes it.
    #[serde(default)]
    pub router: RouterConfig,
    /// The conversion model.
    #[serde(default)]
    pub conversion: ConversionSpec,
}

fn default_interval() -> u64 {
    900
}

fn default_service_level() -> f64 {
    20.0
}

/// One stream of arriving conversations.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrivalSpec {
    /// The channel (`chat`, `whatsapp`, `messenger`, `sms`, `email`, `voice`).
    pub channel: Channel,
    /// The customers' language (two letters).
    pub language: String,
    /// Required skills with their minimum proficiency (1..=10).
    #[serde(default)]
    pub skills: BTreeMap<String, i64>,
    /// Customer tier.
    #[serde(default)]
    pub tier: u8,
    /// Poisson arrivals at this rate (per hour), all day.
    #[serde(default)]
    pub rate_per_hour: Option<f64>,
    /// Or: the rate per hour in each report interval of the day, repeated
    /// when the simulation is longer.
    #[serde(default)]
    pub profile: Option<Vec<f64>>,
    /// Time from assignment to a person until the close.
    pub handle: DistSpec,
    /// How long a customer waits for an agent before leaving; `"none"`:
    /// forever.
    #[serde(default, deserialize_with = "patience")]
    pub patience: Option<DistSpec>,
    /// The conversation's buying intent (0..1); 0 when left out.
    #[serde(default)]
    pub buying_intent: Option<DistSpec>,
    /// Time from an assignment (or a customer message) to the agent's reply;
    /// 0 when left out.
    #[serde(default)]
    pub reply_delay: Option<DistSpec>,
    /// Customer messages per conversation (1 and up).
    #[serde(default = "one")]
    pub messages: u32,
    /// Time from an agent's reply to the customer's next message.
    #[serde(default)]
    pub gap: Option<DistSpec>,
}

fn one() -> u32 {
    1
}

/// `"none"` or a distribution.
fn patience<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DistSpec>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Word(String),
        Table(toml::Value),
    }
    match Either::deserialize(deserializer)? {
        Either::Word(word) if word == "none" => Ok(None),
        Either::Word(word) => Err(serde::de::Error::custom(format!(
            "patience is \"none\" or a distribution table, not {word:?}"
        ))),
        Either::Table(value) => {
            DistSpec::deserialize(value).map(Some).map_err(serde::de::Error::custom)
        }
    }
}

/// A shift: on from `from_s` to `to_s`, seconds of the simulated day
/// (0..=86400; the measured period starts at midnight).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftSpec {
    /// Start, seconds after midnight.
    pub from_s: f64,
    /// End, seconds after midnight (after `from_s`).
    pub to_s: f64,
}

/// A group of identical agents.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentGroupSpec {
    /// The group's name: its team in reports, and its agents are
    /// `NAME-1` … `NAME-count`. Default `group-N` (1-based).
    #[serde(default)]
    pub name: Option<String>,
    /// How many agents.
    pub count: u32,
    /// `human` or `bot`.
    #[serde(default)]
    pub kind: AgentKind,
    /// Skills with proficiency 1..=10.
    #[serde(default)]
    pub skills: BTreeMap<String, i64>,
    /// Languages spoken.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Concurrency per channel, as in agents.jsonl; the router's default
    /// (chat 3, WhatsApp 5, ...) when left out.
    #[serde(default)]
    pub capacity: Option<CapacityLine>,
    /// When the group works; always when left out.
    #[serde(default)]
    pub shifts: Vec<ShiftSpec>,
    /// Bots: how long a bot holds a conversation before it resolves or
    /// escalates it; the arrival's handle time when left out.
    #[serde(default)]
    pub handle: Option<DistSpec>,
    /// Bots: the probability that the bot resolves the conversation.
    #[serde(default)]
    pub resolve: Option<f64>,
    /// Bots: the probability that the bot escalates to a person (the
    /// customer asks for one). The rest leave without either.
    #[serde(default)]
    pub escalate: Option<f64>,
}

/// The conversion model: a conversation answered with first response `r`
/// seconds and buying intent `b` buys with probability
/// `max_rate · b · 0.5^(r / half_life_s)`; one never answered does not.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConversionSpec {
    /// The purchase probability at buying intent 1, answered at once.
    pub max_rate: f64,
    /// The first-response time that halves it, in seconds.
    pub half_life_s: f64,
    /// The order's value.
    pub order_value: DistSpec,
    /// The orders' currency (three letters).
    pub currency: String,
}

impl Default for ConversionSpec {
    fn default() -> ConversionSpec {
        ConversionSpec {
            max_rate: 0.5,
            half_life_s: 300.0,
            order_value: DistSpec::Lognormal { mean_s: 60.0, sd_s: 40.0 },
            currency: "EUR".to_owned(),
        }
    }
}

/// A checked arrival stream.
#[derive(Debug, Clone)]
pub struct Arrivals {
    /// The channel.
    pub channel: Channel,
    /// The language.
    pub language: Language,
    /// Required skills by name with minimums 1..=10.
    pub skills: Vec<(String, u8)>,
    /// Tier.
    pub tier: u8,
    /// Rate per hour in each interval of the day (one entry: all day).
    pub profile: Vec<f64>,
    /// The highest rate of `profile` (for thinning).
    pub peak_per_hour: f64,
    /// Handle time.
    pub handle: Dist,
    /// Patience; `None`: waits forever.
    pub patience: Option<Dist>,
    /// Buying intent, clamped to 0..=1; `None`: 0.
    pub buying_intent: Option<Dist>,
    /// Reply delay; `None`: 0.
    pub reply_delay: Option<Dist>,
    /// Customer messages per conversation.
    pub messages: u32,
    /// Gap before the customer's next message.
    pub gap: Dist,
}

/// A checked agent group.
#[derive(Debug, Clone)]
pub struct AgentGroup {
    /// Its name (the team; agents are `name-i`).
    pub name: String,
    /// Agents.
    pub count: u32,
    /// Human or bot.
    pub kind: AgentKind,
    /// Skills by name with proficiency 1..=10.
    pub skills: Vec<(String, u8)>,
    /// Languages.
    pub languages: Vec<Language>,
    /// Capacity.
    pub capacity: Capacity,
    /// Shifts as (from, to) milliseconds of the day, sorted; empty: always.
    pub shifts: Vec<(u64, u64)>,
    /// Bots: time held before resolving or escalating.
    pub handle: Option<Dist>,
    /// Bots: resolve probability.
    pub resolve: f64,
    /// Bots: escalate probability.
    pub escalate: f64,
}

/// The checked conversion model.
#[derive(Debug, Clone)]
pub struct Conversion {
    /// See [`ConversionSpec::max_rate`].
    pub max_rate: f64,
    /// See [`ConversionSpec::half_life_s`].
    pub half_life_s: f64,
    /// Order value in major units.
    pub order_value: Dist,
    /// Currency code.
    pub currency: loket_report::Currency,
}

impl Conversion {
    /// The purchase probability for buying intent `b` and first response
    /// `first_response_ms`.
    pub fn probability(&self, b: f64, first_response_ms: u64) -> f64 {
        let r = first_response_ms as f64 / 1000.0;
        (self.max_rate * b.clamp(0.0, 1.0) * 0.5f64.powf(r / self.half_life_s)).clamp(0.0, 1.0)
    }
}

/// A checked scenario: every value usable, every count in range.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Measured time, milliseconds.
    pub duration_ms: u64,
    /// Warm-up, milliseconds.
    pub warmup_ms: u64,
    /// Report interval.
    pub interval: loket_report::Interval,
    /// The service level's target, milliseconds.
    pub service_level_ms: u64,
    /// Arrival streams.
    pub arrivals: Vec<Arrivals>,
    /// Agent groups.
    pub agents: Vec<AgentGroup>,
    /// The routing policy.
    pub router: RouterConfig,
    /// The conversion model.
    pub conversion: Conversion,
}

/// The most agents a scenario may have (the router's slots are never
/// reused; a million is far beyond any centre).
pub const MAX_AGENTS: u64 = 1_000_000;

impl Scenario {
    /// Parses and checks a scenario file's text.
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        let spec: ScenarioSpec =
            toml::from_str(text).map_err(|e| ScenarioError::Toml(e.to_string()))?;
        Scenario::new(&spec)
    }

    /// Checks a parsed scenario.
    pub fn new(spec: &ScenarioSpec) -> Result<Scenario, ScenarioError> {
        let seconds = |key: &str, v: f64, positive: bool| {
            if v.is_finite() && (v > 0.0 || (!positive && v == 0.0)) && v < 1e12 {
                Ok((v * 1000.0).round() as u64)
            } else {
                let what = if positive { "above 0" } else { "of 0 or more" };
                Err(invalid(key, format!("must be a number of seconds {what}, not {v}")))
            }
        };
        let duration_ms = seconds("duration_s", spec.duration_s, true)?;
        let warmup_ms = seconds("warmup_s", spec.warmup_s, false)?;
        let service_level_ms = seconds("service_level_s", spec.service_level_s, false)?;
        let interval = match spec.interval_s {
            900 => loket_report::Interval::Minutes15,
            3600 => loket_report::Interval::Hour,
            86400 => loket_report::Interval::Day,
            other => {
                return Err(invalid(
                    "interval_s",
                    format!("must be 900, 3600 or 86400 (the report's intervals), not {other}"),
                ));
            }
        };
        if spec.arrivals.is_empty() {
            return Err(invalid("arrivals", "at least one [[arrivals]] stream is needed"));
        }
        if spec.agents.is_empty() {
            return Err(invalid("agents", "at least one [[agents]] group is needed"));
        }
        let dist = |key: String, spec: &DistSpec| Dist::new(spec).map_err(|m| invalid(key, m));
        let mut arrivals = Vec::with_capacity(spec.arrivals.len());
        for (i, a) in spec.arrivals.iter().enumerate() {
            let key = |k: &str| format!("arrivals[{i}].{k}");
            let language = a
                .language
                .parse::<Language>()
                .map_err(|e| invalid(key("language"), e.to_string()))?;
            let skills = levels(&a.skills, &key("skills"))?;
            let profile = match (&a.rate_per_hour, &a.profile) {
                (Some(rate), None) => vec![*rate],
                (None, Some(profile)) if !profile.is_empty() => profile.clone(),
                (None, Some(_)) => return Err(invalid(key("profile"), "is empty")),
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        key("rate_per_hour"),
                        "give either `rate_per_hour` or `profile`, not both",
                    ));
                }
                (None, None) => {
                    return Err(invalid(key("rate_per_hour"), "give `rate_per_hour` or `profile`"));
                }
            };
            for (j, r) in profile.iter().enumerate() {
                if !(r.is_finite() && *r >= 0.0 && *r < 1e9) {
                    let k = if a.profile.is_some() {
                        format!("{}[{j}]", key("profile"))
                    } else {
                        key("rate_per_hour")
                    };
                    return Err(invalid(k, format!("must be a rate of 0 or more, not {r}")));
                }
            }
            let peak_per_hour = profile.iter().copied().fold(0.0, f64::max);
            if a.messages == 0 {
                return Err(invalid(key("messages"), "must be 1 or more"));
            }
            let gap = match &a.gap {
                Some(g) => dist(key("gap"), g)?,
                None => Dist::new(&DistSpec::Exponential { mean_s: 30.0 })
                    .map_err(|m| invalid(key("gap"), m))?,
            };
            arrivals.push(Arrivals {
                channel: a.channel,
                language,
                skills,
                tier: a.tier,
                profile,
                peak_per_hour,
                handle: dist(key("handle"), &a.handle)?,
                patience: a.patience.as_ref().map(|p| dist(key("patience"), p)).transpose()?,
                buying_intent: a
                    .buying_intent
                    .as_ref()
                    .map(|p| dist(key("buying_intent"), p))
                    .transpose()?,
                reply_delay: a
                    .reply_delay
                    .as_ref()
                    .map(|p| dist(key("reply_delay"), p))
                    .transpose()?,
                messages: a.messages,
                gap,
            });
        }
        let mut agents = Vec::with_capacity(spec.agents.len());
        let mut total = 0u64;
        for (i, g) in spec.agents.iter().enumerate() {
            let key = |k: &str| format!("agents[{i}].{k}");
            total += u64::from(g.count);
            if total > MAX_AGENTS {
                return Err(invalid(key("count"), format!("more than {MAX_AGENTS} agents in all")));
            }
            let languages = g
                .languages
                .iter()
                .enumerate()
                .map(|(j, l)| {
                    l.parse::<Language>()
                        .map_err(|e| invalid(format!("{}[{j}]", key("languages")), e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let capacity = match &g.capacity {
                None => Capacity::default(),
                Some(line) => line
                    .to_capacity()
                    .map_err(|e| invalid(format!("{}.{}", key("capacity"), e.field), e.message))?,
            };
            let mut shifts = Vec::with_capacity(g.shifts.len());
            for (j, s) in g.shifts.iter().enumerate() {
                let k = format!("{}[{j}]", key("shifts"));
                let ok = |v: f64| v.is_finite() && (0.0..=86_400.0).contains(&v);
                if !ok(s.from_s) || !ok(s.to_s) || s.to_s <= s.from_s {
                    return Err(invalid(
                        k,
                        format!(
                            "a shift runs from `from_s` to a later `to_s`, both 0..=86400 seconds of the day, not {}..{}",
                            s.from_s, s.to_s
                        ),
                    ));
                }
                shifts.push(((s.from_s * 1000.0) as u64, (s.to_s * 1000.0) as u64));
            }
            shifts.sort_unstable();
            let probability = |k: &str, v: Option<f64>| match v {
                None => Ok(None),
                Some(p) if (0.0..=1.0).contains(&p) => Ok(Some(p)),
                Some(p) => Err(invalid(key(k), format!("must be a probability 0..=1, not {p}"))),
            };
            let resolve = probability("resolve", g.resolve)?;
            let escalate = probability("escalate", g.escalate)?;
            let bot = g.kind == AgentKind::Bot;
            if !bot && (g.resolve.is_some() || g.escalate.is_some() || g.handle.is_some()) {
                return Err(invalid(
                    key("kind"),
                    "`handle`, `resolve` and `escalate` are for bots (kind = \"bot\")",
                ));
            }
            let (resolve, escalate) = match (resolve, escalate) {
                (None, None) => (1.0, 0.0),
                (Some(r), None) => (r, 0.0),
                (None, Some(e)) => (1.0 - e, e),
                (Some(r), Some(e)) if r + e <= 1.0 + 1e-12 => (r, e),
                (Some(_), Some(_)) => {
                    return Err(invalid(key("escalate"), "`resolve` + `escalate` is above 1"));
                }
            };
            agents.push(AgentGroup {
                name: g.name.clone().unwrap_or_else(|| format!("group-{}", i + 1)),
                count: g.count,
                kind: g.kind,
                skills: levels(&g.skills, &key("skills"))?,
                languages,
                capacity,
                shifts,
                handle: g.handle.as_ref().map(|h| dist(key("handle"), h)).transpose()?,
                resolve,
                escalate,
            });
        }
        let c = &spec.conversion;
        if !(0.0..=1.0).contains(&c.max_rate) {
            return Err(invalid(
                "conversion.max_rate",
                format!("must be 0..=1, not {}", c.max_rate),
            ));
        }
        if !(c.half_life_s.is_finite() && c.half_life_s > 0.0) {
            return Err(invalid(
                "conversion.half_life_s",
                format!("must be above 0, not {}", c.half_life_s),
            ));
        }
        let currency = loket_report::Currency::parse(&c.currency).ok_or_else(|| {
            invalid("conversion.currency", format!("{:?} is not a three-letter code", c.currency))
        })?;
        let conversion = Conversion {
            max_rate: c.max_rate,
            half_life_s: c.half_life_s,
            order_value: dist("conversion.order_value".to_owned(), &c.order_value)?,
            currency,
        };
        Ok(Scenario {
            duration_ms,
            warmup_ms,
            interval,
            service_level_ms,
            arrivals,
            agents,
            router: spec.router.clone(),
            conversion,
        })
    }
}

fn levels(skills: &BTreeMap<String, i64>, key: &str) -> Result<Vec<(String, u8)>, ScenarioError> {
    skills
        .iter()
        .map(|(name, &level)| {
            u8::try_from(level)
                .ok()
                .filter(|l| (1..=10).contains(l))
                .map(|l| (name.clone(), l))
                .ok_or_else(|| {
                    invalid(
                        format!("{key}.{name}"),
                        format!("proficiency {level} is outside 1..=10"),
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
duration_s = 86400
warmup_s = 3600
interval_s = 900
service_level_s = 20

[[arrivals]]
channel = "chat"
language = "nl"
skills = { sales = 5 }
rate_per_hour = 600
handle = { dist = "exponential", mean_s = 240 }
patience = { dist = "exponential", mean_s = 120 }
buying_intent = { dist = "beta", a = 2.0, b = 5.0 }

[[arrivals]]
channel = "whatsapp"
language = "en"
profile = [10, 20, 30]
handle = { dist = "lognormal", mean_s = 300, sd_s = 200 }
patience = "none"

[[agents]]
count = 10
kind = "human"
skills = { sales = 7 }
languages = ["nl", "en"]
capacity = { chat = 1, whatsapp = 2 }

[router]
strategy = "longest_idle"
"#;

    #[test]
    fn the_issue_example_parses() {
        let s = Scenario::from_toml(GOOD).unwrap();
        assert_eq!(s.duration_ms, 86_400_000);
        assert_eq!(s.arrivals[0].skills, vec![("sales".to_owned(), 5)]);
        assert!(s.arrivals[1].patience.is_none());
        assert_eq!(s.arrivals[1].peak_per_hour, 30.0);
        assert_eq!(s.agents[0].capacity.chat, 1);
        assert_eq!(s.agents[0].name, "group-1");
    }

    fn error(text: &str) -> String {
        Scenario::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn bad_input_names_the_key() {
        let e = error(&GOOD.replace("rate_per_hour = 600", "rate_per_hour = 600\nrate = 3"));
        assert!(e.contains("unknown field `rate`"), "{e}");
        let e = error(&GOOD.replace("mean_s = 240", "mean_s = -1"));
        assert!(e.starts_with("`arrivals[0].handle`: `mean_s` must be"), "{e}");
        let e = error(&GOOD.replace("\"exponential\", mean_s = 120", "\"expo\", mean_s = 120"));
        assert!(e.contains("expo") && e.contains("line 13"), "{e}");
        let e = error(&GOOD.replace("patience = \"none\"", "patience = \"never\""));
        assert!(e.contains("\"none\""), "{e}");
        let e = error(&GOOD.replace("sales = 7", "sales = 11"));
        assert_eq!(e, "`agents[0].skills.sales`: proficiency 11 is outside 1..=10");
        let e = error(&GOOD.replace("chat = 1, whatsapp", "chat = -1, whatsapp"));
        assert!(e.starts_with("`agents[0].capacity.chat`"), "{e}");
        let e = error(&GOOD.replace("interval_s = 900", "interval_s = 600"));
        assert!(e.starts_with("`interval_s`"), "{e}");
        let e = error(&GOOD.replace("profile = [10, 20, 30]", "rate_per_hour = 5\nprofile = [1]"));
        assert!(e.starts_with("`arrivals[1].rate_per_hour`"), "{e}");
        let e = error(&GOOD.replace("strategy = \"longest_idle\"", "strategy = \"fastest\""));
        assert!(e.contains("fastest"), "{e}");
        let e = error(&GOOD.replace("language = \"en\"", "language = \"english\""));
        assert!(e.starts_with("`arrivals[1].language`"), "{e}");
    }
}
