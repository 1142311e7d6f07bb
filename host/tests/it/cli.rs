//! The `adstream` binary as a user runs it.

use super::support::{AD_SCHEMA, pipeline_file, read_jsonl};
use std::process::{Command, Stdio};
use std::time::Duration;

fn adstream() -> Command {
    Command::new(env!("CARGO_BIN_EXE_adstream"))
}

#[test]
fn check_exits_non_zero_and_prints_positions() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline_file(dir.path(), "bad.toml", "[source]\nkind = \"nope\"\n");
    let out = adstream().arg("check").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:2:8: unknown source kind `nope`"),
        "{err}"
    );
    assert!(
        err.contains("bad.toml:1:1: the pipeline has no [schema]"),
        "{err}"
    );
    let good = super::support::root().join("pipelines/demo.toml");
    let out = adstream().arg("check").arg(&good).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok: pipeline `demo`"));
}

/// Ctrl-C flushes open windows before exit: the windows of events already read appear.
#[test]
fn interrupt_flushes_open_windows() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("windows.jsonl");
    let text = format!(
        r#"
[source]
kind = "generator"
rate = 2000.0
start = 1700000000000
{AD_SCHEMA}
[[stage]]
name = "windows"
plugin = "@PLUGINS@/window_aggregate.wasm"
config = {{ window = "1h", group_by = ["country"] }}
to = ["out"]
[sink.out]
kind = "file"
path = "{}"
"#,
        out.display()
    );
    let file = pipeline_file(dir.path(), "p.toml", &text);
    let child = adstream()
        .arg("run")
        .arg(&file)
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let result = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{err}");
    assert!(err.contains("flushing open windows"), "{err}");
    let windows = read_jsonl(&out);
    assert_eq!(
        windows.len(),
        5,
        "one open 1 h window per country, flushed: {windows:?}"
    );
    let events: i64 = windows
        .iter()
        .map(|w| {
            ["requests", "impressions", "clicks", "conversions"]
                .iter()
                .map(|k| w[k].as_i64().unwrap())
                .sum::<i64>()
        })
        .sum();
    assert!(
        events > 2000,
        "about 3 s of 2000 events/s went in: {events}"
    );
}

#[test]
fn run_stops_after_its_duration_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[source]\nkind = \"generator\"\nrate = 500.0\n{AD_SCHEMA}\n[sink.unused]\nkind = \"stdout\"\n"
    );
    let file = pipeline_file(dir.path(), "p.toml", &text);
    let out = adstream()
        .args(["run", "--duration", "1"])
        .arg(&file)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("pipeline `p` finished in"), "{err}");
}
