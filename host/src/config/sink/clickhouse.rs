//! `[sink.NAME] kind = "clickhouse"`.

use crate::config::retry::RetryConfig;
use crate::config::secret::{Credential, SecretRef};
use crate::config::tls::TlsConfig;
use crate::config::units::{ByteSize, Duration};
use serde::Deserialize;
use std::num::NonZeroUsize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseConfig {
    pub kind: String,
    /// The HTTP interface; a URL with a password must be a secret.
    #[serde(default = "default_url")]
    pub url: Credential,
    /// `database.table`, or `table` in the `default` database.
    pub table: String,
    /// The user; `default` when only a password is given.
    pub user: Option<String>,
    pub password: Option<SecretRef>,
    /// Trust for an `https://` URL beyond the public roots.
    #[serde(default)]
    pub tls: TlsConfig,
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
    /// Rows buffered before an insert.
    #[serde(default = "default_max_rows")]
    pub max_rows: NonZeroUsize,
    /// Bytes buffered before an insert.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: ByteSize,
    /// Longest rows wait in the buffer.
    #[serde(default = "default_max_delay")]
    pub max_delay: Duration,
    /// How a failed insert is retried (until it succeeds, by default).
    #[serde(default)]
    pub retry: RetryConfig,
}

fn default_url() -> Credential {
    Credential::inline("http://127.0.0.1:8123")
}
fn default_engine() -> String {
    "ReplacingMergeTree()".into()
}
fn yes() -> bool {
    true
}
fn default_max_rows() -> NonZeroUsize {
    NonZeroUsize::new(100_000).expect("not zero")
}
fn default_max_bytes() -> ByteSize {
    ByteSize::mib(16)
}
fn default_max_delay() -> Duration {
    Duration::from_secs(1)
}

impl ClickHouseConfig {
    /// What `create = true` needs that the file alone can tell, if it is missing.
    pub fn problem(&self) -> Option<&'static str> {
        (self.create && self.order_by.is_empty() && self.engine.contains("MergeTree"))
            .then_some("create = true with a MergeTree engine needs `order_by`")
    }
}
