//! The `file` source: JSON Lines, as fast as possible or at the pace the events were
//! recorded (by their event time). A record's position is its line number.

use super::{Source, SourceError};
use crate::batch::{Position, RawBatch};
use crate::config::source::FileSourceConfig;
use crate::connect::BoxFut;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

/// One line of the file, as bytes: a line that is not UTF-8 is still a record (which the
/// decoder dead-letters), not a reason to stop reading.
type Line = Vec<u8>;

/// Reads a JSONL file.
pub struct FileSource {
    path: String,
    reader: BufReader<tokio::fs::File>,
    line_no: i64,
    batch_size: usize,
    pace: Option<Pace>,
    /// A line read but not yet due (pacing).
    held: Option<Line>,
    line: Line,
    /// The most of a line that is kept: one byte over the pipeline's `max_record_bytes`,
    /// so that the decoder dead-letters a longer line as too large.
    keep: u64,
}

struct Pace {
    field: String,
    /// (first event time, when it was read)
    origin: Option<(i64, Instant)>,
}

impl Pace {
    /// How long to wait before emitting a record with this line's event time.
    fn wait(&mut self, line: &[u8]) -> Duration {
        let Some(t) = event_time(line, &self.field) else {
            return Duration::ZERO;
        };
        let (t0, began) = *self.origin.get_or_insert((t, Instant::now()));
        let due = Duration::from_millis((t - t0).max(0) as u64);
        due.saturating_sub(began.elapsed())
    }
}

/// Reads just one timestamp field of a JSON object (for pacing; decoding proper happens
/// later, in the pipeline).
fn event_time(line: &[u8], field: &str) -> Option<i64> {
    let v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(line).ok()?;
    v.get(field)?.as_i64()
}

impl FileSource {
    /// The file `cfg` names, whose records may be at most `max_record` bytes.
    pub fn open(cfg: &FileSourceConfig, max_record: usize) -> Result<Self, SourceError> {
        let io = |source| SourceError::Io {
            path: cfg.path.clone(),
            source,
        };
        let file = std::fs::File::open(&cfg.path).map_err(io)?;
        let pace = cfg.pace.then(|| Pace {
            field: cfg.pace_field.clone(),
            origin: None,
        });
        Ok(FileSource {
            path: cfg.path.clone(),
            reader: BufReader::with_capacity(1 << 20, tokio::fs::File::from_std(file)),
            line_no: 0,
            batch_size: cfg.batch_size.get(),
            pace,
            held: None,
            line: Vec::new(),
            keep: (max_record as u64).saturating_add(1),
        })
    }

    /// The next line without its end, `None` at the end of the file. Of a line longer than
    /// `keep` only its start is kept and the rest is read past: a file that is not JSON
    /// Lines (gigabytes without a newline) costs no more memory than one record may.
    async fn read_line(&mut self) -> Result<Option<Line>, SourceError> {
        let io = |source| SourceError::Io {
            path: self.path.clone(),
            source,
        };
        // Reuse one buffer for every line: no allocation per record.
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        let mut kept = (&mut self.reader).take(self.keep);
        let n = kept.read_until(b'\n', &mut line).await.map_err(io)?;
        if n == 0 {
            return Ok(None);
        }
        if line.last() != Some(&b'\n') && n as u64 == self.keep {
            skip_line(&mut self.reader).await.map_err(io)?;
        }
        self.line_no += 1;
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        Ok(Some(line))
    }
}

/// Reads past the rest of a line, through its newline, keeping none of it.
async fn skip_line(reader: &mut BufReader<tokio::fs::File>) -> std::io::Result<()> {
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(());
        }
        let end = buf.iter().position(|b| *b == b'\n');
        let n = end.map_or(buf.len(), |i| i + 1);
        reader.consume(n);
        if end.is_some() {
            return Ok(());
        }
    }
}

impl Source for FileSource {
    fn name(&self) -> &str {
        &self.path
    }

    fn next_batch(&mut self) -> BoxFut<'_, Result<Option<RawBatch>, SourceError>> {
        Box::pin(async move {
            let mut batch = RawBatch::with_capacity(self.batch_size, self.batch_size * 300);
            while batch.len() < self.batch_size {
                let line = match self.held.take() {
                    Some(line) => line,
                    None => match self.read_line().await? {
                        Some(line) => line,
                        None => break,
                    },
                };
                if line.iter().all(u8::is_ascii_whitespace) {
                    self.line = line;
                    continue;
                }
                if let Some(pace) = &mut self.pace {
                    let wait = pace.wait(&line);
                    if !wait.is_zero() && !batch.is_empty() {
                        // Hand over what is due now; this line waits for the next call.
                        self.held = Some(line);
                        return Ok(Some(batch));
                    }
                    tokio::time::sleep(wait).await;
                }
                batch.push(
                    &line,
                    Position {
                        partition: 0,
                        offset: self.line_no,
                    },
                );
                self.line = line;
            }
            Ok(if batch.is_empty() { None } else { Some(batch) })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[tokio::test]
    async fn a_line_longer_than_a_record_may_be_is_cut_not_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        file.write_all(b"{\"a\":1}\n").unwrap();
        // 16 MiB without a newline (a file that is not JSON Lines), written in pieces.
        let piece = vec![b'x'; 1 << 20];
        for _ in 0..16 {
            file.write_all(&piece).unwrap();
        }
        file.write_all(b"\r\n{\"b\":2}\n").unwrap();
        drop(file);
        let cfg = FileSourceConfig {
            kind: "file".into(),
            path: path.display().to_string(),
            pace: false,
            pace_field: "event_time".into(),
            batch_size: std::num::NonZeroUsize::new(10).unwrap(),
        };
        let mut source = FileSource::open(&cfg, 1000).unwrap();
        let batch = source.next_batch().await.unwrap().unwrap();
        let records: Vec<&[u8]> = (0..batch.len()).map(|i| batch.record(i)).collect();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0], b"{\"a\":1}");
        // A byte over the bound: the decoder dead-letters it as too large.
        assert_eq!(records[1], &[b'x'; 1001][..]);
        assert_eq!(records[2], b"{\"b\":2}");
        let lines: Vec<i64> = batch.positions().iter().map(|p| p.offset).collect();
        assert_eq!(lines, [1, 2, 3]);
        // The line buffer never held the long line.
        assert!(source.line.capacity() < 4096, "{}", source.line.capacity());
        assert!(source.next_batch().await.unwrap().is_none());
    }
}
