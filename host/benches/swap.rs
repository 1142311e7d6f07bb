//! How long a hot swap stops a stage's batch flow.
//!
//!   cargo bench -p adstream --bench swap [-- SWAPS]
//!
//! Runs the generator (as fast as the host goes) through 10 s windows by country × format
//! and the anomaly rules, and swaps each stage's plugin SWAPS times (default 200) while it
//! runs, through the supervisor as a rebuilt plugin would be. The pause is the state
//! hand-over (snapshot of the old instance, restore into the new one) that the processor
//! does between two batches; everything else happens off its thread. The baseline, from
//! the same run, is the mean time the same stage spends on one 1000-event batch.

use adstream::plugin::{PluginEngine, retag};
use adstream::supervisor::{Handle, Supervisor};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PIPELINE: &str = r#"
name = "swap-bench"
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
revenue = "f64"
[[stage]]
name = "windows"
plugin = "window_aggregate.wasm"
config = { window = "10s", group_by = ["country", "ad_format"] }
[[stage]]
name = "anomalies"
plugin = "anomaly_ema.wasm"
config = { min_impressions = 500 }
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
    std::fs::write(&file, PIPELINE).unwrap();
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
        let mut pauses: Vec<u64> = changes
            .iter()
            .filter(|c| c.stage.as_deref() == Some(stage.name.as_str()))
            .map(|c| c.pause_us.unwrap_or_else(|| panic!("swap refused: {c:?}")))
            .collect();
        pauses.sort();
        let batch_us = stage.stats.busy_ns as f64 / stage.stats.calls.max(1) as f64 / 1e3;
        let (p50, p99) = (percentile(&pauses, 0.5), percentile(&pauses, 0.99));
        println!(
            "{:<10} pause p50 {p50} µs, p99 {p99} µs, max {} µs; one batch takes {batch_us:.0} µs \
             (pause p50 = {:.2} batches, p99 = {:.2} batches)",
            stage.name,
            pauses.last().unwrap(),
            p50 as f64 / batch_us,
            p99 as f64 / batch_us,
        );
    }
}
