//! `loket route`: replay agents and a timestamped event stream on a virtual
//! clock; one decision per line, then a summary line.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use loket_replay::{BoundedLines, DEFAULT_MAX_LINE, DecisionRecord, Line, Replayer};
use loket_router::RouterConfig;
use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct RouteArgs {
    /// Agents, one JSON object a line (`-` for standard input).
    #[arg(long)]
    agents: PathBuf,
    /// Timestamped events, one JSON object a line (`-` for standard input).
    #[arg(long)]
    events: PathBuf,
    /// Routing policy as JSON (see docs/formats.md); defaults apply where left out.
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
    anyhow::ensure!(
        !(args.agents == Path::new("-") && args.events == Path::new("-")),
        "only one of --agents and --events can read standard input"
    );
    let config: RouterConfig = match &args.config {
        Some(path) => {
            let text = crate::files::read_to_string(path)?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a routing policy", path.display()))?
        }
        None => RouterConfig::default(),
    };
    let mut replayer = Replayer::new(config).context("building the router")?;
    let sink = crate::files::create(args.out.as_deref().unwrap_or(Path::new("-")))?;
    let mut out = BufWriter::with_capacity(1 << 16, sink);
    let started = Instant::now();
    let mut decisions: Vec<DecisionRecord> = Vec::new();

    for (path, is_agents) in [(&args.agents, true), (&args.events, false)] {
        let name = path.display().to_string();
        let mut lines = BoundedLines::new(crate::files::open(path)?, args.max_line_bytes);
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
                        args.max_line_bytes
                    ),
                )),
            };
            // Whatever was decided before an error is written, never lost.
            for record in decisions.drain(..) {
                serde_json::to_writer(&mut out, &record)?;
                out.write_all(b"\n")?;
            }
            if let Err(error) = result {
                eprintln!("loket route: {name}: {error}");
            }
            for warning in replayer.take_warnings() {
                eprintln!("loket route: {name}: {warning}");
            }
        }
    }
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

/// `1 line`, `2 lines`.
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}
