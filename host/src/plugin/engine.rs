//! The plugin engine: the two runtimes (plain and fuel-metered) and the compiled-plugin
//! cache: each distinct component (by content hash) is compiled once per process, whoever
//! asks for it (a pipeline being built, a hot swap).

use super::loaded::{Compiled, LoadError, LoadedPlugin, sha256_hex};
use super::runtime::Runtime;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Compiled plugins kept beyond those in use; older unused ones are dropped.
const CACHE_SPARE: usize = 16;

/// The runtimes shared by every plugin of the process (fuel metering costs every call, so
/// only stages that ask for a fuel limit run on the metered one), and the compiled plugins.
pub struct PluginEngine {
    plain: Runtime,
    metered: Runtime,
    cache: Mutex<HashMap<(String, bool), Arc<Compiled>>>,
}

impl PluginEngine {
    pub fn new() -> wasmtime::Result<Self> {
        Ok(PluginEngine {
            plain: Runtime::new(false)?,
            metered: Runtime::new(true)?,
            cache: Mutex::default(),
        })
    }

    /// Reads and compiles the component at `path`, or reuses the compiled one with the
    /// same content.
    pub fn load(&self, path: &Path, metered: bool) -> Result<Arc<LoadedPlugin>, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.into(),
            source,
        })?;
        self.load_bytes(path, &bytes, metered)
    }

    /// Like [`load`](Self::load), from bytes already read; `path` names it in errors.
    pub fn load_bytes(
        &self,
        path: &Path,
        bytes: &[u8],
        metered: bool,
    ) -> Result<Arc<LoadedPlugin>, LoadError> {
        let key = (sha256_hex(bytes), metered);
        let cached = self.cache.lock().expect("plugin cache").get(&key).cloned();
        let compiled = match cached {
            Some(c) => c,
            None => {
                let runtime = if metered { &self.metered } else { &self.plain };
                let c = Arc::new(Compiled::new(runtime, path, bytes, key.0.clone())?);
                let mut cache = self.cache.lock().expect("plugin cache");
                if cache.len() >= CACHE_SPARE {
                    cache.retain(|_, p| Arc::strong_count(p) > 1);
                }
                cache.insert(key, c.clone());
                c
            }
        };
        Ok(Arc::new(LoadedPlugin {
            path: path.to_path_buf(),
            compiled,
        }))
    }
}
