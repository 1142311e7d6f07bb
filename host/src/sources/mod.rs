//! Sources: where raw events come from. A source yields [`RawBatch`]es of undecoded
//! records (JSON bytes) with their positions; the pipeline decodes them into columns.

pub mod file;
pub mod generator;
pub mod kafka;

use crate::config::{Diagnostics, kind_of, section};
use std::future::Future;
use std::pin::Pin;
use toml::Spanned;
use toml::de::DeValue;

/// A boxed future, for object-safe async traits.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a record came from: Kafka partition and offset, or line number in a file
/// (partition 0), or sequence number for the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

/// Undecoded records, stored back to back so that a batch costs a few allocations, not
/// one per record.
#[derive(Debug, Default, Clone)]
pub struct RawBatch {
    data: Vec<u8>,
    ends: Vec<u32>,
    positions: Vec<Position>,
}

impl RawBatch {
    pub fn with_capacity(records: usize, bytes: usize) -> Self {
        RawBatch {
            data: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(records),
            positions: Vec::with_capacity(records),
        }
    }

    /// A batch of `records`, at positions 0, 1, ... of partition 0.
    pub fn from_records(records: &[&[u8]]) -> Self {
        let mut b = RawBatch::default();
        for (i, r) in records.iter().enumerate() {
            b.push(
                r,
                Position {
                    partition: 0,
                    offset: i as i64,
                },
            );
        }
        b
    }

    /// Appends a record.
    pub fn push(&mut self, record: &[u8], position: Position) {
        self.data.extend_from_slice(record);
        self.finish_record(position);
    }

    /// The buffer to write the next record into; call [`finish_record`](Self::finish_record)
    /// when it is written.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    /// Ends the record written into [`buffer`](Self::buffer).
    pub fn finish_record(&mut self, position: Position) {
        self.ends.push(self.data.len() as u32);
        self.positions.push(position);
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of all records.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// Record `i`.
    pub fn record(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.data[start..self.ends[i] as usize]
    }

    pub fn position(&self, i: usize) -> Position {
        self.positions[i]
    }

    pub fn positions(&self) -> &[Position] {
        &self.positions
    }
}

/// Errors of sources.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Commit(String),
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

/// The `[source]` table.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceConfig {
    Generator(Box<generator::GeneratorConfig>),
    File(file::FileSourceConfig),
    Kafka(kafka::KafkaSourceConfig),
}

const KINDS: &str = "generator, file, kafka";

impl SourceConfig {
    pub fn parse(value: &Spanned<DeValue<'_>>, diags: &mut Diagnostics) -> Option<SourceConfig> {
        match kind_of(value, "[source]", diags)? {
            "generator" => {
                section(value, "[source]", diags).map(|c| SourceConfig::Generator(Box::new(c)))
            }
            "file" => section(value, "[source]", diags).map(SourceConfig::File),
            "kafka" => section(value, "[source]", diags).map(SourceConfig::Kafka),
            other => {
                let span = value.get_ref().get("kind").map(|k| k.span());
                diags.error_hint(
                    span,
                    format!("unknown source kind `{other}`"),
                    format!("kinds: {KINDS}"),
                );
                None
            }
        }
    }

    /// Opens the source.
    pub async fn open(&self) -> Result<Box<dyn Source>, SourceError> {
        match self {
            SourceConfig::Generator(c) => Ok(Box::new(generator::GeneratorSource::new(c)?)),
            SourceConfig::File(c) => Ok(Box::new(file::FileSource::open(c)?)),
            SourceConfig::Kafka(c) => Ok(Box::new(kafka::KafkaSource::open(c).await?)),
        }
    }
}
