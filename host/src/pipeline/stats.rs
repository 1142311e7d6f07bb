//! Live numbers of a running pipeline and its stages, for status and metrics.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Counts of one stage.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StageStats {
    pub calls: u64,
    pub rows_in: u64,
    pub rows_out: u64,
    pub dead_letters: u64,
    pub plugin_errors: u64,
    pub failures: u64,
    /// Failures that were the call's deadline running out.
    pub timeouts: u64,
    pub restarts: u64,
    /// Failed batches in a row; at the stage's limit it is quarantined.
    pub failing_in_a_row: u32,
    /// The plugin is no longer called; batches are handled by `on_error`.
    pub quarantined: bool,
    /// Wall time inside plugin calls.
    pub busy_ns: u64,
    /// CPU time of the threads that made those calls, while they made them: below
    /// `busy_ns` when other work took the cores (0 where the platform cannot tell).
    pub cpu_ns: u64,
    /// State snapshots the plugin gave (for checkpoints, and to bound the redo log), and
    /// the wall time they took: not in `busy_ns`, which counts calls with batches.
    pub snapshots: u64,
    pub snapshot_ns: u64,
    /// How long each plugin call took.
    #[serde(skip)]
    pub call_seconds: Latency,
    /// Counters the plugin itself keeps (`host.count`).
    pub plugin_counters: BTreeMap<String, u64>,
    /// Log lines over the stage's rate, and counter additions beyond its names, dropped.
    pub logs_dropped: u64,
    pub counters_dropped: u64,
    pub last_error: Option<String>,
    /// The candidate version running in shadow, if any, and how it compares.
    pub canary: Option<CanaryReport>,
    /// The last rows an aggregate or detect stage produced (windows, alerts), for the
    /// dashboard; shared, so that copying the stats does not copy them.
    #[serde(skip)]
    pub recent: Recent,
}

impl StageStats {
    /// Adds another shard's counts to these (histogram and recent rows are shared).
    pub fn add(&mut self, o: &StageStats) {
        self.calls += o.calls;
        self.rows_in += o.rows_in;
        self.rows_out += o.rows_out;
        self.dead_letters += o.dead_letters;
        self.plugin_errors += o.plugin_errors;
        self.failures += o.failures;
        self.timeouts += o.timeouts;
        self.restarts += o.restarts;
        self.failing_in_a_row = self.failing_in_a_row.max(o.failing_in_a_row);
        self.quarantined |= o.quarantined;
        self.busy_ns += o.busy_ns;
        self.cpu_ns += o.cpu_ns;
        self.snapshots += o.snapshots;
        self.snapshot_ns += o.snapshot_ns;
        for (k, v) in &o.plugin_counters {
            let c = self.plugin_counters.entry(k.clone()).or_default();
            *c = c.saturating_add(*v);
        }
        self.logs_dropped += o.logs_dropped;
        self.counters_dropped += o.counters_dropped;
        if self.last_error.is_none() {
            self.last_error.clone_from(&o.last_error);
        }
    }
}

/// A latency histogram in seconds, 10 µs to about 10 s in steps of 4×; its copies share
/// the counts.
#[derive(Debug, Clone)]
pub struct Latency(pub prometheus_client::metrics::histogram::Histogram);

impl Default for Latency {
    fn default() -> Self {
        let buckets = prometheus_client::metrics::histogram::exponential_buckets(1e-5, 4.0, 11);
        Latency(prometheus_client::metrics::histogram::Histogram::new(
            buckets,
        ))
    }
}

impl Latency {
    pub fn observe(&self, took: Duration) {
        self.0.observe(took.as_secs_f64());
    }
}

/// Rows kept per stage for the dashboard, and the most bytes of one.
const RECENT_ROWS: usize = 400;
const RECENT_ROW_BYTES: usize = 2048;

/// A stage's latest output rows as JSON objects, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Recent(Arc<Mutex<VecDeque<String>>>);

impl Recent {
    /// Keeps the rows of `batch` (the last [`RECENT_ROWS`] of them).
    pub fn record(&self, batch: &adstream_sdk::Batch) {
        self.record_without(batch, &[]);
    }

    /// Keeps the rows of `batch` without the columns named in `skip`.
    pub fn record_without(&self, batch: &adstream_sdk::Batch, skip: &[&str]) {
        let first = batch.len().saturating_sub(RECENT_ROWS);
        let mut rows = self.0.lock().expect("recent rows");
        for r in first..batch.len() {
            let row = row_json_without(batch, r, skip);
            // A row too long to show is left out rather than cut into invalid JSON.
            if row.len() <= RECENT_ROW_BYTES {
                rows.push_back(row);
            }
        }
        while rows.len() > RECENT_ROWS {
            rows.pop_front();
        }
    }

