//! The plugin engine: the two runtimes (plain and fuel-metered) and the compiled-plugin
//! caches: each distinct component (by content hash) is compiled once per process, whoever
//! asks for it (a pipeline being built, a hot swap), and once per machine: compiled code is
//! kept on disk (`disk.rs`), so a later `run` or `check` maps it instead of compiling.
//! With a [`CompileChild`] (the commands), compiling happens in a child process that
//! writes the code there (`child.rs`); the host itself only maps it.

use super::child::{ChildError, CompileChild};
use super::compile::read_component;
use super::disk::DiskCache;
use super::loaded::{Compiled, LoadError, LoadedPlugin, chain, sha256_hex};
use super::runtime::Runtime;
use std::collections::HashMap;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiled plugins kept beyond those in use; older unused ones are dropped.
const CACHE_SPARE: usize = 16;

/// The runtimes shared by every plugin of the process (fuel metering costs every call, so
/// only stages that ask for a fuel limit run on the metered one), and the compiled plugins.
pub struct PluginEngine {
    plain: Runtime,
    metered: Runtime,
    cache: Mutex<HashMap<(String, bool), Arc<Compiled>>>,
    /// Compiled plugins on disk, when a folder for them could be made.
    disk: Option<DiskCache>,
    /// Where components are compiled when there is an on-disk cache; `None`: here.
    child: Option<CompileChild>,
    /// The on-disk cache when no lasting one is kept: removed with the engine.
    scratch: Option<tempfile::TempDir>,
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

impl PluginEngine {
    /// An engine with the on-disk cache in [`default_cache_dir`].
    pub fn new() -> wasmtime::Result<Self> {
        Self::with_cache_dir(default_cache_dir().as_deref())
    }

    /// An engine that keeps compiled plugins in `dir` (`None`: only in memory).
    pub fn with_cache_dir(dir: Option<&Path>) -> wasmtime::Result<Self> {
        Ok(PluginEngine {
            plain: Runtime::new(false)?,
            metered: Runtime::new(true)?,
            cache: Mutex::default(),
            disk: dir.and_then(DiskCache::open),
            child: None,
            scratch: None,
        })
    }

    /// Compiles in `child` processes from now on. They hand compiled code over through the
    /// on-disk cache; without one (`ADSTREAM_COMPILE_CACHE=off`, or a directory that cannot
    /// be made) through a scratch one that lasts as long as the engine.
    pub fn compile_in(mut self, child: Option<CompileChild>) -> wasmtime::Result<Self> {
        let Some(child) = child else {
            return Ok(self);
        };
        if self.disk.is_none() {
            let scratch = tempfile::Builder::new()
                .prefix("adstream-compiled-")
                .tempdir()?;
            self.disk = DiskCache::open(scratch.path());
            self.scratch = Some(scratch);
        }
        self.child = Some(child);
        Ok(self)
    }

    /// Reads and compiles the component at `path`, or reuses the compiled one with the
    /// same content.
    pub fn load(&self, path: &Path, metered: bool) -> Result<Arc<LoadedPlugin>, LoadError> {
        self.load_bytes(path, &read_component(path)?, metered)
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
                let component = self.component(runtime, path, bytes, &key.0)?;
                let c = Compiled::new(runtime, path, component, bytes.len(), key.0.clone());
                let c = Arc::new(c?);
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

    /// Loads each `(path, metered)` of `wanted` as [`load`](Self::load) does, compiling
    /// on as many threads as there are cores: a first start compiles its plugins at once
    /// (each compile, in a child or here, uses one core), not one after another.
    pub fn load_all(
        &self,
        wanted: &[(PathBuf, bool)],
    ) -> Vec<Result<Arc<LoadedPlugin>, LoadError>> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = cores.min(wanted.len());
        if threads <= 1 {
            return wanted.iter().map(|(p, m)| self.load(p, *m)).collect();
        }
        let next = AtomicUsize::new(0);
        let mut loaded: Vec<(usize, _)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut got = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some((path, metered)) = wanted.get(i) else {
                                return got;
                            };
                            got.push((i, self.load(path, *metered)));
                        }
                    })
                })
                .collect();
            let joined = workers
                .into_iter()
                .map(|w| w.join().expect("a loading thread"));
            joined.flatten().collect()
        });
        loaded.sort_by_key(|(i, _)| *i);
        loaded.into_iter().map(|(_, l)| l).collect()
    }

    /// The compiled component: mapped from the on-disk cache, else compiled by a child
    /// into it and mapped, else (no child, or one that cannot start) compiled here and
    /// kept there.
    fn component(
        &self,
        runtime: &Runtime,
        path: &Path,
        bytes: &[u8],
        hash: &str,
    ) -> Result<Component, LoadError> {
        let engine = &runtime.engine;
        let Some(disk) = &self.disk else {
            return compile_here(engine, path, bytes);
        };
        let stem = disk.stem(engine, hash, runtime.metered);
        if let Some(component) = disk.load(engine, &stem) {
            return Ok(component);
        }
        let failed = |reason: String| LoadError::Compile {
            path: path.into(),
            reason,
        };
        // A first start spends seconds here; say so, so that it is not taken for a hang.
        tracing::info!("compiling {} (kept for later starts)", path.display());
        if let Some(child) = &self.child {
            match child.compile(bytes, runtime.metered, &stem) {
                Ok(()) => {
                    disk.trim();
                    let loaded = disk.load(engine, &stem);
                    return loaded.ok_or_else(|| failed("its compiled code does not load".into()));
                }
                Err(ChildError::Spawn(e)) => {
                    tracing::warn!("cannot start a compile child ({e}); compiling in the host");
                }
                Err(ChildError::Failed(reason)) => return Err(failed(reason)),
            }
        }
        let component = compile_here(engine, path, bytes)?;
        if let Ok(code) = component.serialize() {
            disk.store(&stem, &code);
        }
        Ok(component)
    }
}

/// Compiles `bytes` in this process.
fn compile_here(engine: &Engine, path: &Path, bytes: &[u8]) -> Result<Component, LoadError> {
    let component = Component::from_binary(engine, bytes).map_err(|e| LoadError::Compile {
        path: path.into(),
        reason: chain(&e),
    });
    give_back_free_memory();
    component
}

/// Returns the allocator's free memory to the system: glibc keeps what compiling a
/// component freed. The demo's first run (nothing in the compile cache) peaked at 80/81
/// MiB without this and 74/74 with it, when the host compiled its plugins itself.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn give_back_free_memory() {
    // SAFETY: malloc_trim only releases free pages; it is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_back_free_memory() {}
