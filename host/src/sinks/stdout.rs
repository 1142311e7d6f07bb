//! The `stdout` sink: one readable line per row, by template, or JSON.

use super::{Sink, SinkError};
use crate::batch::encode::row_json;
use crate::batch::render::render;
use crate::config::sink::StdoutConfig;
use crate::config::template::Template;
use crate::connect::BoxFut;
use adstream_sdk::Batch;
use std::io::Write;
use std::sync::Arc;

pub struct StdoutSink {
    template: Option<Template>,
    prefix: String,
}

impl StdoutSink {
    pub fn new(cfg: &StdoutConfig) -> Self {
        StdoutSink {
            template: cfg.template.clone(),
            prefix: cfg.prefix.clone(),
        }
    }

    fn render(&self, batch: &Batch) -> String {
        let mut out = String::new();
        for row in 0..batch.len() {
            out.push_str(&self.prefix);
            match &self.template {
                Some(t) => render(t, batch, row, &mut out),
                None => out.push_str(&row_json(batch, row)),
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
