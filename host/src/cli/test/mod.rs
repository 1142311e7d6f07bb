//! `adstream test`: runs a plugin over sample events as the host would and compares its
//! output with what is expected, printing a readable diff on a mismatch and exiting
//! non-zero. Only output rows (when no expectation is given) go to stdout; what happened
//! goes to stderr. One case from the command line, or several from a case file:
//!
//! ```toml
//! plugin = "target/wasm32-wasip2/release/my_rule.wasm"   # relative to this file
//! time_column = "event_time"                            # the default
//!
//! [[case]]
//! name = "a drop of 60 % fires"
//! input = "tests/drop.jsonl"
//! expect = "tests/drop.expected.jsonl"
//! config = { threshold = 0.5 }
//! batch_size = 10
//! dead_letters = 0
//! ```

mod case;
mod diff;

use crate::plugin::PluginEngine;
use case::Case;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What `adstream test` was asked for.
#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// A case file (`.toml`), or a plugin (`.wasm`) to run on `--input`.
    pub target: PathBuf,
    /// Events, one JSON object per line (with a plugin).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// The rows the plugin should output, one JSON object per line; without it the
    /// output is printed, to check by eye and keep as the expectation.
    #[arg(long)]
    pub expect: Option<PathBuf>,
    /// The stage's config, as JSON.
    #[arg(long, default_value = "{}")]
    pub config: String,
    /// A secret the plugin reads, NAME=VALUE (test keys only). Repeatable.
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// Events per batch.
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// The event-time column (integer ms).
    #[arg(long, default_value = "event_time")]
    pub time_column: String,
    /// With a case file: test this component instead of the file's `plugin` (e.g. one
    /// built into another target folder).
    #[arg(long)]
    pub plugin: Option<PathBuf>,
}

/// A case file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    plugin: PathBuf,
    #[serde(default = "default_time_column")]
    time_column: String,
    #[serde(rename = "case")]
    cases: Vec<Case>,
}

fn default_time_column() -> String {
    "event_time".into()
}

/// `path` relative to the folder of `file`.
fn beside(file: &Path, path: &Path) -> PathBuf {
    file.parent().unwrap_or(Path::new(".")).join(path)
}

fn read_case_file(path: &Path) -> Result<(PathBuf, String, Vec<Case>), String> {
    let text = super::sample::read_file(path, "a case file")?;
    let f: CaseFile = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let cases = (f.cases.into_iter())
        .map(|c| Case {
            input: beside(path, &c.input),
            expect: c.expect.map(|e| beside(path, &e)),
            ..c
        })
        .collect();
    Ok((built(&beside(path, &f.plugin)), f.time_column, cases))
}

/// `plugin`, or, when it is under a project's `target/` that does not exist because cargo
/// builds into `$CARGO_TARGET_DIR`, the same file there.
fn built(plugin: &Path) -> PathBuf {
    let moved = || {
        let target = std::env::var_os("CARGO_TARGET_DIR")?;
        let parts: Vec<_> = plugin.components().collect();
        let at = parts.iter().rposition(|c| c.as_os_str() == "target")?;
        let rest: PathBuf = parts[at + 1..].iter().collect();
        Some(PathBuf::from(target).join(rest))
    };
    match plugin.exists() {
        true => plugin.to_path_buf(),
        false => moved()
            .filter(|p| p.exists())
            .unwrap_or_else(|| plugin.to_path_buf()),
    }
}

fn one_case(args: &TestArgs) -> Result<Case, String> {
    let input = args
        .input
        .clone()
        .ok_or("a plugin is tested on --input FILE.jsonl")?;
    let config: toml::Table =
        serde_json::from_str(&args.config).map_err(|e| format!("--config: {e}"))?;
    let secrets = (args.secrets.iter())
        .map(|s| {
            let (k, v) = s
                .split_once('=')
                .ok_or(format!("--secret `{s}`: write NAME=VALUE"))?;
            Ok((k.to_string(), v.to_string()))
        })
        .collect::<Result<_, String>>()?;
    Ok(Case {
        name: input.display().to_string(),
        input,
        expect: args.expect.clone(),
        config,
        secrets,
        batch_size: args.batch_size,
        dead_letters: None,
    })
}

/// Runs one case and says how it went; true if it passed.
async fn report(
    engine: &PluginEngine,
    plugin: &Path,
    case: &Case,
    time_column: &str,
) -> Result<bool, String> {
    let ran = case::run(engine, plugin, case, time_column).await?;
    let Some(want) = case::expected(case)? else {
        for row in &ran.output {
            println!("{row}");
        }
        eprintln!(
            "case `{}`: {} rows out, {} dead letters (no expectation given: printed)",
            case.name,
            ran.output.len(),
            ran.dead.len()
        );
        return Ok(true);
    };
    let mut problems = diff::rows(&want, &ran.output);
    if let Some(n) = case.dead_letters.filter(|&n| n != ran.dead.len()) {
        problems.push(format!("expected {n} dead letters, got {}", ran.dead.len()));
        problems.extend(
            ran.dead
                .iter()
                .take(3)
                .map(|d| format!("  dead letter: {}", d["error"])),
        );
    }
    if problems.is_empty() {
        eprintln!("case `{}`: ok ({} rows)", case.name, ran.output.len());
        return Ok(true);
    }
    eprintln!("case `{}`: FAILED", case.name);
    for p in problems {
        eprintln!("  {p}");
    }
    Ok(false)
}

pub async fn test(args: TestArgs) -> ExitCode {
    let setup = if args.target.extension().is_some_and(|e| e == "toml") {
        read_case_file(&args.target)
    } else {
        one_case(&args).map(|c| (args.target.clone(), args.time_column.clone(), vec![c]))
    };
    let (plugin, time_column, cases) = match setup {
        Ok((plugin, time, cases)) => (args.plugin.clone().unwrap_or(plugin), time, cases),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let engine = match super::engine() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = 0;
    for case in &cases {
        match report(&engine, &plugin, case, &time_column).await {
            Ok(true) => {}
            Ok(false) => failed += 1,
            Err(e) => {
                eprintln!("case `{}`: ERROR {e}", case.name);
                failed += 1;
            }
        }
    }
    eprintln!(
        "{} case(s), {} passed, {failed} failed",
        cases.len(),
        cases.len() - failed
    );
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
