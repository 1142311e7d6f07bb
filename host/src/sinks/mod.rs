//! Sinks: where rows end up. Each sink runs as its own task behind a channel (see
//! [`runner`]); the pipeline learns from it up to which batch everything is durable.
//! Every sink retries a failed write under its `retry` table (`connect::retry`).

pub mod clickhouse;
pub mod file;
pub mod kafka;
pub mod redis;
pub mod runner;
pub mod stdout;
pub mod webhook;

use crate::batch::DeadLetters;
use crate::config::SinkConfig;
use crate::connect::BoxFut;
use adstream_sdk::{Batch, Field};
use runner::SinkMsg;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Errors of sinks.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("sink `{sink}`: cannot write {path}: {source}")]
    Io {
        sink: String,
        path: String,
        source: std::io::Error,
    },
    #[error("sink `{sink}`: {message}")]
    Config { sink: String, message: String },
    #[error("sink `{sink}`: {message}")]
    Delivery { sink: String, message: String },
}

/// A sink's way to the pipeline's dead letters, for rows it could not deliver.
#[derive(Clone)]
pub struct DeadLetterTx {
    pub tx: mpsc::Sender<SinkMsg>,
    pub source: String,
    /// What the dead letters may keep of personal fields.
    pub privacy: Arc<crate::batch::Privacy>,
}

impl DeadLetterTx {
    /// Dead-letters row `row` of `batch`, returning once the dead letter is durable.
    pub async fn row(
        &self,
        sink: &str,
        batch: &Batch,
        row: usize,
        error: &str,
    ) -> Result<(), SinkError> {
        let mut dl = DeadLetters::new(&self.source);
        dl.delivery(sink, batch, row, error);
        let (done, wait) = oneshot::channel();
        let closed = || SinkError::Delivery {
            sink: sink.into(),
            message: format!("the dead-letter sink stopped; undelivered: {error}"),
        };
        self.tx
            .send(SinkMsg::Rows {
                batch: Arc::new(dl.seal(&self.privacy)),
                done: Some(done),
            })
            .await
            .map_err(|_| closed())?;
        wait.await.map_err(|_| closed())
    }
}

/// What a sink is opened with besides its own table.
#[derive(Clone, Default)]
pub struct SinkContext {
    /// The columns of the rows it will receive, when one stage feeds it.
    pub fields: Option<Vec<Field>>,
    /// Where undeliverable rows go (none for the dead-letter sink itself).
    pub dead_letters: Option<DeadLetterTx>,
    /// The sink's mark in the checkpoint being restored: a file sink cuts its file back to
    /// this length, dropping what was written after the checkpoint (it is written again).
    pub resume: Option<u64>,
    /// Where the sink notes what status shows of it while it runs.
    pub meter: Arc<SinkMeter>,
}

/// Alerts kept per sink as held back by a cooldown, for status.
const HELD_KEPT: usize = 100;

/// What a running sink tells status: the alerts its cooldown held back.
#[derive(Debug, Default)]
pub struct SinkMeter {
    held: std::sync::atomic::AtomicU64,
    lost: std::sync::atomic::AtomicU64,
    recent_held: std::sync::Mutex<std::collections::VecDeque<String>>,
}

impl SinkMeter {
    /// A row (an alert with this id) was not sent: the cooldown held it back.
    pub fn held(&self, id: &str) {
        self.held.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut recent = self.recent_held.lock().expect("held alerts");
        recent.push_back(id.chars().take(128).collect());
        if recent.len() > HELD_KEPT {
            recent.pop_front();
        }
    }

    /// The service that keeps the sink's state (a cooldown's Redis) was found to have
    /// lost it.
    pub fn state_lost(&self) {
        self.lost.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn lost_total(&self) -> u64 {
        self.lost.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn held_total(&self) -> u64 {
        self.held.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The ids of the last alerts held back, oldest first.
    pub fn recent_held(&self) -> Vec<String> {
        self.recent_held
            .lock()
            .expect("held alerts")
            .iter()
            .cloned()
            .collect()
    }
}

/// A destination for rows.
pub trait Sink: Send {
    /// Accepts rows. A sink may buffer them; they are durable once `flush` returns.
    fn write(&mut self, batch: Arc<Batch>) -> BoxFut<'_, Result<(), SinkError>>;

    /// Makes every row accepted so far durable.
    fn flush(&mut self) -> BoxFut<'_, Result<(), SinkError>>;

    /// Whether buffered rows should be flushed now rather than later.
    fn wants_flush(&self) -> bool {
        true
    }

    /// Longest time rows may stay buffered.
    fn max_delay(&self) -> Duration {
        Duration::ZERO
    }

    /// Called after a flush at a checkpoint: makes the output durable beyond this process
    /// where that takes more than a flush (a file's fsync), and says how far a sink that can
    /// be rewound has written (a file's length), which the checkpoint records; `None` for
    /// sinks whose writes are idempotent instead.
    fn checkpoint(&mut self) -> BoxFut<'_, Result<Option<u64>, SinkError>> {
        Box::pin(async { Ok(None) })
    }
}

/// Opens the sink `cfg` describes.
pub async fn open(
    name: &str,
    cfg: &SinkConfig,
    ctx: SinkContext,
) -> Result<Box<dyn Sink>, SinkError> {
    Ok(match cfg {
        SinkConfig::Stdout(c) => Box::new(stdout::StdoutSink::new(c)),
        SinkConfig::File(c) => Box::new(file::FileSink::open(name, c, ctx.resume).await?),
        SinkConfig::Kafka(c) => Box::new(kafka::KafkaSink::open(name, c).await?),
        SinkConfig::ClickHouse(c) => {
            let fields = ctx.fields.ok_or_else(|| SinkError::Config {
                sink: name.into(),
                message: "a clickhouse sink must be fed by exactly one stage, whose columns make the table".into(),
            })?;
            Box::new(clickhouse::ClickHouseSink::open(name, c, &fields).await?)
        }
        SinkConfig::Redis(c) => Box::new(redis::RedisSink::open(name, c).await?),
        SinkConfig::Webhook(c) => {
            Box::new(webhook::WebhookSink::open(name, c, ctx.dead_letters, ctx.meter).await?)
        }
    })
}

/// What `adstream check` can find wrong with a sink without opening it: settings only
/// the client libraries can judge, secrets that do not resolve, and (for ClickHouse) a
/// table definition that does not fit the rows.
pub fn check(name: &str, cfg: &SinkConfig, fields: Option<&[Field]>) -> Vec<SinkError> {
    let err = |message: String| SinkError::Config {
        sink: name.into(),
        message,
    };
    match cfg {
        SinkConfig::Kafka(c) => crate::connect::kafka::check_options(&c.options)
            .into_iter()
            .map(|e| err(e.to_string()))
            .collect(),
        SinkConfig::ClickHouse(c) => clickhouse::check(c, fields).into_iter().map(err).collect(),
        SinkConfig::Redis(c) => redis::check_url(&c.url, &c.tls)
            .into_iter()
            .map(err)
            .collect(),
        SinkConfig::Webhook(c) => webhook::check(c).into_iter().map(err).collect(),
        SinkConfig::Stdout(_) | SinkConfig::File(_) => Vec::new(),
    }
}
