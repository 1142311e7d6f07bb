//! A pipeline shared by the hosts of a consumer group (`[source] shared = true`): the
//! broker's group coordinator splits the topic's partitions between the hosts, and each
//! partition's state moves with it.
//!
//! A partition is the unit of state: its position, its partition time and its lane of
//! every stage (each stage runs an instance per partition, `stage/partitions.rs`) make one
//! cut in the checkpoint store (`checkpoint/store.rs`), saved and restored together. The
//! source claims a partition the group gives this host — raising its owner epoch, so that
//! the host that had it can no longer write its cut — and reads it from its cut's position
//! (`sources/group.rs`); the processor restores the partition's lanes between the batch
//! before the move and the one after. A partition taken away is cut once more, then
//! forgotten.
//!
//! Results must not depend on how partitions are split: a stage runs per partition, or
//! after an aggregate whose lanes' partial windows the owner of partition 0 merges
//! (`merge/`), where the stages after it run too. Sinks must not rewind (a file sink's
//! mark is per host, not per partition).

use super::checkpoint::{Checkpoint, Claim, Location, Store, Unit};
use super::error::RunError;
use super::merge::{Merging, Plan};
use super::stage::Stage;
use super::stats::Latency;
use crate::config::{PipelineConfig, SinkConfig, SourceConfig};
use crate::plugin::Role;
use crate::sources::Claims;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Partitions the source claimed, with their cuts, until the processor takes them.
pub(super) type Taken = Arc<Mutex<BTreeMap<i32, (Claim, Option<Checkpoint>)>>>;

/// The source's claims, on the checkpoint store.
pub(super) struct StoreClaims {
    pub store: Store,
    pub taken: Taken,
    /// How long the group waited for partitions this host let go.
    pub held: Latency,
}

impl Claims for StoreClaims {
    fn claim(&self, partition: i32) -> Result<Option<i64>, String> {
        let unit = Unit::Partition(partition);
        let claim = self.store.claim(unit).map_err(|e| e.to_string())?;
        let cut = self.store.load(unit).map_err(|e| e.to_string())?;
        let at = (cut.as_ref()).and_then(|c| position(c, partition));
        tracing::info!(partition, epoch = claim.epoch, ?at, "claimed");
        let mut taken = self.taken.lock().expect("taken");
        taken.insert(partition, (claim, cut));
        Ok(at)
    }

    fn revoking(&self, partitions: &[i32]) {
        self.store.releasing(partitions);
    }

    fn released(&self) -> bool {
        self.store.all_released()
    }

    fn let_go(&self, held: std::time::Duration) {
        self.held.observe(held);
    }
}

pub(super) fn position(cp: &Checkpoint, partition: i32) -> Option<i64> {
    let found = cp.positions.iter().find(|(p, _)| *p == partition);
    found.map(|&(_, next)| next)
}

/// The processor's side: which partitions this host owns, by which claim.
pub(super) struct Shared {
    pub store: Store,
    pub taken: Taken,
    pub owned: BTreeMap<i32, Claim>,
    /// Partitions whose lanes were fed on this host: such a lane must come back from a
    /// cut, never start afresh with what it held.
    pub fed: BTreeSet<i32>,
    /// Partitions being taken whose last cut the next checkpoint writes.
    pub releasing: Vec<i32>,
    /// Where spread aggregates' partials go, when the pipeline has one (`merge/`).
    pub partials: Option<Plan>,
    /// The merge, while this host owns the partition whose owner merges.
    pub merging: Option<Merging>,
    /// Per spread aggregate and partition, the last mark sent.
    pub sent: BTreeMap<(String, i32), i64>,
}

impl Shared {
    pub fn new(store: Store, taken: Taken) -> Self {
        Shared {
            store,
            releasing: Vec::new(),
            partials: None,
            merging: None,
            sent: BTreeMap::new(),
            taken,
            owned: BTreeMap::new(),
            fed: BTreeSet::new(),
        }
    }
}

/// Why the pipeline `cfg` says is shared cannot be, if it cannot (`check` and `run`).
pub(super) fn check(
    cfg: &PipelineConfig,
    stages: &[Stage],
    sinks: &[(String, SinkConfig)],
) -> Option<String> {
    match &cfg.source {
        SourceConfig::Kafka(k) if k.shared && cfg.checkpoint.is_none() => Some(
            "[source] shared = true needs [checkpoint]: a partition's state moves between \
             hosts through its cut"
                .into(),
        ),
        SourceConfig::Kafka(k) if k.shared => refusal(stages, sinks),
        _ => {
            let dir = cfg.checkpoint.as_ref().map(|c| c.dir.as_str());
            dir.filter(|d| super::checkpoint::is_object_store(d))
                .map(|d| {
                    format!(
                        "[checkpoint] dir = \"{d}\" is an object store, which holds the cuts of \
                     a pipeline hosts share ([source] kind = \"kafka\" with shared = true); \
                     a pipeline one host runs keeps its checkpoint in a folder"
                    )
                })
        }
    }
}

