//! What the merging host knows of the partials topic: where it reads next, every lane's
//! mark (a lane is a stage's instance for one source partition), and per lane the latest
//! window it merged — so that a lane read
//! again from its partition's cut (after a host died or a partition moved) merges none of
//! its windows twice. Checkpointed with partition 0, whose owner merges.

use super::wire::{self, Header};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A lane: the stage and the source partition.
type Lane = (String, i32);

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    /// The offset of the next partials message to read.
    pub next: i64,
    /// How many partitions the source has (from the lanes' messages).
    of: u32,
    /// Each lane's latest mark. Per stage: a lane's mark comes after that lane's partials,
    /// not after another stage's lane of the same partition.
    marks: BTreeMap<Lane, i64>,
    /// Per lane, the latest window start merged.
    done: BTreeMap<Lane, i64>,
    /// Per lane, the rows of a lane output whose parts are not all in yet.
    pending: BTreeMap<Lane, Vec<Vec<u8>>>,
}

/// A lane output, whole, with the rows of windows not merged before.
#[derive(Debug, PartialEq)]
pub struct Admitted {
    pub stage: String,
    pub partition: i32,
    pub rows: Vec<Vec<u8>>,
}

/// The part of a row the gate reads.
#[derive(Deserialize)]
struct Start {
    window_start: i64,
}

impl Gate {
    /// Takes the message at `offset`: a lane output once its last part is in.
    pub fn admit(&mut self, offset: i64, message: &[u8]) -> Result<Option<Admitted>, String> {
        self.next = self.next.max(offset + 1);
        let (head, rows) = wire::decode(message)?;
        let Header {
            stage,
            partition,
            of,
            mark,
            part,
            parts,
        } = head;
        self.of = self.of.max(of);
        let lane = (stage, partition);
        let pending = self.pending.entry(lane.clone()).or_default();
        // A first part drops what an earlier output left unfinished: its sender died
        // before the rest, and the lane's next owner sends that output again, whole.
        if part == 0 {
            pending.clear();
        }
        pending.extend(rows.into_iter().map(<[u8]>::to_vec));
        if part + 1 < parts {
            return Ok(None);
        }
        let rows = self.pending.remove(&lane).unwrap_or_default();
        let rows = self.fresh(&lane, rows)?;
        let m = self.marks.entry(lane.clone()).or_insert(mark);
        *m = (*m).max(mark);
        Ok(Some(Admitted {
            stage: lane.0,
            partition,
            rows,
        }))
    }

    /// The rows of windows after the lane's latest merged one. A lane closes each window
    /// once, in order, so a window at or before it was merged already (from the host
    /// that had the partition before its last cut was read again).
    fn fresh(&mut self, lane: &Lane, rows: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, String> {
        let done = self.done.get(lane).copied().unwrap_or(i64::MIN);
        let mut latest = done;
        let n = rows.len();
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let start = serde_json::from_slice::<Start>(&row)
                .map_err(|e| format!("a partial row without a window_start: {e}"))?
                .window_start;
            if start > done {
                latest = latest.max(start);
                out.push(row);
            }
        }
        self.done.insert(lane.clone(), latest);
        if out.len() < n {
            tracing::debug!(
                stage = lane.0,
                partition = lane.1,
                done,
                dropped = n - out.len(),
                "partials merged before"
            );
        }
        Ok(out)
    }

    /// The watermark of `stage`'s merged windows: its slowest lane's mark, once every
    /// partition's lane has one.
    pub fn watermark(&self, stage: &str) -> i64 {
        let marks = self.marks.iter().filter(|((s, _), _)| s == stage);
        let marks: Vec<i64> = marks.map(|(_, &m)| m).collect();
        match self.of > 0 && marks.len() >= self.of as usize {
            true => marks.into_iter().min().unwrap_or(i64::MIN),
            false => i64::MIN,
        }
    }

