//! `loket`: the command-line face of Loket.
//!
//! With no arguments it runs the routing demo on embedded defaults. Every
//! subcommand lives in a module of its own; this file only parses arguments and
//! dispatches.

#![forbid(unsafe_code)]

// mimalloc: routing allocates little, but the demo, the replay and the
// benchmarks churn many small JSON buffers and strings, where mimalloc is
// measurably faster than the system allocator. Libraries never choose one.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench_route;
mod bench_search;
mod catalog;
mod demo;
mod erlang;
mod files;
mod intent;
mod load;
mod policy;
mod report;
mod route;
mod score;
mod simulate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Conversation routing, buying-intent scoring and stock lookup.
#[derive(Debug, Parser)]
#[command(name = "loket", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Stream generated Dutch and English traffic through the router and print
    /// decisions and throughput (the default when no command is given).
    Demo(demo::DemoArgs),
    /// Replay a timestamped event stream on a virtual clock; one decision per line.
    Route(route::RouteArgs),
    /// Replay an event stream and report reply times, SLAs and conversions
    /// per interval and group (JSON, CSV or an HTML page with charts).
    Report(report::ReportArgs),
    /// Benchmarks: routing and catalog search.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Train and evaluate intent models.
    #[command(subcommand)]
    Intent(intent::IntentCommand),
    /// Score messages for intent, buying intent and handoff signals (JSONL in, JSONL out).
    Score(score::ScoreArgs),
    /// Product catalog: search by typo, synonym, Dutch compound or Latin name.
    #[command(subcommand)]
    Catalog(catalog::CatalogCommand),
    /// Open-loop load generator for loketd (HTTP or the binary protocol);
    /// the last stdout line is a JSON summary.
    Load(load::LoadArgs),
    /// Simulate a day (or a month) of traffic on the real router on a
    /// virtual clock: measures with 95% intervals, or the report page.
    Simulate(simulate::SimulateArgs),
    /// Erlang C and Erlang A, exact: waiting, abandonment, service level.
    Erlang(erlang::ErlangArgs),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Route generated traffic through the router and report throughput and latency.
    Route(bench_route::BenchRouteArgs),
    /// Search a generated catalog of 100,000 products and report latency.
    Search(bench_search::BenchSearchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => demo::run(demo::DemoArgs::default()),
        Some(Command::Demo(args)) => demo::run(args),
        Some(Command::Route(args)) => route::run(args),
        Some(Command::Report(args)) => report::run(args),
        Some(Command::Bench(BenchCommand::Route(args))) => bench_route::run(args),
        Some(Command::Bench(BenchCommand::Search(args))) => bench_search::run(args),
        Some(Command::Intent(command)) => intent::run(command),
        Some(Command::Score(args)) => score::run(args),
        Some(Command::Catalog(command)) => catalog::run(command),
        Some(Command::Load(args)) => load::run(args),
        Some(Command::Simulate(args)) => simulate::run(args),
        Some(Command::Erlang(args)) => erlang::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // A closed pipe (`loket route ... | head`) is not an error worth reporting.
            if let Some(io) = error.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::BrokenPipe
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("loket: {error:#}");
            ExitCode::FAILURE
        }
    }
}
