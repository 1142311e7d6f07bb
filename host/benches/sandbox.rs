//! What a hostile plugin costs the host, case by case (issue 12's list).
//!
//!   cargo bench -p adstream --bench sandbox [-- EVENTS]
//!
//! Each case runs 200 events in batches of 20 through one hostile stage (300 ms deadline,
//! `max_failures = 100` so that every batch meets the plugin) while a healthy pipeline —
//! EVENTS generated events (default 3,000,000) through 10 s windows — runs in the same
//! process. Reported per case: the time until the hostile run ended with every row counted
//! or dead-lettered, the peak resident memory of the process during the case, the bytes it
//! made the host write (sink, dead letters and log), and the healthy pipeline's speed as a
//! ratio of its speed alone, measured in the same run before the cases. On a machine with
//! fewer cores than the two pipelines' threads, any busy neighbour slows the healthy one;
//! the control row, a second healthy pipeline as the neighbour, shows by how much.

use adstream::pipeline::RunSummary;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

const HEALTHY: &str = r#"
name = "healthy"
dead_letter = "dead"
[source]
kind = "generator"
pace = false
count = @COUNT@
start = 1767225600000
seed = 5
batch_size = 1000
[schema]
event_id = { type = "string", required = true }
event_time = { type = "timestamp_ms", required = true }
event_type = { type = "dict", required = true }
country = { type = "dict", required = true }
ad_format = { type = "dict", required = true }
network = "dict"
revenue = "f64"
cost = "f64"
[[stage]]
name = "windows"
plugin = "@PLUGINS@/window_aggregate.wasm"
config = { window = "10s", group_by = ["country", "ad_format"] }
to = ["out"]
[sink.out]
kind = "file"
path = "@DIR@/out.jsonl"
[sink.dead]
kind = "file"
path = "@DIR@/dead.jsonl"
"#;

const HOSTILE: &str = r#"
name = "hostile"
dead_letter = "dead"
[source]
kind = "file"
path = "@DIR@/events.jsonl"
batch_size = 20
[schema]
event_id = { type = "string", required = true }
event_time = { type = "timestamp_ms", required = true }
[[stage]]
name = "hostile"
plugin = "@TEST_PLUGINS@/@PLUGIN@.wasm"
config = { mode = "@MODE@" }
limits = { deadline = "300ms", @LIMITS@ }
max_failures = 100
to = ["out"]
[sink.out]
kind = "file"
path = "@DIR@/out.jsonl"
[sink.dead]
kind = "file"
path = "@DIR@/dead.jsonl"
"#;

/// (case, plugin, mode, limits).
const CASES: &[(&str, &str, &str, &str)] = &[
    ("loop", "hostile", "loop", "memory = \"32MiB\""),
    ("sleep an hour", "hostile", "sleep", "memory = \"32MiB\""),
    (
        "sleep in a loop",
        "hostile",
        "sleep_loop",
        "memory = \"32MiB\"",
    ),
    ("memory bomb", "hostile", "memory", "memory = \"32MiB\""),
    (
        "32 MiB error",
        "hostile",
        "big_error",
        "memory = \"512MiB\"",
    ),
    (
        "100 MiB value",
        "hostile",
        "huge_value",
        "memory = \"512MiB\"",
    ),
    ("2 MiB value", "hostile", "big_value", "memory = \"512MiB\""),
    (
        "100 KB rejections",
        "hostile_validate",
        "-",
        "memory = \"32MiB\"",
    ),
    (
        "200k log lines",
        "hostile",
        "log_flood",
        "memory = \"64MiB\"",
    ),
    (
        "200k counters",
        "hostile",
        "counter_flood",
        "memory = \"64MiB\"",
    ),
    (
        "text not UTF-8",
        "hostile",
        "bad_utf8",
        "memory = \"32MiB\"",
    ),
];

/// Bytes the host has logged, counted by a writer that keeps nothing.
static LOGGED: AtomicU64 = AtomicU64::new(0);

struct Counting;

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGGED.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One engine for the run, so that each plugin is compiled once, as in the host.
fn engine() -> &'static adstream::plugin::PluginEngine {
    static ENGINE: std::sync::OnceLock<adstream::plugin::PluginEngine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| adstream::plugin::PluginEngine::new().unwrap())
}

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn fill(template: &str, dir: &Path, pairs: &[(&str, &str)]) -> String {
    let mut text = template
        .replace("@DIR@", &dir.display().to_string())
        .replace(
            "@PLUGINS@",
            &root().join("plugins/dist").display().to_string(),
        )
        .replace(
            "@TEST_PLUGINS@",
            &root().join("test-plugins/dist").display().to_string(),
        );
    for (key, value) in pairs {
        text = text.replace(key, value);
    }
    text
}

