//! Compiled plugins on disk: one file of machine code per component and engine setting,
//! which a later start maps instead of compiling. A file is named by the component's
//! SHA-256, the engine (plain or fuel-metered) and a hash of the engine's compile settings;
//! one that does not load (damaged, or from another Wasmtime) is removed and compiled
//! again. The files are mapped, not read: their pages are the page cache's, shared by
//! every process that runs the plugin, and only the code that runs is resident.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Most bytes of compiled plugins kept; beyond it the least recently used are removed.
const MAX_BYTES: u64 = 256 << 20;

const EXTENSION: &str = "cwasm";

/// A folder of compiled plugins.
pub(super) struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    /// The cache in `dir`, made if missing; `None` (with a warning) when it cannot be: then
    /// plugins are compiled at every start, which is slower, not wrong.
    pub fn open(dir: &Path) -> Option<Self> {
        match std::fs::create_dir_all(dir) {
            Ok(()) => Some(DiskCache { dir: dir.into() }),
            Err(e) => {
                let dir = dir.display();
                tracing::warn!("compiled plugins will not be cached in {dir}: {e}");
                None
            }
        }
    }

    /// Where the component with SHA-256 `hash`, compiled by `engine`, is kept.
    pub fn file(&self, engine: &Engine, hash: &str, metered: bool) -> PathBuf {
        let mut settings = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut settings);
        env!("CARGO_PKG_VERSION").hash(&mut settings);
        let kind = if metered { "metered" } else { "plain" };
        let name = format!("{hash}-{kind}-{:016x}.{EXTENSION}", settings.finish());
        self.dir.join(name)
    }

    /// The compiled component in `file`, if there is one that loads; one that does not is
    /// removed.
    pub fn load(&self, engine: &Engine, file: &Path) -> Option<Component> {
        if !file.exists() {
            return None;
        }
        // SAFETY: the file holds code this host compiled (Wasmtime checks its header, its
        // version and the engine's settings); the folder must be writable only by the
        // user who runs adstream, as the README says.
        match unsafe { Component::deserialize_file(engine, file) } {
            Ok(component) => {
                // Its time of last use, for the eviction of the least recently used.
                let _ = std::fs::File::options()
                    .write(true)
                    .open(file)
                    .and_then(|f| f.set_modified(SystemTime::now()));
                Some(component)
            }
            Err(e) => {
                tracing::warn!("compiling again: {} does not load: {e:#}", file.display());
                let _ = std::fs::remove_file(file);
                None
            }
        }
    }

    /// Keeps `code` in `file`, written whole or not at all, then trims the folder.
    pub fn store(&self, file: &Path, code: &[u8]) {
        if let Err(e) = write_whole(file, code) {
            tracing::warn!("cannot keep compiled code in {}: {e}", file.display());
        }
        self.trim();
    }

    /// Removes the least recently used files while the folder holds over [`MAX_BYTES`].
    pub fn trim(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == EXTENSION))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        files.sort();
        for (_, len, path) in files {
            if total <= MAX_BYTES {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }
}

/// Writes `code` beside `file` and renames it into place, so that no reader (this host or
/// another) ever maps a half-written file.
pub(super) fn write_whole(file: &Path, code: &[u8]) -> std::io::Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, code)?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}
