//! Plugins: WebAssembly components run by wasmtime. [`PluginEngine`] holds the engines,
//! the linker and the compiled-plugin cache; [`LoadedPlugin`] is a compiled component with
//! its role, and [`PluginInstance`] one sandboxed instance whose calls take and return
//! whole batches. The pipeline sees them only through the [`Plugin`] and [`Instance`]
//! traits.

mod api;
pub mod bindings;
mod check;
mod child;
mod compile;
mod convert;
mod disk;
mod engine;
mod error;
mod instance;
mod limits;
mod loaded;
pub(crate) mod reads;
mod role;
mod runtime;
mod store;
mod text;

pub use api::{Instance, Output, Plugin, Reports};
pub use child::{CompileChild, SUBCOMMAND as COMPILE_SUBCOMMAND, serve as serve_compile};
pub use compile::{MAX_COMPONENT_BYTES, read_component};
pub use engine::PluginEngine;
pub use error::{CallError, Malformed, Trap, TrapKind};
pub use instance::PluginInstance;
pub use limits::Limits;
pub use loaded::{LoadError, LoadedPlugin, retag, sha256_hex, short_hash};
pub use role::Role;
pub use runtime::TICK;
