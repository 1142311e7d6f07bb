//! Sinks: where rows end up. Each sink runs as its own task behind a channel (see
//! [`runner`]); the pipeline learns from it up to which batch everything is durable.

pub mod file;
pub mod runner;
pub mod stdout;
mod template;

use crate::config::{Diagnostics, kind_of, section};
use crate::sources::BoxFut;
use adstream_sdk::Batch;
use std::sync::Arc;
use std::time::Duration;
use toml::Spanned;
use toml::de::DeValue;

/// Errors of sinks.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("sink `{sink}`: cannot write {path}: {source}")]
    Io {
        sink: String,
        path: String,
        source: std::io::Error,
    },
    #[error("sink `{sink}`: {message}")]
    Config { sink: String, message: String },
}

/// A destination for rows.
pub trait Sink: Send {
    /// Accepts rows. A sink may buffer them; they are durable once `flush` returns.
    fn write(&mut self, batch: Arc<Batch>) -> BoxFut<'_, Result<(), SinkError>>;

    /// Makes every row accepted so far durable.
    fn flush(&mut self) -> BoxFut<'_, Result<(), SinkError>>;

    /// Whether buffered rows should be flushed now rather than later.
    fn wants_flush(&self) -> bool {
        true
    }

    /// Longest time rows may stay buffered.
    fn max_delay(&self) -> Duration {
        Duration::ZERO
    }
}

/// A `[sink.NAME]` table.
#[derive(Debug, Clone)]
pub enum SinkConfig {
    Stdout(stdout::StdoutConfig),
    File(file::FileSinkConfig),
}

const KINDS: &str = "stdout, file";

impl SinkConfig {
    pub fn parse(
        name: &str,
        value: &Spanned<DeValue<'_>>,
        diags: &mut Diagnostics,
    ) -> Option<SinkConfig> {
        let what = format!("[sink.{name}]");
        let cfg = match kind_of(value, &what, diags)? {
            "stdout" => section(value, &what, diags).map(SinkConfig::Stdout)?,
            "file" => section(value, &what, diags).map(SinkConfig::File)?,
            other => {
                let span = value.get_ref().get("kind").map(|k| k.span());
                diags.error_hint(
                    span,
                    format!("{what}: unknown sink kind `{other}`"),
                    format!("kinds: {KINDS}"),
                );
                return None;
            }
        };
        if let Err(message) = cfg.check() {
            diags.error(Some(value.span()), format!("{what}: {message}"));
            return None;
        }
        Some(cfg)
    }

    /// Checks what serde cannot (e.g. a template's syntax).
    fn check(&self) -> Result<(), String> {
        match self {
            SinkConfig::Stdout(c) => c
                .template
                .as_deref()
                .map_or(Ok(()), |t| template::Template::parse(t).map(|_| ())),
            SinkConfig::File(_) => Ok(()),
        }
    }

    /// Opens the sink.
    pub async fn open(&self, name: &str) -> Result<Box<dyn Sink>, SinkError> {
        Ok(match self {
            SinkConfig::Stdout(c) => Box::new(stdout::StdoutSink::new(name, c)?),
            SinkConfig::File(c) => Box::new(file::FileSink::open(name, c).await?),
        })
    }
}
