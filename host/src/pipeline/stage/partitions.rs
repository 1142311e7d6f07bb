//! A stage spread over its source's partitions: one instance (a lane) per partition, each
//! with its own state and its partition's watermark, so that what a partition built is
//! saved apart and could move on its own. An aggregate's lanes emit partial windows — each
//! over its partition's events — which one more instance, the merger, merges into the
//! windows one instance over every partition would close, by the slowest partition's
//! watermark (the pipeline's). Only an aggregate that merges (`mergeable-aggregate`) is
//! spread; the stages before it, with or without state, are spread too.
//!
//! A lane closes its windows by its own partition's watermark, or the pipeline's when that
//! is later (a partition that went idle has its windows closed with the others'), so that
//! its partials always reach the merger before the merger's watermark passes them. In a
//! pipeline hosts share, a lane goes by its partition's own watermark alone, and its
//! partials go to the merging host (`pipeline/merge/`).

use super::frame::{FRAME, unframe, write};
use super::share::Share;
use super::{Refusal, Replacement, Stage, StageFatal, StageSpec};
use crate::batch::{DeadLetters, Envelope, Position};
use crate::pipeline::stats::StageStats;
use crate::plugin::{CallError, Role};
use std::sync::Arc;

/// The lanes' partitions, and the merger.
pub(super) struct Partitions {
    /// The partition each lane holds: the stage's own instance first, then its `lanes`.
    pub ids: Vec<i32>,
    /// Merges the lanes' partial windows (aggregates only).
    pub merger: Option<Box<Stage>>,
}

/// The input's positions (when every row has one) and each lane's output.
type LaneOutputs = (Option<Vec<Position>>, Vec<Vec<Envelope>>);

/// What each partition's lane closes windows by.
pub struct Watermarks<'a> {
    /// The pipeline's: the slowest active partition's.
    pub global: i64,
    /// A partition's own, from its latest event time.
    pub of: &'a dyn Fn(i32) -> i64,
}

impl Stage {
    /// Whether the stage can be spread over partitions: it reads nothing an aggregate
    /// made (`partition_local`), has one shard, and is no aggregate or one that merges.
    pub fn spreadable(&self) -> bool {
        let s = &self.spec;
        let merges = s.plugin.role() != Role::Aggregate || s.plugin.mergeable();
        s.partition_local && s.shards == 1 && s.canary.is_none() && merges
    }

    /// Spreads the stage over `ids` (more than one): an instance per partition, and a
    /// merger for an aggregate. Done once, before any batch or restore.
    pub fn spread(&mut self, ids: &[i32]) -> Result<(), CallError> {
        debug_assert!(self.lanes.is_empty() && self.partitions.is_none());
        self.spec.shards = ids.len();
        self.spec.partitioned = true;
        for _ in 1..ids.len() {
            let mut lane = Stage::start_one(self.spec.clone())?;
            // The histogram and recent rows are shared: status shows the stage as one.
            lane.stats.call_seconds = self.stats.call_seconds.clone();
            self.lanes.push(lane);
        }
        let merger = match self.spec.plugin.role() {
            Role::Aggregate => {
                let mut m = Stage::start_one(self.spec.clone())?;
                m.merging = true;
                // The merged windows are what the stage shows; the lanes' partials are not.
                m.stats.recent = self.stats.recent.clone();
                m.stats.call_seconds = self.stats.call_seconds.clone();
                Some(Box::new(m))
            }
            _ => None,
        };
        self.partitions = Some(Partitions {
            ids: ids.to_vec(),
            merger,
        });
        Ok(())
    }

    pub fn partitioned(&self) -> bool {
        self.partitions.is_some()
    }

    /// One batch through the partitions' lanes at once, each with its rows and its
    /// watermark; an aggregate's partials then through the merger.
    pub fn process_partitioned(
        &mut self,
        inputs: Vec<Envelope>,
        at: &Watermarks<'_>,
        dl: &mut DeadLetters,
    ) -> Result<Vec<Envelope>, StageFatal> {
        let (positions, outputs) = self.run_partitions(inputs, at, dl)?;
        let outputs = outputs.concat();
        match self.partitions.as_mut().and_then(|p| p.merger.as_mut()) {
            Some(merger) => merge_all(merger, partials(outputs), at.global, dl),
            None => Ok(super::shards::merge(outputs, positions.as_deref())),
        }
    }

