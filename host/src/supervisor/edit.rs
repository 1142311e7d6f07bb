//! An edited pipeline file: the new file is parsed and fully built first (an invalid edit
//! is rejected with its `file:line:col` errors and changes nothing), then diffed against
//! the running one. Sinks that did not change keep their tasks; new or changed sinks are
//! opened and wired in; changed stages get their new instances swapped in with their state.
//! Only what cannot change under a running pipeline (source, schema, event time, the stage
//! graph, a stage's output columns) makes it restart, gracefully.

use super::{Supervisor, status::Change};
use crate::config::{Diagnostic, PipelineConfig, StageConfig};
use crate::pipeline::{NewSinks, Pipeline};
use std::path::Path;

/// What an edit needs.
#[derive(Debug, PartialEq)]
pub enum Plan {
    Nothing,
    /// Stop the pipeline and start the new one, for this reason.
    Restart(String),
    /// Apply in place: new sinks or routes, and the stages (by index) to swap.
    Update {
        rewire: bool,
        stages: Vec<usize>,
    },
}

/// A stage's settings other than where its output goes.
fn without_routes(s: &StageConfig) -> StageConfig {
    StageConfig {
        to: Vec::new(),
        ..s.clone()
    }
}

/// Compares two versions of a pipeline file.
pub fn plan(old: &PipelineConfig, new: &PipelineConfig) -> Plan {
    let fixed = [
        (old.name != new.name, "its name changed"),
        (old.source != new.source, "its source changed"),
        (old.schema != new.schema, "its schema changed"),
        (old.event_time != new.event_time, "its [event_time] changed"),
        (old.checkpoint != new.checkpoint, "its [checkpoint] changed"),
        (old.privacy != new.privacy, "its [privacy] changed"),
        (
            old.max_record_bytes != new.max_record_bytes,
            "max_record_bytes changed",
        ),
        (
            old.dead_letter != new.dead_letter,
            "its dead_letter sink changed",
        ),
        (
            old.stages.len() != new.stages.len(),
            "stages were added or removed",
        ),
    ];
    if let Some((_, why)) = fixed.iter().find(|(changed, _)| *changed) {
        return Plan::Restart(why.to_string());
    }
    let dead_letter = |c: &PipelineConfig| {
        let name = c.dead_letter.as_ref().map(|d| d.get_ref().clone());
        c.sinks
            .iter()
            .find(|(n, _)| Some(n) == name.as_ref())
            .cloned()
    };
    if dead_letter(old) != dead_letter(new) {
        return Plan::Restart("its dead-letter sink's settings changed".into());
    }
    for (a, b) in old.stages.iter().zip(&new.stages) {
        if a.name != b.name || a.input != b.input {
            return Plan::Restart(format!(
                "stage `{}` was renamed or reads another input",
                a.name.get_ref()
            ));
        }
        if a.shard_count() != b.shard_count() || a.shard_by != b.shard_by {
            return Plan::Restart(format!("stage `{}`'s shards changed", a.name.get_ref()));
        }
    }
    let routes_changed = old
        .stages
        .iter()
        .zip(&new.stages)
        .any(|(a, b)| a.to != b.to);
    let rewire = old.sinks != new.sinks || routes_changed;
    let stages: Vec<usize> = (0..new.stages.len())
        .filter(|&i| without_routes(&old.stages[i]) != without_routes(&new.stages[i]))
        .collect();
    if !rewire && stages.is_empty() {
        return Plan::Nothing;
    }
    Plan::Update { rewire, stages }
}

impl Supervisor {
    /// A pipeline file changed, appeared or disappeared.
    pub(super) async fn pipeline_changed(&mut self, file: &Path) {
        let index = self.pipelines.iter().position(|m| m.file == file);
        if !file.exists() {
            if let Some(i) = index {
                self.pipeline_removed(i, file).await;
            }
            return;
        }
        let adopted = file
            .parent()
            .is_some_and(|d| self.pipeline_dirs.iter().any(|p| p == d));
        if index.is_none() && !adopted {
            return;
        }
        let (cfg, pipeline) = match self.build(file).await {
            Ok(built) => built,
            Err(diags) => return self.edit_rejected(index, file, &diags),
        };
        let Some(i) = index else {
            return self.pipeline_added(file, cfg, pipeline).await;
        };
        let plan = match plan(&self.pipelines[i].config, &cfg) {
            Plan::Update { stages, .. }
                if let Some(why) = self.needs_restart(i, &pipeline, &stages) =>
            {
                Plan::Restart(why)
            }
            other => other,
        };
        match plan {
            Plan::Nothing => {}
            Plan::Restart(why) => self.restart(i, cfg, pipeline, why).await,
            Plan::Update { rewire, stages } => self.update(i, cfg, pipeline, rewire, stages).await,
        }
    }

