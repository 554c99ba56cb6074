//! `loket route`: replay agents and a timestamped event stream on a virtual
//! clock; one decision per line, then a summary line.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use loket_replay::{BoundedLines, DEFAULT_MAX_LINE, DecisionRecord, Line, Replayer, SlaRecord};
use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct RouteArgs {
    /// Agents, one JSON object a line (`-` for standard input).
    #[arg(long)]
    agents: PathBuf,
    /// Timestamped events, one JSON object a line (`-` for standard input).
    #[arg(long)]
    events: PathBuf,
    /// Routing policy as JSON (see docs/formats.md), with SLA targets under
    /// `reports` (docs/reports.md); defaults apply where left out.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Write decisions here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Longest accepted input line, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_LINE)]
    max_line_bytes: usize,
}

#[derive(Debug, Serialize)]
struct SummaryLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    summary: &'a loket_replay::Summary,
    wall_ms: u128,
}

/// Runs `loket route`. Bad lines never stop it; when any line was rejected
/// it returns an error (so the exit status is 1) after writing everything
/// else.
pub fn run(args: RouteArgs) -> anyhow::Result<()> {
    let (routing, measuring) = crate::policy::load(args.config.as_deref())?;
    let mut replayer = Replayer::new(routing).context("building the router")?;
    replayer.measure(measuring)?;
    let sink = crate::files::create(args.out.as_deref().unwrap_or(Path::new("-")))?;
    let mut out = BufWriter::with_capacity(1 << 16, sink);
    let started = Instant::now();
    let files =
        Inputs { agents: &args.agents, events: &args.events, max_line_bytes: args.max_line_bytes };
    replay(&mut replayer, &files, "loket route", |replayer, decisions| {
        // Whatever was decided before an error is written, never lost.
        write_in_time_order(&mut out, decisions, replayer.take_sla_records())
    })?;
    let summary = replayer.summary();
    let line =
        SummaryLine { kind: "summary", summary: &summary, wall_ms: started.elapsed().as_millis() };
    serde_json::to_writer(&mut out, &line)?;
    out.write_all(b"\n")?;
    out.flush()?;
    eprintln!(
        "loket route: {}, {}, {}, {}, {}; {} open, {} queued",
        count(summary.lines, "line"),
        count(summary.messages, "message"),
        count(summary.decisions, "decision"),
        count(summary.errors, "error"),
        count(summary.warnings, "warning"),
        count(summary.open_conversations as u64, "conversation"),
        summary.queued
    );
    if summary.errors > 0 {
        anyhow::bail!("{} rejected (see above)", count(summary.errors, "input line"));
    }
    Ok(())
}

/// The files a replay reads.
pub struct Inputs<'a> {
    /// `agents.jsonl` (`-`: standard input).
    pub agents: &'a Path,
    /// `events.jsonl` (`-`: standard input).
    pub events: &'a Path,
    /// Longest accepted line.
    pub max_line_bytes: usize,
}

/// Replays the agents, then the events, into `replayer`; after every line
/// `each` gets the line's decisions (to drain). Bad lines and warnings are
/// written to standard error, prefixed with `command`, and the replay goes
/// on; only reading or `each` failing stops it.
pub fn replay(
    replayer: &mut Replayer,
    files: &Inputs<'_>,
    command: &str,
    mut each: impl FnMut(&mut Replayer, &mut Vec<DecisionRecord>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !(crate::files::is_stdio(files.agents) && crate::files::is_stdio(files.events)),
        "only one of --agents and --events can read standard input"
    );
    let mut decisions: Vec<DecisionRecord> = Vec::new();
    for (path, is_agents) in [(files.agents, true), (files.events, false)] {
        let name = path.display().to_string();
        let mut lines = BoundedLines::new(crate::files::open(path)?, files.max_line_bytes);
        while let Some((number, line)) =
            lines.next_line().with_context(|| format!("cannot read {name}"))?
        {
            let result = match line {
                Line::Text(text) if text.iter().all(u8::is_ascii_whitespace) => continue,
                Line::Text(text) if is_agents => replayer.agent_line(number, text, &mut decisions),
                Line::Text(text) => replayer.event_line(number, text, &mut decisions),
                Line::TooLong(bytes) => Err(replayer.reject(
                    number,
                    format!(
                        "line is {bytes} bytes, longer than --max-line-bytes {}",
                        files.max_line_bytes
                    ),
                )),
            };
            each(replayer, &mut decisions)?;
            if let Err(error) = result {
                eprintln!("{command}: {name}: {error}");
            }
            for warning in replayer.take_warnings() {
                eprintln!("{command}: {name}: {warning}");
            }
        }
    }
    Ok(())
}

/// Writes the line's decisions and SLA records, each list already in time
/// order, merged by time (decisions first among equals).
fn write_in_time_order(
    out: &mut impl Write,
    decisions: &mut Vec<DecisionRecord>,
    sla: Vec<SlaRecord>,
) -> anyhow::Result<()> {
    let mut sla = sla.into_iter().peekable();
    for record in decisions.drain(..) {
        while let Some(early) = sla.next_if(|s| s.at < record.at) {
            serde_json::to_writer(&mut *out, &early)?;
            out.write_all(b"\n")?;
        }
        serde_json::to_writer(&mut *out, &record)?;
        out.write_all(b"\n")?;
    }
    for late in sla {
        serde_json::to_writer(&mut *out, &late)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// `1 line`, `2 lines`.
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}
