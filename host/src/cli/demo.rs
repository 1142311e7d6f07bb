//! `adstream demo`: the seed's whole monitoring flow on one machine with no services —
//! generated traffic with the four anomalies, PII hashing, quality checks, 10 s and 1 min
//! windows, anomaly rules and Slack payloads — on the console and in JSONL files; with
//! `--pipeline shop`, the e-commerce pipeline of seed 000 the same way.

use super::run::{report, stop_signal};
use crate::config::SinkConfig;
use crate::config::{self, PipelineConfig};
use crate::pipeline;
use crate::supervisor::{self, Supervisor};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Points every file sink into `out`.
fn redirect(cfg: &mut PipelineConfig, out: &Path) {
    for (_, sink) in &mut cfg.sinks {
        if let SinkConfig::File(f) = sink {
            let file = Path::new(&f.path)
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_default();
            f.path = out.join(file).display().to_string();
        }
    }
}

/// The built-in demos.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Demo {
    Ads,
    Shop,
}

impl Demo {
    fn file(self) -> &'static str {
        match self {
            Demo::Ads => "demo.toml",
            Demo::Shop => "shop-demo.toml",
        }
    }

    fn intro(self, duration: u64, out: &Path) -> String {
        match self {
            Demo::Ads => format!(
                "adstream demo: {duration} s of generated ad traffic (20,000 events/s). Anomalies are injected\n\
                 at 20 s (CTR drop, US banner), 30 s (CTR spike, UK banner; traffic spike, JP\n\
                 interstitial) and 40 s (eCPM drop, KR rewarded_video); each shows up as 🔔 once its\n\
                 10 s window closes. Results go to {}/. Ctrl-C stops early.\n",
                out.display()
            ),
            Demo::Shop => format!(
                "adstream demo --pipeline shop: {duration} s of a generated shop (3,000 events/s of event\n\
                 time, run 10× faster: a minute's windows close every 6 s). Anomalies are injected\n\
                 at minute 2 (paypal outage), 4 (viral product p00120), 6 (price bug) and 8 (broken\n\
                 checkout); the rules raise 🔔 once the minute closes. Results go to {}/.\n\
                 Ctrl-C stops early.\n",
                out.display()
            ),
        }
    }
}

pub async fn demo(
    which: Demo,
    duration: u64,
    out: &Path,
    status: &super::serve::StatusServe,
) -> ExitCode {
    let status = match status.bind().await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let Some((cfg, engine, pipeline)) = build(which.file(), out) else {
        return ExitCode::FAILURE;
    };
    eprintln!("{}", which.intro(duration, out));
    let mut stop = stop_signal(Some(duration));
    let mut sup = Supervisor::new(engine);
    if let Err(e) = sup.start(cfg, pipeline).await {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    if let Some(status) = status {
        let at = status.serve(sup.board());
        eprintln!("dashboard: http://{at}/ (live charts, alerts, stages)\n");
    }
    let handle = sup.spawn();
    let events = handle.events.clone();
    tokio::spawn(async move {
        if stop.wait_for(|s| *s).await.is_ok() {
            let _ = events.send(supervisor::Event::Stop);
        }
    });
    if !report(handle.wait().await) {
        return ExitCode::FAILURE;
    }
    eprintln!("results: {}", list_outputs(out));
    ExitCode::SUCCESS
}

/// The demo pipeline, its sinks sent to `out`, built; its problems printed if not.
fn build(
    file: &str,
    out: &Path,
) -> Option<(
    PipelineConfig,
    crate::plugin::PluginEngine,
    pipeline::Pipeline,
)> {
    // The binary's own pipeline and plugins, so that an installed adstream needs no files.
    let dir = match super::embedded::demo_home() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return None;
        }
    };
    let demo = super::embedded::pipeline(file);
    let mut cfg = match config::parse(&dir.join(file), demo) {
        Ok(c) => c,
        Err(diags) => {
            diags.iter().for_each(|d| eprintln!("{d}"));
            return None;
        }
    };
    redirect(&mut cfg, out);
    let engine = match super::engine() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return None;
        }
    };
    let pipeline = match pipeline::build(&cfg, &engine) {
        Ok(p) => p,
        Err(diags) => {
            diags.iter().for_each(|d| eprintln!("{d}"));
            return None;
        }
    };
    Some((cfg, engine, pipeline))
}

fn list_outputs(out: &Path) -> String {
    let mut files: Vec<String> = std::fs::read_dir(out)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| {
                    let lines = std::fs::read_to_string(e.path()).map_or(0, |t| t.lines().count());
                    format!("{} ({lines} lines)", e.path().display())
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files.join(", ")
}
