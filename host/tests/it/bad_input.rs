//! Bad data of every kind: each record goes to the dead letters with its reason and its
//! position, is counted, and the pipeline goes on. Nothing is dropped silently:
//! input = output + dead letters.

use super::support::{pipeline_file, read_jsonl};
use tokio::sync::watch;

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_of_bad_record_is_dead_lettered_with_reason_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let ok = |id: &str| {
        format!(r#"{{"event_id": "{id}", "event_time": {now}, "revenue": 1.0}}"#).into_bytes()
    };
    let mut lines: Vec<(Vec<u8>, &str)> = vec![
        (ok("first"), ""),
        (
            b"{\"event_id\": \"x\", \"event_time\": ".to_vec(),
            "EOF while parsing",
        ),
        (
            r#"{"event_id": "x", "revenue": 1.0}"#.as_bytes().to_vec(),
            "missing required field `event_time`",
        ),
        (
            r#"{"event_id": "x", "event_time": "yesterday"}"#.as_bytes().to_vec(),
            "field `event_time`: expected a timestamp",
        ),
        (
            format!(r#"{{"event_id": "x", "event_time": {now}, "revenue": -5.0}}"#).into_bytes(),
            "in_range:revenue",
        ),
        (
            b"{\"event_id\": \"\xff\xfe\", \"event_time\": 1}".to_vec(),
            "invalid event: Invalid UTF-8 characters in json at line 1 column 15",
        ),
        (
            format!(
                r#"{{"event_id": "{}", "event_time": {now}}}"#,
                "y".repeat(400)
            )
            .into_bytes(),
            "more than max_record_bytes (300)",
        ),
        (
            format!(
                r#"{{"event_id": "x", "event_time": {}}}"#,
                now + 10 * 86_400_000
            )
            .into_bytes(),
            "past the host's clock",
        ),
        (
            r#"{"event_id": "x", "event_time": 0}"#.as_bytes().to_vec(),
            "before the host's clock",
        ),
        (ok("last"), ""),
    ];
    lines.push((b"[]".to_vec(), "expected a JSON object"));
    let mut input = Vec::new();
    for (l, _) in &lines {
        input.extend_from_slice(l);
        input.push(b'\n');
    }
    let input_path = dir.path().join("in.jsonl");
    std::fs::write(&input_path, input).unwrap();
    let text = format!(
        r#"
dead_letter = "dead"
max_record_bytes = 300
[source]
kind = "file"
path = "{input}"
batch_size = 4
[schema]
event_id = {{ type = "string", required = true }}
event_time = {{ type = "timestamp_ms", required = true }}
revenue = "f64"
[event_time]
max_future = "1h"
max_past = "365d"
[[stage]]
name = "quality"
plugin = "@PLUGINS@/quality.wasm"
config.rules = [{{ rule = "in_range", column = "revenue", min = 0.0 }}]
to = ["out"]
[sink.out]
kind = "file"
path = "{out}"
[sink.dead]
kind = "file"
path = "{dead}"
"#,
        input = input_path.display(),
        out = dir.path().join("out.jsonl").display(),
        dead = dir.path().join("dead.jsonl").display(),
    );
    let file = pipeline_file(dir.path(), "p.toml", &text);
    let cfg = adstream::config::load(&file).unwrap();
    let engine = adstream::plugin::PluginEngine::new().unwrap();
    let p = adstream::pipeline::build(&cfg, &engine).unwrap();
    let (_tx, rx) = watch::channel(false);
    let summary = adstream::pipeline::run(p, rx, None).await.unwrap();

    let out = read_jsonl(&dir.path().join("out.jsonl"));
    let dead = read_jsonl(&dir.path().join("dead.jsonl"));
    assert_eq!(
        out.len() + dead.len(),
        lines.len(),
        "input = output + dead letters"
    );
    assert_eq!(
        out.iter()
            .map(|r| r["event_id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["first", "last"]
    );
    assert_eq!(summary.stats.records as usize, lines.len());
    assert_eq!(summary.stats.decode_errors, 8);
    assert_eq!(summary.stats.dead_letters as usize, dead.len());
    for d in &dead {
        let line = d["offset"].as_i64().unwrap() as usize;
        let want = lines[line - 1].1;
        assert!(
            !want.is_empty(),
            "line {line} should not be a dead letter: {d}"
        );
        assert!(
            d["error"].as_str().unwrap().contains(want),
            "line {line}: `{}` lacks `{want}`",
            d["error"]
        );
        assert_eq!(
            d["source"].as_str().unwrap(),
            input_path.display().to_string()
        );
    }
}
