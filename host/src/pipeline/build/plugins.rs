//! A pipeline's plugins, loaded before its stages are built: every stage's and canary's
//! at once, so that a first start compiles them side by side.

use crate::config::{Diagnostics, PipelineConfig, StageConfig};
use crate::plugin::{LoadedPlugin, Plugin, PluginEngine};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use toml::Spanned;

/// The plugins of a pipeline's stages and canaries, loaded before the stages are built, all
/// at once (`PluginEngine::load_all`), by path and whether they are fuel-metered.
pub(super) struct Plugins {
    loaded: HashMap<(PathBuf, bool), Result<Arc<LoadedPlugin>, String>>,
}

impl Plugins {
    pub(super) fn load(cfg: &PipelineConfig, engine: &PluginEngine) -> Plugins {
        let mut wanted: Vec<(PathBuf, bool)> = Vec::new();
        for sc in &cfg.stages {
            let canary = sc.canary.as_ref().and_then(|c| c.get_ref().plugin.as_ref());
            for plugin in std::iter::once(&sc.plugin).chain(canary) {
                let key = (cfg.base_dir.join(plugin.get_ref()), metered(sc));
                if !wanted.contains(&key) {
                    wanted.push(key);
                }
            }
        }
        let results = engine.load_all(&wanted).into_iter();
        let results = results.map(|r| r.map_err(|e| e.to_string()));
        Plugins {
            loaded: wanted.into_iter().zip(results).collect(),
        }
    }
}

/// Whether a stage's plugin runs on the fuel-metered runtime.
fn metered(sc: &StageConfig) -> bool {
    (sc.limits.as_ref()).is_some_and(|l| l.get_ref().fuel.is_some())
}

/// A stage's plugin, as [`Plugins`] loaded it.
pub(super) fn load(
    cfg: &PipelineConfig,
    sc: &StageConfig,
    plugin: &Spanned<String>,
    plugins: &Plugins,
    diags: &mut Diagnostics,
) -> Option<Arc<dyn Plugin>> {
    let key = (cfg.base_dir.join(plugin.get_ref()), metered(sc));
    let loaded = plugins
        .loaded
        .get(&key)
        .expect("every stage's plugin was loaded");
    match loaded {
        Ok(p) => Some(p.clone()),
        Err(e) => {
            let hint = "build the plugins with scripts/build-plugins.sh; paths are relative to the pipeline file";
            diags.error_hint(
                Some(plugin.span()),
                format!("stage `{}`: {e}", sc.name.get_ref()),
                hint,
            );
            None
        }
    }
}
