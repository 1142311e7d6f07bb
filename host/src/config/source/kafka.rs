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
    /// `true`, or a string that is `"true"` or `"false"` once filled from the environment
    /// (`shared = "${ADSTREAM_SHARED:-false}"`: one file for one host and for many).
    #[serde(default, deserialize_with = "bool_or_text")]
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

/// A bool, or its text (`${…}` fills only strings).
fn bool_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bool(bool),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Bool(b) => Ok(b),
        Raw::Text(t) => t
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("expected true or false, got `{t}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::KafkaSourceConfig;

    #[test]
    fn shared_is_a_bool_or_its_text() {
        let base = "kind = \"kafka\"\nbrokers = \"b\"\ntopic = \"t\"\ngroup = \"g\"\n";
        let parse = |extra: &str| toml::from_str::<KafkaSourceConfig>(&format!("{base}{extra}"));
        assert!(parse("shared = true").unwrap().shared);
        assert!(parse("shared = \"true\"").unwrap().shared);
        assert!(!parse("shared = \"false\"").unwrap().shared);
        assert!(!parse("").unwrap().shared);
        let e = parse("shared = \"yes\"").unwrap_err().to_string();
        assert!(e.contains("expected true or false, got `yes`"), "{e}");
    }
}
