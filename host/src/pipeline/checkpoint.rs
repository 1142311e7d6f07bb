//! Checkpoints: the state of every stateful stage, saved together, so that a restarted
//! pipeline continues its open windows and baselines from where the last one stopped.
//!
//! Source offsets are committed only up to the last checkpoint (and only once every sink
//! has the rows before them), so after a crash the source replays exactly what came after
//! the saved state. A checkpoint is written to a temporary file, synced and renamed over
//! the last one, so a crash mid-write leaves the previous checkpoint intact.
//!
//! Format: the line `adstream-checkpoint 1 <seq>`, then per stage a line
//! `<name> <length>` followed by that many bytes of state and a newline.

use std::io::Write;
use std::path::{Path, PathBuf};

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
    #[error("{path} is not a valid checkpoint: {what}; delete it to start afresh")]
    Corrupt { path: PathBuf, what: &'static str },
    #[error(
        "stage `{stage}` refused its state from {path}: {reason} (delete the file to start afresh)"
    )]
    Restore {
        stage: String,
        path: PathBuf,
        reason: String,
    },
}

/// The saved states, by stage name.
#[derive(Debug, Default, PartialEq)]
pub struct Checkpoint {
    pub seq: u64,
    pub stages: Vec<(String, Vec<u8>)>,
}

const MAGIC: &str = "adstream-checkpoint 1";

/// The checkpoint file of pipeline `name` in `dir`.
pub fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.checkpoint"))
}

pub fn save(path: &Path, cp: &Checkpoint) -> Result<(), CheckpointError> {
    write(path, cp).map_err(|source| CheckpointError::Save {
        path: path.into(),
        source,
    })
}

fn write(path: &Path, cp: &Checkpoint) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("checkpoint.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    let mut out = Vec::new();
    writeln!(out, "{MAGIC} {}", cp.seq)?;
    for (name, state) in &cp.stages {
        writeln!(out, "{name} {}", state.len())?;
        out.extend_from_slice(state);
        out.push(b'\n');
    }
    f.write_all(&out)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn bad(path: &Path, what: &'static str) -> CheckpointError {
    CheckpointError::Corrupt {
        path: path.into(),
        what,
    }
}

/// Splits off the next line of `rest`.
fn take_line<'a>(rest: &mut &'a [u8]) -> Option<&'a str> {
    let end = rest.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&rest[..end]).ok()?;
    *rest = &rest[end + 1..];
    Some(line)
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
    let mut rest = bytes.as_slice();
    let seq = take_line(&mut rest)
        .and_then(|head| head.strip_prefix(MAGIC))
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| bad(path, "not an adstream checkpoint"))?;
    let mut stages = Vec::new();
    while !rest.is_empty() {
        let header = take_line(&mut rest).ok_or_else(|| bad(path, "truncated stage header"))?;
        let (name, len) = header
            .rsplit_once(' ')
            .ok_or_else(|| bad(path, "bad stage header"))?;
        let len: usize = len.parse().map_err(|_| bad(path, "bad stage length"))?;
        let body = rest.get(..len).ok_or_else(|| bad(path, "truncated"))?;
        stages.push((name.to_string(), body.to_vec()));
        rest = rest.get(len + 1..).unwrap_or(&[]);
    }
    Ok(Some(Checkpoint { seq, stages }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "demo");
        assert_eq!(load(&p).unwrap(), None);
        let cp = Checkpoint {
            seq: 42,
            stages: vec![
                ("windows".into(), b"{\"a\":\n1}".to_vec()),
                ("empty".into(), vec![]),
            ],
        };
        save(&p, &cp).unwrap();
        assert_eq!(load(&p).unwrap(), Some(cp));
        std::fs::write(&p, "garbage").unwrap();
        assert!(load(&p).is_err());
    }
}
