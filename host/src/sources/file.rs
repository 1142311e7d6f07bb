//! The `file` source: JSON Lines, as fast as possible or at the pace the events were
//! recorded (by their event time). A record's position is its line number.

use super::{Source, SourceError};
use crate::batch::{Position, RawBatch};
use crate::config::source::FileSourceConfig;
use crate::connect::BoxFut;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

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
    pub fn open(cfg: &FileSourceConfig) -> Result<Self, SourceError> {
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
        })
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
                let line =
                    match self.held.take() {
                        Some(line) => line,
                        None => {
                            // Reuse one buffer for every line: no allocation per record.
                            let mut line = std::mem::take(&mut self.line);
                            line.clear();
                            let n = self.reader.read_until(b'\n', &mut line).await.map_err(
                                |source| SourceError::Io {
                                    path: self.path.clone(),
                                    source,
                                },
                            )?;
                            if n == 0 {
                                break;
                            }
                            self.line_no += 1;
                            while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                                line.pop();
                            }
                            line
                        }
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
