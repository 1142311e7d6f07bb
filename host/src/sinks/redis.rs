//! The `redis` sink: each row written to a key made from its columns (e.g.
//! `metrics:{country}:{ad_format}:{window}`), as a hash of its fields or as JSON, with a
//! TTL — the latest values for dashboards. Writes are pipelined, one round trip per batch;
//! the connection reconnects by itself and a failed batch is retried.

use super::template::Template;
use super::{Sink, SinkError};
use crate::batch::encode::{row_json, write_value};
use crate::sources::BoxFut;
use adstream_sdk::Batch;
use adstream_sdk::time::parse_duration_ms;
use redis::aio::ConnectionManager;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// `[sink.NAME] kind = "redis"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSinkConfig {
    pub kind: String,
    #[serde(default = "default_url")]
    pub url: String,
    /// Key template: columns in braces, e.g. `metrics:{country}:{ad_format}:{window}`.
    pub key: String,
    /// `hash` (HSET of the fields) or `json` (SET of the row as JSON).
    #[serde(default = "hash")]
    pub mode: String,
    /// Columns to store (hash mode); all by default.
    pub fields: Option<Vec<String>>,
    /// Expiry of each key, e.g. `2h`; none by default.
    pub ttl: Option<String>,
    /// Give up after this many failed tries of one batch (stopping the pipeline).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
}

fn default_url() -> String {
    "redis://127.0.0.1:6379".into()
}
fn hash() -> String {
    "hash".into()
}
fn default_attempts() -> u32 {
    10
}

pub struct RedisSink {
    name: String,
    cfg: RedisSinkConfig,
    key: Template,
    ttl_ms: Option<i64>,
    conn: ConnectionManager,
}

impl RedisSink {
    pub async fn open(name: &str, cfg: &RedisSinkConfig) -> Result<Self, SinkError> {
        let fail = |message: String| SinkError::Config {
            sink: name.into(),
            message,
        };
        if cfg.mode != "hash" && cfg.mode != "json" {
            return Err(fail(format!(
                "mode = {:?} (use \"hash\" or \"json\")",
                cfg.mode
            )));
        }
        let key = Template::parse(&cfg.key).map_err(|e| fail(format!("key: {e}")))?;
        let ttl_ms = cfg
            .ttl
            .as_deref()
            .map(parse_duration_ms)
            .transpose()
            .map_err(|e| fail(format!("ttl: {e}")))?;
        let client = redis::Client::open(cfg.url.as_str())
            .map_err(|e| fail(format!("url {}: {e}", cfg.url)))?;
        let conn = tokio::time::timeout(Duration::from_secs(10), ConnectionManager::new(client))
            .await
            .map_err(|_| fail(format!("cannot reach Redis at {}: timed out", cfg.url)))?
            .map_err(|e| fail(format!("cannot reach Redis at {}: {e}", cfg.url)))?;
        Ok(RedisSink {
            name: name.into(),
            cfg: cfg.clone(),
            key,
            ttl_ms,
            conn,
        })
    }

    fn commands(&self, batch: &Batch) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        let fields: Vec<_> = batch
            .columns
            .iter()
            .filter(|c| self.cfg.fields.as_ref().is_none_or(|f| f.contains(&c.name)))
            .collect();
        let mut key = String::new();
        let mut value = Vec::new();
        for row in 0..batch.len() {
            key.clear();
            self.key.render(batch, row, &mut key);
            if self.cfg.mode == "json" {
                pipe.set(&key, row_json(batch, row)).ignore();
            } else {
                let mut hset = redis::cmd("HSET");
                hset.arg(&key);
                for c in &fields {
                    value.clear();
                    write_value(&mut value, c, row);
                    let text = value
                        .strip_prefix(b"\"")
                        .and_then(|v| v.strip_suffix(b"\""))
                        .unwrap_or(&value);
                    hset.arg(&c.name).arg(text);
                }
                pipe.add_command(hset).ignore();
            }
            if let Some(ttl) = self.ttl_ms {
                pipe.pexpire(&key, ttl).ignore();
            }
        }
        pipe
    }
}

impl Sink for RedisSink {
    fn write(&mut self, batch: Arc<Batch>) -> BoxFut<'_, Result<(), SinkError>> {
        Box::pin(async move {
            let pipe = self.commands(&batch);
            let mut delay = Duration::from_millis(100);
            for attempt in 1..=self.cfg.max_attempts {
                match pipe.query_async::<()>(&mut self.conn).await {
                    Ok(()) => return Ok(()),
                    Err(e) if attempt < self.cfg.max_attempts => {
                        tracing::warn!(sink = %self.name, attempt, "redis write failed, retrying in {delay:?}: {e}");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                    Err(e) => {
                        return Err(SinkError::Delivery {
                            sink: self.name.clone(),
                            message: format!(
                                "writing to Redis at {} failed {attempt} times: {e}",
                                self.cfg.url
                            ),
                        });
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
