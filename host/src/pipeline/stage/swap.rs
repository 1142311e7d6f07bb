//! Swapping a stage's plugin instance at a batch boundary.
//!
//! The replacement arrives already compiled and configured (the supervisor does that off
//! the hot path). Here the old instance's state is snapshotted and restored into the new
//! one — the pause a swap costs — and the new instance is put on probation: if its first
//! batch fails, the old instance comes back, untouched, and processes that batch as if
//! nothing had happened. Nothing is lost or processed twice either way.

use super::{Envelope, Stage, StageFatal, StageSpec, StageView};
use crate::batch::DeadLetters;
use crate::plugin::Instance;
use adstream_sdk::{Field, PluginInfo};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How a swap ended.
#[derive(Debug, Clone, PartialEq)]
pub enum SwapOutcome {
    /// The new instance took over; `pause` is how long the batch flow stopped for the
    /// state hand-over, `first_batch` how long the new instance took for its first batch
    /// (a fresh instance may be slower at first; `None` if it only flushed at the end).
    Swapped {
        pause: Duration,
        first_batch: Option<Duration>,
    },
    /// The new instance was refused; the old one keeps running.
    Rejected(Refusal),
}

/// Why a new version was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("no stage `{0}`")]
    NoStage(String),
    #[error("the new version has {new} shard(s) and the running stage {running}")]
    Shards { new: usize, running: usize },
    #[error(
        "its output columns differ from the running version's ({new} vs {running}); the \
         stages after it expect the old ones"
    )]
    Output { new: String, running: String },
    #[error("the running version's snapshot failed: {0}")]
    Snapshot(String),
    #[error("restoring the running state failed: {0}")]
    Restore(String),
    #[error("superseded by a newer version before its first batch")]
    Superseded,
    #[error("failed on its first batch: {0}")]
    FirstBatch(String),
    /// Another shard's instance failed the trial batch; this one only went back with it.
    #[error("another shard's instance of the new version failed its first batch")]
    Followed,
    #[error("the pipeline stopped before the new version processed a batch")]
    Stopped,
}

/// A configured instance to put in place of a stage's current one.
pub struct Replacement {
    pub(super) instance: Box<dyn Instance>,
    pub(super) info: PluginInfo,
    pub(super) output: Vec<Field>,
    pub spec: StageSpec,
    /// The spec's candidate, started; it is compared from the new version's state on.
    pub(super) canary: Option<super::Canary>,
    /// Instances for the stage's other shards, one each.
    pub(super) lanes: Vec<Replacement>,
    /// The instance that merges partial windows, for a stage spread over partitions.
    pub(super) merger: Option<Box<Replacement>>,
}

impl Replacement {
    pub fn new(
        spec: StageSpec,
        instance: Box<dyn Instance>,
        output: Vec<Field>,
        canary: Option<super::Canary>,
    ) -> Self {
        Replacement {
            info: instance.info().clone(),
            instance,
            output,
            spec,
            canary,
            lanes: Vec::new(),
            merger: None,
        }
    }

    /// Adds the instance for one more shard.
    pub fn add_shard(&mut self, instance: Box<dyn Instance>) {
        let lane = Replacement::new(self.spec.clone(), instance, self.output.clone(), None);
        self.lanes.push(lane);
    }

    /// Adds the instance that merges partial windows (a stage spread over partitions).
    pub fn add_merger(&mut self, instance: Box<dyn Instance>) {
        let merger = Replacement::new(self.spec.clone(), instance, self.output.clone(), None);
        self.merger = Some(Box::new(merger));
    }

    /// Whether the stage it replaces needs a merger: a spread aggregate.
    pub fn wants_merger(&self) -> bool {
        self.spec.partitioned && self.spec.plugin.role() == crate::plugin::Role::Aggregate
    }

    /// What the stage will show once the replacement took over.
    pub fn view(&self) -> StageView {
        StageView {
            spec: self.spec.clone(),
            output: self.output.clone(),
            info: self.info.clone(),
            loaded_at: std::time::SystemTime::now(),
        }
    }
}

/// What a swap keeps until the new instance proved itself on one batch.
pub(super) struct Probation {
    instance: Box<dyn Instance>,
    info: PluginInfo,
    spec: StageSpec,
    recovery: super::state::Recovery,
    pause: Duration,
    reply: oneshot::Sender<SwapOutcome>,
    /// Waiting for the stage's other shards: the verdict is theirs together (`trial.rs`).
    pub(super) held: bool,
    /// How long its first batch took, once it passed while held.
    pub(super) passed: Option<Duration>,
}

impl Stage {
    /// Hands the state over to `r` and puts it on probation; refuses it (telling the
    /// requester) if its output columns differ or it cannot take the state. Each shard
    /// swaps to its own instance of `r`.
    pub fn begin_swap(&mut self, r: Replacement, reply: oneshot::Sender<SwapOutcome>) {
        match self.lanes.is_empty() && r.lanes.is_empty() {
            true => self.swap_one(r, reply),
            false => self.swap_shards(r, reply),
        }
    }

