//! Sources: where raw events come from. A source yields [`RawBatch`]es of undecoded
//! records (JSON bytes) with their positions; the pipeline decodes them into columns.

pub mod file;
pub mod generator;
pub mod kafka;

use crate::batch::{Position, RawBatch};
use crate::config::SourceConfig;
use crate::connect::BoxFut;
use crate::connect::kafka::KafkaError;

/// Errors of sources.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("[source] generator: {0}")]
    Generator(String),
    #[error("[source] kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("[source] kafka: {0}")]
    Consumer(String),
    #[error("committing offsets of `{topic}`: {reason}")]
    Commit { topic: String, reason: String },
}

/// A stream of raw records.
pub trait Source: Send {
    /// The name dead letters give as their origin (topic, file path, `generator`).
    fn name(&self) -> &str;

    /// The partitions this source will deliver, when it knows them up front; the watermark
    /// waits for each of them rather than racing ahead with the first one read.
    fn partitions(&self) -> Vec<i32> {
        vec![0]
    }

    /// The next batch, or `None` at the end of a finite input.
    fn next_batch(&mut self) -> BoxFut<'_, Result<Option<RawBatch>, SourceError>>;

    /// Every record up to and including `upto` (per partition) has reached every sink;
    /// a source with offsets stores them now.
    fn commit(&mut self, upto: Vec<Position>) -> BoxFut<'_, Result<(), SourceError>> {
        let _ = upto;
        Box::pin(async { Ok(()) })
    }
}

/// Opens the source `cfg` describes.
pub async fn open(cfg: &SourceConfig) -> Result<Box<dyn Source>, SourceError> {
    match cfg {
        SourceConfig::Generator(c) => Ok(Box::new(generator::GeneratorSource::new(c)?)),
        SourceConfig::File(c) => Ok(Box::new(file::FileSource::open(c)?)),
        SourceConfig::Kafka(c) => Ok(Box::new(kafka::KafkaSource::open(c).await?)),
    }
}

/// What `adstream check` can find wrong with a source without starting it.
pub fn check(cfg: &SourceConfig) -> Vec<SourceError> {
    match cfg {
        SourceConfig::Generator(c) => generator::GeneratorSource::new(c)
            .err()
            .into_iter()
            .collect(),
        SourceConfig::File(c) => file::FileSource::open(c).err().into_iter().collect(),
        SourceConfig::Kafka(c) => crate::connect::kafka::check_options(&c.options)
            .into_iter()
            .map(SourceError::Kafka)
            .collect(),
    }
}
