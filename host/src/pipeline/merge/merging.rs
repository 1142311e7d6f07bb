//! The merging host's side (the owner of source partition 0): between source batches, and
//! while the source is quiet, the partials topic is read, each lane output admitted once
//! (`gate.rs`), and every spread aggregate's merger given its partials and the slowest
//! partition's mark; the windows it closes go on to the aggregate's sinks and the stages
//! after it, as on one host.

use super::consumer::Reader;
use super::gate::Gate;
use super::{MERGE_STATE, Plan};
use crate::batch::decode::Decoder;
use crate::batch::{DeadLetters, Envelope, Position, RawBatch};
use crate::config::{FieldType, SchemaConfig, SchemaField};
use crate::pipeline::error::RunError;
use crate::pipeline::feed::Feed;
use crate::pipeline::processor::Processor;
use adstream_sdk::{ColumnKind, Field};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::mpsc::{self, error::TryRecvError};

/// Per stage, rows of partial windows, each with the offset of its message.
type Partials = BTreeMap<String, Vec<(i64, Vec<u8>)>>;

/// How long a quiet processor waits for partials before it looks at its feed again.
const QUIET_WAIT: Duration = Duration::from_millis(50);

pub struct Merging {
    gate: Gate,
    reader: Reader,
    /// Per merging stage, the decoder of its partial rows (its output columns).
    decoders: BTreeMap<String, Decoder>,
}

impl Merging {
    /// Merging from the merge state in partition 0's cut (from the start without one).
    pub fn start(plan: &Plan, state: Option<&[u8]>) -> Result<Merging, String> {
        let gate = state.map(Gate::decode).transpose()?.unwrap_or_default();
        tracing::info!(
            topic = plan.topic,
            from = gate.next,
            "merging the lanes' partials"
        );
        Ok(Merging {
            reader: Reader::open(plan, gate.next)?,
            gate,
            decoders: BTreeMap::new(),
        })
    }

    /// The merged windows' watermark.
    pub fn watermark(&self) -> i64 {
        self.gate.slowest()
    }

    /// Takes `messages` through the gate: per stage, the rows of the lane outputs it
    /// admitted, each with its message's offset.
    fn admit(&mut self, messages: Vec<(i64, Vec<u8>)>, dl: &mut DeadLetters) -> Partials {
        let mut rows = Partials::new();
        for (offset, bytes) in messages {
            if offset != self.gate.next {
                // Partials lost between a lane and the merger: windows would be short.
                tracing::error!(
                    topic = self.reader.topic(),
                    expected = self.gate.next,
                    offset,
                    "the partials topic skipped offsets"
                );
            }
            match self.gate.admit(offset, &bytes) {
                Ok(Some(a)) => {
                    tracing::debug!(
                        offset,
                        stage = a.stage,
                        partition = a.partition,
                        rows = a.rows.len(),
                        "partials admitted"
                    );
                    let lines = a.rows.into_iter().map(|r| (offset, r));
                    rows.entry(a.stage).or_default().extend(lines);
                }
                Ok(None) => {}
                Err(why) => dl.record(&one(offset, &bytes), 0, &format!("partials: {why}")),
            }
        }
        rows
    }

    /// The merge state, for partition 0's cut.
    pub fn state(&self) -> (String, Vec<u8>) {
        (MERGE_STATE.into(), self.gate.encode())
    }
}

impl Processor {
    /// The next feed; while this host merges, partials are merged before it, and while
    /// waiting for it.
    pub(in crate::pipeline) fn next_feed(
        &mut self,
        rx: &mut mpsc::Receiver<Feed>,
    ) -> Result<Option<Feed>, RunError> {
        let mut wait = Duration::ZERO;
        while self.merging() {
            self.merge_partials(wait)?;
            match rx.try_recv() {
                Ok(feed) => return Ok(Some(feed)),
                Err(TryRecvError::Disconnected) => return Ok(None),
                Err(TryRecvError::Empty) => wait = QUIET_WAIT,
            }
        }
        Ok(rx.blocking_recv())
    }

    fn merging(&self) -> bool {
        (self.shared.as_ref()).is_some_and(|s| s.merging.is_some())
    }

    /// Reads what the partials topic holds, merges it, and sends the closed windows on.
    fn merge_partials(&mut self, wait: Duration) -> Result<(), RunError> {
        let shared = self.shared.as_mut().expect("merging");
        let mut m = shared.merging.take().expect("merging");
        let result = self.merge_with(&mut m, wait);
        if let Some(shared) = self.shared.as_mut() {
            shared.merging = Some(m);
        }
        if result.as_ref().is_ok_and(|&merged| merged) {
            self.publish();
        }
        result.map(|_| ())
    }

    /// Whether anything was read.
    fn merge_with(&mut self, m: &mut Merging, wait: Duration) -> Result<bool, RunError> {
        let messages = m.reader.poll(wait);
        if messages.is_empty() {
            return Ok(false);
        }
        let mut dl = DeadLetters::new("partials");
        let mut rows = m.admit(messages, &mut dl);
        for k in 0..self.stages.len() {
            if !self.stages[k].merges() {
                continue;
            }
            let stage = &self.stages[k];
            let name = stage.spec.name.to_string();
            let decoder =
                (m.decoders.entry(name.clone())).or_insert_with(|| decoder_of(&stage.output));
            let raw = lines(rows.remove(&name).unwrap_or_default());
            let decoded = decoder.decode(&raw);
            for (i, why) in &decoded.rejected {
                dl.record(&raw, *i as usize, &format!("partials of `{name}`: {why}"));
            }
            let partials = vec![Envelope {
                batch: decoded.batch,
                positions: None,
            }];
            let watermark = m.gate.watermark(&name);
            let out = self.stages[k].merge(partials, watermark, &mut dl)?;
            if !out.is_empty() {
                self.run_stages(Vec::new(), Some((k, out)), &mut dl)?;
            }
        }
        for (stage, lines) in rows {
            tracing::warn!(
                stage,
                rows = lines.len(),
                "partials of a stage that does not merge here"
            );
        }
        self.send_dead_letters(dl)?;
        Ok(true)
    }
}

/// A message as a record of a batch of its own (for a dead letter).
fn one(offset: i64, bytes: &[u8]) -> RawBatch {
    lines(vec![(offset, bytes.to_vec())])
}

fn lines(rows: Vec<(i64, Vec<u8>)>) -> RawBatch {
    let bytes = rows.iter().map(|(_, r)| r.len()).sum();
    let mut raw = RawBatch::with_capacity(rows.len(), bytes);
    for (offset, row) in rows {
        raw.push(
            &row,
            Position {
                partition: 0,
                offset,
            },
        );
    }
    raw
}

/// A decoder of rows with `fields` (a stage's output), whatever their times.
fn decoder_of(fields: &[Field]) -> Decoder {
    let fields = fields.iter().map(|f| SchemaField {
        name: f.name.clone(),
        ty: field_type(f.kind),
        required: !f.nullable,
        personal: false,
        span: 0..0,
    });
    let schema = SchemaConfig {
        fields: fields.collect(),
        span: 0..0,
    };
    let mut d = Decoder::new(&schema, "window_start", None);
    d.ignore_wall_clock();
    d
}

fn field_type(kind: ColumnKind) -> FieldType {
    match kind {
        ColumnKind::Int64 => FieldType::I64,
        ColumnKind::Float64 => FieldType::F64,
        ColumnKind::Boolean => FieldType::Bool,
        ColumnKind::Text => FieldType::String,
        ColumnKind::Dictionary => FieldType::Dict,
        ColumnKind::TimestampMs => FieldType::TimestampMs,
    }
}
