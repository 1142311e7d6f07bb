//! The `clickhouse` sink: rows buffered and inserted in batches (by rows, bytes and delay)
//! as RowBinary encoded straight from the columns, retried with backoff while ClickHouse is
//! unreachable. The table can be created from the rows' schema; window rows go into a
//! ReplacingMergeTree keyed by window and dimensions, so a replay does not double-count.
//!
//! Works against Debian's ClickHouse 18.16 and current releases: only types 18.16 has
//! (DateTime, not DateTime64), and no 18.16-only SQL.

mod config;
mod rowbinary;

pub use config::ClickHouseConfig;

use super::{Sink, SinkError};
use crate::sources::BoxFut;
use adstream_sdk::{Batch, Field};
use bytes::Bytes;
use config::Settings;
use std::sync::Arc;
use std::time::Duration;

pub struct ClickHouseSink {
    name: String,
    client: clickhouse::Client,
    settings: Settings,
    fields: Vec<Field>,
    insert_sql: String,
    buf: Vec<u8>,
    rows: usize,
}

#[derive(clickhouse::Row, serde::Deserialize)]
struct ColumnInfo {
    name: String,
    r#type: String,
}

impl ClickHouseSink {
    /// Connects, creates the table if asked, and checks its columns against `fields` (the
    /// schema of the rows this sink will receive).
    pub async fn open(
        name: &str,
        cfg: &ClickHouseConfig,
        fields: &[Field],
    ) -> Result<Self, SinkError> {
        let fail = |message: String| SinkError::Config {
            sink: name.into(),
            message,
        };
        let settings = cfg.settings().map_err(fail)?;
        let mut client = clickhouse::Client::default()
            .with_url(&cfg.url)
            .with_validation(false);
        if let Some(user) = &cfg.user {
            client = client.with_user(user);
        }
        if let Some(password) = &settings.password {
            client = client.with_password(password);
        }
        let sink = ClickHouseSink {
            name: name.into(),
            insert_sql: format!(
                "INSERT INTO {} ({}) FORMAT RowBinary",
                settings.table,
                fields
                    .iter()
                    .map(|f| format!("`{}`", f.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            client,
            settings,
            fields: fields.to_vec(),
            buf: Vec::new(),
            rows: 0,
        };
        sink.ping(&cfg.url).await?;
        if cfg.create {
            sink.create_table(cfg).await?;
        }
        if cfg.validate_schema {
            sink.validate().await?;
        }
        Ok(sink)
    }

    fn fail(&self, message: String) -> SinkError {
        SinkError::Delivery {
            sink: self.name.clone(),
            message,
        }
    }

    async fn ping(&self, url: &str) -> Result<(), SinkError> {
        self.client
            .query("SELECT 1")
            .execute()
            .await
            .map_err(|e| self.fail(format!("cannot reach ClickHouse at {url}: {e}")))
    }

    async fn create_table(&self, cfg: &ClickHouseConfig) -> Result<(), SinkError> {
        if let Some((db, _)) = self.settings.table.split_once('.') {
            let sql = format!("CREATE DATABASE IF NOT EXISTS {db}");
            self.client
                .query(&sql)
                .execute()
                .await
                .map_err(|e| self.fail(format!("{sql}: {e}")))?;
        }
        let ddl = config::ddl(cfg, &self.settings.table, &self.fields).map_err(|m| self.fail(m))?;
        self.client
            .query(&ddl)
            .execute()
            .await
            .map_err(|e| self.fail(format!("creating {}: {e}", self.settings.table)))
    }

    /// Every column the rows have must exist in the table with the type they are encoded as.
    async fn validate(&self) -> Result<(), SinkError> {
        let (db, table) = self
            .settings
            .table
            .split_once('.')
            .unwrap_or(("default", &self.settings.table));
        let cols: Vec<ColumnInfo> = self
            .client
            .query("SELECT name, type FROM system.columns WHERE database = ? AND table = ?")
            .bind(db)
            .bind(table)
            .fetch_all()
            .await
            .map_err(|e| {
                self.fail(format!(
                    "reading the columns of {}: {e}",
                    self.settings.table
                ))
            })?;
        if cols.is_empty() {
            return Err(self.fail(format!(
                "table {} does not exist; create it (see docs/clickhouse.sql) or set create = true",
                self.settings.table
            )));
        }
        for f in &self.fields {
            let want = rowbinary::type_of(f);
            match cols.iter().find(|c| c.name == f.name) {
                Some(c) if c.r#type == want => {}
                Some(c) => {
                    return Err(self.fail(format!(
                        "column `{}` of {} is {}, rows carry {want}",
                        f.name, self.settings.table, c.r#type
                    )));
                }
                None => {
                    return Err(self.fail(format!(
                        "table {} has no column `{}` ({want})",
                        self.settings.table, f.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// Sends the buffered rows, retrying with backoff.
    async fn insert(&mut self, data: Bytes) -> Result<(), SinkError> {
        let mut delay = self.settings.retry_initial;
        let mut attempt = 1;
        loop {
            let result = async {
                let mut insert = self.client.insert_formatted_with(self.insert_sql.clone());
                insert.send(data.clone()).await?;
                insert.end().await
            }
            .await;
            match result {
                Ok(()) => return Ok(()),
                Err(e) if self.settings.max_attempts.is_none_or(|m| attempt < m) => {
                    tracing::warn!(sink = %self.name, attempt, "insert into {} failed, retrying in {delay:?}: {e}", self.settings.table);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.settings.retry_max);
                    attempt += 1;
                }
                Err(e) => {
                    return Err(self.fail(format!(
                        "insert into {} failed {attempt} times: {e}",
                        self.settings.table
                    )));
                }
            }
        }
    }
}

impl Sink for ClickHouseSink {
    fn write(&mut self, batch: Arc<Batch>) -> BoxFut<'_, Result<(), SinkError>> {
        Box::pin(async move {
            rowbinary::check(&batch, &self.fields).map_err(|m| self.fail(m))?;
            rowbinary::encode(&batch, &self.fields, &mut self.buf);
            self.rows += batch.len();
            Ok(())
        })
    }

    fn flush(&mut self) -> BoxFut<'_, Result<(), SinkError>> {
        Box::pin(async move {
            if self.rows == 0 {
                return Ok(());
            }
            let data = Bytes::from(std::mem::take(&mut self.buf));
            self.insert(data).await?;
            self.rows = 0;
            Ok(())
        })
    }

    fn wants_flush(&self) -> bool {
        self.rows >= self.settings.max_rows || self.buf.len() >= self.settings.max_bytes
    }

    fn max_delay(&self) -> Duration {
        self.settings.max_delay
    }
}
