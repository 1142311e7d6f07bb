//! Helpers for tests against the real services: starting them (with the project's own
//! script, once per test run), unique names, a webhook receiver, and reading back what
//! the pipelines wrote.

use super::support::root;
use adstream::batch::RawBatch;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const BROKERS: &str = "127.0.0.1:9092";
pub const CLICKHOUSE: &str = "http://127.0.0.1:8123";
pub const REDIS: &str = "redis://127.0.0.1:6379";

/// Starts Redis, ClickHouse and the Kafka broker with `scripts/services.sh` (once per test
/// binary). A service that cannot be started fails the test with the script's message.
pub fn services() {
    static STARTED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = STARTED.get_or_init(|| {
        let out = std::process::Command::new("bash")
            .arg(root().join("scripts/services.sh"))
            .arg("start")
            .output()
            .map_err(|e| format!("cannot run scripts/services.sh: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
    if let Err(e) = result {
        panic!("the services these tests need did not start:\n{e}");
    }
}

/// A name no other test or run uses, for topics, tables and keys.
pub fn uid() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "t{}x{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 100_000
    )
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub body: String,
    pub status: u16,
}

/// A local HTTP server standing in for Slack: it answers each request with the next
/// scripted status (then 200) and keeps every request.
pub struct Receiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
}

/// A scripted answer: status and extra header lines (`x-endless: 1` for a body that never
/// ends).
pub type Answer = (u16, &'static str);

impl Receiver {
    pub async fn start(script: Vec<Answer>) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/services/T000/B000/secret-token",
            listener.local_addr().unwrap()
        );
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let (log, script) = (received.clone(), Arc::new(Mutex::new(script.into_iter())));
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (log, script) = (log.clone(), script.clone());
                tokio::spawn(async move {
                    let body = read_request(&mut sock).await;
                    let (status, headers) = script.lock().unwrap().next().unwrap_or((200, ""));
                    log.lock().unwrap().push(Received { body, status });
                    if headers.contains("x-endless") {
                        return endless_reply(&mut sock, status).await;
                    }
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\n{headers}content-length: 2\r\nconnection: close\r\n\r\nok"
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                });
            }
        });
        Receiver { url, received }
    }

    pub fn bodies(&self, status: u16) -> Vec<String> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.status == status)
            .map(|r| r.body.clone())
            .collect()
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

/// Answers `status` with a body that never ends (1 KiB chunks of "endless "), until the
/// client hangs up.
async fn endless_reply(sock: &mut tokio::net::TcpStream, status: u16) {
    let head = format!("HTTP/1.1 {status} X\r\ntransfer-encoding: chunked\r\n\r\n");
    let chunk = format!("400\r\n{}\r\n", "endless ".repeat(128));
    if sock.write_all(head.as_bytes()).await.is_ok() {
        while sock.write_all(chunk.as_bytes()).await.is_ok() {}
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = sock.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
            }
        }
    }
    String::new()
}

