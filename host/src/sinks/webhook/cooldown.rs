//! The cooldown: an alert is sent at most once per key (country, ad format, alert type)
//! within the cooldown, across restarts and host processes.
//!
//! A delivery first claims its key with `SET key alert_id NX PX ttl`, and marks it
//! `sent:alert_id` once the webhook accepted it. A key still holding the bare `alert_id` is
//! a delivery that may not have finished (the host stopped between claim and answer), so a
//! replay of that same alert is sent again; any other holder — including `sent:` for this
//! very alert — means it already went out. A delivery that fails for good releases the key,
//! so the next alert is not suppressed by one nobody received.

use super::super::template::Template;
use adstream_sdk::Batch;
use adstream_sdk::time::parse_duration_ms;
use redis::aio::ConnectionManager;
use serde::Deserialize;
use std::time::Duration;

/// `cooldown = { redis = "...", ttl = "10m", key = "...", id = "alert_id" }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CooldownConfig {
    #[serde(default = "default_url")]
    pub redis: String,
    #[serde(default = "default_ttl")]
    pub ttl: String,
    #[serde(default = "default_key")]
    pub key: String,
    /// The column identifying an alert, so that a replay is recognised as the same one.
    #[serde(default = "default_id")]
    pub id: String,
}

fn default_url() -> String {
    "redis://127.0.0.1:6379".into()
}
fn default_ttl() -> String {
    "10m".into()
}
fn default_key() -> String {
    "alert_sent:{country}:{ad_format}:{alert_type}".into()
}
fn default_id() -> String {
    "alert_id".into()
}

/// What a claim found.
pub enum Claim {
    /// No cooldown configured.
    Free,
    /// This delivery holds the key (named).
    Taken(String),
    /// Another alert holds it: skip this one.
    Held,
}

pub struct Cooldown {
    conn: ConnectionManager,
    key: Template,
    id: String,
    ttl_ms: u64,
}

impl Cooldown {
    pub async fn connect(cfg: &CooldownConfig) -> Result<Cooldown, String> {
        let key = Template::parse(&cfg.key).map_err(|e| format!("cooldown key: {e}"))?;
        let ttl_ms = parse_duration_ms(&cfg.ttl)
            .map_err(|e| format!("cooldown ttl: {e}"))?
            .max(1) as u64;
        let client = redis::Client::open(cfg.redis.as_str())
            .map_err(|e| format!("cooldown redis {}: {e}", cfg.redis))?;
        let conn = tokio::time::timeout(Duration::from_secs(10), ConnectionManager::new(client))
            .await
            .map_err(|_| format!("cannot reach Redis at {} (cooldown): timed out", cfg.redis))?
            .map_err(|e| format!("cannot reach Redis at {} (cooldown): {e}", cfg.redis))?;
        Ok(Cooldown {
            conn,
            key,
            id: cfg.id.clone(),
            ttl_ms,
        })
    }

    pub async fn claim(&mut self, batch: &Batch, row: usize) -> Result<Claim, String> {
        let mut key = String::new();
        self.key.render(batch, row, &mut key);
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
            .query_async(&mut self.conn)
            .await
            .map_err(|e| format!("cooldown: {e}"))?;
        if set.is_some() {
            return Ok(Claim::Taken(key));
        }
        let holder: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut self.conn)
            .await
            .map_err(|e| format!("cooldown: {e}"))?;
        Ok(
            if holder.as_deref() == Some(id.as_str()) && !id.is_empty() {
                Claim::Taken(key)
            } else {
                Claim::Held
            },
        )
    }

    /// Records that the alert holding `key` was delivered.
    pub async fn confirm(&mut self, key: &str, batch: &Batch, row: usize) {
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
            .query_async(&mut self.conn)
            .await;
        if let Err(e) = r {
            tracing::warn!("cooldown: confirming {key}: {e}");
        }
    }

    pub async fn release(&mut self, key: &str) {
        let r: Result<(), _> = redis::cmd("DEL").arg(key).query_async(&mut self.conn).await;
        if let Err(e) = r {
            tracing::warn!("cooldown: releasing {key}: {e}");
        }
    }
}
