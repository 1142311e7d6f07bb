//! `adstream run FILE|DIR... [--duration SECS] [--status-addr ADDR|off] [--status-token-file F] [--no-watch]`

use crate::pipeline::RunSummary;
use crate::supervisor::{self, Board, Supervisor};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Longest a stop may take (the batch in flight, sink flushes, the last checkpoint) before
/// the host exits anyway.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Ctrl-C (SIGINT) or SIGTERM, whichever comes first.
async fn interrupted() -> &'static str {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupt",
        _ = term.recv() => "SIGTERM",
    }
}

/// Turns `stop` on at Ctrl-C, SIGTERM or after `duration`. A second signal exits at once,
/// and so does a stop that takes longer than [`STOP_TIMEOUT`].
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
            why = interrupted() => {
                eprintln!("stopping ({why}): finishing the batch in flight, then flushing open windows (or, with checkpoints, saving them) and every sink (again to quit at once)");
                let _ = tx.send(true);
                watchdog();
                interrupted().await;
                std::process::exit(130);
            }
            _ = timer => {
                let _ = tx.send(true);
                watchdog();
            }
        }
        // Keep the sender alive so that receivers never see it closed.
        std::future::pending::<()>().await;
    });
    rx
}

/// Exits the process if a stop has not finished within [`STOP_TIMEOUT`] (a thread, so that
/// a stuck runtime cannot hold it up).
fn watchdog() {
    std::thread::spawn(|| {
        std::thread::sleep(STOP_TIMEOUT);
        eprintln!("error: the stop did not finish within {STOP_TIMEOUT:?}; exiting without it");
        std::process::exit(124);
    });
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
            "  stage {name}: {} rows in, {} out, {} dead letters, {} calls ({:.1} ms busy, {:.1} ms CPU){}{}",
            stage.rows_in,
            stage.rows_out,
            stage.dead_letters,
            stage.calls,
            stage.busy_ns as f64 / 1e6,
            stage.cpu_ns as f64 / 1e6,
            match stage.snapshots {
                0 => String::new(),
                n => format!(", {n} snapshots ({:.1} ms)", stage.snapshot_ns as f64 / 1e6),
            },
            stage
                .last_error
                .as_ref()
                .map(|e| format!(", last error: {e}"))
                .unwrap_or_default()
        );
    }
}

/// Logs each running pipeline's progress every 10 seconds.
async fn report_progress(board: Arc<Board>) {
    let mut last: HashMap<String, u64> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    loop {
        tick.tick().await;
        for p in board
            .status()
            .pipelines
            .into_iter()
            .filter(|p| p.state == "running")
        {
            let before = last.insert(p.name.clone(), p.records).unwrap_or(0);
            let rate = p.records.saturating_sub(before) / 10;
            let wm = p.watermark.unwrap_or_else(|| "none yet".to_string());
            tracing::info!(pipeline = %p.name, records = p.records, per_second = rate, dead_letters = p.dead_letters, watermark = %wm, "progress");
        }
    }
}

/// How `adstream run` runs: what to watch, where to report.
pub struct RunOptions {
    pub duration: Option<u64>,
    /// The status endpoint.
    pub status: super::serve::StatusServe,
    /// Apply plugin and pipeline file changes while running.
    pub watch: bool,
}

/// The pipeline files named, with folders standing for the `*.toml` files in them.
fn expand(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|f| f.extension().is_some_and(|e| e == "toml"))
                .collect();
            found.sort();
            files.extend(found);
            dirs.push(p.clone());
        } else {
            files.push(p.clone());
        }
    }
    (files, dirs)
}

pub async fn run(paths: &[PathBuf], opts: RunOptions) -> ExitCode {
    // First of all, so that a signal during start-up (compiling plugins, reaching the
    // services) is a graceful stop too.
    let mut stop = stop_signal(opts.duration);
    let engine = match super::engine() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let status = match opts.status.bind().await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (files, dirs) = expand(paths);
    let mut sup = Supervisor::new(engine);
    for file in files.iter().take_while(|_| !*stop.borrow()) {
        if let Err(diags) = sup.start_file(file).await {
            diags.iter().for_each(|d| eprintln!("{d}"));
            // Those already started stop gracefully (a checkpoint each).
            report(sup.spawn().stop().await);
            return ExitCode::from(2);
        }
    }
    for dir in &dirs {
        sup.adopt_dir(dir);
    }
    if opts.watch
        && let Err(e) = sup.watch()
    {
        tracing::warn!("cannot watch files, changes need a restart: {e}");
    }
    if let Some(status) = status {
        status.serve(sup.board());
    }
    let progress = tokio::spawn(report_progress(sup.board()));
    let handle = sup.spawn();
    let events = handle.events.clone();
    tokio::spawn(async move {
        if stop.wait_for(|s| *s).await.is_ok() {
            let _ = events.send(supervisor::Event::Stop);
        }
    });
    let outcomes = handle.wait().await;
    progress.abort();
    if report(outcomes) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints how each pipeline ended; whether all ended well.
pub(super) fn report(outcomes: Vec<supervisor::Outcome>) -> bool {
    let mut ok = true;
    for (name, result) in outcomes {
        match result {
            Ok(summary) => print_summary(&summary),
            Err(e) => {
                ok = false;
                eprintln!("error: pipeline `{name}`: {e}");
            }
        }
    }
    ok
}
