//! End to end from the Kafka-protocol broker: the shipped `pipelines/ad-metrics.toml` (all
//! five quality rules, windows into ClickHouse and Redis, alerts to Kafka) beside a bare
//! rdkafka consumer reading the same topic, the ceiling. Needs the services
//! (`scripts/services.sh start`); `scripts/bench.sh` starts them.

use super::report::{Section, Stat};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BROKERS: &str = "127.0.0.1:9092";
const PARTITIONS: i32 = 3;

/// Events/s of a consumer assigned every partition from the start, until it read `n`.
fn bare_consumer(topic: &str, n: u64) -> f64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", BROKERS)
        .set("group.id", format!("{topic}-bare"))
        .set("enable.auto.commit", "false")
        // The fetch settings adstream's Kafka source uses: the ceiling is the same client
        // reading the same way, with nothing done to what it reads.
        .set("fetch.wait.max.ms", "100")
        .set("max.partition.fetch.bytes", "10485760")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let began = Instant::now();
    let mut read = 0;
    while read < n {
        assert!(
            began.elapsed() < Duration::from_secs(300),
            "read {read} of {n}"
        );
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            m.unwrap();
            read += 1;
        }
    }
    n as f64 / began.elapsed().as_secs_f64()
}

/// Runs ad-metrics (names under `ns`) until it has processed `n` records; its events/s,
/// the quality stage's µs per row (wall time and CPU time in its calls) and its rows per
/// call.
async fn pipeline(ns: &str, state: &Path, n: u64) -> (f64, [f64; 3]) {
    // SAFETY: set before any thread reads the environment for this pipeline.
    unsafe {
        std::env::set_var("ADSTREAM_NS", ns);
        std::env::set_var("ADSTREAM_STATE", state);
        std::env::set_var("ADSTREAM_CH_DB", "adstream_bench");
        std::env::set_var("ADSTREAM_PII_KEY", "adstream-bench-key-NOT-A-SECRET");
    }
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines/ad-metrics.toml");
    let cfg = super::data::load(&file);
    let engine = adstream::plugin::PluginEngine::new().unwrap();
    let p = adstream::pipeline::build(&cfg, &engine).unwrap_or_else(|d| panic!("{d:#?}"));
    let stats = Arc::new(Mutex::new(Default::default()));
    let began = Instant::now();
    let mut running = adstream::pipeline::start(p, stats.clone()).await.unwrap();
    loop {
        let records = stats.lock().unwrap().records;
        if records >= n {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(300),
            "{records} of {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rate = n as f64 / began.elapsed().as_secs_f64();
    running.stop();
    let summary = running.finished().await.unwrap();
    let (_, q) = (summary.stats.stages.iter())
        .find(|(name, _)| name == "quality")
        .expect("ad-metrics has a quality stage");
    let rows = q.rows_in.max(1) as f64;
    let us = |ns: u64| ns as f64 / 1e3 / rows;
    (
        rate,
        [us(q.busy_ns), us(q.cpu_ns), rows / q.calls.max(1) as f64],
    )
}

/// Writes `events` generated events to a new topic named under `ns`.
async fn produce(ns: &str, events: u64) -> String {
    let topic = format!("{ns}ad-events");
    let cfg: adstream::config::source::GeneratorConfig = toml::from_str(&format!(
        "kind = \"generator\"\npace = false\nrate = 20000.0\nseed = 3\ncount = {events}"
    ))
    .unwrap();
    let create = adstream::config::kafka::CreateTopic {
        partitions: std::num::NonZeroU32::new(PARTITIONS as u32).unwrap(),
    };
    adstream::cli::generate::produce(BROKERS, &topic, Some(&create), &cfg, false)
        .await
        .unwrap();
    topic
}

pub async fn run(dir: &Path, events: u64, n: usize) -> Section {
    let (mut bare, mut ours) = (vec![], vec![]);
    let mut quality: [Vec<f64>; 3] = Default::default();
    for i in 0..n {
        // A topic and consumer group of its own per run: a run starts from nothing.
        let ns = format!("bench{}-{i}-", std::process::id());
        let topic = produce(&ns, events).await;
        let rate = tokio::task::spawn_blocking(move || bare_consumer(&topic, events));
        bare.push(rate.await.unwrap());
        let (rate, q) = pipeline(&ns, &dir.join(format!("e2e-state-{i}")), events).await;
        ours.push(rate);
        quality.iter_mut().zip(q).for_each(|(all, x)| all.push(x));
    }
    let (bare, ours) = (Stat::of(bare), Stat::of(ours));
    let [wall, cpu, per_call] = quality.map(Stat::of);
    Section {
        title: "End to end from the broker",
        about: format!(
            "{events} events on a {PARTITIONS}-partition topic of the local tansu broker \
             (SQLite storage), read from the start: a bare rdkafka consumer (the ceiling), \
             then `pipelines/ad-metrics.toml` (pii → quality with its five rules → 1 min and \
             10 s windows into ClickHouse and Redis → anomalies to Kafka) until every event \
             was processed, in this process, from the pipeline's start. The quality stage's \
             time inside its calls, as wall time (the broker and ClickHouse share the two \
             cores) and as the calling thread's CPU time. Median (min–max) of {n} runs."
        ),
        header: vec![
            "reader",
            "events/s",
            "÷ bare consumer",
            "quality µs/row",
            "quality CPU µs/row",
            "quality rows/call",
        ],
        rows: vec![
            vec![
                "bare rdkafka consumer".into(),
                bare.rate(),
                "1.00".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ],
            vec![
                "adstream ad-metrics".into(),
                ours.rate(),
                format!("{:.2}", ours.median / bare.median),
                wall.show(3),
                cpu.show(3),
                per_call.show(0),
            ],
        ],
    }
}
