//! Latency: from the moment a window can close to its row in Redis and to its alert at a
//! webhook. A paced generator (event time is the wall clock) feeds 1 s windows by country
//! and ad_format into a Redis sink, and an anomaly stage set to fire on every window into
//! slack-format and a webhook sink aimed at a local HTTP server. A window ending at `e`
//! can close once the watermark passes it, at `e + delay` by the wall clock; the latency
//! of a row is when Redis announced its key (keyspace notifications) or when the webhook
//! got its alert, minus that moment. Needs Redis (`scripts/services.sh start`).

use super::data::{SCHEMA, plugins_dir};
use super::report::{Section, Stat};
use axum::extract::State;
use futures_util::StreamExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const REDIS: &str = "redis://127.0.0.1:6379";
/// The event-time delay of the watermark: the demo's.
const DELAY_MS: f64 = 1000.0;
/// Windows whose close came later than this before the stop are left out: the stop flushes
/// open windows, which would read as early.
const MARGIN_MS: f64 = 3000.0;
/// The first windows are left out: the first is partial and the plugins are warming up.
const WARM_UP_MS: f64 = 3000.0;

/// Arrivals: (wall-clock ms, what arrived: a Redis key or a webhook body).
type Log = Arc<Mutex<Vec<(f64, String)>>>;

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1e3
}

fn pipeline(dir: &Path, ns: &str, hook: &str) -> std::path::PathBuf {
    let text = format!(
        r#"name = "latency"
dead_letter = "dead"
[source]
kind = "generator"
rate = 20000.0
seed = 11
batch_size = 2000
flush_interval = "100ms"
{SCHEMA}
[event_time]
column = "event_time"
delay = "{DELAY_MS}ms"

[[stage]]
name = "windows"
plugin = "@PLUGINS@/window_aggregate.wasm"
config = {{ window = "1s", group_by = ["country", "ad_format"] }}
to = ["live"]

[[stage]]
name = "anomalies"
input = "windows"
plugin = "@PLUGINS@/anomaly_ema.wasm"
# A drop below 100 times the baseline: every window after a group's first alerts.
config = {{ min_impressions = 1, thresholds = {{ ctr_drop = 100.0 }}, language = "en" }}

[[stage]]
name = "slack"
plugin = "@PLUGINS@/slack_format.wasm"
to = ["hook"]

[sink.live]
kind = "redis"
url = "{REDIS}"
key = "{ns}lat:{{country}}:{{ad_format}}:{{window_end}}"
ttl = "1m"

[sink.hook]
kind = "webhook"
url = {{ insecure_value = "{hook}" }}

[sink.dead]
kind = "file"
path = "{dead}"
"#,
        dead = dir.join("latency-dead.jsonl").display(),
    )
    .replace("@PLUGINS@", &plugins_dir().display().to_string());
    let path = dir.join("latency.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A local webhook receiver; its URL and what it received.
async fn webhook() -> (String, Log) {
    async fn hook(State(log): State<Log>, body: String) -> &'static str {
        log.lock().unwrap().push((now_ms(), body));
        "ok"
    }
    let log = Log::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, log)
}

/// Turns on Redis's keyspace notifications for hash commands and logs every key under
/// `prefix` as it is written; returns the setting to put back.
async fn watch_redis(prefix: &str) -> (Log, String) {
    let client = redis::Client::open(REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let old: Vec<String> = redis::cmd("CONFIG")
        .arg(&["GET", "notify-keyspace-events"])
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "notify-keyspace-events", "Kh"])
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    let channel = "__keyspace@0__:";
    pubsub
        .psubscribe(format!("{channel}{prefix}*"))
        .await
        .unwrap();
    let log = Log::default();
    let into = log.clone();
    tokio::spawn(async move {
        let mut messages = pubsub.into_on_message();
        while let Some(m) = messages.next().await {
            let key = m.get_channel_name().trim_start_matches(channel).to_string();
            into.lock().unwrap().push((now_ms(), key));
        }
    });
    (log, old.get(1).cloned().unwrap_or_default())
}

async fn restore_redis(setting: &str) {
    let client = redis::Client::open(REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "notify-keyspace-events", setting])
        .query_async(&mut conn)
        .await
        .unwrap();
}

/// The window end a Redis key names (its last part, ms since the epoch).
fn key_window_end(key: &str) -> Option<f64> {
    key.rsplit(':').next()?.parse().ok()
}