/// Why `stages` and `sinks` cannot be shared by hosts, if they cannot.
fn refusal(stages: &[Stage], sinks: &[(String, SinkConfig)]) -> Option<String> {
    let why = |what: String| {
        Some(format!(
            "[source] shared = true: {what}; a pipeline shared by hosts must give the same \
             results however its partitions are split (docs/pipelines.md, \"Several hosts\")"
        ))
    };
    for s in stages {
        let name = &s.spec.name;
        let aggregate = s.spec.plugin.role() == Role::Aggregate;
        if aggregate && !s.spec.partition_local {
            return why(format!(
                "stage `{name}` aggregates another aggregate's windows, which hosts cannot merge yet"
            ));
        }
        if aggregate && !s.spec.plugin.mergeable() {
            return why(format!(
                "stage `{name}` is an aggregate whose plugin does not merge partial windows \
                 (the `mergeable-aggregate` world), and its windows span partitions that other \
                 hosts read"
            ));
        }
        if aggregate && !has_window_start(s) {
            return why(format!(
                "stage `{name}`'s windows have no `window_start` column (int64 or \
                 timestamp-ms), by which the merging host merges each partition's window once"
            ));
        }
        // A stage after an aggregate runs where the windows are merged, whole.
        if s.spec.partition_local && !s.spreadable() {
            return why(format!("stage `{name}` cannot run per partition"));
        }
    }
    let file = sinks.iter().find(|(_, c)| matches!(c, SinkConfig::File(_)));
    file.and_then(|(name, _)| {
        why(format!(
            "sink `{name}` is a file, which each host would write its own part of, and which \
             a restart could not rewind to a partition's cut (send dead letters and rows to \
             kafka, clickhouse or redis sinks; `dead_letter` names the dead letters' sink)"
        ))
    })
}

fn has_window_start(s: &Stage) -> bool {
    use adstream_sdk::ColumnKind::{Int64, TimestampMs};
    let col = s.output.iter().find(|f| f.name == "window_start");
    col.is_some_and(|f| matches!(f.kind, Int64 | TimestampMs))
}

/// The checkpoint store of a pipeline whose source is shared, with where its claims go;
/// `None` for any other pipeline.
pub(super) fn open(
    source: &SourceConfig,
    checkpoint: Option<(&Path, &Location)>,
    owner: &str,
) -> Result<Option<(Store, Taken)>, RunError> {
    let SourceConfig::Kafka(source) = source else {
        return Ok(None);
    };
    if !source.shared {
        return Ok(None);
    }
    // `check` (and so `build`) refuses a shared source without [checkpoint].
    let Some((file, store)) = checkpoint else {
        return Ok(None);
    };
    if matches!(store, Location::Folder(_)) && file.exists() {
        return Err(RunError::Shared(format!(
            "[source] shared = true keeps a cut per partition in {}, but {} holds a \
             checkpoint of this pipeline from a host that read every partition: run the \
             pipeline without `shared` until that state is no longer needed, or move the \
             file away to start afresh",
            store,
            file.display()
        )));
    }
    let store = Store::open(store, &source.group, owner)?;
    Ok(Some((store, Taken::default())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::source::KafkaSourceConfig;

    /// Turning `shared` on over a checkpoint of a host that read every partition is
    /// refused, naming both, rather than starting every partition afresh beside it.
    #[test]
    fn a_single_host_checkpoint_is_refused_when_the_source_becomes_shared() {
        let dir = tempfile::tempdir().unwrap();
        let text =
            "kind = \"kafka\"\nbrokers = \"b:9092\"\ntopic = \"t\"\ngroup = \"g\"\nshared = true";
        let source = SourceConfig::Kafka(toml::from_str::<KafkaSourceConfig>(text).unwrap());
        let file = crate::pipeline::checkpoint::path(dir.path(), "p");
        let store = Location::of(dir.path().to_str().unwrap(), "p");
        let at = Some((file.as_path(), &store));
        assert!(open(&source, at, "a/1").unwrap().is_some());
        std::fs::write(&file, b"a checkpoint").unwrap();
        let e = open(&source, at, "a/1").unwrap_err().to_string();
        assert!(
            e.contains("p.checkpoint holds a checkpoint") && e.contains("p.partitions"),
            "{e}"
        );
    }
}
