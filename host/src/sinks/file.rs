//! The `file` sink: JSON Lines, one object per row. A checkpoint records the file's length;
//! a pipeline restored from that checkpoint cuts the file back to it, so the rows it writes
//! again (after the cut) are not in the file twice.

use super::{Sink, SinkError};
use crate::config::sink::FileSinkConfig;
use crate::connect::BoxFut;
use adstream_sdk::Batch;
use std::sync::Arc;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

pub struct FileSink {
    name: String,
    path: String,
    file: tokio::io::BufWriter<tokio::fs::File>,
    buf: Vec<u8>,
    /// Bytes in the file, written ones included.
    len: u64,
}

impl FileSink {
    /// Opens the file: cut back to `resume` bytes when restoring a checkpoint, else
    /// appended to or started afresh as the config says.
    pub async fn open(
        name: &str,
        cfg: &FileSinkConfig,
        resume: Option<u64>,
    ) -> Result<Self, SinkError> {
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
        opts.create(true).write(true);
        if resume.is_none() && !cfg.append {
            opts.truncate(true);
        }
        let mut file = opts.open(&cfg.path).await.map_err(io)?;
        let mut len = file.metadata().await.map_err(io)?.len();
        if let Some(mark) = resume {
            if len < mark {
                tracing::warn!(
                    sink = name,
                    "{} has {len} bytes, the checkpoint says {mark}: it was cut or replaced since; writing on from its end",
                    cfg.path
                );
            } else {
                file.set_len(mark).await.map_err(io)?;
                len = mark;
            }
        }
        file.seek(std::io::SeekFrom::Start(len)).await.map_err(io)?;
        Ok(FileSink {
            name: name.into(),
            path: cfg.path.clone(),
            file: tokio::io::BufWriter::new(file),
            buf: Vec::new(),
            len,
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
            self.len += self.buf.len() as u64;
            r.map_err(|e| self.io(e))
        })
    }

    fn flush(&mut self) -> BoxFut<'_, Result<(), SinkError>> {
        Box::pin(async move {
            let r = self.file.flush().await;
            r.map_err(|e| self.io(e))
        })
    }

    fn checkpoint(&mut self) -> BoxFut<'_, Result<Option<u64>, SinkError>> {
        Box::pin(async move {
            let r = self.file.get_ref().sync_data().await;
            r.map_err(|e| self.io(e))?;
            Ok(Some(self.len))
        })
    }
}
