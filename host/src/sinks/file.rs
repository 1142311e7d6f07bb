//! The `file` sink: JSON Lines, one object per row, flushed after every batch.

use super::{Sink, SinkError};
use crate::config::sink::FileSinkConfig;
use crate::connect::BoxFut;
use adstream_sdk::Batch;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

pub struct FileSink {
    name: String,
    path: String,
    file: tokio::io::BufWriter<tokio::fs::File>,
    buf: Vec<u8>,
}

impl FileSink {
    pub async fn open(name: &str, cfg: &FileSinkConfig) -> Result<Self, SinkError> {
        let io = |source| SinkError::Io {
            sink: name.into(),
            path: cfg.path.clone(),
            source,
        };
        if let Some(dir) = std::path::Path::new(&cfg.path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            tokio::fs::create_dir_all(dir).await.map_err(io)?;
        }
        let mut opts = tokio::fs::OpenOptions::new();
        opts.create(true);
        if cfg.append {
            opts.append(true)
        } else {
            opts.write(true).truncate(true)
        };
        let file = opts.open(&cfg.path).await.map_err(io)?;
        Ok(FileSink {
            name: name.into(),
            path: cfg.path.clone(),
            file: tokio::io::BufWriter::new(file),
            buf: Vec::new(),
        })
    }

    fn io(&self, source: std::io::Error) -> SinkError {
        SinkError::Io {
            sink: self.name.clone(),
            path: self.path.clone(),
            source,
        }
    }
}

impl Sink for FileSink {
    fn write(&mut self, batch: Arc<Batch>) -> BoxFut<'_, Result<(), SinkError>> {
        Box::pin(async move {
            self.buf.clear();
            for row in 0..batch.len() {
                crate::batch::encode::write_row(&mut self.buf, &batch, row);
                self.buf.push(b'\n');
            }
            let r = self.file.write_all(&self.buf).await;
            r.map_err(|e| self.io(e))
        })
    }

    fn flush(&mut self) -> BoxFut<'_, Result<(), SinkError>> {
        Box::pin(async move {
            let r = self.file.flush().await;
            r.map_err(|e| self.io(e))
        })
    }
}
