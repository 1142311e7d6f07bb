//! The `clickhouse` sink: rows buffered and inserted in batches (by rows, bytes and delay)
//! as RowBinary encoded straight from the columns, retried while ClickHouse is
//! unreachable. The table can be created from the rows' schema; window rows go into a
//! ReplacingMergeTree keyed by window and dimensions, so a replay does not double-count.
//!
//! Works against Debian's ClickHouse 18.16 and current releases: only types 18.16 has
//! (DateTime, not DateTime64), and no 18.16-only SQL.

mod client;
mod ddl;
mod rowbinary;

use super::{Sink, SinkError};
use crate::config::sink::ClickHouseConfig;
use crate::config::units::bytes;
use crate::connect::BoxFut;
use crate::connect::retry::{Attempt, retry};
use adstream_sdk::{Batch, Field};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

pub struct ClickHouseSink {
    name: String,
    cfg: ClickHouseConfig,
    /// The URL as logs may show it (password masked).
    shown: String,
    client: clickhouse::Client,
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

/// What `adstream check` finds wrong: secrets that do not resolve, a table that cannot
/// be created for the rows.
pub fn check(cfg: &ClickHouseConfig, fields: Option<&[Field]>) -> Vec<String> {
    let mut out = Vec::new();
    if let Err(e) = cfg.url.resolve("url")
        && !e.not_read()
    {
        out.push(e.to_string());
    }
    if let Some(Err(e)) = cfg.password.as_ref().map(|p| p.resolve("password"))
        && !e.not_read()
    {
        out.push(e.to_string());
    }
    if let Some(Err(e)) = cfg.tls.ca().map(crate::connect::tls::read_ca) {
        out.push(e.to_string());
    }
    if cfg.create
        && let Some(problem) = fields.and_then(|f| ddl::check(cfg, f))
    {
        out.push(problem);
    }
    out
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
        if let Some(problem) = check(cfg, Some(fields)).into_iter().next() {
            return Err(fail(problem));
        }
        let url = cfg.url.resolve("url").map_err(|e| fail(e.to_string()))?;
        let client = client::client(url.expose(), cfg).map_err(fail)?;
        if crate::connect::tls::plaintext_beyond_loopback(url.expose(), &["https"]) {
            tracing::warn!(
                "sink `{name}`: ClickHouse at {url} is reached without TLS: rows and the password cross the network in the clear (use an https:// URL)"
            );
        }
        let sink = ClickHouseSink {
            name: name.into(),
            shown: url.to_string(),
            insert_sql: format!(
                "INSERT INTO {} ({}) FORMAT RowBinary",
                cfg.table,
                fields
                    .iter()
                    .map(|f| format!("`{}`", f.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            cfg: cfg.clone(),
            client,
            fields: fields.to_vec(),
            buf: Vec::new(),
            rows: 0,
        };
        sink.prepare().await?;
        Ok(sink)
    }

    async fn prepare(&self) -> Result<(), SinkError> {
        self.execute("SELECT 1")
            .await
            .map_err(|e| self.fail(why(&self.shown, &e)))?;
        if self.cfg.create {
            if let Some((db, _)) = self.cfg.table.split_once('.') {
                self.execute(&format!("CREATE DATABASE IF NOT EXISTS {db}"))
                    .await
                    .map_err(|e| self.fail(format!("creating database {db}: {e}")))?;
            }
            self.execute(&ddl::ddl(&self.cfg, &self.fields))
                .await
                .map_err(|e| self.fail(format!("creating {}: {e}", self.cfg.table)))?;
        }
        if self.cfg.validate_schema {
            self.validate().await?;
        }
        Ok(())
    }

    async fn execute(&self, sql: &str) -> Result<(), clickhouse::error::Error> {
        self.client.query(sql).execute().await
    }

    fn fail(&self, message: String) -> SinkError {
        SinkError::Delivery {
            sink: self.name.clone(),
            message,
        }
    }

    /// Every column the rows have must exist in the table with the type they are encoded as.
    async fn validate(&self) -> Result<(), SinkError> {
        let table = &self.cfg.table;
        let (db, name) = table.split_once('.').unwrap_or(("default", table));
        let cols: Vec<ColumnInfo> = self
            .client
            .query("SELECT name, type FROM system.columns WHERE database = ? AND table = ?")
            .bind(db)
            .bind(name)
            .fetch_all()
            .await
            .map_err(|e| self.fail(format!("reading the columns of {table}: {e}")))?;
        if cols.is_empty() {
            return Err(self.fail(format!(
                "table {table} does not exist; create it (see docs/clickhouse.sql) or set create = true"
            )));
        }
        for f in &self.fields {
            let want = rowbinary::type_of(f);
            match cols.iter().find(|c| c.name == f.name) {
                Some(c) if c.r#type == want => {}
                Some(c) => {
                    return Err(self.fail(format!(
                        "column `{}` of {table} is {}, rows carry {want}",
                        f.name, c.r#type
                    )));
                }
                None => {
                    return Err(
                        self.fail(format!("table {table} has no column `{}` ({want})", f.name))
                    );
                }
            }
        }
        Ok(())
    }

    /// Sends the buffered rows, retrying as the sink's `retry` says.
    async fn insert(&self, data: Bytes) -> Result<(), SinkError> {
        let what = format!("sink `{}`: insert into {}", self.name, self.cfg.table);
        retry(&self.cfg.retry, &what, || async {
            let mut insert = self.client.insert_formatted_with(self.insert_sql.clone());
            insert.send(data.clone()).await.map_err(transient)?;
            insert.end().await.map_err(transient)
        })
        .await
        .map_err(|g| {
            self.fail(format!(
                "insert into {} failed {} times: {}",
                self.cfg.table, g.attempts, g.last
            ))
        })
    }
}

/// What went wrong reaching ClickHouse, with the cause a person can act on (a refused
/// certificate, a wrong password) rather than only the outermost error.
fn why(url: &str, e: &clickhouse::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text = format!("{text}: {next}");
        }
        source = s.source();
    }
    match e {
        clickhouse::error::Error::BadResponse(_) => format!("ClickHouse at {url} refused: {text}"),
        _ => format!("cannot reach ClickHouse at {url}: {text}"),
    }
}

/// Every insert error is worth retrying: the server may be restarting or overloaded.
fn transient(e: clickhouse::error::Error) -> Attempt<clickhouse::error::Error> {
    Attempt::Retry {
        error: e,
        wait: None,
    }
}

impl Sink for ClickHouseSink {
    fn write(&mut self, batch: Arc<Batch>) -> BoxFut<'_, Result<(), SinkError>> {
        Box::pin(async move {
            rowbinary::check(&batch, &self.fields).map_err(|m| self.fail(m.to_string()))?;
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
        self.rows >= self.cfg.max_rows.get() || self.buf.len() >= bytes(self.cfg.max_bytes)
    }

    fn max_delay(&self) -> Duration {
        self.cfg.max_delay.get()
    }
}
