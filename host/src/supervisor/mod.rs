//! The supervisor runs pipelines and changes them while they run: a rebuilt plugin is
//! swapped into the stages that use it (`plugins.rs`), an edited pipeline file is diffed
//! and applied (`edit.rs`). Everything slow — reading, compiling and configuring a new
//! version — happens here, off the processor threads; a processor only does the state
//! hand-over, between two batches.
//!
//! It is an actor: one task owns the pipelines and handles [`Event`]s in order, so two
//! changes never race. The [`Board`] it keeps is what status and metrics report.

mod auth;
mod canary;
mod edit;
mod http;
mod metrics;
mod plugins;
mod status;
mod watch;

pub use auth::{AccessError, TOKEN_ENV, Token, check_bind};
pub use http::serve;

/// `board`'s numbers in Prometheus' text format, as `/metrics` serves them.
pub fn metrics_text(board: &Board) -> String {
    metrics::prometheus(board.status(), board.totals())
}
pub use status::{Board, Change, PipelineStatus, Status};
use watch::{FileWatcher, normalize};

use crate::config::{self, Diagnostic, PipelineConfig};
use crate::pipeline::{
    self, Pipeline, RunError, RunSummary, RunningPipeline, StageView, SwapOutcome,
};
use crate::plugin::PluginEngine;
use status::{BoardEntry, PluginStatus};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

/// What the supervisor acts on.
pub enum Event {
    /// Files changed (settled, normalized paths).
    Files(Vec<PathBuf>),
    /// Stop every pipeline (flushing open windows) and end.
    Stop,
}

/// A swap's result, back from the processor.
pub struct SwapDone {
    pipeline: String,
    stage: String,
    hash: String,
    /// The new version's name and version, as its log line names it.
    who: String,
    kind: &'static str,
    outcome: SwapOutcome,
}

struct Managed {
    /// Normalized path of the pipeline file.
    file: PathBuf,
    config: PipelineConfig,
    running: RunningPipeline,
    /// Canaries whose end was recorded, by stage.
    canaries: canary::Seen,
}

/// How a pipeline run ended.
pub type Outcome = (String, Result<RunSummary, RunError>);

pub struct Supervisor {
    engine: Arc<PluginEngine>,
    pipelines: Vec<Managed>,
    board: Arc<Board>,
    events: mpsc::UnboundedSender<Event>,
    rx: mpsc::UnboundedReceiver<Event>,
    watcher: Option<FileWatcher>,
    /// Folders where a new pipeline file starts a new pipeline.
    pipeline_dirs: Vec<PathBuf>,
    finished: Vec<Outcome>,
    /// Swaps handed to pipelines, each ending when its new version ran a batch or was
    /// refused; awaited at the stop too, since a stop's flush can be a new version's first
    /// batch.
    swaps: JoinSet<SwapDone>,
}

/// The running supervisor task.
pub struct Handle {
    pub events: mpsc::UnboundedSender<Event>,
    pub board: Arc<Board>,
    task: JoinHandle<Vec<Outcome>>,
}

impl Handle {
    /// Tells the supervisor that files changed, as the watcher would.
    pub fn files_changed(&self, paths: Vec<PathBuf>) {
        let _ = self
            .events
            .send(Event::Files(paths.iter().map(|p| normalize(p)).collect()));
    }

    /// Stops every pipeline and returns how each ended.
    pub async fn stop(self) -> Vec<Outcome> {
        let _ = self.events.send(Event::Stop);
        self.wait().await
    }

    /// Waits until every pipeline has ended by itself (its source ended).
    pub async fn wait(self) -> Vec<Outcome> {
        self.task.await.unwrap_or_default()
    }
}

impl Supervisor {
    pub fn new(engine: PluginEngine) -> Supervisor {
        let (events, rx) = mpsc::unbounded_channel();
        Supervisor {
            engine: Arc::new(engine),
            pipelines: Vec::new(),
            board: Arc::default(),
            events,
            rx,
            watcher: None,
            pipeline_dirs: Vec::new(),
            finished: Vec::new(),
            swaps: JoinSet::new(),
        }
    }

    pub fn board(&self) -> Arc<Board> {
        self.board.clone()
    }

    /// Watches plugin and pipeline files from now on, so that changes apply by themselves.
    pub fn watch(&mut self) -> notify::Result<()> {
        let mut watcher = FileWatcher::new(self.events.clone())?;
        for m in &self.pipelines {
            watch_pipeline(&mut watcher, m);
        }
        for dir in &self.pipeline_dirs {
            watcher.watch_dir(dir);
        }
        self.watcher = Some(watcher);
        Ok(())
    }

    /// New pipeline files appearing in `dir` start pipelines.
    pub fn adopt_dir(&mut self, dir: &Path) {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        if let Some(w) = &mut self.watcher {
            w.watch_dir(&dir);
        }
        self.pipeline_dirs.push(dir);
    }

