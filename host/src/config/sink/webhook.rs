//! `[sink.NAME] kind = "webhook"`, and its cooldown.

use crate::config::retry::RetryConfig;
use crate::config::secret::{Credential, SecretRef};
use crate::config::template::Template;
use crate::config::units::Duration;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub kind: String,
    /// Where the URL comes from: `{ env = "SLACK_WEBHOOK_URL" }` or `{ file = "..." }`
    /// (a Slack webhook URL is itself a credential).
    pub url: SecretRef,
    /// The column holding each request's JSON body.
    #[serde(default = "payload")]
    pub payload: String,
    /// Longest one request may take.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// How a request answered with 5xx or 429, or not answered, is retried; after the
    /// last try the row is dead-lettered.
    #[serde(default = "default_retry")]
    pub retry: RetryConfig,
    pub cooldown: Option<CooldownConfig>,
}

fn payload() -> String {
    "payload".into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_retry() -> RetryConfig {
    RetryConfig {
        initial: Duration::from_millis(500),
        ..RetryConfig::at_most(8)
    }
}

/// `cooldown = { redis = "...", ttl = "10m", key = "...", id = "alert_id" }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CooldownConfig {
    #[serde(default = "super::redis::default_url")]
    pub redis: Credential,
    #[serde(default = "default_ttl")]
    pub ttl: Duration,
    #[serde(default = "default_key")]
    pub key: Template,
    /// The column identifying an alert, so that a replay is recognised as the same one.
    #[serde(default = "default_id")]
    pub id: String,
}

fn default_ttl() -> Duration {
    Duration::from_secs(600)
}
fn default_key() -> Template {
    "alert_sent:{country}:{ad_format}:{alert_type}"
        .parse()
        .expect("a valid template")
}
fn default_id() -> String {
    "alert_id".into()
}