    /// Each partition's rows through its lane, at its watermark: the input's positions
    /// (when every row has one) and each lane's output, in the order of the lanes.
    pub(super) fn run_partitions(
        &mut self,
        inputs: Vec<Envelope>,
        at: &Watermarks<'_>,
        dl: &mut DeadLetters,
    ) -> Result<LaneOutputs, StageFatal> {
        let ids = self.partition_ids();
        let marks: Vec<i64> = ids.iter().map(|&p| (at.of)(p).max(at.global)).collect();
        let (positions, shares) = cut_by_partition(inputs, &ids);
        let outputs = match self.any_on_trial() {
            // A new version's first batch: judged over every lane (`trial.rs`).
            true => {
                let flows = shares.into_iter().map(Share::take).collect();
                super::trial::run_shards(self, flows, &marks, dl)?
            }
            false => self.run_lanes(shares, &marks, dl)?,
        };
        Ok((positions, outputs))
    }

    /// The partitions the lanes hold, in lane order.
    pub fn partition_ids(&self) -> Vec<i32> {
        (self.partitions.as_ref()).map_or_else(Vec::new, |p| p.ids.clone())
    }

    /// Closes every open window: the lanes' partials merged, then whatever the merger
    /// holds.
    pub(super) fn flush_partitioned(
        &mut self,
        dl: &mut DeadLetters,
    ) -> Result<Vec<Envelope>, StageFatal> {
        let mut partial = self.flush_one(dl)?;
        for lane in &mut self.lanes {
            partial.extend(lane.flush_one(dl)?);
        }
        let Some(merger) = self.partitions.as_mut().and_then(|p| p.merger.as_mut()) else {
            return Ok(partial);
        };
        let mut out = merge_all(merger, partials(partial), i64::MAX, dl)?;
        out.extend(merger.flush_one(dl)?);
        Ok(out)
    }

    /// The counts of the lanes together, with the merger's work; the rows out are the
    /// merger's (the lanes' partials never leave the stage).
    pub(super) fn partition_totals(&self, mut total: StageStats) -> StageStats {
        let Some(m) = self.partitions.as_ref().and_then(|p| p.merger.as_ref()) else {
            return total;
        };
        let rows_in = total.rows_in;
        total.rows_out = 0;
        total.add(&m.stats);
        total.rows_in = rows_in;
        total
    }

    /// Puts `r` in the merger's place, with the merger's state, when the stage has one.
    pub(super) fn swap_merger(&mut self, r: Option<Box<Replacement>>) -> Result<(), Refusal> {
        let Some(merger) = self.partitions.as_mut().and_then(|p| p.merger.as_mut()) else {
            return Ok(());
        };
        let Some(r) = r else {
            return Err(Refusal::Shards { new: 0, running: 1 });
        };
        let state = (merger.instance.snapshot()).map_err(|e| Refusal::Snapshot(e.describe()))?;
        let mut instance = r.instance;
        if let Some(s) = &state {
            instance
                .restore(s)
                .map_err(|e| Refusal::Restore(e.describe()))?;
        }
        merger.instance = instance;
        merger.info = r.info;
        let to = std::mem::take(&mut merger.spec.to);
        merger.spec = StageSpec { to, ..r.spec };
        merger.recovery.rebase(state.as_deref());
        Ok(())
    }

    /// Every lane's state by partition, then the merger's: the frame, the number of
    /// lanes, each lane's partition and state (length u32::MAX: none), the merger's.
    pub(super) fn snapshot_partitions(&mut self) -> Result<Option<Vec<u8>>, String> {
        let ids = self.partition_ids();
        let mut states = vec![self.snapshot_one()?];
        for lane in &mut self.lanes {
            states.push(lane.snapshot_one()?);
        }
        let merger = match self.partitions.as_mut().and_then(|p| p.merger.as_mut()) {
            Some(m) => m.snapshot_one()?,
            None => None,
        };
        if merger.is_none() && states.iter().all(Option::is_none) {
            return Ok(None);
        }
        let mut out = FRAME.to_vec();
        out.extend((ids.len() as u32).to_le_bytes());
        for (id, state) in ids.iter().zip(&states) {
            out.extend(id.to_le_bytes());
            write(&mut out, state.as_deref());
        }
        write(&mut out, merger.as_deref());
        Ok(Some(out))
    }

