//! Hot reload: plugins swapped and pipeline files edited while the host runs, through the
//! supervisor that `adstream run` uses.

use super::support::{pipeline_file, plugin, read_jsonl, sorted_lines, window_starts};
use adstream::plugin::{PluginEngine, retag};
use adstream::supervisor::{Change, Handle, Supervisor};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Copies a built plugin into `dir`, so that the test can replace it.
fn own_copy(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.wasm"));
    std::fs::copy(plugin(name), &path).unwrap();
    path
}

/// Replaces `path` the way a build does (write aside, rename over).
fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("wasm.tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Waits (up to a minute, to fail rather than hang) until the board holds `n` changes.
async fn changes(handle: &Handle, n: usize) -> Vec<Change> {
    let began = Instant::now();
    loop {
        let changes = handle.board.changes();
        if changes.len() >= n {
            return changes;
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "waited a minute for change {n}; have {changes:#?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn records(handle: &Handle) -> u64 {
    handle
        .board
        .status()
        .pipelines
        .first()
        .map_or(0, |p| p.records)
}

async fn wait_records(handle: &Handle, at_least: u64) {
    let began = Instant::now();
    while records(handle) < at_least {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "the pipeline stalled at {} records",
            records(handle)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn start(file: &Path) -> Handle {
    let mut sup = Supervisor::new(PluginEngine::new().unwrap());
    sup.start_file(file)
        .await
        .unwrap_or_else(|d| panic!("{d:#?}"));
    sup.spawn()
}

/// 1M generated events (with two of the seed anomalies) through 1 s windows and the
/// anomaly rules: 50 s of traffic in 12.5 s, so that the swaps land all along the stream.
fn metrics_pipeline(dir: &Path) -> PathBuf {
    own_copy(dir, "window_aggregate");
    own_copy(dir, "anomaly_ema");
    pipeline_file(dir, "swaps.toml", &metrics_pipeline_text(dir))
}

/// The text of [`metrics_pipeline`], its plugins beside it in `dir`.
fn metrics_pipeline_text(dir: &Path) -> String {
    format!(
        r#"
name = "swaps"
dead_letter = "dead"
[source]
kind = "generator"
rate = 20000.0
speed = 4.0
count = 1000000
start = 1767225600000
seed = 7
batch_size = 1000
[[source.scenario]]
kind = "ctr_drop"
at = "20s"
country = "US"
ad_format = "banner"
[[source.scenario]]
kind = "traffic_spike"
at = "30s"
country = "JP"
ad_format = "interstitial"
{schema}
[[stage]]
name = "windows"
plugin = "window_aggregate.wasm"
config = {{ window = "1s", group_by = ["country", "ad_format"] }}
to = ["windows"]
[[stage]]
name = "anomalies"
plugin = "anomaly_ema.wasm"
config = {{ min_impressions = 200 }}
to = ["alerts"]
[sink.windows]
kind = "file"
path = "{dir}/windows.jsonl"
[sink.alerts]
kind = "file"
path = "{dir}/alerts.jsonl"
[sink.dead]
kind = "file"
path = "{dir}/dead.jsonl"
"#,
        schema = super::support::AD_SCHEMA,
        dir = dir.display()
    )
}

/// Waits until `stage` has `n` swaps recorded, each of them accepted.
async fn settled(handle: &Handle, stage: &str, n: usize) {
    let began = Instant::now();
    loop {
        let done: Vec<Change> = handle
            .board
            .changes()
            .into_iter()
            .filter(|c| c.stage.as_deref() == Some(stage))
            .collect();
        if let Some(refused) = done.iter().find(|c| !c.accepted) {
            panic!("a swap of `{stage}` was refused: {refused:?}");
        }
        if done.len() >= n {
            assert!(done.iter().all(|c| c.pause_us.is_some()), "{done:?}");
            return;
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "waited a minute for swap {n} of `{stage}`"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_swaps_during_a_million_events_change_no_result() {
    let calm = tempfile::tempdir().unwrap();
    let outcomes = start(&metrics_pipeline(calm.path())).await.wait().await;
    assert!(outcomes.iter().all(|(_, r)| r.is_ok()), "{outcomes:?}");

    let busy = tempfile::tempdir().unwrap();
    let handle = start(&metrics_pipeline(busy.path())).await;
    let plugins = [
        ("windows", "window_aggregate"),
        ("anomalies", "anomaly_ema"),
    ]
    .map(|(stage, p)| {
        let path = busy.path().join(format!("{p}.wasm"));
        let bytes = std::fs::read(&path).unwrap();
        (stage, path, [retag(&bytes, 1), retag(&bytes, 2)])
    });
    let mut sent = [0; 2];
    for i in 0..100 {
        // One swap every 6000 events (the last at 600,000: on a loaded machine the swaps
        // fall behind the stream, which must not end before they all took); every tenth
        // one swaps the detector, the others the windows. A stage's next swap waits until
        // its last one proved itself on a batch (the detector gets one per closed window).
        wait_records(&handle, (i as u64 + 1) * 6000).await;
        let s = usize::from(i % 10 == 4);
        let (stage, path, versions) = &plugins[s];
        settled(&handle, stage, sent[s]).await;
        replace(path, &versions[sent[s] % 2]);
        handle.files_changed(vec![path.clone()]);
        sent[s] += 1;
    }
    for (s, (stage, ..)) in plugins.iter().enumerate() {
        settled(&handle, stage, sent[s]).await;
    }
    assert_eq!(sent, [90, 10]);
    assert!(
        records(&handle) < 1_000_000,
        "the stream ended before the last swap took"
    );
    let outcomes = handle.wait().await;
    assert!(outcomes.iter().all(|(_, r)| r.is_ok()), "{outcomes:?}");

    for file in ["windows.jsonl", "alerts.jsonl"] {
        let (a, b) = (
            sorted_lines(&calm.path().join(file)),
            sorted_lines(&busy.path().join(file)),
        );
        assert!(
            !a.is_empty(),
            "{file} is empty: the comparison would prove nothing"
        );
        assert_eq!(a.len(), b.len(), "{file}: row counts differ");
        let diff: Vec<_> = a.iter().zip(&b).filter(|(x, y)| x != y).take(2).collect();
        assert!(diff.is_empty(), "{file} differs after 100 swaps: {diff:#?}");
    }
    let alerts = read_jsonl(&busy.path().join("alerts.jsonl"));
    let kinds: Vec<&str> = alerts
        .iter()
        .filter_map(|a| a["alert_type"].as_str())
        .collect();
    assert!(
        kinds.contains(&"ctr_drop") && kinds.contains(&"traffic_spike"),
        "{kinds:?}"
    );
}

/// An endless stream through the `hostile` aggregate in its well-behaved mode, which
/// counts the rows it sees; its flushed count at the end shows whether any row was lost or
/// counted twice across all the attempted changes.
fn counting_pipeline(dir: &Path, mode: &str) -> String {
    format!(
        r#"
name = "counting"
dead_letter = "dead"
[source]
kind = "generator"
rate = 20000.0
seed = 3
batch_size = 500
flush_interval = "50ms"
{schema}
[[stage]]
name = "count"
plugin = "hostile.wasm"
config = {{ mode = "{mode}" }}
to = ["out"]
[sink.out]
kind = "file"
path = "{dir}/out.jsonl"
[sink.dead]
kind = "file"
path = "{dir}/dead.jsonl"
"#,
        schema = super::support::AD_SCHEMA,
        dir = dir.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_bad_version_is_rejected_while_the_old_one_keeps_counting() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = own_copy(dir.path(), "hostile");
    let good = std::fs::read(&wasm).unwrap();
    let file = pipeline_file(
        dir.path(),
        "counting.toml",
        &counting_pipeline(dir.path(), "ok"),
    );
    let handle = start(&file).await;
    let bad_plugins: [(&str, Vec<u8>); 3] = [
        (
            "does not compile",
            b"\0asm definitely not a component".to_vec(),
        ),
        ("wrong world", std::fs::read(plugin("quality")).unwrap()),
        (
            "rejects its config",
            std::fs::read(plugin("window_aggregate")).unwrap(),
        ),
    ];
    let mut n = 0;
    for (what, bytes) in bad_plugins {
        let before = records(&handle);
        replace(&wasm, &bytes);
        handle.files_changed(vec![wasm.clone()]);
        n += 1;
        let change = changes(&handle, n).await.pop().unwrap();
        assert!(!change.accepted, "{what}: accepted {change:?}");
        wait_records(&handle, before + 5000).await;
    }
    let got: Vec<String> = handle
        .board
        .changes()
        .iter()
        .map(|c| c.detail.clone())
        .collect();
    assert!(
        got[0].contains("not a valid WebAssembly component"),
        "{got:?}"
    );
    assert!(
        got[1].contains("implements the `validate` world"),
        "{got:?}"
    );
    assert!(got[2].contains("failed to start"), "{got:?}");

    replace(&wasm, &good);
    // Edits of the pipeline file: a new version that cannot take the running state, one
    // that fails its first batch, and a file that does not parse.
    let edits = [
        (
            "bad_restore",
            counting_pipeline(dir.path(), "bad_restore"),
            "restoring the running state failed",
        ),
        (
            "panic",
            counting_pipeline(dir.path(), "panic"),
            "failed on its first batch",
        ),
        (
            "syntax",
            counting_pipeline(dir.path(), "ok").replace("[[stage]]", "[[stage]"),
            "counting.toml:",
        ),
    ];
    for (what, text, expect) in edits {
        let before = records(&handle);
        std::fs::write(&file, text).unwrap();
        handle.files_changed(vec![file.clone()]);
        let began = Instant::now();
        let rejected = loop {
            if let Some(c) = handle
                .board
                .changes()
                .into_iter()
                .skip(n)
                .find(|c| !c.accepted)
            {
                break c;
            }
            assert!(
                began.elapsed() < Duration::from_secs(60),
                "{what}: no rejection in {:#?}",
                handle.board.changes()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert!(rejected.detail.contains(expect), "{what}: {rejected:?}");
        n = handle.board.changes().len();
        wait_records(&handle, before + 5000).await;
    }
    let status = handle.board.status();
    let stage = &status.pipelines[0].stages[0];
    assert_eq!(stage.plugin.hash.len(), 64);
    assert_eq!(
        stage.stats.failures, 0,
        "the failed first batch is not held against the old version"
    );
    let outcomes = handle.stop().await;
    let summary = match &outcomes[0].1 {
        Ok(s) => s.clone(),
        Err(e) => panic!("{e}"),
    };
    let out = read_jsonl(&dir.path().join("out.jsonl"));
    let counted: i64 = out
        .iter()
        .filter(|r| r["key"] == "rows")
        .filter_map(|r| r["count"].as_i64())
        .sum();
    assert_eq!(
        counted as u64, summary.stats.records,
        "rows lost or counted twice across the rejected changes"
    );
}

/// One 1 s window row per country × format, from an endless stream.
fn windows_pipeline(dir: &Path, extra_sink: bool) -> String {
    let (to, sink) = if extra_sink {
        (
            r#"["a", "b"]"#,
            "[sink.b]\nkind = \"file\"\npath = \"b.jsonl\"\n",
        )
    } else {
        (r#"["a"]"#, "")
    };
    format!(
        r#"
name = "edit"
dead_letter = "dead"
[source]
kind = "generator"
rate = 5000.0
seed = 5
align = "1s"
batch_size = 250
flush_interval = "50ms"
{schema}
[event_time]
column = "event_time"
delay = "0s"
[[stage]]
name = "windows"
plugin = "@PLUGINS@/window_aggregate.wasm"
config = {{ window = "1s", group_by = ["country"] }}
to = {to}
[sink.a]
kind = "file"
path = "a.jsonl"
[sink.dead]
kind = "file"
path = "dead.jsonl"
{sink}"#,
        schema = super::support::AD_SCHEMA,
    )
    .replace("a.jsonl", &dir.join("a.jsonl").display().to_string())
    .replace("b.jsonl", &dir.join("b.jsonl").display().to_string())
    .replace("dead.jsonl", &dir.join("dead.jsonl").display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_that_adds_a_sink_starts_it_without_interrupting_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline_file(
        dir.path(),
        "edit.toml",
        &windows_pipeline(dir.path(), false),
    );
    let mut sup = Supervisor::new(PluginEngine::new().unwrap());
    sup.start_file(&file)
        .await
        .unwrap_or_else(|d| panic!("{d:#?}"));
    // The real watcher this time: the edit is noticed, not announced.
    sup.watch().unwrap();
    let handle = sup.spawn();
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    wait_for(
        || a.exists() && window_starts(&a).len() >= 2,
        "windows in a",
    )
    .await;
    pipeline_file(dir.path(), "edit.toml", &windows_pipeline(dir.path(), true));
    let change = changes(&handle, 1).await.pop().unwrap();
    assert!(
        change.accepted && change.detail.contains("sinks opened: [b]"),
        "{change:?}"
    );
    wait_for(
        || b.exists() && window_starts(&b).len() >= 3,
        "windows in b",
    )
    .await;
    let outcomes = handle.stop().await;
    assert!(outcomes.iter().all(|(_, r)| r.is_ok()), "{outcomes:?}");

    let (in_a, in_b) = (window_starts(&a), window_starts(&b));
    // `a` was never reopened (which would have truncated it) and missed no window.
    assert!(
        in_a.windows(2).all(|w| w[1] - w[0] == 1000),
        "a has a gap: {in_a:?}"
    );
    assert!(
        in_a.first() < in_b.first(),
        "a lost its early windows: {in_a:?} vs {in_b:?}"
    );
    assert!(
        in_b.iter().all(|w| in_a.contains(w)),
        "b has windows a lacks"
    );
    let rows = |p: &Path, w: i64| {
        read_jsonl(p)
            .into_iter()
            .filter(|r| r["window_start"] == w)
            .collect::<Vec<Value>>()
    };
    let shared = in_b[1];
    assert_eq!(
        rows(&a, shared),
        rows(&b, shared),
        "a and b disagree on window {shared}"
    );
}

async fn wait_for(mut ready: impl FnMut() -> bool, what: &str) {
    let began = Instant::now();
    while !ready() {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "waited a minute for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A swap whose new version first runs in the stop's flush (a stage that only closed
/// windows reach) is still confirmed: the supervisor awaits it before it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_first_run_by_the_stops_flush_is_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    own_copy(dir.path(), "window_aggregate");
    let anomalies = own_copy(dir.path(), "anomaly_ema");
    // Hour-long windows: none closes before the stop, so `anomalies` gets no batch until
    // the flush.
    let text = metrics_pipeline_text(dir.path()).replace("window = \"1s\"", "window = \"1h\"");
    let file = pipeline_file(dir.path(), "flush.toml", &text);
    let handle = start(&file).await;
    wait_records(&handle, 20_000).await;
    let v2 = retag(&std::fs::read(&anomalies).unwrap(), 2);
    replace(&anomalies, &v2);
    // Events are handled in order: the swap is handed over before the stop is read.
    handle.files_changed(vec![anomalies]);
    let board = handle.board.clone();
    handle.stop().await;
    let changes = board.changes();
    let [change] = changes.as_slice() else {
        panic!("expected the one swap: {changes:#?}");
    };
    assert_eq!(change.stage.as_deref(), Some("anomalies"));
    assert!(change.accepted, "{change:?}");
    assert!(
        change.detail.starts_with("now runs anomaly-ema "),
        "{change:?}"
    );
}
