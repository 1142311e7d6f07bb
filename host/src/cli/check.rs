//! `adstream check FILE...`: pipeline files, and plugins (`.wasm`, see `inspect.rs`).

use crate::config::{self, Diagnostic};
use crate::pipeline;
use crate::plugin::PluginEngine;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Every problem in `file`, or what the checked pipeline looks like.
pub fn check_file(
    engine: &PluginEngine,
    file: &std::path::Path,
) -> Result<String, Vec<Diagnostic>> {
    let cfg = config::load(file)?;
    let p = pipeline::build(&cfg, engine)?;
    let stages: Vec<String> = p
        .stages
        .iter()
        .map(|s| {
            // What crosses the boundary, when the plugin declared it (host.reads).
            let reads = s.reads().map_or(String::new(), |r| {
                format!(
                    ", reads {} of {} columns",
                    r.len(),
                    s.spec.setup.input.len()
                )
            });
            format!(
                "{} ({} {} {}{reads})",
                s.spec.name,
                s.spec.plugin.role().name(),
                s.info.name,
                s.info.version
            )
        })
        .collect();
    Ok(format!(
        "{}: ok: pipeline `{}`: {}",
        file.display(),
        p.name,
        stages.join(" → ")
    ))
}

/// What `configure` gets for a plugin checked with `--config` and `--input`.
fn setup(
    config: Option<&str>,
    input: Option<&Path>,
) -> Result<Option<adstream_sdk::Setup>, String> {
    let (config, input) = match (config, input) {
        (None, None) => return Ok(None),
        (config, Some(input)) => (config.unwrap_or("{}"), input),
        (Some(_), None) => {
            return Err("--config needs --input: the columns to configure with".into());
        }
    };
    serde_json::from_str::<serde_json::Value>(config).map_err(|e| format!("--config: {e}"))?;
    let columns = super::sample::columns(input, "event_time")?;
    Ok(Some(adstream_sdk::Setup {
        config: config.to_string(),
        input: columns.fields(),
        secrets: vec![],
    }))
}

pub fn check(files: &[PathBuf], config: Option<&str>, input: Option<&Path>) -> ExitCode {
    let engine = match super::engine() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut problems = 0;
    for file in files {
        if file.extension().is_some_and(|e| e == "wasm") {
            match setup(config, input).and_then(|s| super::inspect::inspect(&engine, file, s)) {
                Ok(text) => println!("{text}"),
                Err(e) => {
                    problems += 1;
                    eprintln!("{e}");
                }
            }
            continue;
        }
        match check_file(&engine, file) {
            Ok(line) => println!("{line}"),
            Err(diags) => {
                problems += diags.len();
                for d in diags {
                    eprintln!("{d}");
                }
            }
        }
    }
    if problems > 0 {
        eprintln!("{problems} problem(s) found");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
