//! The seed's production flow against the real services (started by scripts/services.sh):
//! generated events in Kafka → ad-metrics (ClickHouse, Redis, alerts topic) →
//! alert-delivery (cooldown in Redis, Slack webhook).

use super::services_support::*;
use super::support::{AD_SCHEMA, pipeline_file, read_jsonl};
use adstream::batch::RawBatch;
use adstream::config::source::GeneratorConfig;
use adstream::pipeline::PipelineStats;
use adstream::plugin::PluginEngine;
use adstream::sources::generator::GeneratorSource;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

pub(super) const GENERATOR: &str = r#"
kind = "generator"
rate = 1000.0
pace = false
# A whole minute, so that each scenario fills exactly one 1 min window.
start = 1699999980000
seed = 11
countries = { US = { weight = 0.6 }, KR = { weight = 0.4 } }
formats.banner = { weight = 0.6, ctr = 0.03, ecpm = 1.5, fill_rate = 0.9 }
formats.native = { weight = 0.4, ctr = 0.04, ecpm = 3.0, fill_rate = 0.85 }
scenario = [
    { kind = "ctr_drop", at = "2m", duration = "1m", country = "US", ad_format = "banner" },
    { kind = "traffic_spike", at = "2m", duration = "1m", country = "KR", ad_format = "native" },
    { kind = "ecpm_drop", at = "3m", duration = "1m", country = "KR", ad_format = "banner" },
    { kind = "ctr_spike", at = "3m", duration = "1m", country = "US", ad_format = "native" },
]
"#;

fn ad_metrics(id: &str, dir: &Path) -> String {
    format!(
        r#"
name = "ad-metrics-{id}"
dead_letter = "dead"
[source]
kind = "kafka"
brokers = "{BROKERS}"
topic = "{id}-events"
group = "{id}-metrics"
create_topic = {{ partitions = 3 }}
batch_size = 5000
{AD_SCHEMA}
[event_time]
delay = "2s"
[checkpoint]
dir = "{state}"
interval = "1s"
[[stage]]
name = "pii"
plugin = "@PLUGINS@/pii_hash.wasm"
secrets.key = {{ file = "{key}" }}
config = {{ hash = ["user_id", "device_id"], truncate_ip = ["ip"] }}
[[stage]]
name = "metrics_1m"
plugin = "@PLUGINS@/window_aggregate.wasm"
config = {{ window = "1m", group_by = ["country", "ad_format"], lateness = "5s" }}
to = ["clickhouse", "redis"]
[[stage]]
name = "anomalies"
plugin = "@PLUGINS@/anomaly_ema.wasm"
config = {{ min_impressions = 500 }}
to = ["alerts"]
[sink.clickhouse]
kind = "clickhouse"
table = "adstream_{id}.metrics_1m"
create = true
order_by = ["window_start", "country", "ad_format"]
[sink.redis]
kind = "redis"
key = "{id}:metrics:{{country}}:{{ad_format}}:{{window}}"
ttl = "2h"
[sink.alerts]
kind = "kafka"
brokers = "{BROKERS}"
topic = "{id}-alerts"
key = "alert_id"
create_topic = {{ partitions = 1 }}
[sink.dead]
kind = "kafka"
brokers = "{BROKERS}"
topic = "{id}-dead"
value = "payload"
headers = ["*"]
create_topic = {{ partitions = 1 }}
"#,
        state = dir.join("state").display(),
        key = dir.join("pii.key").display(),
    )
}

fn alert_delivery(id: &str, dir: &Path, group: &str) -> String {
    let schema = r#"
[schema]
alert_id = { type = "string", required = true }
alert_time = { type = "string", required = true }
alert_type = { type = "dict", required = true }
severity = { type = "dict", required = true }
country = { type = "dict", required = true }
ad_format = { type = "dict", required = true }
metric_name = { type = "dict", required = true }
current_value = { type = "f64", required = true }
expected_value = { type = "f64", required = true }
deviation_percent = { type = "f64", required = true }
message = { type = "string", required = true }
window_start = { type = "timestamp_ms", required = true }
window_end = { type = "timestamp_ms", required = true }
"#;
    format!(
        r#"
name = "alert-delivery-{id}"
dead_letter = "dead"
[source]
kind = "kafka"
brokers = "{BROKERS}"
topic = "{id}-alerts"
group = "{group}"
create_topic = {{ partitions = 1 }}
batch_size = 100
flush_interval = "50ms"
{schema}
[event_time]
column = "window_end"
delay = "0s"
[checkpoint]
dir = "{state}"
[[stage]]
name = "slack"
plugin = "@PLUGINS@/slack_format.wasm"
to = ["slack"]
[sink.slack]
kind = "webhook"
url = {{ file = "{url}" }}
retry = {{ initial = "50ms" }}
cooldown = {{ redis = "{REDIS}", ttl = "10m", key = "{id}:alert_sent:{{country}}:{{ad_format}}:{{alert_type}}" }}
[sink.dead]
kind = "file"
path = "{dead}"
"#,
        state = dir.join("state").display(),
        url = dir.join("hook.url").display(),
        dead = dir.join("alert-dead.jsonl").display(),
    )
}

