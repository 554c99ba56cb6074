//! `loket report`: replay agents and events on a virtual clock, measuring
//! reply times, SLAs and conversions, and print the report for the time the
//! events cover.

pub(crate) mod html;

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use loket_replay::{DEFAULT_MAX_LINE, Dimension, Interval, Query, Replayer};

use crate::route::{Inputs, count, replay};

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Agents, one JSON object a line (`-` for standard input).
    #[arg(long)]
    agents: PathBuf,
    /// Timestamped events, one JSON object a line (`-` for standard input):
    /// messages, closes, replies and orders among them.
    #[arg(long)]
    events: PathBuf,
    /// Routing policy as JSON, with SLA targets and the other measuring
    /// settings under `reports` (docs/reports.md).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Length of each row's interval: 15m, 1h or 1d.
    #[arg(long, default_value = "1h")]
    interval: Interval,
    /// Group rows by these, each on its own: channel, skill (the queue),
    /// team, agent, language, intent, buying_intent, tier. Left out: totals
    /// only.
    #[arg(long, value_delimiter = ',')]
    group_by: Vec<Dimension>,
    /// json (one line: `{"intervals": [...], "groups": [...], "totals": {...}}`),
    /// csv, or html (one self-contained page with charts).
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Write the report here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Longest accepted input line, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_LINE)]
    max_line_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Json,
    Csv,
    Html,
}

/// Runs `loket report`. Bad lines are reported on standard error and
/// skipped; when any line was rejected the report is still written, then
/// the exit status is 1.
pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let (routing, measuring) = crate::policy::load(args.config.as_deref())?;
    let mut replayer = Replayer::new(routing).context("building the router")?;
    replayer.measure(measuring)?;
    let files =
        Inputs { agents: &args.agents, events: &args.events, max_line_bytes: args.max_line_bytes };
    replay(&mut replayer, &files, "loket report", |replayer, decisions| {
        decisions.clear();
        replayer.take_sla_records();
        Ok(())
    })?;
    let summary = replayer.summary();
    replayer.finish_measuring(summary.lines);
    let Some((first, last)) = replayer.span() else {
        anyhow::bail!("{} holds no events: nothing to report", args.events.display());
    };
    let query = Query {
        from: first,
        to: last.saturating_add(1),
        interval: args.interval,
        group_by: args.group_by.clone(),
    };
    let report =
        replayer.report(&query).context("measuring is on")?.context("making the report")?;
    let text = match args.format {
        Format::Json => report.to_json() + "\n",
        Format::Csv => report.to_csv(),
        Format::Html => {
            let over_time = Query { group_by: Vec::new(), ..query.clone() };
            let by_group =
                Query { group_by: vec![Dimension::Channel, Dimension::Agent], ..query.clone() };
            let made = |query: &Query| {
                replayer.report(query).context("measuring is on")?.context("making the report")
            };
            html::page(&html::Sources {
                asked: &report,
                over_time: &made(&over_time)?,
                by_group: &made(&by_group)?,
            })?
        }
    };
    let sink = crate::files::create(args.out.as_deref().unwrap_or(Path::new("-")))?;
    let mut out = BufWriter::new(sink);
    out.write_all(text.as_bytes())?;
    out.flush()?;
    eprintln!(
        "loket report: {}, {}, {}, {}, {}; {} intervals",
        count(summary.lines, "line"),
        count(summary.messages, "message"),
        if summary.replies == 1 {
            "1 reply".to_owned()
        } else {
            format!("{} replies", summary.replies)
        },
        count(summary.orders, "order"),
        count(summary.errors, "error"),
        report.intervals.len()
    );
    if summary.errors > 0 {
        anyhow::bail!("{} rejected (see above)", count(summary.errors, "input line"));
    }
    Ok(())
}
