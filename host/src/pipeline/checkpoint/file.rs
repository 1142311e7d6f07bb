//! Checkpoints: one consistent cut of a pipeline, taken at a batch boundary — the source
//! positions after that batch, the watermark, every stateful stage's snapshot, and how far
//! each sink that can be rewound (a file) had written — so that a restarted pipeline
//! restores the state and resumes the source from the cut's own positions.
//!
//! The file is written whole or not at all: to a temporary file, synced, then renamed over
//! the last one, whose previous version is kept beside it as `.prev`; the folder is synced
//! too. It begins with a magic line and a version, and carries a CRC-32 of its body, so a
//! truncated or damaged file is an error that names it, never a silent fresh start.
//! The body is postcard (serde).

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 20] = b"adstream checkpoint\n";
const VERSION: u32 = 2;
/// Magic, version, CRC-32 and length of the body.
const HEADER: usize = MAGIC.len() + 4 + 4 + 8;

/// The saved cut.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The pipeline's own batch number at the cut (for logs).
    pub seq: u64,
    /// Per partition, the offset of the next record to read.
    pub positions: Vec<(i32, i64)>,
    /// The watermark, and the latest event time seen per partition.
    pub watermark: i64,
    pub partition_times: Vec<(i32, i64)>,
    /// State by stage name.
    pub stages: Vec<(String, Vec<u8>)>,
    /// How many bytes each rewindable sink had made durable, by sink name.
    pub sinks: Vec<(String, u64)>,
    /// Wall-clock time of the cut, ms since the epoch.
    pub taken_at_ms: i64,
}

/// Why a checkpoint could not be saved or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("saving {path}: {source}")]
    Save {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a valid checkpoint ({what}). The previous one is {path}.prev: move it \
         over {path} to resume from there (what came after it is replayed); or delete both \
         to start from nothing"
    )]
    Corrupt { path: PathBuf, what: String },
    #[error(
        "stage `{stage}` refused its state from {path}: {reason} (move the file away to \
         start the stage afresh)"
    )]
    Restore {
        stage: String,
        path: PathBuf,
        reason: String,
    },
    #[error(
        "checkpoint {path} is in use by {holder}, another host running this pipeline: two \
         hosts on one checkpoint would each read every partition and overwrite each other's \
         cuts. Stop that host first, or give this one another [checkpoint] dir"
    )]
    InUse { path: PathBuf, holder: String },
    #[error("a stage's snapshot failed, so no checkpoint was taken: {0}")]
    Snapshot(String),
}

/// The checkpoint file of pipeline `name` in `dir`.
pub fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.checkpoint"))
}

pub(super) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// The bytes of a checkpoint file.
pub fn encode(cp: &Checkpoint) -> Vec<u8> {
    let body = postcard::to_stdvec(cp).expect("a checkpoint always serializes");
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Reads checkpoint bytes; the error says what is wrong with them.
pub fn decode(bytes: &[u8]) -> Result<Checkpoint, String> {
    if bytes.len() < HEADER || !bytes.starts_with(MAGIC) {
        return Err("it does not start like one".into());
    }
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let version = word(MAGIC.len());
    if version != VERSION {
        return Err(format!(
            "it is version {version}; this host reads version {VERSION}"
        ));
    }
    let crc = word(MAGIC.len() + 4);
    let at = MAGIC.len() + 8;
    let len = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes")) as usize;
    let body = &bytes[HEADER..];
    if body.len() != len {
        return Err(format!(
            "it is truncated: {} of {len} body bytes",
            body.len()
        ));
    }
    if crc32fast::hash(body) != crc {
        return Err("its checksum does not match its contents".into());
    }
    postcard::from_bytes(body).map_err(|e| format!("its contents do not decode: {e}"))
}

/// Writes `cp` durably at `path`, keeping the one it replaces as `path.prev`.
pub fn save(path: &Path, cp: &Checkpoint) -> Result<(), CheckpointError> {
    write(path, &encode(cp)).map_err(|source| CheckpointError::Save {
        path: path.into(),
        source,
    })
}

fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = with_suffix(path, ".tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    if path.exists() {
        // A hard link keeps `path` in place until the rename below replaces it: whatever
        // moment a crash hits, `path` is a whole checkpoint, old or new.
        let prev_tmp = with_suffix(path, ".prev.tmp");
        let _ = std::fs::remove_file(&prev_tmp);
        std::fs::hard_link(path, &prev_tmp)?;
        std::fs::rename(&prev_tmp, with_suffix(path, ".prev"))?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// The checkpoint at `path`, or `None` if there is none yet.
pub fn load(path: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CheckpointError::Read {
                path: path.into(),
                source,
            });
        }
    };
    decode(&bytes)
        .map(Some)
        .map_err(|what| CheckpointError::Corrupt {
            path: path.into(),
            what,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            seq: 42,
            positions: vec![(0, 100), (1, 7)],
            watermark: 1_700_000_000_000,
            partition_times: vec![(0, 1_700_000_001_000)],
            stages: vec![
                ("windows".into(), b"{\"a\":\n1}".to_vec()),
                ("empty".into(), vec![]),
            ],
            sinks: vec![("out".into(), 12345)],
            taken_at_ms: 1,
        }
    }

    #[test]
    fn round_trip_keeps_the_previous_one_and_a_missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "demo");
        assert_eq!(load(&p).unwrap(), None);
        save(&p, &sample()).unwrap();
        let newer = Checkpoint {
            seq: 43,
            ..sample()
        };
        save(&p, &newer).unwrap();
        assert_eq!(load(&p).unwrap(), Some(newer));
        assert_eq!(load(&with_suffix(&p, ".prev")).unwrap(), Some(sample()));
    }

    #[test]
    fn every_kind_of_damage_is_an_error_naming_the_file_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "demo");
        let good = encode(&sample());
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let mut version = good.clone();
        version[MAGIC.len()] = 9;
        let cases: [(&[u8], &str); 5] = [
            (b"garbage", "does not start like one"),
            (&good[..good.len() - 3], "truncated"),
            (&flipped, "checksum"),
            (&version, "version 9"),
            (&[], "does not start like one"),
        ];
        for (bytes, want) in cases {
            std::fs::write(&p, bytes).unwrap();
            let e = load(&p).unwrap_err().to_string();
            assert!(
                e.contains(want) && e.contains(&p.display().to_string()),
                "{e}"
            );
            assert!(e.contains(".prev: move it over"), "{e}");
        }
    }
}
