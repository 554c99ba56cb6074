//! `loket catalog`: search a product catalog, and measure search quality.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use loket_catalog::eval::{self, EvalReport};
use loket_catalog::{Catalog, CatalogBuilder, Hit, ImportReport, NameDictionary, Synonyms};
use serde::Serialize;

/// The most hits one search returns (as loketd's `limit`).
const MAX_LIMIT: usize = 100;

#[derive(Debug, clap::Subcommand)]
pub enum CatalogCommand {
    /// Search a catalog: one JSON line per query on stdout.
    Search(SearchArgs),
    /// Measure hit@1 on a labelled query file (tab-separated: query, sku[|sku], kind).
    Eval(EvalArgs),
}

/// Where the catalog comes from and how it is analysed.
#[derive(Debug, clap::Args)]
pub struct CatalogSource {
    /// Catalog file: CSV with a header (sku,name,latin_name,aliases,category,stock,price),
    /// or JSON Lines when the name ends in .jsonl or .ndjson.
    #[arg(long, value_name = "FILE")]
    catalog: PathBuf,
    /// Solr-format synonyms file.
    #[arg(long, value_name = "FILE")]
    synonyms: Option<PathBuf>,
    /// Extra common names (tab-separated: name, Latin name), added to or overriding the built-in ones.
    #[arg(long, value_name = "FILE")]
    names: Option<PathBuf>,
    /// Do not use the built-in Dutch and English plant names.
    #[arg(long)]
    no_builtin_names: bool,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["query", "queries"])))]
pub struct SearchArgs {
    #[command(flatten)]
    source: CatalogSource,
    /// Hits per query.
    #[arg(long, default_value_t = 5, value_name = "N")]
    limit: usize,
    /// One query (a product name, a Latin name or a whole chat message).
    #[arg(long, value_name = "Q")]
    query: Option<String>,
    /// A file of queries, one per line (text after a tab is ignored, `#` lines skipped).
    #[arg(long, value_name = "FILE")]
    queries: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("set").required(true).args(["catalog", "shops"])))]
pub struct EvalArgs {
    /// Catalog file, as for `search` (with --queries).
    #[arg(long, value_name = "FILE", requires = "queries")]
    catalog: Option<PathBuf>,
    /// Solr-format synonyms file.
    #[arg(long, value_name = "FILE", conflicts_with = "shops")]
    synonyms: Option<PathBuf>,
    /// Extra common names (tab-separated: name, Latin name), added to or overriding the built-in ones.
    #[arg(long, value_name = "FILE")]
    names: Option<PathBuf>,
    /// Do not use the built-in Dutch and English plant names.
    #[arg(long)]
    no_builtin_names: bool,
    /// Labelled queries, tab-separated: query, expected sku[|sku], kind.
    #[arg(long, value_name = "FILE", conflicts_with = "shops")]
    queries: Option<PathBuf>,
    /// A directory of shops, evaluated each and all together: per shop NAME.csv,
    /// NAME_queries.tsv and, when present, NAME_synonyms.txt.
    #[arg(long, value_name = "DIR", conflicts_with = "catalog")]
    shops: Option<PathBuf>,
    /// With --shops: the held-out queries (DIR/heldout/NAME.tsv) instead of NAME_queries.tsv.
    #[arg(long, requires = "shops")]
    heldout: bool,
    /// With --shops: the held-out queries from DIR/SUBDIR/NAME.tsv instead (implies --heldout).
    #[arg(long, value_name = "SUBDIR", requires = "shops")]
    heldout_dir: Option<PathBuf>,
    /// With --shops: leave the shops' synonyms files out.
    #[arg(long, requires = "shops")]
    no_synonyms: bool,
    /// Print every miss.
    #[arg(long)]
    misses: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(command: CatalogCommand) -> anyhow::Result<()> {
    match command {
        CatalogCommand::Search(args) => search(args),
        CatalogCommand::Eval(args) => evaluate(args),
    }
}

fn read_to_string(path: &Path) -> anyhow::Result<String> {
    crate::files::read_to_string(path)
}

/// Builds the catalog; bad rows are reported on stderr and skipped.
fn load(source: &CatalogSource) -> anyhow::Result<Catalog> {
    let mut builder: CatalogBuilder = Catalog::builder();
    let mut names =
        if source.no_builtin_names { NameDictionary::empty() } else { NameDictionary::builtin() };
    if let Some(path) = &source.names {
        names
            .extend_from_tsv(&read_to_string(path)?)
            .with_context(|| format!("in {}", path.display()))?;
    }
    builder = builder.names(names);
    if let Some(path) = &source.synonyms {
        let synonyms = Synonyms::parse(&read_to_string(path)?)
            .with_context(|| format!("in {}", path.display()))?;
        builder = builder.synonyms(synonyms);
    }
    let path = &source.catalog;
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let jsonl = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("ndjson"));
    let (catalog, report) = if jsonl {
        builder.from_jsonl_reader(BufReader::new(file))
    } else {
        builder.from_csv_reader(BufReader::new(file))
    }
    .with_context(|| format!("importing {}", path.display()))?;
    report_import(path, &report);
    Ok(catalog)
}

fn report_import(path: &Path, report: &ImportReport) {
    for error in &report.errors {
        eprintln!("loket: {}: {error}", path.display());
    }
    if report.rejected > 0 {
        eprintln!("loket: {}: {report}", path.display());
    }
}

/// One query's results: the shape loketd's `GET /v1/catalog/search` answers.
#[derive(Serialize)]
struct SearchLine<'a> {
    query: &'a str,
    hits: &'a [Hit],
}

