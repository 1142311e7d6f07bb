//! The `stdout` sink: one readable line per row, by template, or JSON.

use super::template::Template;
use super::{Sink, SinkError};
use crate::sources::BoxFut;
use adstream_sdk::Batch;
use serde::Deserialize;
use std::io::Write;
use std::sync::Arc;

/// `[sink.NAME] kind = "stdout"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {
    pub kind: String,
    /// A line template such as `"{country} {ad_format} ctr={ctr:%}"`; JSON when unset.
    pub template: Option<String>,
    /// Printed before each row.
    #[serde(default)]
    pub prefix: String,
}

pub struct StdoutSink {
    template: Option<Template>,
    prefix: String,
}

impl StdoutSink {
    pub fn new(name: &str, cfg: &StdoutConfig) -> Result<Self, SinkError> {
        let template = match &cfg.template {
            Some(t) => Some(Template::parse(t).map_err(|message| SinkError::Config {
                sink: name.into(),
                message,
            })?),
            None => None,
        };
        Ok(StdoutSink {
            template,
            prefix: cfg.prefix.clone(),
        })
    }

    fn render(&self, batch: &Batch) -> String {
        let mut out = String::new();
        for row in 0..batch.len() {
            out.push_str(&self.prefix);
            match &self.template {
                Some(t) => t.render(batch, row, &mut out),
                None => out.push_str(&crate::batch::encode::row_json(batch, row)),
            }
            out.push('\n');
        }
        out
    }
}

impl Sink for StdoutSink {
    fn write(&mut self, batch: Arc<Batch>) -> BoxFut<'_, Result<(), SinkError>> {
        let text = self.render(&batch);
        Box::pin(async move {
            // A closed stdout (e.g. `| head`) is not worth stopping a pipeline for.
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            Ok(())
        })
    }

    fn flush(&mut self) -> BoxFut<'_, Result<(), SinkError>> {
        Box::pin(async {
            let _ = std::io::stdout().flush();
            Ok(())
        })
    }
}
