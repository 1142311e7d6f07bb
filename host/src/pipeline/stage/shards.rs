//! A stage with shards: `shards` instances of its plugin, each with its own state, share
//! the stage's rows and run at once, each on a thread of its own (the first on the
//! processor's). With `shard_by`, a row goes to the shard its values hash to, so a key's
//! state lives in one shard only and the shards together emit the rows one instance would
//! (grouped by shard rather than in input order). Without it (stateless plugins) the rows
//! are cut into consecutive runs, so the output keeps their order.
//!
//! A key is the hash (CRC-32) of its values' bytes; `route.rs` places each key on a
//! shard, and the placements are checkpointed with the states, so a restarted host sends
//! each key back to the shard whose state holds it.

use super::route::Router;
use super::share::{Share, cut};
use super::worker::Worker;
use super::{Refusal, Replacement, Stage, StageFatal, SwapOutcome};
use crate::batch::interleave::in_input_order;
use crate::batch::{DeadLetters, Envelope, Position};
use crate::pipeline::stats::StageStats;
use tokio::sync::oneshot;

/// Marks a checkpointed state as one per shard (a plugin's own state never starts so: a
/// sharded stage's states are framed by the host), followed by the keys' placements.
const FRAME: &[u8; 8] = b"ADSHARD2";
/// The frame of checkpoints from before keys were placed: states only, every key by hash.
const FRAME_BY_HASH: &[u8; 8] = b"ADSHARDS";

impl Stage {
    pub(super) fn process_shards(
        &mut self,
        inputs: Vec<Envelope>,
        watermark: i64,
        dl: &mut DeadLetters,
    ) -> Result<Vec<Envelope>, StageFatal> {
        if self.any_on_trial() {
            return self.process_trial(inputs, watermark, dl);
        }
        let n = self.lanes.len() + 1;
        let (positions, parts) = cut(inputs, &self.spec.shard_by, &mut self.router, n);
        let outputs = self.run_lanes(parts, &vec![watermark; n], dl)?;
        Ok(merge(outputs.concat(), positions.as_deref()))
    }

    /// Each lane's share through it at its watermark (`marks[k]`), at once: the other
    /// lanes on their threads, the stage's own instance here. Each lane's output.
    pub(super) fn run_lanes(
        &mut self,
        shares: Vec<Share>,
        marks: &[i64],
        dl: &mut DeadLetters,
    ) -> Result<Vec<Vec<Envelope>>, StageFatal> {
        let mut parts = shares.into_iter();
        let own = parts.next();
        let source: std::sync::Arc<str> = dl.source().into();
        let lanes = std::mem::take(&mut self.lanes);
        let count = lanes.len();
        let lane_marks = marks.iter().skip(1).copied();
        let running: Vec<_> = (lanes.into_iter().zip(parts).zip(lane_marks))
            .zip(self.workers(count))
            .map(|(((mut lane, part), watermark), worker)| {
                let source = source.clone();
                worker.run(move || {
                    let mut dl = DeadLetters::new(&source);
                    let out = lane.process_one(part.take(), watermark, &mut dl);
                    (lane, out, dl)
                })
            })
            .collect();
        // Taken once the other lanes are under way.
        let own = own.map(Share::take).unwrap_or_default();
        let own = self.process_one(own, marks[0], dl);
        let mut others = Vec::with_capacity(running.len());
        for job in running {
            let (lane, out, lane_dl) = job.wait();
            self.lanes.push(lane);
            others.push((out, lane_dl));
        }
        let mut outputs = vec![own?];
        for (out, lane_dl) in others {
            outputs.push(out?);
            dl.extend(lane_dl);
        }
        Ok(outputs)
    }

    /// A thread for each of `count` other shards.
    pub(super) fn workers(&mut self, count: usize) -> &[Worker] {
        while self.workers.len() < count {
            let name = format!("shard-{}", self.workers.len() + 1);
            // As `std::thread::spawn`, a thread that cannot be started is a panic.
            let worker = Worker::start(name).expect("starting a shard's thread");
            self.workers.push(worker);
        }
        &self.workers
    }

    /// The stage's counts: every shard's together.
    pub fn totals(&self) -> StageStats {
        let mut total = self.stats.clone();
        for lane in &self.lanes {
            total.add(&lane.stats);
        }
        self.partition_totals(total)
    }

    /// Every shard's state, framed: the frame mark, the number of shards, then each
    /// state's length (u32::MAX: none) and bytes, then the keys' placements.
    pub(super) fn snapshot_shards(&mut self) -> Result<Option<Vec<u8>>, String> {
        let mut states = vec![self.snapshot_one()?];
        for lane in &mut self.lanes {
            states.push(lane.snapshot_one()?);
        }
        if states.iter().all(Option::is_none) {
            return Ok(None);
        }
        let mut out = FRAME.to_vec();
        out.extend((states.len() as u32).to_le_bytes());
        for state in &states {
            let len = state.as_ref().map_or(u32::MAX, |s| s.len() as u32);
            out.extend(len.to_le_bytes());
            out.extend(state.iter().flatten());
        }
        self.router.write(&mut out);
        Ok(Some(out))
    }

