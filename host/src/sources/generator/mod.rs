//! The built-in event generator: realistic ad events (requests, impressions, clicks,
//! conversions) for a configurable traffic profile, with the seed's four anomalies
//! injected on schedule. Deterministic: the same seed, rate and start give the same events,
//! whether paced to the wall clock or generated as fast as possible.

mod model;
mod rng;
mod shop;

pub use model::Segment;

use super::{Source, SourceError};
use crate::batch::{Position, RawBatch};
use crate::config::source::GeneratorConfig;
use crate::connect::BoxFut;
use model::{Kind, Model, Request, cumulative, draw_request, pick, request_events};
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
    /// Without a configured start, the clock is read again when the first batch is made,
    /// so that paced event time follows the wall clock however long the pipeline took to
    /// open its sinks and plugins after this source was made.
    start_now: Option<Option<i64>>,
    /// Event-time spacing of events at the base rate, in ms (fractional).
    step: f64,
    /// Event time of the next event, in ms after `start`. Advances by `step / traffic`.
    clock_ms: f64,
    /// Total traffic relative to the base rate: a traffic spike adds its segment's extra
    /// events on top, so other segments keep their volume.
    traffic: f64,
    /// Event-time ms per wall-clock ms when paced; `None` generates as fast as possible.
    speed: Option<f64>,
    count: Option<u64>,
    batch_size: usize,
    flush_interval: Duration,
    produced: u64,
    began: Option<Instant>,
    segs: Vec<model::Segment>,
    cumulative: Vec<f64>,
    active: Option<u64>,
    /// The request being written and its events not yet written (a batch may end between
    /// the events of one request).
    request: Option<Request>,
    pending: Vec<Kind>,
    malformed_rate: f64,
    late_rate: f64,
    /// Shop events instead of ad events (`[source.shop]`).
    shop: Option<shop::Shop>,
}

fn now_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| d.as_millis() as i64)
}

/// `ms` rounded down to a multiple of `align`.
fn aligned(ms: i64, align: Option<i64>) -> i64 {
    align.map_or(ms, |a| ms.div_euclid(a) * a)
}

impl GeneratorSource {
    pub fn new(cfg: &GeneratorConfig) -> Result<Self, SourceError> {
        let bad = SourceError::Generator;
        if !(cfg.rate > 0.0 && cfg.rate.is_finite()) {
            return Err(bad(format!("rate = {} (must be > 0)", cfg.rate)));
        }
        if !(cfg.speed > 0.0 && cfg.speed.is_finite()) {
            return Err(bad(format!("speed = {} (must be > 0)", cfg.speed)));
        }
        let model = Model::new(cfg).map_err(bad)?;
        if cfg.shop.is_some() && !cfg.scenario.is_empty() {
            return Err(bad(
                "[[source.scenario]] is for ad events; a shop's go in [[source.shop.scenario]]"
                    .into(),
            ));
        }
        let align = cfg.align.map(|a| a.as_millis_i64().max(1));
        Ok(GeneratorSource {
            rng: Rng::new(cfg.seed),
            seed: cfg.seed,
            start: aligned(cfg.start.unwrap_or_else(now_ms), align),
            start_now: cfg.start.is_none().then_some(align),
            step: 1000.0 / cfg.rate,
            clock_ms: 0.0,
            traffic: 1.0,
            speed: cfg.pace.then_some(cfg.speed),
            count: cfg.count,
            batch_size: cfg.batch_size.get(),
            flush_interval: cfg.flush_interval.get().max(Duration::from_millis(1)),
            produced: 0,
            began: None,
            segs: Vec::new(),
            cumulative: Vec::new(),
            active: None,
            request: None,
            pending: Vec::new(),
            malformed_rate: cfg.malformed_rate,
            late_rate: cfg.late_rate,
            shop: cfg
                .shop
                .as_ref()
                .map(shop::Shop::new)
                .transpose()
                .map_err(bad)?,
            model,
        })
    }

    /// The segments of the model, before scenarios.
    pub fn segments(&self) -> &[Segment] {
        &self.model.segments
    }

