//! Running a pipeline: sink tasks, the processor thread, and the source loop that feeds it
//! and commits source positions once every sink has made the rows before them durable.
//!
//! [`start`] returns a [`RunningPipeline`] whose `feed` also carries control messages
//! (plugin swaps, sink changes) to the processor, which applies them between batches.

use super::Pipeline;
use super::checkpoint;
use super::processor::{CheckpointPolicy, PipelineStats, Processor};
use super::stage::{Replacement, Stage, StageFatal};
use super::watermark::Watermark;
use crate::sinks::runner::{self, SinkMsg};
use crate::sinks::{DeadLetterTx, SinkConfig, SinkContext, SinkError};
use crate::sources::{Position, RawBatch, Source, SourceError};
use adstream_sdk::Field;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Why a pipeline stopped before its input ended.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("source: {0}")]
    Source(#[from] SourceError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Stage(#[from] StageFatal),
    #[error("sink `{0}` stopped")]
    SinkClosed(String),
    #[error("the pipeline's processor thread panicked")]
    Panicked,
    #[error("checkpoint: {0}")]
    Checkpoint(String),
}

/// What a finished run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    pub pipeline: String,
    pub elapsed: Duration,
    pub stats: PipelineStats,
}

/// What the processor receives: source batches, and changes to apply between them.
pub enum Feed {
    Batch(u64, RawBatch),
    Swap(Box<Replacement>),
    Rewire(Rewire),
    /// The source ended or was stopped: flush and finish. (Not the channel closing, since
    /// the supervisor keeps a sender for swaps as long as the pipeline is managed.)
    End,
}

/// A new set of sinks and routes (after a pipeline file edit). Sinks that did not change
/// keep their sender, and so their task; `done` is told once the processor uses the new set.
pub struct Rewire {
    pub sinks: Vec<(String, mpsc::Sender<SinkMsg>)>,
    pub dead_letter: usize,
    /// For each stage (by name), the indexes of the sinks it sends to.
    pub routes: Vec<(String, Vec<usize>)>,
    pub done: oneshot::Sender<()>,
}

/// A running sink task.
pub struct SinkEntry {
    /// Tells apart two entries of the same name while one replaces the other.
    pub id: u64,
    pub name: String,
    pub config: SinkConfig,
    /// Dropped at the end, so that the task sees its channel close.
    pub tx: Option<mpsc::Sender<SinkMsg>>,
    pub acked: watch::Receiver<u64>,
    pub task: Option<JoinHandle<Result<(), SinkError>>>,
}

/// The pipeline's sinks, shared between the run and whoever rewires it.
pub type SinkSet = Arc<Mutex<Vec<SinkEntry>>>;

/// A pipeline that is running.
pub struct RunningPipeline {
    pub name: String,
    pub feed: mpsc::Sender<Feed>,
    pub stats: Arc<Mutex<PipelineStats>>,
    pub sinks: SinkSet,
    /// Where sinks opened later send the rows they cannot deliver. Weak, so that holding
    /// the pipeline does not keep its dead-letter sink open after the run ends.
    dead_letters: mpsc::WeakSender<SinkMsg>,
    pub source_name: String,
    pub stop: watch::Sender<bool>,
    pub task: JoinHandle<Result<RunSummary, RunError>>,
}

impl RunningPipeline {
    /// The dead-letter sink, for sinks opened while the pipeline runs; `None` once it ended.
    pub fn dead_letters(&self) -> Option<DeadLetterTx> {
        let tx = self.dead_letters.upgrade()?;
        Some(DeadLetterTx {
            tx,
            source: self.source_name.clone(),
        })
    }
}

/// Batches waiting between the source and the processor.
const FEED_QUEUE: usize = 4;

/// The newest position per partition in `raw`.
fn newest(raw: &RawBatch) -> Vec<Position> {
    let mut out: Vec<Position> = Vec::new();
    for p in raw.positions() {
        match out.iter_mut().find(|q| q.partition == p.partition) {
            Some(q) => q.offset = q.offset.max(p.offset),
            None => out.push(*p),
        }
    }
    out
}

