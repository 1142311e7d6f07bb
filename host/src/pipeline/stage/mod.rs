//! A running stage: one plugin instance, its statistics, and (in `failure.rs`) what
//! happens when the plugin fails. The instance can be replaced between batches: after a
//! trap, or by hot reload.

mod accept;
mod base;
mod canary;
mod chain;
mod failure;
mod frame;
mod lanes;
mod partitions;
mod route;
#[cfg(test)]
mod shard_tests;
mod shards;
mod share;
mod state;
mod swap;
#[cfg(test)]
mod tests;
mod trial;
mod worker;

pub use canary::{Canary, CanaryError, CanarySpec};
pub use chain::{lines_up, process_chain};
pub use frame::state_of_partition;
pub use lanes::LaneOutput;
pub use partitions::Watermarks;
pub use swap::{Refusal, Replacement, SwapOutcome};

pub use super::error::StageFatal;
use super::stats::{StageStats, thread_cpu_ns};
use crate::batch::{Culprit, DeadLetters, Envelope, Reason};
use crate::config::OnError;
use crate::plugin::{CallError, Instance, Limits, Output, Plugin, Role};
use adstream_sdk::{Field, PluginInfo, Setup};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// Where a stage reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Source,
    Stage(usize),
}

/// Everything needed to (re)create a stage's instance.
#[derive(Clone)]
pub struct StageSpec {
    pub name: Arc<str>,
    pub plugin: Arc<dyn Plugin>,
    pub setup: Setup,
    pub limits: Limits,
    pub on_error: OnError,
    /// Failed batches in a row after which the plugin is no longer called.
    pub max_failures: std::num::NonZeroU32,
    pub batch_size: usize,
    pub input: Input,
    /// Indexes of the sinks that receive this stage's output.
    pub to: Vec<usize>,
    /// Seeds the plugin's randomness: from the pipeline's and the stage's names, so that
    /// a replay draws the same numbers and two stages draw different ones.
    pub seed: u64,
    /// A candidate version to run in shadow and compare (`canary.rs`).
    pub canary: Option<Arc<CanarySpec>>,
    /// Instances that share the stage's rows (`shards.rs`), at least 1.
    pub shards: usize,
    /// The columns that choose a row's shard; empty: consecutive runs of rows.
    pub shard_by: Arc<[String]>,
    /// It reads nothing an aggregate made: it can run per source partition
    /// (`partitions.rs`), each partition's rows through its own instance.
    pub partition_local: bool,
    /// It runs per source partition: `shards` counts the partitions.
    pub partitioned: bool,
}

/// What a running stage runs, as status shows it and as a replacement is built from.
#[derive(Clone)]
pub struct StageView {
    pub spec: StageSpec,
    pub output: Vec<Field>,
    pub info: PluginInfo,
    pub loaded_at: SystemTime,
}

impl StageView {
    pub fn of(s: &Stage) -> StageView {
        StageView {
            spec: s.spec.clone(),
            output: s.output.clone(),
            info: s.info.clone(),
            loaded_at: SystemTime::now(),
        }
    }
}

pub struct Stage {
    pub spec: StageSpec,
    instance: Box<dyn Instance>,
    pub info: PluginInfo,
    pub output: Vec<Field>,
    recovery: state::Recovery,
    pub stats: StageStats,
    /// The instance a swap replaced, kept until the new one has processed a batch.
    probation: Option<swap::Probation>,
    canary: Option<Canary>,
    /// A canary took over since the last `take_promoted`.
    promoted: bool,
    /// The other shards' instances, each a stage of its own (`shards.rs`); empty with one.
    lanes: Vec<Stage>,
    /// Which shard each key's rows go to (`route.rs`).
    router: route::Router,
    /// A thread for each other shard, started at its first batch (`worker.rs`).
    workers: Vec<worker::Worker>,
    /// Spread over the source's partitions: which lane holds which, and the merger.
    partitions: Option<partitions::Partitions>,
    /// Its calls merge partial windows (the merger of a spread aggregate).
    merging: bool,
}

/// Creates and configures an instance of `spec`'s plugin.
pub fn instantiate(spec: &StageSpec) -> Result<(Box<dyn Instance>, Vec<Field>), CallError> {
    let mut inst = spec
        .plugin
        .instantiate(spec.name.clone(), &spec.limits, spec.seed)?;
    let output = inst.configure(spec.setup.clone())?;
    Ok((inst, output))
}

impl Stage {
    /// The input columns the plugin declared it reads; `None`: all of them.
    pub fn reads(&self) -> Option<&[String]> {
        self.instance.reads()
    }

    /// Starts the stage's instances: one per shard.
    pub fn start(spec: StageSpec) -> Result<Stage, CallError> {
        let mut stage = Stage::start_one(spec)?;
        for _ in 1..stage.spec.shards {
            let mut lane = Stage::start_one(stage.spec.clone())?;
            // The histogram and recent rows are shared: status shows the stage as one.
            lane.stats.call_seconds = stage.stats.call_seconds.clone();
            lane.stats.recent = stage.stats.recent.clone();
            stage.lanes.push(lane);
        }
        Ok(stage)
    }

    fn start_one(spec: StageSpec) -> Result<Stage, CallError> {
        let (instance, output) = instantiate(&spec)?;
        let info = instance.info().clone();
        Ok(Stage {
            spec,
            instance,
            info,
            output,
            recovery: state::Recovery::default(),
            stats: StageStats::default(),
            probation: None,
            canary: None,
            promoted: false,
            lanes: Vec::new(),
            router: route::Router::default(),
            workers: Vec::new(),
            partitions: None,
            merging: false,
        })
    }

