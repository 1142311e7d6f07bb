//! `adstream run FILE... [--duration SECS]`

use crate::config;
use crate::pipeline::{self, Pipeline, PipelineStats, RunSummary};
use crate::plugin::PluginEngine;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Loads and builds every pipeline, printing every problem; `None` if there was any.
pub fn build_all(engine: &PluginEngine, files: &[PathBuf]) -> Option<Vec<Pipeline>> {
    let mut pipelines = Vec::new();
    let mut failed = false;
    for file in files {
        match config::load(file).and_then(|cfg| pipeline::build(&cfg, engine)) {
            Ok(p) => pipelines.push(p),
            Err(diags) => {
                failed = true;
                diags.iter().for_each(|d| eprintln!("{d}"));
            }
        }
    }
    (!failed).then_some(pipelines)
}

/// Turns `stop` on at Ctrl-C or after `duration`; a second Ctrl-C exits at once.
pub fn stop_signal(duration: Option<u64>) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let timer = async {
            match duration {
                Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                eprintln!("stopping: flushing open windows (Ctrl-C again to quit at once)");
                let _ = tx.send(true);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
            _ = timer => { let _ = tx.send(true); }
        }
        // Keep the sender alive so that receivers never see it closed.
        std::future::pending::<()>().await;
    });
    rx
}

pub fn print_summary(s: &RunSummary) {
    let st = &s.stats;
    eprintln!(
        "pipeline `{}` finished in {:.1} s: {} records in {} batches, {} decode errors, {} dead letters",
        s.pipeline,
        s.elapsed.as_secs_f64(),
        st.records,
        st.batches,
        st.decode_errors,
        st.dead_letters
    );
    for (name, stage) in &st.stages {
        eprintln!(
            "  stage {name}: {} rows in, {} out, {} dead letters, {} calls ({:.1} ms busy){}",
            stage.rows_in,
            stage.rows_out,
            stage.dead_letters,
            stage.calls,
            stage.busy_ns as f64 / 1e6,
            stage
                .last_error
                .as_ref()
                .map(|e| format!(", last error: {e}"))
                .unwrap_or_default()
        );
    }
}

/// Logs a pipeline's progress every 10 seconds.
async fn report_progress(name: String, stats: Arc<Mutex<PipelineStats>>) {
    let mut last = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    loop {
        tick.tick().await;
        let (records, dead, watermark) = {
            let s = stats.lock().expect("stats lock");
            (s.records, s.dead_letters, s.watermark)
        };
        let rate = (records - last) / 10;
        last = records;
        let wm = watermark.map_or("none yet".to_string(), adstream_sdk::time::iso8601);
        tracing::info!(pipeline = %name, records, per_second = rate, dead_letters = dead, watermark = %wm, "progress");
    }
}

pub async fn run(files: &[PathBuf], duration: Option<u64>) -> ExitCode {
    let engine = match PluginEngine::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot start the WebAssembly engine: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let Some(pipelines) = build_all(&engine, files) else {
        return ExitCode::from(2);
    };
    let stop = stop_signal(duration);
    let runs: Vec<_> = pipelines
        .into_iter()
        .map(|p| {
            let name = p.name.clone();
            tracing::info!(pipeline = %name, stages = p.stages.len(), "running");
            let stats = Arc::new(Mutex::new(PipelineStats::default()));
            tokio::spawn(report_progress(name.clone(), stats.clone()));
            (
                name,
                tokio::spawn(pipeline::run(p, stop.clone(), Some(stats))),
            )
        })
        .collect();
    let mut ok = true;
    for (name, task) in runs {
        match task.await {
            Ok(Ok(summary)) => print_summary(&summary),
            Ok(Err(e)) => {
                ok = false;
                eprintln!("error: pipeline `{name}`: {e}");
            }
            Err(e) => {
                ok = false;
                eprintln!("error: pipeline `{name}` crashed: {e}");
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
