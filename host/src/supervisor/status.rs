//! What `adstream status` and the HTTP endpoint show: the running pipelines, each stage's
//! plugin (content hash, version, when it was loaded) with its live counts, and the history
//! of changes (swaps, pipeline edits), accepted or rejected.

use crate::pipeline::{Latency, PipelineStats, Recent, SinkGauges, SinkStatus, StageStats};
use adstream_sdk::time::iso8601;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Changes kept for status; older ones are dropped (the log has them all).
const HISTORY: usize = 500;

/// The plugin a stage runs.
#[derive(Debug, Clone, Serialize)]
pub struct PluginStatus {
    pub path: String,
    pub role: &'static str,
    pub name: String,
    pub version: String,
    pub hash: String,
    pub loaded_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageStatus {
    pub name: String,
    pub plugin: PluginStatus,
    pub stats: StageStats,
}

#[derive(Debug, Clone, Serialize)]
pub struct PipelineStatus {
    pub name: String,
    pub file: String,
    pub source: String,
    /// `running`, `finished`, or `failed: why`.
    pub state: String,
    pub records: u64,
    pub batches: u64,
    pub decode_errors: u64,
    pub dead_letters: u64,
    pub dead_letters_by_reason: BTreeMap<&'static str, u64>,
    #[serde(skip)]
    pub batch_seconds: Latency,
    /// How long rebalances waited for partitions this host let go.
    #[serde(skip)]
    pub rebalance_seconds: Latency,
    /// The last dead letters (without payloads), for the dashboard's feed.
    #[serde(skip)]
    pub recent_dead_letters: Recent,
    pub watermark: Option<String>,
    pub checkpoints: u64,
    pub checkpoint_failures: u64,
    /// When the newest checkpoint was written.
    pub last_checkpoint: Option<String>,
    /// Seconds since then.
    pub checkpoint_age_s: Option<f64>,
    /// Why the source delivers nothing, while it is stalled.
    pub source_stalled: Option<String>,
    /// Records behind each source partition's end (Kafka sources).
    pub source_lag: BTreeMap<i32, i64>,
    /// The source partitions this host reads (for a shared source, its share).
    pub partitions: Vec<i32>,
    /// Each partition's own watermark (never behind the pipeline's), once it has one.
    pub partition_watermarks: BTreeMap<i32, String>,
    /// Rebalances that moved partitions to or from this host.
    pub rebalances: u64,
    /// While this host merges a shared pipeline's windows: their watermark, or
    /// `waiting` until every partition has a mark.
    pub merging: Option<String>,
    pub stages: Vec<StageStatus>,
    pub sinks: Vec<SinkStatus>,
}

/// One change the host tried while running.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub at: String,
    pub pipeline: String,
    pub stage: Option<String>,
    /// `plugin` (a `.wasm` file changed) or `pipeline` (its file changed).
    pub kind: &'static str,
    pub accepted: bool,
    /// The new plugin's content hash, for plugin swaps.
    pub hash: Option<String>,
    /// How long the stage's batch flow stopped for the state hand-over.
    pub pause_us: Option<u64>,
    /// How long the new version took for its first batch.
    pub first_batch_us: Option<u64>,
    pub detail: String,
}

