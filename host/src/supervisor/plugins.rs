//! A changed `.wasm` file: every stage that runs it gets the new version. The supervisor
//! compiles it (once, through the engine's cache) and asks each pipeline to prepare and
//! swap it in; the pipeline does the rest at a batch boundary.

use super::{Supervisor, SwapDone, normalize, status::Change};
use crate::pipeline::{Replacement, SwapOutcome};
use crate::plugin::{LoadError, Plugin, read_component, sha256_hex};
use std::path::Path;
use std::sync::Arc;

/// A stage that runs a changed plugin file, or has it as its canary.
struct User {
    p: usize,
    stage: String,
    metered: bool,
    /// The hash of the version it runs.
    running: String,
    canary: bool,
}

impl Supervisor {
    /// Rolls the plugin at `path` out to every stage that runs it.
    pub(super) async fn plugin_changed(&mut self, path: &Path) {
        let users = self.users(path);
        if users.is_empty() {
            return;
        }
        let bytes = match read_component(path) {
            Ok(b) => Arc::new(b),
            Err(LoadError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                tracing::warn!(
                    "plugin {} was removed; its stages keep running the version they loaded",
                    path.display()
                );
                return;
            }
            Err(e) => {
                for User { p, stage, .. } in &users {
                    self.reject(*p, stage, None, e.to_string());
                }
                return;
            }
        };
        let hash = sha256_hex(&bytes);
        for u in users {
            if u.running == hash {
                continue; // touched, not changed
            }
            match self.compile(path, &bytes, u.metered).await {
                Ok(plugin) => self.roll_out(u.p, &u.stage, plugin, u.canary).await,
                Err(e) => self.reject(u.p, &u.stage, Some(hash.clone()), e),
            }
        }
    }

    /// The stages that run the plugin at `path`, or have it as their canary.
    fn users(&self, path: &Path) -> Vec<User> {
        let mut users = Vec::new();
        for (p, m) in self.pipelines.iter().enumerate() {
            for v in m.running.stages() {
                let candidate = v.spec.canary.as_ref().map(|c| &c.plugin);
                for (plugin, canary) in [(Some(&v.spec.plugin), false), (candidate, true)] {
                    let Some(plugin) = plugin.filter(|pl| normalize(pl.path()) == path) else {
                        continue;
                    };
                    users.push(User {
                        p,
                        stage: v.spec.name.to_string(),
                        metered: plugin.metered(),
                        running: plugin.hash().to_string(),
                        canary,
                    });
                }
            }
        }
        users
    }

    /// Compiles plugin bytes off the async threads (the engine reuses an earlier
    /// compilation of the same bytes).
    async fn compile(
        &self,
        path: &Path,
        bytes: &Arc<Vec<u8>>,
        metered: bool,
    ) -> Result<Arc<dyn Plugin>, String> {
        let (engine, path, bytes) = (self.engine.clone(), path.to_path_buf(), bytes.clone());
        tokio::task::spawn_blocking(move || engine.load_bytes(&path, &bytes, metered))
            .await
            .map_err(|e| format!("compiling panicked: {e}"))?
            .map(|p| p as Arc<dyn Plugin>)
            .map_err(|e| e.to_string())
    }

    /// Prepares `plugin` for stage `stage` of pipeline `p` (as its canary's candidate when
    /// `canary`) and swaps it in.
    async fn roll_out(&mut self, p: usize, stage: &str, plugin: Arc<dyn Plugin>, canary: bool) {
        let hash = plugin.hash().to_string();
        let running = &self.pipelines[p].running;
        let prepared = match canary {
            false => running.prepare(stage, plugin).await,
            true => running.prepare_canary(stage, plugin).await,
        };
        match prepared {
            Ok(r) => self.send_swap(p, r, "plugin").await,
            Err(e) => self.reject(p, stage, Some(hash), e.to_string()),
        }
    }

    /// Hands a prepared replacement to its pipeline; the outcome comes back as an event,
    /// since the pipeline confirms a swap only after the new version's first batch.
    pub(super) async fn send_swap(&mut self, p: usize, r: Replacement, kind: &'static str) {
        let running = &self.pipelines[p].running;
        let pipeline = running.name().to_string();
        let stage = r.spec.name.to_string();
        let hash = r.spec.plugin.hash().to_string();
        let info = r.view().info;
        let who = format!("{} {}", info.name, info.version);
        match running.swap(r).await {
            Ok(outcome) => {
                // A stage that rarely gets a batch (an alert formatter) can take minutes to
                // confirm; say that the new version waits for it, so the wait is not silent.
                tracing::info!(
                    "{kind} change to pipeline `{pipeline}`, stage `{stage}`: {} is ready and \
                     takes over at the stage's next batch",
                    crate::plugin::short_hash(&hash)
                );
                self.swaps.spawn(async move {
                    SwapDone {
                        pipeline,
                        stage,
                        hash,
                        who,
                        kind,
                        outcome: outcome.await,
                    }
                });
            }
            Err(e) => {
                let change = Change::new(&pipeline, Some(&stage), kind, false, e.to_string());
                self.board.record(change);
            }
        }
    }

    /// Records a finished swap and, if it took, shows the stage's new version.
    pub(super) fn swap_done(&mut self, done: SwapDone) {
        let mut change = Change::new(
            &done.pipeline,
            Some(&done.stage),
            done.kind,
            false,
            String::new(),
        );
        change.hash = Some(done.hash.clone());
        match done.outcome {
            SwapOutcome::Swapped { pause, first_batch } => {
                change.accepted = true;
                change.pause_us = Some(pause.as_micros() as u64);
                change.first_batch_us = first_batch.map(|d| d.as_micros() as u64);
                change.detail = format!(
                    "now runs {} ({}), state handed over in {} µs",
                    done.who,
                    crate::plugin::short_hash(&done.hash),
                    pause.as_micros()
                );
                // Gone when the swap's first batch was its pipeline's last.
                let m = self
                    .pipelines
                    .iter()
                    .find(|m| m.running.name() == done.pipeline);
                if let Some(m) = m {
                    self.publish(m, "running");
                }
            }
            SwapOutcome::Rejected(why) => {
                change.detail = format!("kept the running version: {why}")
            }
        }
        self.board.record(change);
    }

    fn reject(&self, p: usize, stage: &str, hash: Option<String>, why: String) {
        let mut change = Change::new(
            self.pipelines[p].running.name(),
            Some(stage),
            "plugin",
            false,
            format!("kept the running version: {why}"),
        );
        change.hash = hash;
        self.board.record(change);
    }
}