/// Commits the positions of every batch all sinks have acknowledged and whose effect on
/// plugin state is checkpointed.
async fn commit_ready(
    source: &mut dyn Source,
    sinks: &SinkSet,
    checkpointed: &watch::Receiver<u64>,
    pending: &mut VecDeque<(u64, Vec<Position>)>,
) -> Result<(), SourceError> {
    let acked = {
        let set = sinks.lock().expect("sink set");
        set.iter()
            .map(|s| *s.acked.borrow())
            .min()
            .unwrap_or(u64::MAX)
    };
    let acked = acked.min(*checkpointed.borrow());
    let mut upto: Vec<Position> = Vec::new();
    while pending.front().is_some_and(|(seq, _)| *seq <= acked) {
        let (_, positions) = pending.pop_front().expect("checked front");
        for p in positions {
            match upto.iter_mut().find(|q| q.partition == p.partition) {
                Some(q) => q.offset = q.offset.max(p.offset),
                None => upto.push(p),
            }
        }
    }
    if upto.is_empty() {
        Ok(())
    } else {
        source.commit(upto).await
    }
}

/// Restores stateful stages from the pipeline's last checkpoint, if there is one.
fn restore(stages: &mut [Stage], policy: &CheckpointPolicy) -> Result<(), RunError> {
    let file = policy.file.display();
    let Some(cp) =
        checkpoint::load(&policy.file).map_err(|e| RunError::Checkpoint(e.to_string()))?
    else {
        return Ok(());
    };
    for (name, state) in &cp.stages {
        let Some(stage) = stages.iter_mut().find(|s| &*s.spec.name == name) else {
            tracing::warn!(
                "checkpoint {file} has state for stage `{name}`, which the pipeline no longer has"
            );
            continue;
        };
        stage.restore(state).map_err(|e| {
            RunError::Checkpoint(format!(
                "stage `{name}` refused its state from {file}: {} (delete the file to start afresh)",
                e.describe()
            ))
        })?;
    }
    tracing::info!("restored {} stage state(s) from {file}", cp.stages.len());
    Ok(())
}

/// Opens one sink and starts its task.
pub async fn open_sink(
    name: &str,
    config: &SinkConfig,
    ctx: SinkContext,
) -> Result<SinkEntry, SinkError> {
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let handle = runner::spawn(name, config.open(name, ctx).await?);
    Ok(SinkEntry {
        id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        name: name.to_string(),
        config: config.clone(),
        tx: Some(handle.tx),
        acked: handle.acked,
        task: Some(handle.task),
    })
}

/// Opens every sink, the dead-letter sink first so that the others can send it the rows
/// they fail to deliver. Returns the set and the way to the dead letters.
async fn open_sinks(
    sinks: &[(String, SinkConfig)],
    fields: &[Option<Vec<Field>>],
    dl: usize,
    source: &str,
) -> Result<(Vec<SinkEntry>, DeadLetterTx), RunError> {
    let (dl_name, dl_cfg) = &sinks[dl];
    let dl_entry = open_sink(dl_name, dl_cfg, SinkContext::default()).await?;
    let dead_letters = DeadLetterTx {
        tx: dl_entry.tx.clone().expect("just opened"),
        source: source.to_string(),
    };
    let mut entries = Vec::new();
    let mut dl_entry = Some(dl_entry);
    for (i, (name, cfg)) in sinks.iter().enumerate() {
        if i == dl {
            entries.push(dl_entry.take().expect("opened once"));
            continue;
        }
        let ctx = SinkContext {
            fields: fields[i].clone(),
            dead_letters: Some(dead_letters.clone()),
        };
        entries.push(open_sink(name, cfg, ctx).await?);
    }
    Ok((entries, dead_letters))
}