    /// The slowest stage's merged watermark (for status).
    pub fn slowest(&self) -> i64 {
        let stages: std::collections::BTreeSet<&str> =
            self.marks.keys().map(|(s, _)| s.as_str()).collect();
        let marks = stages.into_iter().map(|s| self.watermark(s));
        marks.min().unwrap_or(i64::MIN)
    }

    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("a gate is plain data")
    }

    pub fn decode(bytes: &[u8]) -> Result<Gate, String> {
        postcard::from_bytes(bytes).map_err(|e| format!("the merge state is damaged: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(partition: i32, mark: i64, part: u32, parts: u32, starts: &[i64]) -> Vec<u8> {
        of_stage("m", (partition, mark), (part, parts), starts)
    }

    fn of_stage(stage: &str, at: (i32, i64), parts: (u32, u32), starts: &[i64]) -> Vec<u8> {
        let ((partition, mark), (part, parts)) = (at, parts);
        let head = Header {
            stage: stage.into(),
            partition,
            of: 2,
            mark,
            part,
            parts,
        };
        let mut out = serde_json::to_vec(&head).unwrap();
        out.push(b'\n');
        for s in starts {
            out.extend(format!("{{\"window_start\":{s},\"n\":1}}\n").bytes());
        }
        out
    }

    fn starts(a: Option<Admitted>) -> Vec<i64> {
        let rows = a.map(|a| a.rows).unwrap_or_default();
        let start = |r: &Vec<u8>| serde_json::from_slice::<Start>(r).unwrap().window_start;
        rows.iter().map(start).collect()
    }

    #[test]
    fn windows_close_at_the_slowest_mark_once_every_partition_has_one() {
        let mut g = Gate::default();
        assert_eq!(
            starts(g.admit(0, &message(0, 100, 0, 1, &[0])).unwrap()),
            [0]
        );
        assert_eq!(g.watermark("m"), i64::MIN, "partition 1 has no mark yet");
        g.admit(1, &message(1, 70, 0, 1, &[])).unwrap();
        assert_eq!(g.watermark("m"), 70);
        g.admit(2, &message(1, 50, 0, 1, &[])).unwrap();
        assert_eq!(g.watermark("m"), 70, "a mark never goes back");
        assert_eq!(g.next, 3);
        // Another stage's lanes of the same partitions have marks of their own: their
        // partials may still be on the way.
        g.admit(3, &of_stage("s", (0, 200), (0, 1), &[])).unwrap();
        assert_eq!(g.watermark("s"), i64::MIN);
        g.admit(4, &of_stage("s", (1, 200), (0, 1), &[])).unwrap();
        assert_eq!(
            (g.watermark("m"), g.watermark("s"), g.slowest()),
            (70, 200, 70)
        );
    }

    #[test]
    fn a_lane_read_again_from_its_cut_merges_no_window_twice() {
        let mut g = Gate::default();
        g.admit(0, &message(0, 10, 0, 1, &[0, 0, 60])).unwrap();
        // The next owner reads from an older cut: window 0 and 60 again, then 120.
        let again = g
            .admit(1, &message(0, 20, 0, 1, &[0, 60, 120, 120]))
            .unwrap();
        assert_eq!(starts(again), [120, 120]);
    }

    #[test]
    fn parts_wait_for_the_last_and_an_unfinished_output_is_dropped() {
        let mut g = Gate::default();
        assert_eq!(g.admit(0, &message(0, 10, 0, 2, &[0])).unwrap(), None);
        // The sender died after part 0; the next owner sends the output again, whole.
        assert_eq!(g.admit(1, &message(0, 10, 0, 2, &[0])).unwrap(), None);
        let whole = g.admit(2, &message(0, 10, 1, 2, &[60])).unwrap();
        assert_eq!(starts(whole), [0, 60]);
        let back = Gate::decode(&g.encode()).unwrap();
        assert_eq!(back, g);
        assert!(Gate::decode(b"\xff").is_err());
    }
}
