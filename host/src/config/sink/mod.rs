//! `[sink.NAME]` tables: where rows go, by kind.

pub mod clickhouse;
pub mod file;
pub mod kafka;
pub mod redis;
pub mod webhook;

use super::{Diagnostics, kind_of, section};
use toml::Spanned;
use toml::de::DeValue;

pub use clickhouse::ClickHouseConfig;
pub use file::{FileSinkConfig, StdoutConfig};
pub use kafka::KafkaSinkConfig;
pub use redis::{RedisMode, RedisSinkConfig};
pub use webhook::{CooldownConfig, WebhookConfig};

#[derive(Debug, Clone, PartialEq)]
pub enum SinkConfig {
    Stdout(StdoutConfig),
    File(FileSinkConfig),
    Kafka(KafkaSinkConfig),
    ClickHouse(Box<ClickHouseConfig>),
    Redis(RedisSinkConfig),
    Webhook(WebhookConfig),
}

const KINDS: &str = "stdout, file, kafka, clickhouse, redis, webhook";

impl SinkConfig {
    pub fn parse(
        name: &str,
        value: &Spanned<DeValue<'_>>,
        diags: &mut Diagnostics,
    ) -> Option<SinkConfig> {
        let what = format!("[sink.{name}]");
        let cfg = match kind_of(value, &what, diags)? {
            "stdout" => section(value, &what, diags).map(SinkConfig::Stdout)?,
            "file" => section(value, &what, diags).map(SinkConfig::File)?,
            "kafka" => section(value, &what, diags).map(SinkConfig::Kafka)?,
            "clickhouse" => {
                section(value, &what, diags).map(|c| SinkConfig::ClickHouse(Box::new(c)))?
            }
            "redis" => section(value, &what, diags).map(SinkConfig::Redis)?,
            "webhook" => section(value, &what, diags).map(SinkConfig::Webhook)?,
            other => {
                let span = value.get_ref().get("kind").map(|k| k.span());
                diags.error_hint(
                    span,
                    format!("{what}: unknown sink kind `{other}`"),
                    format!("kinds: {KINDS}"),
                );
                return None;
            }
        };
        if let SinkConfig::ClickHouse(c) = &cfg
            && let Some(message) = c.problem()
        {
            diags.error(Some(value.span()), format!("{what}: {message}"));
            return None;
        }
        Some(cfg)
    }

    /// Whether the sink needs to know the schema of its rows when it opens.
    pub fn needs_fields(&self) -> bool {
        matches!(self, SinkConfig::ClickHouse(_))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::Stdout(_) => "stdout",
            SinkConfig::File(_) => "file",
            SinkConfig::Kafka(_) => "kafka",
            SinkConfig::ClickHouse(_) => "clickhouse",
            SinkConfig::Redis(_) => "redis",
            SinkConfig::Webhook(_) => "webhook",
        }
    }
}
