//! What the pipeline needs of a plugin, as two traits: a [`Plugin`] makes instances, an
//! [`Instance`] takes whole batches. The WebAssembly implementation is
//! [`LoadedPlugin`](super::LoadedPlugin) / [`PluginInstance`](super::PluginInstance);
//! the pipeline's unit tests put scripted fakes in their place.

use super::error::CallError;
use super::limits::Limits;
use super::role::Role;
pub use super::store::Reports;
use adstream_sdk::{Batch, Field, PluginInfo, Rejection, Setup};
use std::path::Path;
use std::sync::Arc;

/// What one call produced, by role.
#[derive(Debug)]
pub enum Output {
    /// transform, detect, format: the output rows.
    Batch(Batch),
    /// validate: the rejected rows.
    Rejections(Vec<Rejection>),
    /// aggregate: closed windows, and the input rows that were too late.
    Windows { windows: Batch, late: Vec<u32> },
}

/// A plugin that can be instantiated for a stage.
pub trait Plugin: Send + Sync {
    fn role(&self) -> Role;
    /// Whether its instances keep state that `snapshot`/`restore` carry.
    fn stateful(&self) -> bool;
    /// Whether its instances merge partial windows (an aggregate of the
    /// `mergeable-aggregate` world): what lets its stage run per partition.
    fn mergeable(&self) -> bool {
        false
    }
    /// The file it was loaded from.
    fn path(&self) -> &Path;
    /// SHA-256 of its bytes, in hex.
    fn hash(&self) -> &str;
    /// Whether it runs on the fuel-metered engine.
    fn metered(&self) -> bool;
    /// A new, unconfigured instance for `stage`; `seed` seeds its randomness.
    fn instantiate(
        &self,
        stage: Arc<str>,
        limits: &Limits,
        seed: u64,
    ) -> Result<Box<dyn Instance>, CallError>;
}

/// A running plugin instance. After a call fails with [`CallError::Trap`] it must not be
/// called again.
pub trait Instance: Send {
    fn info(&self) -> &PluginInfo;
    /// Configures the plugin; returns its output columns.
    fn configure(&mut self, setup: Setup) -> Result<Vec<Field>, CallError>;
    /// Sends `input` through the plugin. The input comes back whatever happens, so that a
    /// failed batch can go to the dead letters.
    fn process(&mut self, input: Batch, watermark: i64) -> (Batch, Result<Output, CallError>);
    /// The input columns the plugin declared it reads (see `plugin::reads`); `None`: it
    /// reads every column.
    fn reads(&self) -> Option<&[String]> {
        None
    }
    /// Folds partial window rows of other instances in; returns the windows `watermark`
    /// closed (mergeable aggregates only). The partials come back whatever happens.
    fn merge(&mut self, partials: Batch, _watermark: i64) -> (Batch, Result<Output, CallError>) {
        let why = "this plugin does not merge partial windows".to_string();
        (
            partials,
            Err(CallError::Plugin(adstream_sdk::PluginError::Other(why))),
        )
    }
    /// Closes every open window (aggregate only; others have nothing to flush).
    fn flush(&mut self) -> Result<Option<Batch>, CallError>;
    /// The plugin's state (stateful plugins only).
    fn snapshot(&mut self) -> Result<Option<Vec<u8>>, CallError>;
    /// Loads a state `snapshot` returned.
    fn restore(&mut self, state: &[u8]) -> Result<(), CallError>;
    /// Counters the plugin added to, and what its budgets dropped, since the last call of
    /// this.
    fn take_reports(&mut self) -> Reports;
}
