//! What compiling a component is, wherever it runs (in the host, or in a compile child):
//! reading it within [`MAX_COMPONENT_BYTES`], and turning it into the cache entry the host
//! maps. Below both `engine.rs` and `child.rs`, which use it.

use super::loaded::{LoadError, chain};
use super::runtime;
use std::io::Read;
use std::path::Path;
use wasmtime::Engine;

/// The largest plugin file the host reads: the shipped plugins are under 1 MiB.
pub const MAX_COMPONENT_BYTES: usize = 32 << 20;

/// Reads the component at `path`, refusing a file over [`MAX_COMPONENT_BYTES`].
pub fn read_component(path: &Path) -> Result<Vec<u8>, LoadError> {
    let file = std::fs::File::open(path);
    match file.and_then(read_bounded) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(LoadError::TooLarge {
            path: path.into(),
            limit: MAX_COMPONENT_BYTES,
        }),
        Err(source) => Err(LoadError::Read {
            path: path.into(),
            source,
        }),
    }
}

/// All of `from`, or `None` when it holds more than [`MAX_COMPONENT_BYTES`].
pub(super) fn read_bounded(from: impl Read) -> std::io::Result<Option<Vec<u8>>> {
    crate::config::bounded::read_at_most(from, MAX_COMPONENT_BYTES)
}

/// A compile child's work: compiles `bytes` with the engine settings of
/// [`Runtime`](super::runtime::Runtime) and keeps the code under the cache entry `out`
/// (a file named by `out` and the code's checksum).
pub(super) fn compile_to(out: &Path, bytes: &[u8], metered: bool) -> Result<(), String> {
    let engine = Engine::new(&runtime::config(metered)).map_err(|e| chain(&e))?;
    let code = engine.precompile_component(bytes).map_err(|e| chain(&e))?;
    super::disk::write_entry(out, &code).map_err(|e| format!("writing {}: {e}", out.display()))
}