    /// Draws the next request and its events.
    fn next_request(&mut self) {
        let offset = self.clock_ms as i64;
        let active = self.model.active(offset);
        if self.active != Some(active) {
            self.segs = self.model.at(offset);
            self.cumulative = cumulative(&self.segs);
            let base: f64 = self.model.segments.iter().map(|s| s.weight.max(0.0)).sum();
            self.traffic = self.cumulative.last().copied().unwrap_or(base) / base;
            self.active = Some(active);
        }
        let seg = pick(&self.cumulative, &mut self.rng);
        let (request, filled) = draw_request(&self.model, &self.segs, seg, &mut self.rng);
        request_events(&self.segs[seg], filled, &mut self.rng, &mut self.pending);
        self.pending.reverse();
        self.request = Some(request);
    }

    /// Writes `n` more events into `out` (fewer if `count` is reached).
    pub fn generate(&mut self, n: u64, out: &mut RawBatch) {
        self.generate_until(f64::INFINITY, n, out);
    }

    /// Writes events until the next one would be later than `until_ms` after the start,
    /// `n` were written, or `count` is reached.
    fn generate_until(&mut self, until_ms: f64, n: u64, out: &mut RawBatch) {
        let limit = self
            .count
            .map_or(u64::MAX, |c| c.saturating_sub(self.produced))
            .min(n);
        let goal = self.produced + limit;
        while self.produced < goal && self.clock_ms <= until_ms {
            let seq = self.produced;
            let mut time = self.start + self.clock_ms as i64;
            if self.late_rate > 0.0 && self.rng.chance(self.late_rate) {
                time -= LATE_BY_MS;
            }
            let start = out.buffer().len();
            if !self.write_event(time, seq, out.buffer()) {
                continue;
            }
            if self.malformed_rate > 0.0 && self.rng.chance(self.malformed_rate) {
                let damage = self.rng.below(4);
                match self.shop {
                    Some(_) => shop::corrupt(out.buffer(), start, damage),
                    None => model::corrupt(out.buffer(), start, damage),
                }
            }
            out.finish_record(Position {
                partition: 0,
                offset: seq as i64,
            });
            self.produced += 1;
            self.clock_ms += self.step / self.traffic;
        }
    }

    /// Writes the next event; `false` when a request turned out to have none.
    fn write_event(&mut self, time: i64, seq: u64, out: &mut Vec<u8>) -> bool {
        if let Some(shop) = &mut self.shop {
            let offset = self.clock_ms as i64;
            shop.write_next(offset, time, (self.seed, seq), &mut self.rng, out);
            self.traffic = shop::Shop::traffic(time);
            return true;
        }
        if self.pending.is_empty() {
            self.next_request();
        }
        let (Some(kind), Some(request)) = (self.pending.pop(), self.request) else {
            return false;
        };
        self.model
            .write_event(out, (self.seed, seq), time, &request, kind);
        true
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
            if self.began.is_none()
                && let Some(align) = self.start_now
            {
                self.start = aligned(now_ms(), align);
            }
            let began = *self.began.get_or_insert_with(Instant::now);
            let mut batch = RawBatch::with_capacity(self.batch_size + 4, self.batch_size * 400);
            if let Some(speed) = self.speed {
                // Wait until a full batch is due or the flush interval has passed, then
                // write every event whose time has come.
                let full_at = self.clock_ms + self.batch_size as f64 * self.step / self.traffic;
                let wait = Duration::from_secs_f64(full_at.max(0.0) / speed / 1000.0)
                    .saturating_sub(began.elapsed());
                tokio::time::sleep(wait.min(self.flush_interval)).await;
                let now_ms = began.elapsed().as_secs_f64() * 1000.0 * speed;
                self.generate_until(now_ms, self.batch_size as u64, &mut batch);
            } else {
                self.generate(self.batch_size as u64, &mut batch);
            }
            Ok(Some(batch))
        })
    }
}

#[cfg(test)]
mod tests;
