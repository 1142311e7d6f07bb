//! `adstream replay PIPELINE --input recorded.jsonl [--swap STAGE=NEW.wasm]`: runs a
//! pipeline over recorded events with every sink written to a file and no checkpoint,
//! time taken from the events alone; with `--swap`, runs it again with the new version of
//! a stage (or its new `--config`) and reports what would change, sink by sink: the
//! backtest of a rule before it goes live.

use crate::config::source::FileSourceConfig;
use crate::config::{SinkConfig, SourceConfig};
use crate::plugin::PluginEngine;
use anyhow::{Context, anyhow, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What `adstream replay` was asked for.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// Recorded events, one JSON object per line.
    #[arg(long)]
    pub input: PathBuf,
    /// Run again with this stage changed, and compare: STAGE=NEW.wasm for a new version
    /// of its plugin, STAGE alone with --config.
    #[arg(long)]
    pub swap: Option<String>,
    /// The swapped stage's config in the second run, as JSON.
    #[arg(long, requires = "swap")]
    pub config: Option<String>,
    /// Where the sinks' files go (`current/`, `candidate/`).
    #[arg(long, default_value = "replay-out")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 5000)]
    pub batch_size: usize,
}

/// Rows listed per sink before the rest are only counted, and the characters of each
/// shown (the whole rows are in the output files).
const SHOWN: usize = 5;
const ROW_CHARS: usize = 240;

fn short(row: &str) -> String {
    match row.char_indices().nth(ROW_CHARS) {
        Some((at, _)) => format!("{}…", &row[..at]),
        None => row.to_string(),
    }
}

/// Problems found in a pipeline file, one `file:line:col: message` per line.
fn diagnostics(d: Vec<crate::config::Diagnostic>) -> anyhow::Error {
    let lines: Vec<String> = d.iter().map(ToString::to_string).collect();
    anyhow!(lines.join("\n"))
}

fn quoted(path: &Path) -> String {
    serde_json::to_string(&path.display().to_string()).expect("a string serializes")
}

/// Runs the pipeline over the recording into files under `dir`; rows per sink.
async fn run_once(
    engine: &PluginEngine,
    cfg: &crate::config::PipelineConfig,
    args: &ReplayArgs,
    dir: &Path,
) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut p = crate::pipeline::build(cfg, engine).map_err(diagnostics)?;
    let source: FileSourceConfig = toml::from_str(&format!(
        "kind = \"file\"\npath = {}\nbatch_size = {}",
        quoted(&args.input),
        args.batch_size.max(1)
    ))?;
    p.source = SourceConfig::File(source);
    p.checkpoint = None;
    p.decoder.ignore_wall_clock();
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let files: Vec<(String, PathBuf)> = p
        .sinks
        .iter()
        .map(|(n, _)| (n.clone(), dir.join(format!("{n}.jsonl"))))
        .collect();
    for ((_, sink), (_, file)) in p.sinks.iter_mut().zip(&files) {
        let text = format!("kind = \"file\"\npath = {}", quoted(file));
        *sink = SinkConfig::File(toml::from_str(&text)?);
    }
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let stats: Stats = std::sync::Arc::default();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let progress = {
        let (stats, done, into) = (stats.clone(), done.clone(), dir.display().to_string());
        std::thread::spawn(move || progress(&stats, &done, &into))
    };
    let ran = crate::pipeline::run(p, stopped, Some(stats)).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = progress.join();
    ran?;
    let mut rows = BTreeMap::new();
    for (name, file) in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        rows.insert(name, text.lines().map(canonical).collect());
    }
    Ok(rows)
}

type Stats = std::sync::Arc<std::sync::Mutex<crate::pipeline::PipelineStats>>;

/// Says once a second how far a long replay has come (on a thread of its own: the
/// replay keeps the runtime's threads busy).
fn progress(stats: &Stats, done: &std::sync::atomic::AtomicBool, into: &str) {
    let began = std::time::Instant::now();
    let mut next = std::time::Duration::from_secs(1);
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(50));
        if began.elapsed() >= next {
            next += std::time::Duration::from_secs(1);
            let records = stats.lock().map_or(0, |s| s.records);
            let rate = records as f64 / began.elapsed().as_secs_f64();
            eprintln!("replaying into {into}: {records} records, {rate:.0}/s");
        }
    }
}