impl Change {
    pub fn new(
        pipeline: &str,
        stage: Option<&str>,
        kind: &'static str,
        accepted: bool,
        detail: String,
    ) -> Change {
        Change {
            at: now_iso(),
            pipeline: pipeline.to_string(),
            stage: stage.map(str::to_string),
            kind,
            accepted,
            hash: None,
            pause_us: None,
            first_batch_us: None,
            detail,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub started_at: String,
    pub pipelines: Vec<PipelineStatus>,
    pub changes: Vec<Change>,
}

pub fn now_iso() -> String {
    iso8601(system_ms(SystemTime::now()))
}

pub fn system_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A pipeline as the board shows it: fixed facts, plugins, and its live stats.
pub struct BoardEntry {
    pub name: String,
    pub file: String,
    pub source: String,
    pub state: String,
    pub plugins: Vec<(String, PluginStatus)>,
    pub stats: Arc<Mutex<PipelineStats>>,
    pub sinks: SinkGauges,
}

/// Shared between the supervisor, which updates it, and whoever reports it.
pub struct Board {
    started_at: String,
    inner: Mutex<Inner>,
}

/// Changes counted by (pipeline, kind, accepted), for ever: the history is trimmed, a
/// Prometheus counter must not go down.
pub(super) type Totals = BTreeMap<(String, &'static str, bool), u64>;

#[derive(Default)]
struct Inner {
    entries: Vec<BoardEntry>,
    history: VecDeque<Change>,
    totals: Totals,
}

impl Default for Board {
    fn default() -> Self {
        Board {
            started_at: now_iso(),
            inner: Mutex::default(),
        }
    }
}

impl Board {
    /// Adds or replaces the entry of pipeline `entry.name`.
    pub fn set(&self, entry: BoardEntry) {
        let mut inner = self.inner.lock().expect("board");
        match inner.entries.iter_mut().find(|e| e.name == entry.name) {
            Some(e) => *e = entry,
            None => inner.entries.push(entry),
        }
    }

    /// Changes one entry in place.
    pub fn update(&self, pipeline: &str, f: impl FnOnce(&mut BoardEntry)) {
        let mut inner = self.inner.lock().expect("board");
        if let Some(e) = inner.entries.iter_mut().find(|e| e.name == pipeline) {
            f(e);
        }
    }

    pub fn record(&self, change: Change) {
        let level_ok = change.accepted;
        let what = format!(
            "{} change to pipeline `{}`{}: {}",
            change.kind,
            change.pipeline,
            change
                .stage
                .as_ref()
                .map(|s| format!(", stage `{s}`"))
                .unwrap_or_default(),
            change.detail
        );
        if level_ok {
            tracing::info!("{what}");
        } else {
            tracing::warn!("rejected {what}");
        }
        let mut inner = self.inner.lock().expect("board");
        let key = (change.pipeline.clone(), change.kind, change.accepted);
        *inner.totals.entry(key).or_default() += 1;
        if inner.history.len() == HISTORY {
            inner.history.pop_front();
        }
        inner.history.push_back(change);
    }

    pub fn changes(&self) -> Vec<Change> {
        self.inner
            .lock()
            .expect("board")
            .history
            .iter()
            .cloned()
            .collect()
    }

    pub fn status(&self) -> Status {
        let inner = self.inner.lock().expect("board");
        let pipelines = inner.entries.iter().map(entry_status).collect();
        Status {
            started_at: self.started_at.clone(),
            pipelines,
            changes: inner.history.iter().cloned().collect(),
        }
    }

    /// The totals kept since the host started (of pipelines that ended too), for
    /// `/metrics`.
    pub(super) fn totals(&self) -> Totals {
        self.inner.lock().expect("board").totals.clone()
    }
}

fn entry_status(e: &BoardEntry) -> PipelineStatus {
    let stats = e.stats.lock().map(|s| s.clone()).unwrap_or_default();
    let stages = e
        .plugins
        .iter()
        .map(|(name, plugin)| StageStatus {
            name: name.clone(),
            plugin: plugin.clone(),
            stats: stats
                .stages
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, s)| s.clone())
                .unwrap_or_default(),
        })
        .collect();
    PipelineStatus {
        name: e.name.clone(),
        file: e.file.clone(),
        source: e.source.clone(),
        state: e.state.clone(),
        records: stats.records,
        batches: stats.batches,
        decode_errors: stats.decode_errors,
        dead_letters: stats.dead_letters,
        dead_letters_by_reason: stats.dead_letters_by_reason.clone(),
        batch_seconds: stats.batch_seconds.clone(),
        rebalance_seconds: stats.rebalance_seconds.clone(),
        recent_dead_letters: stats.recent_dead_letters.clone(),
        watermark: stats.watermark.map(iso8601),
        checkpoints: stats.checkpoints,
        checkpoint_failures: stats.checkpoint_failures,
        last_checkpoint: stats.last_checkpoint_ms.map(iso8601),
        checkpoint_age_s: stats
            .last_checkpoint_ms
            .map(|t| (system_ms(SystemTime::now()) - t).max(0) as f64 / 1e3),
        source_stalled: stats.source_stalled.clone(),
        source_lag: stats.source_lag.clone(),
        partitions: stats.partitions.clone(),
        partition_watermarks: (stats.partition_watermarks.iter())
            .map(|(&p, &w)| (p, iso8601(w)))
            .collect(),
        rebalances: stats.rebalances,
        merging: (stats.merging).map(|w| match w {
            i64::MIN => "waiting".into(),
            w => iso8601(w),
        }),
        stages,
        sinks: e.sinks.read(),
    }
}
