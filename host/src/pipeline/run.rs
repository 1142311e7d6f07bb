//! Running a pipeline: restoring its checkpoint, opening the source where the checkpoint
//! says and the sinks, starting the processor thread and the checkpointer, and the source
//! loop that feeds the processor and mirrors checkpointed positions back to the source.

use super::build::{CheckpointPolicy, Pipeline};
use super::checkpoint::{self, Checkpoint, CheckpointError, Writer};
use super::decoding;
use super::error::{RunError, StageFatal};
use super::feed::Feed;
use super::group::{self, Shared, StoreClaims};
use super::processor::Processor;
use super::running::RunningPipeline;
use super::sinkset::{self, SinkSet};
use super::stage::{Stage, StageView};
use super::stats::{Latency, PipelineStats, RunSummary};
use super::watermark::Watermark;
use crate::batch::Position;
use crate::batch::decode::Decoder;
use crate::config::OnMissing;
use crate::sources::{Claimer, Resume, Source};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Batches waiting between the source and the processor.
const FEED_QUEUE: usize = 4;

/// Loads each stage's state from the checkpoint.
fn restore(stages: &mut [Stage], cp: &Checkpoint, file: &Path) -> Result<(), RunError> {
    for (name, state) in &cp.stages {
        let Some(stage) = stages.iter_mut().find(|s| &*s.spec.name == name) else {
            tracing::warn!(
                "checkpoint {} has state for stage `{name}`, which the pipeline no longer has",
                file.display()
            );
            continue;
        };
        stage.restore(state).map_err(|e| CheckpointError::Restore {
            stage: name.clone(),
            path: file.into(),
            reason: e,
        })?;
    }
    tracing::info!(
        "restored {} stage state(s) and the source positions from {} (batch {})",
        cp.stages.len(),
        file.display(),
        cp.seq
    );
    Ok(())
}

/// The checkpoint to restore (if the pipeline keeps them and has one), and so where the
/// source starts.
fn resume(policy: Option<&CheckpointPolicy>) -> Result<(Option<Checkpoint>, Resume), RunError> {
    let cp = match policy {
        Some(p) => checkpoint::load(&p.file)?,
        None => None,
    };
    let resume = match &cp {
        Some(cp) => Resume::At(
            cp.positions
                .iter()
                .map(|&(partition, offset)| Position { partition, offset })
                .collect(),
        ),
        None => Resume::Fresh(policy.map_or(OnMissing::Fail, |p| p.on_missing)),
    };
    Ok((cp, resume))
}

/// Spreads every stage that can be over a source of several partitions: an instance per
/// partition (`stage/partitions.rs`), so that each partition's state is its own.
fn spread(stages: &mut [Stage], partitions: &[i32]) -> Result<(), RunError> {
    if partitions.len() < 2 {
        return Ok(());
    }
    let mut spread = Vec::new();
    for stage in stages.iter_mut().filter(|s| s.spreadable()) {
        stage.spread(partitions).map_err(|e| StageFatal {
            stage: stage.spec.name.to_string(),
            reason: format!("starting its instance per partition: {}", e.describe()),
        })?;
        spread.push(stage.spec.name.to_string());
    }
    tracing::info!(
        "{} partitions; stages with an instance per partition: {}",
        partitions.len(),
        if spread.is_empty() {
            "none".into()
        } else {
            spread.join(", ")
        }
    );
    Ok(())
}

/// The processor for `pipeline`, its stages and watermark restored from `cp`; or, when
/// hosts share it, owning no partition until the group gives it some.
fn processor(
    pipeline: Pipeline,
    cp: Option<&Checkpoint>,
    source: &dyn Source,
    sinks: &SinkSet,
    shared: Option<Shared>,
) -> Result<Processor, RunError> {
    let mut stages = pipeline.stages;
    spread(&mut stages, &source.partitions())?;
    let mut watermark = Watermark::new(pipeline.delay_ms, pipeline.idle);
    if shared.is_none() {
        watermark.expect(&source.partitions());
    }
    if let (Some(cp), Some(p)) = (cp, &pipeline.checkpoint) {
        restore(&mut stages, cp, &p.file)?;
        watermark.restore(cp.watermark, &cp.partition_times);
    }
    let mut processor = Processor::new(
        pipeline.decoder.time_column().to_string(),
        watermark,
        stages,
        sinks.senders(),
        pipeline.dead_letter,
        source.name().to_string(),
    );
    processor.privacy = pipeline.privacy;
    let partials = super::merge::plan(&pipeline.source, &pipeline.sinks);
    processor.shared = shared.map(|s| Shared { partials, ..s });
    processor.partitions = source.partitions();
    processor.health = source.health();
    processor.lag = source.lag();
    if let Some(cp) = cp {
        processor.next = cp.positions.iter().copied().collect();
    }
    Ok(processor)
}

