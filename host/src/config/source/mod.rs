//! The `[source]` table: which kind of source, and its settings.

pub mod file;
pub mod generator;
pub mod kafka;
pub mod shop;

use super::{Diagnostics, kind_of, section};
use toml::Spanned;
use toml::de::DeValue;

pub use file::FileSourceConfig;
pub use generator::{GeneratorConfig, ScenarioConfig, ScenarioKind};
pub use kafka::{KafkaSourceConfig, Start};
pub use shop::{ShopConfig, ShopScenarioConfig, ShopScenarioKind};

#[derive(Debug, Clone, PartialEq)]
pub enum SourceConfig {
    Generator(Box<GeneratorConfig>),
    File(FileSourceConfig),
    Kafka(KafkaSourceConfig),
}

const KINDS: &str = "generator, file, kafka";

impl SourceConfig {
    pub fn parse(value: &Spanned<DeValue<'_>>, diags: &mut Diagnostics) -> Option<SourceConfig> {
        match kind_of(value, "[source]", diags)? {
            "generator" => {
                section(value, "[source]", diags).map(|c| SourceConfig::Generator(Box::new(c)))
            }
            "file" => section(value, "[source]", diags).map(SourceConfig::File),
            "kafka" => section(value, "[source]", diags).map(SourceConfig::Kafka),
            other => {
                let span = value.get_ref().get("kind").map(|k| k.span());
                diags.error_hint(
                    span,
                    format!("unknown source kind `{other}`"),
                    format!("kinds: {KINDS}"),
                );
                None
            }
        }
    }

    /// Whether the source has positions to resume from after a restart.
    pub fn has_offsets(&self) -> bool {
        matches!(self, SourceConfig::Kafka(_))
    }
}
