//! `[source] kind = "file"`: JSON Lines, replayed as fast as possible or at the recorded pace.

use serde::Deserialize;
use std::num::NonZeroUsize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    pub kind: String,
    /// The JSONL file, relative to the working directory.
    pub path: String,
    /// Replay at the recorded pace, by the `pace_field` timestamps.
    #[serde(default)]
    pub pace: bool,
    #[serde(default = "default_pace_field")]
    pub pace_field: String,
    #[serde(default = "default_batch")]
    pub batch_size: NonZeroUsize,
}

fn default_pace_field() -> String {
    "event_time".into()
}

fn default_batch() -> NonZeroUsize {
    NonZeroUsize::new(1000).expect("not zero")
}
