//! Sharded stages in a row whose shards line up (a chain): each batch is cut once, and
//! each shard runs its piece through all of the chain's stages on its own thread, without
//! waiting for the other shards between stages. Shards line up when every stage has the
//! same count and a row's shard in the first stage is its shard in each later one: a
//! later stage keys by the first stage's columns or more of them, or keeps no state.

use super::shards::merge;
use super::share::{Share, cut};
use super::{Stage, StageFatal};
use crate::batch::{DeadLetters, Envelope};
use std::sync::Arc;

/// Whether stage `next` can run in the same chain as `first`, given that it reads only
/// the stage before it.
pub fn lines_up(first: &Stage, next: &Stage) -> bool {
    let (a, b) = (&first.spec, &next.spec);
    if a.shards < 2 || b.shards != a.shards || b.canary.is_some() || a.partitioned || b.partitioned
    {
        return false;
    }
    match b.shard_by.is_empty() {
        true => !b.plugin.stateful(),
        false => !a.shard_by.is_empty() && a.shard_by.iter().all(|c| b.shard_by.contains(c)),
    }
}

/// What one shard's run of the chain gave: each stage's output (kept only for stages that
/// send to sinks, and for the last), and its dead letters.
type LaneResult = (Result<Vec<Vec<Envelope>>, StageFatal>, DeadLetters);

/// Runs `inputs` through `stages` (a chain, see [`lines_up`]) shard by shard; returns each
/// stage's output, the shards' rows together.
pub fn process_chain(
    stages: &mut [Stage],
    inputs: Vec<Envelope>,
    watermark: i64,
    dl: &mut DeadLetters,
) -> Result<Vec<Vec<Envelope>>, StageFatal> {
    let n = stages[0].lanes.len() + 1;
    let by = stages[0].spec.shard_by.clone();
    let (positions, parts) = cut(inputs, &by, &mut stages[0].router, n);
    // A later stage keyed alike keeps the placements too (they go into its checkpoint), so
    // that run on its own (restarted with the chain changed) it sends each key to the shard
    // that holds its state.
    let (first, later) = stages.split_at_mut(1);
    for stage in later.iter_mut().filter(|s| s.spec.shard_by == by) {
        stage.router.follow(&first[0].router);
    }
    if stages.iter().any(Stage::any_on_trial) {
        return super::trial::run_chain(stages, parts, positions, watermark, dl);
    }
    // Shard k's instances of every stage, moved out for the call (shard 0 is the stages).
    let mut lanes: Vec<Vec<Stage>> = (1..n).map(|_| Vec::new()).collect();
    for stage in stages.iter_mut() {
        for (k, lane) in std::mem::take(&mut stage.lanes).into_iter().enumerate() {
            lanes[k].push(lane);
        }
    }
    // Which stages' outputs go to sinks: the first shard's settings are the stage's own
    // (a rewire changes only those).
    let keep: Arc<[bool]> = stages.iter().map(|s| !s.spec.to.is_empty()).collect();
    let mut parts = parts.into_iter();
    let own = parts.next();
    let source: Arc<str> = dl.source().into();
    let count = lanes.len();
    let running: Vec<_> = (lanes.into_iter().zip(parts).zip(stages[0].workers(count)))
        .map(|((mut chain, part), worker)| {
            let (source, keep) = (source.clone(), keep.clone());
            worker.run(move || {
                let mut dl = DeadLetters::new(&source);
                let out = run(chain.iter_mut(), &keep, part.take(), watermark, &mut dl);
                (chain, (out, dl))
            })
        })
        .collect();
    let mut own_dl = DeadLetters::new(&source);
    // Taken once the other shards are under way.
    let own = own.map(Share::take).unwrap_or_default();
    let own = run(stages.iter_mut(), &keep, own, watermark, &mut own_dl);
    let mut results: Vec<LaneResult> = vec![(own, own_dl)];
    let mut lanes = Vec::with_capacity(running.len());
    for job in running {
        let (chain, result) = job.wait();
        lanes.push(chain);
        results.push(result);
    }
    let count = stages.len();
    for (stage, extra) in stages.iter_mut().zip(transpose(lanes, count)) {
        stage.lanes = extra;
    }
    let mut per_lane = Vec::with_capacity(n);
    for (result, lane_dl) in results {
        dl.extend(lane_dl);
        per_lane.push(result?);
    }
    Ok((0..stages.len())
        .map(|s| {
            let outs: Vec<Envelope> = per_lane
                .iter_mut()
                .flat_map(|l| std::mem::take(&mut l[s]))
                .collect();
            merge(outs, positions.as_deref())
        })
        .collect())
}

