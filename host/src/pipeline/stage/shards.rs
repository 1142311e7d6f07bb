//! A stage with shards: `shards` instances of its plugin, each with its own state, share
//! the stage's rows and run at once, each on a thread of its own (the first on the
//! processor's). With `shard_by`, a row goes to the shard its values hash to, so a key's
//! state lives in one shard only and the shards together emit the rows one instance would
//! (grouped by shard rather than in input order). Without it (stateless plugins) the rows
//! are cut into consecutive runs, so the output keeps their order.
//!
//! The hash is CRC-32 of the values' bytes: it depends on nothing but the values, so a
//! restarted host sends each key back to the shard whose checkpointed state holds it.

use super::{Replacement, Stage, StageFatal, SwapOutcome};
use crate::batch::interleave::in_input_order;
use crate::batch::{DeadLetters, Envelope, Position};
use crate::pipeline::stats::StageStats;
use adstream_sdk::{Batch, Column, Strings, Values};
use tokio::sync::oneshot;

/// Marks a checkpointed state as one per shard (a plugin's own state never starts so: a
/// sharded stage's states are framed by the host).
const FRAME: &[u8; 8] = b"ADSHARDS";

impl Stage {
    pub(super) fn process_shards(
        &mut self,
        inputs: Vec<Envelope>,
        watermark: i64,
        dl: &mut DeadLetters,
    ) -> Result<Vec<Envelope>, StageFatal> {
        let n = self.lanes.len() + 1;
        let keyed = !self.spec.shard_by.is_empty();
        let (positions, parts) = cut(inputs, &self.spec.shard_by, n);
        let positions = positions.filter(|_| keyed);
        let mut parts = parts.into_iter();
        let own = parts.next().unwrap_or_default();
        let source = dl.source().to_string();
        let mut lanes = std::mem::take(&mut self.lanes);
        let (own, others) = std::thread::scope(|s| {
            let running: Vec<_> = lanes
                .iter_mut()
                .zip(parts)
                .map(|(lane, part)| {
                    let source = &source;
                    s.spawn(move || {
                        let mut dl = DeadLetters::new(source);
                        (lane.process_one(part, watermark, &mut dl), dl)
                    })
                })
                .collect();
            let own = self.process_one(own, watermark, dl);
            let others: Vec<_> = running
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect();
            (own, others)
        });
        self.lanes = lanes;
        let mut outputs = own?;
        for (out, lane_dl) in others {
            outputs.extend(out?);
            dl.extend(lane_dl);
        }
        Ok(merge(outputs, positions.as_deref()))
    }

    /// The stage's counts: every shard's together.
    pub fn totals(&self) -> StageStats {
        let mut total = self.stats.clone();
        for lane in &self.lanes {
            total.add(&lane.stats);
        }
        total
    }

