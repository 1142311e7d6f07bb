//! A batch on its way through the stages, with the source position of each row while rows
//! still correspond to source records (dead letters name where a rejected row came from).

use super::Position;
use adstream_sdk::Batch;

#[derive(Debug, Clone)]
pub struct Envelope {
    pub batch: Batch,
    /// One position per row, or `None` once rows no longer map to records (windows).
    pub positions: Option<Vec<Position>>,
}

impl Envelope {
    pub fn rows(&self) -> usize {
        self.batch.len()
    }

    /// The rows `rows`, with their positions.
    pub fn take(&self, rows: &[u32]) -> Envelope {
        Envelope {
            batch: self.batch.take(rows),
            positions: self
                .positions
                .as_ref()
                .map(|p| rows.iter().map(|&r| p[r as usize]).collect()),
        }
    }

    pub fn position(&self, row: usize) -> Option<Position> {
        self.positions.as_ref().and_then(|p| p.get(row).copied())
    }

    /// Splits into pieces of at most `size` rows.
    pub fn chunks(self, size: usize) -> Vec<Envelope> {
        if self.rows() <= size {
            return vec![self];
        }
        (0..self.rows())
            .step_by(size)
            .map(|start| {
                let rows: Vec<u32> = (start..(start + size).min(self.rows()))
                    .map(|r| r as u32)
                    .collect();
                self.take(&rows)
            })
            .collect()
    }
}