/// One shard's piece through its instances of the chain's stages.
fn run<'a>(
    chain: impl Iterator<Item = &'a mut Stage>,
    keep: &[bool],
    input: Vec<Envelope>,
    watermark: i64,
    dl: &mut DeadLetters,
) -> Result<Vec<Vec<Envelope>>, StageFatal> {
    let mut chain = chain.zip(keep).peekable();
    let (mut flow, mut outs) = (input, Vec::new());
    while let Some((stage, &keep)) = chain.next() {
        flow = stage.process_one(flow, watermark, dl)?;
        if chain.peek().is_none() {
            outs.push(flow);
            break;
        }
        // Only what goes to sinks is kept; the next stage takes the rest.
        outs.push(match keep {
            true => flow.clone(),
            false => Vec::new(),
        });
    }
    Ok(outs)
}

/// Per shard, each stage's instance → per stage, its shards' instances.
fn transpose(lanes: Vec<Vec<Stage>>, stages: usize) -> Vec<Vec<Stage>> {
    let mut out: Vec<Vec<Stage>> = (0..stages).map(|_| Vec::new()).collect();
    for lane in lanes {
        for (s, stage) in lane.into_iter().enumerate() {
            out[s].push(stage);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::fake::sharded as stage;

    fn sharded(shards: usize, by: &[&str]) -> Stage {
        stage(crate::pipeline::stage::Input::Source, shards, by)
    }

    #[test]
    fn shards_line_up_when_a_later_key_holds_the_first() {
        let first = sharded(2, &["id"]);
        assert!(lines_up(&first, &sharded(2, &["id"])));
        assert!(lines_up(&first, &sharded(2, &["x", "id"])));
        assert!(!lines_up(&first, &sharded(2, &["x"])), "another key");
        assert!(!lines_up(&first, &sharded(3, &["id"])), "another count");
        assert!(
            !lines_up(&sharded(2, &[]), &sharded(2, &["id"])),
            "runs, then keys"
        );
        assert!(
            !lines_up(&sharded(1, &["id"]), &sharded(1, &["id"])),
            "one shard"
        );
    }

    #[test]
    fn a_chain_gives_each_stage_every_row_once() {
        let mut stages = vec![sharded(2, &["id"]), sharded(2, &["id"])];
        let ids: Vec<String> = (0..40).map(|i| format!("e{i}")).collect();
        let env = crate::pipeline::fake::rows(&ids.iter().map(String::as_str).collect::<Vec<_>>());
        let mut dl = DeadLetters::new("test");
        let outs = process_chain(&mut stages, vec![env], 0, &mut dl).unwrap();
        assert_eq!(outs.len(), 2);
        assert!(
            outs[0].is_empty(),
            "the first stage sends nothing to sinks: not kept"
        );
        assert_eq!(outs[1].iter().map(Envelope::rows).sum::<usize>(), 40);
        for s in &stages {
            assert_eq!((s.totals().rows_in, s.totals().calls), (40, 2));
            assert_eq!(s.lanes.len(), 1, "the other shard's instance is back");
        }
        // A rewire sends the first stage to a sink: only the stage's own settings change,
        // and every shard's rows must reach it.
        stages[0].spec.to = vec![0];
        let env = crate::pipeline::fake::rows(&ids.iter().map(String::as_str).collect::<Vec<_>>());
        let outs = process_chain(&mut stages, vec![env], 0, &mut dl).unwrap();
        assert_eq!(outs[0].iter().map(Envelope::rows).sum::<usize>(), 40);
    }
}
