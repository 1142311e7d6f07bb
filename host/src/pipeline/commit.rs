//! Which source positions may be committed: those of every batch that all sinks have
//! acknowledged and whose effect on plugin state is saved. Batches are numbered in the
//! order the source delivered them; a commit covers a prefix of them.

use crate::batch::{Position, RawBatch};
use std::collections::VecDeque;

/// Batches delivered but not yet committed, with their newest position per partition.
#[derive(Default)]
pub(super) struct Commits {
    pending: VecDeque<(u64, Vec<Position>)>,
}

/// The newest position per partition in `raw`.
fn newest(raw: &RawBatch) -> Vec<Position> {
    let mut out: Vec<Position> = Vec::new();
    for p in raw.positions() {
        match out.iter_mut().find(|q| q.partition == p.partition) {
            Some(q) => q.offset = q.offset.max(p.offset),
            None => out.push(*p),
        }
    }
    out
}

impl Commits {
    /// Notes that batch `seq` was handed to the pipeline.
    pub fn delivered(&mut self, seq: u64, raw: &RawBatch) {
        self.pending.push_back((seq, newest(raw)));
    }

    /// The positions up to which every batch `<= upto` may be committed (newest per
    /// partition); empty when there is nothing new.
    pub fn ready(&mut self, upto: u64) -> Vec<Position> {
        let mut out: Vec<Position> = Vec::new();
        while self.pending.front().is_some_and(|(seq, _)| *seq <= upto) {
            let (_, positions) = self.pending.pop_front().expect("checked front");
            for p in positions {
                match out.iter_mut().find(|q| q.partition == p.partition) {
                    Some(q) => q.offset = q.offset.max(p.offset),
                    None => out.push(p),
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(at: &[(i32, i64)]) -> RawBatch {
        let mut b = RawBatch::default();
        for &(partition, offset) in at {
            b.push(b"{}", Position { partition, offset });
        }
        b
    }

    #[test]
    fn only_a_prefix_of_acknowledged_batches_is_committed() {
        let mut c = Commits::default();
        c.delivered(1, &raw(&[(0, 10), (1, 5), (0, 11)]));
        c.delivered(2, &raw(&[(1, 6)]));
        c.delivered(3, &raw(&[(0, 12)]));
        assert_eq!(c.ready(0), vec![], "nothing acknowledged yet");
        let mut first = c.ready(2);
        first.sort_by_key(|p| p.partition);
        assert_eq!(
            first,
            vec![
                Position {
                    partition: 0,
                    offset: 11
                },
                Position {
                    partition: 1,
                    offset: 6
                }
            ]
        );
        assert_eq!(c.ready(2), vec![], "committed once");
        assert_eq!(
            c.ready(3),
            vec![Position {
                partition: 0,
                offset: 12
            }]
        );
    }
}
