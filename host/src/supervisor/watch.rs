//! Watching plugin and pipeline files. Folders are watched rather than files, because a
//! build that replaces a file by renaming (as `scripts/build-plugins.sh` does) gives it a
//! new inode that a watch on the old file would never see.

use super::Event;
use notify::{EventKind, RecursiveMode, Watcher as _};
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a file must stay quiet before it is acted on: editors and builds write in
/// several steps, and a half-written file must not be loaded.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

pub struct FileWatcher {
    watcher: notify::RecommendedWatcher,
    dirs: HashSet<PathBuf>,
}

/// `path` with its folder made absolute and free of `..`, so that the same file always has
/// the same name, even once it has been removed.
pub fn normalize(path: &Path) -> PathBuf {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match (parent.canonicalize(), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

impl FileWatcher {
    /// Starts watching; changed paths reach `to` as [`Event::Files`] once they settle.
    pub fn new(to: mpsc::UnboundedSender<Event>) -> notify::Result<FileWatcher> {
        let (raw_tx, raw_rx) = mpsc::unbounded_channel::<PathBuf>();
        let watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
                Ok(event) if relevant(&event.kind) => {
                    for path in event.paths {
                        let _ = raw_tx.send(path);
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("file watcher: {e}"),
            })?;
        tokio::spawn(debounce(raw_rx, to));
        Ok(FileWatcher {
            watcher,
            dirs: HashSet::new(),
        })
    }

    /// Watches the folder holding `file` (once).
    pub fn watch_parent_of(&mut self, file: &Path) {
        let dir = normalize(file)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        self.watch_dir(&dir);
    }

    pub fn watch_dir(&mut self, dir: &Path) {
        if self.dirs.contains(dir) {
            return;
        }
        match self.watcher.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                tracing::debug!("watching {}", dir.display());
                self.dirs.insert(dir.to_path_buf());
            }
            Err(e) => tracing::warn!("cannot watch {} for changes: {e}", dir.display()),
        }
    }
}

fn relevant(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
    )
}

/// Only plugins and pipeline files matter; a build's temporary files do not.
fn interesting(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("wasm" | "toml")
    )
}

/// Passes paths on once no event has arrived for [`DEBOUNCE`].
async fn debounce(mut raw: mpsc::UnboundedReceiver<PathBuf>, to: mpsc::UnboundedSender<Event>) {
    let mut pending = BTreeSet::new();
    loop {
        let next = if pending.is_empty() {
            raw.recv().await
        } else {
            match tokio::time::timeout(DEBOUNCE, raw.recv()).await {
                Ok(p) => p,
                Err(_) => {
                    let paths = std::mem::take(&mut pending).into_iter().collect();
                    if to.send(Event::Files(paths)).is_err() {
                        return;
                    }
                    continue;
                }
            }
        };
        match next {
            Some(path) if interesting(&path) => {
                pending.insert(normalize(&path));
            }
            Some(_) => {}
            None => return,
        }
    }
}
