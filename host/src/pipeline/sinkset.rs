//! A pipeline's sink tasks: opening them (the dead-letter sink first, so that the others
//! can send it what they cannot deliver), how far all of them have acknowledged, and
//! retiring the ones an edit replaced.

use crate::config::SinkConfig;
use crate::sinks::runner::{self, SinkMsg};
use crate::sinks::{DeadLetterTx, SinkContext, SinkError, SinkMeter};
use adstream_sdk::Field;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A running sink task.
pub(super) struct SinkEntry {
    /// Tells apart two entries of the same name while one replaces the other.
    pub id: u64,
    pub name: String,
    pub config: SinkConfig,
    /// Dropped at the end, so that the task sees its channel close.
    pub tx: Option<mpsc::Sender<SinkMsg>>,
    pub task: Option<JoinHandle<Result<(), SinkError>>>,
    pub retries: Arc<AtomicU64>,
    pub meter: Arc<SinkMeter>,
}

/// A sink as status shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SinkStatus {
    pub name: String,
    /// Batches waiting in its channel (at most its queue's length; then the pipeline
    /// waits).
    pub queued: usize,
    pub retries: u64,
    /// Alerts a cooldown held back (webhook sinks), and the ids of the last ones.
    pub held_back: u64,
    pub recent_held: Vec<String>,
    /// Times the service keeping the sink's state (a cooldown's Redis) had lost it.
    pub state_lost: u64,
    /// Closed by an edit, still delivering what it holds.
    pub retiring: bool,
}

/// Reads the pipeline's sinks' queues and retries, for status.
#[derive(Clone, Default)]
pub struct SinkGauges(pub(super) SinkSet);

impl SinkGauges {
    pub fn read(&self) -> Vec<SinkStatus> {
        self.0
            .lock()
            .iter()
            .map(|e| SinkStatus {
                name: e.name.clone(),
                queued: e.tx.as_ref().map_or(0, |t| t.max_capacity() - t.capacity()),
                retries: e.retries.load(Ordering::Relaxed),
                held_back: e.meter.held_total(),
                recent_held: e.meter.recent_held(),
                state_lost: e.meter.lost_total(),
                retiring: e.tx.is_none(),
            })
            .collect()
    }
}

/// The pipeline's sinks, shared between its source loop (which reads how far they have
/// acknowledged) and its rewiring (which adds and retires sinks).
#[derive(Clone, Default)]
pub(super) struct SinkSet(Arc<Mutex<Vec<SinkEntry>>>);

/// Opens one sink and starts its task.
pub(super) async fn open(
    name: &str,
    config: &SinkConfig,
    ctx: SinkContext,
) -> Result<SinkEntry, SinkError> {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let meter = ctx.meter.clone();
    let handle = runner::spawn(name, crate::sinks::open(name, config, ctx).await?);
    Ok(SinkEntry {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        name: name.to_string(),
        config: config.clone(),
        tx: Some(handle.tx),
        task: Some(handle.task),
        retries: handle.retries,
        meter,
    })
}

/// Opens every sink, the dead-letter sink first so that the others can send it the rows
/// they fail to deliver; a sink with a mark in `resume` (a checkpoint's) continues from
/// it. Returns the set and the way to the dead letters.
pub(super) async fn open_all(
    sinks: &[(String, SinkConfig)],
    fields: &[Option<Vec<Field>>],
    dl: usize,
    (source, privacy): (&str, Arc<crate::batch::Privacy>),
    resume: &[(String, u64)],
) -> Result<(SinkSet, DeadLetterTx), SinkError> {
    let mark = |name: &str| resume.iter().find(|(n, _)| n == name).map(|(_, m)| *m);
    let (dl_name, dl_cfg) = &sinks[dl];
    let dl_ctx = SinkContext {
        resume: mark(dl_name),
        ..Default::default()
    };
    let dl_entry = open(dl_name, dl_cfg, dl_ctx).await?;
    let dead_letters = DeadLetterTx {
        tx: dl_entry.tx.clone().expect("just opened"),
        source: source.to_string(),
        privacy,
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
            resume: mark(name),
            ..Default::default()
        };
        entries.push(open(name, cfg, ctx).await?);
    }
    Ok((SinkSet(Arc::new(Mutex::new(entries))), dead_letters))
}

impl SinkSet {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SinkEntry>> {
        self.0.lock().expect("sink set")
    }

    /// The senders of the open sinks, in order.
    pub fn senders(&self) -> Vec<(String, mpsc::Sender<SinkMsg>)> {
        self.lock()
            .iter()
            .filter_map(|e| Some((e.name.clone(), e.tx.clone()?)))
            .collect()
    }

    /// Waits until every retired sink has delivered what it held (a checkpoint must not
    /// count rows as emitted while a sink being replaced still buffers them).
    pub async fn retired(&self) {
        while self.lock().iter().any(|e| e.tx.is_none()) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The running sink of that name and config, if it is not yet taken.
    pub fn find(
        &self,
        name: &str,
        config: &SinkConfig,
        taken: &[u64],
    ) -> Option<(u64, mpsc::Sender<SinkMsg>)> {
        self.lock()
            .iter()
            .find(|e| e.name == name && e.config == *config && !taken.contains(&e.id))
            .and_then(|e| Some((e.id, e.tx.clone()?)))
    }

    pub fn add(&self, entries: Vec<SinkEntry>) {
        self.lock().extend(entries);
    }

    /// Closes every sink's channel and returns their tasks, to wait for.
    pub fn close_all(&self) -> Vec<JoinHandle<Result<(), SinkError>>> {
        self.lock()
            .iter_mut()
            .filter_map(|s| {
                s.tx = None;
                s.task.take()
            })
            .collect()
    }

    /// Closes every open sink that is neither `kept` nor `added`, and removes each from
    /// the set once its task has finished (until then it holds source commits back, so
    /// rows it still holds are not committed past). Returns their names.
    pub fn retire(&self, kept: &[u64], added: &[u64]) -> Vec<String> {
        let mut names = Vec::new();
        for entry in self
            .lock()
            .iter_mut()
            .filter(|e| !kept.contains(&e.id) && !added.contains(&e.id) && e.tx.is_some())
        {
            entry.tx = None;
            names.push(entry.name.clone());
            let (id, set, task, name) = (
                entry.id,
                self.clone(),
                entry.task.take(),
                entry.name.clone(),
            );
            tokio::spawn(async move {
                if let Some(task) = task
                    && let Ok(Err(e)) = task.await
                {
                    tracing::warn!("retired sink `{name}` ended with an error: {e}");
                }
                set.lock().retain(|e| e.id != id);
            });
        }
        names
    }
}
