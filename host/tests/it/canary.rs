//! Canary swaps with the real plugins, through the supervisor that `adstream run` uses: a
//! candidate runs in shadow on the stream, is compared and reported, and (with
//! `promote = "auto"`) takes over when it matched, changing no result.

use super::support::{AD_SCHEMA, pipeline_file, plugin, sorted_lines, window_starts};
use adstream::pipeline::{CanaryReport, CanaryState};
use adstream::plugin::{PluginEngine, retag};
use adstream::supervisor::{Board, Change, Supervisor};
use std::path::Path;
use std::sync::Arc;

/// 100,000 generated events (5 s, with a CTR drop) through 1 s windows and the anomaly
/// rules, as fast as they come, 200 batches; `windows` and `anomalies` take the extra lines given.
fn pipeline(dir: &Path, name: &str, windows: &str, anomalies: &str) -> std::path::PathBuf {
    let text = format!(
        r#"
name = "{name}"
dead_letter = "dead"
[source]
kind = "generator"
rate = 20000.0
count = 100000
start = 1767225600000
seed = 11
batch_size = 500
[[source.scenario]]
kind = "ctr_drop"
at = "3s"
country = "US"
ad_format = "banner"
{AD_SCHEMA}
[event_time]
column = "event_time"
delay = "0s"
[[stage]]
name = "windows"
plugin = "@PLUGINS@/window_aggregate.wasm"
config = {{ window = "1s", group_by = ["country", "ad_format"] }}
to = ["windows"]
{windows}
[[stage]]
name = "anomalies"
plugin = "@PLUGINS@/anomaly_ema.wasm"
config = {{ min_impressions = 200 }}
to = ["alerts"]
{anomalies}
[sink.windows]
kind = "file"
path = "{dir}/{name}-windows.jsonl"
[sink.alerts]
kind = "file"
path = "{dir}/{name}-alerts.jsonl"
[sink.dead]
kind = "file"
path = "{dir}/{name}-dead.jsonl"
"#,
        dir = dir.display()
    );
    pipeline_file(dir, &format!("{name}.toml"), &text)
}

/// Runs a pipeline file to its end; the board it leaves.
async fn run(file: &Path) -> Arc<Board> {
    let mut sup = Supervisor::new(PluginEngine::new().unwrap());
    sup.start_file(file)
        .await
        .unwrap_or_else(|d| panic!("{d:#?}"));
    let handle = sup.spawn();
    let board = handle.board.clone();
    for (name, outcome) in handle.wait().await {
        outcome.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    board
}

fn canary(board: &Board, stage: &str) -> CanaryReport {
    let status = board.status();
    let st = status.pipelines[0]
        .stages
        .iter()
        .find(|s| s.name == stage)
        .unwrap();
    st.stats.canary.clone().expect("the stage has a canary")
}

fn canary_changes(board: &Board) -> Vec<Change> {
    board
        .changes()
        .into_iter()
        .filter(|c| c.kind == "canary")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matching_canary_with_promote_auto_takes_over_mid_stream_and_changes_no_result() {
    let dir = tempfile::tempdir().unwrap();
    let v2 = dir.path().join("window_aggregate_v2.wasm");
    std::fs::write(
        &v2,
        retag(&std::fs::read(plugin("window_aggregate")).unwrap(), 2),
    )
    .unwrap();
    let canary_table = format!(
        "[stage.canary]\nplugin = \"{}\"\nbatches = 120\npromote = \"auto\"",
        v2.display()
    );
    let plain = run(&pipeline(dir.path(), "plain", "", "")).await;
    let board = run(&pipeline(dir.path(), "canary", &canary_table, "")).await;

    let c = canary(&board, "windows");
    assert_eq!(c.state, CanaryState::Promoted, "{c:#?}");
    assert_eq!((c.calls, c.diff.differing()), (120, 0));
    assert!(
        c.rows_current > 0 && c.diff.same == c.rows_current,
        "{c:#?}"
    );
    let status = board.status();
    let windows = &status.pipelines[0].stages[0];
    assert_eq!(
        windows.plugin.hash, c.hash,
        "status shows the promoted version"
    );
    assert_ne!(
        windows.plugin.hash,
        plain.status().pipelines[0].stages[0].plugin.hash
    );
    let changes = canary_changes(&board);
    assert!(
        changes.len() == 1 && changes[0].accepted && changes[0].detail.contains("Promoted"),
        "{changes:#?}"
    );
    for sink in ["windows", "alerts"] {
        let (a, b) = (
            sorted_lines(&dir.path().join(format!("plain-{sink}.jsonl"))),
            sorted_lines(&dir.path().join(format!("canary-{sink}.jsonl"))),
        );
        assert!(!a.is_empty());
        assert_eq!(a, b, "the promotion changed the `{sink}` rows");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_differing_canary_is_reported_with_examples_and_emits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // The candidate is the same plugin with a rule that holds every alert back.
    let canary_table = "[stage.canary]\nconfig = { min_impressions = 100000000 }\nbatches = 1000";
    let plain = run(&pipeline(dir.path(), "plain", "", "")).await;
    let board = run(&pipeline(dir.path(), "canary", "", canary_table)).await;

    let alerts = sorted_lines(&dir.path().join("plain-alerts.jsonl"));
    assert!(!alerts.is_empty(), "the running rules raise alerts");
    assert_eq!(
        alerts,
        sorted_lines(&dir.path().join("canary-alerts.jsonl")),
        "only the running version's alerts reach the sink"
    );
    let c = canary(&board, "anomalies");
    // The source ended before 1000 calls: the canary was still comparing.
    assert_eq!(c.state, CanaryState::Comparing, "{c:#?}");
    assert_eq!(
        (c.rows_current, c.rows_candidate, c.diff.removed),
        (alerts.len() as u64, 0, alerts.len() as u64)
    );
    assert!(
        c.diff.examples[0].starts_with("- {"),
        "{:?}",
        c.diff.examples
    );
    let status = board.status();
    assert_eq!(
        status.pipelines[0].stages[1].plugin.hash,
        plain.status().pipelines[0].stages[1].plugin.hash,
        "the running version stays"
    );
    assert!(canary_changes(&board).is_empty());
}

#[test]
fn a_canary_of_another_world_or_a_bad_tolerance_is_an_error_at_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = format!(
        "[stage.canary]\nplugin = \"{}\"\ntolerance = -1.0",
        plugin("anomaly_ema").display()
    );
    let file = pipeline(dir.path(), "bad", &wrong, "");
    let diags = adstream::config::load(&file).unwrap_err();
    let text: Vec<String> = diags.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|d| d.contains("bad.toml:") && d.contains("canary.tolerance")),
        "{text:#?}"
    );
    let file = pipeline(dir.path(), "wrong", &wrong.replace("-1.0", "0.0"), "");
    let cfg = adstream::config::load(&file).unwrap();
    let engine = PluginEngine::new().unwrap();
    let Err(diags) = adstream::pipeline::build(&cfg, &engine) else {
        panic!("a detect plugin cannot be a canary of an aggregate stage");
    };
    let text: Vec<String> = diags.iter().map(ToString::to_string).collect();
    assert!(
        text.iter().any(|d| d.contains("wrong.toml:")
            && d.contains("canary")
            && d.contains("`detect` world")),
        "{text:#?}"
    );
}

