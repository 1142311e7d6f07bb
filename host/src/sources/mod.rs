//! Sources: where raw events come from. A source yields [`RawBatch`]es of undecoded
//! records (JSON bytes) with their positions; the pipeline decodes them into columns.

pub mod file;
pub mod generator;
mod group;
pub mod kafka;

use crate::batch::{Position, RawBatch};
use crate::config::{OnMissing, SourceConfig};
use crate::connect::BoxFut;
use crate::connect::kafka::KafkaError;
use std::sync::{Arc, Mutex};

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
    #[error(
        "there is no checkpoint, but consumer group `{group}` has committed offsets on \
         `{topic}`: the state that goes with them is gone. Put the checkpoint file back; or \
         set [checkpoint] on_missing = \"earliest\" to replay the topic from its start, or \
         \"committed\" to resume from the offsets with empty state (the windows open then \
         come out short); or use a new group"
    )]
    StateMissing { topic: String, group: String },
}

/// Where a source starts reading.
#[derive(Debug, Clone, PartialEq)]
pub enum Resume {
    /// At these positions (per partition, the next offset to read): a checkpoint's.
    At(Vec<Position>),
    /// With no checkpoint; what to do if the source has positions of its own (a consumer
    /// group's committed offsets).
    Fresh(OnMissing),
    /// Sharing the topic with the other hosts of its consumer group: each partition the
    /// group gives this host starts where its claim says.
    Shared(Claimer),
}

/// Where a partition the group just gave this host starts: the pipeline takes the
/// partition (its checkpoint store's claim, which fences the host that had it) and answers
/// with the position of its cut; `None` when it has none (the start policy applies).
pub trait Claims: Send + Sync {
    fn claim(&self, partition: i32) -> Result<Option<i64>, String>;

    /// The group is taking `partitions` from this host: the source holds them (reads no
    /// more of them and keeps them from the next owner) until [`released`](Self::released).
    fn revoking(&self, partitions: &[i32]);

    /// Whether every partition being taken has had its last cut written (or refused,
    /// when another host took it first), so that the next owner may read it.
    fn released(&self) -> bool;

    /// The held partitions went back to the group, `held` after the group asked for them.
    fn let_go(&self, held: std::time::Duration);
}

/// A shared [`Claims`].
#[derive(Clone)]
pub struct Claimer(pub Arc<dyn Claims>);

impl std::fmt::Debug for Claimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Claimer")
    }
}

impl PartialEq for Claimer {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Why a source is not delivering, when it knows: `None` while it is healthy.
pub type Health = Arc<Mutex<Option<String>>>;

/// Records waiting behind what was read, per partition, for sources that know.
pub type Lag = Arc<Mutex<std::collections::BTreeMap<i32, i64>>>;

/// A stream of raw records.
pub trait Source: Send {
    /// The name dead letters give as their origin (topic, file path, `generator`).
    fn name(&self) -> &str;

    /// The partitions this source will deliver, when it knows them up front; the watermark
    /// waits for each of them rather than racing ahead with the first one read.
    fn partitions(&self) -> Vec<i32> {
        vec![0]
    }

    /// Shared word on whether the source is stalled.
    fn health(&self) -> Health {
        Health::default()
    }

    /// Shared word on how far behind each partition the source is.
    fn lag(&self) -> Lag {
        Lag::default()
    }

    /// The next batch, or `None` at the end of a finite input.
    fn next_batch(&mut self) -> BoxFut<'_, Result<Option<RawBatch>, SourceError>>;

    /// A checkpoint holds everything before `next` (per partition, the next offset to
    /// read); a source with offsets of its own mirrors them now (for lag tools).
    fn commit(&mut self, next: Vec<Position>) -> BoxFut<'_, Result<(), SourceError>> {
        let _ = next;
        Box::pin(async { Ok(()) })
    }
}

/// Opens the source `cfg` describes, to start where `resume` says (sources without
/// positions of their own always start from their beginning). A record may be at most
/// `max_record` bytes: the file source keeps no more of a longer line than a byte over
/// (Kafka's client bounds a fetch by its own settings).
pub async fn open(
    cfg: &SourceConfig,
    resume: &Resume,
    max_record: usize,
) -> Result<Box<dyn Source>, SourceError> {
    match cfg {
        SourceConfig::Generator(c) => Ok(Box::new(generator::GeneratorSource::new(c)?)),
        SourceConfig::File(c) => Ok(Box::new(file::FileSource::open(c, max_record)?)),
        SourceConfig::Kafka(c) => Ok(Box::new(kafka::KafkaSource::open(c, resume).await?)),
    }
}

/// What `adstream check` can find wrong with a source without starting it.
pub fn check(cfg: &SourceConfig) -> Vec<SourceError> {
    match cfg {
        SourceConfig::Generator(c) => generator::GeneratorSource::new(c)
            .err()
            .into_iter()
            .collect(),
        SourceConfig::File(c) => (file::FileSource::open(c, usize::MAX).err())
            .into_iter()
            .collect(),
        SourceConfig::Kafka(c) => crate::connect::kafka::check_options(&c.options)
            .into_iter()
            .map(SourceError::Kafka)
            .collect(),
    }
}