/// Runs a ClickHouse query and returns its rows as JSON values.
/// The rows `query` returns from the ClickHouse at `url`, as JSON objects.
pub async fn clickhouse_at(url: &str, query: &str) -> Vec<serde_json::Value> {
    let text = reqwest::Client::new()
        .post(url)
        .body(format!("{query} FORMAT JSONEachRow"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

pub async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(REDIS)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Polls `check` every 250 ms until it is true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let began = std::time::Instant::now();
    while began.elapsed() < timeout {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

/// A message's value and headers.
pub type Consumed = (Vec<u8>, Vec<(String, String)>);

/// Every message of `topic`, read from the beginning (value, headers).
pub fn consume_all(topic: &str, expect: usize, timeout: Duration) -> Vec<Consumed> {
    consume_until(topic, timeout, |got, _| got >= expect)
}

/// The messages of `topic` once at least `expect` of them came (within `timeout`) and
/// then `quiet` passed with none more: every message there is, however slow the
/// broker's first answer (a fixed short wait read none on a busy machine).
pub fn consume_settled(
    topic: &str,
    expect: usize,
    timeout: Duration,
    quiet: Duration,
) -> Vec<Consumed> {
    let mut last = (0, std::time::Instant::now());
    consume_until(topic, timeout, |got, now| {
        if got != last.0 {
            last = (got, now);
        }
        got >= expect && now.duration_since(last.1) >= quiet
    })
}

/// The messages of `topic` from its start until `done(messages so far, now)` or `timeout`.
fn consume_until(
    topic: &str,
    timeout: Duration,
    mut done: impl FnMut(usize, std::time::Instant) -> bool,
) -> Vec<Consumed> {
    use rdkafka::Message;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Headers;
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", BROKERS)
        .set("group.id", uid())
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let began = std::time::Instant::now();
    let mut out = Vec::new();
    while !done(out.len(), std::time::Instant::now()) && began.elapsed() < timeout {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|x| {
                            (
                                x.key.to_string(),
                                String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push((m.payload().unwrap_or_default().to_vec(), headers));
        }
    }
    out
}

/// Per window: (window start ms, country, ad format) → [requests, fills, impressions,
/// clicks, conversions].
pub type Windows = BTreeMap<(i64, String, String), [i64; 5]>;

/// The windows of `window_ms`, counted straight from the generated events.
pub fn oracle(raw: &RawBatch, window_ms: i64) -> Windows {
    let mut out: Windows = BTreeMap::new();
    for i in 0..raw.len() {
        let e: serde_json::Value = serde_json::from_slice(raw.record(i)).unwrap();
        let t = e["event_time"].as_i64().unwrap();
        let key = (
            t - t.rem_euclid(window_ms),
            e["country"].as_str().unwrap().to_string(),
            e["ad_format"].as_str().unwrap().to_string(),
        );
        let slot = out.entry(key).or_default();
        let i = match e["event_type"].as_str().unwrap() {
            "request" => 0,
            "impression" => 2,
            "click" => 3,
            _ => 4,
        };
        slot[i] += 1;
        if i == 0 && e["network"].is_string() {
            slot[1] += 1;
        }
    }
    out
}

/// The windows in a ClickHouse table (FINAL, so replayed rows count once).
pub async fn windows(table: &str) -> Windows {
    windows_at(CLICKHOUSE, table).await
}

/// [`windows`] from the ClickHouse at `url`.
pub async fn windows_at(url: &str, table: &str) -> Windows {
    let rows = clickhouse_at(
        url,
        &format!(
            "SELECT toUnixTimestamp(window_start) * 1000 AS t, country, ad_format, requests, \
         fills, impressions, clicks, conversions FROM {table} FINAL"
        ),
    )
    .await;
    let mut got = BTreeMap::new();
    for r in &rows {
        let n = |k: &str| {
            r[k].as_str()
                .map_or_else(|| r[k].as_i64().unwrap(), |s| s.parse().unwrap())
        };
        let key = (
            n("t"),
            r["country"].as_str().unwrap().to_string(),
            r["ad_format"].as_str().unwrap().to_string(),
        );
        let counts = ["requests", "fills", "impressions", "clicks", "conversions"].map(n);
        got.insert(key, counts);
    }
    got
}

/// Produces every record of `raw` to `topic` and waits until the broker has them all.
///
/// Records are keyed by their index so they spread over every partition evenly. Unkeyed
/// records go to one partition at a time (librdkafka's sticky partitioner), so at the end
/// of a finite burst the other partitions stop earlier in event time, and the host's
/// watermark (the minimum over partitions) holds the last windows open until those
/// partitions count as idle: the tests' outcome then depended on timing.
///
/// A record the broker refused (tansu answers "unknown broker error" while it restarts,
/// which the chaos test does as events flow) is sent again, every half second for up to
/// 30 s.
pub async fn produce(topic: &str, raw: &RawBatch) {
    produce_to(BROKERS, topic, raw).await;
}

/// [`produce`] to the broker at `brokers`.
pub async fn produce_to(brokers: &str, topic: &str, raw: &RawBatch) {
    produce_keyed(brokers, topic, raw, |i, _| i.to_string()).await;
}

/// [`produce_to`] with each record's key chosen by `key(index, record)`.
pub async fn produce_keyed(
    brokers: &str,
    topic: &str,
    raw: &RawBatch,
    key: impl Fn(usize, &[u8]) -> String,
) {
    wait_for_topic(brokers, topic).await;
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let mut pending: Vec<usize> = (0..raw.len()).collect();
    for round in 1.. {
        let mut deliveries = Vec::new();
        for &i in &pending {
            let key = key(i, raw.record(i));
            loop {
                let record = FutureRecord::to(topic).key(&key).payload(raw.record(i));
                match producer.send_result(record) {
                    Ok(d) => break deliveries.push((i, d)),
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        }
        let mut refused = Vec::new();
        for (i, d) in deliveries {
            if let Err((e, _)) = d.await.unwrap() {
                assert!(round < 60, "record {i} refused {round} times: {e}");
                refused.push(i);
            }
        }
        if refused.is_empty() {
            return;
        }
        eprintln!(
            "produce: the broker refused {} records; sending them again",
            refused.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        pending = refused;
    }
}

/// Waits (up to 60 s) until `topic` exists. The broker, as Apache Kafka by default, creates
/// a topic a producer names before anyone else did, with its own partition count; the
/// tests' topics are made by the pipelines under test (`create_topic`), which start
/// beside the producer.
pub async fn wait_for_topic(brokers: &str, topic: &str) {
    let mut config = rdkafka::ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    wait_for_topic_with(&config, topic).await;
}

/// [`wait_for_topic`] through a client with `config` (a broker's TLS and credentials).
pub async fn wait_for_topic_with(config: &rdkafka::ClientConfig, topic: &str) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = config
        .clone()
        .set("allow.auto.create.topics", "false")
        .create()
        .unwrap();
    let consumer = Arc::new(consumer);
    for _ in 0..240 {
        let c = consumer.clone();
        let t = topic.to_string();
        let exists = tokio::task::spawn_blocking(move || {
            let meta = c.fetch_metadata(Some(&t), Duration::from_secs(5)).ok()?;
            let found = meta.topics().iter().find(|m| m.name() == t)?;
            Some(found.error().is_none() && !found.partitions().is_empty())
        })
        .await
        .unwrap();
        if exists == Some(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("topic {topic} was not created within 60 s");
}

/// Runs every query of the Grafana reports dashboard (`docs/grafana/reports.json`) on
/// `table` (in place of `adstream.ad_metrics_1m`, with the time filter open): each must
/// run, and each but the list of fill-rate drops must return rows.
pub async fn reports_dashboard_queries_run(table: &str) {
    reports_dashboard_queries_run_at(CLICKHOUSE, table).await;
}

/// [`reports_dashboard_queries_run`] on the ClickHouse at `url`.
pub async fn reports_dashboard_queries_run_at(url: &str, table: &str) {
    let path = super::support::root().join("docs/grafana/reports.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 4);
    for panel in panels {
        let title = panel["title"].as_str().unwrap();
        for target in panel["targets"].as_array().unwrap() {
            let sql = target["rawSql"]
                .as_str()
                .unwrap()
                .replace("adstream.ad_metrics_1m", table)
                .replace(
                    "$__timeFilter(window_start)",
                    "window_start >= toDateTime(0)",
                );
            let rows = clickhouse_at(url, &sql).await;
            assert!(
                !rows.is_empty() || title.starts_with("Fill-rate drops"),
                "dashboard panel `{title}` found no rows"
            );
        }
    }
}
