//! `loket route`: replay agents and a timestamped event stream on a virtual
//! clock; one decision per line, then a summary line.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
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
    /// Routing policy as JSON (see the README); defaults apply where left out.
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

fn open(path: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    if path == Path::new("-") {
        return Ok(Box::new(BufReader::new(io::stdin().lock())));
    }
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
}

pub fn run(args: RouteArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !(args.agents == Path::new("-") && args.events == Path::new("-")),
        "only one of --agents and --events can read standard input"
    );
    let config: RouterConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => RouterConfig::default(),
    };
    let mut replayer = Replayer::new(config).context("building the router")?;
    let sink: Box<dyn Write> = match &args.out {
        Some(path) => {
            Box::new(File::create(path).with_context(|| format!("creating {}", path.display()))?)
        }
        None => Box::new(io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 16, sink);
    let started = Instant::now();
    let mut decisions: Vec<DecisionRecord> = Vec::new();

    for (path, is_agents) in [(&args.agents, true), (&args.events, false)] {
        let name = path.display().to_string();
        let mut lines = BoundedLines::new(open(path)?, args.max_line_bytes);
        while let Some((number, line)) =
            lines.next_line().with_context(|| format!("reading {name}"))?
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
        }
    }
    let summary = replayer.summary();
    let line =
        SummaryLine { kind: "summary", summary: &summary, wall_ms: started.elapsed().as_millis() };
    serde_json::to_writer(&mut out, &line)?;
    out.write_all(b"\n")?;
    out.flush()?;
    eprintln!(
        "loket route: {} lines, {} messages, {} decisions, {} errors; {} conversations open, {} queued",
        summary.lines,
        summary.messages,
        summary.decisions,
        summary.errors,
        summary.open_conversations,
        summary.queued
    );
    Ok(())
}
