//! When a plugin call fails: find the rows that cause it, restart the plugin from its last
//! snapshot, apply the stage's `on_error`, and quarantine a plugin that keeps failing.
//!
//! A failed batch is split in halves and each half retried, so that one poisoned row sends
//! only itself to the dead letters (see `bisect` for how the retries stay bounded). A call
//! stopped at its deadline is not split: a timeout says nothing about which row is bad,
//! and every half would wait out the deadline again. So a plugin that times out on every
//! call costs one deadline per batch, and is quarantined after about `max_failures` ×
//! `deadline`.
//!
//! After a failed call the instance is rebuilt in the state before that call (`state.rs`),
//! so every row that succeeds is counted once.

use super::{Envelope, Stage, StageFatal};
use crate::batch::{DeadLetters, Reason};
use crate::config::OnError;
use crate::plugin::{CallError, TrapKind};

/// How a batch went through its plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Passed,
    /// Some rows failed (a poisoned row was isolated), the others passed.
    Partly,
    /// Nothing passed.
    Failed,
}

/// A call that failed: its input back, why, and whether it was stopped at its deadline.
struct Failed {
    env: Envelope,
    reason: Reason,
    message: String,
    timed_out: bool,
}

impl Stage {
    /// Calls the plugin on `env`; on failure, looks for the failing rows.
    pub(super) fn run_piece(
        &mut self,
        env: Envelope,
        watermark: i64,
        dl: &mut DeadLetters,
        outputs: &mut Vec<Envelope>,
    ) -> Result<Outcome, StageFatal> {
        match self.attempt(env, watermark, dl, outputs)? {
            None => Ok(Outcome::Passed),
            Some(failed) if failed.env.rows() > 1 && !failed.timed_out => {
                let env = failed.env;
                let some_passed = self.bisect(env, watermark, dl, outputs)?;
                Ok(if some_passed {
                    Outcome::Partly
                } else {
                    Outcome::Failed
                })
            }
            Some(failed) => {
                outputs.extend(self.dispose_failed(failed, dl));
                Ok(Outcome::Failed)
            }
        }
    }

    /// One call; on success its output is collected, on failure the input comes back.
    fn attempt(
        &mut self,
        env: Envelope,
        watermark: i64,
        dl: &mut DeadLetters,
        outputs: &mut Vec<Envelope>,
    ) -> Result<Option<Failed>, StageFatal> {
        let (env, result) = self.call(env, watermark);
        match result {
            Ok(out) => {
                let (output, input) = self.accept(out, env, dl);
                outputs.extend(output);
                self.after_success(input, watermark)?;
                Ok(None)
            }
            Err(e) => {
                let message = self.note_failure(&e)?;
                if self.spec.on_error == OnError::Stop {
                    return Err(self.fatal(message));
                }
                let reason = match e {
                    CallError::Plugin(_) => Reason::PluginError,
                    CallError::Trap(_) => Reason::PluginFailure,
                };
                let timed_out =
                    matches!(&e, CallError::Trap(t) if matches!(t.kind, TrapKind::Deadline { .. }));
                Ok(Some(Failed {
                    env,
                    reason,
                    message,
                    timed_out,
                }))
            }
        }
    }

    /// Splits a failed batch in halves and tries each. When exactly one half fails, the
    /// search goes on inside it, so one poisoned row costs two calls per halving; when
    /// both fail, the plugin fails on more than one row and both halves are disposed of,
    /// which bounds the calls a plugin that fails everywhere can cost. Returns whether any
    /// rows passed.
    fn bisect(
        &mut self,
        env: Envelope,
        watermark: i64,
        dl: &mut DeadLetters,
        outputs: &mut Vec<Envelope>,
    ) -> Result<bool, StageFatal> {
        let mid = env.rows() / 2;
        let halves = [
            (0..mid as u32).collect::<Vec<_>>(),
            (mid as u32..env.rows() as u32).collect(),
        ];
        let [a, b] = halves.map(|rows| env.take(&rows));
        let failed_a = self.attempt(a, watermark, dl, outputs)?;
        let failed_b = self.attempt(b, watermark, dl, outputs)?;
        match (failed_a, failed_b) {
            (Some(a), Some(b)) => {
                for failed in [a, b] {
                    outputs.extend(self.dispose_failed(failed, dl));
                }
                Ok(false)
            }
            (Some(failed), None) | (None, Some(failed)) => {
                if failed.env.rows() > 1 && !failed.timed_out {
                    self.bisect(failed.env, watermark, dl, outputs)?;
                } else {
                    outputs.extend(self.dispose_failed(failed, dl));
                }
                Ok(true)
            }
            // Both halves passed: the batch failed only as a whole (e.g. it was too large
            // for the plugin's limits).
            (None, None) => Ok(true),
        }
    }

    /// Records a failure and rebuilds the instance where its state may have changed: after
    /// a trap, and after an error a stateful plugin returned (it may have changed its state
    /// before returning it). Returns the message.
    pub(super) fn note_failure(&mut self, e: &CallError) -> Result<String, StageFatal> {
        let message = e.describe();
        match e {
            CallError::Plugin(_) => self.stats.plugin_errors += 1,
            CallError::Trap(t) => {
                self.stats.failures += 1;
                if matches!(t.kind, TrapKind::Deadline { .. }) {
                    self.stats.timeouts += 1;
                }
            }
        }
        tracing::warn!(stage = &*self.spec.name, "plugin call failed: {message}");
        self.stats.last_error = Some(message.clone());
        if matches!(e, CallError::Trap(_)) || self.spec.plugin.stateful() {
            self.restart()?;
        }
        Ok(message)
    }

    fn dispose_failed(&mut self, f: Failed, dl: &mut DeadLetters) -> Option<Envelope> {
        self.dispose(f.reason, &f.message, f.env, dl)
    }

    /// Rows whose call failed: dead letters, or passed on unchanged (`skip`).
    pub(super) fn dispose(
        &mut self,
        reason: Reason,
        message: &str,
        env: Envelope,
        dl: &mut DeadLetters,
    ) -> Option<Envelope> {
        match self.spec.on_error {
            OnError::Skip => Some(env),
            OnError::DeadLetter | OnError::Stop => {
                dl.batch(reason, &self.culprit(), message, &env);
                self.stats.dead_letters += env.rows() as u64;
                None
            }
        }
    }

    /// Counts batches that failed as a whole, in a row, and quarantines the plugin at the
    /// stage's limit. A batch in which a poisoned row was isolated and the rest passed is
    /// not a failure of the plugin.
    pub(super) fn count_failure(&mut self, outcome: Outcome) {
        if outcome != Outcome::Failed {
            self.stats.failing_in_a_row = 0;
            return;
        }
        self.stats.failing_in_a_row += 1;
        if self.stats.failing_in_a_row >= self.spec.max_failures.get() && !self.stats.quarantined {
            self.stats.quarantined = true;
            tracing::error!(
                stage = &*self.spec.name,
                "quarantined after {} failed batches in a row; on_error = {:?} now applies to every batch until a new version is loaded",
                self.stats.failing_in_a_row,
                self.spec.on_error
            );
        }
    }
}
