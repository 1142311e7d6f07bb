//! Undecoded records as a source delivers them, with where each came from.

/// Where a record came from: Kafka partition and offset, or line number in a file
/// (partition 0), or sequence number for the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

/// A source partition coming to this host or leaving it (a consumer group's rebalance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Assigned(i32),
    Revoked(i32),
}

/// Undecoded records, stored back to back so that a batch costs a few allocations, not
/// one per record.
#[derive(Debug, Default, Clone)]
pub struct RawBatch {
    data: Vec<u8>,
    ends: Vec<u32>,
    positions: Vec<Position>,
    /// Partitions that came or went after these records and before the next batch's.
    pub moves: Vec<Move>,
}

impl RawBatch {
    pub fn with_capacity(records: usize, bytes: usize) -> Self {
        RawBatch {
            data: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(records),
            positions: Vec::with_capacity(records),
            moves: Vec::new(),
        }
    }

    /// A batch of `records`, at positions 0, 1, ... of partition 0.
    pub fn from_records(records: &[&[u8]]) -> Self {
        let mut b = RawBatch::default();
        for (i, r) in records.iter().enumerate() {
            b.push(
                r,
                Position {
                    partition: 0,
                    offset: i as i64,
                },
            );
        }
        b
    }

    /// Appends a record.
    pub fn push(&mut self, record: &[u8], position: Position) {
        self.data.extend_from_slice(record);
        self.finish_record(position);
    }

    /// The buffer to write the next record into; call [`finish_record`](Self::finish_record)
    /// when it is written.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    /// Ends the record written into [`buffer`](Self::buffer).
    pub fn finish_record(&mut self, position: Position) {
        self.ends.push(self.data.len() as u32);
        self.positions.push(position);
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of all records.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// Record `i`.
    pub fn record(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.data[start..self.ends[i] as usize]
    }

    pub fn position(&self, i: usize) -> Position {
        self.positions[i]
    }

    pub fn positions(&self) -> &[Position] {
        &self.positions
    }
}
