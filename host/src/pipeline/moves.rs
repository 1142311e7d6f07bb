//! The group's moves applied between batches, on the processor thread: a partition taken
//! from this host is cut once more (with what this host did with it) and forgotten; a
//! partition given is restored from its cut (`group.rs` says how hosts share a pipeline).

use super::checkpoint::Checkpoint;
use super::error::RunError;
use super::group::position;
use super::merge::{MERGE_STATE, MERGING_PARTITION, Merging};
use super::processor::Processor;
use crate::batch::Move;

impl Processor {
    /// Applies the group's moves that came after batch `seq`: partitions taken away are
    /// cut once more (with what this host did with them) and forgotten; partitions given
    /// are restored from their cuts.
    pub(super) fn apply_moves(&mut self, seq: u64, moves: &[Move]) -> Result<(), RunError> {
        if self.shared.is_none() || moves.is_empty() {
            return Ok(());
        }
        self.stats.lock().expect("stats").rebalances += 1;
        let revoked = moves.iter().filter_map(|m| match m {
            Move::Revoked(p) => Some(*p),
            Move::Assigned(_) => None,
        });
        let revoked: Vec<i32> = revoked.collect();
        if !revoked.is_empty() {
            self.shared.as_mut().expect("shared").releasing = revoked;
            self.checkpoint(seq)?;
            // A cut that could not be taken releases them now: the next owner resumes
            // from their previous cut.
            let shared = self.shared.as_mut().expect("shared");
            shared
                .store
                .released(&std::mem::take(&mut shared.releasing));
        }
        for &m in moves {
            match m {
                Move::Revoked(p) => self.release(p),
                Move::Assigned(p) => self.take(p)?,
            }
        }
        Ok(())
    }

    fn release(&mut self, partition: i32) {
        let shared = self.shared.as_mut().expect("a shared pipeline");
        shared.owned.remove(&partition);
        if self.next.remove(&partition).is_some() {
            shared.fed.insert(partition);
        }
        self.watermark.forget(partition);
        if partition == MERGING_PARTITION && shared.merging.take().is_some() {
            tracing::info!("partition {partition} went elsewhere: its owner merges now");
        }
    }

    fn take(&mut self, partition: i32) -> Result<(), RunError> {
        let shared = self.shared.as_mut().expect("a shared pipeline");
        let taken = shared.taken.lock().expect("taken").remove(&partition);
        let Some((claim, cut)) = taken else {
            return Err(RunError::Shared(format!(
                "partition {partition} was assigned but not claimed"
            )));
        };
        let fed = shared.fed.contains(&partition);
        shared.owned.insert(partition, claim);
        self.watermark.expect(&[partition]);
        self.start_merging(partition, cut.as_ref())?;
        let Some(cut) = cut else {
            return match fed {
                // Its lanes still hold what this host did before: that must not count twice.
                true => Err(RunError::Shared(format!(
                    "partition {partition} came back with no cut, while this host's lanes \
                     still hold its older state; restart this host to read it afresh"
                ))),
                false => Ok(()),
            };
        };
        for (name, state) in cut.stages.iter().filter(|(n, _)| n != MERGE_STATE) {
            let Some(stage) = self.stages.iter_mut().find(|s| &*s.spec.name == name) else {
                tracing::warn!(
                    partition,
                    "the cut has state for stage `{name}`, which the pipeline no longer has"
                );
                continue;
            };
            stage.restore(state).map_err(|reason| {
                RunError::Shared(format!(
                    "stage `{name}` refused partition {partition}'s state: {reason}"
                ))
            })?;
        }
        // Only the partition's own time: the watermark of the host that had it was
        // over other partitions.
        self.watermark.restore(i64::MIN, &cut.partition_times);
        if let Some(next) = position(&cut, partition) {
            self.next.insert(partition, next);
        }
        tracing::info!(partition, seq = cut.seq, "partition restored from its cut");
        Ok(())
    }

    /// Starts merging when `partition` is the one whose owner merges and the pipeline
    /// has partials, from the merge state in its cut.
    fn start_merging(&mut self, partition: i32, cut: Option<&Checkpoint>) -> Result<(), RunError> {
        let shared = self.shared.as_mut().expect("a shared pipeline");
        let Some(plan) = shared
            .partials
            .as_ref()
            .filter(|_| partition == MERGING_PARTITION)
        else {
            return Ok(());
        };
        let state = cut.and_then(|c| c.stages.iter().find(|(n, _)| n == MERGE_STATE));
        let merging = Merging::start(plan, state.map(|(_, s)| s.as_slice()));
        shared.merging = Some(merging.map_err(RunError::Shared)?);
        Ok(())
    }
}