/// Starts the processor's thread; returns its feed and where its result comes.
fn spawn_processor(
    name: &str,
    processor: Processor,
) -> (
    mpsc::Sender<Feed>,
    oneshot::Receiver<Result<PipelineStats, RunError>>,
) {
    let (feed, rx) = mpsc::channel::<Feed>(FEED_QUEUE);
    let (done_tx, done) = oneshot::channel();
    std::thread::Builder::new()
        .name(format!("pipeline-{name}"))
        .spawn(move || {
            let _ = done_tx.send(processor.run(rx));
        })
        .expect("spawning the processor thread");
    (feed, done)
}

/// Where a run starts from.
struct Origin {
    /// This host's hold on a checkpoint that is one host's.
    lock: Option<checkpoint::Lock>,
    /// The store of a pipeline hosts share, and the partitions claimed in it.
    store: Option<(checkpoint::Store, group::Taken)>,
    cp: Option<Checkpoint>,
    resume: Resume,
}

/// The checkpoint to restore and where the source starts; for a pipeline hosts share,
/// its store, whose cuts come with the partitions the group gives this host.
fn origin(pipeline: &Pipeline, held: Latency) -> Result<Origin, RunError> {
    let policy = pipeline.checkpoint.as_ref();
    let owner = checkpoint::owner_name();
    let at = policy.map(|p| (p.file.as_path(), &p.store));
    let store = group::open(&pipeline.source, at, &owner)?;
    if let Some((store, taken)) = &store {
        let claims = StoreClaims {
            store: store.clone(),
            taken: taken.clone(),
            held,
        };
        let resume = Resume::Shared(Claimer(Arc::new(claims)));
        let (lock, cp, store) = (None, None, Some((store.clone(), taken.clone())));
        return Ok(Origin {
            lock,
            store,
            cp,
            resume,
        });
    }
    let lock = policy
        .map(|p| checkpoint::lock(&p.file, &owner))
        .transpose()?;
    let (cp, resume) = resume(policy)?;
    Ok(Origin {
        lock,
        store,
        cp,
        resume,
    })
}

/// Opens the source and sinks and starts the pipeline; `stats` is updated as batches go by.
pub async fn start(
    pipeline: Pipeline,
    stats: Arc<Mutex<PipelineStats>>,
) -> Result<RunningPipeline, RunError> {
    let began = Instant::now();
    let policy = pipeline.checkpoint.clone();
    let held = stats.lock().expect("stats").rebalance_seconds.clone();
    let origin = origin(&pipeline, held)?;
    let (lock, store, cp) = (origin.lock, origin.store, origin.cp);
    let max_record = pipeline.decoder.max_record_bytes;
    let source = crate::sources::open(&pipeline.source, &origin.resume, max_record).await?;
    let source_name = source.name().to_string();
    let marks = cp.as_ref().map_or(&[][..], |c| &c.sinks[..]);
    let (sinks, dead_letters) = sinkset::open_all(
        &pipeline.sinks,
        &pipeline.sink_fields,
        pipeline.dead_letter,
        (&source_name, pipeline.privacy.clone()),
        marks,
    )
    .await?;
    let name = pipeline.name.clone();
    let decoder = pipeline.decoder.clone();
    let shared = (store.as_ref()).map(|(store, taken)| Shared::new(store.clone(), taken.clone()));
    let mut processor = processor(pipeline, cp.as_ref(), source.as_ref(), &sinks, shared)?;
    processor.stats = stats.clone();
    let views: Vec<StageView> = processor.stages.iter().map(StageView::of).collect();
    let views = Arc::new(Mutex::new(views));
    processor.views = views.clone();
    let (commit, commits) = watch::channel(None);
    let writer = policy.map(|policy| {
        let store = store.map(|(store, _)| store);
        let w = Writer::new(policy.file.clone(), store, &sinks, &stats, commit);
        let (cut, task) = checkpoint::start(policy, w);
        processor.cut = Some(cut);
        task
    });
    let (feed, done) = spawn_processor(&name, processor);
    let (stop, stopped) = watch::channel(false);
    let ended = Ended {
        _lock: lock,
        sinks: sinks.clone(),
        commits,
        writer,
        done,
        name: name.clone(),
        began,
    };
    let task = tokio::spawn(feed_loop(source, decoder, feed.clone(), stopped, ended));
    Ok(RunningPipeline {
        name,
        source_name,
        feed,
        stats,
        sinks,
        dead_letters: dead_letters.tx.downgrade(),
        privacy: dead_letters.privacy,
        views,
        stop,
        task,
    })
}

