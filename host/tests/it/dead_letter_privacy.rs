//! No personal field leaves in clear through the dead letters. Records fail before the
//! pipeline's `pii` stage in every way there is — undecodable (truncated, a personal field
//! of the wrong type quoted in the error, an unknown field with an e-mail), a row a plugin
//! traps on, a row a quality rule rejects — and under each `[privacy]` policy the
//! dead-letter file holds none of their personal values; `hash` writes pii-hash's keyed
//! hash, so a rejected row can still be matched to the stored ones.

use super::support::{pipeline_file, read_jsonl};

const KEY: &str = "dead-letter-test-key-0123456789";

/// Personal values that reach the dead letters, and nowhere else in clear.
const PERSONAL: [&str; 9] = [
    "u-poison-77",
    "198.51.100.77",
    "u-trunc-55",
    "u-wrong-66",
    "12345678",
    "u-extra-88",
    "secret@example.com",
    "u-1001",
    "dev-neg-9",
];

fn input() -> String {
    let ok = |i: u32, user: &str| {
        format!(
            r#"{{"event_id":"e{i}","event_time":1700000000000,"event_type":"impression","country":"US","ad_format":"banner","user_id":"{user}","device_id":"dev-{i}","ip":"203.0.113.{i}","revenue":0.5,"cost":0.1}}"#
        )
    };
    [
        ok(1, "u-1001"),
        ok(2, "u-1002"),
        r#"{"event_id":"poison","event_time":1700000000000,"event_type":"click","country":"US","ad_format":"banner","user_id":"u-poison-77","ip":"198.51.100.77"}"#.into(),
        r#"{"event_id":"t1","event_time":1700000000000,"user_id":"u-trunc-55","ip":"198.51"#.into(),
        r#"{"event_id":"w1","event_time":1700000000000,"event_type":"click","country":"US","ad_format":"banner","user_id":"u-wrong-66","ip":12345678}"#.into(),
        r#"{"event_id":"x1","event_time":1700000000000,"event_type":"click","country":"US","ad_format":"banner","user_id":"u-extra-88","email":"secret@example.com","revenue":"lots"}"#.into(),
        r#"{"event_id":"n1","event_time":1700000000000,"event_type":"click","country":"US","ad_format":"banner","user_id":"u-1001","device_id":"dev-neg-9","revenue":-5.0}"#.into(),
        ok(3, "u-1003"),
    ]
    .join("\n")
}

fn pipeline(dir: &std::path::Path, policy: &str) -> String {
    let key = if policy == "hash" {
        format!("key = {{ insecure_value = \"{KEY}\" }}")
    } else {
        String::new()
    };
    format!(
        r#"
dead_letter = "dead"
[source]
kind = "file"
path = "{input}"
batch_size = 100
[schema]
event_id = {{ type = "string", required = true }}
event_time = {{ type = "timestamp_ms", required = true }}
event_type = {{ type = "dict", required = true }}
country = {{ type = "dict", required = true }}
ad_format = {{ type = "dict", required = true }}
user_id = {{ type = "string", personal = true }}
device_id = {{ type = "string", personal = true }}
ip = {{ type = "string", personal = true }}
revenue = "f64"
cost = "f64"
[privacy]
dead_letters = "{policy}"
{key}
[[stage]]
name = "trap"
plugin = "@TEST_PLUGINS@/hostile_transform.wasm"
[[stage]]
name = "quality"
plugin = "@PLUGINS@/quality.wasm"
config.rules = [{{ rule = "in_range", column = "revenue", min = 0.0 }}]
[[stage]]
name = "pii"
plugin = "@PLUGINS@/pii_hash.wasm"
secrets.key = {{ insecure_value = "{KEY}" }}
config = {{ hash = ["user_id", "device_id"], truncate_ip = ["ip"] }}
to = ["out"]
[sink.out]
kind = "file"
path = "{out}"
[sink.dead]
kind = "file"
path = "{dead}"
"#,
        input = dir.join("in.jsonl").display(),
        out = dir.join("out.jsonl").display(),
        dead = dir.join("dead.jsonl").display(),
    )
}

async fn run(policy: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.jsonl"), input()).unwrap();
    let file = pipeline_file(dir.path(), "p.toml", &pipeline(dir.path(), policy));
    let cfg = adstream::config::load(&file).unwrap_or_else(|d| panic!("{d:#?}"));
    let engine = adstream::plugin::PluginEngine::new().unwrap();
    let p = adstream::pipeline::build(&cfg, &engine).unwrap_or_else(|d| panic!("{d:#?}"));
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    adstream::pipeline::run(p, stopped, None).await.unwrap();
    let dead = std::fs::read_to_string(dir.path().join("dead.jsonl")).unwrap();
    (dir, dead)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_personal_value_leaves_through_the_dead_letters_under_any_safe_policy() {
    for policy in ["redact", "hash", "position"] {
        let (dir, dead) = run(policy).await;
        let letters: Vec<serde_json::Value> = read_jsonl(&dir.path().join("dead.jsonl"));
        let reasons: Vec<&str> = letters
            .iter()
            .map(|d| d["reason"].as_str().unwrap())
            .collect();
        assert_eq!(
            reasons.iter().filter(|r| **r == "decode").count(),
            3,
            "{policy}: {reasons:?}"
        );
        assert!(
            reasons.contains(&"plugin_failure") && reasons.contains(&"rejected"),
            "{policy}: {reasons:?}"
        );
        for value in PERSONAL {
            assert!(
                !dead.contains(value),
                "{policy}: `{value}` in the dead letters:\n{dead}"
            );
        }
        // Where each record was is kept: its line in the file.
        assert!(letters.iter().all(|d| d["offset"].is_i64()), "{policy}");
        // The rows that passed were stored, hashed by pii-hash, as before.
        assert_eq!(
            read_jsonl(&dir.path().join("out.jsonl")).len(),
            3,
            "{policy}"
        );
    }
}

/// `hash` writes the very hash pii-hash stores for the same key: the rejected row of
/// user u-1001 carries the `user_id` that user's stored row has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hashed_dead_letter_matches_the_stored_row_of_the_same_user() {
    let (dir, _) = run("hash").await;
    let out = read_jsonl(&dir.path().join("out.jsonl"));
    let stored = out.iter().find(|r| r["event_id"] == "e1").unwrap()["user_id"].clone();
    let letters = read_jsonl(&dir.path().join("dead.jsonl"));
    let rejected = letters.iter().find(|d| d["reason"] == "rejected").unwrap();
    let payload: serde_json::Value =
        serde_json::from_str(rejected["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload["user_id"], stored);
    assert_eq!(stored.as_str().unwrap().len(), 32);
}

/// The opt-in that keeps everything does keep it (so the test above could fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_keeps_the_records_as_read() {
    let (_dir, dead) = run("raw").await;
    for value in ["u-poison-77", "u-trunc-55", "secret@example.com"] {
        assert!(dead.contains(value), "`{value}` missing:\n{dead}");
    }
}
