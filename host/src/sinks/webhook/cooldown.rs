//! The cooldown: an alert is sent at most once per key (country, ad format, alert type)
//! within the cooldown, across restarts and host processes.
//!
//! A delivery first claims its key with `SET key alert_id NX PX ttl`, and marks it
//! `sent:alert_id` once the webhook accepted it. A key still holding the bare `alert_id` is
//! a delivery that may not have finished (the host stopped between claim and answer), so a
//! replay of that same alert is sent again; any other holder — including `sent:` for this
//! very alert — means it already went out. A delivery that fails for good releases the key,
//! so the next alert is not suppressed by one nobody received.
//!
//! The keys are only as durable as the Redis that keeps them: one restarted without
//! persistence (or flushed) forgets them, and an alert sent before may be sent again. A
//! marker key, set when the cooldown connects, goes with them; a claim that finds it gone
//! (or changed by another host that found it gone) says so — logged as an error and
//! counted in `adstream_sink_state_lost_total` — and sets it again.

use crate::batch::render::render;
use crate::config::secret::RedactedUrl;
use crate::config::sink::CooldownConfig;
use crate::config::template::Template;
use crate::sinks::SinkMeter;
use crate::sinks::redis::{ConnectError, connect};
use adstream_sdk::Batch;
use redis::aio::ConnectionManager;
use std::sync::{Arc, Mutex};

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
    url: RedactedUrl,
    key: Template,
    id: String,
    ttl_ms: u64,
    /// The marker's key and the value this host knows it by.
    marker: (String, Mutex<String>),
    meter: Arc<SinkMeter>,
}

impl Cooldown {
    pub async fn connect(
        cfg: &CooldownConfig,
        meter: Arc<SinkMeter>,
    ) -> Result<Cooldown, CooldownError> {
        let url = cfg.redis.resolve("redis")?;
        // Beside the cooldown's own keys: the literal start of their template.
        let prefix = cfg.key.text.split('{').next().unwrap_or_default();
        let cooldown = Cooldown {
            conn: connect(&url, &cfg.tls).await?,
            url,
            key: cfg.key.clone(),
            id: cfg.id.clone(),
            ttl_ms: cfg.ttl.as_millis_i64().max(1) as u64,
            marker: (
                format!("{prefix}adstream-cooldown-marker"),
                Mutex::default(),
            ),
            meter,
        };
        let known = cooldown.mark().await?;
        *cooldown.marker.1.lock().expect("marker") = known;
        Ok(cooldown)
    }

    /// Sets the marker unless it is there, and returns its value.
    async fn mark(&self) -> Result<String, CooldownError> {
        let fresh = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        );
        let mut conn = self.conn.clone();
        let _: Option<String> = redis::cmd("SET")
            .arg(&self.marker.0)
            .arg(&fresh)
            .arg("NX")
            .query_async(&mut conn)
            .await?;
        let now: Option<String> = redis::cmd("GET")
            .arg(&self.marker.0)
            .query_async(&mut conn)
            .await?;
        Ok(now.unwrap_or(fresh))
    }

    /// Says so when the marker is gone or changed: the cooldown keys went with it.
    async fn check_marker(&self) -> Result<(), CooldownError> {
        let now: Option<String> = redis::cmd("GET")
            .arg(&self.marker.0)
            .query_async(&mut self.conn.clone())
            .await?;
        if now.as_deref() == Some(self.marker.1.lock().expect("marker").as_str()) {
            return Ok(());
        }
        self.meter.state_lost();
        tracing::error!(
            "cooldown: Redis at {} has lost its cooldown keys (restarted without persistence, or flushed): an alert sent in the last cooldown may be sent again. Keep this Redis persistent (appendonly yes, appendfsync always)",
            self.url
        );
        let known = self.mark().await?;
        *self.marker.1.lock().expect("marker") = known;
        Ok(())
    }

    pub async fn claim(&self, batch: &Batch, row: usize) -> Result<Claim, CooldownError> {
        self.check_marker().await?;
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
