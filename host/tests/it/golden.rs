//! The golden test: a fixed JSONL input through pii → quality → 10 s windows → anomaly
//! rules → Slack format, compared with expected windows and alerts, and with counts
//! computed here, independently of the plugins, from the input itself.
//!
//! The input is made by the built-in generator with a fixed seed and start time (a fixed
//! checksum guards it) plus a few hand-written broken lines. After an intended change of
//! output, regenerate the expected files with `ADSTREAM_BLESS=1`.

use super::support::{AD_SCHEMA, pipeline_file, read_jsonl, root};
use adstream::batch::RawBatch;
use adstream::config::source::GeneratorConfig;
use adstream::sources::generator::GeneratorSource;
use serde_json::Value;
use sha2::Digest;
use std::collections::BTreeMap;
use std::path::Path;

const GENERATOR: &str = r#"
kind = "generator"
rate = 4000.0
pace = false
start = 1700000000000
seed = 7
count = 250000
countries = { US = { weight = 0.6 }, KR = { weight = 0.4 } }
formats.banner = { weight = 0.6, ctr = 0.03, ecpm = 1.5, fill_rate = 0.9 }
formats.native = { weight = 0.4, ctr = 0.04, ecpm = 3.0, fill_rate = 0.85 }
scenario = [
    { kind = "ctr_drop", at = "20s", country = "US", ad_format = "banner" },
    { kind = "traffic_spike", at = "30s", country = "KR", ad_format = "native" },
    { kind = "ecpm_drop", at = "40s", country = "KR", ad_format = "banner" },
    { kind = "ctr_spike", at = "40s", country = "US", ad_format = "native" },
]
"#;

/// SHA-256 of the generated part of the input.
const INPUT_SHA256: &str = "83f2b56ab2e764be6ebf7ef9f0d694e1c1f4196b7298b442200d50ee082382a7";

const BROKEN: [&str; 5] = [
    r#"{"event_id": "bad-1", "event_time": 1700000005000, "event_type": "impression""#,
    r#"{"event_id": "bad-2", "event_time": 1700000005000, "event_type": "impression", "ad_format": "banner"}"#,
    r#"{"event_id": "bad-3", "event_time": 1700000005000, "event_type": "teleport", "country": "US", "ad_format": "banner"}"#,
    r#"{"event_id": "bad-4", "event_time": 1700000005000, "event_type": "impression", "country": "US", "ad_format": "banner", "revenue": -1.0}"#,
    "\u{feff}garbage",
];

fn write_input(path: &Path) -> usize {
    let cfg: GeneratorConfig = toml::from_str(GENERATOR).unwrap();
    let mut g = GeneratorSource::new(&cfg).unwrap();
    let mut raw = RawBatch::default();
    g.generate(u64::MAX, &mut raw);
    let mut text = String::new();
    for i in 0..raw.len() {
        text.push_str(std::str::from_utf8(raw.record(i)).unwrap());
        text.push('\n');
    }
    let sha: String = sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        sha, INPUT_SHA256,
        "the generator's output changed; if intended, update INPUT_SHA256 and bless"
    );
    for line in BROKEN {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
    raw.len()
}

fn pipeline(dir: &Path, input: &Path) -> String {
    let out = |n: &str| dir.join(n).display().to_string();
    format!(
        r#"
name = "golden"
dead_letter = "dead"
[source]
kind = "file"
path = "{input}"
batch_size = 777
{AD_SCHEMA}
[event_time]
delay = "500ms"
[[stage]]
name = "pii"
plugin = "@PLUGINS@/pii_hash.wasm"
secrets.key = {{ insecure_value = "golden-test-key-0123456789" }}
config = {{ hash = ["user_id", "device_id"], truncate_ip = ["ip"] }}
[[stage]]
name = "quality"
plugin = "@PLUGINS@/quality.wasm"
config.rules = [
    {{ rule = "in_set", column = "event_type", values = ["request", "impression", "click", "conversion"] }},
    {{ rule = "in_range", column = "revenue", min = 0.0 }},
]
[[stage]]
name = "windows"
plugin = "@PLUGINS@/window_aggregate.wasm"
config = {{ window = "10s", group_by = ["country", "ad_format"] }}
to = ["windows"]
[[stage]]
name = "anomalies"
plugin = "@PLUGINS@/anomaly_ema.wasm"
config = {{ min_impressions = 1000 }}
to = ["alerts"]
[[stage]]
name = "slack"
plugin = "@PLUGINS@/slack_format.wasm"
to = ["slack"]
[sink.windows]
kind = "file"
path = "{windows}"
[sink.alerts]
kind = "file"
path = "{alerts}"
[sink.slack]
kind = "file"
path = "{slack}"
[sink.dead]
kind = "file"
path = "{dead}"
"#,
        input = input.display(),
        windows = out("windows.jsonl"),
        alerts = out("alerts.jsonl"),
        slack = out("slack.jsonl"),
        dead = out("dead.jsonl"),
    )
}

