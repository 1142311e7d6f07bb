//! The processor: a plain thread that owns a pipeline's stages. It decodes each raw batch,
//! runs it through every stage, and hands the results to the sink tasks, tagged with the
//! batch's sequence number. Plugin calls are CPU-bound and synchronous, so they run here
//! rather than on the async runtime.

use super::build::CheckpointPolicy;
use super::checkpoint::{self, Checkpoint};
use super::error::RunError;
use super::feed::{Feed, Rewire};
use super::stage::{Input, Replacement, Stage, SwapOutcome};
use super::stats::PipelineStats;
use super::watermark::Watermark;
use crate::batch::decode::Decoder;
use crate::batch::{DeadLetters, Envelope, Position, RawBatch};
use crate::sinks::runner::SinkMsg;
use adstream_sdk::Batch;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// How often stateful stages save a snapshot to restart from, when the pipeline keeps no
/// checkpoints.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(5);

pub struct Processor {
    pub decoder: Decoder,
    pub stages: Vec<Stage>,
    pub sinks: Vec<(String, mpsc::Sender<SinkMsg>)>,
    pub dead_letter: usize,
    pub source_name: String,
    pub stats: Arc<Mutex<PipelineStats>>,
    pub checkpoint: Option<CheckpointPolicy>,
    /// The last source batch whose effects on plugin state are saved (every batch, when no
    /// stage keeps state).
    pub checkpointed: watch::Sender<u64>,
    watermark: Watermark,
    last_checkpoint: Instant,
    /// How many stages read the source, and each stage's output.
    readers: (usize, Vec<usize>),
}

impl Processor {
    pub fn new(
        decoder: Decoder,
        watermark: Watermark,
        stages: Vec<Stage>,
        sinks: Vec<(String, mpsc::Sender<SinkMsg>)>,
        dead_letter: usize,
        source_name: String,
    ) -> Self {
        let mut readers = (0, vec![0; stages.len()]);
        for s in &stages {
            match s.spec.input {
                Input::Source => readers.0 += 1,
                Input::Stage(j) => readers.1[j] += 1,
            }
        }
        Processor {
            decoder,
            stages,
            sinks,
            dead_letter,
            source_name,
            stats: Arc::default(),
            checkpoint: None,
            checkpointed: watch::channel(0).0,
            watermark,
            last_checkpoint: Instant::now(),
            readers,
        }
    }

    fn stateful(&self) -> bool {
        self.stages.iter().any(|s| s.spec.plugin.stateful())
    }

    /// Snapshots the stateful stages (for restarts) and, if the pipeline keeps checkpoints,
    /// saves them; then tells the source loop that batches up to `seq` may be committed.
    fn save(&mut self, seq: u64) -> Result<(), RunError> {
        let mut cp = Checkpoint {
            seq,
            stages: Vec::new(),
        };
        for stage in self.stages.iter_mut().filter(|s| s.spec.plugin.stateful()) {
            if let Some(state) = stage.checkpoint() {
                cp.stages.push((stage.spec.name.to_string(), state));
            }
        }
        if let Some(policy) = &self.checkpoint {
            checkpoint::save(&policy.file, &cp)?;
        }
        self.last_checkpoint = Instant::now();
        let _ = self.checkpointed.send(seq);
        Ok(())
    }

    fn maybe_save(&mut self, seq: u64) -> Result<(), RunError> {
        let every = self.checkpoint.as_ref().map_or(SNAPSHOT_EVERY, |p| p.every);
        if self.stateful() && self.last_checkpoint.elapsed() >= every {
            return self.save(seq);
        }
        // Without state, or without checkpoints (sources with nothing to commit), every
        // processed batch may be committed once the sinks have it.
        if !self.stateful() || self.checkpoint.is_none() {
            let _ = self.checkpointed.send(seq);
        }
        Ok(())
    }

