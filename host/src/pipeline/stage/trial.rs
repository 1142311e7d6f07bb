//! A swapped-in version's first batch in a sharded stage: its trial. The new version stays
//! only if no shard's instance of it fails the batch; if one does, every shard goes back to
//! the old version, and the shards whose new instance had passed run their share again on
//! the old one (its state untouched since the swap), so that no row counts twice. Judged
//! shard by shard, one shard could keep the new version while another went back, and the
//! swap be reported refused. Shards run one after another here, on the processor's thread:
//! it happens for one batch per swap.

use super::share::{Share, cut};
use super::{Refusal, Stage, StageFatal};
use crate::batch::{DeadLetters, Envelope, Position};
use crate::pipeline::stats::StageStats;

/// What going back needs: the instance's input and its counts from before the batch.
struct Kept {
    input: Vec<Envelope>,
    stats: StageStats,
}

impl Stage {
    /// Whether this instance or another shard's is on trial.
    pub(super) fn any_on_trial(&self) -> bool {
        self.on_trial() || self.lanes.iter().any(Stage::on_trial)
    }

    /// Holds the trial's verdict for the other shards; `None` if not on trial.
    fn hold(&mut self, input: &[Envelope]) -> Option<Kept> {
        let p = self.probation.as_mut().filter(|p| p.passed.is_none())?;
        p.held = true;
        Some(Kept {
            input: input.to_vec(),
            stats: self.stats.clone(),
        })
    }

    /// One batch through a sharded stage on trial: each shard its share.
    pub(super) fn process_trial(
        &mut self,
        inputs: Vec<Envelope>,
        watermark: i64,
        dl: &mut DeadLetters,
    ) -> Result<Vec<Envelope>, StageFatal> {
        let n = self.lanes.len() + 1;
        let (positions, parts) = cut(inputs, &self.spec.shard_by, &mut self.router, n);
        let flows = parts.into_iter().map(Share::take).collect();
        let outs = run_shards(self, flows, &vec![watermark; n], dl)?;
        Ok(super::shards::merge(outs.concat(), positions.as_deref()))
    }
}

/// A chain's batch while one of its stages is on trial: stage after stage, each shard's
/// flow kept apart as the chain keeps it (a later stage's instance in a shard holds the
/// keys of that shard), the trial judged at its stage; each stage's output, as
/// `process_chain` gives it.
pub(super) fn run_chain(
    stages: &mut [Stage],
    parts: Vec<Share>,
    positions: Option<Vec<Position>>,
    watermark: i64,
    dl: &mut DeadLetters,
) -> Result<Vec<Vec<Envelope>>, StageFatal> {
    let mut flows: Vec<Vec<Envelope>> = parts.into_iter().map(Share::take).collect();
    let last = stages.len().saturating_sub(1);
    let mut outs = Vec::with_capacity(stages.len());
    for (i, stage) in stages.iter_mut().enumerate() {
        let marks = vec![watermark; flows.len()];
        flows = run_shards(stage, flows, &marks, dl)?;
        let kept = match (i == last, stage.spec.to.is_empty()) {
            (true, _) => std::mem::take(&mut flows).concat(),
            (false, false) => flows.concat(),
            (false, true) => Vec::new(),
        };
        outs.push(super::shards::merge(kept, positions.as_deref()));
    }
    Ok(outs)
}

/// Each shard's flow through its instance of `stage` (the stage itself first), each with
/// its watermark (`marks`), the trial judged over all of them; each shard's output.
pub(super) fn run_shards(
    stage: &mut Stage,
    flows: Vec<Vec<Envelope>>,
    marks: &[i64],
    dl: &mut DeadLetters,
) -> Result<Vec<Vec<Envelope>>, StageFatal> {
    let mut lanes = std::mem::take(&mut stage.lanes);
    let result = {
        let mut all: Vec<&mut Stage> = std::iter::once(&mut *stage)
            .chain(lanes.iter_mut())
            .collect();
        run_judged(&mut all, flows, marks, dl)
    };
    stage.lanes = lanes;
    result
}

/// Runs `flows[k]` through `instances[k]` at `marks[k]`, then keeps the new version on
/// every instance or on none.
fn run_judged(
    instances: &mut [&mut Stage],
    flows: Vec<Vec<Envelope>>,
    marks: &[i64],
    dl: &mut DeadLetters,
) -> Result<Vec<Vec<Envelope>>, StageFatal> {
    let source = dl.source().to_string();
    let mut runs = Vec::with_capacity(flows.len());
    for ((stage, flow), &watermark) in instances.iter_mut().zip(flows).zip(marks) {
        let kept = stage.hold(&flow);
        let mut own = DeadLetters::new(&source);
        let out = stage.process_one(flow, watermark, &mut own)?;
        runs.push((kept, out, own, watermark));
    }
    let failed = (instances.iter().zip(&runs)).any(|(s, r)| r.0.is_some() && s.probation.is_none());
    let passed = instances
        .iter()
        .any(|s| s.probation.as_ref().is_some_and(|p| p.passed.is_some()));
    for (stage, (kept, out, own, watermark)) in instances.iter_mut().zip(&mut runs) {
        let Some(kept) = kept.take().filter(|_| stage.probation.is_some()) else {
            continue;
        };
        if failed {
            stage.stats = kept.stats;
            // The swap's requester hears the failing shard's own reason (`shards.rs`).
            stage.end_probation(Err(Refusal::Followed));
            *own = DeadLetters::new(&source);
            *out = stage.process_one(kept.input, *watermark, own)?;
        } else if passed {
            let took = stage.probation.as_ref().and_then(|p| p.passed);
            stage.end_probation(Ok(took));
        } else if let Some(p) = stage.probation.as_mut() {
            // No shard had a row for it: the trial is the next batch.
            p.held = false;
        }
    }
    Ok(runs
        .into_iter()
        .map(|(_, out, own, _)| {
            dl.extend(own);
            out
        })
        .collect())
}
