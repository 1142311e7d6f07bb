//! A pipeline that is running, and what may be done to it while it runs: swap a stage's
//! plugin, rewire its sinks, stop it. The pipeline owns its stages (on its processor
//! thread) and its sinks; whoever manages it (the supervisor) asks through these methods.

use super::error::RunError;
use super::feed::{Feed, Rewire};
use super::sinkset::{self, SinkGauges, SinkSet};
use super::stage::{
    Canary, CanaryError, CanarySpec, Refusal, Replacement, StageSpec, StageView, SwapOutcome,
    instantiate,
};
use super::stats::{PipelineStats, RunSummary};
use crate::config::SinkConfig;
use crate::plugin::{CallError, Plugin};
use crate::sinks::runner::SinkMsg;
use crate::sinks::{DeadLetterTx, SinkContext};
use adstream_sdk::Field;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Why a swap could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    #[error("the pipeline has no stage `{0}`")]
    NoStage(String),
    #[error("stage `{0}` has no canary")]
    NoCanary(String),
    #[error("the new file implements the `{new}` world, the stage's plugin the `{old}` world")]
    WrongRole {
        new: &'static str,
        old: &'static str,
    },
    #[error("the new version failed to start: {0}")]
    Start(#[from] CallError),
    #[error("the stage's canary did not start: {0}")]
    Canary(#[from] CanaryError),
    #[error("preparing the new version panicked")]
    Panicked,
    #[error("the pipeline has stopped")]
    Stopped,
}

/// The sinks and routes of an edited pipeline file.
pub struct NewSinks {
    pub sinks: Vec<(String, SinkConfig)>,
    pub fields: Vec<Option<Vec<Field>>>,
    pub dead_letter: usize,
    /// For each stage (by name), the indexes of the sinks it sends to.
    pub routes: Vec<(String, Vec<usize>)>,
}

/// Why a rewire changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum RewireError {
    #[error("could not open sink: {0}")]
    Open(#[from] crate::sinks::SinkError),
    #[error("the pipeline has stopped")]
    Stopped,
}

pub struct RunningPipeline {
    pub(super) name: String,
    pub(super) source_name: String,
    pub(super) feed: mpsc::Sender<Feed>,
    pub(super) stats: Arc<Mutex<PipelineStats>>,
    pub(super) sinks: SinkSet,
    /// Where sinks opened later send the rows they cannot deliver. Weak, so that holding
    /// the pipeline does not keep its dead-letter sink open after the run ends.
    pub(super) dead_letters: mpsc::WeakSender<SinkMsg>,
    pub(super) privacy: Arc<crate::batch::Privacy>,
    pub(super) views: Arc<Mutex<Vec<StageView>>>,
    pub(super) stop: watch::Sender<bool>,
    pub(super) task: JoinHandle<Result<RunSummary, RunError>>,
}

impl RunningPipeline {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name dead letters give as their origin.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Live counts, updated after every batch.
    pub fn stats(&self) -> Arc<Mutex<PipelineStats>> {
        self.stats.clone()
    }

    /// Its sinks' queues and retries, read when asked.
    pub fn sink_gauges(&self) -> SinkGauges {
        SinkGauges(self.sinks.clone())
    }

    /// What each stage runs now.
    pub fn stages(&self) -> Vec<StageView> {
        self.views.lock().expect("stage views").clone()
    }

    /// Asks the pipeline to stop: the source stops, open windows are flushed.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the run to end (call once).
    pub async fn finished(&mut self) -> Result<RunSummary, RunError> {
        (&mut self.task).await.unwrap_or(Err(RunError::Panicked))
    }

    /// Prepares a replacement for stage `stage` running `plugin` with the stage's own
    /// settings: instantiated and configured off the processor thread.
    pub async fn prepare(
        &self,
        stage: &str,
        plugin: Arc<dyn Plugin>,
    ) -> Result<Replacement, SwapError> {
        let view = self.view(stage)?;
        if plugin.role() != view.spec.plugin.role() {
            return Err(SwapError::WrongRole {
                new: plugin.role().name(),
                old: view.spec.plugin.role().name(),
            });
        }
        prepare(StageSpec {
            plugin,
            ..view.spec
        })
        .await
    }

    /// Prepares stage `stage` as it runs, with `plugin` as its canary's candidate: a new
    /// build of the candidate starts its comparison again.
    pub async fn prepare_canary(
        &self,
        stage: &str,
        plugin: Arc<dyn Plugin>,
    ) -> Result<Replacement, SwapError> {
        let mut spec = self.view(stage)?.spec;
        let Some(canary) = &spec.canary else {
            return Err(SwapError::NoCanary(stage.into()));
        };
        spec.canary = Some(Arc::new(CanarySpec {
            plugin,
            ..(**canary).clone()
        }));
        prepare(spec).await
    }

    fn view(&self, stage: &str) -> Result<StageView, SwapError> {
        self.stages()
            .into_iter()
            .find(|v| &*v.spec.name == stage)
            .ok_or_else(|| SwapError::NoStage(stage.into()))
    }

    /// Hands `r` to the processor, which swaps it in at the next batch boundary. The
    /// returned future ends when the new version has proven itself on a batch (or was
    /// refused); a successful swap becomes what [`stages`](Self::stages) shows.
    pub async fn swap(
        &self,
        r: Replacement,
    ) -> Result<impl Future<Output = SwapOutcome> + Send + 'static, SwapError> {
        let mut view = r.view();
        let (reply, outcome) = oneshot::channel();
        self.feed
            .send(Feed::Swap(Box::new(r), reply))
            .await
            .map_err(|_| SwapError::Stopped)?;
        let views = self.views.clone();
        Ok(async move {
            let outcome = outcome
                .await
                .unwrap_or(SwapOutcome::Rejected(Refusal::Stopped));
            if let SwapOutcome::Swapped { .. } = outcome {
                let mut views = views.lock().expect("stage views");
                if let Some(v) = views.iter_mut().find(|v| v.spec.name == view.spec.name) {
                    // Routes belong to the pipeline; a rewire may have changed them since.
                    view.spec.to = std::mem::take(&mut v.spec.to);
                    *v = view;
                }
            }
            outcome
        })
    }

    /// Opens new and changed sinks, points the processor at the new set, and retires the
    /// sinks it no longer uses once they have delivered what they hold. Returns a summary.
    pub async fn rewire(&self, new: NewSinks) -> Result<String, RewireError> {
        let dead_letters = self.dead_letters().ok_or(RewireError::Stopped)?;
        let (mut senders, mut kept, mut opened) = (Vec::new(), Vec::new(), Vec::new());
        for (k, (name, cfg)) in new.sinks.iter().enumerate() {
            if let Some((id, tx)) = self.sinks.find(name, cfg, &kept) {
                kept.push(id);
                senders.push((name.clone(), tx));
                continue;
            }
            let ctx = SinkContext {
                fields: new.fields[k].clone(),
                dead_letters: Some(dead_letters.clone()),
                resume: None,
                ..Default::default()
            };
            let entry = sinkset::open(name, cfg, ctx).await?;
            senders.push((name.clone(), entry.tx.clone().expect("just opened")));
            opened.push(entry);
        }
        let added: Vec<(u64, String)> = opened.iter().map(|e| (e.id, e.name.clone())).collect();
        self.sinks.add(opened);
        let (done, told) = oneshot::channel();
        let rewire = Rewire {
            sinks: senders,
            dead_letter: new.dead_letter,
            routes: new.routes.clone(),
            done,
        };
        if self.feed.send(Feed::Rewire(rewire)).await.is_err() || told.await.is_err() {
            return Err(RewireError::Stopped);
        }
        for v in self.views.lock().expect("stage views").iter_mut() {
            if let Some((_, to)) = new.routes.iter().find(|(n, _)| **n == *v.spec.name) {
                v.spec.to = to.clone();
            }
        }
        let ids: Vec<u64> = added.iter().map(|(id, _)| *id).collect();
        let retired = self.sinks.retire(&kept, &ids);
        let names: Vec<&str> = added.iter().map(|(_, n)| n.as_str()).collect();
        Ok(format!(
            "sinks opened: [{}], retired: [{}]",
            names.join(", "),
            retired.join(", ")
        ))
    }

    /// The dead-letter sink, for sinks opened while the pipeline runs; `None` once it ended.
    fn dead_letters(&self) -> Option<DeadLetterTx> {
        Some(DeadLetterTx {
            tx: self.dead_letters.upgrade()?,
            source: self.source_name.clone(),
            privacy: self.privacy.clone(),
        })
    }
}

/// Instantiates and configures `spec`'s plugin and its canary's, off the async threads.
async fn prepare(spec: StageSpec) -> Result<Replacement, SwapError> {
    tokio::task::spawn_blocking(move || {
        let (instance, output) = instantiate(&spec)?;
        // The stage's canary, if it has one, starts again from the new version's state.
        let canary = Canary::start(&spec, &output)?;
        let mut r = Replacement::new(spec, instance, output, canary);
        for _ in 1..r.spec.shards {
            r.add_shard(instantiate(&r.spec)?.0);
        }
        if r.wants_merger() {
            r.add_merger(instantiate(&r.spec)?.0);
        }
        Ok(r)
    })
    .await
    .map_err(|_| SwapError::Panicked)?
}