/// The window end an alert names: its time field (an RFC 3339 time on a line of its own).
fn alert_window_end(body: &str) -> Option<f64> {
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    let fields = json["blocks"][1]["fields"].as_array()?;
    fields.iter().find_map(|f| {
        let line = f["text"].as_str()?.lines().last()?;
        let t = humantime::parse_rfc3339(line).ok()?;
        Some(t.duration_since(UNIX_EPOCH).ok()?.as_secs_f64() * 1e3)
    })
}

/// Latencies (ms) of what arrived for windows that closed between `from` and `until`; the
/// first arrival per key counts (a key's first write is its row).
fn latencies(log: &Log, end_of: impl Fn(&str) -> Option<f64>, from: f64, until: f64) -> Vec<f64> {
    let mut seen = std::collections::HashSet::new();
    let log = log.lock().unwrap();
    log.iter()
        .filter(|(_, what)| seen.insert(what.clone()))
        .filter_map(|(at, what)| {
            let close = end_of(what)? + DELAY_MS;
            (close >= from && close <= until).then_some(at - close)
        })
        .collect()
}

/// The `q` quantile of `v` (sorted in place).
fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// One run of `seconds`: (Redis p50, p99, webhook p50, p99) and how many of each counted.
async fn once(dir: &Path, ns: &str, seconds: u64) -> ([f64; 4], usize, usize) {
    let (hook_url, hooks) = webhook().await;
    let (keys, setting) = watch_redis(ns).await;
    let cfg = super::data::load(&pipeline(dir, ns, &hook_url));
    let engine = adstream::plugin::PluginEngine::new().unwrap();
    let p = adstream::pipeline::build(&cfg, &engine).unwrap_or_else(|d| panic!("{d:#?}"));
    let began = now_ms();
    let mut running = adstream::pipeline::start(p, Arc::default()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let stopped = now_ms();
    running.stop();
    running.finished().await.unwrap();
    restore_redis(&setting).await;
    let (from, until) = (began + WARM_UP_MS, stopped - MARGIN_MS);
    let mut redis = latencies(&keys, key_window_end, from, until);
    let mut hook = latencies(&hooks, alert_window_end, from, until);
    assert!(
        !redis.is_empty() && !hook.is_empty(),
        "nothing arrived: {} keys, {} alerts",
        keys.lock().unwrap().len(),
        hooks.lock().unwrap().len()
    );
    let q = [
        quantile(&mut redis, 0.5),
        quantile(&mut redis, 0.99),
        quantile(&mut hook, 0.5),
        quantile(&mut hook, 0.99),
    ];
    (q, redis.len(), hook.len())
}

pub async fn run(dir: &Path, seconds: u64, n: usize) -> Section {
    let mut runs: [Vec<f64>; 4] = Default::default();
    let (mut rows, mut alerts) = (0, 0);
    for i in 0..n {
        let ns = format!("bench{}-{i}-", std::process::id());
        let (q, r, a) = once(dir, &ns, seconds).await;
        for (all, v) in runs.iter_mut().zip(q) {
            all.push(v);
        }
        (rows, alerts) = (rows + r, alerts + a);
    }
    let [r50, r99, h50, h99] = runs.map(|v| Stat::of(v).show(0));
    Section {
        title: "Latency from a window's close",
        about: format!(
            "A paced generator at 20,000 events/s (batches of up to 2000, flushed every \
             100 ms; event time is the wall clock) → 1 s windows by country and ad_format \
             into Redis, and → an anomaly stage set to alert on every window → slack-format \
             → a webhook sink posting to a local HTTP server, in this process. A window \
             ending at `e` can close at `e` + the watermark's delay ({DELAY_MS} ms); the \
             latency is from then to Redis announcing the row's key (keyspace \
             notifications) and to the webhook receiving the alert. {seconds} s per run, \
             the first {WARM_UP_MS} ms and the last {MARGIN_MS} ms left out; {rows} rows and \
             {alerts} alerts in all. ms, median (min–max) over {n} runs of each run's \
             percentile."
        ),
        header: vec!["to", "p50 ms", "p99 ms"],
        rows: vec![
            vec!["its row in Redis".into(), r50, r99],
            vec!["its alert at the webhook".into(), h50, h99],
        ],
    }
}