    pub(super) fn restore_shards(&mut self, state: &[u8]) -> Result<(), String> {
        let n = self.lanes.len() + 1;
        let (states, placed) = unframe(state).ok_or_else(|| {
            format!(
                "the checkpoint holds the state of one instance, and the stage now has {n} \
                 shards: a state cannot be split by key; set `shards` back to 1"
            )
        })?;
        if states.len() != n {
            let count = states.len();
            return Err(format!(
                "the checkpoint holds the state of {count} shards, and the stage now has \
                 {n}: a state cannot be split or merged by key; set `shards` back to {count}"
            ));
        }
        self.router = match placed {
            Some(bytes) => Router::read(bytes, n)
                .ok_or("the checkpoint's placements of keys on shards are damaged")?,
            None => Router::by_hash(),
        };
        let mut states = states.into_iter();
        if let Some(Some(s)) = states.next() {
            self.restore_one(s)?;
        }
        for (lane, state) in self.lanes.iter_mut().zip(states) {
            if let Some(s) = state {
                lane.restore_one(s)?;
            }
        }
        Ok(())
    }

    /// Swaps every shard to its own instance of the new version; the requester hears
    /// once each shard's new instance has passed (or failed) its first batch.
    pub(super) fn swap_shards(&mut self, mut r: Replacement, reply: oneshot::Sender<SwapOutcome>) {
        // A spread aggregate's merger first: its state handed over now (it merges the
        // lanes' partials, whichever version made them); if that fails nothing changed.
        if let Err(why) = self.swap_merger(r.merger.take()) {
            let _ = reply.send(SwapOutcome::Rejected(why));
            return;
        }
        let extra = std::mem::take(&mut r.lanes);
        if extra.len() != self.lanes.len() {
            let why = Refusal::Shards {
                new: extra.len() + 1,
                running: self.lanes.len() + 1,
            };
            let _ = reply.send(SwapOutcome::Rejected(why));
            return;
        }
        let mut answers = Vec::with_capacity(extra.len() + 1);
        let (tx, rx) = oneshot::channel();
        self.swap_one(r, tx);
        answers.push(rx);
        for (lane, lr) in self.lanes.iter_mut().zip(extra) {
            let (tx, rx) = oneshot::channel();
            lane.swap_one(lr, tx);
            answers.push(rx);
        }
        // The answers come at the shards' first batches; waiting for them must not hold
        // up the processor.
        std::thread::spawn(move || {
            let outcomes: Vec<SwapOutcome> = answers
                .into_iter()
                .filter_map(|rx| rx.blocking_recv().ok())
                .collect();
            // The shard whose instance failed says why; the others only followed it.
            let refused = |own: bool| {
                (outcomes.iter()).find(
                    |o| matches!(o, SwapOutcome::Rejected(r) if own != (*r == Refusal::Followed)),
                )
            };
            if let Some(o) = refused(true).or(refused(false)).or(outcomes.first()) {
                let _ = reply.send(o.clone());
            }
        });
    }
}

/// The shards' outputs together. Rows that are the input's own (a validate or transform
/// stage's, which carry their source positions) go on in the input's order, as one
/// instance would pass them, when the shards were keyed (`positions` given).
pub(super) fn merge(outputs: Vec<Envelope>, positions: Option<&[Position]>) -> Vec<Envelope> {
    positions
        .filter(|_| !outputs.is_empty())
        .and_then(|p| in_input_order(p, &outputs))
        .map_or(outputs, |env| vec![env])
}

/// The states of a framed snapshot, and the placements of keys after them (`None`: the
/// frame from before keys were placed); `None` if `state` is not one.
pub(super) fn unframe(state: &[u8]) -> Option<Framed<'_>> {
    let (mut rest, placed) = match state.strip_prefix(FRAME.as_slice()) {
        Some(rest) => (rest, true),
        None => (state.strip_prefix(FRAME_BY_HASH.as_slice())?, false),
    };
    let mut take = |len: usize| -> Option<&[u8]> {
        let (head, tail) = (rest.get(..len)?, rest.get(len..)?);
        rest = tail;
        Some(head)
    };
    let word = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes"));
    let n = word(take(4)?);
    let mut states = Vec::new();
    for _ in 0..n {
        let len = word(take(4)?);
        states.push(match len {
            u32::MAX => None,
            len => Some(take(len as usize)?),
        });
    }
    Some((states, placed.then_some(rest)))
}

/// Each shard's state (if it has one), and the placements' bytes.
pub(super) type Framed<'a> = (Vec<Option<&'a [u8]>>, Option<&'a [u8]>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framed_states_come_back_as_they_went() {
        let mut framed = FRAME.to_vec();
        framed.extend(2u32.to_le_bytes());
        framed.extend(3u32.to_le_bytes());
        framed.extend(b"abc");
        framed.extend(u32::MAX.to_le_bytes());
        framed.extend(b"placed");
        let states = vec![Some(&b"abc"[..]), None];
        assert_eq!(
            unframe(&framed),
            Some((states.clone(), Some(&b"placed"[..])))
        );
        assert_eq!(unframe(b"plain state"), None);
        assert_eq!(unframe(&framed[..framed.len() - 12]), None);
        // A checkpoint from before keys were placed: every key went by hash.
        framed[..8].copy_from_slice(FRAME_BY_HASH);
        framed.truncate(framed.len() - 6);
        assert_eq!(unframe(&framed), Some((states, None)));
    }
}
