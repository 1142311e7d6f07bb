//! The shipped `pipelines/shop.toml` on the real services, run by the binary as a user
//! runs it and killed with `kill -9` halfway: afterwards ClickHouse's minutes equal the
//! counts computed from the events, Redis holds the live keys with their TTLs, and the
//! payment outage's alert reached Kafka and Slack once.

use super::services_support::{
    BROKERS, CLICKHOUSE, Receiver, clickhouse_at, eventually, produce_keyed, redis, services, uid,
};
use super::shop_oracle as oracle;
use super::support::root;
use adstream::batch::RawBatch;
use adstream::config::source::GeneratorConfig;
use adstream::sources::generator::GeneratorSource;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const MIN: i64 = 60_000;

/// About 5 minutes at 400 events/s (more in the evening), 40 minutes ago, with a paypal
/// outage in minute 3.
fn events(start: i64) -> RawBatch {
    let cfg: GeneratorConfig = toml::from_str(&format!(
        "kind = \"generator\"\nrate = 400.0\npace = false\nstart = {start}\nseed = 5\n\
         count = 192000\n[shop]\nscenario = [{{ kind = \"payment_outage\", at = \"3m\", \
         target = \"paypal\", factor = 0.8 }}]"
    ))
    .unwrap();
    let mut raw = RawBatch::default();
    GeneratorSource::new(&cfg)
        .unwrap()
        .generate(u64::MAX, &mut raw);
    raw
}

fn user_of(record: &[u8]) -> String {
    let e: Value = serde_json::from_slice(record).unwrap();
    e["user_id"].as_str().unwrap_or_default().to_string()
}

fn host(dir: &Path, env: &[(&str, String)], status: Option<u16>) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("host.log"))
        .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_adstream"));
    let status = status.map_or("off".to_string(), |p| format!("127.0.0.1:{p}"));
    cmd.args(["run", "--status-addr", &status, "--no-watch"])
        .arg(root().join("pipelines/shop.toml"))
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Whether the host serving status on `port` has read every partition to its end.
async fn all_read(port: u16) -> bool {
    let url = format!("http://127.0.0.1:{port}/status");
    let Ok(reply) = reqwest::get(&url).await else {
        return false;
    };
    let text = reply.text().await.unwrap_or_default();
    let status: Value = serde_json::from_str(&text).unwrap_or_default();
    let lag = &status["pipelines"][0]["source_lag"];
    let lags: Vec<i64> = (lag.as_object().into_iter().flatten())
        .filter_map(|(_, n)| n.as_i64())
        .collect();
    lags.len() == 3 && lags.iter().all(|n| *n == 0)
}

