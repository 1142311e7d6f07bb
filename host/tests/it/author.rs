//! The plugin author's commands as an author runs them: `adstream check PLUGIN.wasm` and
//! `adstream test`, on the shipped plugins, including the ways they are misused.

use super::support::plugin;
use std::path::Path;
use std::process::{Command, Output};

fn adstream(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adstream"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Ten events: two countries, one with a negative revenue.
fn events(dir: &Path) {
    let lines: Vec<String> = (0..10)
        .map(|i| {
            let revenue = if i == 3 { -1.0 } else { 0.5 };
            let country = if i % 2 == 0 { "US" } else { "KR" };
            format!(
                r#"{{"event_id": "e{i}", "event_time": {}, "event_type": "impression", "country": "{country}", "ad_format": "banner", "revenue": {revenue}}}"#,
                1_767_225_600_000i64 + i * 1000
            )
        })
        .collect();
    std::fs::write(dir.join("events.jsonl"), lines.join("\n")).unwrap();
}

#[test]
fn check_describes_a_plugin_and_refuses_what_is_not_one() {
    let dir = tempfile::tempdir().unwrap();
    events(dir.path());
    let quality = plugin("quality").display().to_string();
    let config = r#"{"rules": [{"rule": "in_range", "column": "revenue", "min": 0.0}]}"#;
    let out = adstream(
        &[
            "check",
            &quality,
            "--config",
            config,
            "--input",
            "events.jsonl",
        ],
        dir.path(),
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("ok: validate plugin `quality` 0.1.0 (world `stateful-validate`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("exports: info, configure, validate, snapshot, restore"),
        "{stdout}"
    );
    assert!(
        stdout.contains("imports: adstream:plugin/host@0.1.0"),
        "{stdout}"
    );
    // A validate plugin declares no columns of its own: it passes its input on.
    assert!(stdout.contains("declares:"), "{stdout}");

    std::fs::write(dir.path().join("junk.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let out = adstream(&["check", "junk.wasm"], dir.path());
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("junk.wasm is not"), "{stderr}");
    let out = adstream(&["check", &quality, "--config", "{not json"], dir.path());
    assert!(!out.status.success());
}

#[test]
fn test_compares_a_plugins_output_with_the_expected_rows() {
    let dir = tempfile::tempdir().unwrap();
    events(dir.path());
    let quality = plugin("quality").display().to_string();
    let config = r#"{"rules": [{"rule": "in_range", "column": "revenue", "min": 0.0}]}"#;
    // Without an expectation the output is printed: the author keeps it once checked.
    let args = [
        "test",
        &quality,
        "--input",
        "events.jsonl",
        "--config",
        config,
    ];
    let out = adstream(&args, dir.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.lines().count(), 9, "{stdout}");
    assert!(stderr.contains("9 rows out, 1 dead letters"), "{stderr}");
    std::fs::write(dir.path().join("expected.jsonl"), &stdout).unwrap();

    // The plugin named relative to the case file, as `adstream new` writes it.
    std::fs::create_dir(dir.path().join("built")).unwrap();
    std::fs::copy(&quality, dir.path().join("built/quality.wasm")).unwrap();
    let cases = r#"
plugin = "built/quality.wasm"
[[case]]
name = "negative revenue is rejected"
input = "events.jsonl"
expect = "expected.jsonl"
config = { rules = [{ rule = "in_range", column = "revenue", min = 0.0 }] }
batch_size = 3
dead_letters = 1

[[case]]
name = "a stricter rule rejects more than expected"
input = "events.jsonl"
expect = "expected.jsonl"
config = { rules = [{ rule = "in_set", column = "country", values = ["US"] }] }
"#;
    std::fs::write(dir.path().join("cases.toml"), cases).unwrap();
    let out = adstream(&["test", "cases.toml"], dir.path());
    let (_, stderr) = text(&out);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("case `negative revenue is rejected`: ok (9 rows)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("case `a stricter rule rejects more than expected`: FAILED"),
        "{stderr}"
    );
    assert!(stderr.contains("expected 9 rows, got 5"), "{stderr}");
    assert!(stderr.contains("2 case(s), 1 passed, 1 failed"), "{stderr}");
}

#[test]
fn a_malformed_case_file_or_input_is_named_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cases.toml"),
        "plugin = \"x.wasm\"\n[[case]]\nname = 3\n",
    )
    .unwrap();
    let out = adstream(&["test", "cases.toml"], dir.path());
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cases.toml") && stderr.contains("name"),
        "{stderr}"
    );

    std::fs::write(dir.path().join("bad.jsonl"), "{\"event_id\": \"a\"}\n").unwrap();
    let quality = plugin("quality").display().to_string();
    let out = adstream(&["test", &quality, "--input", "bad.jsonl"], dir.path());
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("every row needs `event_time`"), "{stderr}");
}