fn search(args: SearchArgs) -> anyhow::Result<()> {
    if !(1..=MAX_LIMIT).contains(&args.limit) {
        bail!("--limit must be 1 to {MAX_LIMIT}, not {}", args.limit);
    }
    let catalog = load(&args.source)?;
    let queries: Vec<String> = match (&args.query, &args.queries) {
        (Some(q), _) => vec![q.clone()],
        (None, Some(path)) => read_to_string(path)?
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| l.split('\t').next().unwrap_or("").to_owned())
            .collect(),
        (None, None) => bail!("give --query or --queries"),
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut hits: Vec<Hit> = Vec::with_capacity(args.limit);
    for query in &queries {
        catalog.search_into(query, args.limit, &mut hits)?;
        let line = SearchLine { query, hits: &hits };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

fn evaluate(args: EvalArgs) -> anyhow::Result<()> {
    let source = |catalog: PathBuf, synonyms: Option<PathBuf>| CatalogSource {
        catalog,
        synonyms,
        names: args.names.clone(),
        no_builtin_names: args.no_builtin_names,
    };
    let mut sets: Vec<(String, CatalogSource, PathBuf)> = Vec::new();
    match (&args.catalog, &args.queries, &args.shops) {
        (Some(catalog), Some(queries), None) => sets.push((
            String::new(),
            source(catalog.clone(), args.synonyms.clone()),
            queries.clone(),
        )),
        (None, None, Some(dir)) => {
            let heldout = match (&args.heldout_dir, args.heldout) {
                (Some(sub), _) => Some(dir.join(sub)),
                (None, true) => Some(dir.join("heldout")),
                (None, false) => None,
            };
            for shop in shops_in(dir)? {
                let queries = if let Some(heldout) = &heldout {
                    heldout.join(format!("{shop}.tsv"))
                } else {
                    dir.join(format!("{shop}_queries.tsv"))
                };
                if !queries.is_file() {
                    eprintln!("loket: {shop}: no {}, skipped", queries.display());
                    continue;
                }
                let synonyms = dir.join(format!("{shop}_synonyms.txt"));
                let synonyms = (!args.no_synonyms && synonyms.is_file()).then_some(synonyms);
                sets.push((
                    shop.clone(),
                    source(dir.join(format!("{shop}.csv")), synonyms),
                    queries,
                ));
            }
            if sets.is_empty() {
                bail!("{}: no shop with a catalog and a queries file", dir.display());
            }
        }
        _ => bail!("give --catalog and --queries, or --shops"),
    }
    let mut reports: Vec<(String, EvalReport)> = Vec::with_capacity(sets.len());
    for (shop, source, queries) in &sets {
        let catalog = load(source)?;
        let cases = eval::parse_queries(&read_to_string(queries)?)
            .with_context(|| format!("in {}", queries.display()))?;
        reports.push((shop.clone(), eval::evaluate(&catalog, &cases)?));
    }
    let total = combine(reports.iter().map(|(_, r)| r));
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let per_shop = args.shops.is_some();
    if args.json {
        let mut json = report_json(&total);
        if per_shop {
            let shops: serde_json::Map<String, serde_json::Value> =
                reports.iter().map(|(shop, r)| (shop.clone(), report_json(r))).collect();
            json["shops"] = serde_json::Value::Object(shops);
        }
        writeln!(out, "{json}")?;
    } else {
        if per_shop {
            for (shop, report) in &reports {
                let t = report.overall;
                writeln!(out, "{shop:<14} {:.3} ({}/{})", t.hit_at_1(), t.hits, t.total)?;
            }
            writeln!(out, "all shops:")?;
        }
        let t = total.overall;
        writeln!(out, "hit@1 {:.3} ({}/{})", t.hit_at_1(), t.hits, t.total)?;
        for (kind, tally) in &total.by_kind {
            writeln!(out, "  {kind:<12} {:.3} ({}/{})", tally.hit_at_1(), tally.hits, tally.total)?;
        }
    }
    if args.misses {
        for (shop, report) in &reports {
            let at = if shop.is_empty() { String::new() } else { format!("{shop} ") };
            for miss in &report.misses {
                eprintln!(
                    "miss {at}line {}: {:?} expected {} got {}",
                    miss.case.line,
                    miss.case.query,
                    miss.case.expected.join("|"),
                    miss.got.as_deref().unwrap_or("nothing")
                );
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// The shops in `dir`: the names of its `.csv` files, sorted.
fn shops_in(dir: &Path) -> anyhow::Result<Vec<String>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let mut shops = Vec::new();
    for entry in entries {
        let path = entry.with_context(|| format!("reading {}", dir.display()))?.path();
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"))
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            shops.push(stem.to_owned());
        }
    }
    shops.sort_unstable();
    Ok(shops)
}

/// The reports of several query sets as one (misses are left out).
fn combine<'a>(reports: impl Iterator<Item = &'a EvalReport>) -> EvalReport {
    let mut total = EvalReport::default();
    for report in reports {
        total.overall.hits += report.overall.hits;
        total.overall.total += report.overall.total;
        for (kind, tally) in &report.by_kind {
            let sum = total.by_kind.entry(kind.clone()).or_default();
            sum.hits += tally.hits;
            sum.total += tally.total;
        }
    }
    total
}

fn report_json(report: &EvalReport) -> serde_json::Value {
    let by_kind: serde_json::Map<String, serde_json::Value> = report
        .by_kind
        .iter()
        .map(|(k, t)| {
            (
                k.clone(),
                serde_json::json!({"hit_at_1": t.hit_at_1(), "hits": t.hits, "queries": t.total}),
            )
        })
        .collect();
    serde_json::json!({
        "hit_at_1": report.overall.hit_at_1(),
        "hits": report.overall.hits,
        "queries": report.overall.total,
        "by_kind": by_kind,
    })
}
