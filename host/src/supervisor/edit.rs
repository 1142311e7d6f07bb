//! An edited pipeline file: the new file is parsed and fully built first (an invalid edit
//! is rejected with its `file:line:col` errors and changes nothing), then diffed against
//! the running one. Sinks that did not change keep their tasks; new or changed sinks are
//! opened and wired in; changed stages get their new instances swapped in with their state.
//! Only what cannot change under a running pipeline (source, schema, event time, the stage
//! graph, a stage's output columns) makes it restart, gracefully.

use super::{StageView, Supervisor, status::Change};
use crate::config::{PipelineConfig, StageConfig};
use crate::pipeline::{Feed, Pipeline, Rewire, SinkEntry, open_sink};
use crate::sinks::SinkContext;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::oneshot;

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

/// The sinks and routes of an edited pipeline (the part of it a rewire needs; the rest
/// holds plugin instances, which must not be shared across tasks).
struct NewSinks {
    sinks: Vec<(String, crate::sinks::SinkConfig)>,
    fields: Vec<Option<Vec<adstream_sdk::Field>>>,
    dead_letter: usize,
    routes: Vec<(String, Vec<usize>)>,
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
                let m = self.pipelines.remove(i);
                let name = m.running.name.clone();
                let outcome = self.stop_one(m).await;
                self.board.record(Change::new(
                    &name,
                    None,
                    "pipeline",
                    true,
                    format!("{} was removed; stopped the pipeline", file.display()),
                ));
                self.finished.push(outcome);
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
            Err(diags) => {
                diags.iter().for_each(|d| tracing::error!("{d}"));
                let name = index.map_or_else(
                    || file.display().to_string(),
                    |i| self.pipelines[i].running.name.clone(),
                );
                let detail = format!(
                    "invalid edit, the running pipeline keeps going: {}",
                    diags
                        .iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                return self
                    .board
                    .record(Change::new(&name, None, "pipeline", false, detail));
            }
        };
        let Some(i) = index else {
            let name = cfg.name.clone();
            let result = self.start(cfg, pipeline).await;
            let detail = match &result {
                Ok(()) => format!("started from new file {}", file.display()),
                Err(e) => format!("new file {} did not start: {e}", file.display()),
            };
            return self
                .board
                .record(Change::new(&name, None, "pipeline", result.is_ok(), detail));
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

    /// A changed stage whose role or output columns differ cannot be swapped in place.
    fn needs_restart(&self, i: usize, new: &Pipeline, stages: &[usize]) -> Option<String> {
        stages.iter().find_map(|&s| {
            let (old, new) = (&self.pipelines[i].stages[s], &new.stages[s]);
            (old.spec.plugin.role != new.spec.plugin.role || old.output != new.output).then(|| {
                format!(
                    "stage `{}` changed its role or output columns",
                    old.spec.name
                )
            })
        })
    }

    async fn restart(&mut self, i: usize, cfg: PipelineConfig, pipeline: Pipeline, why: String) {
        let m = self.pipelines.remove(i);
        let name = m.running.name.clone();
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
        let name = self.pipelines[i].running.name.clone();
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
            match self.rewire(i, sinks).await {
                Ok(summary) => done.push(summary),
                Err(e) => {
                    let detail = format!("could not open the new sinks, nothing changed: {e}");
                    return self
                        .board
                        .record(Change::new(&name, None, "pipeline", false, detail));
                }
            }
        }
        let routes: Vec<_> = pipeline.stages.iter().map(|s| s.spec.to.clone()).collect();
        for (s, view) in self.pipelines[i].stages.iter_mut().enumerate() {
            view.spec.to = routes[s].clone();
        }
        let mut new_stages: Vec<_> = pipeline.stages.into_iter().map(Some).collect();
        for &s in &stages {
            let stage = new_stages[s].take().expect("each stage once");
            let view = StageView {
                spec: stage.spec.clone(),
                output: stage.output.clone(),
                info: stage.info.clone(),
                loaded_at: SystemTime::now(),
            };
            let (reply, outcome) = oneshot::channel();
            self.send_swap(i, stage.into_replacement(reply), view, outcome, "pipeline")
                .await;
            done.push(format!(
                "swapping stage `{}`",
                self.pipelines[i].stages[s].spec.name
            ));
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

    /// Opens new and changed sinks, points the processor at the new set, and retires the
    /// sinks it no longer uses once they have delivered what they hold.
    async fn rewire(&mut self, i: usize, new: NewSinks) -> Result<String, String> {
        let m = &self.pipelines[i];
        let set = m.running.sinks.clone();
        let current: Vec<(
            u64,
            String,
            crate::sinks::SinkConfig,
            Option<tokio::sync::mpsc::Sender<_>>,
        )> = set
            .lock()
            .expect("sink set")
            .iter()
            .map(|e| (e.id, e.name.clone(), e.config.clone(), e.tx.clone()))
            .collect();
        let mut senders = Vec::new();
        let mut kept = Vec::new();
        let mut opened: Vec<SinkEntry> = Vec::new();
        for (k, (name, cfg)) in new.sinks.iter().enumerate() {
            let same = current
                .iter()
                .find(|(id, n, c, tx)| n == name && c == cfg && tx.is_some() && !kept.contains(id));
            if let Some((id, _, _, tx)) = same {
                kept.push(*id);
                senders.push((name.clone(), tx.clone().expect("checked")));
                continue;
            }
            let dead_letters = m.running.dead_letters().ok_or("the pipeline has stopped")?;
            let ctx = SinkContext {
                fields: new.fields[k].clone(),
                dead_letters: Some(dead_letters),
            };
            let entry = open_sink(name, cfg, ctx).await.map_err(|e| e.to_string())?;
            senders.push((name.clone(), entry.tx.clone().expect("just opened")));
            opened.push(entry);
        }
        let added: Vec<String> = opened.iter().map(|e| e.name.clone()).collect();
        set.lock().expect("sink set").extend(opened);
        let (tell, told) = oneshot::channel();
        let rewire = Rewire {
            sinks: senders,
            dead_letter: new.dead_letter,
            routes: new.routes,
            done: tell,
        };
        if m.running.feed.send(Feed::Rewire(rewire)).await.is_err() || told.await.is_err() {
            return Err("the pipeline has stopped".into());
        }
        let retired = retire(&set, &kept, &added);
        Ok(format!(
            "sinks opened: [{}], retired: [{}]",
            added.join(", "),
            retired.join(", ")
        ))
    }
}

/// Closes every sink of `set` that is neither kept nor just added, and removes each from
/// the set once its task has finished (until then it holds source commits back, so rows
/// it still holds are not committed past).
fn retire(set: &crate::pipeline::SinkSet, kept: &[u64], added: &[String]) -> Vec<String> {
    let mut names = Vec::new();
    let mut guard = set.lock().expect("sink set");
    let newest = guard.len() - added.len();
    for entry in guard[..newest]
        .iter_mut()
        .filter(|e| !kept.contains(&e.id) && e.tx.is_some())
    {
        entry.tx = None;
        names.push(entry.name.clone());
        let (id, set, task, name) = (
            entry.id,
            Arc::clone(set),
            entry.task.take(),
            entry.name.clone(),
        );
        tokio::spawn(async move {
            if let Some(task) = task
                && let Ok(Err(e)) = task.await
            {
                tracing::warn!("retired sink `{name}` ended with an error: {e}");
            }
            set.lock().expect("sink set").retain(|e| e.id != id);
        });
    }
    names
}

#[cfg(test)]
mod tests;
