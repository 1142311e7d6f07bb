//! Hostile plugins (test-plugins/hostile, test-plugins/hostile-transform): whatever a plugin does,
//! the call ends, the batch is dead-lettered with the reason, the plugin restarts from its
//! last snapshot, and the stage's on_error decides the rest.

use super::support::{pipeline_file, read_jsonl};
use adstream::pipeline::{RunError, RunSummary};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use tokio::sync::watch;

/// `n` events in batches of `batch`, the `poison`-th (if any) with event_id `poison`.
pub(super) fn events(dir: &Path, n: usize, poison: Option<usize>) -> String {
    let lines: Vec<String> = (0..n)
        .map(|i| {
            let id = if Some(i) == poison {
                "poison".to_string()
            } else {
                format!("e{i}")
            };
            format!(
                r#"{{"event_id": "{id}", "event_time": {}}}"#,
                1_700_000_000_000i64 + i as i64
            )
        })
        .collect();
    let path = dir.join("events.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    path.display().to_string()
}

pub(super) fn pipeline(dir: &Path, input: &str, batch: usize, stage: &str) -> String {
    format!(
        r#"
dead_letter = "dead"
[source]
kind = "file"
path = "{input}"
batch_size = {batch}
[schema]
event_id = {{ type = "string", required = true }}
event_time = {{ type = "timestamp_ms", required = true }}
[[stage]]
name = "hostile"
{stage}
to = ["out"]
[sink.out]
kind = "file"
path = "{out}"
[sink.dead]
kind = "file"
path = "{dead}"
"#,
        out = dir.join("out.jsonl").display(),
        dead = dir.join("dead.jsonl").display(),
    )
}

pub(super) fn hostile(mode: &str, extra: &str) -> String {
    format!(
        "plugin = \"@TEST_PLUGINS@/hostile.wasm\"\nconfig = {{ mode = \"{mode}\" }}\nlimits = {{ deadline = \"300ms\", memory = \"32MiB\", max_output_rows = 5000 }}\n{extra}"
    )
}

pub(super) async fn run(dir: &Path, text: &str) -> Result<RunSummary, RunError> {
    let file = pipeline_file(dir, "p.toml", text);
    let cfg = adstream::config::load(&file).unwrap_or_else(|d| panic!("{d:#?}"));
    let engine = adstream::plugin::PluginEngine::new().unwrap();
    let p = adstream::pipeline::build(&cfg, &engine).unwrap_or_else(|d| panic!("{d:#?}"));
    let (_tx, rx) = watch::channel(false);
    adstream::pipeline::run(p, rx, None).await
}

pub(super) fn dead(dir: &Path) -> Vec<Value> {
    read_jsonl(&dir.join("dead.jsonl"))
}

/// The rows counter the hostile plugin flushes at the end.
pub(super) fn counted(dir: &Path) -> i64 {
    let out = read_jsonl(&dir.join("out.jsonl"));
    out.iter()
        .find(|r| r["key"] == "rows")
        .map(|r| r["count"].as_i64().unwrap())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_kind_of_failure_is_contained_and_dead_lettered_with_its_reason() {
    let cases = [
        ("loop", "exceeded its deadline of 300 ms"),
        ("memory", "exceeded its memory limit"),
        ("recursion", "unbounded recursion"),
        (
            "panic",
            "plugin stderr: panicked at test-plugins/hostile/src/lib.rs:",
        ),
        ("huge", "more than the stage's limit of 5000"),
        ("bad_lengths", "column `count` has 1 values for 2 rows"),
        (
            "bad_types",
            "column `count` is f64, but configure declared i64",
        ),
    ];
    for (mode, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let input = events(dir.path(), 40, None);
        let summary = run(
            dir.path(),
            &pipeline(dir.path(), &input, 20, &hostile(mode, "max_failures = 100")),
        )
        .await
        .unwrap();
        let dead = dead(dir.path());
        assert_eq!(
            dead.len(),
            40,
            "{mode}: every row of every failed batch is a dead letter"
        );
        for d in &dead {
            assert_eq!(
                (d["reason"].as_str(), d["stage"].as_str()),
                (Some("plugin_failure"), Some("hostile")),
                "{mode}: {d}"
            );
            assert_eq!(
                (d["plugin"].as_str(), d["plugin_version"].as_str()),
                (Some("hostile"), Some("0.1.0")),
                "{mode}"
            );
            assert!(
                d["error"].as_str().unwrap().contains(want),
                "{mode}: `{}` lacks `{want}`",
                d["error"]
            );
        }
        let stage = &summary.stats.stages[0].1;
        assert!(
            stage.restarts >= 2,
            "{mode}: restarted after each trap: {stage:?}"
        );
        assert_eq!(
            stage.timeouts > 0,
            mode == "loop",
            "{mode}: only deadlines count as timeouts: {stage:?}"
        );
        assert_eq!(stage.dead_letters, 40, "{mode}: {stage:?}");
        // The state survived every restart: nothing was counted twice or by a failed call.
        assert_eq!(counted(dir.path()), 0, "{mode}");
    }
}

/// A call stopped at its deadline is not bisected (a timeout does not say which row is
/// bad), so a plugin that times out on every call costs one deadline per batch and is
/// quarantined after `max_failures` of them: the bound docs/pipelines.md states.
#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_that_always_times_out_costs_one_deadline_per_batch_until_quarantine() {
    let dir = tempfile::tempdir().unwrap();
    let input = events(dir.path(), 2000, None);
    let summary = run(
        dir.path(),
        &pipeline(
            dir.path(),
            &input,
            100,
            &hostile("loop", "max_failures = 5"),
        ),
    )
    .await
    .unwrap();
    let stage = &summary.stats.stages[0].1;
    assert_eq!(
        (stage.timeouts, stage.calls, stage.quarantined),
        (5, 5, true),
        "one call per failed batch, none after quarantine: {stage:?}"
    );
    assert_eq!(stage.dead_letters, 2000, "{stage:?}");
    // Five deadlines of 300 ms; bisecting each batch had cost up to 199 calls per batch.
    assert_eq!(dead(dir.path()).len(), 2000);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poisoned_row_is_found_and_only_it_is_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let input = events(dir.path(), 1000, Some(437));
    let summary = run(
        dir.path(),
        &pipeline(dir.path(), &input, 250, &hostile("poison", "")),
    )
    .await
    .unwrap();
    let dead = dead(dir.path());
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0]["payload"].as_str().unwrap().contains("\"poison\""));
    assert_eq!(
        dead[0]["offset"], 438,
        "the line number of the poisoned row"
    );
    // Every other row was counted exactly once, across the restarts the bisection caused.
    assert_eq!(counted(dir.path()), 999);
    assert_eq!(summary.stats.stages[0].1.failing_in_a_row, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn on_error_skip_passes_the_batch_on_and_stop_stops_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let input = events(dir.path(), 30, Some(5));
    let skip = "plugin = \"@TEST_PLUGINS@/hostile_transform.wasm\"\non_error = \"skip\"";
    run(dir.path(), &pipeline(dir.path(), &input, 10, skip))
        .await
        .unwrap();
    let out = read_jsonl(&dir.path().join("out.jsonl"));
    assert_eq!(out.len(), 30, "skipped, not lost");
    assert!(dead(dir.path()).is_empty());

    let dir = tempfile::tempdir().unwrap();
    let input = events(dir.path(), 30, Some(5));
    let err = run(
        dir.path(),
        &pipeline(
            dir.path(),
            &input,
            10,
            &hostile("poison", "on_error = \"stop\""),
        ),
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("stage `hostile` stopped the pipeline") && text.contains("poisoned row"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_that_keeps_failing_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let input = events(dir.path(), 100, None);
    let summary = run(
        dir.path(),
        &pipeline(
            dir.path(),
            &input,
            10,
            &hostile("panic", "max_failures = 3"),
        ),
    )
    .await
    .unwrap();
    let stage = &summary.stats.stages[0].1;
    assert!(stage.quarantined);
    // Three batches were tried, each with one split (both halves fail, so the search
    // stops); the other seven were not given to the plugin at all.
    assert_eq!(stage.failures, 3 * 3, "{stage:?}");
    let dead = dead(dir.path());
    assert_eq!(dead.len(), 100);
    assert!(
        dead.last().unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("quarantined")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_has_no_files_sockets_environment_or_clock() {
    let dir = tempfile::tempdir().unwrap();
    let input = events(dir.path(), 3, None);
    run(
        dir.path(),
        &pipeline(dir.path(), &input, 10, &hostile("ambient", "")),
    )
    .await
    .unwrap();
    let out = read_jsonl(&dir.path().join("out.jsonl"));
    let got = |k: &str| {
        out.iter()
            .find(|r| r["key"] == k)
            .map(|r| r["count"].as_i64().unwrap())
    };
    for probe in [
        "read_file",
        "list_dir",
        "write_file",
        "env_vars",
        "tcp_connect",
        "dns",
        "clock_seconds",
    ] {
        assert_eq!(
            got(probe),
            Some(0),
            "{probe} should have been refused (or read zero)"
        );
    }
    assert!(!Path::new("/tmp/adstream-hostile").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn fuel_stops_a_loop_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let input = events(dir.path(), 5, None);
    let stage = "plugin = \"@TEST_PLUGINS@/hostile.wasm\"\nconfig = { mode = \"loop\" }\nlimits = { fuel = 5000000, deadline = \"30s\" }";
    run(dir.path(), &pipeline(dir.path(), &input, 10, stage))
        .await
        .unwrap();
    let dead = dead(dir.path());
    assert_eq!(dead.len(), 5);
    assert!(
        dead[0]["error"]
            .as_str()
            .unwrap()
            .contains("ran out of fuel (5000000 units per call)"),
        "{}",
        dead[0]
    );
}

/// A stuck plugin in one pipeline does not hold up another running beside it.
#[tokio::test(flavor = "multi_thread")]
async fn other_pipelines_keep_running_beside_a_stuck_plugin() {
    let (stuck_dir, good_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let stuck_input = events(stuck_dir.path(), 200, None);
    let stuck = pipeline(
        stuck_dir.path(),
        &stuck_input,
        10,
        &hostile("loop", "max_failures = 100"),
    );
    let good_input = events(good_dir.path(), 50_000, None);
    let good = pipeline(good_dir.path(), &good_input, 1000, &hostile("ok", ""));
    let stuck = tokio::spawn({
        let d = stuck_dir.path().to_path_buf();
        async move { run(&d, &stuck).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let good = run(good_dir.path(), &good).await.unwrap();
    assert_eq!(good.stats.records, 50_000);
    assert_eq!(counted(good_dir.path()), 50_000);
    assert!(
        !stuck.is_finished(),
        "the stuck pipeline is still working through its timeouts"
    );
    stuck.abort();
}
