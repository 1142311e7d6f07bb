//! The plugin engine: the two runtimes (plain and fuel-metered) and the compiled-plugin
//! caches: each distinct component (by content hash) is compiled once per process, whoever
//! asks for it (a pipeline being built, a hot swap), and once per machine: Wasmtime keeps
//! compiled code on disk keyed by the component's bytes, the engine's settings and
//! Wasmtime's version, so a later `run` or `check` starts without compiling. An entry that
//! cannot be read back is compiled again.

use super::loaded::{Compiled, LoadError, LoadedPlugin, sha256_hex};
use super::runtime::Runtime;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use wasmtime::{Cache, CacheConfig};

/// Compiled plugins kept beyond those in use; older unused ones are dropped.
const CACHE_SPARE: usize = 16;

/// The runtimes shared by every plugin of the process (fuel metering costs every call, so
/// only stages that ask for a fuel limit run on the metered one), and the compiled plugins.
pub struct PluginEngine {
    plain: Runtime,
    metered: Runtime,
    cache: Mutex<HashMap<(String, bool), Arc<Compiled>>>,
}

/// Where compiled plugins are kept unless `ADSTREAM_COMPILE_CACHE` says otherwise (a
/// directory, or `off`): `$XDG_CACHE_HOME/adstream/compiled`, else
/// `~/.cache/adstream/compiled`; none if neither is set.
pub fn default_cache_dir() -> Option<PathBuf> {
    let var = |k| std::env::var_os(k).filter(|v| !v.is_empty());
    match var("ADSTREAM_COMPILE_CACHE") {
        Some(v) if v == "off" => None,
        Some(v) => std::path::absolute(v).ok(),
        None => var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|d| d.join("adstream/compiled")),
    }
}

/// Most bytes of compiled plugins kept on disk; beyond it the oldest are removed.
const DISK_CACHE_BYTES: u64 = 256 << 20;

/// Wasmtime's on-disk cache in `dir`; without one (a directory that cannot be created)
/// plugins are compiled at every start, which is slower, not wrong.
fn disk_cache(dir: &Path) -> Option<Cache> {
    let mut config = CacheConfig::new();
    config
        .with_directory(dir)
        .with_files_total_size_soft_limit(DISK_CACHE_BYTES);
    match Cache::new(config) {
        Ok(cache) => Some(cache),
        Err(e) => {
            tracing::warn!(
                "compiled plugins will not be cached in {}: {e:#}",
                dir.display()
            );
            None
        }
    }
}

impl PluginEngine {
    /// An engine with the on-disk cache in [`default_cache_dir`].
    pub fn new() -> wasmtime::Result<Self> {
        Self::with_cache_dir(default_cache_dir().as_deref())
    }

    /// An engine that keeps compiled plugins in `dir` (`None`: only in memory).
    pub fn with_cache_dir(dir: Option<&Path>) -> wasmtime::Result<Self> {
        let cache = dir.and_then(disk_cache);
        Ok(PluginEngine {
            plain: Runtime::new(false, cache.as_ref())?,
            metered: Runtime::new(true, cache.as_ref())?,
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
                give_back_free_memory();
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

/// Returns the allocator's free memory to the system: glibc keeps what compiling a
/// component freed. The demo's first run (nothing in the compile cache) peaked at 80/81
/// MiB without this and 74/74 with it (BENCHMARKS.md); warm runs peak at 60–63.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn give_back_free_memory() {
    // SAFETY: malloc_trim only releases free pages; it is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_back_free_memory() {}
