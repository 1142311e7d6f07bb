//! A stateful stage's state between checkpoints: the last snapshot (the base) and the
//! batches its plugin has taken since (the redo log). After a failed call — a trap, or an
//! error the plugin returned — the stage is rebuilt from them: a fresh instance, the base
//! restored, the logged batches run again (their output dropped, it was emitted the first
//! time). So the state is exactly what it was before the call that failed, and no
//! snapshot is taken per call: snapshots happen at checkpoints, or when the log outgrows
//! both [`REDO_LIMIT`] bytes and half the snapshot (a large state is not snapshotted
//! more often than half its own size in input has gone by, which keeps the cost of
//! snapshots a share of the work whatever the state's size, and the log's memory at half
//! the state's). The log keeps only the columns the plugin declared it reads. The limits
//! are small because the log is resident memory, and a full log meets the new snapshot
//! in memory (a base of 1 MiB or more then waits in a file, `base.rs`): the demo's
//! `unique` rule holds a state of about 6.4 MB. Half rather than the whole state's size
//! took 4–6 MiB off the demo's peak resident memory, and its CPU time over 60 s stayed
//! within the runs' spread.

use super::base::Base;
use super::{Stage, StageFatal, instantiate};
use crate::plugin::CallError;
use adstream_sdk::{Batch, Values};
use std::time::Instant;

/// Bytes of input kept for replay before the stage takes a snapshot to start afresh, for
/// a small state; a larger one keeps half as many bytes as its snapshot has.
pub const REDO_LIMIT: usize = 1 << 20;

/// The base state and what came after it.
#[derive(Default)]
pub(super) struct Recovery {
    pub base: Base,
    log: Vec<(Batch, i64)>,
    bytes: usize,
}

/// The bytes a batch's columns hold.
fn size(b: &Batch) -> usize {
    b.columns
        .iter()
        .map(|c| {
            let values = match &c.values {
                Values::Int64(v) | Values::TimestampMs(v) => v.len() * 8,
                Values::Float64(v) => v.len() * 8,
                Values::Boolean(v) => v.len(),
                Values::Text(s) => s.bytes.len() + s.offsets.len() * 4,
                Values::Dictionary(d) => d.keys.len() * 4 + d.values.bytes.len(),
            };
            values + c.valid.as_ref().map_or(0, Vec::len)
        })
        .sum()
}

impl Recovery {
    /// A fresh start from `base`.
    pub fn rebase(&mut self, base: Option<&[u8]>) {
        // The old base goes first, so that the two are never kept at once.
        self.base = Base::None;
        self.base = Base::keep(base);
        self.log.clear();
        self.bytes = 0;
    }

    pub fn full(&self) -> bool {
        self.bytes >= REDO_LIMIT.max(self.base.len() / 2)
    }
}

impl Stage {
    /// Notes a batch the plugin took, for replay after a failure (stateful stages only).
    pub(super) fn after_success(
        &mut self,
        mut input: Batch,
        watermark: i64,
    ) -> Result<(), StageFatal> {
        if !self.spec.plugin.stateful() {
            return Ok(());
        }
        // A replay hands the plugin only what it reads, so only that is kept.
        if let Some(reads) = self.instance.reads() {
            drop(crate::plugin::reads::project(&mut input, reads));
        }
        self.recovery.bytes += size(&input);
        self.recovery.log.push((input, watermark));
        if self.recovery.full() {
            self.take_snapshot().map_err(|reason| self.fatal(reason))?;
        }
        Ok(())
    }

    /// Makes the plugin's current state the base to recover from; a snapshot that fails
    /// rebuilds the instance and is an error.
    fn take_snapshot(&mut self) -> Result<(), String> {
        match self.timed_snapshot() {
            Ok(state) => {
                self.recovery.rebase(state.as_deref());
                Ok(())
            }
            Err(e) => {
                let why = format!(
                    "snapshot of stage `{}` failed: {}",
                    self.spec.name,
                    e.describe()
                );
                self.restart().map_err(|f| f.to_string())?;
                Err(why)
            }
        }
    }

