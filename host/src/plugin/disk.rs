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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A cache file of `len` bytes (sparse: nothing written) last used `ago` before now.
    fn old_file(dir: &Path, name: &str, len: u64, ago: u64) -> PathBuf {
        let path = dir.join(format!("{name}.{EXTENSION}"));
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(len).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(ago))
            .unwrap();
        path
    }

    #[test]
    fn over_its_size_the_least_recently_used_files_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path()).unwrap();
        let third = MAX_BYTES / 3 + 1;
        let oldest = old_file(dir.path(), "a", third, 300);
        let older = old_file(dir.path(), "b", third, 200);
        let newer = old_file(dir.path(), "c", third, 100);
        let other = dir.path().join("notes.txt");
        std::fs::write(&other, b"not compiled code").unwrap();
        cache.trim();
        assert!(older.exists() && newer.exists() && other.exists());
        assert!(!oldest.exists(), "the least recently used file stayed");
        // A file loaded since is used more recently than one that was not.
        let fourth = old_file(dir.path(), "d", third, 0);
        std::fs::File::options()
            .write(true)
            .open(&older)
            .and_then(|f| f.set_modified(SystemTime::now()))
            .unwrap();
        cache.trim();
        assert!(older.exists() && fourth.exists() && !newer.exists());
    }

    #[test]
    fn stored_code_is_whole_and_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(&dir.path().join("made")).unwrap();
        let file = dir.path().join("made/x.cwasm");
        cache.store(&file, b"code");
        assert_eq!(std::fs::read(&file).unwrap(), b"code");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("made"))
            .unwrap()
            .collect();
        assert_eq!(names.len(), 1, "a temporary file was left behind");
    }
}
