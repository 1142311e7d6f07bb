//! The cooldown: an alert is sent at most once per key (country, ad format, alert type)
//! within the cooldown, across restarts and host processes.
//!
//! A delivery first claims its key with `SET key alert_id NX PX ttl`, and marks it
//! `sent:alert_id` once the webhook accepted it. A key still holding the bare `alert_id` is
//! a delivery that may not have finished (the host stopped between claim and answer), so a
//! replay of that same alert is sent again; any other holder — including `sent:` for this
//! very alert — means it already went out. A delivery that fails for good releases the key,
//! so the next alert is not suppressed by one nobody received.

use crate::batch::render::render;
use crate::config::sink::CooldownConfig;
use crate::config::template::Template;
use crate::sinks::redis::{ConnectError, connect};
use adstream_sdk::Batch;
use redis::aio::ConnectionManager;

/// What a claim found.
pub enum Claim {
    /// No cooldown configured.
    Free,
    /// This delivery holds the key (named).
    Taken(String),
    /// Another alert holds it: skip this one (its id).
    Held(String),
}

/// Why the cooldown could not do its part.
#[derive(Debug, thiserror::Error)]
pub enum CooldownError {
    #[error("cooldown: {0}")]
    Secret(#[from] crate::config::SecretError),
    #[error("cooldown: {0}")]
    Connect(#[from] ConnectError),
    #[error("cooldown: {0}")]
    Redis(#[from] redis::RedisError),
}

pub struct Cooldown {
    conn: ConnectionManager,
    key: Template,
    id: String,
    ttl_ms: u64,
}

impl Cooldown {
    pub async fn connect(cfg: &CooldownConfig) -> Result<Cooldown, CooldownError> {
        let url = cfg.redis.resolve("redis")?;
        Ok(Cooldown {
            conn: connect(&url, &cfg.tls).await?,
            key: cfg.key.clone(),
            id: cfg.id.clone(),
            ttl_ms: cfg.ttl.as_millis_i64().max(1) as u64,
        })
    }

    pub async fn claim(&self, batch: &Batch, row: usize) -> Result<Claim, CooldownError> {
        let mut key = String::new();
        render(&self.key, batch, row, &mut key);
        let id = batch
            .text(&self.id)
            .ok()
            .and_then(|c| c.get(row))
            .unwrap_or("")
            .to_string();
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&id)
            .arg("NX")
            .arg("PX")
            .arg(self.ttl_ms)
            .query_async(&mut self.conn.clone())
            .await?;
        if set.is_some() {
            return Ok(Claim::Taken(key));
        }
        let holder: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(
            if holder.as_deref() == Some(id.as_str()) && !id.is_empty() {
                Claim::Taken(key)
            } else {
                Claim::Held(id)
            },
        )
    }

    /// Records that the alert holding `key` was delivered.
    pub async fn confirm(&self, key: &str, batch: &Batch, row: usize) {
        let id = batch
            .text(&self.id)
            .ok()
            .and_then(|c| c.get(row))
            .unwrap_or("")
            .to_string();
        let r: Result<(), _> = redis::cmd("SET")
            .arg(key)
            .arg(format!("sent:{id}"))
            .arg("XX")
            .arg("KEEPTTL")
            .query_async(&mut self.conn.clone())
            .await;
        if let Err(e) = r {
            tracing::warn!("cooldown: confirming {key}: {e}");
        }
    }

    pub async fn release(&self, key: &str) {
        let r: Result<(), _> = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut self.conn.clone())
            .await;
        if let Err(e) = r {
            tracing::warn!("cooldown: releasing {key}: {e}");
        }
    }
}
