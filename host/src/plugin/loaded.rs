//! Loading a plugin: find which role (world) a compiled component implements, and pre-link
//! it so that instances start quickly.

use super::role::{self, Pre, Role};
use super::runtime::Runtime;
use std::path::{Path, PathBuf};
use wasmtime::component::Component;

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read plugin {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is larger than the {} MiB a plugin may be", limit >> 20)]
    TooLarge { path: PathBuf, limit: usize },
    #[error("{path} is not a valid WebAssembly component: {reason}")]
    Compile { path: PathBuf, reason: String },
    #[error(
        "{path} is not an adstream plugin: it exports none of transform, validate, aggregate, detect, format"
    )]
    NoRole { path: PathBuf },
    #[error("{path} does not fit the `{role}` world of adstream:plugin@0.1.0: {reason}")]
    WrongWorld {
        path: PathBuf,
        role: &'static str,
        reason: String,
    },
}

/// A compiled, pre-linked component; shared by every stage that runs the same bytes.
pub struct Compiled {
    pub role: Role,
    /// SHA-256 of the component, in hex.
    pub hash: String,
    pub size: usize,
    pub stateful: bool,
    /// An aggregate that exports `merge` (the `mergeable-aggregate` world).
    pub mergeable: bool,
    /// The interfaces the component imports and exports, by name.
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub(super) pre: Box<dyn Pre>,
    pub(super) runtime: Runtime,
}

/// A compiled plugin and the file it was read from.
pub struct LoadedPlugin {
    pub path: PathBuf,
    pub compiled: std::sync::Arc<Compiled>,
}

pub(super) fn chain(e: &wasmtime::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

impl Compiled {
    /// Finds a compiled component's role and pre-links it; `path` names it in errors,
    /// `size` is its component's bytes and `hash` their SHA-256.
    pub(super) fn new(
        runtime: &Runtime,
        path: &Path,
        component: Component,
        size: usize,
        hash: String,
    ) -> Result<Compiled, LoadError> {
        let ty = component.component_type();
        let role = Role::ALL
            .into_iter()
            .find(|r| ty.get_export(&runtime.engine, r.name()).is_some())
            .ok_or_else(|| LoadError::NoRole { path: path.into() })?;
        let wrong = |e: wasmtime::Error| LoadError::WrongWorld {
            path: path.into(),
            role: role.name(),
            reason: chain(&e),
        };
        let exports_state = ["snapshot", "restore"]
            .iter()
            .all(|f| ty.get_export(&runtime.engine, f).is_some());
        let stateful = role::is_stateful(role, exports_state);
        let mergeable =
            role == Role::Aggregate && ty.get_export(&runtime.engine, "merge").is_some();
        let names = |it: &mut dyn Iterator<Item = &str>| it.map(String::from).collect();
        let imports = names(&mut ty.imports(&runtime.engine).map(|(n, _)| n));
        let exports = names(&mut ty.exports(&runtime.engine).map(|(n, _)| n));
        let pre = runtime.linker.instantiate_pre(&component).map_err(wrong)?;
        Ok(Compiled {
            role,
            hash,
            size,
            stateful,
            mergeable,
            imports,
            exports,
            pre: role::prelink(role, pre, stateful, mergeable).map_err(wrong)?,
            runtime: runtime.clone(),
        })
    }
}

/// A copy of `component` that differs only by a custom section carrying `tag`: other
/// bytes and hash, the same behaviour. Tests and benchmarks use it to roll out "new"
/// builds without compiling any.
pub fn retag(component: &[u8], tag: u8) -> Vec<u8> {
    const NAME: &[u8] = b"adstream-retag";
    let mut out = component.to_vec();
    // Custom section: id 0, size, name (length-prefixed), payload.
    out.extend([0, (1 + NAME.len() + 1) as u8, NAME.len() as u8]);
    out.extend(NAME);
    out.push(tag);
    out
}

/// The first 12 characters of a content hash: how logs and `adstream status` show it.
pub fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// The content hash plugins are known by.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

/// `bytes` in lower-case hex.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
