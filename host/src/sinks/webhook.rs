//! The `webhook` sink: each row's `payload` column POSTed as JSON to an incoming webhook
//! (Slack), with a timeout, retries with backoff on 5xx and network errors, `Retry-After`
//! honoured on 429, and the row dead-lettered after the last try. The URL comes from an
//! environment variable or a secret file and never appears in logs or errors.
//!
//! With `cooldown`, a row whose key (by default country, ad format and alert type) was
//! sent within the cooldown is skipped; the key lives in Redis, so it holds across
//! restarts and across host processes.

mod cooldown;

use super::{DeadLetterTx, Sink, SinkError};
use crate::config::SecretRef;
use crate::sources::BoxFut;
use adstream_sdk::Batch;
use adstream_sdk::time::parse_duration_ms;
use cooldown::{Claim, Cooldown, CooldownConfig};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// `[sink.NAME] kind = "webhook"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub kind: String,
    /// Where the URL comes from: `{ env = "SLACK_WEBHOOK_URL" }` or `{ file = "..." }`.
    pub url: SecretRef,
    /// The column holding each request's JSON body.
    #[serde(default = "payload")]
    pub payload: String,
    #[serde(default = "default_timeout")]
    pub timeout: String,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_backoff")]
    pub backoff: String,
    #[serde(default = "default_backoff_max")]
    pub backoff_max: String,
    pub cooldown: Option<CooldownConfig>,
}

fn payload() -> String {
    "payload".into()
}
fn default_timeout() -> String {
    "10s".into()
}
fn default_attempts() -> u32 {
    5
}
fn default_backoff() -> String {
    "500ms".into()
}
fn default_backoff_max() -> String {
    "30s".into()
}

/// Delivery counters, for the run summary and tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct WebhookStats {
    pub sent: u64,
    pub suppressed: u64,
    pub dead_lettered: u64,
}

pub struct WebhookSink {
    name: String,
    url: String,
    http: reqwest::Client,
    payload: String,
    max_attempts: u32,
    backoff: Duration,
    backoff_max: Duration,
    cooldown: Option<Cooldown>,
    dead_letters: Option<DeadLetterTx>,
    stats: WebhookStats,
}

/// Why one delivery failed for good.
struct Failed(String);

fn duration(text: &str, key: &str) -> Result<Duration, String> {
    parse_duration_ms(text)
        .map(|m| Duration::from_millis(m.max(0) as u64))
        .map_err(|e| format!("{key}: {e}"))
}

impl WebhookSink {
    pub async fn open(
        name: &str,
        cfg: &WebhookConfig,
        dead_letters: Option<DeadLetterTx>,
    ) -> Result<Self, SinkError> {
        let fail = |message: String| SinkError::Config {
            sink: name.into(),
            message,
        };
        let url =
            crate::pipeline::resolve_secret("url", &cfg.url).map_err(|e| fail(e.to_string()))?;
        let url = String::from_utf8(url.value)
            .map_err(|_| fail("the webhook URL is not UTF-8".into()))?;
        reqwest::Url::parse(&url).map_err(|_| fail("the webhook URL is not a valid URL".into()))?;
        let timeout = duration(&cfg.timeout, "timeout").map_err(fail)?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| fail(e.without_url().to_string()))?;
        let cooldown = match &cfg.cooldown {
            Some(c) => Some(Cooldown::connect(c).await.map_err(fail)?),
            None => None,
        };
        Ok(WebhookSink {
            name: name.into(),
            url,
            http,
            payload: cfg.payload.clone(),
            max_attempts: cfg.max_attempts.max(1),
            backoff: duration(&cfg.backoff, "backoff").map_err(fail)?,
            backoff_max: duration(&cfg.backoff_max, "backoff_max").map_err(fail)?,
            cooldown,
            dead_letters,
            stats: WebhookStats::default(),
        })
    }

    /// POSTs one body, retrying as the status says.
    async fn post(&self, body: &str) -> Result<(), Failed> {
        let mut delay = self.backoff;
        let mut last = String::new();
        for attempt in 1..=self.max_attempts {
            let sent = self
                .http
                .post(&self.url)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await;
            let wait = match sent {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) if r.status().as_u16() == 429 => {
                    last = "HTTP 429 Too Many Requests".into();
                    let after = r
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
                    after.map_or(delay, Duration::from_secs)
                }
                Ok(r) if r.status().is_server_error() => {
                    last = format!("HTTP {}", r.status());
                    delay
                }
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    return Err(Failed(format!(
                        "HTTP {status}: {}",
                        text.chars().take(200).collect::<String>()
                    )));
                }
                Err(e) => {
                    last = e.without_url().to_string();
                    delay
                }
            };
            if attempt < self.max_attempts {
                tracing::warn!(sink = %self.name, attempt, "webhook delivery failed ({last}), retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(self.backoff_max);
            }
        }
        Err(Failed(format!(
            "gave up after {} tries; last: {last}",
            self.max_attempts
        )))
    }

    async fn dead_letter(
        &mut self,
        batch: &Batch,
        row: usize,
        error: &str,
    ) -> Result<(), SinkError> {
        self.stats.dead_lettered += 1;
        tracing::warn!(sink = %self.name, "webhook delivery failed for good: {error}");
        match &self.dead_letters {
            Some(dl) => dl.row(&self.name, batch, row, error).await,
            None => Err(SinkError::Delivery {
                sink: self.name.clone(),
                message: error.to_string(),
            }),
        }
    }

    pub fn stats(&self) -> WebhookStats {
        self.stats
    }
}

impl Sink for WebhookSink {
    fn write(&mut self, batch: Arc<Batch>) -> BoxFut<'_, Result<(), SinkError>> {
        Box::pin(async move {
            let bodies = batch.text(&self.payload).map_err(|e| SinkError::Delivery {
                sink: self.name.clone(),
                message: format!(
                    "rows have no text column `{}`: {}",
                    self.payload,
                    e.describe()
                ),
            })?;
            for row in 0..batch.len() {
                let claim = match &mut self.cooldown {
                    Some(c) => c
                        .claim(&batch, row)
                        .await
                        .map_err(|m| SinkError::Delivery {
                            sink: self.name.clone(),
                            message: m,
                        })?,
                    None => Claim::Free,
                };
                if let Claim::Held = claim {
                    self.stats.suppressed += 1;
                    continue;
                }
                match self.post(bodies.get(row).unwrap_or("")).await {
                    Ok(()) => {
                        self.stats.sent += 1;
                        if let (Some(c), Claim::Taken(key)) = (&mut self.cooldown, &claim) {
                            c.confirm(key, &batch, row).await;
                        }
                    }
                    Err(Failed(e)) => {
                        if let (Some(c), Claim::Taken(key)) = (&mut self.cooldown, &claim) {
                            c.release(key).await;
                        }
                        self.dead_letter(&batch, row, &e).await?;
                    }
                }
            }
            Ok(())
        })
    }

    fn flush(&mut self) -> BoxFut<'_, Result<(), SinkError>> {
        Box::pin(async { Ok(()) })
    }
}
