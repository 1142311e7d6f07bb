//! `[privacy]`: what dead letters keep of the fields `[schema]` marks `personal = true`.
//! Dead letters carry what a pipeline could not process — often before its PII stage ran —
//! and go to places (a Kafka topic, files, the dashboard) with other readers than the
//! pipeline's outputs, so by default they keep no personal field in clear.
//!
//! ```toml
//! [privacy]
//! dead_letters = "hash"               # redact (default) | hash | position | raw
//! key = { env = "ADSTREAM_PII_KEY" }  # for hash: HMAC-SHA256, as pii-hash computes it
//! ```

use super::secret::SecretRef;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    #[serde(default)]
    pub dead_letters: PayloadPolicy,
    /// The key of `hash`: a secret of at least 16 bytes.
    pub key: Option<SecretRef>,
}

/// What a dead letter's `payload` (and `error`) keeps of a personal field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadPolicy {
    /// The value is replaced by `[personal]`.
    #[default]
    Redact,
    /// The value is replaced by its keyed hash (the first 16 bytes of HMAC-SHA256, in
    /// hex): the same value pii-hash stores for the same key, so the row can be found.
    Hash,
    /// No payload at all: the reason and the position (partition and offset) only.
    Position,
    /// Everything as read. Personal data then reaches every reader of the dead letters.
    Raw,
}

impl PrivacyConfig {
    /// What the file alone can tell is wrong.
    pub fn problem(&self) -> Option<&'static str> {
        (self.dead_letters == PayloadPolicy::Hash && self.key.is_none())
            .then_some("[privacy] dead_letters = \"hash\" needs a `key`, e.g. key = { env = \"ADSTREAM_PII_KEY\" }")
    }
}
