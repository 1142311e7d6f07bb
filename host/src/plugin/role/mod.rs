//! The five plugin roles, one WIT world each, and the one trait their bindings implement
//! ([`Calls`]): everything role-specific about calling a plugin is in one file per role.

mod aggregate;
mod detect;
mod format;
mod transform;
mod validate;

use super::bindings::types as w;
use super::store::StoreState;
use wasmtime::Store;
use wasmtime::component::InstancePre;

pub(super) type Wasm<T> = wasmtime::Result<T>;
pub(super) type Plugin<T> = Wasm<Result<T, w::PluginError>>;

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
}

/// What one call of a role's main export returned, still in the bindings' types.
pub(super) enum WireOutput {
    /// transform, detect, format: the output rows.
    Batch(w::Batch),
    /// validate: the rejected rows.
    Rejections(Vec<w::Rejection>),
    /// aggregate: closed windows, and the input rows that were too late.
    Windows { windows: w::Batch, late: Vec<u32> },
}

/// The calls of an instance bound to one role's world. Roles without state or windows
/// keep the defaults, which say so.
pub(super) trait Calls: Send {
    fn info(&self, s: &mut Store<StoreState>) -> Wasm<w::PluginInfo>;
    fn configure(&self, s: &mut Store<StoreState>, setup: &w::Setup) -> Plugin<Vec<w::Field>>;
    fn process(
        &self,
        s: &mut Store<StoreState>,
        input: &w::Batch,
        watermark: i64,
    ) -> Plugin<WireOutput>;

    /// Closes every open window (aggregate only).
    fn flush(&self, _: &mut Store<StoreState>) -> Plugin<Option<w::Batch>> {
        Ok(Ok(None))
    }

    /// The whole state, for checkpoints and swaps; `None` for stateless roles.
    fn snapshot(&self, _: &mut Store<StoreState>) -> Plugin<Option<Vec<u8>>> {
        Ok(Ok(None))
    }

    fn restore(&self, _: &mut Store<StoreState>, _state: &[u8]) -> Plugin<()> {
        Ok(Ok(()))
    }

    /// Merges partial windows (mergeable aggregates only).
    fn merge(&self, _: &mut Store<StoreState>, _: &w::Batch, _: i64) -> Plugin<WireOutput> {
        let why = "this plugin does not merge partial windows".to_string();
        Ok(Err(w::PluginError::Other(why)))
    }
}

/// A component pre-linked for its role's world, ready to instantiate.
pub(super) trait Pre: Send + Sync {
    fn instantiate(&self, s: &mut Store<StoreState>) -> Wasm<Box<dyn Calls>>;
}

/// Checks that `pre` fits `role`'s world and wraps it for instantiation; `stateful` says
/// whether the component exports `snapshot` and `restore` (see [`is_stateful`]),
/// `mergeable` whether an aggregate exports `merge`.
pub(super) fn prelink(
    role: Role,
    pre: InstancePre<StoreState>,
    stateful: bool,
    mergeable: bool,
) -> Wasm<Box<dyn Pre>> {
    Ok(match role {
        Role::Transform => Box::new(transform::pre(pre)?),
        Role::Validate => Box::new(validate::pre(pre, stateful)?),
        Role::Aggregate => Box::new(aggregate::pre(pre, mergeable)?),
        Role::Detect => Box::new(detect::pre(pre)?),
        Role::Format => Box::new(format::pre(pre)?),
    })
}

/// Whether a component of `role` keeps state that `snapshot`/`restore` carry: aggregate
/// and detect always do; a validate does when it is of the `stateful-validate` world
/// (`exports_state`: it exports both functions).
pub(super) fn is_stateful(role: Role, exports_state: bool) -> bool {
    match role {
        Role::Aggregate | Role::Detect => true,
        Role::Validate => exports_state,
        Role::Transform | Role::Format => false,
    }
}