/// (window start, country, format) → [requests, fills, impressions, clicks, conversions],
/// counted straight from the input lines the rules accept.
fn oracle(input: &Path) -> BTreeMap<(i64, String, String), [i64; 5]> {
    let mut out: BTreeMap<_, [i64; 5]> = BTreeMap::new();
    for line in std::fs::read_to_string(input).unwrap().lines() {
        let Ok(e) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let (Some(t), Some(c), Some(f)) = (
            e["event_time"].as_i64(),
            e["country"].as_str(),
            e["ad_format"].as_str(),
        ) else {
            continue;
        };
        if e["revenue"].as_f64().is_some_and(|r| r < 0.0) {
            continue;
        }
        let i = match e["event_type"].as_str() {
            Some("request") => 0,
            Some("impression") => 2,
            Some("click") => 3,
            Some("conversion") => 4,
            _ => continue,
        };
        let slot = out
            .entry((t - t % 10_000, c.to_string(), f.to_string()))
            .or_default();
        slot[i] += 1;
        if i == 0 && e["network"].is_string() {
            slot[1] += 1;
        }
    }
    out
}

fn check_golden(got: &[Value], name: &str) {
    let path = root().join("host/tests/fixtures/golden").join(name);
    if std::env::var_os("ADSTREAM_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text: String = got.iter().map(|v| format!("{v}\n")).collect();
        std::fs::write(&path, text).unwrap();
    }
    let want = read_jsonl(&path);
    assert_eq!(got.len(), want.len(), "{name}: row count");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "{name}: row {i} differs");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fixed_input_gives_the_expected_windows_and_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    let generated = write_input(&input);
    let file = pipeline_file(dir.path(), "golden.toml", &pipeline(dir.path(), &input));
    let cfg = adstream::config::load(&file).unwrap();
    let engine = adstream::plugin::PluginEngine::new().unwrap();
    let p = adstream::pipeline::build(&cfg, &engine).unwrap();
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let summary = adstream::pipeline::run(p, stop, None).await.unwrap();

    let windows = read_jsonl(&dir.path().join("windows.jsonl"));

    let alerts = read_jsonl(&dir.path().join("alerts.jsonl"));
    let dead = read_jsonl(&dir.path().join("dead.jsonl"));

    // Nothing lost: every input line is counted in a window or is a dead letter.
    let counted: i64 = windows
        .iter()
        .map(|w| {
            ["requests", "impressions", "clicks", "conversions"]
                .iter()
                .map(|k| w[k].as_i64().unwrap())
                .sum::<i64>()
        })
        .sum();
    assert_eq!(counted as usize + dead.len(), generated + BROKEN.len());
    assert_eq!(summary.stats.records as usize, generated + BROKEN.len());
    let reasons: Vec<(&str, &str)> = dead
        .iter()
        .map(|d| (d["reason"].as_str().unwrap(), d["stage"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("decode", "decode"),
            ("decode", "decode"),
            ("decode", "decode"),
            ("rejected", "quality"),
            ("rejected", "quality")
        ]
    );
    assert_eq!(
        dead[0]["offset"],
        generated as i64 + 1,
        "dead letters give the line number"
    );

    // Windows equal counts computed from the input, independently of the plugins.
    let mut from_windows = BTreeMap::new();
    for w in &windows {
        let key = (
            w["window_start"].as_i64().unwrap(),
            w["country"].as_str().unwrap().to_string(),
            w["ad_format"].as_str().unwrap().to_string(),
        );
        let n = |k: &str| w[k].as_i64().unwrap();
        from_windows.insert(
            key,
            [
                n("requests"),
                n("fills"),
                n("impressions"),
                n("clicks"),
                n("conversions"),
            ],
        );
        let ctr = n("clicks") as f64 / n("impressions") as f64;
        assert!((w["ctr"].as_f64().unwrap() - ctr).abs() < 1e-12);
    }
    assert_eq!(from_windows, oracle(&input));

    // Each scenario raised exactly its alert.
    let mut fired: Vec<(String, String, String)> = alerts
        .iter()
        .map(|a| {
            (
                a["alert_type"].as_str().unwrap().into(),
                a["country"].as_str().unwrap().into(),
                a["ad_format"].as_str().unwrap().into(),
            )
        })
        .collect();
    fired.sort();
    let want = [
        ("ctr_drop", "US", "banner"),
        ("ctr_spike", "US", "native"),
        ("ecpm_drop", "KR", "banner"),
        ("traffic_spike", "KR", "native"),
    ];
    assert_eq!(
        fired,
        want.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    );
    let slack = read_jsonl(&dir.path().join("slack.jsonl"));
    assert_eq!(slack.len(), alerts.len());

    check_golden(&windows, "windows.jsonl");
    check_golden(&alerts, "alerts.jsonl");
}

