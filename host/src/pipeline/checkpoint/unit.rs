//! What the checkpoint store of a shared pipeline deals in, whatever holds it: units of
//! state, the claims hosts hold on them, and what can go wrong.

use super::file::CheckpointError;
use std::path::PathBuf;

/// A unit of state: what one cut holds and one host owns at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    /// A source partition: its position, its watermark, its lanes' states (and, for
    /// partition 0, the merge of the hosts' windows: `pipeline/merge/`).
    Partition(i32),
}

impl std::fmt::Display for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unit::Partition(p) => write!(f, "partition {p}"),
        }
    }
}

impl Unit {
    pub(super) fn stem(&self) -> String {
        match self {
            Unit::Partition(p) => format!("partition-{p}"),
        }
    }
}

/// A unit taken by this host, at `epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub unit: Unit,
    pub epoch: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("checkpoint store {dir}: {source}")]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("checkpoint store {url}: {message}")]
    Objects { url: String, message: String },
    #[error(
        "checkpoint store {at} belongs to consumer group `{theirs}`, and this host is in \
         `{ours}`: two groups would each read every partition and overwrite each other's \
         cuts. Use group `{theirs}`, or another [checkpoint] dir"
    )]
    Group {
        at: String,
        theirs: String,
        ours: String,
    },
    #[error(
        "{unit} was taken over by {owner} (epoch {theirs}; this host held epoch {ours}): \
         its cut is not written, and what this host did with it since does not count"
    )]
    Fenced {
        unit: Unit,
        owner: String,
        theirs: u64,
        ours: u64,
    },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}