fn cargo(args: &[&str], dir: &Path) {
    let out = Command::new("cargo")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_new_project_of_each_role_builds_and_passes_its_own_cases() {
    let dir = tempfile::tempdir().unwrap();
    for role in ["transform", "validate", "aggregate", "detect", "format"] {
        let name = format!("my-{role}");
        let out = adstream(&["new", role, &name], dir.path());
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stdout.contains(&format!("created {role} plugin `{name}`")),
            "{stdout}"
        );
        let project = dir.path().join(&name);
        cargo(
            &["build", "--release", "--target", "wasm32-wasip2"],
            &project,
        );
        if role == "aggregate" {
            // The rule's own unit tests, natively (release: reuses the built SDK).
            cargo(&["test", "--release"], &project);
        }
        // The case file names target/...; with CARGO_TARGET_DIR set it is found there.
        let out = adstream(&["test", "cases.toml"], &project);
        let (_, stderr) = text(&out);
        assert!(out.status.success(), "{role}: {stderr}");
        assert!(
            stderr.contains("1 case(s), 1 passed, 0 failed"),
            "{role}: {stderr}"
        );
    }
    // Nothing is overwritten, and a wrong role or name is refused.
    for (args, want) in [
        (["new", "detect", "my-detect"], "exists already"),
        (["new", "sorter", "my-sorter"], "no role `sorter`"),
        (["new", "detect", "My Rule"], "lower-case letters"),
    ] {
        let out = adstream(&args, dir.path());
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(want), "{stderr}");
    }
}

#[test]
fn replay_backtests_a_changed_stage_against_a_recording_without_touching_services() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec.jsonl");
    let rec = rec.to_str().unwrap();
    let out = adstream(
        &[
            "generate",
            "--out",
            rec,
            "--count",
            "600000",
            "--no-pace",
            "--rate",
            "20000",
            "--align",
            "10s",
            "--scenario",
            "ctr_drop@20s:US/banner",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let demo = super::support::root().join("pipelines/demo.toml");
    let demo = demo.to_str().unwrap();
    let out = adstream(&["replay", demo, "--input", rec], dir.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("sink `alerts`: 1 rows"), "{stdout}");
    assert!(stdout.contains("sink `windows_10s`: 60 rows"), "{stdout}");

    // A new baseline smoothing changes the alert's expected value: one alert replaced.
    let args = [
        "replay",
        demo,
        "--input",
        rec,
        "--swap",
        "anomalies",
        "--config",
    ];
    let out = adstream(
        &[&args[..], &[r#"{"min_impressions": 1000, "alpha": 0.8}"#]].concat(),
        dir.path(),
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("sink `alerts`: 1 rows before, 1 after: 1 added, 1 removed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sink `windows_10s`: 60 rows before, 60 after: the same"),
        "{stdout}"
    );

    // The same build under another name changes nothing.
    let wasm = super::support::plugin("window_aggregate");
    let swap = format!("metrics_1m={}", wasm.display());
    let out = adstream(
        &["replay", demo, "--input", rec, "--swap", &swap],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out).0);
    let out = adstream(
        &["replay", demo, "--input", rec, "--swap", "nosuch=x.wasm"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("no stage `nosuch`"));

    // The production pipeline replays with its broker, ClickHouse and Redis unreachable:
    // its source and sinks are replaced by files.
    let prod = super::support::root().join("pipelines/ad-metrics.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_adstream"))
        .args(["replay", prod.to_str().unwrap(), "--input", rec])
        .current_dir(dir.path())
        .env("ADSTREAM_KAFKA", "127.0.0.1:1")
        .env("ADSTREAM_CLICKHOUSE", "http://127.0.0.1:1")
        .env("ADSTREAM_REDIS", "redis://127.0.0.1:1")
        .env("ADSTREAM_PII_KEY", "replay-test-key-not-a-secret")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("sink `clickhouse_10s`: 60 rows"),
        "{stdout}"
    );
}
