//! `loket simulate`: run a scenario on the real router on a virtual clock,
//! in independent replications, and print the measures with their 95%
//! intervals (JSON) or the report page of `loket report` (HTML).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use loket_sim::{
    Estimate, Options, RunOptions, Scenario, Staffing, StaffingOptions, StaffingTarget, Summary,
    time_of_day,
};

use crate::report::html;

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// The scenario (TOML; docs/simulate.md).
    #[arg(long)]
    scenario: PathBuf,
    /// The run's seed: the same seed gives the same output, whatever the threads.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Independent replications (each its own seed, derived from --seed and its index).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    replications: u32,
    /// json (one line with the measures and their 95% intervals) or html
    /// (the report page of `loket report`, for the first replication).
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Write the result here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Routing policies (JSON, as for `loket route --config`) to compare on
    /// the same arrivals (common random numbers): a side-by-side table,
    /// the differences from the first with their 95% intervals (paired by
    /// replication), then one JSON line.
    #[arg(long, num_args = 1.., value_name = "CONFIG")]
    compare: Vec<PathBuf>,
    /// Skip the meter: only the simulator's own counts (`direct`,
    /// occupancy). For speed figures; the meter's measures are null.
    #[arg(long)]
    no_meter: bool,
    /// Staffing: per report interval of the day, the fewest people per
    /// agent group that meet this target (`sl=0.8@20s`: 80% of every
    /// stream's arrivals given to an agent within 20 s; also `sl=80%@20s`,
    /// `@2m`), found by simulation from Erlang C's guess. A table, then one
    /// JSON line with `staffing` (json), or a page with the table (html).
    #[arg(long, value_name = "TARGET", value_parser = parse_target)]
    staffing: Option<StaffingTarget>,
    /// With --staffing: the most people per group the search may try
    /// (default: twice Erlang C's guess plus 10).
    #[arg(long, value_name = "N", requires = "staffing")]
    staffing_max_agents: Option<u32>,
}

fn parse_target(text: &str) -> Result<StaffingTarget, String> {
    text.parse::<StaffingTarget>().map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Json,
    Html,
}

/// Runs `loket simulate`.
pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let text = crate::files::read_to_string(&args.scenario)?;
    let scenario = Scenario::from_toml(&text)
        .with_context(|| format!("{} is not a usable scenario", args.scenario.display()))?;
    anyhow::ensure!(
        !(args.no_meter && args.format == Format::Html),
        "--format html needs the meter: leave out --no-meter"
    );
    let options = RunOptions {
        seed: args.seed,
        replications: args.replications,
        options: Options { meter: !args.no_meter, pages: args.format == Format::Html },
    };
    let pool = match args.threads {
        None => None,
        Some(threads) => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .context("starting the worker threads")?,
        ),
    };
    let simulate = |scenario: &Scenario| match &pool {
        None => loket_sim::run(scenario, &options),
        Some(pool) => pool.install(|| loket_sim::run(scenario, &options)),
    };
    if let Some(target) = args.staffing {
        anyhow::ensure!(args.compare.is_empty(), "--staffing and --compare are separate runs");
        let options = StaffingOptions {
            seed: args.seed,
            replications: args.replications,
            target,
            max_agents: args.staffing_max_agents,
            arrivals_per_replication: StaffingOptions::ARRIVALS_PER_REPLICATION,
        };
        let started = std::time::Instant::now();
        let found = match &pool {
            None => loket_sim::staffing(&scenario, &options),
            Some(pool) => pool.install(|| loket_sim::staffing(&scenario, &options)),
        }?;
        return write_staffing(&found, &args, started.elapsed());
    }
    if !args.compare.is_empty() {
        anyhow::ensure!(!args.no_meter, "--compare needs the meter: leave out --no-meter");
        anyhow::ensure!(args.format == Format::Json, "--compare writes JSON");
        let mut runs = Vec::new();
        for path in &args.compare {
            let (routing, _) = crate::policy::load(Some(path))?;
            let variant = Scenario { router: routing, ..scenario.clone() };
            runs.push((path.display().to_string(), simulate(&variant)?));
        }
        return compare(&runs, &args);
    }
    let done = simulate(&scenario)?;
    let summary = Summary::new(&done, args.seed);
    let text = match args.format {
        Format::Json => serde_json::to_string(&summary)? + "\n",
        Format::Html => {
            let (over_time, by_group) =
                done.outcomes[0].pages.as_ref().context("the first replication's report")?;
            html::page(&html::Sources { asked: over_time, over_time, by_group })?
        }
    };
    let sink = crate::files::create(args.out.as_deref().unwrap_or(Path::new("-")))?;
    let mut out = BufWriter::new(sink);
    out.write_all(text.as_bytes())?;
    out.flush()?;
    let show =
        |v: Option<f64>, scale: f64| v.map_or("-".to_owned(), |v| format!("{:.1}", v * scale));
    eprintln!(
        "loket simulate: {} replications, {} conversations in {:.2} s ({:.0}/s); service level {}%, abandoned {}%, occupancy {}%",
        summary.replications,
        summary.conversations,
        summary.wall_ms as f64 / 1000.0,
        summary.sim_conversations_per_sec,
        show(summary.service_level.or(summary.direct.service_level.mean), 100.0),
        show(summary.abandon_rate.or(summary.direct.abandon_rate.mean), 100.0),
        show(summary.occupancy, 100.0),
    );
    Ok(())
}

