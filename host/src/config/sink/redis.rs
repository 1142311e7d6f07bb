//! `[sink.NAME] kind = "redis"`.

use crate::config::retry::RetryConfig;
use crate::config::secret::Credential;
use crate::config::template::Template;
use crate::config::tls::TlsConfig;
use crate::config::units::Duration;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSinkConfig {
    pub kind: String,
    /// A URL with a password must be a secret: `url = { env = "REDIS_URL" }`.
    #[serde(default = "default_url")]
    pub url: Credential,
    /// Trust for a `rediss://` URL beyond the public roots.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Key template: columns in braces, e.g. `metrics:{country}:{ad_format}:{window}`.
    pub key: Template,
    #[serde(default)]
    pub mode: RedisMode,
    /// Columns to store (hash mode); all by default.
    pub fields: Option<Vec<String>>,
    /// Expiry of each key, e.g. `2h`; none by default.
    pub ttl: Option<Duration>,
    /// How a failed write is retried (until it succeeds, by default).
    #[serde(default)]
    pub retry: RetryConfig,
}

/// `hash` (HSET of the fields) or `json` (SET of the row as JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisMode {
    #[default]
    Hash,
    Json,
}

pub fn default_url() -> Credential {
    Credential::inline("redis://127.0.0.1:6379")
}
