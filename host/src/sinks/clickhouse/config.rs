//! `[sink.NAME] kind = "clickhouse"` and the table DDL derived from a row schema.

use super::rowbinary::type_of;
use crate::config::SecretRef;
use crate::plugin::limits::parse_size;
use adstream_sdk::Field;
use adstream_sdk::time::parse_duration_ms;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseConfig {
    pub kind: String,
    #[serde(default = "default_url")]
    pub url: String,
    /// `database.table`, or `table` in the `default` database.
    pub table: String,
    pub user: Option<String>,
    pub password: Option<SecretRef>,
    /// Create the database and table from the rows' schema if they do not exist.
    #[serde(default)]
    pub create: bool,
    /// Table engine for `create`.
    #[serde(default = "default_engine")]
    pub engine: String,
    /// Sorting key for `create`; with ReplacingMergeTree, rows with equal keys are one row.
    #[serde(default)]
    pub order_by: Vec<String>,
    /// Partition expression for `create`, e.g. `toYYYYMMDD(window_start)`.
    pub partition_by: Option<String>,
    /// Check at start that the table's columns match the rows.
    #[serde(default = "yes")]
    pub validate_schema: bool,
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    #[serde(default = "default_max_bytes")]
    pub max_bytes: String,
    #[serde(default = "default_max_delay")]
    pub max_delay: String,
    #[serde(default = "default_retry_initial")]
    pub retry_initial: String,
    #[serde(default = "default_retry_max")]
    pub retry_max: String,
    /// Give up (and stop the pipeline, committing nothing) after this many failed tries of
    /// one insert; unset retries for as long as it takes.
    pub max_attempts: Option<u32>,
}

fn default_url() -> String {
    "http://127.0.0.1:8123".into()
}
fn default_engine() -> String {
    "ReplacingMergeTree()".into()
}
fn yes() -> bool {
    true
}
fn default_max_rows() -> usize {
    100_000
}
fn default_max_bytes() -> String {
    "16MiB".into()
}
fn default_max_delay() -> String {
    "1s".into()
}
fn default_retry_initial() -> String {
    "200ms".into()
}
fn default_retry_max() -> String {
    "10s".into()
}

/// The parsed settings.
pub struct Settings {
    pub table: String,
    pub password: Option<String>,
    pub max_rows: usize,
    pub max_bytes: usize,
    pub max_delay: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub max_attempts: Option<u32>,
}

fn ms(text: &str, key: &str) -> Result<Duration, String> {
    parse_duration_ms(text)
        .map(|m| Duration::from_millis(m.max(0) as u64))
        .map_err(|e| format!("{key}: {e}"))
}

impl ClickHouseConfig {
    pub fn settings(&self) -> Result<Settings, String> {
        let password = match &self.password {
            Some(r) => {
                let s =
                    crate::pipeline::resolve_secret("password", r).map_err(|e| e.to_string())?;
                Some(
                    String::from_utf8(s.value)
                        .map_err(|_| "secret `password` is not UTF-8".to_string())?,
                )
            }
            None => None,
        };
        Ok(Settings {
            table: self.table.clone(),
            password,
            max_rows: self.max_rows.max(1),
            max_bytes: parse_size(&self.max_bytes).map_err(|e| format!("max_bytes: {e}"))?,
            max_delay: ms(&self.max_delay, "max_delay")?,
            retry_initial: ms(&self.retry_initial, "retry_initial")?,
            retry_max: ms(&self.retry_max, "retry_max")?,
            max_attempts: self.max_attempts,
        })
    }
}

/// `CREATE TABLE IF NOT EXISTS` for rows with `fields`.
pub fn ddl(cfg: &ClickHouseConfig, table: &str, fields: &[Field]) -> Result<String, String> {
    if cfg.order_by.is_empty() && cfg.engine.contains("MergeTree") {
        return Err("create = true with a MergeTree engine needs `order_by`".into());
    }
    for c in &cfg.order_by {
        if !fields.iter().any(|f| f.name == *c) {
            return Err(format!("order_by names `{c}`, which the rows do not have"));
        }
    }
    let columns: Vec<String> = fields
        .iter()
        .map(|f| format!("    `{}` {}", f.name, type_of(f)))
        .collect();
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {table} (\n{}\n) ENGINE = {}",
        columns.join(",\n"),
        cfg.engine
    );
    if let Some(p) = &cfg.partition_by {
        sql.push_str(&format!("\nPARTITION BY {p}"));
    }
    if !cfg.order_by.is_empty() {
        sql.push_str(&format!("\nORDER BY ({})", cfg.order_by.join(", ")));
    }
    Ok(sql)
}
