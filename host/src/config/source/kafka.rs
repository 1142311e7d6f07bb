//! `[source] kind = "kafka"`.

use crate::config::kafka::{CreateTopic, KafkaOptions};
use crate::config::units::Duration;
use serde::Deserialize;
use std::num::NonZeroUsize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    pub kind: String,
    pub brokers: String,
    pub topic: String,
    /// Consumer group, where the checkpoint's positions are committed for lag tools. The
    /// source reads every partition itself unless `shared`.
    pub group: String,
    /// Whether the hosts of `group` share the topic: the group's coordinator splits its
    /// partitions between them, and each partition's state moves with it
    /// (`pipeline/group.rs`).
    #[serde(default)]
    pub shared: bool,
    /// Where a group with no committed offset starts.
    #[serde(default)]
    pub start: Start,
    #[serde(default = "default_batch")]
    pub batch_size: NonZeroUsize,
    /// Longest a batch waits to fill up.
    #[serde(default = "default_flush")]
    pub flush_interval: Duration,
    pub create_topic: Option<CreateTopic>,
    /// Extra librdkafka consumer settings.
    #[serde(default)]
    pub options: KafkaOptions,
}

/// `start = "earliest" | "latest"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    #[default]
    Earliest,
    Latest,
}

impl Start {
    pub fn name(self) -> &'static str {
        match self {
            Start::Earliest => "earliest",
            Start::Latest => "latest",
        }
    }
}

fn default_batch() -> NonZeroUsize {
    NonZeroUsize::new(5000).expect("not zero")
}

fn default_flush() -> Duration {
    Duration::from_millis(200)
}
