//! The processor: a plain thread that owns a pipeline's stages. It runs each decoded batch
//! through every stage, and hands the results to the sink tasks in order. Plugin
//! calls are CPU-bound and synchronous, so they run here rather than on the async runtime.
//! Between batches it applies swaps and rewires, and takes checkpoints (`checkpoint/cut.rs`).

use super::checkpoint::Cut;
use super::error::RunError;
use super::feed::{Feed, Incoming, Rewire};
use super::stage::{
    Input, Refusal, Replacement, Stage, StageView, SwapOutcome, lines_up, process_chain,
};
use super::stats::PipelineStats;
use super::watermark::Watermark;
use crate::batch::{DeadLetters, Envelope, Position, RawBatch};
use crate::sinks::runner::SinkMsg;
use crate::sources::{Health, Lag};
use adstream_sdk::Batch;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

pub struct Processor {
    /// The event-time column, which the watermark follows.
    pub time_column: String,
    pub stages: Vec<Stage>,
    pub sinks: Vec<(String, mpsc::Sender<SinkMsg>)>,
    pub dead_letter: usize,
    pub source_name: String,
    pub stats: Arc<Mutex<PipelineStats>>,
    /// When and where checkpoints go; `None` for sources without positions.
    pub(super) cut: Option<Cut>,
    /// Per partition, the offset of the next record to read.
    pub(super) next: BTreeMap<i32, i64>,
    pub(super) watermark: Watermark,
    /// Whether the source is stalled, for status.
    pub health: Health,
    /// How far behind each source partition the pipeline reads, for status.
    pub lag: Lag,
    /// How many stages read the source, and each stage's output.
    readers: (usize, Vec<usize>),
    /// For each stage, the last stage of the chain of sharded stages it starts
    /// (`stage/chain.rs`); itself when it starts none.
    chain_end: Vec<usize>,
    /// What each stage runs, as the pipeline's owner sees it (a canary may take over here).
    pub(super) views: Arc<Mutex<Vec<StageView>>>,
    /// What dead letters may keep of personal fields, applied as they leave.
    pub(super) privacy: Arc<crate::batch::Privacy>,
    /// The source's partitions (all of them: each is read here unless `shared`).
    pub(super) partitions: Vec<i32>,
    /// The partitions this host owns, when hosts share the pipeline (`group.rs`).
    pub(super) shared: Option<super::group::Shared>,
}

impl Processor {
    pub fn new(
        time_column: String,
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
        let chain_end = chain_ends(&stages, &readers.1);
        Processor {
            chain_end,
            time_column,
            stages,
            sinks,
            dead_letter,
            source_name,
            stats: Arc::default(),
            cut: None,
            next: BTreeMap::new(),
            watermark,
            health: Health::default(),
            lag: Lag::default(),
            readers,
            views: Arc::default(),
            privacy: Arc::default(),
            shared: None,
            partitions: Vec::new(),
        }
    }

