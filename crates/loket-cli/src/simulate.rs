//! `loket simulate`: run a scenario on the real router on a virtual clock,
//! in independent replications, and print the measures with their 95%
//! intervals (JSON) or the report page of `loket report` (HTML).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use loket_sim::{Estimate, Options, RunOptions, Scenario, Summary};

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
