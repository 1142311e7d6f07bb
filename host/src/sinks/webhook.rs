//! The `webhook` sink: each row's `payload` column POSTed as JSON to an incoming webhook
//! (Slack), with a timeout, retries under the sink's `retry` on 5xx and network errors,
//! `Retry-After` honoured on 429, and the row dead-lettered after the last try. The URL
//! comes from an environment variable or a secret file and never appears in logs or errors.
//!
//! With `cooldown`, a row whose key (by default country, ad format and alert type) was
//! sent within the cooldown is skipped; the key lives in Redis, so it holds across
//! restarts and across host processes.

mod cooldown;

use super::{DeadLetterTx, Sink, SinkError, SinkMeter};
use crate::config::RetryConfig;
use crate::config::sink::WebhookConfig;
use crate::connect::BoxFut;
use crate::connect::retry::{Attempt, retry};
use adstream_sdk::Batch;
use cooldown::{Claim, Cooldown};
use std::sync::Arc;
use std::time::Duration;

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
    retry: RetryConfig,
    cooldown: Option<Cooldown>,
    dead_letters: Option<DeadLetterTx>,
    stats: WebhookStats,
    meter: Arc<SinkMeter>,
}

/// The URL from its secret, checked to be one.
fn url(cfg: &WebhookConfig) -> Result<String, String> {
    let secret = cfg.url.resolve("url").map_err(|e| e.to_string())?;
    let url = secret.text().map_err(|e| e.to_string())?.to_string();
    reqwest::Url::parse(&url)
        .map_err(|_| format!("the webhook URL in {} is not a valid URL", cfg.url))?;
    Ok(url)
}

/// What `adstream check` finds wrong: a URL secret that does not resolve or is no URL,
/// a cooldown Redis URL that does not.
pub fn check(cfg: &WebhookConfig) -> Vec<String> {
    let unread = matches!(cfg.url.resolve("url"), Err(e) if e.not_read());
    let mut out: Vec<String> = url(cfg).err().filter(|_| !unread).into_iter().collect();
    if let Some(Err(e)) = cfg.tls.ca().map(crate::connect::tls::read_ca) {
        out.push(e.to_string());
    }
    if let Some(c) = &cfg.cooldown {
        out.extend(super::redis::check_url(&c.redis, &c.tls).map(|e| format!("cooldown: {e}")));
    }
    out
}

/// How a response or a failed request is handled.
async fn classify(sent: Result<reqwest::Response, reqwest::Error>) -> Result<(), Attempt<String>> {
    match sent {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) if r.status().as_u16() == 429 => {
            let wait = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            Err(Attempt::Retry {
                error: "HTTP 429 Too Many Requests".into(),
                wait,
            })
        }
        Ok(r) if r.status().is_server_error() => Err(Attempt::Retry {
            error: format!("HTTP {}", r.status()),
            wait: None,
        }),
        Ok(r) => {
            let status = r.status();
            Err(Attempt::Fatal(format!(
                "HTTP {status}: {}",
                reply_start(r).await
            )))
        }
        Err(e) => Err(Attempt::Retry {
            error: with_causes(e.without_url()),
            wait: None,
        }),
    }
}

/// The error with the causes under it (a refused certificate, a refused connection), which
/// reqwest's own text leaves out; the URL, a credential, is not among them.
fn with_causes(e: reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

/// The most of a refused request's reply that is read, for its dead letter's error.
const REPLY_BYTES: usize = 1024;

/// The first 200 characters of `r`'s body: of a body of any length (or one that never
/// ends) no more than [`REPLY_BYTES`] and a chunk are read.
async fn reply_start(mut r: reqwest::Response) -> String {
    let mut kept = Vec::new();
    while kept.len() < REPLY_BYTES {
        match r.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            _ => break,
        }
    }
    kept.truncate(REPLY_BYTES);
    String::from_utf8_lossy(&kept).chars().take(200).collect()
}

impl WebhookSink {
    pub async fn open(
        name: &str,
        cfg: &WebhookConfig,
        dead_letters: Option<DeadLetterTx>,
        meter: Arc<SinkMeter>,
    ) -> Result<Self, SinkError> {
        let fail = |message: String| SinkError::Config {
            sink: name.into(),
            message,
        };
        let url = url(cfg).map_err(fail)?;
        let mut http = reqwest::Client::builder().timeout(cfg.timeout.get());
        if let Some(ca) = cfg.tls.ca() {
            let pem = crate::connect::tls::read_ca(ca).map_err(|e| fail(e.to_string()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| fail(format!("tls.ca {ca}: {e}")))?
            {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http
            .build()
            .map_err(|e| fail(e.without_url().to_string()))?;
        let cooldown = match &cfg.cooldown {
            Some(c) => Some(
                Cooldown::connect(c, meter.clone())
                    .await
                    .map_err(|e| fail(e.to_string()))?,
            ),
            None => None,
        };
        Ok(WebhookSink {
            name: name.into(),
            url,
            http,
            payload: cfg.payload.clone(),
            retry: cfg.retry,
            cooldown,
            dead_letters,
            stats: WebhookStats::default(),
            meter,
        })
    }

    /// POSTs one body, retrying as the status says; the error is the last failure.
    async fn post(&self, body: &str) -> Result<(), String> {
        let what = format!("sink `{}`: webhook delivery", self.name);
        retry(&self.retry, &what, || async {
            let sent = self
                .http
                .post(&self.url)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await;
            classify(sent).await
        })
        .await
        .map_err(|g| match g.fatal {
            true => g.last,
            false => format!("gave up after {} tries; last: {}", g.attempts, g.last),
        })
    }

    /// Claims the row's cooldown key, retrying while Redis is unreachable (an outage holds
    /// the alerts back rather than sending them twice or losing them).
    async fn claim(&self, batch: &Batch, row: usize) -> Result<Claim, SinkError> {
        let Some(c) = &self.cooldown else {
            return Ok(Claim::Free);
        };
        let what = format!("sink `{}`: cooldown", self.name);
        retry(&RetryConfig::default(), &what, || async {
            c.claim(batch, row).await.map_err(|e| Attempt::Retry {
                error: e,
                wait: None,
            })
        })
        .await
        .map_err(|g| SinkError::Delivery {
            sink: self.name.clone(),
            message: g.last.to_string(),
        })
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

    async fn deliver(&mut self, batch: &Batch, row: usize, body: &str) -> Result<(), SinkError> {
        let claim = self.claim(batch, row).await?;
        if let Claim::Held(id) = &claim {
            self.stats.suppressed += 1;
            self.meter.held(id);
            return Ok(());
        }
        match self.post(body).await {
            Ok(()) => {
                self.stats.sent += 1;
                if let (Some(c), Claim::Taken(key)) = (&self.cooldown, &claim) {
                    c.confirm(key, batch, row).await;
                }
                Ok(())
            }
            Err(e) => {
                if let (Some(c), Claim::Taken(key)) = (&self.cooldown, &claim) {
                    c.release(key).await;
                }
                self.dead_letter(batch, row, &e).await
            }
        }
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
                self.deliver(&batch, row, bodies.get(row).unwrap_or(""))
                    .await?;
            }
            Ok(())
        })
    }

    fn flush(&mut self) -> BoxFut<'_, Result<(), SinkError>> {
        Box::pin(async { Ok(()) })
    }
}
