//! Compiled plugins on disk: one file of machine code per component and engine setting,
//! which a later start maps instead of compiling. A file is named by the component's
//! SHA-256, the engine (plain or fuel-metered), a hash of the engine's compile settings,
//! and the first 32 hex digits of its own content's SHA-256: the host runs this code, so a
//! file whose bytes no longer match its name (a flipped bit, a truncated write) is removed
//! and compiled again rather than run, as is one that does not load (from another
//! Wasmtime). The files are mapped, not read into the heap: their pages are the page
//! cache's, shared by every process that runs the plugin, and only the code that runs is
//! resident; checking one reads it through a small buffer.

use sha2::Digest;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Most bytes of compiled plugins kept; beyond it the least recently used are removed.
const MAX_BYTES: u64 = 256 << 20;

const EXTENSION: &str = "cwasm";

/// Hex digits of a file's own SHA-256 in its name: 128 bits, so that damage never passes
/// for the code by chance.
const SUM_DIGITS: usize = 32;

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

    /// The name, without its checksum, of the component with SHA-256 `hash` compiled by
    /// `engine`: its entry's stem.
    pub fn stem(&self, engine: &Engine, hash: &str, metered: bool) -> PathBuf {
        let mut settings = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut settings);
        env!("CARGO_PKG_VERSION").hash(&mut settings);
        let kind = if metered { "metered" } else { "plain" };
        self.dir
            .join(format!("{hash}-{kind}-{:016x}", settings.finish()))
    }

    /// The compiled component under `stem`, if a file there is whole and loads; any other
    /// file under it is removed.
    pub fn load(&self, engine: &Engine, stem: &Path) -> Option<Component> {
        for file in files_of(stem) {
            let damage = match intact(&file) {
                Ok(true) => None,
                Ok(false) => Some("does not match its checksum".to_string()),
                Err(e) => Some(format!("cannot be read: {e}")),
            };
            if let Some(damage) = damage {
                tracing::warn!("compiling again: {} {damage}", file.display());
                let _ = std::fs::remove_file(&file);
            } else if let Some(component) = self.map(engine, &file) {
                return Some(component);
            }
        }
        None
    }

    /// The compiled component in `file`, whose bytes were checked; removed if it does not
    /// load.
    fn map(&self, engine: &Engine, file: &Path) -> Option<Component> {
        // SAFETY: the file holds code this host compiled, its bytes as written (checked
        // against its name just before; Wasmtime checks its header, its version and the
        // engine's settings); the folder must be writable only by the user who runs
        // adstream, as the README says.
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

    /// Keeps `code` under `stem`, written whole or not at all, then trims the folder.
    pub fn store(&self, stem: &Path, code: &[u8]) {
        if let Err(e) = write_entry(stem, code) {
            tracing::warn!("cannot keep compiled code in {}: {e}", stem.display());
        }
        self.trim();
    }

    /// Removes the least recently used files while the folder holds over [`MAX_BYTES`].
    /// Files of a build from before checksums (named without one, never checked) go at
    /// once.
    pub fn trim(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == EXTENSION))
            .filter(|e| named_sum(&e.path()).is_some() || std::fs::remove_file(e.path()).is_err())
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

/// Keeps `code` under `stem`: in the file named by the stem and the code's checksum.
pub(super) fn write_entry(stem: &Path, code: &[u8]) -> std::io::Result<()> {
    let sum = checksum(code)?;
    write_whole(&named(stem, &sum), code)
}

/// The file under `stem` for code with checksum `sum`.
fn named(stem: &Path, sum: &str) -> PathBuf {
    let mut name = stem.as_os_str().to_owned();
    name.push(format!("-{sum}.{EXTENSION}"));
    name.into()
}

/// The files under `stem`, whatever their checksum.
fn files_of(stem: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(stem)) = (stem.parent(), stem.file_name().and_then(|s| s.to_str())) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let prefix = format!("{stem}-");
    (entries.flatten())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == EXTENSION))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .collect()
}

/// The checksum `file`'s name ends with, if it is named as this build names entries.
fn named_sum(file: &Path) -> Option<&str> {
    let named = file.file_stem()?.to_str()?;
    let (_, sum) = named.rsplit_once('-')?;
    (sum.len() == SUM_DIGITS && sum.bytes().all(|b| b.is_ascii_hexdigit())).then_some(sum)
}

/// Whether `file`'s bytes have the checksum its name ends with.
fn intact(file: &Path) -> std::io::Result<bool> {
    let Some(sum) = named_sum(file) else {
        return Ok(false);
    };
    Ok(checksum(std::fs::File::open(file)?)? == sum)
}

/// The first [`SUM_DIGITS`] hex digits of the SHA-256 of what `from` reads, through a
/// buffer of 64 KiB (not the file's size: checking must not raise the host's peak memory).
fn checksum(mut from: impl Read) -> std::io::Result<String> {
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0; 64 << 10];
    loop {
        match from.read(&mut buffer)? {
            0 => break,
            n => hasher.update(&buffer[..n]),
        }
    }
    Ok(super::loaded::hex(&hasher.finalize()[..SUM_DIGITS / 2]))
}

/// Writes `code` beside `file` and renames it into place, so that no reader (this host or
/// another) ever maps a half-written file.
fn write_whole(file: &Path, code: &[u8]) -> std::io::Result<()> {
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
        let sum = "0".repeat(SUM_DIGITS);
        let path = dir.join(format!("{name}-{sum}.{EXTENSION}"));
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
        // A file an earlier build kept without a checksum is never mapped: it goes.
        let unchecked = dir.path().join(format!("e-plain-01.{EXTENSION}"));
        std::fs::write(&unchecked, b"code").unwrap();
        cache.trim();
        assert!(!unchecked.exists() && older.exists() && fourth.exists());
    }

    #[test]
    fn stored_code_is_whole_and_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(&dir.path().join("made")).unwrap();
        cache.store(&dir.path().join("made/x"), b"code");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("made"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(
            names.len(),
            1,
            "a temporary file was left behind: {names:?}"
        );
        assert_eq!(std::fs::read(&names[0]).unwrap(), b"code");
        let mode = std::fs::metadata(&names[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }

    #[test]
    fn an_entry_is_named_by_its_checksum_and_a_changed_byte_shows() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("abc-plain-01");
        write_entry(&stem, b"machine code").unwrap();
        // Another entry whose stem starts the same is not this one's.
        write_entry(&dir.path().join("abc-plain-012"), b"other code").unwrap();
        let files = files_of(&stem);
        assert_eq!(files.len(), 1, "{files:?}");
        let name = files[0].file_name().unwrap().to_str().unwrap();
        assert_eq!(
            name.len(),
            "abc-plain-01-.cwasm".len() + SUM_DIGITS,
            "{name}"
        );
        assert!(intact(&files[0]).unwrap());
        std::fs::write(&files[0], b"machine codE").unwrap();
        assert!(!intact(&files[0]).unwrap(), "one changed byte passed");
        std::fs::write(&files[0], b"machine cod").unwrap();
        assert!(!intact(&files[0]).unwrap(), "a truncated file passed");
    }
}