/// Starts a pipeline from pipeline text; returns its stop switch, stats and task.
type Running = (
    watch::Sender<bool>,
    Arc<Mutex<PipelineStats>>,
    tokio::task::JoinHandle<Result<adstream::pipeline::RunSummary, adstream::pipeline::RunError>>,
);

fn start(dir: &Path, name: &str, text: &str) -> Running {
    let file = pipeline_file(dir, name, text);
    let cfg = adstream::config::load(&file).unwrap_or_else(|d| panic!("{d:#?}"));
    let engine = adstream::plugin::PluginEngine::new().unwrap();
    let p = adstream::pipeline::build(&cfg, &engine).unwrap_or_else(|d| panic!("{d:#?}"));
    let (tx, rx) = watch::channel(false);
    let stats = Arc::new(Mutex::new(PipelineStats::default()));
    let task = tokio::spawn(adstream::pipeline::run(p, rx, Some(stats.clone())));
    (tx, stats, task)
}

async fn stop(running: Running) -> adstream::pipeline::RunSummary {
    let _ = running.0.send(true);
    running.2.await.unwrap().unwrap()
}

fn records(stats: &Arc<Mutex<PipelineStats>>) -> u64 {
    stats.lock().unwrap().records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn production_pipelines_end_to_end_across_a_restart() {
    services();
    let id = uid();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pii.key"), "a-test-key-of-enough-length\n").unwrap();
    let hook = Receiver::start(vec![]).await;
    std::fs::write(dir.path().join("hook.url"), &hook.url).unwrap();

    // Five minutes of events at 1000/s, in two halves with a restart between them.
    let cfg: GeneratorConfig = toml::from_str(GENERATOR).unwrap();
    let mut generator = GeneratorSource::new(&cfg).unwrap();
    let (mut first, mut second) = (RawBatch::default(), RawBatch::default());
    generator.generate(130_000, &mut first);
    generator.generate(170_000, &mut second);
    let mut all = first.clone();
    for i in 0..second.len() {
        all.push(second.record(i), second.position(i));
    }
    let mut want = oracle(&all, 60_000);

    let metrics = ad_metrics(&id, dir.path());
    let events = format!("{id}-events");
    let m1 = start(dir.path(), "m.toml", &metrics);
    let alerts = start(
        dir.path(),
        "a.toml",
        &alert_delivery(&id, dir.path(), &format!("{id}-delivery")),
    );
    produce(&events, &first).await;
    produce(
        &events,
        &RawBatch::from_records(&[b"{\"event_id\": \"broken".as_slice()]),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(120), async || records(&m1.1)
            == first.len() as u64 + 1)
        .await,
        "first half consumed"
    );
    let lag = async || m1.1.lock().unwrap().source_lag.clone();
    assert!(
        eventually(Duration::from_secs(30), async || {
            let l = lag().await;
            l.len() == 3 && l.values().all(|n| *n == 0)
        })
        .await,
        "each of the 3 partitions' lag known, and 0 once all was read: {:?}",
        lag().await
    );
    // Stop mid-window: the open window is kept in the checkpoint (not flushed half-full)
    // and completed after the restart.
    stop(m1).await;
    assert!(
        dir.path()
            .join(format!("state/ad-metrics-{id}.checkpoint"))
            .is_file()
    );

    let m2 = start(dir.path(), "m.toml", &metrics);
    produce(&events, &second).await;
    assert!(
        eventually(Duration::from_secs(120), async || records(&m2.1)
            == second.len() as u64)
        .await,
        "second half consumed"
    );
    let four = eventually(Duration::from_secs(60), async || hook.count() >= 4).await;
    assert!(
        four,
        "four alerts delivered: got {:?}",
        hook.bodies(200)
            .iter()
            .map(|b| b.chars().take(120).collect::<String>())
            .collect::<Vec<_>>()
    );
    stop(m2).await;

    // ClickHouse: the windows equal the counts computed from the events themselves.
    let got = windows(&format!("adstream_{id}.metrics_1m")).await;
    // The last window is still open at the end: a stop keeps it in the checkpoint, for
    // the next run to complete, rather than writing it half-full.
    let last = want.last_key_value().unwrap().0.0;
    want.retain(|(t, _, _), _| *t < last);
    assert_eq!(
        got, want,
        "ClickHouse windows vs counts from the generated events"
    );
    reports_dashboard_queries_run(&format!("adstream_{id}.metrics_1m")).await;

    // Redis: live metrics with values and a TTL.
    let mut redis = redis().await;
    let key = format!("{id}:metrics:US:banner:1m");
    let live: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(live["impressions"].parse::<i64>().unwrap() > 0, "{live:?}");
    assert!(live.contains_key("ctr") && live["window"] == "1m");
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!((1..=7200).contains(&ttl), "ttl {ttl}");

    // Slack: each scenario's alert exactly once.
    let mut delivered: Vec<String> = hook
        .bodies(200)
        .iter()
        .map(|b| {
            let p: serde_json::Value = serde_json::from_str(b).unwrap();
            let footer = p["blocks"][2]["elements"][0]["text"]
                .as_str()
                .unwrap()
                .to_string();
            let fields = &p["blocks"][1]["fields"];
            format!(
                "{} {} {}",
                footer.rsplit("Type: ").next().unwrap(),
                fields[0]["text"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("*국가:*\n"),
                fields[1]["text"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("*광고 포맷:*\n")
            )
        })
        .collect();
    delivered.sort();
    assert_eq!(
        delivered,
        [
            "ctr_drop US banner",
            "ctr_spike US native",
            "ecpm_drop KR banner",
            "traffic_spike KR native"
        ]
    );

    // Replaying every alert (a new consumer group with no checkpoint reads the topic
    // again) sends nothing: the cooldown in Redis holds across processes.
    stop(alerts).await;
    let other = dir.path().join("replay");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(dir.path().join("hook.url"), other.join("hook.url")).unwrap();
    // Through the supervisor, as `adstream run` runs it, to see the sink's status.
    let file = pipeline_file(
        &other,
        "r.toml",
        &alert_delivery(&id, &other, &format!("{id}-replay")),
    );
    let mut sup = adstream::supervisor::Supervisor::new(PluginEngine::new().unwrap());
    sup.start_file(&file)
        .await
        .unwrap_or_else(|d| panic!("{d:#?}"));
    let board = sup.board();
    let replay = sup.spawn();
    let held = || {
        let status = board.status();
        let sinks = status.pipelines[0].sinks.clone();
        sinks.into_iter().map(|k| k.held_back).sum::<u64>()
    };
    assert!(
        eventually(Duration::from_secs(60), async || held() >= 4).await,
        "alerts replayed and held back: {:?}",
        board.status().pipelines[0].sinks
    );
    let sinks = board.status().pipelines[0].sinks.clone();
    replay.stop().await;
    assert_eq!(hook.count(), 4, "no alert sent twice within the cooldown");
    let slack = sinks.iter().find(|k| k.held_back > 0).unwrap();
    assert_eq!(
        (slack.held_back, slack.recent_held.len()),
        (4, 4),
        "{sinks:?}"
    );

    // The broken message is in the dead-letter topic, with where it came from.
    let dead = consume_all(&format!("{id}-dead"), 1, Duration::from_secs(30));
    assert_eq!(dead.len(), 1);
    let (value, headers) = &dead[0];
    assert_eq!(value.as_slice(), b"{\"event_id\": \"broken");
    let h: BTreeMap<_, _> = headers.iter().cloned().collect();
    assert_eq!(h["reason"], "decode");
    assert_eq!(h["source"], events);
    assert!(h["error"].contains("EOF while parsing"), "{h:?}");
    assert!(
        h["offset"].parse::<i64>().is_ok() && h["partition"].parse::<i32>().is_ok(),
        "{h:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_retries_honours_retry_after_and_dead_letters_without_leaking_the_url() {
    let dir = tempfile::tempdir().unwrap();
    // Alert 1: two 500s then 200. Alert 2: a 429 asking to wait 1 s, then 200. Alert 3: 400
    // with a body that never ends.
    let hook = Receiver::start(vec![
        (500, ""),
        (500, ""),
        (200, ""),
        (429, "retry-after: 1\r\n"),
        (200, ""),
        (400, "x-endless: 1\r\n"),
    ])
    .await;
    std::fs::write(dir.path().join("hook.url"), &hook.url).unwrap();
    let alerts: Vec<String> = (1..=3)
        .map(|i| {
            serde_json::json!({"alert_id": format!("id-{i}"), "payload": format!("{{\"text\": \"alert {i}\"}}"), "event_time": 1_700_000_000_000i64 + i})
                .to_string()
        })
        .collect();
    std::fs::write(dir.path().join("alerts.jsonl"), alerts.join("\n")).unwrap();
    let text = format!(
        r#"
dead_letter = "dead"
[source]
kind = "file"
path = "{input}"
batch_size = 10
[schema]
event_time = {{ type = "timestamp_ms", required = true }}
alert_id = "string"
payload = "string"
[sink.hook]
kind = "webhook"
url = {{ file = "{url}" }}
retry = {{ initial = "20ms", attempts = 4 }}
[sink.dead]
kind = "file"
path = "{dead}"
[[stage]]
name = "pass"
plugin = "@PLUGINS@/quality.wasm"
config = {{ rules = [] }}
to = ["hook"]
"#,
        input = dir.path().join("alerts.jsonl").display(),
        url = dir.path().join("hook.url").display(),
        dead = dir.path().join("dead.jsonl").display(),
    );
    let began = std::time::Instant::now();
    // Through the supervisor, as `adstream run` runs it, for the sink's status.
    let file = pipeline_file(dir.path(), "p.toml", &text);
    let mut sup = adstream::supervisor::Supervisor::new(PluginEngine::new().unwrap());
    sup.start_file(&file)
        .await
        .unwrap_or_else(|d| panic!("{d:#?}"));
    let board = sup.board();
    for (name, outcome) in sup.spawn().wait().await {
        outcome.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert!(
        began.elapsed() >= Duration::from_secs(1),
        "the 429's Retry-After was waited for"
    );
    let sinks = &board.status().pipelines[0].sinks;
    let hook_sink = sinks.iter().find(|k| k.name == "hook").unwrap();
    assert_eq!(
        hook_sink.retries, 3,
        "two 500s and a 429 retried: {sinks:?}"
    );
    assert!(
        adstream::supervisor::metrics_text(&board)
            .contains("adstream_sink_retries_total{pipeline=\"p\",sink=\"hook\"} 3"),
        "{}",
        adstream::supervisor::metrics_text(&board)
    );
    let statuses: Vec<u16> = hook
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [500, 500, 200, 429, 200, 400]);
    let bodies = hook.bodies(200);
    assert_eq!(
        bodies,
        ["{\"text\": \"alert 1\"}", "{\"text\": \"alert 2\"}"]
    );
    let dead = read_jsonl(&dir.path().join("dead.jsonl"));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["reason"], "delivery");
    assert_eq!(dead[0]["stage"], "hook");
    let error = dead[0]["error"].as_str().unwrap();
    assert!(error.starts_with("HTTP 400"), "{error}");
    // The reply's start, read without waiting for an end that never comes.
    assert!(error.contains(": endless endless "), "{error}");
    let everything = std::fs::read_to_string(dir.path().join("dead.jsonl")).unwrap();
    assert!(
        !everything.contains("secret-token") && !everything.contains(&hook.url),
        "the URL leaked: {everything}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_services_are_named_with_the_address_tried() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "kind = \"clickhouse\"\nurl = \"http://127.0.0.1:1\"\ntable = \"x.y\"",
            "cannot reach ClickHouse at http://127.0.0.1:1",
        ),
        (
            "kind = \"redis\"\nurl = \"redis://127.0.0.1:1\"\nkey = \"k:{country}\"",
            "cannot reach Redis at redis://127.0.0.1:1",
        ),
        (
            "kind = \"kafka\"\nbrokers = \"127.0.0.1:1\"\ntopic = \"t\"",
            "cannot reach the Kafka broker at 127.0.0.1:1",
        ),
    ];
    for (sink, want) in cases {
        let text = format!(
            "[source]\nkind = \"generator\"\ncount = 10\n{AD_SCHEMA}\n[[stage]]\nname = \"w\"\nplugin = \"@PLUGINS@/window_aggregate.wasm\"\nconfig = {{ window = \"1m\", group_by = [\"country\"] }}\nto = [\"s\"]\n[sink.s]\n{sink}\n"
        );
        let running = start(dir.path(), "p.toml", &text);
        let err = running.2.await.unwrap().unwrap_err().to_string();
        assert!(err.contains(want), "expected `{want}` in `{err}`");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cooldown_resends_an_unconfirmed_claim_and_nothing_else() {
    services();
    let id = uid();
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start(vec![]).await;
    std::fs::write(dir.path().join("hook.url"), &hook.url).unwrap();
    let mut redis = redis().await;
    let key = |c: &str| format!("{id}:sent:{c}:banner:ctr_drop");
    // US: a claim by this very alert that was never confirmed (the host stopped mid-way).
    // KR: this alert was already delivered. JP: another alert is cooling down. DE: free.
    for (c, v) in [("US", "a-US"), ("KR", "sent:a-KR"), ("JP", "other-alert")] {
        let _: () = redis::cmd("SET")
            .arg(key(c))
            .arg(v)
            .arg("EX")
            .arg(600)
            .query_async(&mut redis)
            .await
            .unwrap();
    }
    let lines: Vec<String> = ["US", "KR", "JP", "DE"]
        .iter()
        .enumerate()
        .map(|(i, c)| {
            serde_json::json!({"alert_id": format!("a-{c}"), "country": c, "ad_format": "banner", "alert_type": "ctr_drop",
                "payload": format!("{{\"text\": \"{c}\"}}"), "event_time": 1_700_000_000_000i64 + i as i64})
            .to_string()
        })
        .collect();
    std::fs::write(dir.path().join("alerts.jsonl"), lines.join("\n")).unwrap();
    let text = format!(
        r#"
[source]
kind = "file"
path = "{input}"
[schema]
event_time = {{ type = "timestamp_ms", required = true }}
alert_id = "string"
country = "dict"
ad_format = "dict"
alert_type = "dict"
payload = "string"
[[stage]]
name = "pass"
plugin = "@PLUGINS@/quality.wasm"
config = {{ rules = [] }}
to = ["hook"]
[sink.hook]
kind = "webhook"
url = {{ file = "{url}" }}
cooldown = {{ redis = "{REDIS}", key = "{id}:sent:{{country}}:{{ad_format}}:{{alert_type}}" }}
"#,
        input = dir.path().join("alerts.jsonl").display(),
        url = dir.path().join("hook.url").display(),
    );
    start(dir.path(), "p.toml", &text).2.await.unwrap().unwrap();
    assert_eq!(
        hook.bodies(200),
        ["{\"text\": \"US\"}", "{\"text\": \"DE\"}"]
    );
    let de: String = redis::cmd("GET")
        .arg(key("DE"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(de, "sent:a-DE");
    let ttl: i64 = redis::cmd("TTL")
        .arg(key("DE"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!((590..=600).contains(&ttl), "10 min cooldown, got {ttl} s");
}

/// Two hosts started on one pipeline and checkpoint: the second is refused at start,
/// naming the first, instead of reading every partition again and renaming the checkpoint
/// under the first one's feet; once the first has stopped, the second may start.
#[test]
fn a_second_host_on_one_checkpoint_is_refused_while_the_first_runs() {
    services();
    let id = uid();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
name = "p-{id}"
[source]
kind = "kafka"
brokers = "{BROKERS}"
topic = "{id}-events"
group = "{id}-g"
create_topic = {{ partitions = 2 }}
{AD_SCHEMA}
[checkpoint]
dir = "{state}"
[sink.out]
kind = "stdout"
"#,
        state = dir.path().join("state").display()
    );
    let file = pipeline_file(dir.path(), "p.toml", &text);
    let run = |seconds: &str| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_adstream"));
        c.env("ADSTREAM_STATUS_ADDR", "off")
            .args(["run", "--duration", seconds])
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        c
    };
    let mut first = run("60").spawn().unwrap();
    let lock = dir.path().join(format!("state/p-{id}.checkpoint.lock"));
    let held = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        std::fs::read_to_string(&lock).is_ok_and(|t| !t.trim().is_empty())
    });
    assert!(held, "the first host never took {}", lock.display());
    let second = run("1").output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "the second host ran: {err}");
    let holder = format!("/{},", first.id());
    assert!(
        err.contains("is in use by") && err.contains(&holder),
        "the refusal names the first host's pid {holder:?}: {err}"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    let third = run("1").output().unwrap();
    let err = String::from_utf8_lossy(&third.stderr);
    assert!(third.status.success(), "after the first is gone: {err}");
}
