//! `adstream check FILE...`

use crate::config::{self, Diagnostic};
use crate::pipeline;
use crate::plugin::PluginEngine;
use std::path::PathBuf;
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
            format!(
                "{} ({} {} {})",
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

pub fn check(files: &[PathBuf]) -> ExitCode {
    let engine = match PluginEngine::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot start the WebAssembly engine: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let mut problems = 0;
    for file in files {
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
