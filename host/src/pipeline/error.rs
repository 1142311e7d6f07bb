//! Why a pipeline stopped before its input ended.

use crate::config::SecretError;
use crate::sinks::SinkError;
use crate::sources::SourceError;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("source: {0}")]
    Source(#[from] SourceError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Stage(#[from] StageFatal),
    #[error("sink `{0}` stopped")]
    SinkClosed(String),
    #[error("the pipeline's processor thread panicked")]
    Panicked,
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] super::checkpoint::CheckpointError),
    #[error(transparent)]
    Store(#[from] super::checkpoint::StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// A pipeline shared by hosts (`group.rs`) cannot go on.
    #[error("{0}")]
    Shared(String),
}

/// A stage stopped the pipeline (its `on_error` is `stop`, or it could not be restarted).
#[derive(Debug, thiserror::Error)]
#[error("stage `{stage}` stopped the pipeline: {reason}")]
pub struct StageFatal {
    pub stage: String,
    pub reason: String,
}
