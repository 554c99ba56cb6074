//! `loket erlang c|a`: the exact Erlang C and Erlang A calculator.

use loket_sim::erlang::{erlang_a, erlang_c};
use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct ErlangArgs {
    /// c: Erlang C (M/M/n, nobody leaves); a: Erlang A (M/M/n+M,
    /// exponential patience; Garnett, Mandelbaum and Reiman 2002).
    #[arg(value_enum)]
    model: Model,
    /// Arrivals per hour.
    #[arg(long)]
    rate: f64,
    /// Mean handle time, seconds.
    #[arg(long)]
    handle_s: f64,
    /// Mean patience, seconds (Erlang A only).
    #[arg(long)]
    patience_s: Option<f64>,
    /// Agents.
    #[arg(long)]
    agents: u32,
    /// Service-level target, seconds.
    #[arg(long)]
    target_s: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Model {
    C,
    A,
}

#[derive(Debug, Serialize)]
struct Line {
    model: Model,
    rate_per_hour: f64,
    handle_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    patience_s: Option<f64>,
    agents: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_s: Option<f64>,
    #[serde(flatten)]
    answer: loket_sim::erlang::Erlang,
}

/// Runs `loket erlang`: one JSON line.
pub fn run(args: ErlangArgs) -> anyhow::Result<()> {
    let answer = match args.model {
        Model::C => {
            anyhow::ensure!(
                args.patience_s.is_none(),
                "--patience-s is for Erlang A (`loket erlang a`); Erlang C has no abandonment"
            );
            erlang_c(args.rate, args.handle_s, args.agents, args.target_s)?
        }
        Model::A => {
            let patience = args
                .patience_s
                .ok_or_else(|| anyhow::anyhow!("Erlang A needs --patience-s (mean patience)"))?;
            erlang_a(args.rate, args.handle_s, patience, args.agents, args.target_s)?
        }
    };
    let line = Line {
        model: args.model,
        rate_per_hour: args.rate,
        handle_s: args.handle_s,
        patience_s: args.patience_s,
        agents: args.agents,
        target_s: args.target_s,
        answer,
    };
    println!("{}", serde_json::to_string(&line)?);
    Ok(())
}
