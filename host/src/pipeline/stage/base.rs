//! The snapshot a stateful stage recovers from. It is read back only after its plugin
//! fails, so a large one waits in an unnamed temporary file (removed by the system when
//! the process ends, however it ends) instead of in resident memory, where it would cost
//! the state's size again: 6.4 MB for the demo's `unique` rule, and twice that while the
//! next snapshot replaces it.

use std::fs::File;
use std::io::{Read, Seek, Write};

/// Snapshots of at least this many bytes are kept in a file.
pub const SPILL_BYTES: usize = 1 << 20;

#[derive(Default)]
pub enum Base {
    #[default]
    None,
    Memory(Vec<u8>),
    File {
        file: File,
        len: usize,
    },
}

impl Base {
    /// Keeps `state`: in a file when it is large and a file can be written, else in memory.
    pub fn keep(state: Option<&[u8]>) -> Base {
        match state {
            None => Base::None,
            Some(s) if s.len() < SPILL_BYTES => Base::Memory(s.to_vec()),
            Some(s) => match spill(s) {
                Ok(file) => Base::File { file, len: s.len() },
                Err(e) => {
                    tracing::warn!("the recovery snapshot stays in memory: {e}");
                    Base::Memory(s.to_vec())
                }
            },
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Base::None => 0,
            Base::Memory(v) => v.len(),
            Base::File { len, .. } => *len,
        }
    }

    /// The snapshot's bytes, read back from its file if it has one.
    pub fn load(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        match self {
            Base::None => Ok(None),
            Base::Memory(v) => Ok(Some(v.clone())),
            Base::File { file, len } => {
                let mut bytes = Vec::with_capacity(*len);
                file.rewind()?;
                file.take(*len as u64).read_to_end(&mut bytes)?;
                if bytes.len() != *len {
                    return Err(std::io::Error::other(format!(
                        "the recovery snapshot's file holds {} of its {len} bytes",
                        bytes.len()
                    )));
                }
                Ok(Some(bytes))
            }
        }
    }
}

fn spill(state: &[u8]) -> std::io::Result<File> {
    let mut file = tempfile::tempfile()?;
    file.write_all(state)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_snapshot_waits_in_a_file_and_reads_back_whole() {
        let big: Vec<u8> = (0..SPILL_BYTES + 7).map(|i| (i % 251) as u8).collect();
        let mut base = Base::keep(Some(&big));
        assert!(matches!(base, Base::File { .. }));
        assert_eq!(base.len(), big.len());
        assert_eq!(base.load().unwrap().as_deref(), Some(&big[..]));
        assert_eq!(
            base.load().unwrap().as_deref(),
            Some(&big[..]),
            "read twice"
        );
        let mut small = Base::keep(Some(b"abc"));
        assert!(matches!(small, Base::Memory(_)));
        assert_eq!(small.load().unwrap().as_deref(), Some(&b"abc"[..]));
        assert_eq!(Base::keep(None).len(), 0);
    }
}