    /// Swaps a stage's plugin instance (the replacement was prepared off this thread).
    fn swap(&mut self, r: Replacement, reply: oneshot::Sender<SwapOutcome>) {
        match self.stages.iter_mut().find(|s| s.spec.name == r.spec.name) {
            Some(stage) => stage.begin_swap(r, reply),
            None => {
                let why = Refusal::NoStage(r.spec.name.to_string());
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

    /// Follows event time per source partition (once per partition and batch), and the
    /// next offset to read.
    fn observe(&mut self, batch: &Batch, positions: &[Position], raw: &RawBatch) {
        self.watermark.tick(Instant::now());
        let mut latest: Vec<(i32, i64)> = Vec::new();
        if let Some(times) = batch
            .column(&self.time_column)
            .and_then(|c| c.as_i64s().ok())
        {
            for (p, &t) in positions.iter().zip(times.values()) {
                match latest.iter_mut().find(|(q, _)| *q == p.partition) {
                    Some((_, m)) => *m = (*m).max(t),
                    None => latest.push((p.partition, t)),
                }
            }
        }
        for (p, t) in latest {
            self.watermark.observe(p, t);
        }
        self.watermark.advance();
        for p in raw.positions() {
            let next = self.next.entry(p.partition).or_insert(p.offset + 1);
            *next = (*next).max(p.offset + 1);
        }
    }

    /// Processes batches until the source side says it ended. A pipeline with checkpoints
    /// then takes a last one, keeping its open windows for the next run; one without (its
    /// input ended) closes every open window and lets the results flow on.
    pub fn run(mut self, mut rx: mpsc::Receiver<Feed>) -> Result<PipelineStats, RunError> {
        let mut last = 0;
        while let Some(feed) = self.next_feed(&mut rx)? {
            match feed {
                Feed::Batch(seq, incoming) => {
                    last = seq;
                    self.handle(seq, *incoming)?;
                }
                Feed::Swap(r, reply) => self.swap(*r, reply),
                Feed::Rewire(r) => self.rewire(r),
                Feed::End => break,
            }
        }
        match self.cut.is_some() {
            true if last > 0 => self.checkpoint(last)?,
            true => {}
            false => self.finish()?,
        }
        self.publish();
        Ok(self.stats.lock().map(|s| s.clone()).unwrap_or_default())
    }

    fn handle(&mut self, seq: u64, incoming: Incoming) -> Result<(), RunError> {
        let began = Instant::now();
        let Incoming { raw, decoded } = incoming;
        let raw = &raw;
        let mut dl = DeadLetters::new(&self.source_name);
        for (i, reason) in &decoded.rejected {
            dl.record(raw, *i as usize, reason);
        }
        let positions: Vec<_> = decoded
            .records
            .iter()
            .map(|&i| raw.position(i as usize))
            .collect();
        self.observe(&decoded.batch, &positions, raw);
        let source = vec![Envelope {
            batch: decoded.batch,
            positions: Some(positions),
        }];
        self.run_stages(source, None, &mut dl)?;
        {
            let mut s = self.stats.lock().expect("stats lock");
            s.batches += 1;
            s.records += raw.len() as u64;
            s.decode_errors += decoded.rejected.len() as u64;
            s.batch_seconds.observe(began.elapsed());
        }
        self.send_dead_letters(dl)?;
        if self.cut.as_ref().is_some_and(Cut::due) {
            self.checkpoint(seq)?;
        }
        self.apply_moves(seq, &raw.moves)?;
        self.publish();
        Ok(())
    }

    /// Runs every stage once, sending each stage's output to its sinks as soon as it has
    /// it. `inject` replaces one stage's output (its flushed windows) and runs only what
    /// comes after it.
    pub(super) fn run_stages(
        &mut self,
        source: Vec<Envelope>,
        inject: Option<(usize, Vec<Envelope>)>,
        dl: &mut DeadLetters,
    ) -> Result<(), RunError> {
        let watermark = self.watermark.current();
        let mut source = (source, self.readers.0);
        let mut outputs: Vec<(Vec<Envelope>, usize)> = Vec::with_capacity(self.stages.len());
        let mut inject = inject;
        // Outputs of a chain's later stages, computed with its first.
        let mut ready: std::collections::VecDeque<Vec<Envelope>> = Default::default();
        for i in 0..self.stages.len() {
            let out = match inject.take() {
                Some((k, env)) if k == i => env,
                Some(other) if other.0 > i => {
                    inject = Some(other);
                    Vec::new()
                }
                other if !ready.is_empty() => {
                    inject = other;
                    ready.pop_front().unwrap_or_default()
                }
                other => {
                    inject = other;
                    let input = match self.stages[i].spec.input {
                        Input::Source => hand_over(&mut source),
                        Input::Stage(j) => hand_over(&mut outputs[j]),
                    };
                    let end = self.chain_end[i];
                    if end > i && inject.is_none() {
                        let chain = &mut self.stages[i..=end];
                        ready = process_chain(chain, input, watermark, dl)?.into();
                        ready.pop_front().unwrap_or_default()
                    } else if self.stages[i].partitioned() {
                        self.run_partitioned(i, input, watermark, dl)?
                    } else {
                        self.stages[i].process(input, watermark, dl)?
                    }
                }
            };
            self.route(i, &out)?;
            outputs.push((out, self.readers.1[i]));
        }
        Ok(())
    }

    pub(super) fn send(&self, sink: usize, msg: SinkMsg) -> Result<(), RunError> {
        let (name, tx) = &self.sinks[sink];
        tx.blocking_send(msg)
            .map_err(|_| RunError::SinkClosed(name.clone()))
    }

    /// Sends stage `i`'s output to its sinks.
    fn route(&self, i: usize, out: &[Envelope]) -> Result<(), RunError> {
        let to = &self.stages[i].spec.to;
        if to.is_empty() {
            return Ok(());
        }
        for env in out.iter().filter(|e| e.rows() > 0) {
            let batch = Arc::new(env.batch.clone());
            for &sink in to {
                let done = None;
                self.send(
                    sink,
                    SinkMsg::Rows {
                        batch: batch.clone(),
                        done,
                    },
                )?;
            }
        }
        Ok(())
    }

    pub(super) fn send_dead_letters(&mut self, dl: DeadLetters) -> Result<(), RunError> {
        if dl.is_empty() {
            return Ok(());
        }
        let recent = {
            let mut stats = self.stats.lock().expect("stats lock");
            stats.dead_letters += dl.len() as u64;
            for (reason, n) in dl.by_reason() {
                *stats.dead_letters_by_reason.entry(reason).or_default() += n;
            }
            stats.recent_dead_letters.clone()
        };
        let batch = Arc::new(dl.seal(&self.privacy));
        // The payload may be long; the dashboard shows why and where, not what.
        recent.record_without(&batch, &["payload"]);
        self.send(self.dead_letter, SinkMsg::Rows { batch, done: None })
    }

    /// End of input: flush each aggregate stage in order; what it emits flows on through
    /// the stages after it.
    fn finish(&mut self) -> Result<(), RunError> {
        for k in 0..self.stages.len() {
            let mut dl = DeadLetters::new(&self.source_name);
            let flushed = self.stages[k].flush(&mut dl)?;
            if flushed.is_empty() && dl.is_empty() {
                continue;
            }
            self.run_stages(Vec::new(), Some((k, flushed)), &mut dl)?;
            self.send_dead_letters(dl)?;
        }
        Ok(())
    }

    pub(super) fn publish(&mut self) {
        for (i, stage) in self.stages.iter_mut().enumerate() {
            if let Some(mut view) = stage.take_promoted() {
                let mut views = self.views.lock().expect("stage views");
                if let Some(v) = views.get_mut(i) {
                    view.spec.to = std::mem::take(&mut v.spec.to);
                    *v = view;
                }
            }
        }
        let mut s = self.stats.lock().expect("stats lock");
        s.watermark = self.watermark.is_set().then(|| self.watermark.current());
        s.stages = self
            .stages
            .iter()
            .map(|st| (st.spec.name.to_string(), st.totals()))
            .collect();
        s.source_stalled = self.health.lock().map(|h| h.clone()).unwrap_or_default();
        s.source_lag = self.lag.lock().map(|l| l.clone()).unwrap_or_default();
        s.partitions = match &self.shared {
            Some(shared) => shared.owned.keys().copied().collect(),
            None => self.partitions.clone(),
        };
        let marks = s.partitions.iter().map(|&p| (p, self.watermark.of(p)));
        s.partition_watermarks = marks.filter(|&(_, w)| w != i64::MIN).collect();
        s.merging = (self.shared.as_ref()).and_then(|s| Some(s.merging.as_ref()?.watermark()));
    }
}

/// Where each stage's chain of lined-up sharded stages ends (`stage/chain.rs`): a chain
/// goes on while the next stage reads only the one before it and its shards line up.
fn chain_ends(stages: &[Stage], readers: &[usize]) -> Vec<usize> {
    let mut ends: Vec<usize> = (0..stages.len()).collect();
    let mut i = 0;
    while i < stages.len() {
        let mut end = i;
        while let Some(next) = stages.get(end + 1)
            && next.spec.input == Input::Stage(end)
            && readers[end] == 1
            && lines_up(&stages[i], next)
        {
            end += 1;
        }
        ends[i] = end;
        i = end + 1;
    }
    ends
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

#[cfg(test)]
mod tests {
    use super::{Input, chain_ends};
    use crate::pipeline::fake::sharded as stage;

    #[test]
    fn chains_run_while_the_next_stage_reads_only_the_one_before_and_lines_up() {
        let stages = [
            stage(Input::Source, 2, &["id"]),
            stage(Input::Stage(0), 2, &["id", "x"]),
            stage(Input::Stage(1), 2, &["x"]),
            stage(Input::Stage(2), 2, &["x"]),
            stage(Input::Stage(2), 2, &["x"]),
        ];
        // Stage 2's output has two readers: the chain that starts there ends there.
        assert_eq!(chain_ends(&stages, &[1, 1, 2, 0, 0]), [1, 1, 2, 3, 4]);
        assert_eq!(chain_ends(&stages, &[1, 1, 1, 1, 0]), [1, 1, 3, 3, 4]);
    }
}
