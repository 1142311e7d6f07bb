//! Pipelines: building one from its config (loading and configuring every plugin, checking
//! that each stage's input fits it) and running it.
//!
//! A batch moves through every stage before the next batch starts, so a batch boundary is a
//! consistent point for checkpoints and for swapping a plugin.

mod build;
mod checkpoint;
mod decoding;
mod error;
#[cfg(test)]
mod fake;
mod feed;
mod group;
mod merge;
mod moves;
mod processor;
mod run;
mod running;
mod sinkset;
pub use sinkset::{SinkGauges, SinkStatus};
mod stage;
mod stats;
mod watermark;

pub use build::{CheckpointPolicy, Pipeline, build, default_dead_letter};
pub use checkpoint::CheckpointError;
pub use error::{RunError, StageFatal};
pub use run::{run, start};
pub use running::{NewSinks, RewireError, RunningPipeline, SwapError};
pub use stage::{
    CanaryError, CanarySpec, Input, Refusal, Replacement, Stage, StageSpec, StageView, SwapOutcome,
    Watermarks, lines_up, process_chain,
};
pub use stats::{
    CanaryReport, CanaryState, Latency, PipelineStats, Recent, RunSummary, StageStats,
};
