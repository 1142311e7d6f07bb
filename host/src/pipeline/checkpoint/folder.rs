//! The checkpoint store in a folder every host reaches (one machine's disk, or a network
//! file system whose locks work): per unit a claim file holding its owner epoch and owner,
//! and its cut beside it, written only under the claim file's lock while the epoch is
//! still the writer's. A file `group` names the consumer group the folder belongs to.

use super::file::{self, Checkpoint};
use super::unit::{Claim, StoreError, Unit};
use crate::config::bounded::read_at_most;
use std::fs::{File, OpenOptions};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub(super) struct Folder {
    dir: PathBuf,
}

impl Folder {
    /// Opens (creating) the folder; the group it belongs to (`group` when new).
    pub fn open(dir: &Path, group: &str) -> Result<(Folder, String), StoreError> {
        let folder = Folder { dir: dir.into() };
        let io = |e| folder.io(e);
        std::fs::create_dir_all(dir).map_err(io)?;
        // Read and written under its lock: hosts starting at once must not read the file
        // between its creation and its contents.
        let mut f = (OpenOptions::new().read(true).write(true).create(true))
            .truncate(false)
            .open(dir.join("group"))
            .map_err(io)?;
        f.lock().map_err(io)?;
        let theirs = bounded(&mut f).map_err(io)?;
        let theirs = theirs.trim().to_string();
        if !theirs.is_empty() {
            return Ok((folder, theirs));
        }
        (f.write_all(format!("{group}\n").as_bytes()))
            .and_then(|_| f.sync_all())
            .map_err(io)?;
        Ok((folder, group.into()))
    }

    fn io(&self, source: std::io::Error) -> StoreError {
        StoreError::Io {
            dir: self.dir.clone(),
            source,
        }
    }

    fn cut_path(&self, unit: Unit) -> PathBuf {
        self.dir.join(format!("{}.cut", unit.stem()))
    }

    /// The claim file, locked until the returned file is dropped.
    fn locked(&self, unit: Unit) -> Result<File, StoreError> {
        let path = self.dir.join(format!("{}.claim", unit.stem()));
        let f = (OpenOptions::new().read(true).write(true).create(true))
            .truncate(false)
            .open(path)
            .map_err(|e| self.io(e))?;
        f.lock().map_err(|e| self.io(e))?;
        Ok(f)
    }

    /// The epoch and owner a locked claim file holds (0 and nobody when new).
    fn read_claim(&self, f: &mut File) -> Result<(u64, String), StoreError> {
        f.rewind().map_err(|e| self.io(e))?;
        let text = bounded(&mut *f).map_err(|e| self.io(e))?;
        let (epoch, owner) = text.trim().split_once(' ').unwrap_or(("0", "nobody"));
        Ok((epoch.parse().unwrap_or(0), owner.to_string()))
    }

    pub fn claim(&self, unit: Unit, owner: &str) -> Result<Claim, StoreError> {
        let mut f = self.locked(unit)?;
        let (epoch, _) = self.read_claim(&mut f)?;
        let epoch = epoch + 1;
        let text = format!("{epoch} {owner}\n");
        (f.set_len(0).and_then(|_| f.rewind()))
            .and_then(|_| f.write_all(text.as_bytes()))
            .and_then(|_| f.sync_all())
            .map_err(|e| self.io(e))?;
        Ok(Claim { unit, epoch })
    }

    #[cfg(test)]
    pub fn holder(&self, unit: Unit) -> Result<(u64, String), StoreError> {
        let mut f = self.locked(unit)?;
        self.read_claim(&mut f)
    }

    pub fn load(&self, unit: Unit) -> Result<Option<Checkpoint>, StoreError> {
        Ok(file::load(&self.cut_path(unit))?)
    }

    pub fn save(&self, claim: Claim, cp: &Checkpoint) -> Result<(), StoreError> {
        let mut f = self.locked(claim.unit)?;
        let (epoch, owner) = self.read_claim(&mut f)?;
        if epoch != claim.epoch {
            return Err(StoreError::Fenced {
                unit: claim.unit,
                owner,
                theirs: epoch,
                ours: claim.epoch,
            });
        }
        file::save(&self.cut_path(claim.unit), cp)?;
        Ok(())
    }
}

/// The text of a claim or group file: a line of a few dozen bytes, so anything past
/// [`MAX_CLAIM_BYTES`] is damage, an error rather than a read of whatever it holds.
fn bounded(f: &mut File) -> std::io::Result<String> {
    let bytes = read_at_most(f, MAX_CLAIM_BYTES)?.ok_or_else(|| {
        std::io::Error::other(format!(
            "a claim or group file over {MAX_CLAIM_BYTES} bytes"
        ))
    })?;
    String::from_utf8(bytes).map_err(std::io::Error::other)
}

/// The most a claim or group file may hold.
const MAX_CLAIM_BYTES: usize = 4 << 10;