    /// Swaps a stage's plugin instance (the replacement was prepared off this thread).
    fn swap(&mut self, r: Replacement, reply: oneshot::Sender<SwapOutcome>) {
        match self.stages.iter_mut().find(|s| s.spec.name == r.spec.name) {
            Some(stage) => stage.begin_swap(r, reply),
            None => {
                let why = format!("no stage `{}`", r.spec.name);
                let _ = reply.send(SwapOutcome::Rejected(why));
            }
        }
        self.publish();
    }

    /// Uses a new set of sinks and routes from now on.
    fn rewire(&mut self, r: Rewire) {
        self.sinks = r.sinks;
        self.dead_letter = r.dead_letter;
        for (name, to) in r.routes {
            if let Some(stage) = self.stages.iter_mut().find(|s| *s.spec.name == *name) {
                stage.spec.to = to;
            }
        }
        let _ = r.done.send(());
    }

    /// Follows event time per source partition.
    fn observe_times(&mut self, batch: &Batch, positions: &[Position]) {
        let now = Instant::now();
        if let Some(times) = batch
            .column(self.decoder.time_column())
            .and_then(|c| c.as_i64s().ok())
        {
            for (row, p) in positions.iter().enumerate() {
                if let Some(t) = times.get(row) {
                    self.watermark.observe(p.partition, t, now);
                }
            }
        }
        self.watermark.advance(now);
    }

    /// Processes batches until the source side closes the channel, then closes every open
    /// window and lets the results flow through the rest of the pipeline.
    pub fn run(mut self, mut rx: mpsc::Receiver<Feed>) -> Result<PipelineStats, RunError> {
        let mut last = 0;
        while let Some(feed) = rx.blocking_recv() {
            match feed {
                Feed::Batch(seq, raw) => {
                    last = seq;
                    self.handle(seq, &raw)?;
                }
                Feed::Swap(r, reply) => self.swap(*r, reply),
                Feed::Rewire(r) => self.rewire(r),
                Feed::End => break,
            }
        }
        // Save the state before flushing, so that a restart continues the open windows
        // (their flushed partial rows are replaced by complete ones later).
        if self.stateful() && last > 0 {
            self.save(last)?;
        }
        self.finish(last + 1)?;
        self.publish();
        Ok(self.stats.lock().map(|s| s.clone()).unwrap_or_default())
    }

    fn handle(&mut self, seq: u64, raw: &RawBatch) -> Result<(), RunError> {
        let mut dl = DeadLetters::new(&self.source_name);
        let decoded = self.decoder.decode(raw);
        for (i, reason) in &decoded.rejected {
            dl.record(raw, *i as usize, reason);
        }
        let positions: Vec<_> = decoded
            .records
            .iter()
            .map(|&i| raw.position(i as usize))
            .collect();
        self.observe_times(&decoded.batch, &positions);
        let source = vec![Envelope {
            batch: decoded.batch,
            positions: Some(positions),
        }];
        let mut sent = vec![false; self.sinks.len()];
        self.run_stages(seq, source, None, &mut dl, &mut sent)?;
        {
            let mut s = self.stats.lock().expect("stats lock");
            s.batches += 1;
            s.records += raw.len() as u64;
            s.decode_errors += decoded.rejected.len() as u64;
        }
        self.finish_batch(seq, dl, sent)?;
        self.maybe_save(seq)?;
        self.publish();
        Ok(())
    }