/// `column` by minute of a table, FINAL (replayed rows count once).
async fn by_minute(table: &str, columns: &[&str]) -> BTreeMap<i64, Vec<i64>> {
    let query = format!(
        "SELECT toUnixTimestamp(window_start) * 1000 AS t, {} FROM {table} FINAL",
        columns.join(", ")
    );
    let n = |v: &Value| {
        v.as_str()
            .map_or_else(|| v.as_i64().unwrap(), |s| s.parse().unwrap())
    };
    let rows = clickhouse_at(CLICKHOUSE, &query).await;
    rows.iter()
        .map(|r| {
            let name = |c: &str| c.rsplit(" AS ").next().unwrap().to_string();
            (n(&r["t"]), columns.iter().map(|c| n(&r[name(c)])).collect())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_shop_pipeline_is_exact_on_the_services_across_kill_9() {
    services();
    let id = uid();
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start(vec![]).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let start = (now - 40 * MIN).div_euclid(MIN) * MIN;
    let raw = events(start);
    let (ns, db) = (format!("{id}-"), format!("adstream_{id}"));
    let env = [
        ("ADSTREAM_NS", ns.clone()),
        ("ADSTREAM_CH_DB", db.clone()),
        ("ADSTREAM_KAFKA", BROKERS.to_string()),
        (
            "ADSTREAM_STATE",
            dir.path().join("state").display().to_string(),
        ),
        (
            "ADSTREAM_PII_KEY",
            "a-test-key-of-enough-length".to_string(),
        ),
        ("SLACK_WEBHOOK_URL", hook.url.clone()),
    ];
    let topic = format!("{ns}shop-events");
    let mut first = host(dir.path(), &env, None);
    produce_keyed(BROKERS, &topic, &raw, |_, r| user_of(r)).await;
    let checkpoint = dir.path().join("state/shop.checkpoint");
    let overview = format!("{db}.shop_overview_1m");
    let midway = eventually(Duration::from_secs(180), async || {
        checkpoint.is_file() && by_minute(&overview, &["orders"]).await.len() >= 3
    })
    .await;
    assert!(
        midway,
        "3 minutes written before the kill: {}",
        std::fs::read_to_string(dir.path().join("host.log")).unwrap()
    );
    first.kill().unwrap();
    first.wait().unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut second = host(dir.path(), &env, Some(port));
    // The closing events come after everything was read: in one batch with the last
    // minute's events they would make those stale for the `fresh` rule.
    let read = eventually(Duration::from_secs(180), async || all_read(port).await).await;
    let log = || std::fs::read_to_string(dir.path().join("host.log")).unwrap();
    assert!(read, "the restarted host read every event: {}", log());
    // Page views 20 minutes on close every window, the matching's 15-minute lookback too:
    // 40 users', so that every partition's watermark moves.
    let last = start + 28 * MIN;
    let closing: Vec<String> = (0..40)
        .map(|u| format!(r#"{{"event_id":"closing-{u}","event_time":{last},"event_type":"page_view","user_id":"c{u}"}}"#))
        .collect();
    let records: Vec<&[u8]> = closing.iter().map(|c| c.as_bytes()).collect();
    produce_keyed(
        BROKERS,
        &topic,
        &RawBatch::from_records(&records),
        |_, r| user_of(r),
    )
    .await;
    let matching = format!("{db}.shop_matching_1m");
    let last_event = serde_json::from_slice::<Value>(raw.record(raw.len() - 1)).unwrap();
    let minutes = ((last_event["event_time"].as_i64().unwrap() - start) / MIN + 1) as usize;
    let done = eventually(Duration::from_secs(240), async || {
        by_minute(&matching, &["orders"]).await.len() >= minutes
    })
    .await;
    assert!(done, "every minute matched: {}", log());
    Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .unwrap();
    assert!(second.wait().unwrap().success(), "{}", log());

    // The accepted events: all but the second copy of each payment sent twice.
    let mut seen = BTreeSet::new();
    let events: Vec<Value> = (0..raw.len())
        .map(|i| serde_json::from_slice::<Value>(raw.record(i)).unwrap())
        .filter(|e| {
            e["payment_id"]
                .as_str()
                .is_none_or(|p| seen.insert(p.to_string()))
        })
        .collect();
    let want: BTreeMap<i64, Vec<i64>> = (oracle::overview(&events).into_iter())
        .map(|(m, (c, cents))| (m, vec![c[0], c[1], c[2], c[3], c[4], c[5], cents]))
        .collect();
    let cols = [
        "product_views",
        "carts",
        "orders",
        "paid",
        "attempts",
        "failed",
        "toInt64(round(revenue * 100)) AS cents",
    ];
    let mut got = by_minute(&overview, &cols[..6]).await;
    let cents = by_minute(&overview, &["toInt64(round(revenue * 100)) AS cents"]).await;
    got.iter_mut().for_each(|(m, v)| v.push(cents[m][0]));
    assert_eq!(got, want, "overview by minute vs the events");
    let want: BTreeMap<i64, Vec<i64>> = oracle::matching(&events, 15 * MIN)
        .into_iter()
        .map(|(m, c)| (m, c.to_vec()))
        .collect();
    let keys = [
        "orders",
        "paid",
        "failed",
        "unpaid",
        "refunded",
        "amount_mismatch",
        "orphan_payments",
    ];
    assert_eq!(
        by_minute(&matching, &keys).await,
        want,
        "matching by minute vs the events"
    );

    // Redis: the live keys, each with a TTL.
    let mut r = redis().await;
    for key in [
        format!("{ns}shop:overview:1m"),
        format!("{ns}shop:top:revenue:1"),
        format!("{ns}shop:payments:paypal:1m"),
    ] {
        let fields: BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut r)
            .await
            .unwrap();
        assert!(!fields.is_empty(), "{key}");
        let ttl: i64 = redis::cmd("TTL")
            .arg(&key)
            .query_async(&mut r)
            .await
            .unwrap();
        assert!((1..=7200).contains(&ttl), "{key}: ttl {ttl}");
    }

    // The outage's alert, on Slack once (whatever the kill made the host send again).
    let posted: Vec<String> = hook.bodies(200);
    let spikes = posted
        .iter()
        .filter(|b| b.contains("payment_failure_spike"))
        .count();
    assert_eq!(spikes, 1, "{posted:#?}");
}
