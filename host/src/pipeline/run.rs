//! Running a pipeline: sink tasks, the processor thread, and the source loop that feeds it
//! and commits source positions once every sink has made the rows before them durable.

use super::Pipeline;
use super::processor::{PipelineStats, Processor};
use super::stage::StageFatal;
use crate::sinks::SinkError;
use crate::sinks::runner::{self, SinkMsg};
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

/// Commits the positions of every batch all sinks have acknowledged.
async fn commit_ready(
    source: &mut dyn Source,
    acks: &[watch::Receiver<u64>],
    pending: &mut VecDeque<(u64, Vec<Position>)>,
) -> Result<(), SourceError> {
    let acked = acks.iter().map(|a| *a.borrow()).min().unwrap_or(u64::MAX);
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

/// Runs `pipeline` until its source ends or `stop` turns true; then flushes open windows
/// and every sink. `stats` is updated as batches go by.
pub async fn run(
    pipeline: Pipeline,
    mut stop: watch::Receiver<bool>,
    stats: Option<Arc<Mutex<PipelineStats>>>,
) -> Result<RunSummary, RunError> {
    let began = Instant::now();
    let mut handles = Vec::new();
    for (name, cfg) in &pipeline.sinks {
        handles.push(runner::spawn(name, cfg.open(name).await?));
    }
    let mut source = pipeline.source.open()?;
    let senders: Vec<(String, mpsc::Sender<SinkMsg>)> = handles
        .iter()
        .map(|h| (h.name.clone(), h.tx.clone()))
        .collect();
    let acks: Vec<watch::Receiver<u64>> = handles.iter().map(|h| h.acked.clone()).collect();
    let tasks: Vec<_> = handles.into_iter().map(|h| (h.name, h.task)).collect();
    let mut processor = Processor::new(
        pipeline.decoder,
        pipeline.delay_ms,
        pipeline.stages,
        senders,
        pipeline.dead_letter,
        source.name().to_string(),
    );
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
            commit_ready(source.as_mut(), &acks, &mut pending).await?;
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
    commit_ready(source.as_mut(), &acks, &mut pending).await?;
    Ok(RunSummary {
        pipeline: pipeline.name,
        elapsed: began.elapsed(),
        stats,
    })
}
