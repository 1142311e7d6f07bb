//! How long a hot swap stops a stage's batch flow.
//!
//!   cargo bench -p adstream --bench swap [-- SWAPS]
//!
//! Runs the generator (as fast as the host goes) through 10 s windows by country × format
//! and the anomaly rules, and swaps each stage's plugin SWAPS times (default 200) while it
//! runs, through the supervisor as a rebuilt plugin would be. The pause is the state
//! hand-over (snapshot of the old instance, restore into the new one) that the processor
//! does between two batches; everything else happens off its thread. It also reports how
//! long the new version's first batch took (a fresh instance may start slower). The
//! baseline, from the same run, is the mean time the same stage spends on one batch.

use adstream::plugin::{PluginEngine, retag};
use adstream::supervisor::{Handle, Supervisor};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PIPELINE: &str = r#"
name = "swap-bench"
dead_letter = "dead"
[source]
kind = "generator"
rate = 20000.0
pace = false
start = 1767225600000
seed = 11
batch_size = 1000
[schema]
event_id = { type = "string", required = true }
event_time = { type = "timestamp_ms", required = true }
event_type = { type = "dict", required = true }
country = { type = "dict", required = true }
ad_format = { type = "dict", required = true }
network = "dict"
revenue = "f64"
cost = "f64"
[[stage]]
name = "windows"
plugin = "window_aggregate.wasm"
config = { window = "10s", group_by = ["country", "ad_format"] }
[[stage]]
name = "anomalies"
plugin = "anomaly_ema.wasm"
config = { min_impressions = 500 }
[sink.dead]
kind = "file"
path = "@DIR@/dead.jsonl"
"#;

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn wait_changes(handle: &Handle, n: usize) {
    let began = Instant::now();
    while handle.board.changes().len() < n {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "swap {n} never finished"
        );
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

#[tokio::main]
async fn main() {
    let swaps: usize = std::env::args()
        .filter_map(|a| a.parse().ok())
        .next()
        .unwrap_or(200);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist");
    let dir = tempfile::tempdir().unwrap();
    let mut versions: Vec<(PathBuf, [Vec<u8>; 2])> = Vec::new();
    for name in ["window_aggregate", "anomaly_ema"] {
        let bytes = std::fs::read(root.join(format!("{name}.wasm")))
            .unwrap_or_else(|e| panic!("{name}.wasm: {e}; run scripts/build-plugins.sh first"));
        let path = dir.path().join(format!("{name}.wasm"));
        std::fs::write(&path, &bytes).unwrap();
        versions.push((path, [retag(&bytes, 1), retag(&bytes, 2)]));
    }
    let file = dir.path().join("bench.toml");
    let text = PIPELINE.replace("@DIR@", &dir.path().display().to_string());
    std::fs::write(&file, text).unwrap();
    let mut sup = Supervisor::new(PluginEngine::new().unwrap());
    sup.start_file(&file)
        .await
        .unwrap_or_else(|d| panic!("{d:?}"));
    let handle = sup.spawn();
    // Let windows fill before the first swap, so that there is state to hand over.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in 0..swaps * 2 {
        let (path, v) = &versions[i % 2];
        std::fs::write(path, &v[(i / 2) % 2]).unwrap();
        handle.files_changed(vec![path.clone()]);
        wait_changes(&handle, i + 1).await;
    }
    let status = handle.board.status();
    let changes = handle.board.changes();
    handle.stop().await;
    println!(
        "{} swaps per stage while {} events streamed",
        swaps, status.pipelines[0].records
    );
    for stage in &status.pipelines[0].stages {
        let mine: Vec<_> = changes
            .iter()
            .filter(|c| c.stage.as_deref() == Some(stage.name.as_str()))
            .collect();
        let sorted = |f: fn(&adstream::supervisor::Change) -> Option<u64>| {
            let mut v: Vec<u64> = mine.iter().filter_map(|c| f(c)).collect();
            v.sort();
            v
        };
        let pauses = sorted(|c| c.pause_us);
        assert_eq!(pauses.len(), mine.len(), "a swap was refused: {mine:?}");
        let firsts = sorted(|c| c.first_batch_us);
        let batch_us = stage.stats.busy_ns as f64 / stage.stats.calls.max(1) as f64 / 1e3;
        let (p50, p99) = (percentile(&pauses, 0.5), percentile(&pauses, 0.99));
        let (f50, f99) = (percentile(&firsts, 0.5), percentile(&firsts, 0.99));
        println!(
            "{:<10} hand-over pause p50 {p50} µs, p99 {p99} µs, max {} µs; \
             new version's first batch p50 {f50} µs, p99 {f99} µs; mean batch {batch_us:.0} µs\n\
             {:<10} pause p50 = {:.2} mean batches, p99 = {:.2}; first batch p50 = {:.2} mean batches, p99 = {:.2}",
            stage.name,
            pauses.last().unwrap(),
            "",
            p50 as f64 / batch_us,
            p99 as f64 / batch_us,
            f50 as f64 / batch_us,
            f99 as f64 / batch_us,
        );
    }
}