    pub(super) fn swap_one(&mut self, r: Replacement, reply: oneshot::Sender<SwapOutcome>) {
        let Replacement {
            mut instance,
            info,
            output,
            spec,
            canary,
            lanes: _,
            merger: _,
        } = r;
        // A version that has not run a batch yet is not proven: the newer one replaces it
        // and the proven one stays the fallback (its state is the same, nothing ran since).
        if self.probation.is_some() {
            self.end_probation(Err(Refusal::Superseded));
        }
        if let Some(why) = self.other_output(&output) {
            let _ = reply.send(SwapOutcome::Rejected(why));
            return;
        }
        let began = Instant::now();
        let snapshot = match self.instance.snapshot() {
            Ok(s) => s,
            Err(e) => {
                let mut why = e.describe();
                if let Err(fatal) = self.restart() {
                    why = format!("{why}; rebuilding it failed too: {fatal}");
                }
                let _ = reply.send(SwapOutcome::Rejected(Refusal::Snapshot(why)));
                return;
            }
        };
        if let Some(state) = &snapshot
            && let Err(e) = instance.restore(state)
        {
            let _ = reply.send(SwapOutcome::Rejected(Refusal::Restore(e.describe())));
            return;
        }
        let pause = began.elapsed();
        let old = std::mem::replace(&mut self.instance, instance);
        let old_info = std::mem::replace(&mut self.info, info);
        let old_spec = std::mem::replace(&mut self.spec, spec);
        let mut fresh = super::state::Recovery::default();
        fresh.rebase(snapshot.as_deref());
        let old_recovery = std::mem::replace(&mut self.recovery, fresh);
        self.probation = Some(Probation {
            instance: old,
            info: old_info,
            spec: old_spec,
            recovery: old_recovery,
            pause,
            reply,
            held: false,
            passed: None,
        });
        self.attach_canary(canary);
        // A new version gets a fresh start: the old one's failures are not held against it.
        self.stats.quarantined = false;
        self.stats.failing_in_a_row = 0;
    }

    /// Why a version with `output` columns cannot take the running one's place, if so.
    fn other_output(&self, output: &[Field]) -> Option<Refusal> {
        (output != self.output).then(|| Refusal::Output {
            new: describe(output),
            running: describe(&self.output),
        })
    }

    /// Ends a probation: `Ok(first batch's time)` keeps the new instance; `Err(why)` brings
    /// the old one back and tells the requester why.
    pub(super) fn end_probation(&mut self, verdict: Result<Option<Duration>, Refusal>) {
        let Some(p) = self.probation.take() else {
            return;
        };
        let why = match verdict {
            Ok(first_batch) => {
                let _ = p.reply.send(SwapOutcome::Swapped {
                    pause: p.pause,
                    first_batch,
                });
                return;
            }
            Err(why) => why,
        };
        self.instance = p.instance;
        self.info = p.info;
        // Routes may have been rewired since; they belong to the pipeline, not the version.
        let to = std::mem::take(&mut self.spec.to);
        self.spec = StageSpec { to, ..p.spec };
        self.recovery = p.recovery;
        // The candidate took the refused version's state; it has nothing to compare with.
        self.attach_canary(None);
        let _ = p.reply.send(SwapOutcome::Rejected(why));
    }

    /// Processes a batch with an instance on probation: on success it stays, on failure
    /// the old instance takes the batch. Returns the input back when the old one must.
    pub(super) fn try_on_probation(
        &mut self,
        env: Envelope,
        watermark: i64,
        dl: &mut DeadLetters,
        outputs: &mut Vec<Envelope>,
    ) -> Result<Option<Envelope>, StageFatal> {
        let began = Instant::now();
        let (env, result) = self.call(env, watermark);
        let took = began.elapsed();
        match result {
            Ok(out) => {
                let (output, input) = self.accept(out, env, dl);
                outputs.extend(output);
                match self.probation.as_mut() {
                    Some(p) if p.held => p.passed = Some(took),
                    _ => self.end_probation(Ok(Some(took))),
                }
                self.after_success(input, watermark)?;
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(
                    stage = &*self.spec.name,
                    "new version failed its first batch, keeping the old one: {}",
                    e.describe()
                );
                self.end_probation(Err(Refusal::FirstBatch(e.describe())));
                Ok(Some(env))
            }
        }
    }

    /// Turns a freshly started stage into a replacement for a running one of the same name.
    pub fn into_replacement(self) -> Replacement {
        Replacement {
            instance: self.instance,
            info: self.info,
            output: self.output,
            spec: self.spec,
            canary: self.canary,
            lanes: self
                .lanes
                .into_iter()
                .map(Stage::into_replacement)
                .collect(),
            merger: (self.partitions.and_then(|p| p.merger))
                .map(|m| Box::new(m.into_replacement())),
        }
    }

    pub fn on_probation(&self) -> bool {
        self.probation.is_some() || self.lanes.iter().any(Stage::on_probation)
    }

    /// Whether the instance's next batch is a new version's first (its trial).
    pub(super) fn on_trial(&self) -> bool {
        self.probation.as_ref().is_some_and(|p| p.passed.is_none())
    }
}

fn describe(fields: &[Field]) -> String {
    fields
        .iter()
        .map(|f| format!("{} {}", f.name, adstream_sdk::kind_name(f.kind)))
        .collect::<Vec<_>>()
        .join(", ")
}
