//! `[sink.NAME] kind = "webhook"`, and its cooldown.

use crate::config::retry::{PartialRetry, RetryConfig};
use crate::config::secret::{Credential, SecretRef};
use crate::config::template::Template;
use crate::config::tls::TlsConfig;
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
    /// last try the row is dead-lettered. Keys left out keep the webhook's defaults.
    #[serde(default = "default_retry", deserialize_with = "retry_over_defaults")]
    pub retry: RetryConfig,
    /// Trust for an `https://` URL beyond the public roots.
    #[serde(default)]
    pub tls: TlsConfig,
    pub cooldown: Option<CooldownConfig>,
}

fn retry_over_defaults<'de, D: serde::Deserializer<'de>>(d: D) -> Result<RetryConfig, D::Error> {
    Ok(PartialRetry::deserialize(d)?.over(default_retry()))
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
    /// Trust for a `rediss://` URL beyond the public roots.
    #[serde(default)]
    pub tls: TlsConfig,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(table: &str) -> RetryConfig {
        let text = format!("kind = \"webhook\"\nurl = {{ env = \"HOOK\" }}\n{table}");
        toml::from_str::<WebhookConfig>(&text).unwrap().retry
    }

    #[test]
    fn a_partial_retry_table_keeps_the_webhooks_own_defaults() {
        let defaults = default_retry();
        assert_eq!(retry(""), defaults);
        let partial = retry("retry = { attempts = 3 }");
        assert_eq!(
            partial.initial,
            Duration::from_millis(500),
            "not the generic 200 ms"
        );
        assert_eq!((partial.max, partial.attempts), (defaults.max, Some(3)));
        assert_eq!(retry("retry = { initial = \"1s\" }").attempts, Some(8));
    }
}