    /// Runs every stage once, sending each stage's output to its sinks as soon as it has
    /// it. `inject` replaces one stage's output (its flushed windows) and runs only what
    /// comes after it.
    fn run_stages(
        &mut self,
        seq: u64,
        source: Vec<Envelope>,
        inject: Option<(usize, Vec<Envelope>)>,
        dl: &mut DeadLetters,
        sent: &mut [bool],
    ) -> Result<(), RunError> {
        let watermark = self.watermark.current();
        let mut source = (source, self.readers.0);
        let mut outputs: Vec<(Vec<Envelope>, usize)> = Vec::with_capacity(self.stages.len());
        let mut inject = inject;
        for i in 0..self.stages.len() {
            let out = match inject.take() {
                Some((k, env)) if k == i => env,
                Some(other) if other.0 > i => {
                    inject = Some(other);
                    Vec::new()
                }
                other => {
                    inject = other;
                    let input = match self.stages[i].spec.input {
                        Input::Source => hand_over(&mut source),
                        Input::Stage(j) => hand_over(&mut outputs[j]),
                    };
                    self.stages[i].process(input, watermark, dl)?
                }
            };
            self.route(i, seq, &out, sent)?;
            outputs.push((out, self.readers.1[i]));
        }
        Ok(())
    }

    fn send(&self, sink: usize, msg: SinkMsg) -> Result<(), RunError> {
        let (name, tx) = &self.sinks[sink];
        tx.blocking_send(msg)
            .map_err(|_| RunError::SinkClosed(name.clone()))
    }

    /// Sends stage `i`'s output to its sinks.
    fn route(
        &self,
        i: usize,
        seq: u64,
        out: &[Envelope],
        sent: &mut [bool],
    ) -> Result<(), RunError> {
        let to = &self.stages[i].spec.to;
        if to.is_empty() {
            return Ok(());
        }
        for env in out.iter().filter(|e| e.rows() > 0) {
            let batch = Arc::new(env.batch.clone());
            for &sink in to {
                self.send(
                    sink,
                    SinkMsg::Rows {
                        seq,
                        batch: batch.clone(),
                        done: None,
                    },
                )?;
                sent[sink] = true;
            }
        }
        Ok(())
    }

    /// Sends the dead letters to their sink, and a mark to every sink that got nothing, so
    /// that it can acknowledge the batch.
    fn finish_batch(
        &mut self,
        seq: u64,
        dl: DeadLetters,
        mut sent: Vec<bool>,
    ) -> Result<(), RunError> {
        if !dl.is_empty() {
            self.stats.lock().expect("stats lock").dead_letters += dl.len() as u64;
            let batch: Batch = dl.finish();
            self.send(
                self.dead_letter,
                SinkMsg::Rows {
                    seq,
                    batch: Arc::new(batch),
                    done: None,
                },
            )?;
            sent[self.dead_letter] = true;
        }
        for (sink, _) in sent.iter().enumerate().filter(|(_, s)| !**s) {
            self.send(sink, SinkMsg::Mark { seq })?;
        }
        Ok(())
    }

    /// End of input: flush each aggregate stage in order; what it emits flows on through
    /// the stages after it.
    fn finish(&mut self, seq: u64) -> Result<(), RunError> {
        for k in 0..self.stages.len() {
            let mut dl = DeadLetters::new(&self.source_name);
            let flushed = self.stages[k].flush(&mut dl)?;
            if flushed.is_empty() && dl.is_empty() {
                continue;
            }
            let mut sent = vec![false; self.sinks.len()];
            self.run_stages(seq, Vec::new(), Some((k, flushed)), &mut dl, &mut sent)?;
            self.finish_batch(seq, dl, sent)?;
        }
        Ok(())
    }

    fn publish(&self) {
        let mut s = self.stats.lock().expect("stats lock");
        s.watermark = self.watermark.is_set().then(|| self.watermark.current());
        s.stages = self
            .stages
            .iter()
            .map(|st| (st.spec.name.to_string(), st.stats.clone()))
            .collect();
    }
}

/// Gives a reader its input: a copy while other readers still need it, the original to the
/// last one.
fn hand_over(slot: &mut (Vec<Envelope>, usize)) -> Vec<Envelope> {
    slot.1 = slot.1.saturating_sub(1);
    if slot.1 == 0 {
        std::mem::take(&mut slot.0)
    } else {
        slot.0.clone()
    }
}
