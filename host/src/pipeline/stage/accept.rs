//! What a successful call's output becomes: the rows that go on, and the dead letters of
//! rejected and late rows.

use super::Stage;
use crate::batch::{DeadLetters, Envelope, Reason};
use crate::plugin::Output;
use adstream_sdk::Batch;

impl Stage {
    /// The output to pass on (if any), and the input batch back (for the redo log).
    pub(super) fn accept(
        &mut self,
        out: Output,
        env: Envelope,
        dl: &mut DeadLetters,
    ) -> (Option<Envelope>, Batch) {
        match out {
            Output::Batch(batch) => {
                let positions = env.positions.filter(|p| p.len() == batch.len());
                (Some(Envelope { batch, positions }), env.batch)
            }
            Output::Rejections(mut rejected) => {
                rejected.sort_by_key(|r| r.row);
                rejected.dedup_by_key(|r| r.row);
                for r in &rejected {
                    let error = format!("{}: {}", r.rule, r.message);
                    let who = self.culprit();
                    dl.row(Reason::Rejected, &who, &error, &env, r.row as usize);
                }
                self.stats.dead_letters += rejected.len() as u64;
                let drop: Vec<u32> = rejected.iter().map(|r| r.row).collect();
                let keep: Vec<u32> = (0..env.rows() as u32)
                    .filter(|r| drop.binary_search(r).is_err())
                    .collect();
                (Some(env.take(&keep)), env.batch)
            }
            Output::Windows { windows, mut late } => {
                late.sort_unstable();
                late.dedup();
                for &row in &late {
                    let why = "arrived after its window closed";
                    dl.row(Reason::Late, &self.culprit(), why, &env, row as usize);
                }
                self.stats.dead_letters += late.len() as u64;
                let out = Envelope {
                    batch: windows,
                    positions: None,
                };
                (Some(out), env.batch)
            }
        }
    }
}
