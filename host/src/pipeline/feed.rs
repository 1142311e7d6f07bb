//! What the processor thread receives: source batches (already decoded, on another thread),
//! and changes to apply between them.

use super::stage::{Replacement, SwapOutcome};
use crate::batch::RawBatch;
use crate::batch::decode::Decoded;
use crate::sinks::runner::SinkMsg;
use tokio::sync::{mpsc, oneshot};

/// A source batch and its columns: decoding happens on the source side, so that it runs
/// on another core than the stages.
pub struct Incoming {
    pub raw: RawBatch,
    pub decoded: Decoded,
}

pub enum Feed {
    Batch(u64, Box<Incoming>),
    /// A new instance for a stage, and where to say how the swap ended.
    Swap(Box<Replacement>, oneshot::Sender<SwapOutcome>),
    Rewire(Rewire),
    /// The source ended or was stopped: flush and finish. (Not the channel closing, since
    /// the supervisor keeps a sender for swaps as long as the pipeline is managed.)
    End,
}

/// A new set of sinks and routes (after a pipeline file edit). Sinks that did not change
/// keep their sender, and so their task; `done` is told once the processor uses the new set.
pub struct Rewire {
    pub sinks: Vec<(String, mpsc::Sender<SinkMsg>)>,
    pub dead_letter: usize,
    /// For each stage (by name), the indexes of the sinks it sends to.
    pub routes: Vec<(String, Vec<usize>)>,
    pub done: oneshot::Sender<()>,
}
