//! The event-time watermark: the time below which the pipeline expects no more events.
//!
//! Each source partition is followed separately and the watermark is the slowest active
//! partition's latest event time minus the allowed delay — otherwise a partition that
//! happens to be read ahead would make every event of the others late. A partition that
//! sent nothing for `idle` stops holding the watermark back. The watermark never goes
//! backwards.

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub struct Watermark {
    delay_ms: i64,
    idle: Duration,
    partitions: HashMap<i32, (i64, Instant)>,
    current: i64,
}

impl Watermark {
    pub fn new(delay_ms: i64, idle: Duration) -> Self {
        Watermark {
            delay_ms,
            idle,
            partitions: HashMap::new(),
            current: i64::MIN,
        }
    }

    /// Makes `partitions` hold the watermark back until each has delivered something (or
    /// stayed idle too long).
    pub fn expect(&mut self, partitions: &[i32], now: Instant) {
        for &p in partitions {
            self.partitions.entry(p).or_insert((i64::MIN, now));
        }
    }

    /// Notes that `partition` delivered events up to event time `max_time`.
    pub fn observe(&mut self, partition: i32, max_time: i64, now: Instant) {
        let slot = self.partitions.entry(partition).or_insert((max_time, now));
        slot.0 = slot.0.max(max_time);
        slot.1 = now;
    }

    /// Recomputes the watermark after a batch.
    pub fn advance(&mut self, now: Instant) -> i64 {
        let slowest = self
            .partitions
            .values()
            .filter(|(_, seen)| now.duration_since(*seen) <= self.idle)
            .map(|(t, _)| *t)
            .min();
        if let Some(t) = slowest.filter(|&t| t != i64::MIN) {
            self.current = self.current.max(t.saturating_sub(self.delay_ms));
        }
        self.current
    }

    pub fn current(&self) -> i64 {
        self.current
    }

    /// The watermark and each partition's latest event time, for checkpoints.
    pub fn state(&self) -> (i64, Vec<(i32, i64)>) {
        let mut times: Vec<(i32, i64)> = self
            .partitions
            .iter()
            .filter(|(_, (t, _))| *t != i64::MIN)
            .map(|(&p, &(t, _))| (p, t))
            .collect();
        times.sort_unstable();
        (self.current, times)
    }

    /// Continues from a checkpoint's watermark and partition times.
    pub fn restore(&mut self, current: i64, times: &[(i32, i64)], now: Instant) {
        self.current = self.current.max(current);
        for &(p, t) in times {
            let slot = self.partitions.entry(p).or_insert((t, now));
            slot.0 = slot.0.max(t);
        }
    }

    pub fn is_set(&self) -> bool {
        self.current != i64::MIN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slowest_active_partition_sets_it_and_it_never_goes_back() {
        let t0 = Instant::now();
        let mut w = Watermark::new(1_000, Duration::from_secs(10));
        w.observe(0, 50_000, t0);
        w.observe(1, 20_000, t0);
        assert_eq!(w.advance(t0), 19_000);
        w.observe(1, 60_000, t0);
        assert_eq!(w.advance(t0), 49_000);
        // Partition 0 goes quiet: after the idle time it no longer holds the watermark back.
        w.observe(1, 80_000, t0 + Duration::from_secs(11));
        assert_eq!(w.advance(t0 + Duration::from_secs(11)), 79_000);
        // A partition that comes back behind does not pull the watermark back.
        let mut fresh = Watermark::new(0, Duration::from_secs(10));
        fresh.expect(&[0, 1], t0);
        fresh.observe(0, 5_000, t0);
        assert_eq!(
            fresh.advance(t0),
            i64::MIN,
            "partition 1 has not been read yet"
        );
        w.observe(0, 51_000, t0 + Duration::from_secs(12));
        assert_eq!(w.advance(t0 + Duration::from_secs(12)), 79_000);
    }
}