/// What the source loop needs to finish the run.
struct Ended {
    /// This host's hold on the checkpoint, until the run has finished.
    _lock: Option<checkpoint::Lock>,
    sinks: SinkSet,
    /// Positions of the newest checkpoint written, to mirror to the source.
    commits: watch::Receiver<Option<Vec<Position>>>,
    writer: Option<JoinHandle<()>>,
    done: oneshot::Receiver<Result<PipelineStats, RunError>>,
    name: String,
    began: Instant,
}

/// Mirrors the newest checkpoint's positions to the source (Kafka's committed offsets,
/// for lag tools). The checkpoint is the truth: a failed mirror is only worth a warning.
async fn mirror(source: &mut dyn Source, commits: &mut watch::Receiver<Option<Vec<Position>>>) {
    if !commits.has_changed().unwrap_or(false) {
        return;
    }
    let next = commits.borrow_and_update().clone();
    if let Some(next) = next
        && let Err(e) = source.commit(next).await
    {
        tracing::warn!("{e}");
    }
}

/// Reads the source until it ends or `stop` turns true, feeding the processor; then
/// finishes the run.
async fn feed_loop(
    mut source: Box<dyn Source>,
    decoder: Decoder,
    feed: mpsc::Sender<Feed>,
    mut stopped: watch::Receiver<bool>,
    mut ended: Ended,
) -> Result<RunSummary, RunError> {
    let (raw, decoding) = decoding::start(decoder, feed.clone());
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
            let Some(batch) = next else { break };
            if raw.send(batch).await.is_err() {
                break; // the processor stopped; its result says why
            }
            mirror(source.as_mut(), &mut ended.commits).await;
        }
        Ok::<(), RunError>(())
    }
    .await;
    // What was read before the end or the stop is decoded and processed too.
    drop(raw);
    let _ = decoding.await;
    let _ = feed.send(Feed::End).await;
    drop(feed);
    finish(source, source_result, ended).await
}

/// Waits for the processor, the last checkpoint and every sink, then mirrors it.
async fn finish(
    mut source: Box<dyn Source>,
    source_result: Result<(), RunError>,
    mut ended: Ended,
) -> Result<RunSummary, RunError> {
    let processed = ended.done.await.unwrap_or(Err(RunError::Panicked));
    if let Some(writer) = ended.writer.take() {
        let _ = writer.await;
    }
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
    mirror(source.as_mut(), &mut ended.commits).await;
    Ok(RunSummary {
        pipeline: ended.name,
        elapsed: ended.began.elapsed(),
        stats,
    })
}

/// Runs `pipeline` until its source ends or `stop` turns true; then flushes open windows
/// (or, with checkpoints, saves them) and every sink.
pub async fn run(
    pipeline: Pipeline,
    mut stop: watch::Receiver<bool>,
    stats: Option<Arc<Mutex<PipelineStats>>>,
) -> Result<RunSummary, RunError> {
    let mut running = start(pipeline, stats.unwrap_or_default()).await?;
    let stop_requested = async {
        if stop.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        r = running.finished() => return r,
        _ = stop_requested => {}
    }
    running.stop();
    running.finished().await
}
