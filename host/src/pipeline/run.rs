//! Running a pipeline: sink tasks, the processor thread, and the source loop that feeds it
//! and commits source positions once every sink has made the rows before them durable.

use super::build::Pipeline;
use super::checkpoint;
use super::commit::Commits;
use super::error::RunError;
use super::feed::Feed;
use super::processor::Processor;
use super::running::RunningPipeline;
use super::sinkset::{self, SinkSet};
use super::stage::{Stage, StageView};
use super::stats::{PipelineStats, RunSummary};
use super::watermark::Watermark;
use crate::sources::Source;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, watch};

/// Batches waiting between the source and the processor.
const FEED_QUEUE: usize = 4;

/// Restores stateful stages from the pipeline's last checkpoint, if there is one.
fn restore(stages: &mut [Stage], file: &Path) -> Result<(), RunError> {
    let Some(cp) = checkpoint::load(file)? else {
        return Ok(());
    };
    for (name, state) in &cp.stages {
        let Some(stage) = stages.iter_mut().find(|s| &*s.spec.name == name) else {
            tracing::warn!(
                "checkpoint {} has state for stage `{name}`, which the pipeline no longer has",
                file.display()
            );
            continue;
        };
        stage
            .restore(state)
            .map_err(|e| checkpoint::CheckpointError::Restore {
                stage: name.clone(),
                path: file.into(),
                reason: e.describe(),
            })?;
    }
    tracing::info!(
        "restored {} stage state(s) from {}",
        cp.stages.len(),
        file.display()
    );
    Ok(())
}

/// Commits what every sink has acknowledged and the state has saved.
async fn commit_ready(
    source: &mut dyn Source,
    sinks: &SinkSet,
    checkpointed: &watch::Receiver<u64>,
    commits: &mut Commits,
) -> Result<(), RunError> {
    let upto = commits.ready(sinks.acked().min(*checkpointed.borrow()));
    if !upto.is_empty() {
        source.commit(upto).await?;
    }
    Ok(())
}

/// Opens the source and sinks and starts the pipeline; `stats` is updated as batches go by.
pub async fn start(
    pipeline: Pipeline,
    stats: Arc<Mutex<PipelineStats>>,
) -> Result<RunningPipeline, RunError> {
    let began = Instant::now();
    let source = crate::sources::open(&pipeline.source).await?;
    let source_name = source.name().to_string();
    let (sinks, dead_letters) = sinkset::open_all(
        &pipeline.sinks,
        &pipeline.sink_fields,
        pipeline.dead_letter,
        &source_name,
    )
    .await?;
    let mut stages = pipeline.stages;
    if let Some(policy) = &pipeline.checkpoint {
        restore(&mut stages, &policy.file)?;
    }
    let views = stages.iter().map(StageView::of).collect();
    let mut watermark = Watermark::new(pipeline.delay_ms, pipeline.idle);
    watermark.expect(&source.partitions(), Instant::now());
    let mut processor = Processor::new(
        pipeline.decoder,
        watermark,
        stages,
        sinks.senders(),
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
    let (stop, stopped) = watch::channel(false);
    let ended = Ended {
        sinks: sinks.clone(),
        checkpointed,
        done: done_rx,
        name: pipeline.name.clone(),
        began,
    };
    let task = tokio::spawn(feed_loop(source, feed.clone(), stopped, ended));
    Ok(RunningPipeline {
        name: pipeline.name,
        source_name,
        feed,
        stats,
        sinks,
        dead_letters: dead_letters.tx.downgrade(),
        views: Arc::new(Mutex::new(views)),
        stop,
        task,
    })
}

/// What the source loop needs to finish the run.
struct Ended {
    sinks: SinkSet,
    checkpointed: watch::Receiver<u64>,
    done: oneshot::Receiver<Result<PipelineStats, RunError>>,
    name: String,
    began: Instant,
}

/// Reads the source until it ends or `stop` turns true, feeding the processor and
/// committing what is ready; then finishes the run.
async fn feed_loop(
    mut source: Box<dyn Source>,
    feed: mpsc::Sender<Feed>,
    mut stopped: watch::Receiver<bool>,
    ended: Ended,
) -> Result<RunSummary, RunError> {
    let mut commits = Commits::default();
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
            commits.delivered(seq, &raw);
            if feed.send(Feed::Batch(seq, raw)).await.is_err() {
                break; // the processor stopped; its result says why
            }
            commit_ready(
                source.as_mut(),
                &ended.sinks,
                &ended.checkpointed,
                &mut commits,
            )
            .await?;
        }
        Ok::<(), RunError>(())
    }
    .await;
    let _ = feed.send(Feed::End).await;
    drop(feed);
    finish(source, commits, source_result, ended).await
}

/// Waits for the processor and every sink, then makes the last commit.
async fn finish(
    mut source: Box<dyn Source>,
    mut commits: Commits,
    source_result: Result<(), RunError>,
    ended: Ended,
) -> Result<RunSummary, RunError> {
    let processed = ended.done.await.unwrap_or(Err(RunError::Panicked));
    let mut sink_error = None;
    for task in ended.sinks.close_all() {
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
    commit_ready(
        source.as_mut(),
        &ended.sinks,
        &ended.checkpointed,
        &mut commits,
    )
    .await?;
    Ok(RunSummary {
        pipeline: ended.name,
        elapsed: ended.began.elapsed(),
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
    let stop_requested = async {
        if stop.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let mut running = running;
    tokio::select! {
        r = running.finished() => return r,
        _ = stop_requested => {}
    }
    running.stop();
    running.finished().await
}