/// The measures `--compare` puts side by side, per replication.
const COMPARED: [(&str, Measure); 6] = [
    ("service_level", |t| t.service_level),
    ("wait_ms_avg", |t| t.wait_ms.avg),
    ("abandon_rate", |t| (t.offered > 0).then(|| t.abandoned as f64 / t.offered as f64)),
    ("first_response_ms_p90", |t| t.first_response_ms.p90.map(|v| v as f64)),
    ("conversion_rate", |t| t.conversion_rate),
    ("revenue", |t| Some(t.revenue.values().sum())),
];

type Measure = fn(&loket_report::MeasuresReport) -> Option<f64>;

#[derive(Debug, serde::Serialize)]
struct Compared {
    config: String,
    measures: std::collections::BTreeMap<&'static str, Estimate>,
    /// This policy minus the first, paired by replication (the same
    /// arrivals); `null` for the first.
    difference: Option<std::collections::BTreeMap<&'static str, Estimate>>,
}

/// Writes the side-by-side table and the JSON line of `--compare`.
fn compare(runs: &[(String, loket_sim::Run)], args: &SimulateArgs) -> anyhow::Result<()> {
    let value = |run: &loket_sim::Run, i: usize, measure: Measure| {
        run.outcomes[i].report.as_ref().and_then(|r| measure(&r.totals))
    };
    let first = &runs[0].1;
    let mut rows = Vec::new();
    for (k, (name, run)) in runs.iter().enumerate() {
        let mut measures = std::collections::BTreeMap::new();
        let mut difference = std::collections::BTreeMap::new();
        for (label, measure) in COMPARED {
            measures.insert(
                label,
                Estimate::of((0..run.outcomes.len()).map(|i| value(run, i, measure))),
            );
            let paired = (0..run.outcomes.len())
                .map(|i| Some(value(run, i, measure)? - value(first, i, measure)?));
            difference.insert(label, Estimate::of(paired));
        }
        rows.push(Compared {
            config: name.clone(),
            measures,
            difference: (k > 0).then_some(difference),
        });
    }
    let sink = crate::files::create(args.out.as_deref().unwrap_or(Path::new("-")))?;
    let mut out = BufWriter::new(sink);
    let cell = |e: &Estimate| match (e.mean, e.ci95) {
        (Some(m), Some([lo, hi])) => format!("{m:.4} [{lo:.4}, {hi:.4}]"),
        (Some(m), None) => format!("{m:.4}"),
        _ => "-".to_owned(),
    };
    for row in &rows {
        writeln!(out, "# {}", row.config)?;
        for (label, _) in COMPARED {
            let diff = row.difference.as_ref().map(|d| cell(&d[label])).unwrap_or_default();
            let diff =
                if diff.is_empty() { String::new() } else { format!("   difference {diff}") };
            writeln!(out, "#   {label:<22} {}{diff}", cell(&row.measures[label]))?;
        }
    }
    let line = serde_json::json!({
        "seed": args.seed,
        "replications": args.replications,
        "compare": rows,
    });
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// Writes `--staffing`'s answer: the table and the JSON line, or the page.
fn write_staffing(
    found: &Staffing,
    args: &SimulateArgs,
    wall: std::time::Duration,
) -> anyhow::Result<()> {
    let target = found.target;
    let heading = format!(
        "Staffing for {:.1}% of every stream answered within {} s: {} replications per count, seed {}",
        target.service_level * 100.0,
        target.within_ms as f64 / 1000.0,
        args.replications,
        args.seed
    );
    let groups: Vec<&str> = found
        .intervals
        .first()
        .map(|i| i.groups.iter().map(|g| g.group.as_str()).collect())
        .unwrap_or_default();
    let level = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{:.1}%", v * 100.0));
    let agents = |g: &loket_sim::GroupStaffing| match g.erlang_c_guess {
        Some(guess) => format!("{} ({guess})", g.agents),
        None => format!("{} bot", g.agents),
    };
    let sink = crate::files::create(args.out.as_deref().unwrap_or(Path::new("-")))?;
    let mut out = BufWriter::new(sink);
    match args.format {
        Format::Json => {
            writeln!(out, "# {heading}")?;
            writeln!(out, "# people per group, Erlang C's guess in brackets")?;
            let mut header = format!("# {:<5} {:>10}", "from", "arrivals/h");
            for name in &groups {
                header += &format!(" {name:>14}");
            }
            writeln!(
                out,
                "{header} {:>13} {:>12} {:>9}",
                "service level", "lowest stream", "occupancy"
            )?;
            for i in &found.intervals {
                let mut line = format!("# {:<5} {:>10.1}", time_of_day(i.from_s), i.rate_per_hour);
                for g in &i.groups {
                    line += &format!(" {:>14}", agents(g));
                }
                writeln!(
                    out,
                    "{line} {:>13} {:>12} {:>9}",
                    level(i.service_level.mean),
                    level(i.lowest_stream_service_level),
                    level(i.occupancy.mean)
                )?;
            }
            let rows: Vec<serde_json::Value> = found
                .intervals
                .iter()
                .flat_map(|i| {
                    i.groups.iter().map(move |g| {
                        serde_json::json!({
                            "from": time_of_day(i.from_s),
                            "from_s": i.from_s,
                            "group": g.group,
                            "bot": g.bot,
                            "agents": g.agents,
                            "erlang_c_guess": g.erlang_c_guess,
                            "rate_per_hour": i.rate_per_hour,
                            "service_level": i.service_level.mean,
                            "service_level_ci95": i.service_level.ci95,
                            "lowest_stream_service_level": i.lowest_stream_service_level,
                            "occupancy": i.occupancy.mean,
                        })
                    })
                })
                .collect();
            let line = serde_json::json!({
                "seed": args.seed,
                "replications": args.replications,
                "target": {
                    "service_level": target.service_level,
                    "within_s": target.within_ms as f64 / 1000.0,
                },
                "staffing": rows,
                "counts_tried": found.counts_tried,
                "conversations": found.conversations,
                "wall_ms": wall.as_millis() as u64,
            });
            writeln!(out, "{line}")?;
        }
        Format::Html => {
            let escape = |t: &str| {
                t.replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
                    .replace('"', "&quot;")
            };
            let mut page = String::from(
                "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>loket simulate: staffing</title>\n<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse}th,td{padding:.25rem .6rem;text-align:right;border-bottom:1px solid #ddd}th:first-child,td:first-child{text-align:left}small{color:#666}</style></head><body>\n",
            );
            page += &format!("<h1>Staffing</h1>\n<p>{}</p>\n", escape(&heading));
            page += "<p><small>People per group for each interval of the day, Erlang C&rsquo;s guess in brackets; the service level is of all arrivals at that staffing, the lowest stream&rsquo;s is the one the target is met on.</small></p>\n<table>\n<thead><tr><th>from</th><th>arrivals/h</th>";
            for name in &groups {
                page += &format!("<th>{}</th>", escape(name));
            }
            page += "<th>service level</th><th>lowest stream</th><th>occupancy</th></tr></thead>\n<tbody>\n";
            for i in &found.intervals {
                page += &format!(
                    "<tr><td>{}</td><td>{:.1}</td>",
                    time_of_day(i.from_s),
                    i.rate_per_hour
                );
                for g in &i.groups {
                    page += &format!("<td>{}</td>", escape(&agents(g)));
                }
                page += &format!(
                    "<td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    level(i.service_level.mean),
                    level(i.lowest_stream_service_level),
                    level(i.occupancy.mean)
                );
            }
            page += "</tbody></table>\n</body></html>\n";
            out.write_all(page.as_bytes())?;
        }
    }
    out.flush()?;
    eprintln!(
        "loket simulate --staffing: {} intervals, {} counts tried, {} conversations in {:.2} s",
        found.intervals.len(),
        found.counts_tried,
        found.conversations,
        wall.as_secs_f64()
    );
    Ok(())
}