    /// Restores a spread stage: a partition's state into its lane (a partition the stage
    /// no longer has is refused); a state from before the stage was spread — one instance
    /// over every partition — into the first lane: its windows are partial windows like
    /// any other, so nothing counts twice.
    pub(super) fn restore_partitions(&mut self, state: &[u8]) -> Result<(), String> {
        let ids = self.partition_ids();
        let Some((states, merger)) = unframe(state) else {
            return self.restore_one(state);
        };
        for (id, s) in states {
            let Some(at) = ids.iter().position(|&p| p == id) else {
                return Err(format!(
                    "the checkpoint holds the state of partition {id}, which the source no longer has"
                ));
            };
            let Some(s) = s else { continue };
            match at {
                0 => self.restore_one(s)?,
                k => self.lanes[k - 1].restore_one(s)?,
            }
        }
        if let (Some(s), Some(m)) = (
            merger,
            self.partitions.as_mut().and_then(|p| p.merger.as_mut()),
        ) {
            m.restore_one(s)?;
        }
        Ok(())
    }
}

/// The rows of each input by the partition of their position (rows without one go to the
/// first lane), for lanes holding `ids`; and every row's position, when all have one.
fn cut_by_partition(inputs: Vec<Envelope>, ids: &[i32]) -> (Option<Vec<Position>>, Vec<Share>) {
    let gather = |mut all: Vec<Position>, e: &Envelope| {
        all.extend(e.positions.as_ref()?);
        Some(all)
    };
    let positions = inputs.iter().try_fold(Vec::new(), gather);
    let mut picks: Vec<Vec<Vec<u32>>> = ids.iter().map(|_| Vec::new()).collect();
    for env in &inputs {
        let mut rows: Vec<Vec<u32>> = ids.iter().map(|_| Vec::new()).collect();
        for r in 0..env.rows() {
            let p = env.positions.as_ref().map(|p| p[r].partition);
            let lane = p
                .and_then(|p| ids.iter().position(|&q| q == p))
                .unwrap_or(0);
            rows[lane].push(r as u32);
        }
        for (pick, r) in picks.iter_mut().zip(rows) {
            pick.push(r);
        }
    }
    let inputs: Arc<[Envelope]> = inputs.into();
    let shares = picks
        .into_iter()
        .map(|picks| Share::new(inputs.clone(), picks))
        .collect();
    (positions, shares)
}

/// Every lane's partials through the merger, and only then its watermark: each batch of
/// partials but the last goes in with no watermark, so that no window closes before every
/// lane's partials for it are in (closed after the first lane's, the others' would be
/// late).
pub(super) fn merge_all(
    merger: &mut Stage,
    partials: Vec<Envelope>,
    watermark: i64,
    dl: &mut DeadLetters,
) -> Result<Vec<Envelope>, StageFatal> {
    let last = partials.len().saturating_sub(1);
    let mut out = Vec::new();
    for (k, env) in partials.into_iter().enumerate() {
        let at = if k == last { watermark } else { i64::MIN };
        out.extend(merger.process_one(vec![env], at, dl)?);
    }
    Ok(out)
}

/// The lanes' window rows as the merger's input; at least one (empty) batch, so that a
/// watermark alone closes windows.
pub(super) fn partials(outputs: Vec<Envelope>) -> Vec<Envelope> {
    let mut rows: Vec<Envelope> = outputs.into_iter().filter(|e| e.rows() > 0).collect();
    if rows.is_empty() {
        rows.push(Envelope {
            batch: adstream_sdk::Batch::empty(),
            positions: None,
        });
    }
    for e in &mut rows {
        e.positions = None;
    }
    rows
}
