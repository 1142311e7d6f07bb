//! The `redis` sink: each row written to a key made from its columns (e.g.
//! `metrics:{country}:{ad_format}:{window}`), as a hash of its fields or as JSON, with a
//! TTL — the latest values for dashboards. Writes are pipelined, one round trip per batch;
//! the connection reconnects by itself and a failed batch is retried. Every write
//! overwrites, so a replayed row leaves the same value.

use super::{Sink, SinkError};
use crate::batch::encode::{row_json, write_value};
use crate::batch::render::render;
use crate::config::secret::{Credential, RedactedUrl};
use crate::config::sink::{RedisMode, RedisSinkConfig};
use crate::config::tls::TlsConfig;
use crate::connect::BoxFut;
use crate::connect::retry::{Attempt, retry};
use adstream_sdk::Batch;
use redis::aio::ConnectionManager;
use std::sync::Arc;
use std::time::Duration;

pub struct RedisSink {
    name: String,
    cfg: RedisSinkConfig,
    url: RedactedUrl,
    conn: ConnectionManager,
}

/// What is wrong with a Redis URL setting, if anything (its secret, its syntax, or the
/// CA file it trusts).
pub fn check_url(url: &Credential, tls: &TlsConfig) -> Option<String> {
    if let Some(Err(e)) = tls.ca().map(crate::connect::tls::read_ca) {
        return Some(e.to_string());
    }
    let url = match url.resolve("url") {
        Ok(u) => u,
        Err(e) if e.not_read() => return None,
        Err(e) => return Some(e.to_string()),
    };
    redis::Client::open(url.expose())
        .err()
        .map(|e| format!("url {url}: {e}"))
}

/// A client for `url`: with TLS (`rediss://`), trusting the public roots or, with
/// `tls.ca`, that authority.
fn client(url: &RedactedUrl, tls: &TlsConfig) -> Result<redis::Client, ConnectError> {
    let bad = |reason: String| ConnectError::Url {
        url: url.clone(),
        reason,
    };
    // The redis crate asks rustls for the process's provider.
    crate::connect::tls::install_provider();
    match tls.ca() {
        None => redis::Client::open(url.expose()).map_err(|e| bad(e.to_string())),
        Some(ca) => {
            let pem = crate::connect::tls::read_ca(ca).map_err(|e| bad(e.to_string()))?;
            let certs = redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem),
            };
            redis::Client::build_with_tls(url.expose(), certs).map_err(|e| bad(e.to_string()))
        }
    }
}

/// Why a Redis connection could not be made; the URL is shown with its password masked.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("url {url}: {reason}")]
    Url { url: RedactedUrl, reason: String },
    #[error("cannot reach Redis at {url}: {reason}")]
    Unreachable { url: RedactedUrl, reason: String },
}

/// Connects to the Redis at `url`, giving up after 10 s.
pub async fn connect(
    url: &RedactedUrl,
    tls: &TlsConfig,
) -> Result<ConnectionManager, ConnectError> {
    let client = client(url, tls)?;
    if crate::connect::tls::plaintext_beyond_loopback(url.expose(), &["rediss"]) {
        tracing::warn!(
            "Redis at {url} is reached without TLS: values and the password cross the network in the clear (use a rediss:// URL)"
        );
    }
    let unreachable = |reason: String| ConnectError::Unreachable {
        url: url.clone(),
        reason,
    };
    // One plain connection first: the manager retries a failed connection until its own
    // timeout, which hides why (a refused certificate, a wrong password).
    let within = Duration::from_secs(10);
    tokio::time::timeout(within, client.get_multiplexed_async_connection())
        .await
        .map_err(|_| unreachable("timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    tokio::time::timeout(within, ConnectionManager::new(client))
        .await
        .map_err(|_| unreachable("timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))
}

impl RedisSink {
    pub async fn open(name: &str, cfg: &RedisSinkConfig) -> Result<Self, SinkError> {
        let fail = |message: String| SinkError::Config {
            sink: name.into(),
            message,
        };
        let url = cfg.url.resolve("url").map_err(|e| fail(e.to_string()))?;
        let conn = connect(&url, &cfg.tls)
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok(RedisSink {
            name: name.into(),
            cfg: cfg.clone(),
            url,
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
            render(&self.cfg.key, batch, row, &mut key);
            match self.cfg.mode {
                RedisMode::Json => {
                    pipe.set(&key, row_json(batch, row)).ignore();
                }
                RedisMode::Hash => {
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
            }
            if let Some(ttl) = self.cfg.ttl {
                pipe.pexpire(&key, ttl.as_millis_i64()).ignore();
            }
        }
        pipe
    }
}

impl Sink for RedisSink {
    fn write(&mut self, batch: Arc<Batch>) -> BoxFut<'_, Result<(), SinkError>> {
        Box::pin(async move {
            let pipe = self.commands(&batch);
            let what = format!("sink `{}`: writing to Redis at {}", self.name, self.url);
            let conn = &self.conn;
            retry(&self.cfg.retry, &what, || {
                let mut conn = conn.clone();
                let pipe = &pipe;
                async move {
                    pipe.query_async::<()>(&mut conn)
                        .await
                        .map_err(|e| Attempt::Retry {
                            error: e,
                            wait: None,
                        })
                }
            })
            .await
            .map_err(|g| SinkError::Delivery {
                sink: self.name.clone(),
                message: format!(
                    "writing to Redis at {} failed {} times: {}",
                    self.url, g.attempts, g.last
                ),
            })
        })
    }

    fn flush(&mut self) -> BoxFut<'_, Result<(), SinkError>> {
        Box::pin(async { Ok(()) })
    }
}
