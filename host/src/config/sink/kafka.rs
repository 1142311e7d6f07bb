//! `[sink.NAME] kind = "kafka"`.

use crate::config::kafka::{CreateTopic, KafkaOptions};
use crate::config::retry::RetryConfig;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    pub kind: String,
    pub brokers: String,
    pub topic: String,
    /// Column whose value is the message key (e.g. `alert_id`); none by default.
    pub key: Option<String>,
    /// `"row"` for the whole row as JSON, or the name of a text column.
    #[serde(default = "row")]
    pub value: String,
    /// Columns sent as message headers instead of in the value; `"*"` for every column
    /// but the value.
    #[serde(default)]
    pub headers: Vec<String>,
    pub create_topic: Option<CreateTopic>,
    /// Extra librdkafka producer settings.
    #[serde(default)]
    pub options: KafkaOptions,
    /// How a batch whose delivery failed is produced again (until it succeeds, by default).
    #[serde(default)]
    pub retry: RetryConfig,
}

fn row() -> String {
    "row".into()
}
