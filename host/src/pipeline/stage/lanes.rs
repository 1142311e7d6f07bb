//! A spread aggregate's lanes and merger used apart, for a pipeline that hosts share
//! (`pipeline/merge/`): the lanes' partials leave this host, and the merger takes those
//! of every host.

use super::partitions::{Watermarks, merge_all, partials};
use super::{Stage, StageFatal};
use crate::batch::{DeadLetters, Envelope};

/// A lane's output for a batch: its partition, its watermark, its partial windows.
pub struct LaneOutput {
    pub partition: i32,
    pub mark: i64,
    pub rows: Vec<Envelope>,
}

impl Stage {
    /// Whether the stage is an aggregate spread over partitions, with a merger.
    pub fn merges(&self) -> bool {
        (self.partitions.as_ref()).is_some_and(|p| p.merger.is_some())
    }

    /// One batch through the lanes, each at its watermark; their partials, unmerged.
    pub fn lane_outputs(
        &mut self,
        inputs: Vec<Envelope>,
        at: &Watermarks<'_>,
        dl: &mut DeadLetters,
    ) -> Result<Vec<LaneOutput>, StageFatal> {
        let ids = self.partition_ids();
        let (_, outputs) = self.run_partitions(inputs, at, dl)?;
        let lanes = ids.into_iter().zip(outputs);
        let out = lanes.map(|(partition, rows)| LaneOutput {
            partition,
            mark: (at.of)(partition).max(at.global),
            rows,
        });
        Ok(out.collect())
    }

    /// Partials of every partition through the merger, then `watermark`: the windows it
    /// closed.
    pub fn merge(
        &mut self,
        rows: Vec<Envelope>,
        watermark: i64,
        dl: &mut DeadLetters,
    ) -> Result<Vec<Envelope>, StageFatal> {
        match self.partitions.as_mut().and_then(|p| p.merger.as_mut()) {
            Some(merger) => merge_all(merger, partials(rows), watermark, dl),
            None => Ok(Vec::new()),
        }
    }
}
