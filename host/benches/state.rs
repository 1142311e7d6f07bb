//! Whether keeping a large state costs throughput: the windows stage (the real
//! `window_aggregate.wasm`) holding 100 open groups against one holding 1,000,000, fed
//! the same batches (5,000 rows of 100 users, all in one open window) for the same time,
//! with a checkpoint's snapshot every 5 s of processing as the pipeline takes them.
//!
//!   cargo bench -p adstream --bench state [-- SECONDS]
//!
//! Per-call snapshots would make the large stage far slower; snapshots at checkpoints
//! (and a redo log for failures) keep the cost of the state to the checkpoints.

use adstream::batch::{DeadLetters, Envelope};
use adstream::config::OnError;
use adstream::pipeline::{Input, Stage, StageSpec};
use adstream::plugin::{Limits, PluginEngine};
use adstream_sdk::ColumnKind::{Dictionary, Float64, Text, TimestampMs};
use adstream_sdk::{Batch, DictBuilder, F64Builder, I64Builder, Setup, TextBuilder, field};
use std::sync::Arc;
use std::time::{Duration, Instant};

const T0: i64 = 1_767_225_600_000;
const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);

fn stage(engine: &PluginEngine) -> Stage {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/dist/window_aggregate.wasm");
    let plugin = engine
        .load(&path, false)
        .expect("scripts/build-plugins.sh first");
    let spec = StageSpec {
        name: Arc::from("windows"),
        plugin,
        setup: Setup {
            config: r#"{"window": "1h", "group_by": ["user_id"]}"#.into(),
            input: vec![
                field("event_time", TimestampMs, false),
                field("event_type", Dictionary, false),
                field("user_id", Text, false),
                field("network", Dictionary, true),
                field("revenue", Float64, true),
                field("cost", Float64, true),
            ],
            secrets: Vec::new(),
        },
        limits: Limits {
            memory_bytes: 2 << 30,
            deadline: Duration::from_secs(60),
            ..Limits::default()
        },
        on_error: OnError::Stop,
        max_failures: 1.try_into().unwrap(),
        batch_size: usize::MAX,
        input: Input::Source,
        to: Vec::new(),
        seed: 0,
        shards: 1,
        shard_by: Arc::from([]),
        partition_local: false,
        partitioned: false,
        canary: None,
    };
    Stage::start(spec).expect("the stage starts")
}

/// `n` impressions of users `first..first + n` (mod `users`), at one time.
fn batch(first: u64, n: u64, users: u64) -> Envelope {
    let (mut t, mut ty, mut user) = (
        I64Builder::default(),
        DictBuilder::default(),
        TextBuilder::default(),
    );
    let (mut net, mut rev, mut cost) = (
        DictBuilder::default(),
        F64Builder::default(),
        F64Builder::default(),
    );
    for i in first..first + n {
        t.push(T0 + 1000);
        ty.push("impression");
        user.push(&format!("u{:07}", i % users));
        net.push("admob");
        rev.push(0.002);
        cost.push(0.001);
    }
    let cols = vec![
        t.finish_timestamp("event_time"),
        ty.finish("event_type"),
        user.finish("user_id"),
        net.finish("network"),
        rev.finish("revenue"),
        cost.finish("cost"),
    ];
    Envelope {
        batch: Batch::from_columns(cols).unwrap(),
        positions: None,
    }
}

/// Fills a stage with `groups` open groups, then measures events/s for `secs` on 100
/// users; returns (events/s, snapshots taken, bytes of the last one, time per snapshot).
fn measure(engine: &PluginEngine, groups: u64, secs: u64) -> (f64, u32, usize, Duration) {
    let mut s = stage(engine);
    let mut dl = DeadLetters::new("bench");
    for from in (0..groups).step_by(50_000) {
        s.process(
            vec![batch(from, 50_000.min(groups - from), groups)],
            i64::MIN,
            &mut dl,
        )
        .unwrap();
    }
    s.snapshot().unwrap();
    let (began, mut since, mut events) = (Instant::now(), Instant::now(), 0u64);
    let (mut snaps, mut snap_time, mut snap_bytes) = (0, Duration::ZERO, 0);
    let batches: Vec<Envelope> = (0..20).map(|i| batch(i * 5000, 5000, 100)).collect();
    while began.elapsed() < Duration::from_secs(secs) {
        for b in &batches {
            s.process(vec![b.clone()], i64::MIN, &mut dl).unwrap();
            events += 5000;
        }
        if since.elapsed() >= CHECKPOINT_EVERY {
            let t = Instant::now();
            snap_bytes = s.snapshot().unwrap().map_or(0, |b| b.len());
            snap_time += t.elapsed();
            snaps += 1;
            since = Instant::now();
        }
    }
    let per_snap = snap_time / snaps.max(1);
    if std::env::var("BENCH_DEBUG").is_ok() {
        eprintln!(
            "{groups}: calls {} busy {:?} restarts {}",
            s.stats.calls,
            Duration::from_nanos(s.stats.busy_ns),
            s.stats.restarts
        );
    }
    (
        events as f64 / began.elapsed().as_secs_f64(),
        snaps,
        snap_bytes,
        per_snap,
    )
}

fn main() {
    let secs: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20);
    let engine = PluginEngine::new().unwrap();
    println!(
        "windows stage (window_aggregate.wasm, 1 h window by user_id), {secs} s each, a snapshot every {CHECKPOINT_EVERY:?}"
    );
    let small = measure(&engine, 100, secs);
    let large = measure(&engine, 1_000_000, secs);
    for (name, (rate, n, bytes, per)) in [("100 groups", small), ("1,000,000 groups", large)] {
        println!(
            "{name:>17}: {:>10.0} events/s, {n} snapshots of {:.1} MB, {:.0} ms each",
            rate,
            bytes as f64 / 1e6,
            per.as_secs_f64() * 1e3
        );
    }
    println!("large / small: {:.3}", large.0 / small.0);
}