    /// The rows as one JSON array.
    pub fn json(&self) -> String {
        let rows = self.0.lock().expect("recent rows");
        let mut out = String::with_capacity(rows.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
        out.push('[');
        for (i, r) in rows.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(r);
        }
        out.push(']');
        out
    }
}

fn row_json_without(batch: &adstream_sdk::Batch, row: usize, skip: &[&str]) -> String {
    let mut out = vec![b'{'];
    for col in batch
        .columns
        .iter()
        .filter(|c| !skip.contains(&c.name.as_str()))
    {
        if out.len() > 1 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut out, &col.name);
        out.push(b':');
        crate::batch::encode::write_value(&mut out, col, row);
    }
    out.push(b'}');
    String::from_utf8(out).unwrap_or_default()
}

/// Where a canary stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CanaryState {
    /// Running in shadow, being compared.
    Comparing,
    /// Done: its outputs matched (within the tolerance); waiting for the operator.
    Matched,
    /// Done: its outputs differed; waiting for the operator.
    Differs,
    /// Done: it failed (a trap, an error, a state it could not take); never promoted.
    Failed,
    /// It matched and, as its policy said, took over from the running version.
    Promoted,
}

/// A canary's comparison with the running version, as status and metrics show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CanaryReport {
    pub plugin: String,
    pub version: String,
    pub hash: String,
    pub state: CanaryState,
    /// Plugin calls compared so far, and the rows each version returned.
    pub calls: u64,
    pub rows_current: u64,
    pub rows_candidate: u64,
    /// Time the candidate spent in its calls (the running version's is the stage's).
    pub busy_ns: u64,
    /// Row by row (see `batch::compare`): same, changed, added, removed, examples.
    pub diff: crate::batch::compare::RowDiff,
    pub error: Option<String>,
    /// What ended the comparison and what follows from it.
    pub verdict: Option<String>,
}

/// Counts of one pipeline.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PipelineStats {
    pub batches: u64,
    /// How long each batch took through every stage.
    #[serde(skip)]
    pub batch_seconds: Latency,
    pub records: u64,
    pub decode_errors: u64,
    pub dead_letters: u64,
    /// Dead letters by reason (`decode`, `rejected`, `late`, `plugin_error`, ...).
    pub dead_letters_by_reason: BTreeMap<&'static str, u64>,
    /// The last dead letters, without their payloads, for the dashboard.
    #[serde(skip)]
    pub recent_dead_letters: Recent,
    pub watermark: Option<i64>,
    /// Checkpoints written, and failed (not written).
    pub checkpoints: u64,
    pub checkpoint_failures: u64,
    /// When the newest checkpoint was written, ms since the epoch.
    pub last_checkpoint_ms: Option<i64>,
    /// Why the source delivers nothing, while it is stalled.
    pub source_stalled: Option<String>,
    /// Records behind each source partition's end (Kafka), as last reported.
    pub source_lag: BTreeMap<i32, i64>,
    /// The source partitions this host reads: for a shared source, those the group gave it.
    pub partitions: Vec<i32>,
    /// Each of those partitions' own watermark (ms), once it has one.
    pub partition_watermarks: BTreeMap<i32, i64>,
    /// Rebalances of a shared source's group that moved partitions to or from this host.
    pub rebalances: u64,
    /// How long each rebalance that took partitions from this host waited for their last
    /// cuts before they went to their next owner.
    #[serde(skip)]
    pub rebalance_seconds: Latency,
    /// While this host merges a shared pipeline's windows (it owns partition 0): their
    /// watermark, the slowest partition's mark (`i64::MIN` until every one has a mark).
    pub merging: Option<i64>,
    pub stages: Vec<(String, StageStats)>,
}

/// What a finished run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    pub pipeline: String,
    pub elapsed: Duration,
    pub stats: PipelineStats,
}

/// CPU time the calling thread has used, in nanoseconds (`None` where the platform cannot
/// tell): a stage's cost apart from the time other work held the cores.
#[cfg(unix)]
pub fn thread_cpu_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a pointer to a local.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
    ok.then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

#[cfg(not(unix))]
pub fn thread_cpu_ns() -> Option<u64> {
    None
}