/// One 1 s window row per country, from an endless paced stream, as `adstream run` runs it.
fn live_pipeline(dir: &Path, canary: &str) -> String {
    format!(
        r#"
name = "live"
dead_letter = "dead"
[source]
kind = "generator"
rate = 5000.0
seed = 5
align = "1s"
batch_size = 250
flush_interval = "50ms"
{AD_SCHEMA}
[event_time]
column = "event_time"
delay = "0s"
[[stage]]
name = "windows"
plugin = "@PLUGINS@/window_aggregate.wasm"
config = {{ window = "1s", group_by = ["country"] }}
to = ["a"]
{canary}
[sink.a]
kind = "file"
path = "{dir}/a.jsonl"
[sink.dead]
kind = "file"
path = "{dir}/dead.jsonl"
"#,
        dir = dir.display()
    )
}

async fn until(board: &Board, what: &str, ready: impl Fn(Option<CanaryReport>) -> bool) {
    let began = std::time::Instant::now();
    while !ready(canary_of(board)) {
        assert!(
            began.elapsed() < std::time::Duration::from_secs(60),
            "waited a minute for {what}: {:#?}",
            canary_of(board)
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn canary_of(board: &Board) -> Option<CanaryReport> {
    board.status().pipelines.first()?.stages[0]
        .stats
        .canary
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_added_rebuilt_and_removed_by_editing_while_the_host_runs() {
    let dir = tempfile::tempdir().unwrap();
    let v2 = dir.path().join("v2.wasm");
    let shipped = std::fs::read(plugin("window_aggregate")).unwrap();
    std::fs::write(&v2, retag(&shipped, 2)).unwrap();
    let write =
        |canary: &str| pipeline_file(dir.path(), "live.toml", &live_pipeline(dir.path(), canary));
    let file = write("");
    let mut sup = Supervisor::new(PluginEngine::new().unwrap());
    sup.start_file(&file)
        .await
        .unwrap_or_else(|d| panic!("{d:#?}"));
    sup.watch().unwrap();
    let handle = sup.spawn();

    let table = format!(
        "[stage.canary]\nplugin = \"{}\"\nbatches = 100000",
        v2.display()
    );
    write(&table);
    until(&handle.board, "windows compared", |c| {
        c.is_some_and(|c| c.diff.same >= 3)
    })
    .await;
    let first = canary_of(&handle.board).unwrap();
    assert_eq!(
        (first.state, first.diff.differing()),
        (CanaryState::Comparing, 0)
    );

    // A new build of the candidate starts the comparison again, with the new build.
    let v3 = retag(&shipped, 3);
    std::fs::write(dir.path().join("v3.tmp"), &v3).unwrap();
    std::fs::rename(dir.path().join("v3.tmp"), &v2).unwrap();
    let hash = adstream::plugin::sha256_hex(&v3);
    until(&handle.board, "the rebuilt candidate", |c| {
        c.is_some_and(|c| c.hash == hash && c.diff.same >= 2)
    })
    .await;

    write("");
    until(&handle.board, "the canary removed", |c| c.is_none()).await;
    let outcomes = handle.stop().await;
    assert!(outcomes.iter().all(|(_, r)| r.is_ok()), "{outcomes:?}");
    let starts = window_starts(&dir.path().join("a.jsonl"));
    assert!(
        starts.windows(2).all(|w| w[1] - w[0] == 1000),
        "the stage's own output has a gap: {starts:?}"
    );
}
