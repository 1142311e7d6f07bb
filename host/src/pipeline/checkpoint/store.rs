//! The checkpoint store of a pipeline spread over hosts: a folder every host can reach (one
//! machine's disk, or a network file system whose locks work), holding one cut per unit of
//! state — each source partition, and the merge — so that a unit moves between hosts on
//! its own.
//!
//! Fencing: each unit has a claim file holding an owner epoch. A host that takes a unit
//! raises the epoch; a cut is written only under the claim file's lock and only while the
//! epoch is still the writer's. A host that lost a unit (paused, cut off) and wakes up can
//! no longer write its cut: what it did since is never what the next owner resumes from.
//! The folder also names its consumer group, so that a host of another group, which would
//! read every partition again and overwrite the cuts, is refused.

use super::file::{self, Checkpoint, CheckpointError};
use crate::config::bounded::read_at_most;
use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A unit of state: what one cut holds and one host owns at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    /// A source partition: its position, its watermark, its lanes' states.
    Partition(i32),
    /// The merge: its position in the partials topic, the mergers' states and every
    /// stage after them.
    Merge,
}

impl std::fmt::Display for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unit::Partition(p) => write!(f, "partition {p}"),
            Unit::Merge => f.write_str("the merge"),
        }
    }
}

impl Unit {
    fn stem(&self) -> String {
        match self {
            Unit::Partition(p) => format!("partition-{p}"),
            Unit::Merge => "merge".into(),
        }
    }
}

/// A unit taken by this host, at `epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub unit: Unit,
    pub epoch: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("checkpoint store {dir}: {source}")]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "checkpoint store {dir} belongs to consumer group `{theirs}`, and this host is in \
         `{ours}`: two groups would each read every partition and overwrite each other's \
         cuts. Use group `{theirs}`, or another [checkpoint] dir"
    )]
    Group {
        dir: PathBuf,
        theirs: String,
        ours: String,
    },
    #[error(
        "{unit} was taken over by {owner} (epoch {theirs}; this host held epoch {ours}): \
         its cut is not written, and what this host did with it since does not count"
    )]
    Fenced {
        unit: Unit,
        owner: String,
        theirs: u64,
        ours: u64,
    },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// One pipeline's folder in the store, as this host sees it.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    /// Who this host is, as claim files name it.
    owner: String,
    /// Partitions the group is taking from this host whose last cut is not written yet.
    releasing: Arc<Mutex<BTreeSet<i32>>>,
}

