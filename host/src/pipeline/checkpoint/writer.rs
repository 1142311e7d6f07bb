//! Taking checkpoints. The processor cuts at a batch boundary (`Cut::take`): it snapshots
//! every stateful stage, notes the source positions and the watermark, and sends every
//! sink a barrier. The checkpointer task then waits until every sink has answered — made
//! all rows before the barrier durable, and said how far it has written — and only then
//! writes the checkpoint file and mirrors its positions to the source (Kafka's committed
//! offsets). One checkpoint is in flight at a time; one that cannot complete (a snapshot
//! or a sink failed) is not written at all, and the previous one stays the truth.

use super::super::build::CheckpointPolicy;
use super::super::sinkset::SinkSet;
use super::super::stats::PipelineStats;
use super::file::{self as checkpoint, Checkpoint};
use super::store::{Claim, Store, StoreError, Unit, cut_of};
use crate::batch::Position;
use crate::sinks::runner::BarrierAnswer;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};
use tokio::sync::{mpsc, oneshot, watch};

/// A cut on its way to disk: the checkpoint, and each sink's answer to its barrier.
pub(in crate::pipeline) struct Pending {
    pub cp: Checkpoint,
    pub marks: Vec<(String, oneshot::Receiver<BarrierAnswer>)>,
    /// The partitions this host owns, when hosts share the pipeline: the cut is saved as
    /// one per partition, each under its claim.
    pub claims: Option<Vec<Claim>>,
    /// Partitions being taken from this host, released once this cut is written.
    pub release: Vec<i32>,
}

/// The processor's side: when to cut, and where cuts go.
pub(in crate::pipeline) struct Cut {
    pub policy: CheckpointPolicy,
    last: Instant,
    in_flight: Arc<AtomicBool>,
    tx: mpsc::UnboundedSender<Pending>,
}

impl Cut {
    /// Whether a checkpoint is due (and none is in flight).
    pub fn due(&self) -> bool {
        self.last.elapsed() >= self.policy.every && !self.in_flight.load(Ordering::Acquire)
    }

    /// A cut was abandoned: try again after the interval.
    pub fn skipped(&mut self) {
        self.last = Instant::now();
    }

    /// Hands a cut over to be written.
    pub fn send(&mut self, pending: Pending) {
        self.last = Instant::now();
        self.in_flight.store(true, Ordering::Release);
        if self.tx.send(pending).is_err() {
            self.in_flight.store(false, Ordering::Release);
        }
    }
}

/// What the checkpointer task needs.
pub(in crate::pipeline) struct Writer {
    pub file: PathBuf,
    /// Where the cuts of a pipeline shared by hosts go, instead of `file`.
    pub store: Option<Store>,
    pub sinks: SinkSet,
    pub stats: Arc<Mutex<PipelineStats>>,
    /// Positions of the newest written checkpoint, for the source loop to mirror.
    pub commit: watch::Sender<Option<Vec<Position>>>,
}

impl Writer {
    pub fn new(
        file: PathBuf,
        store: Option<Store>,
        sinks: &SinkSet,
        stats: &Arc<Mutex<PipelineStats>>,
        commit: watch::Sender<Option<Vec<Position>>>,
    ) -> Self {
        Writer {
            file,
            store,
            sinks: sinks.clone(),
            stats: stats.clone(),
            commit,
        }
    }
}

/// The two ends: the processor's `Cut` and the task that writes.
pub(in crate::pipeline) fn start(
    policy: CheckpointPolicy,
    writer: Writer,
) -> (Cut, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let in_flight = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(run(rx, writer, in_flight.clone()));
    let cut = Cut {
        policy,
        last: Instant::now(),
        in_flight,
        tx,
    };
    (cut, task)
}

async fn run(mut rx: mpsc::UnboundedReceiver<Pending>, w: Writer, in_flight: Arc<AtomicBool>) {
    while let Some(pending) = rx.recv().await {
        let seq = pending.cp.seq;
        match write(pending, &w).await {
            Ok(positions) => {
                let _ = w.commit.send(Some(positions));
                let mut stats = w.stats.lock().expect("stats");
                stats.checkpoints += 1;
                stats.last_checkpoint_ms = Some(now_ms());
            }
            Err(e) => {
                tracing::error!(file = %w.file.display(), seq, "checkpoint not written: {e}");
                w.stats.lock().expect("stats").checkpoint_failures += 1;
            }
        }
        in_flight.store(false, Ordering::Release);
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Waits for every barrier (and for retiring sinks to finish), then saves.
async fn write(pending: Pending, w: &Writer) -> Result<Vec<Position>, String> {
    let Pending {
        mut cp,
        marks,
        claims,
        release,
    } = pending;
    // Whatever happens to this cut, the partitions being taken go: the next owner
    // resumes from the newest cut written.
    let _release = Release(w.store.as_ref(), release);
    for (sink, answer) in marks {
        match answer.await {
            Ok(Ok(Some(mark))) => cp.sinks.push((sink, mark)),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => return Err(format!("sink `{sink}` could not flush: {e}")),
            Err(_) => return Err(format!("sink `{sink}` stopped before its barrier")),
        }
    }
    w.sinks.retired().await;
    let positions = cp
        .positions
        .iter()
        .map(|&(partition, offset)| Position { partition, offset })
        .collect();
    if let (Some(store), Some(claims)) = (w.store.clone(), claims) {
        return tokio::task::spawn_blocking(move || save_shared(&store, &cp, &claims))
            .await
            .map_err(|e| e.to_string())?;
    }
    let file = w.file.clone();
    tokio::task::spawn_blocking(move || checkpoint::save(&file, &cp))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(positions)
}

/// Releases partitions when dropped.
struct Release<'a>(Option<&'a Store>, Vec<i32>);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        if let Some(store) = self.0 {
            store.released(&self.1);
        }
    }
}

/// Saves each claimed partition's cut; a partition another host took since is left to it.
/// The positions saved, for the source to mirror.
fn save_shared(store: &Store, cp: &Checkpoint, claims: &[Claim]) -> Result<Vec<Position>, String> {
    let mut saved = Vec::new();
    for claim in claims {
        let Unit::Partition(p) = claim.unit;
        let cut = cut_of(cp, p);
        let Some(&(partition, offset)) = cut.positions.first() else {
            continue; // nothing read from it yet
        };
        match store.save(*claim, &cut) {
            Ok(()) => saved.push(Position { partition, offset }),
            Err(e @ StoreError::Fenced { .. }) => tracing::warn!("{e}"),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(saved)
}
