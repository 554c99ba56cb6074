//! `loket score`: JSONL in, JSONL out; one output line per input line.

use std::collections::HashMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use loket_intent::{ConversationScore, Model, Scratch};
use serde::Deserialize;
use serde_json::json;

/// Score messages for intent, buying intent, handoff signals and the
/// hand-off judgement.
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// Model file (default: the built-in Dutch/English shop model).
    #[arg(long)]
    model: Option<PathBuf>,
    /// JSONL input, one `{"text": ..., "conversation_id": ..., "timestamp_ms": ...}`
    /// per line (`conversation_id` and `timestamp_ms` optional); `-` for stdin.
    #[arg(long)]
    input: PathBuf,
}

#[derive(Deserialize)]
struct Line {
    text: String,
    #[serde(default)]
    conversation_id: Option<ConversationId>,
    #[serde(default)]
    timestamp_ms: Option<u64>,
}

/// Conversation ids may be strings or numbers.
#[derive(Deserialize)]
#[serde(untagged)]
enum ConversationId {
    Text(String),
    Number(serde_json::Number),
}

impl ConversationId {
    fn key(&self) -> String {
        match self {
            ConversationId::Text(s) => s.clone(),
            ConversationId::Number(n) => n.to_string(),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            ConversationId::Text(s) => json!(s),
            ConversationId::Number(n) => json!(n),
        }
    }
}

/// Runs `loket score`.
pub fn run(args: ScoreArgs) -> anyhow::Result<()> {
    let owned;
    let model: &Model = match &args.model {
        Some(path) => {
            owned = Model::open(path)?;
            &owned
        }
        None => Model::builtin(),
    };
    let input: Box<dyn BufRead> = if args.input.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(&args.input)
            .with_context(|| format!("cannot open {}", args.input.display()))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut scratch = Scratch::new();
    let mut conversations: HashMap<String, ConversationScore> = HashMap::new();
    // Lines without a timestamp happen at the time of the latest one seen.
    let mut clock_ms = 0u64;
    for (index, line) in input.lines().enumerate() {
        let line_no = index + 1;
        let line = line
            .with_context(|| format!("cannot read line {line_no} of {}", args.input.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = match serde_json::from_str(&line) {
            Ok(p) => p,
            Err(e) => {
                writeln!(
                    out,
                    "{}",
                    json!({"line": line_no, "error": format!("line {line_no}: {e}")})
                )?;
                continue;
            }
        };
        if let Some(t) = parsed.timestamp_ms {
            clock_ms = clock_ms.max(t);
        }
        let now = parsed.timestamp_ms.unwrap_or(clock_ms);
        let (score, handoff) = model.score_explained(&parsed.text, &mut scratch);
        let mut obj = json!({
            "line": line_no,
            "intent": model.label(score.intent),
            "confidence": round(score.confidence),
            "buying_intent": round(score.buying_intent),
            "language": score.language.code(),
            "signals": score.signals.names().collect::<Vec<_>>(),
        });
        if model.has_handoff_head() {
            obj["handoff"] = json!({
                "kind": handoff.kind.name(),
                "p": round(handoff.p),
                "words": handoff.words.iter().collect::<Vec<_>>(),
            });
        }
        if let Some(id) = &parsed.conversation_id {
            let conv = conversations.entry(id.key()).or_default();
            conv.update(score.buying_intent, now);
            obj["conversation_id"] = id.json();
            obj["conversation_score"] = json!(round(conv.value_at(now)));
        }
        writeln!(out, "{obj}")?;
    }
    out.flush()?;
    Ok(())
}

fn round(x: f32) -> f64 {
    (f64::from(x) * 10_000.0).round() / 10_000.0
}
