//! The checkpoint store of a pipeline spread over hosts, holding one cut per unit of
//! state — each source partition, the merge of the windows going with partition 0 — so
//! that a unit moves between hosts on its own: a folder every host can reach (`folder.rs`: one machine's disk, or a network
//! file system whose locks work), or an S3-compatible object store (`objects.rs`: hosts on
//! many machines).
//!
//! Fencing: each unit has an owner epoch. A host that takes a unit raises the epoch; a cut
//! is written only while the epoch is still the writer's (under the claim file's lock in a
//! folder, by a conditional put in an object store). A host that lost a unit (paused, cut
//! off) and wakes up can no longer write its cut: what it did since is never what the next
//! owner resumes from. The store also names its consumer group, so that a host of another
//! group, which would read every partition again and overwrite the cuts, is refused.

use super::file::Checkpoint;
use super::folder::Folder;
use super::objects::Objects;
pub use super::unit::{Claim, StoreError, Unit};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Where a shared pipeline's cuts are: `[checkpoint] dir` is a folder, or an object
/// store's `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Folder(PathBuf),
    Objects(String),
}

impl Location {
    /// `dir` (a folder, or `s3://…`), and in it the store of pipeline `name`.
    pub fn of(dir: &str, name: &str) -> Location {
        match is_object_store(dir) {
            true => Location::Objects(format!("{}/{name}", dir.trim_end_matches('/'))),
            false => Location::Folder(PathBuf::from(dir).join(format!("{name}.partitions"))),
        }
    }
}

/// Whether `[checkpoint] dir` names an object store rather than a folder.
pub fn is_object_store(dir: &str) -> bool {
    dir.starts_with("s3://")
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Folder(dir) => write!(f, "{}", dir.display()),
            Location::Objects(url) => f.write_str(url),
        }
    }
}

/// One pipeline's part of the store, as this host sees it.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    /// Who this host is, as claim files name it.
    owner: String,
    /// Partitions the group is taking from this host whose last cut is not written yet.
    releasing: Arc<Mutex<BTreeSet<i32>>>,
}

#[derive(Debug, Clone)]
enum Backend {
    Folder(Folder),
    Objects(Arc<Objects>),
}

impl Store {
    /// Opens (creating) the store of a pipeline run by consumer group `group` at
    /// `location`; `owner` names this host in claims.
    pub fn open(location: &Location, group: &str, owner: &str) -> Result<Store, StoreError> {
        let at = location.to_string();
        let (backend, theirs) = match location {
            Location::Folder(dir) => {
                let (folder, theirs) = Folder::open(dir, group)?;
                (Backend::Folder(folder), theirs)
            }
            Location::Objects(url) => {
                let objects = Objects::open(url)?;
                let theirs = objects.group(group)?;
                (Backend::Objects(Arc::new(objects)), theirs)
            }
        };
        if theirs != group {
            return Err(StoreError::Group {
                at,
                theirs,
                ours: group.into(),
            });
        }
        Ok(Store {
            backend,
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

    /// Takes `unit` for this host: its epoch raised, so that the host that had it can no
    /// longer write its cut.
    pub fn claim(&self, unit: Unit) -> Result<Claim, StoreError> {
        match &self.backend {
            Backend::Folder(f) => f.claim(unit, &self.owner),
            Backend::Objects(o) => o.claim(unit, &self.owner),
        }
    }

    /// Who holds `unit` now, and at which epoch.
    #[cfg(test)]
    pub fn holder(&self, unit: Unit) -> Result<(u64, String), StoreError> {
        match &self.backend {
            Backend::Folder(f) => f.holder(unit),
            Backend::Objects(o) => o.holder(unit),
        }
    }

    /// The newest cut of `unit`, if it has one.
    pub fn load(&self, unit: Unit) -> Result<Option<Checkpoint>, StoreError> {
        match &self.backend {
            Backend::Folder(f) => f.load(unit),
            Backend::Objects(o) => o.load(unit),
        }
    }

    /// Writes `cp` as the cut of the claimed unit, unless another host claimed it since.
    pub fn save(&self, claim: Claim, cp: &Checkpoint) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Folder(f) => f.save(claim, cp),
            Backend::Objects(o) => o.save(claim, &self.owner, cp),
        }
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
        let a = Store::open(&Location::Folder(dir.path().into()), "g", "a/1").unwrap();
        let b = Store::open(&Location::Folder(dir.path().into()), "g", "b/2").unwrap();
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
        assert_eq!(a.load(Unit::Partition(4)).unwrap(), None);
    }

    /// A group file still empty — another host starting at the same moment has created
    /// it and not yet written it, or died in between — is no other group's (seen in CI:
    /// a host read it empty and was refused as of group ``).
    #[test]
    fn an_empty_group_file_belongs_to_no_group_yet() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("group"), "").unwrap();
        Store::open(&Location::Folder(dir.path().into()), "g", "a/1").unwrap();
        let e = Store::open(&Location::Folder(dir.path().into()), "other", "b/2")
            .unwrap_err()
            .to_string();
        assert!(e.contains("belongs to consumer group `g`"), "{e}");
    }

    #[test]
    fn a_host_of_another_group_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Store::open(&Location::Folder(dir.path().into()), "ads", "a/1").unwrap();
        Store::open(&Location::Folder(dir.path().into()), "ads", "b/2").unwrap();
        let e = Store::open(&Location::Folder(dir.path().into()), "other", "c/3")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("belongs to consumer group `ads`") && e.contains("`other`"),
            "{e}"
        );
    }
}