    fn culprit(&self) -> Culprit<'_> {
        Culprit {
            stage: &self.spec.name,
            plugin: &self.info.name,
            version: &self.info.version,
        }
    }

    fn fatal(&self, reason: String) -> StageFatal {
        StageFatal {
            stage: self.spec.name.to_string(),
            reason,
        }
    }

    /// Sends `inputs` through the plugin (each shard its share, at once); what fails is
    /// handled as `on_error` says (see `failure.rs`).
    pub fn process(
        &mut self,
        inputs: Vec<Envelope>,
        watermark: i64,
        dl: &mut DeadLetters,
    ) -> Result<Vec<Envelope>, StageFatal> {
        if self.partitioned() {
            let at = Watermarks {
                global: watermark,
                of: &|_| watermark,
            };
            return self.process_partitioned(inputs, &at, dl);
        }
        match self.lanes.is_empty() {
            true => self.process_one(inputs, watermark, dl),
            false => self.process_shards(inputs, watermark, dl),
        }
    }

    pub(super) fn process_one(
        &mut self,
        inputs: Vec<Envelope>,
        watermark: i64,
        dl: &mut DeadLetters,
    ) -> Result<Vec<Envelope>, StageFatal> {
        let mut outputs = Vec::new();
        let size = self.spec.batch_size;
        for env in inputs.into_iter().flat_map(|e| e.chunks(size)) {
            if env.rows() == 0 && self.spec.plugin.role() != Role::Aggregate {
                continue;
            }
            self.stats.rows_in += env.rows() as u64;
            if self.stats.quarantined {
                let reason = "stage quarantined after repeated failures; its plugin is not called";
                outputs.extend(self.dispose(Reason::PluginFailure, reason, env, dl));
                continue;
            }
            let env = if self.on_trial() {
                match self.try_on_probation(env, watermark, dl, &mut outputs)? {
                    Some(env) => env,
                    None => continue,
                }
            } else {
                env
            };
            let outcome = self.run_piece(env, watermark, dl, &mut outputs)?;
            self.count_failure(outcome);
        }
        self.stats.rows_out += outputs.iter().map(|e| e.rows() as u64).sum::<u64>();
        // A spread stage shows its merger's rows, not its lanes' partials.
        let shown = !self.spec.partitioned || self.merging;
        if shown && matches!(self.spec.plugin.role(), Role::Aggregate | Role::Detect) {
            outputs
                .iter()
                .for_each(|e| self.stats.recent.record(&e.batch));
        }
        Ok(outputs)
    }

    /// One plugin call, timed; the input comes back with the result.
    fn call(&mut self, env: Envelope, watermark: i64) -> (Envelope, Result<Output, CallError>) {
        self.stats.calls += 1;
        self.before_call();
        let (began, cpu) = (Instant::now(), thread_cpu_ns());
        let Envelope { batch, positions } = env;
        let (batch, result) = match self.merging {
            true => self.instance.merge(batch, watermark),
            false => self.instance.process(batch, watermark),
        };
        let took = began.elapsed();
        self.stats.busy_ns += took.as_nanos() as u64;
        if let (Some(from), Some(to)) = (cpu, thread_cpu_ns()) {
            self.stats.cpu_ns += to.saturating_sub(from);
        }
        self.stats.call_seconds.observe(took);
        self.collect_counters();
        let batch = match &result {
            Ok(out) if self.canary.is_some() => self.shadow(batch, watermark, out),
            _ => batch,
        };
        (Envelope { batch, positions }, result)
    }

    fn collect_counters(&mut self) {
        let r = self.instance.take_reports();
        for (k, v) in r.counters {
            // The plugin's budget bounds its names; the stage keeps what it was given.
            let c = self.stats.plugin_counters.entry(k).or_default();
            *c = c.saturating_add(v);
        }
        self.stats.logs_dropped += r.logs_dropped;
        self.stats.counters_dropped += r.counters_dropped;
    }

    /// Closes open windows (aggregate stages), in every shard.
    pub fn flush(&mut self, dl: &mut DeadLetters) -> Result<Vec<Envelope>, StageFatal> {
        if self.partitioned() {
            return self.flush_partitioned(dl);
        }
        let mut flushed = self.flush_one(dl)?;
        for lane in &mut self.lanes {
            flushed.extend(lane.flush_one(dl)?);
        }
        Ok(flushed)
    }

    fn flush_one(&mut self, dl: &mut DeadLetters) -> Result<Vec<Envelope>, StageFatal> {
        // A version still on probation at the end has not failed: keep it.
        self.end_probation(Ok(None));
        let flushed = self.instance.flush();
        if let Ok(current) = &flushed {
            self.shadow_flush(current.as_ref());
        }
        match flushed {
            Ok(Some(batch)) => {
                self.stats.rows_out += batch.len() as u64;
                if !self.spec.partitioned || self.merging {
                    self.stats.recent.record(&batch);
                }
                Ok(vec![Envelope {
                    batch,
                    positions: None,
                }])
            }
            Ok(None) => Ok(Vec::new()),
            Err(e) => {
                let message = self.note_failure(&e)?;
                tracing::warn!(
                    stage = &*self.spec.name,
                    "flush failed; open windows are lost: {message}"
                );
                let _ = dl;
                Ok(Vec::new())
            }
        }
    }
}
