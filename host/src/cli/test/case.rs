//! One test case run as the host would run it: the sample input through a one-stage
//! pipeline (file source, the plugin under test with its config, secrets and limits,
//! file sinks), so that decoding, batching, the watermark, the boundary checks and the
//! flush of open windows at the end are the real ones.

use super::super::sample;
use crate::plugin::PluginEngine;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokio::sync::watch;

/// What a case says to run.
#[derive(serde::Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// Events, one JSON object per line.
    pub input: PathBuf,
    /// The rows the plugin should output, one JSON object per line; without it the
    /// output is printed.
    pub expect: Option<PathBuf>,
    /// The stage's `config` table.
    #[serde(default)]
    pub config: toml::Table,
    /// Secrets by name, as plain values (test keys only).
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Events per batch: several batches exercise state kept between calls.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// How many input rows should end in the dead letters (rejected, late, failed).
    pub dead_letters: Option<usize>,
}

fn default_batch() -> usize {
    1000
}

/// What a run produced.
pub struct Ran {
    pub output: Vec<Value>,
    pub dead: Vec<Value>,
}

/// `path` as an absolute path in quotes. The pipeline file is written to a scratch folder,
/// where a relative plugin path would resolve against that folder, not the case file's.
fn quoted(path: &Path) -> String {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    serde_json::to_string(&path.display().to_string()).expect("a string serializes")
}

/// The pipeline file that runs `case` through `plugin`, writing into `dir`.
fn pipeline(plugin: &Path, case: &Case, time_column: &str, dir: &Path) -> Result<String, String> {
    let columns = sample::columns(&case.input, time_column)?;
    let secrets: toml::Table = (case.secrets.iter())
        .map(|(k, v)| {
            let mut t = toml::Table::new();
            t.insert("insecure_value".into(), toml::Value::String(v.clone()));
            (k.clone(), toml::Value::Table(t))
        })
        .collect();
    // A `Value`'s text is inline: `{ key = value, ... }`.
    let stage = format!(
        "config = {}\nsecrets = {}",
        toml::Value::Table(case.config.clone()),
        toml::Value::Table(secrets)
    );
    Ok(format!(
        "name = \"test\"\ndead_letter = \"dead\"\n[source]\nkind = \"file\"\npath = {}\n\
         batch_size = {}\n{}[[stage]]\nname = \"plugin\"\nplugin = {}\nto = [\"out\"]\n{stage}\n\
         [sink.out]\nkind = \"file\"\npath = {}\n[sink.dead]\nkind = \"file\"\npath = {}\n",
        quoted(&case.input),
        case.batch_size.max(1),
        columns.toml(),
        quoted(plugin),
        quoted(&dir.join("out.jsonl")),
        quoted(&dir.join("dead.jsonl")),
    ))
}

fn read_jsonl(path: &Path) -> Result<Vec<Value>, String> {
    let text = super::super::sample::read_file(path, "a file of rows")?;
    (text.lines().enumerate())
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// Runs `case` through `plugin`.
pub async fn run(
    engine: &PluginEngine,
    plugin: &Path,
    case: &Case,
    time_column: &str,
) -> Result<Ran, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("test.toml");
    let text = pipeline(plugin, case, time_column, dir.path())?;
    std::fs::write(&file, text).map_err(|e| e.to_string())?;
    let problems = |d: Vec<crate::config::Diagnostic>| {
        let lines: Vec<String> = d.iter().map(|d| d.message.clone()).collect();
        format!("case `{}`: {}", case.name, lines.join("; "))
    };
    let cfg = crate::config::load(&file).map_err(problems)?;
    let p = crate::pipeline::build(&cfg, engine).map_err(problems)?;
    let (_stop, stopped) = watch::channel(false);
    crate::pipeline::run(p, stopped, None)
        .await
        .map_err(|e| format!("case `{}`: {e}", case.name))?;
    let output = read_jsonl(&dir.path().join("out.jsonl")).unwrap_or_default();
    let dead = read_jsonl(&dir.path().join("dead.jsonl")).unwrap_or_default();
    Ok(Ran { output, dead })
}

/// The expected rows of `case`, if it names them.
pub fn expected(case: &Case) -> Result<Option<Vec<Value>>, String> {
    case.expect.as_deref().map(read_jsonl).transpose()
}
