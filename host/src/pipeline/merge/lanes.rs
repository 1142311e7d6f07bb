//! The lanes' side: on a host that shares the pipeline, a spread aggregate's lanes of the
//! partitions it owns send their partial windows and marks to the partials topic, through
//! the partials sink — so they are durable before the partition's cut that follows them,
//! and a cut never counts a window the merging host may not get.

use super::wire::{self, Header};
use crate::batch::{DeadLetters, Envelope};
use crate::pipeline::error::RunError;
use crate::pipeline::processor::Processor;
use crate::pipeline::stage::{LaneOutput, Watermarks};
use crate::sinks::runner::SinkMsg;
use adstream_sdk::{Batch, TextBuilder};
use std::sync::Arc;

impl Processor {
    /// Stage `i`, spread over partitions, on `input`: its merged windows on one host;
    /// when hosts share the pipeline, each lane goes by its partition's own time, and an
    /// aggregate's lanes' partials go to the partials topic, with no output here (the
    /// merging host's merger has it).
    pub(in crate::pipeline) fn run_partitioned(
        &mut self,
        i: usize,
        input: Vec<Envelope>,
        watermark: i64,
        dl: &mut DeadLetters,
    ) -> Result<Vec<Envelope>, RunError> {
        let marks = &self.watermark;
        // Shared, each partition goes by its own time (`Watermark::own`).
        let shared = self.shared.is_some();
        let at = Watermarks {
            global: if shared { i64::MIN } else { watermark },
            of: &|p| if shared { marks.own(p) } else { marks.of(p) },
        };
        let plan = self.shared.as_ref().and_then(|s| s.partials.as_ref());
        let stage = &mut self.stages[i];
        let Some(sink) = plan.map(|p| p.sink).filter(|_| stage.merges()) else {
            return Ok(stage.process_partitioned(input, &at, dl)?);
        };
        let lanes = stage.lane_outputs(input, &at, dl)?;
        let name = stage.spec.name.to_string();
        self.send_partials(&name, sink, lanes)
    }

    /// The owned lanes' outputs, as messages: rows or a mark that moved.
    fn send_partials(
        &mut self,
        stage: &str,
        sink: usize,
        lanes: Vec<LaneOutput>,
    ) -> Result<Vec<Envelope>, RunError> {
        let of = self.partitions.len() as u32;
        let shared = self.shared.as_mut().expect("shared");
        let mut payloads = TextBuilder::with_capacity(lanes.len(), 0);
        for lane in lanes
            .iter()
            .filter(|l| shared.owned.contains_key(&l.partition))
        {
            let rows: Vec<&Batch> = (lane.rows.iter().map(|e| &e.batch))
                .filter(|b| b.rows > 0)
                .collect();
            let key = (stage.to_string(), lane.partition);
            if rows.is_empty() && shared.sent.get(&key) == Some(&lane.mark) {
                continue;
            }
            shared.sent.insert(key, lane.mark);
            let head = Header {
                stage: stage.into(),
                partition: lane.partition,
                of,
                mark: lane.mark,
                part: 0,
                parts: 1,
            };
            for m in wire::encode(&head, &rows, wire::MAX_MESSAGE_BYTES) {
                payloads.push(std::str::from_utf8(&m).expect("JSON is UTF-8"));
            }
        }
        if !payloads.is_empty() {
            let batch = Batch::from_columns(vec![payloads.finish("payload")]).expect("a column");
            let batch = Arc::new(batch);
            self.send(sink, SinkMsg::Rows { batch, done: None })?;
        }
        Ok(Vec::new())
    }
}