impl Store {
    /// Opens (creating) the folder of a pipeline run by consumer group `group`; `owner`
    /// names this host in claims.
    pub fn open(dir: &Path, group: &str, owner: &str) -> Result<Store, StoreError> {
        let io = |source| StoreError::Io {
            dir: dir.into(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        // Read and written under its lock: hosts starting at once must not read the file
        // between its creation and its contents.
        let mut f = (OpenOptions::new().read(true).write(true).create(true))
            .truncate(false)
            .open(dir.join("group"))
            .map_err(io)?;
        f.lock().map_err(io)?;
        let theirs = bounded(&mut f).map_err(io)?;
        let theirs = theirs.trim();
        if theirs.is_empty() {
            (f.write_all(format!("{group}\n").as_bytes()))
                .and_then(|_| f.sync_all())
                .map_err(io)?;
        } else if theirs != group {
            return Err(StoreError::Group {
                dir: dir.into(),
                theirs: theirs.into(),
                ours: group.into(),
            });
        }
        Ok(Store {
            dir: dir.into(),
            owner: owner.into(),
            releasing: Arc::default(),
        })
    }

    /// `partitions` are being taken from this host; they are released once their last
    /// cut is written ([`released`](Self::released)).
    pub fn releasing(&self, partitions: &[i32]) {
        self.releasing.lock().expect("releasing").extend(partitions);
    }

    /// The last cut of `partitions` was written (or could not be).
    pub fn released(&self, partitions: &[i32]) {
        let mut releasing = self.releasing.lock().expect("releasing");
        for p in partitions {
            releasing.remove(p);
        }
    }

    /// Whether no partition is waiting for its last cut.
    pub fn all_released(&self) -> bool {
        self.releasing.lock().expect("releasing").is_empty()
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

    /// Takes `unit` for this host: its epoch raised, so that the host that had it can no
    /// longer write its cut.
    pub fn claim(&self, unit: Unit) -> Result<Claim, StoreError> {
        let mut f = self.locked(unit)?;
        let (epoch, _) = self.read_claim(&mut f)?;
        let epoch = epoch + 1;
        let text = format!("{epoch} {}\n", self.owner);
        (f.set_len(0).and_then(|_| f.rewind()))
            .and_then(|_| f.write_all(text.as_bytes()))
            .and_then(|_| f.sync_all())
            .map_err(|e| self.io(e))?;
        Ok(Claim { unit, epoch })
    }

    /// Who holds `unit` now, and at which epoch.
    #[cfg(test)]
    pub fn holder(&self, unit: Unit) -> Result<(u64, String), StoreError> {
        let mut f = self.locked(unit)?;
        self.read_claim(&mut f)
    }

    /// The newest cut of `unit`, if it has one.
    pub fn load(&self, unit: Unit) -> Result<Option<Checkpoint>, StoreError> {
        Ok(file::load(&self.cut_path(unit))?)
    }

    /// Writes `cp` as the cut of the claimed unit, unless another host claimed it since.
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

/// The cut of one partition, out of a cut over every partition this host owns; the merge
/// state goes with the partition whose owner merges (`pipeline/merge/`).
pub fn cut_of(cp: &Checkpoint, partition: i32) -> Checkpoint {
    let merging = partition == crate::pipeline::merge::MERGING_PARTITION;
    let stages = cp.stages.iter().filter_map(|(name, state)| {
        let own = crate::pipeline::stage::state_of_partition(state, partition, merging)?;
        Some((name.clone(), own))
    });
    Checkpoint {
        seq: cp.seq,
        positions: cp
            .positions
            .iter()
            .filter(|(p, _)| *p == partition)
            .copied()
            .collect(),
        watermark: cp.watermark,
        partition_times: (cp.partition_times.iter())
            .filter(|(p, _)| *p == partition)
            .copied()
            .collect(),
        stages: stages.collect(),
        sinks: Vec::new(),
        taken_at_ms: cp.taken_at_ms,
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

/// This host as claim files name it: host name and process id.
pub fn owner_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".into());
    format!("{}/{}", host.trim(), std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(seq: u64) -> Checkpoint {
        Checkpoint {
            seq,
            positions: vec![(3, seq as i64)],
            ..Default::default()
        }
    }

    #[test]
    fn a_host_that_lost_a_unit_can_no_longer_write_its_cut() {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open(dir.path(), "g", "a/1").unwrap();
        let b = Store::open(dir.path(), "g", "b/2").unwrap();
        let unit = Unit::Partition(3);
        let first = a.claim(unit).unwrap();
        a.save(first, &cut(1)).unwrap();
        let second = b.claim(unit).unwrap();
        assert_eq!(second.epoch, first.epoch + 1);
        assert_eq!(b.load(unit).unwrap(), Some(cut(1)));
        let e = a.save(first, &cut(2)).unwrap_err().to_string();
        assert!(e.contains("partition 3 was taken over by b/2"), "{e}");
        assert_eq!(
            b.load(unit).unwrap(),
            Some(cut(1)),
            "the zombie wrote nothing"
        );
        b.save(second, &cut(3)).unwrap();
        assert_eq!(a.load(unit).unwrap(), Some(cut(3)));
        assert_eq!(a.holder(unit).unwrap(), (second.epoch, "b/2".into()));
        assert_eq!(a.load(Unit::Merge).unwrap(), None);
    }

    /// A group file still empty — another host starting at the same moment has created
    /// it and not yet written it, or died in between — is no other group's (seen in CI:
    /// a host read it empty and was refused as of group ``).
    #[test]
    fn an_empty_group_file_belongs_to_no_group_yet() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("group"), "").unwrap();
        Store::open(dir.path(), "g", "a/1").unwrap();
        let e = Store::open(dir.path(), "other", "b/2")
            .unwrap_err()
            .to_string();
        assert!(e.contains("belongs to consumer group `g`"), "{e}");
    }

    #[test]
    fn a_host_of_another_group_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Store::open(dir.path(), "ads", "a/1").unwrap();
        Store::open(dir.path(), "ads", "b/2").unwrap();
        let e = Store::open(dir.path(), "other", "c/3")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("belongs to consumer group `ads`") && e.contains("`other`"),
            "{e}"
        );
    }
}
