//! The built-in event generator: realistic ad events (requests, impressions, clicks,
//! conversions) for a configurable traffic profile, with the seed's four anomalies
//! injected on schedule. Deterministic: the same seed, rate and start give the same events,
//! whether paced to the wall clock or generated as fast as possible.

mod config;
mod model;
mod rng;

pub use config::{GeneratorConfig, ScenarioConfig, ScenarioKind};
pub use model::Segment;

use super::{BoxFut, Position, RawBatch, Source, SourceError};
use adstream_sdk::time::parse_duration_ms;
use model::{Kind, Model, cumulative, draw_request, pick, request_events, write_event};
use rng::Rng;
use std::time::{Duration, Instant};

/// How far in the past a late event is stamped.
const LATE_BY_MS: i64 = 120_000;

/// Generates events.
pub struct GeneratorSource {
    model: Model,
    rng: Rng,
    seed: u64,
    /// Event time of the first event.
    pub start: i64,
    /// Event-time spacing of events, in ms (fractional).
    step: f64,
    pace: bool,
    rate: f64,
    count: Option<u64>,
    batch_size: usize,
    flush_interval: Duration,
    produced: u64,
    began: Option<Instant>,
    segs: Vec<model::Segment>,
    cumulative: Vec<f64>,
    active: Option<u64>,
    pending: Vec<Kind>,
    malformed_rate: f64,
    late_rate: f64,
}

fn now_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| d.as_millis() as i64)
}

impl GeneratorSource {
    pub fn new(cfg: &GeneratorConfig) -> Result<Self, SourceError> {
        let bad = |m: String| SourceError::Config(format!("[source] generator: {m}"));
        if !(cfg.rate > 0.0 && cfg.rate.is_finite()) {
            return Err(bad(format!("rate = {} (must be > 0)", cfg.rate)));
        }
        let model = Model::new(cfg).map_err(bad)?;
        let mut start = cfg.start.unwrap_or_else(now_ms);
        if let Some(align) = &cfg.align {
            let a = parse_duration_ms(align)
                .map_err(|e| bad(format!("align: {e}")))?
                .max(1);
            start = start.div_euclid(a) * a;
        }
        let flush = parse_duration_ms(&cfg.flush_interval)
            .map_err(|e| bad(format!("flush_interval: {e}")))?;
        Ok(GeneratorSource {
            rng: Rng::new(cfg.seed),
            seed: cfg.seed,
            start,
            step: 1000.0 / cfg.rate,
            pace: cfg.pace,
            rate: cfg.rate,
            count: cfg.count,
            batch_size: cfg.batch_size.max(1),
            flush_interval: Duration::from_millis(flush.max(1) as u64),
            produced: 0,
            began: None,
            segs: Vec::new(),
            cumulative: Vec::new(),
            active: None,
            pending: Vec::new(),
            malformed_rate: cfg.malformed_rate,
            late_rate: cfg.late_rate,
            model,
        })
    }

    /// The segments of the model, before scenarios.
    pub fn segments(&self) -> &[Segment] {
        &self.model.segments
    }

    fn event_time(&self, seq: u64) -> i64 {
        self.start + (seq as f64 * self.step) as i64
    }

    /// Writes `n` more events into `out` (a request's events are never split, so a batch
    /// may end up to three events longer).
    pub fn generate(&mut self, n: u64, out: &mut RawBatch) {
        let limit = self
            .count
            .map_or(u64::MAX, |c| c.saturating_sub(self.produced))
            .min(n);
        let goal = self.produced + limit;
        while self.produced < goal {
            let offset = self.event_time(self.produced) - self.start;
            let active = self.model.active(offset);
            if self.active != Some(active) {
                self.segs = self.model.at(offset);
                self.cumulative = cumulative(&self.segs);
                self.active = Some(active);
            }
            let seg = pick(&self.cumulative, &mut self.rng);
            let (request, filled) = draw_request(&self.model, &self.segs, seg, &mut self.rng);
            request_events(request.segment, filled, &mut self.rng, &mut self.pending);
            for &kind in &self.pending {
                if self.count.is_some_and(|c| self.produced >= c) {
                    break;
                }
                let seq = self.produced;
                let mut time = self.start + (seq as f64 * self.step) as i64;
                if self.late_rate > 0.0 && self.rng.chance(self.late_rate) {
                    time -= LATE_BY_MS;
                }
                let start = out.buffer().len();
                write_event(out.buffer(), (self.seed, seq), time, &request, kind);
                if self.malformed_rate > 0.0 && self.rng.chance(self.malformed_rate) {
                    let damage = self.rng.below(4);
                    model::corrupt(out.buffer(), start, damage);
                }
                out.finish_record(Position {
                    partition: 0,
                    offset: seq as i64,
                });
                self.produced += 1;
            }
        }
    }

    /// How many events are due by the wall clock.
    fn due(&self) -> u64 {
        let elapsed = self.began.map_or(0.0, |b| b.elapsed().as_secs_f64());
        (elapsed * self.rate) as u64
    }

    pub fn produced(&self) -> u64 {
        self.produced
    }

    pub fn finished(&self) -> bool {
        self.count.is_some_and(|c| self.produced >= c)
    }
}

impl Source for GeneratorSource {
    fn name(&self) -> &str {
        "generator"
    }

    fn next_batch(&mut self) -> BoxFut<'_, Result<Option<RawBatch>, SourceError>> {
        Box::pin(async move {
            if self.finished() {
                return Ok(None);
            }
            let began = *self.began.get_or_insert_with(Instant::now);
            let n = if self.pace {
                // Wait until a full batch is due or the flush interval has passed.
                let full_at = (self.produced + self.batch_size as u64) as f64 / self.rate;
                let wait = Duration::from_secs_f64(full_at).saturating_sub(began.elapsed());
                tokio::time::sleep(wait.min(self.flush_interval)).await;
                self.due()
                    .saturating_sub(self.produced)
                    .min(self.batch_size as u64)
            } else {
                self.batch_size as u64
            };
            let mut batch = RawBatch::with_capacity(n as usize + 4, n as usize * 400);
            self.generate(n, &mut batch);
            Ok(Some(batch))
        })
    }
}

#[cfg(test)]
mod tests;