    async fn pipeline_removed(&mut self, i: usize, file: &Path) {
        let m = self.pipelines.remove(i);
        let name = m.running.name().to_string();
        let outcome = self.stop_one(m).await;
        let detail = format!("{} was removed; stopped the pipeline", file.display());
        self.board
            .record(Change::new(&name, None, "pipeline", true, detail));
        self.finished.push(outcome);
    }

    async fn pipeline_added(&mut self, file: &Path, cfg: PipelineConfig, pipeline: Pipeline) {
        let name = cfg.name.clone();
        let result = self.start(cfg, pipeline).await;
        let detail = match &result {
            Ok(()) => format!("started from new file {}", file.display()),
            Err(e) => format!("new file {} did not start: {e}", file.display()),
        };
        self.board
            .record(Change::new(&name, None, "pipeline", result.is_ok(), detail));
    }

    fn edit_rejected(&self, index: Option<usize>, file: &Path, diags: &[Diagnostic]) {
        diags.iter().for_each(|d| tracing::error!("{d}"));
        let name = index.map_or_else(
            || file.display().to_string(),
            |i| self.pipelines[i].running.name().to_string(),
        );
        let all: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        let detail = format!(
            "invalid edit, the running pipeline keeps going: {}",
            all.join("; ")
        );
        self.board
            .record(Change::new(&name, None, "pipeline", false, detail));
    }

    /// A changed stage whose role or output columns differ cannot be swapped in place.
    fn needs_restart(&self, i: usize, new: &Pipeline, stages: &[usize]) -> Option<String> {
        let running = self.pipelines[i].running.stages();
        stages.iter().find_map(|&s| {
            let (old, new) = (&running[s], &new.stages[s]);
            (old.spec.plugin.role() != new.spec.plugin.role() || old.output != new.output).then(
                || {
                    format!(
                        "stage `{}` changed its role or output columns",
                        old.spec.name
                    )
                },
            )
        })
    }

    async fn restart(&mut self, i: usize, cfg: PipelineConfig, pipeline: Pipeline, why: String) {
        let m = self.pipelines.remove(i);
        let name = m.running.name().to_string();
        tracing::info!(pipeline = %name, "restarting: {why}");
        let (_, ended) = self.stop_one(m).await;
        if let Err(e) = ended {
            tracing::warn!(pipeline = %name, "the old version ended with an error: {e}");
        }
        let result = self.start(cfg, pipeline).await;
        let detail = match &result {
            Ok(()) => format!("restarted, because {why}"),
            Err(e) => format!(
                "stopped to restart (because {why}), but the new version did not start: {e}"
            ),
        };
        self.board
            .record(Change::new(&name, None, "pipeline", result.is_ok(), detail));
    }

    async fn update(
        &mut self,
        i: usize,
        cfg: PipelineConfig,
        pipeline: Pipeline,
        rewire: bool,
        stages: Vec<usize>,
    ) {
        let name = self.pipelines[i].running.name().to_string();
        let mut done = Vec::new();
        if rewire {
            let sinks = NewSinks {
                sinks: pipeline.sinks.clone(),
                fields: pipeline.sink_fields.clone(),
                dead_letter: pipeline.dead_letter,
                routes: pipeline
                    .stages
                    .iter()
                    .map(|s| (s.spec.name.to_string(), s.spec.to.clone()))
                    .collect(),
            };
            match self.pipelines[i].running.rewire(sinks).await {
                Ok(summary) => done.push(summary),
                Err(e) => {
                    let detail = format!("could not open the new sinks, nothing changed: {e}");
                    return self
                        .board
                        .record(Change::new(&name, None, "pipeline", false, detail));
                }
            }
        }
        if let Some(w) = &mut self.watcher {
            // A canary may name a plugin in a folder not watched yet.
            for c in pipeline
                .stages
                .iter()
                .filter_map(|s| s.spec.canary.as_ref())
            {
                w.watch_parent_of(c.plugin.path());
            }
        }
        let mut new_stages: Vec<_> = pipeline.stages.into_iter().map(Some).collect();
        for &s in &stages {
            let stage = new_stages[s].take().expect("each stage once");
            done.push(format!("swapping stage `{}`", stage.spec.name));
            self.send_swap(i, stage.into_replacement(), "pipeline")
                .await;
        }
        self.pipelines[i].config = cfg;
        self.publish(&self.pipelines[i], "running");
        self.board.record(Change::new(
            &name,
            None,
            "pipeline",
            true,
            format!("applied in place: {}", done.join("; ")),
        ));
    }
}

#[cfg(test)]
mod tests;
