//! Running a pipeline: sink tasks, the processor thread, and the source loop that feeds it
//! and commits source positions once every sink has made the rows before them durable.

use super::Pipeline;
use super::checkpoint;
use super::processor::{CheckpointPolicy, PipelineStats, Processor};
use super::stage::{Stage, StageFatal};
use super::watermark::Watermark;
use crate::sinks::runner::{self, SinkMsg};
use crate::sinks::{DeadLetterTx, SinkConfig, SinkContext, SinkError};
use crate::sources::{Position, RawBatch, Source, SourceError};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

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

/// Commits the positions of every batch all sinks have acknowledged and whose effect on
/// plugin state is checkpointed.
async fn commit_ready(
    source: &mut dyn Source,
    acks: &[watch::Receiver<u64>],
    checkpointed: &watch::Receiver<u64>,
    pending: &mut VecDeque<(u64, Vec<Position>)>,
) -> Result<(), SourceError> {
    let acked = acks
        .iter()
        .map(|a| *a.borrow())
        .min()
        .unwrap_or(u64::MAX)
        .min(*checkpointed.borrow());
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

/// Opens every sink, the dead-letter sink first so that the others can send it the rows
/// they fail to deliver.
async fn open_sinks(
    sinks: &[(String, SinkConfig)],
    fields: &[Option<Vec<adstream_sdk::Field>>],
    dl: usize,
    source: &str,
) -> Result<Vec<runner::SinkHandle>, RunError> {
    let (dl_name, dl_cfg) = &sinks[dl];
    let dl_handle = runner::spawn(dl_name, dl_cfg.open(dl_name, SinkContext::default()).await?);
    let dead_letters = DeadLetterTx {
        tx: dl_handle.tx.clone(),
        source: source.to_string(),
    };
    let mut handles = Vec::new();
    let mut dl_handle = Some(dl_handle);
    for (i, (name, cfg)) in sinks.iter().enumerate() {
        if i == dl {
            handles.push(dl_handle.take().expect("opened once"));
            continue;
        }
        let ctx = SinkContext {
            fields: fields[i].clone(),
            dead_letters: Some(dead_letters.clone()),
        };
        handles.push(runner::spawn(name, cfg.open(name, ctx).await?));
    }
    Ok(handles)
}

/// Runs `pipeline` until its source ends or `stop` turns true; then flushes open windows
/// and every sink. `stats` is updated as batches go by.
pub async fn run(
    pipeline: Pipeline,
    mut stop: watch::Receiver<bool>,
    stats: Option<Arc<Mutex<PipelineStats>>>,
) -> Result<RunSummary, RunError> {
    let began = Instant::now();
    let mut source = pipeline.source.open().await?;
    let handles = open_sinks(
        &pipeline.sinks,
        &pipeline.sink_fields,
        pipeline.dead_letter,
        source.name(),
    )
    .await?;
    let senders: Vec<(String, mpsc::Sender<SinkMsg>)> = handles
        .iter()
        .map(|h| (h.name.clone(), h.tx.clone()))
        .collect();
    let acks: Vec<watch::Receiver<u64>> = handles.iter().map(|h| h.acked.clone()).collect();
    let tasks: Vec<_> = handles.into_iter().map(|h| (h.name, h.task)).collect();
    let mut stages = pipeline.stages;
    if let Some(policy) = &pipeline.checkpoint {
        restore(&mut stages, policy)?;
    }
    let mut processor = Processor::new(
        pipeline.decoder,
        {
            let mut w = Watermark::new(pipeline.delay_ms, pipeline.idle);
            w.expect(&source.partitions(), std::time::Instant::now());
            w
        },
        stages,
        senders,
        pipeline.dead_letter,
        source.name().to_string(),
    );
    processor.checkpoint = pipeline.checkpoint.clone();
    let checkpointed = processor.checkpointed.subscribe();
    if let Some(shared) = stats {
        processor.stats = shared;
    }
    let (feed, rx) = mpsc::channel::<(u64, RawBatch)>(FEED_QUEUE);
    let (done_tx, done_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(format!("pipeline-{}", pipeline.name))
        .spawn(move || {
            let _ = done_tx.send(processor.run(rx));
        })
        .expect("spawning the processor thread");

    let mut pending = VecDeque::new();
    let mut seq = 0;
    let source_result = async {
        loop {
            let stopped = async {
                if stop.wait_for(|s| *s).await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            let next = tokio::select! {
                r = source.next_batch() => r?,
                _ = stopped => break,
            };
            let Some(raw) = next else { break };
            seq += 1;
            let marks = newest(&raw);
            if feed.send((seq, raw)).await.is_err() {
                break; // the processor stopped; its result says why
            }
            pending.push_back((seq, marks));
            commit_ready(source.as_mut(), &acks, &checkpointed, &mut pending).await?;
        }
        Ok::<(), RunError>(())
    }
    .await;
    drop(feed);
    let processed = done_rx.await.unwrap_or(Err(RunError::Panicked));
    let mut sink_error = None;
    for (_, task) in tasks {
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
    commit_ready(source.as_mut(), &acks, &checkpointed, &mut pending).await?;
    Ok(RunSummary {
        pipeline: pipeline.name,
        elapsed: began.elapsed(),
        stats,
    })
}
