//! `loket simulate`: run a scenario on the real router on a virtual clock,
//! in independent replications, and print the measures with their 95%
//! intervals (JSON) or the report page of `loket report` (HTML).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use loket_sim::{Options, RunOptions, Scenario, Summary};

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
    let done = match args.threads {
        None => loket_sim::run(&scenario, &options)?,
        Some(threads) => rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .context("starting the worker threads")?
            .install(|| loket_sim::run(&scenario, &options))?,
    };
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
