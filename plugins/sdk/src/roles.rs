//! The role traits a plugin implements, one per WIT world.
//!
//! A plugin's state lives in `Self`: the host calls `configure` once per instance, then the
//! role's method once per batch. Stateful roles also save and load their state, so that a
//! new version of a plugin continues where the old one stopped.

use crate::{AggregateOutput, Batch, Field, PluginError, Rejection, Setup};

/// Batch in, batch out (PII hashing, enrichment, projection).
pub trait Transform: Sized + 'static {
    /// Reads the configuration and input columns; returns the plugin and its output columns.
    fn configure(setup: &Setup) -> Result<(Self, Vec<Field>), PluginError>;
    /// Transforms one batch.
    fn transform(&mut self, input: Batch) -> Result<Batch, PluginError>;
}

/// Names the rows of a batch that break a rule.
pub trait Validate: Sized + 'static {
    /// Reads the configuration and checks the input columns.
    fn configure(setup: &Setup) -> Result<Self, PluginError>;
    /// The rejected rows of `input`; `watermark` is the event time (ms) below which no
    /// more events are expected.
    fn validate(&mut self, input: &Batch, watermark: i64) -> Result<Vec<Rejection>, PluginError>;
}

/// A [`Validate`] whose rules remember earlier batches (a uniqueness rule): its state is
/// checkpointed and handed over on swaps. Exported with [`export_stateful_validate!`].
pub trait StatefulValidate: Validate {
    /// Saves the whole state.
    fn snapshot(&self) -> Result<Vec<u8>, PluginError>;
    /// Loads a state `snapshot` saved (possibly by an older version of the plugin).
    fn restore(&mut self, state: &[u8]) -> Result<(), PluginError>;
}

/// Folds events into windows and emits those the watermark closes.
pub trait Aggregate: Sized + 'static {
    /// Reads the configuration and input columns; returns the plugin and the window columns.
    fn configure(setup: &Setup) -> Result<(Self, Vec<Field>), PluginError>;
    /// Folds `input` in; returns closed windows and the indexes of rows that came too late.
    fn aggregate(&mut self, input: &Batch, watermark: i64) -> Result<AggregateOutput, PluginError>;
    /// Closes every open window.
    fn flush(&mut self) -> Result<Batch, PluginError>;
    /// Saves the whole state.
    fn snapshot(&self) -> Result<Vec<u8>, PluginError>;
    /// Loads a state `snapshot` saved (possibly by an older version of the plugin).
    fn restore(&mut self, state: &[u8]) -> Result<(), PluginError>;
}

/// An [`Aggregate`] whose partial windows — rows one instance returned for some of the
/// events — can be merged by another instance into the windows one instance over all the
/// events would return: what lets a stage run per partition of a topic.
pub trait MergeAggregate: Aggregate {
    /// Folds `partials` (window rows of other instances) into the open windows; returns
    /// the windows `watermark` closed, and the indexes of partials whose window had
    /// closed already. The result must not depend on the order of the partials.
    fn merge(&mut self, partials: &Batch, watermark: i64) -> Result<AggregateOutput, PluginError>;
}

/// Turns window rows into alert rows.
pub trait Detect: Sized + 'static {
    /// Reads the configuration and input columns; returns the plugin and the alert columns.
    fn configure(setup: &Setup) -> Result<(Self, Vec<Field>), PluginError>;
    /// The alerts `windows` raise.
    fn detect(&mut self, windows: &Batch) -> Result<Batch, PluginError>;
    /// Saves the whole state.
    fn snapshot(&self) -> Result<Vec<u8>, PluginError>;
    /// Loads a state `snapshot` saved (possibly by an older version of the plugin).
    fn restore(&mut self, state: &[u8]) -> Result<(), PluginError>;
}

/// Turns alert rows into messages for a destination.
pub trait Format: Sized + 'static {
    /// Reads the configuration and input columns; returns the plugin and message columns.
    fn configure(setup: &Setup) -> Result<(Self, Vec<Field>), PluginError>;
    /// One message row per alert row.
    fn format(&mut self, alerts: &Batch) -> Result<Batch, PluginError>;
}

impl AggregateOutput {
    /// Closed windows and no late rows.
    pub fn windows(windows: Batch) -> Self {
        AggregateOutput {
            windows,
            late: Vec::new(),
        }
    }
}
