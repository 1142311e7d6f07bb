//! Loading a plugin: compile the component, find which role (world) it implements, and
//! pre-link it so that instances start quickly.

use super::bindings::{aggregate, detect, format, transform, validate};
use super::engine::{PluginEngine, Runtime, StoreState};
use std::path::{Path, PathBuf};
use wasmtime::component::{Component, InstancePre};

/// The role a plugin plays, one per WIT world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Transform,
    Validate,
    Aggregate,
    Detect,
    Format,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Transform,
        Role::Validate,
        Role::Aggregate,
        Role::Detect,
        Role::Format,
    ];

    /// The world's name, which is also the name of its main export.
    pub fn name(self) -> &'static str {
        match self {
            Role::Transform => "transform",
            Role::Validate => "validate",
            Role::Aggregate => "aggregate",
            Role::Detect => "detect",
            Role::Format => "format",
        }
    }

    /// Whether the role keeps state that `snapshot`/`restore` carry.
    pub fn is_stateful(self) -> bool {
        matches!(self, Role::Aggregate | Role::Detect)
    }
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read plugin {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
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

/// The role-specific pre-linked component.
#[derive(Clone)]
pub enum Pre {
    Transform(transform::TransformPre<StoreState>),
    Validate(validate::ValidatePre<StoreState>),
    Aggregate(aggregate::AggregatePre<StoreState>),
    Detect(detect::DetectPre<StoreState>),
    Format(format::FormatPre<StoreState>),
}

/// A compiled plugin, ready to instantiate.
#[derive(Clone)]
pub struct LoadedPlugin {
    pub path: PathBuf,
    pub role: Role,
    /// SHA-256 of the `.wasm` file, in hex.
    pub hash: String,
    pub size: usize,
    pub(super) pre: Pre,
    pub(super) runtime: Runtime,
}

fn chain(e: &wasmtime::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

impl LoadedPlugin {
    /// Reads, compiles and pre-links the component at `path`.
    pub fn load(engine: &PluginEngine, path: &Path) -> Result<LoadedPlugin, LoadError> {
        Self::load_on(&engine.plain, path)
    }

    /// Like [`load`](Self::load), on a given runtime (the metered one for fuel limits).
    pub fn load_on(runtime: &Runtime, path: &Path) -> Result<LoadedPlugin, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.into(),
            source,
        })?;
        Self::from_bytes_on(runtime, path, &bytes)
    }

    /// Compiles and pre-links component bytes; `path` names it in errors.
    pub fn from_bytes(
        engine: &PluginEngine,
        path: &Path,
        bytes: &[u8],
    ) -> Result<LoadedPlugin, LoadError> {
        Self::from_bytes_on(&engine.plain, path, bytes)
    }

    pub fn from_bytes_on(
        runtime: &Runtime,
        path: &Path,
        bytes: &[u8],
    ) -> Result<LoadedPlugin, LoadError> {
        let engine = runtime;
        let component =
            Component::from_binary(&engine.engine, bytes).map_err(|e| LoadError::Compile {
                path: path.into(),
                reason: chain(&e),
            })?;
        let ty = component.component_type();
        let role = Role::ALL
            .into_iter()
            .find(|r| ty.get_export(&engine.engine, r.name()).is_some())
            .ok_or_else(|| LoadError::NoRole { path: path.into() })?;
        let wrong = |e: wasmtime::Error| LoadError::WrongWorld {
            path: path.into(),
            role: role.name(),
            reason: chain(&e),
        };
        let pre: InstancePre<StoreState> =
            engine.linker.instantiate_pre(&component).map_err(wrong)?;
        let pre = match role {
            Role::Transform => Pre::Transform(transform::TransformPre::new(pre).map_err(wrong)?),
            Role::Validate => Pre::Validate(validate::ValidatePre::new(pre).map_err(wrong)?),
            Role::Aggregate => Pre::Aggregate(aggregate::AggregatePre::new(pre).map_err(wrong)?),
            Role::Detect => Pre::Detect(detect::DetectPre::new(pre).map_err(wrong)?),
            Role::Format => Pre::Format(format::FormatPre::new(pre).map_err(wrong)?),
        };
        Ok(LoadedPlugin {
            path: path.into(),
            role,
            hash: sha256_hex(bytes),
            size: bytes.len(),
            pre,
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

/// The content hash plugins are known by.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