    /// Every shard's state, framed: the frame mark, the number of shards, then each
    /// state's length (u32::MAX: none) and bytes.
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
        Ok(Some(out))
    }

    pub(super) fn restore_shards(&mut self, state: &[u8]) -> Result<(), String> {
        let n = self.lanes.len() + 1;
        let states = unframe(state).ok_or_else(|| {
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
        let extra = std::mem::take(&mut r.lanes);
        if extra.len() != self.lanes.len() {
            let why = format!(
                "the new version has {} shard(s) and the running stage {}",
                extra.len() + 1,
                self.lanes.len() + 1
            );
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
            let refused = outcomes
                .iter()
                .find(|o| matches!(o, SwapOutcome::Rejected(_)));
            if let Some(o) = refused.or(outcomes.first()) {
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

/// The states of a framed snapshot; `None` if `state` is not one.
pub(super) fn unframe(state: &[u8]) -> Option<Vec<Option<&[u8]>>> {
    let mut rest = state.strip_prefix(FRAME.as_slice())?;
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
    Some(states)
}

/// The input's source positions (if every row has one), and its piece for each shard.
pub(super) fn cut(
    inputs: Vec<Envelope>,
    by: &[String],
    n: usize,
) -> (Option<Vec<Position>>, Vec<Vec<Envelope>>) {
    let positions = inputs.iter().try_fold(Vec::new(), |mut all, e| {
        all.extend(e.positions.as_ref()?);
        Some(all)
    });
    let mut parts: Vec<Vec<Envelope>> = (0..n).map(|_| Vec::new()).collect();
    for env in inputs {
        for (part, piece) in parts.iter_mut().zip(split(env, by, n)) {
            part.push(piece);
        }
    }
    (positions, parts)
}

/// `env` cut into `n` pieces, one per shard (some may be empty).
fn split(env: Envelope, by: &[String], n: usize) -> Vec<Envelope> {
    let rows = env.rows();
    let mut picks: Vec<Vec<u32>> = (0..n).map(|_| Vec::new()).collect();
    if by.is_empty() {
        let per = rows.div_ceil(n).max(1);
        for (r, pick) in (0..rows as u32).zip((0..rows).map(|r| r / per)) {
            picks[pick].push(r);
        }
    } else {
        for (r, h) in row_hashes(&env.batch, by).into_iter().enumerate() {
            picks[(h % n as u64) as usize].push(r as u32);
        }
    }
    picks.iter().map(|p| env.take(p)).collect()
}

/// A hash per row of the values in the columns `by`.
fn row_hashes(batch: &Batch, by: &[String]) -> Vec<u64> {
    const NULL: u32 = 0x9e37_79b9;
    let mut hashes = vec![0u64; batch.len()];
    for col in by.iter().filter_map(|name| batch.column(name)) {
        // A dictionary's values are hashed once per batch, not once per row.
        let entries: Vec<u32> = match &col.values {
            Values::Dictionary(d) => (0..d.values.offsets.len().saturating_sub(1))
                .map(|i| text_hash(&d.values, i))
                .collect(),
            _ => Vec::new(),
        };
        for (r, h) in hashes.iter_mut().enumerate() {
            let v = match &col.values {
                _ if !col.is_valid(r) => NULL,
                Values::Dictionary(d) => entries[d.keys[r] as usize],
                _ => value_hash(col, r),
            };
            *h = (*h ^ u64::from(v)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    // Spread the bits, so that a small shard count sees all of them.
    hashes.iter().map(|&h| h ^ (h >> 29)).collect()
}

fn text_hash(s: &Strings, i: usize) -> u32 {
    let (a, b) = (s.offsets[i] as usize, s.offsets[i + 1] as usize);
    crc32fast::hash(&s.bytes[a..b])
}

fn value_hash(col: &Column, r: usize) -> u32 {
    match &col.values {
        Values::Int64(v) | Values::TimestampMs(v) => crc32fast::hash(&v[r].to_le_bytes()),
        Values::Float64(v) => crc32fast::hash(&v[r].to_bits().to_le_bytes()),
        Values::Boolean(v) => crc32fast::hash(&[v[r]]),
        Values::Text(s) => text_hash(s, r),
        Values::Dictionary(d) => text_hash(&d.values, d.keys[r] as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use adstream_sdk::{DictBuilder, I64Builder};

    fn batch(countries: &[&str]) -> Envelope {
        let mut c = DictBuilder::default();
        let mut i = I64Builder::default();
        for (n, v) in countries.iter().enumerate() {
            c.push(v);
            i.push(n as i64);
        }
        let batch = Batch::from_columns(vec![c.finish("country"), i.finish("n")]).unwrap();
        Envelope {
            batch,
            positions: None,
        }
    }

    fn column(env: &Envelope, name: &str) -> Vec<String> {
        let b = &env.batch;
        (0..b.len())
            .map(|r| crate::batch::encode::row_json(b, r))
            .map(|row| {
                let v: serde_json::Value = serde_json::from_str(&row).unwrap();
                v[name].to_string()
            })
            .collect()
    }

    #[test]
    fn a_key_goes_to_the_same_shard_in_every_batch() {
        let by = ["country".to_string()];
        let mut shard_of = std::collections::BTreeMap::new();
        let batches = [
            vec!["KR", "US", "JP", "KR", "DE"],
            vec!["DE", "JP", "US", "KR", "FR"],
        ];
        for countries in batches {
            let parts = split(batch(&countries), &by, 2);
            assert_eq!(parts.iter().map(Envelope::rows).sum::<usize>(), 5);
            for (shard, part) in parts.iter().enumerate() {
                for key in column(part, "country") {
                    assert_eq!(
                        *shard_of.entry(key.clone()).or_insert(shard),
                        shard,
                        "{key}"
                    );
                }
            }
        }
        let used: std::collections::BTreeSet<_> = shard_of.values().collect();
        assert_eq!(
            used.len(),
            2,
            "five keys all hashed to one shard: {shard_of:?}"
        );
    }

    #[test]
    fn without_keys_rows_are_cut_into_runs_in_order() {
        let parts = split(batch(&["a", "b", "c", "d", "e"]), &[], 2);
        let runs: Vec<Vec<String>> = parts.iter().map(|p| column(p, "n")).collect();
        assert_eq!(runs, vec![vec!["0", "1", "2"], vec!["3", "4"]]);
    }

    #[test]
    fn framed_states_come_back_as_they_went() {
        let mut framed = FRAME.to_vec();
        framed.extend(2u32.to_le_bytes());
        framed.extend(3u32.to_le_bytes());
        framed.extend(b"abc");
        framed.extend(u32::MAX.to_le_bytes());
        assert_eq!(unframe(&framed), Some(vec![Some(&b"abc"[..]), None]));
        assert_eq!(unframe(b"plain state"), None);
        assert_eq!(unframe(&framed[..framed.len() - 6]), None);
    }
}
