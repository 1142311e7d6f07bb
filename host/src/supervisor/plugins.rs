//! A changed `.wasm` file: every stage that runs it gets the new version, prepared here
//! (read, compiled, same-role check, instantiated, configured with the stage's own setup)
//! and handed to the stage's processor, which swaps it in at a batch boundary.

use super::{Event, Managed, StageView, Supervisor, SwapDone, normalize, status::Change};
use crate::pipeline::{Feed, Replacement, StageSpec, SwapOutcome, instantiate};
use crate::plugin::{LoadedPlugin, sha256_hex};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::oneshot;

impl Supervisor {
    /// Rolls the plugin at `path` out to every stage that runs it.
    pub(super) async fn plugin_changed(&mut self, path: &Path) {
        let users: Vec<(usize, usize)> = self
            .pipelines
            .iter()
            .enumerate()
            .flat_map(|(p, m)| {
                m.stages
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| normalize(&v.spec.plugin.path) == path)
                    .map(move |(s, _)| (p, s))
            })
            .collect();
        if users.is_empty() {
            return;
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => Arc::new(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(
                    "plugin {} was removed; its stages keep running the version they loaded",
                    path.display()
                );
                return;
            }
            Err(e) => {
                self.reject_all(&users, format!("cannot read {}: {e}", path.display()));
                return;
            }
        };
        let hash = sha256_hex(&bytes);
        for (p, s) in users {
            let mut spec = self.pipelines[p].stages[s].spec.clone();
            if spec.plugin.hash == hash {
                continue; // touched, not changed
            }
            let metered = spec.limits.fuel.is_some();
            match self.compile(path, &bytes, &hash, metered).await {
                Ok(plugin) => {
                    spec.plugin = plugin;
                    self.prepare_swap(p, s, spec, "plugin").await;
                }
                Err(e) => self.reject(p, s, Some(hash.clone()), e),
            }
        }
    }

    /// Compiles plugin bytes, or reuses an earlier compilation of the same bytes.
    async fn compile(
        &mut self,
        path: &Path,
        bytes: &Arc<Vec<u8>>,
        hash: &str,
        metered: bool,
    ) -> Result<Arc<LoadedPlugin>, String> {
        let key = (hash.to_string(), metered);
        if let Some(p) = self.compiled.get(&key) {
            return Ok(p.clone());
        }
        let (engine, path, bytes) = (self.engine.clone(), path.to_path_buf(), bytes.clone());
        let loaded = tokio::task::spawn_blocking(move || {
            let runtime = if metered {
                &engine.metered
            } else {
                &engine.plain
            };
            LoadedPlugin::from_bytes_on(runtime, &path, &bytes)
        })
        .await
        .map_err(|e| format!("compiling panicked: {e}"))?
        .map_err(|e| e.to_string())?;
        let loaded = Arc::new(loaded);
        self.compiled.insert(key, loaded.clone());
        Ok(loaded)
    }

    /// Checks the role, instantiates and configures `spec` off the hot path, then sends it
    /// to the processor of pipeline `p`.
    pub(super) async fn prepare_swap(
        &mut self,
        p: usize,
        s: usize,
        spec: StageSpec,
        kind: &'static str,
    ) {
        let old = &self.pipelines[p].stages[s];
        let hash = Some(spec.plugin.hash.clone());
        if spec.plugin.role != old.spec.plugin.role {
            let why = format!(
                "the new file implements the `{}` world, the stage's plugin the `{}` world",
                spec.plugin.role.name(),
                old.spec.plugin.role.name()
            );
            return self.reject(p, s, hash, why);
        }
        let prepared = tokio::task::spawn_blocking(move || {
            let (instance, output) = instantiate(&spec)?;
            Ok::<_, crate::plugin::CallError>((spec, instance, output))
        })
        .await;
        let (spec, instance, output) = match prepared {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                return self.reject(
                    p,
                    s,
                    hash,
                    format!("the new version failed to start: {}", e.describe()),
                );
            }
            Err(e) => {
                return self.reject(
                    p,
                    s,
                    hash,
                    format!("preparing the new version panicked: {e}"),
                );
            }
        };
        let info = instance.info.clone();
        let view = StageView {
            spec: spec.clone(),
            output: output.clone(),
            info: info.clone(),
            loaded_at: SystemTime::now(),
        };
        let (reply, outcome) = oneshot::channel();
        let stage = spec.name.to_string();
        let replacement = Replacement {
            stage,
            instance,
            info,
            output,
            spec,
            reply,
        };
        self.send_swap(p, replacement, view, outcome, kind).await;
    }

    /// Hands a prepared replacement to the processor; its outcome comes back as an event,
    /// since the processor confirms a swap only after the new version's first batch.
    pub(super) async fn send_swap(
        &mut self,
        p: usize,
        replacement: Replacement,
        view: StageView,
        outcome: oneshot::Receiver<SwapOutcome>,
        kind: &'static str,
    ) {
        let m: &Managed = &self.pipelines[p];
        let pipeline = m.running.name.clone();
        if m.running
            .feed
            .send(Feed::Swap(Box::new(replacement)))
            .await
            .is_err()
        {
            let change = Change::new(
                &pipeline,
                Some(&view.spec.name),
                kind,
                false,
                "the pipeline has stopped".into(),
            );
            return self.board.record(change);
        }
        let events = self.events.clone();
        tokio::spawn(async move {
            let outcome = outcome.await;
            let _ = events.send(Event::Swapped(Box::new(SwapDone {
                pipeline,
                view,
                kind,
                outcome,
            })));
        });
    }

    /// Records a finished swap and, if it took, makes the new version the stage's.
    pub(super) fn swap_done(&mut self, done: SwapDone) {
        let SwapDone {
            pipeline,
            view,
            kind,
            outcome,
        } = done;
        let stage = view.spec.name.to_string();
        let mut change = Change::new(&pipeline, Some(&stage), kind, false, String::new());
        change.hash = Some(view.spec.plugin.hash.clone());
        match outcome {
            Ok(SwapOutcome::Swapped { pause, first_batch }) => {
                change.accepted = true;
                change.pause_us = Some(pause.as_micros() as u64);
                change.first_batch_us = first_batch.map(|d| d.as_micros() as u64);
                change.detail = format!(
                    "now runs {} {} ({}), state handed over in {} µs",
                    view.info.name,
                    view.info.version,
                    &view.spec.plugin.hash[..12],
                    pause.as_micros()
                );
                if let Some(m) = self
                    .pipelines
                    .iter_mut()
                    .find(|m| m.running.name == pipeline)
                    && let Some(v) = m.stages.iter_mut().find(|v| v.spec.name == view.spec.name)
                {
                    // Routes belong to the pipeline; a rewire may have changed them since.
                    let to = std::mem::take(&mut v.spec.to);
                    *v = view;
                    v.spec.to = to;
                }
                if let Some(m) = self.pipelines.iter().find(|m| m.running.name == pipeline) {
                    self.publish(m, "running");
                }
            }
            Ok(SwapOutcome::Rejected(why)) => {
                change.detail = format!("kept the running version: {why}")
            }
            Err(_) => {
                change.detail =
                    "the pipeline stopped before the new version processed a batch".into()
            }
        }
        self.board.record(change);
    }

    fn reject(&self, p: usize, s: usize, hash: Option<String>, why: String) {
        let m = &self.pipelines[p];
        let mut change = Change::new(
            &m.running.name,
            Some(&m.stages[s].spec.name),
            "plugin",
            false,
            format!("kept the running version: {why}"),
        );
        change.hash = hash;
        self.board.record(change);
    }

    fn reject_all(&self, users: &[(usize, usize)], why: String) {
        for &(p, s) in users {
            self.reject(p, s, None, why.clone());
        }
    }
}
