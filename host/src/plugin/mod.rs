//! Plugins: WebAssembly components run by wasmtime. [`PluginEngine`] holds the engine and
//! linker, [`LoadedPlugin`] a compiled component with its role, and [`PluginInstance`] one
//! sandboxed instance whose calls take and return whole batches.

pub mod bindings;
mod check;
mod convert;
mod engine;
mod instance;
pub mod limits;
mod loaded;

pub use engine::{PluginEngine, Runtime, StoreState, TICK};
pub use instance::{CallError, Output, PluginInstance};
pub use limits::Limits;
pub use loaded::{LoadError, LoadedPlugin, Role, retag, sha256_hex};