/// Opens the source and sinks and starts the pipeline; `stats` is updated as batches go by.
pub async fn start(
    pipeline: Pipeline,
    stats: Arc<Mutex<PipelineStats>>,
) -> Result<RunningPipeline, RunError> {
    let began = Instant::now();
    let mut source = pipeline.source.open().await?;
    let source_name = source.name().to_string();
    let (entries, dead_letters) = open_sinks(
        &pipeline.sinks,
        &pipeline.sink_fields,
        pipeline.dead_letter,
        &source_name,
    )
    .await?;
    let senders = entries
        .iter()
        .map(|e| (e.name.clone(), e.tx.clone().expect("just opened")))
        .collect();
    let sinks: SinkSet = Arc::new(Mutex::new(entries));
    let mut stages = pipeline.stages;
    if let Some(policy) = &pipeline.checkpoint {
        restore(&mut stages, policy)?;
    }
    let mut watermark = Watermark::new(pipeline.delay_ms, pipeline.idle);
    watermark.expect(&source.partitions(), Instant::now());
    let mut processor = Processor::new(
        pipeline.decoder,
        watermark,
        stages,
        senders,
        pipeline.dead_letter,
        source_name.clone(),
    );
    processor.stats = stats.clone();
    processor.checkpoint = pipeline.checkpoint.clone();
    let checkpointed = processor.checkpointed.subscribe();
    let (feed, rx) = mpsc::channel::<Feed>(FEED_QUEUE);
    let (done_tx, done_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(format!("pipeline-{}", pipeline.name))
        .spawn(move || {
            let _ = done_tx.send(processor.run(rx));
        })
        .expect("spawning the processor thread");
    let (stop, mut stopped) = watch::channel(false);
    let (feed_tx, sink_set, name) = (feed.clone(), sinks.clone(), pipeline.name.clone());
    let task = tokio::spawn(async move {
        let mut pending = VecDeque::new();
        let mut seq = 0;
        let source_result = async {
            loop {
                let stop_requested = async {
                    if stopped.wait_for(|s| *s).await.is_err() {
                        std::future::pending::<()>().await;
                    }
                };
                let next = tokio::select! {
                    r = source.next_batch() => r?,
                    _ = stop_requested => break,
                };
                let Some(raw) = next else { break };
                seq += 1;
                let marks = newest(&raw);
                if feed_tx.send(Feed::Batch(seq, raw)).await.is_err() {
                    break; // the processor stopped; its result says why
                }
                pending.push_back((seq, marks));
                commit_ready(source.as_mut(), &sink_set, &checkpointed, &mut pending).await?;
            }
            Ok::<(), RunError>(())
        }
        .await;
        let _ = feed_tx.send(Feed::End).await;
        drop(feed_tx);
        finish(
            source,
            sink_set,
            checkpointed,
            pending,
            source_result,
            done_rx,
            name,
            began,
        )
        .await
    });
    let dead_letters = dead_letters.tx.downgrade();
    Ok(RunningPipeline {
        name: pipeline.name,
        feed,
        stats,
        sinks,
        dead_letters,
        source_name,
        stop,
        task,
    })
}

/// Waits for the processor and every sink, then makes the last commit.
#[allow(clippy::too_many_arguments)]
async fn finish(
    mut source: Box<dyn Source>,
    sinks: SinkSet,
    checkpointed: watch::Receiver<u64>,
    mut pending: VecDeque<(u64, Vec<Position>)>,
    source_result: Result<(), RunError>,
    done: oneshot::Receiver<Result<PipelineStats, RunError>>,
    name: String,
    began: Instant,
) -> Result<RunSummary, RunError> {
    let processed = done.await.unwrap_or(Err(RunError::Panicked));
    let tasks: Vec<_> = sinks
        .lock()
        .expect("sink set")
        .iter_mut()
        .filter_map(|s| {
            s.tx = None;
            s.task.take()
        })
        .collect();
    let mut sink_error = None;
    for task in tasks {
        if let Ok(Err(e)) = task.await {
            sink_error.get_or_insert(e);
        }
    }
    // A processor that stopped because a sink died reports the sink's own error.
    let stats = match (processed, sink_error) {
        (Err(RunError::SinkClosed(_)), Some(e)) | (Ok(_), Some(e)) => return Err(e.into()),
        (Err(e), _) => return Err(e),
        (Ok(stats), None) => stats,
    };
    source_result?;
    commit_ready(source.as_mut(), &sinks, &checkpointed, &mut pending).await?;
    Ok(RunSummary {
        pipeline: name,
        elapsed: began.elapsed(),
        stats,
    })
}

/// Runs `pipeline` until its source ends or `stop` turns true; then flushes open windows
/// and every sink.
pub async fn run(
    pipeline: Pipeline,
    mut stop: watch::Receiver<bool>,
    stats: Option<Arc<Mutex<PipelineStats>>>,
) -> Result<RunSummary, RunError> {
    let running = start(pipeline, stats.unwrap_or_default()).await?;
    let RunningPipeline {
        stop: stopper,
        mut task,
        ..
    } = running;
    let stop_requested = async {
        if stop.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        r = &mut task => return r.unwrap_or(Err(RunError::Panicked)),
        _ = stop_requested => {}
    }
    let _ = stopper.send(true);
    task.await.unwrap_or(Err(RunError::Panicked))
}