/// A row as comparable text: keys sorted, and a dead letter without the plugin version
/// that wrote it (which differs between the two runs by design).
fn canonical(line: &str) -> String {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(mut m)) => {
            m.remove("plugin_version");
            Value::Object(m).to_string()
        }
        _ => line.to_string(),
    }
}

/// What differs between two runs' rows of one sink.
fn compare(name: &str, before: &[String], after: &[String]) -> Vec<String> {
    let mut count: BTreeMap<&str, i64> = BTreeMap::new();
    before
        .iter()
        .for_each(|r| *count.entry(r).or_default() -= 1);
    after.iter().for_each(|r| *count.entry(r).or_default() += 1);
    let added: Vec<&str> = count
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(r, _)| *r)
        .collect();
    let removed: Vec<&str> = count
        .iter()
        .filter(|(_, n)| **n < 0)
        .map(|(r, _)| *r)
        .collect();
    let head = format!(
        "sink `{name}`: {} rows before, {} after",
        before.len(),
        after.len()
    );
    if added.is_empty() && removed.is_empty() {
        return vec![format!("{head}: the same")];
    }
    let mut out = vec![format!(
        "{head}: {} added, {} removed",
        added.len(),
        removed.len()
    )];
    out.extend(
        added
            .iter()
            .take(SHOWN)
            .map(|r| format!("  + {}", short(r))),
    );
    out.extend(
        removed
            .iter()
            .take(SHOWN)
            .map(|r| format!("  - {}", short(r))),
    );
    if added.len() + removed.len() > 2 * SHOWN {
        out.push("  …".into());
    }
    out
}

async fn replay(args: ReplayArgs) -> anyhow::Result<bool> {
    let cfg = crate::config::load(&args.pipeline).map_err(diagnostics)?;
    let engine = super::engine().map_err(|e| anyhow!(e))?;
    let current = run_once(&engine, &cfg, &args, &args.out.join("current")).await?;
    let Some(swap) = &args.swap else {
        for (name, rows) in &current {
            println!("sink `{name}`: {} rows", rows.len());
        }
        println!("outputs in {}", args.out.join("current").display());
        return Ok(true);
    };
    let (stage, wasm) = match swap.split_once('=') {
        Some((stage, wasm)) => (stage, Some(std::path::absolute(wasm)?)),
        None if args.config.is_some() => (swap.as_str(), None),
        None => bail!("--swap `{swap}`: write STAGE=NEW.wasm, or STAGE with --config"),
    };
    let mut candidate_cfg = cfg.clone();
    let Some(s) = (candidate_cfg.stages.iter_mut()).find(|s| s.name.get_ref() == stage) else {
        bail!("--swap: the pipeline has no stage `{stage}`");
    };
    if let Some(wasm) = &wasm {
        s.plugin = toml::Spanned::new(s.plugin.span(), wasm.display().to_string());
    }
    if let Some(config) = &args.config {
        let table: toml::Table = serde_json::from_str(config).context("--config")?;
        let span = s.config.as_ref().map_or(0..0, toml::Spanned::span);
        s.config = Some(toml::Spanned::new(span, table));
    }
    let change = match (&wasm, &args.config) {
        (Some(w), None) => format!("as {}", w.display()),
        (Some(w), Some(c)) => format!("as {} with config {c}", w.display()),
        (None, c) => format!("with config {}", c.as_deref().unwrap_or_default()),
    };
    let candidate = run_once(&engine, &candidate_cfg, &args, &args.out.join("candidate")).await?;
    println!(
        "replayed {} through `{}` with stage `{stage}` as it is and {change}:",
        args.input.display(),
        cfg.name,
    );
    let mut same = true;
    for (name, before) in &current {
        let lines = compare(name, before, candidate.get(name).map_or(&[][..], |v| v));
        same &= lines.len() == 1 && lines[0].ends_with("the same");
        lines.iter().for_each(|l| println!("  {l}"));
    }
    println!(
        "outputs in {} and {}",
        args.out.join("current").display(),
        args.out.join("candidate").display()
    );
    Ok(same)
}

/// Exit status: 0 when the outputs are the same (or there was nothing to compare), 1 when
/// the candidate changes something, 2 on an error.
pub async fn main(args: ReplayArgs) -> ExitCode {
    match replay(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
