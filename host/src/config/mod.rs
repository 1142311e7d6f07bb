//! Pipeline files: TOML parsed into config types, with every problem reported at once as
//! `file:line:col: message`.
//!
//! Parsing is in two steps so that one mistake does not hide the next: the whole file is
//! parsed into a spanned TOML tree (collecting every syntax error), then each section is
//! deserialized on its own (collecting each section's error), then references between
//! sections are checked. Plugins are loaded later, by `pipeline::build`.
//!
//! This is the lowest layer of the host: it imports nothing else of the crate. Every
//! component's settings are typed here (durations, sizes, modes, secrets, templates), so
//! that a bad value is found when the file is read.

pub mod bounded;
mod diag;
pub mod env;
pub mod kafka;
mod parse;
pub mod privacy;
pub mod retry;
mod schema;
pub mod secret;
pub mod sink;
pub mod source;
mod stage;
pub mod template;
pub mod tls;
pub mod units;

pub use diag::{Diagnostic, Diagnostics};
pub use parse::{kind_of, parse, section};
pub use retry::RetryConfig;
pub use schema::{EventTimeConfig, FieldType, SchemaConfig, SchemaField};
pub use secret::{Credential, SecretError, SecretRef, SecretValue};
pub use sink::SinkConfig;
pub use source::SourceConfig;
pub use stage::{CanaryConfig, LimitsConfig, OnError, Promote, StageConfig, toml_to_json};
pub use units::{ByteSize, Duration};

use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A parsed and cross-checked pipeline file.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub name: String,
    pub file: PathBuf,
    /// The folder plugin paths are relative to (the pipeline file's).
    pub base_dir: PathBuf,
    pub source: SourceConfig,
    pub schema: SchemaConfig,
    pub event_time: EventTimeConfig,
    pub stages: Vec<StageConfig>,
    pub sinks: Vec<(String, SinkConfig)>,
    pub dead_letter: Option<Spanned<String>>,
    /// Longer records are dead-lettered undecoded.
    pub max_record_bytes: ByteSize,
    /// `None` for sources without offsets, which replay nothing after a restart.
    pub checkpoint: Option<CheckpointConfig>,
    /// What dead letters keep of personal fields.
    pub privacy: privacy::PrivacyConfig,
    /// The text of the file, kept to place diagnostics found later (plugin errors).
    pub text: String,
    /// Where the source and each sink (in `sinks` order) are in the file.
    pub spans: Spans,
}

/// Places of sections in the file, for diagnostics found after parsing.
#[derive(Debug, Clone, Default)]
pub struct Spans {
    pub source: Range<usize>,
    pub sinks: Vec<Range<usize>>,
}

impl PipelineConfig {
    /// A diagnostics collector for this file, for checks done after parsing.
    pub fn diagnostics(&self) -> Diagnostics<'_> {
        Diagnostics::new(&self.file, &self.text)
    }
}

/// Records longer than this are dead-lettered unless the file says otherwise.
pub const DEFAULT_MAX_RECORD_BYTES: ByteSize = ByteSize::mib(1);

/// `[checkpoint]`: where the state of stateful stages is saved, and how often. On by
/// default for sources with offsets (Kafka).
#[derive(Debug, Clone, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Folder of checkpoint files, relative to the working directory.
    #[serde(default = "default_state_dir")]
    pub dir: String,
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// What to do when there is no checkpoint but the consumer group has committed
    /// offsets (the state that went with them is gone).
    #[serde(default)]
    pub on_missing: OnMissing,
}

/// `[checkpoint] on_missing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMissing {
    /// Refuse to start, saying what to do (the default: never start silently from nothing).
    #[default]
    Fail,
    /// Resume from the committed offsets with empty state (windows open then are short).
    Committed,
    /// Replay the topic from its start with empty state.
    Earliest,
}

fn default_state_dir() -> String {
    "state".into()
}

fn default_interval() -> Duration {
    Duration::from_secs(5)
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            dir: default_state_dir(),
            interval: default_interval(),
            on_missing: OnMissing::default(),
        }
    }
}

/// Reads and parses a pipeline file.
pub fn load(path: &Path) -> Result<PipelineConfig, Vec<Diagnostic>> {
    let text = bounded::read_text(path, bounded::MAX_PIPELINE_BYTES, "the pipeline file")
        .map_err(|m| vec![Diagnostic::at_start(path, m)])?;
    parse(path, &text)
}
