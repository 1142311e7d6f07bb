//! Sinks: where rows end up. Each sink runs as its own task behind a channel (see
//! [`runner`]); the pipeline learns from it up to which batch everything is durable.

pub mod clickhouse;
pub mod file;
pub mod kafka;
pub mod redis;
pub mod runner;
pub mod stdout;
mod template;
pub mod webhook;

use crate::config::{Diagnostics, kind_of, section};
use crate::pipeline::DeadLetters;
use crate::sources::BoxFut;
use adstream_sdk::{Batch, Field};
use runner::SinkMsg;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use toml::Spanned;
use toml::de::DeValue;

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
                seq: 0,
                batch: Arc::new(dl.finish()),
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
}

/// A `[sink.NAME]` table.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkConfig {
    Stdout(stdout::StdoutConfig),
    File(file::FileSinkConfig),
    Kafka(kafka::KafkaSinkConfig),
    ClickHouse(Box<clickhouse::ClickHouseConfig>),
    Redis(redis::RedisSinkConfig),
    Webhook(webhook::WebhookConfig),
}

const KINDS: &str = "stdout, file, kafka, clickhouse, redis, webhook";

impl SinkConfig {
    pub fn parse(
        name: &str,
        value: &Spanned<DeValue<'_>>,
        diags: &mut Diagnostics,
    ) -> Option<SinkConfig> {
        let what = format!("[sink.{name}]");
        let cfg = match kind_of(value, &what, diags)? {
            "stdout" => section(value, &what, diags).map(SinkConfig::Stdout)?,
            "file" => section(value, &what, diags).map(SinkConfig::File)?,
            "kafka" => section(value, &what, diags).map(SinkConfig::Kafka)?,
            "clickhouse" => {
                section(value, &what, diags).map(|c| SinkConfig::ClickHouse(Box::new(c)))?
            }
            "redis" => section(value, &what, diags).map(SinkConfig::Redis)?,
            "webhook" => section(value, &what, diags).map(SinkConfig::Webhook)?,
            other => {
                let span = value.get_ref().get("kind").map(|k| k.span());
                diags.error_hint(
                    span,
                    format!("{what}: unknown sink kind `{other}`"),
                    format!("kinds: {KINDS}"),
                );
                return None;
            }
        };
        if let Err(message) = cfg.check() {
            diags.error(Some(value.span()), format!("{what}: {message}"));
            return None;
        }
        Some(cfg)
    }

    /// Checks what serde cannot (e.g. a template's syntax).
    fn check(&self) -> Result<(), String> {
        match self {
            SinkConfig::Stdout(c) => c
                .template
                .as_deref()
                .map_or(Ok(()), |t| template::Template::parse(t).map(|_| ())),
            _ => Ok(()),
        }
    }

    /// Whether the sink needs to know the schema of its rows when it opens.
    pub fn needs_fields(&self) -> bool {
        matches!(self, SinkConfig::ClickHouse(_))
    }

    /// Opens the sink.
    pub async fn open(&self, name: &str, ctx: SinkContext) -> Result<Box<dyn Sink>, SinkError> {
        Ok(match self {
            SinkConfig::Stdout(c) => Box::new(stdout::StdoutSink::new(name, c)?),
            SinkConfig::File(c) => Box::new(file::FileSink::open(name, c).await?),
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
                Box::new(webhook::WebhookSink::open(name, c, ctx.dead_letters).await?)
            }
        })
    }
}