async fn run(dir: &Path, text: &str) -> RunSummary {
    let file = dir.join("p.toml");
    std::fs::write(&file, text).unwrap();
    let cfg = adstream::config::load(&file).unwrap_or_else(|d| panic!("{d:#?}"));
    let p = adstream::pipeline::build(&cfg, engine()).unwrap_or_else(|d| panic!("{d:#?}"));
    let (_tx, rx) = watch::channel(false);
    adstream::pipeline::run(p, rx, None).await.unwrap()
}

async fn healthy(count: u64) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let text = fill(HEALTHY, dir.path(), &[("@COUNT@", &count.to_string())]);
    run(dir.path(), &text).await.elapsed
}

fn events(dir: &Path) {
    let lines: Vec<String> = (0..200)
        .map(|i| {
            format!(
                r#"{{"event_id": "e{i}", "event_time": {}}}"#,
                1_700_000_000_000i64 + i
            )
        })
        .collect();
    std::fs::write(dir.join("events.jsonl"), lines.join("\n")).unwrap();
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Peak resident memory since the last [`reset_peak`].
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb << 10)
}

fn reset_peak() {
    // Writing 5 to clear_refs resets VmHWM to the current resident size (Linux ≥ 4.0).
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

struct Row {
    contain: Duration,
    rows_out: u64,
    dead: u64,
    peak: u64,
    written: u64,
    ratio: f64,
}

async fn case(plugin: &str, mode: &str, limits: &str, count: u64, alone: Duration) -> Row {
    let dir = tempfile::tempdir().unwrap();
    events(dir.path());
    let text = fill(
        HOSTILE,
        dir.path(),
        &[("@PLUGIN@", plugin), ("@MODE@", mode), ("@LIMITS@", limits)],
    );
    reset_peak();
    LOGGED.store(0, Ordering::Relaxed);
    let beside = tokio::spawn(healthy(count));
    let began = Instant::now();
    let summary = run(dir.path(), &text).await;
    let contain = began.elapsed();
    let stage = &summary.stats.stages[0].1;
    let written = file_len(&dir.path().join("out.jsonl"))
        + file_len(&dir.path().join("dead.jsonl"))
        + LOGGED.load(Ordering::Relaxed);
    // Keep the hostile plugin running until the healthy pipeline is done, so that the
    // ratio is of the two side by side.
    while !beside.is_finished() {
        let again = tempfile::tempdir().unwrap();
        events(again.path());
        let text = fill(
            HOSTILE,
            again.path(),
            &[("@PLUGIN@", plugin), ("@MODE@", mode), ("@LIMITS@", limits)],
        );
        run(again.path(), &text).await;
    }
    let with = beside.await.unwrap();
    Row {
        contain,
        rows_out: stage.rows_out,
        dead: stage.dead_letters,
        peak: peak_rss(),
        written,
        ratio: alone.as_secs_f64() / with.as_secs_f64(),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(|| Counting)
        .with_ansi(false)
        .init();
    let count: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3_000_000);
    healthy(count / 10).await; // warm the compiled-plugin cache
    let alone = healthy(count).await;
    println!(
        "healthy alone: {count} events in {:.2} s ({:.0} events/s)\n",
        alone.as_secs_f64(),
        count as f64 / alone.as_secs_f64()
    );
    println!(
        "| case | time to contain | rows out / dead letters | peak RSS | bytes written | healthy speed |"
    );
    println!("|---|---|---|---|---|---|");
    reset_peak();
    let (with, _) = tokio::join!(healthy(count), healthy(count));
    println!(
        "| (control) a second healthy pipeline | - | - | {} MiB | - | {:.2} |",
        peak_rss() >> 20,
        alone.as_secs_f64() / with.as_secs_f64()
    );
    for (name, plugin, mode, limits) in CASES {
        let r = case(plugin, mode, limits, count, alone).await;
        println!(
            "| {name} | {:.2} s | {} / {} | {} MiB | {} | {:.2} |",
            r.contain.as_secs_f64(),
            r.rows_out,
            r.dead,
            r.peak >> 20,
            bytesize::ByteSize(r.written),
            r.ratio
        );
    }
}