    /// Loads, builds and starts the pipeline in `file`.
    pub async fn start_file(&mut self, file: &Path) -> Result<(), Vec<Diagnostic>> {
        let (cfg, pipeline) = self.build(file).await?;
        self.start(cfg, pipeline)
            .await
            .map_err(|e| vec![run_error(file, e)])
    }

    /// Parses and builds a pipeline file off the async threads (compiling is slow).
    async fn build(&self, file: &Path) -> Result<(PipelineConfig, Pipeline), Vec<Diagnostic>> {
        let (engine, file) = (self.engine.clone(), file.to_path_buf());
        tokio::task::spawn_blocking(move || {
            let cfg = config::load(&file)?;
            let pipeline = pipeline::build(&cfg, &engine)?;
            Ok((cfg, pipeline))
        })
        .await
        .unwrap_or_else(|e| Err(vec![run_error(Path::new(""), e)]))
    }

    /// Starts a built pipeline.
    pub async fn start(
        &mut self,
        config: PipelineConfig,
        pipeline: Pipeline,
    ) -> Result<(), RunError> {
        let running = pipeline::start(pipeline, Arc::default()).await?;
        let managed = Managed {
            file: normalize(&config.file),
            config,
            running,
            canaries: Default::default(),
        };
        self.publish(&managed, "running");
        if let Some(w) = &mut self.watcher {
            watch_pipeline(w, &managed);
        }
        tracing::info!(pipeline = %managed.running.name(), "running");
        self.pipelines.push(managed);
        Ok(())
    }

    fn publish(&self, m: &Managed, state: &str) {
        self.board.set(BoardEntry {
            name: m.running.name().to_string(),
            file: m.config.file.display().to_string(),
            source: m.running.source_name().to_string(),
            state: state.to_string(),
            plugins: m
                .running
                .stages()
                .iter()
                .map(|v| (v.spec.name.to_string(), plugin_status(v)))
                .collect(),
            stats: m.running.stats(),
            sinks: m.running.sink_gauges(),
        });
    }

    /// Runs the supervisor as its own task.
    pub fn spawn(self) -> Handle {
        let (events, board) = (self.events.clone(), self.board.clone());
        Handle {
            events,
            board,
            task: tokio::spawn(self.run()),
        }
    }

    async fn run(mut self) -> Vec<Outcome> {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                event = self.rx.recv() => match event {
                    Some(Event::Files(paths)) => self.files_changed(paths).await,
                    Some(Event::Stop) | None => break,
                },
                Some(Ok(done)) = self.swaps.join_next() => self.swap_done(done),
                _ = tick.tick() => {
                    self.reap().await;
                    if self.pipelines.is_empty() && self.pipeline_dirs.is_empty() {
                        break;
                    }
                }
            }
        }
        self.canaries();
        for m in std::mem::take(&mut self.pipelines) {
            let outcome = self.stop_one(m).await;
            self.finished.push(outcome);
        }
        // Every pipeline has ended, so every swap has its outcome.
        while let Some(done) = self.swaps.join_next().await {
            if let Ok(done) = done {
                self.swap_done(done);
            }
        }
        self.finished
    }

    /// Collects pipelines whose source ended.
    async fn reap(&mut self) {
        self.canaries();
        let mut i = 0;
        while i < self.pipelines.len() {
            if self.pipelines[i].running.is_finished() {
                let m = self.pipelines.remove(i);
                let outcome = self.stop_one(m).await;
                self.finished.push(outcome);
            } else {
                i += 1;
            }
        }
    }

    /// Stops a pipeline gracefully (open windows flushed) and waits for it.
    async fn stop_one(&self, mut m: Managed) -> Outcome {
        m.running.stop();
        let name = m.running.name().to_string();
        let result = m.running.finished().await;
        let state = match &result {
            Ok(_) => "finished".to_string(),
            Err(e) => format!("failed: {e}"),
        };
        self.board.update(&name, |e| e.state = state);
        (name, result)
    }

    async fn files_changed(&mut self, paths: Vec<PathBuf>) {
        for path in paths {
            match path.extension().and_then(|e| e.to_str()) {
                Some("wasm") => self.plugin_changed(&path).await,
                Some("toml") => self.pipeline_changed(&path).await,
                _ => {}
            }
        }
    }
}

fn plugin_status(v: &StageView) -> PluginStatus {
    PluginStatus {
        path: v.spec.plugin.path().display().to_string(),
        role: v.spec.plugin.role().name(),
        name: v.info.name.clone(),
        version: v.info.version.clone(),
        hash: v.spec.plugin.hash().to_string(),
        loaded_at: adstream_sdk::time::iso8601(status::system_ms(v.loaded_at)),
    }
}

fn watch_pipeline(w: &mut FileWatcher, m: &Managed) {
    w.watch_parent_of(&m.file);
    for v in m.running.stages() {
        w.watch_parent_of(v.spec.plugin.path());
        if let Some(c) = &v.spec.canary {
            w.watch_parent_of(c.plugin.path());
        }
    }
}

/// A run error placed at the top of its pipeline file.
fn run_error(file: &Path, e: impl std::fmt::Display) -> Diagnostic {
    Diagnostic::at_start(file, e.to_string())
}
