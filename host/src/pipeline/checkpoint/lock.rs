//! One host per checkpoint: a pipeline that keeps checkpoints holds an exclusive lock on
//! `<file>.lock` for as long as it runs. A second host started on the same checkpoint
//! would read every partition again (doing all the work twice) and rename the file under
//! the first one's feet; it is refused at start instead, naming who holds the lock.
//!
//! The lock is the operating system's (`flock`): it goes with the process, so a host
//! killed with -9 leaves nothing to clean up.

use super::file::{CheckpointError, with_suffix};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// Held while the pipeline runs; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Takes the lock of checkpoint `file`, writing this host's name into it.
pub fn lock(file: &Path, owner: &str) -> Result<Lock, CheckpointError> {
    let path = with_suffix(file, ".lock");
    let save = |source| CheckpointError::Save {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(save)?;
    }
    let mut f = (OpenOptions::new().read(true).write(true).create(true))
        .truncate(false)
        .open(&path)
        .map_err(save)?;
    match f.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = f.read_to_string(&mut holder);
            return Err(CheckpointError::InUse {
                path: file.into(),
                holder: holder.trim().to_string(),
            });
        }
        Err(TryLockError::Error(e)) => return Err(save(e)),
    }
    (f.set_len(0).and_then(|_| f.rewind()))
        .and_then(|_| writeln!(f, "{owner}"))
        .map_err(save)?;
    Ok(Lock { _file: f })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_host_on_one_checkpoint_is_refused_until_the_first_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.checkpoint");
        let first = lock(&file, "a/1").unwrap();
        let e = lock(&file, "b/2").unwrap_err().to_string();
        assert!(
            e.contains("p.checkpoint") && e.contains("in use by a/1"),
            "{e}"
        );
        drop(first);
        lock(&file, "b/2").unwrap();
    }
}