/// `pipeline` with every stage in two shards: stateful ones keyed by what their state is,
/// quality by `quality_key`.
fn sharded(text: &str, quality_key: &str) -> String {
    let keyed = |stage: &str, by: &str| {
        (
            format!("name = \"{stage}\"\n"),
            format!("name = \"{stage}\"\nshards = 2\nshard_by = {by}\n"),
        )
    };
    let edits = [
        keyed("quality", quality_key),
        keyed("windows", r#"["country", "ad_format"]"#),
        keyed("anomalies", r#"["country", "ad_format"]"#),
        (
            "name = \"pii\"\n".into(),
            "name = \"pii\"\nshards = 2\n".into(),
        ),
        (
            "name = \"slack\"\n".into(),
            "name = \"slack\"\nshards = 2\n".into(),
        ),
    ];
    edits.iter().fold(text.to_string(), |t, (a, b)| {
        assert!(t.contains(a.as_str()), "{a}");
        t.replace(a.as_str(), b)
    })
}

fn sorted(rows: &[Value]) -> Vec<String> {
    let mut lines: Vec<String> = rows.iter().map(Value::to_string).collect();
    lines.sort();
    lines
}

/// Quality keyed by event id: pii and quality shard on their own, windows → anomalies →
/// slack as one chain; by country: quality → slack as one chain (`stage/chain.rs`).
#[tokio::test(flavor = "multi_thread")]
async fn two_shards_per_stage_give_the_same_windows_alerts_and_dead_letters() {
    for quality_key in [r#"["event_id"]"#, r#"["country"]"#] {
        sharded_run(quality_key).await;
    }
}

async fn sharded_run(quality_key: &str) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    write_input(&input);
    let text = sharded(&pipeline(dir.path(), &input), quality_key);
    let file = pipeline_file(dir.path(), "golden.toml", &text);
    let cfg = adstream::config::load(&file).unwrap();
    let engine = adstream::plugin::PluginEngine::new().unwrap();
    let p = adstream::pipeline::build(&cfg, &engine).unwrap();
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let summary = adstream::pipeline::run(p, stop, None).await.unwrap();

    let golden = |name: &str| read_jsonl(&root().join("host/tests/fixtures/golden").join(name));
    let got = |name: &str| read_jsonl(&dir.path().join(name));
    assert_eq!(
        sorted(&got("windows.jsonl")),
        sorted(&golden("windows.jsonl"))
    );
    assert_eq!(
        sorted(&got("alerts.jsonl")),
        sorted(&golden("alerts.jsonl"))
    );
    let dead = got("dead.jsonl");
    assert_eq!(dead.len(), 5, "{dead:?}");
    // Both shards of each stage did work, and status shows the stage's totals.
    let windows = &summary
        .stats
        .stages
        .iter()
        .find(|(n, _)| n == "windows")
        .unwrap()
        .1;
    assert_eq!(
        windows.rows_in as usize,
        summary.stats.records as usize - dead.len()
    );
    assert!(
        windows.calls >= 2 * summary.stats.batches,
        "{} calls",
        windows.calls
    );
}