    /// The plugin's snapshot, counted and timed in the stage's stats.
    fn timed_snapshot(&mut self) -> Result<Option<Vec<u8>>, CallError> {
        let began = Instant::now();
        let state = self.instance.snapshot();
        self.stats.snapshots += 1;
        self.stats.snapshot_ns += began.elapsed().as_nanos() as u64;
        state
    }

    /// The plugin's state, which becomes the base to recover from; `None` for stateless
    /// plugins. A snapshot that fails rebuilds the instance and is an error: a checkpoint
    /// is then not taken at all.
    pub fn snapshot(&mut self) -> Result<Option<Vec<u8>>, String> {
        if self.partitioned() {
            return self.snapshot_partitions();
        }
        if !self.lanes.is_empty() {
            return self.snapshot_shards();
        }
        self.snapshot_one()
    }

    pub(super) fn snapshot_one(&mut self) -> Result<Option<Vec<u8>>, String> {
        match self.timed_snapshot() {
            Ok(state) => {
                self.recovery.rebase(state.as_deref());
                Ok(state)
            }
            Err(e) => {
                let why = format!(
                    "snapshot of stage `{}` failed: {}",
                    self.spec.name,
                    e.describe()
                );
                self.restart().map_err(|f| f.to_string())?;
                Err(why)
            }
        }
    }

    /// Loads a saved state (from a checkpoint) into the plugin, or its shards.
    pub fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        if self.partitioned() {
            return self.restore_partitions(state);
        }
        match self.lanes.is_empty() {
            true => self.restore_one(state),
            false => self.restore_shards(state),
        }
    }

    pub(super) fn restore_one(&mut self, state: &[u8]) -> Result<(), String> {
        if let Some((states, _)) = super::shards::unframe(state).filter(|_| self.lanes.is_empty()) {
            let count = states.len();
            return Err(format!(
                "the checkpoint holds the state of {count} shards, and the stage now has \
                 one: a state cannot be merged by key; set `shards` back to {count}"
            ));
        }
        self.instance.restore(state).map_err(|e| e.describe())?;
        self.recovery.rebase(Some(state));
        Ok(())
    }

    /// Replaces the instance with a fresh one in the state before the failed call: the
    /// base restored and the logged batches replayed.
    pub(super) fn restart(&mut self) -> Result<(), StageFatal> {
        let (mut inst, _) = instantiate(&self.spec)
            .map_err(|e| self.fatal(format!("restart failed: {}", e.describe())))?;
        let base = (self.recovery.base.load())
            .map_err(|e| self.fatal(format!("reading the recovery snapshot failed: {e}")))?;
        if let Some(state) = base {
            inst.restore(&state).map_err(|e| {
                self.fatal(format!("restore after restart failed: {}", e.describe()))
            })?;
        }
        let log = std::mem::take(&mut self.recovery.log);
        for (input, watermark) in &log {
            let (_, result) = match self.merging {
                true => inst.merge(input.clone(), *watermark),
                false => inst.process(input.clone(), *watermark),
            };
            if let Err(e) = result {
                return Err(self.fatal(format!(
                    "replaying the batches since the last snapshot failed ({}); the plugin \
                     does not give the same result for the same input",
                    e.describe()
                )));
            }
        }
        self.recovery.log = log;
        inst.take_reports();
        self.instance = inst;
        self.stats.restarts += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_full_at_a_mebibyte_or_half_the_state_s_size() {
        let mut r = Recovery::default();
        r.rebase(Some(&[0; 1000]));
        r.bytes = REDO_LIMIT - 1;
        assert!(!r.full());
        r.bytes = REDO_LIMIT;
        assert!(r.full());
        r.rebase(Some(&vec![0; 4 << 20]));
        r.bytes = (2 << 20) - 1;
        assert!(!r.full());
        r.bytes = 2 << 20;
        assert!(r.full());
    }
}
