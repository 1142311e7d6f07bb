//! The event-time watermark: the time below which the pipeline expects no more events.
//!
//! Each source partition is followed separately and the watermark is the slowest active
//! partition's latest event time minus the allowed delay — otherwise a partition that
//! happens to be read ahead would make every event of the others late. A partition that
//! sent nothing for `idle` stops holding the watermark back. The watermark never goes
//! backwards.
//!
//! Idleness is measured while batches flow: a pause of the whole pipeline (a sink holding
//! it back, a restart, a broker away) counts for at most half of `idle`, so that a
//! partition is not declared idle — and its waiting events made late — only because
//! nothing at all was read for a while.

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub struct Watermark {
    delay_ms: i64,
    idle: Duration,
    /// Per partition: latest event time, and the flow time it was last seen at.
    partitions: HashMap<i32, (i64, Duration)>,
    current: i64,
    /// Time that passed while batches flowed, and when the last batch came.
    flow: Duration,
    last_batch: Option<Instant>,
}

impl Watermark {
    pub fn new(delay_ms: i64, idle: Duration) -> Self {
        Watermark {
            delay_ms,
            idle,
            partitions: HashMap::new(),
            current: i64::MIN,
            flow: Duration::ZERO,
            last_batch: None,
        }
    }

    /// Makes `partitions` hold the watermark back until each has delivered something (or
    /// stayed idle too long).
    pub fn expect(&mut self, partitions: &[i32]) {
        for &p in partitions {
            self.partitions.entry(p).or_insert((i64::MIN, self.flow));
        }
    }

    /// Stops following `partition` (it went to another host).
    pub fn forget(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }

    /// A batch arrived at `now`: moves the flow clock on.
    pub fn tick(&mut self, now: Instant) {
        if let Some(last) = self.last_batch {
            self.flow += now.duration_since(last).min(self.idle / 2);
        }
        self.last_batch = Some(now);
    }

    /// Notes that `partition` delivered events up to event time `max_time`.
    pub fn observe(&mut self, partition: i32, max_time: i64) {
        let slot = self
            .partitions
            .entry(partition)
            .or_insert((max_time, self.flow));
        slot.0 = slot.0.max(max_time);
        slot.1 = self.flow;
    }

    /// Recomputes the watermark after a batch.
    pub fn advance(&mut self) -> i64 {
        let slowest = self
            .partitions
            .values()
            .filter(|(_, seen)| self.flow.saturating_sub(*seen) <= self.idle)
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

    /// `partition`'s own watermark, from its latest event time; never behind the
    /// pipeline's (a partition that went idle has its windows closed with the others').
    pub fn of(&self, partition: i32) -> i64 {
        self.own(partition).max(self.current)
    }

    /// `partition`'s own watermark alone: in a pipeline hosts share, a partition that
    /// comes to a host from an older cut is behind the host's other partitions, and its
    /// events are not late for that.
    pub fn own(&self, partition: i32) -> i64 {
        (self.partitions.get(&partition))
            .filter(|(t, _)| *t != i64::MIN)
            .map_or(i64::MIN, |(t, _)| t.saturating_sub(self.delay_ms))
    }

    pub fn is_set(&self) -> bool {
        self.current != i64::MIN
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
    pub fn restore(&mut self, current: i64, times: &[(i32, i64)]) {
        self.current = self.current.max(current);
        for &(p, t) in times {
            let slot = self.partitions.entry(p).or_insert((t, self.flow));
            slot.0 = slot.0.max(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slowest_active_partition_sets_it_and_it_never_goes_back() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut w = Watermark::new(1_000, s(10));
        w.tick(t0);
        w.observe(0, 50_000);
        w.observe(1, 20_000);
        assert_eq!(w.advance(), 19_000);
        w.observe(1, 60_000);
        assert_eq!(w.advance(), 49_000);
        // Partition 0 goes quiet while batches of partition 1 keep coming: after the idle
        // time it no longer holds the watermark back.
        for i in 1..=12 {
            w.tick(t0 + s(i));
            w.observe(1, 80_000);
        }
        assert_eq!(w.advance(), 79_000);
        // A partition that comes back behind does not pull the watermark back.
        w.tick(t0 + s(13));
        w.observe(0, 51_000);
        assert_eq!(w.advance(), 79_000);
        let mut fresh = Watermark::new(0, s(10));
        fresh.expect(&[0, 1]);
        fresh.tick(t0);
        fresh.observe(0, 5_000);
        assert_eq!(
            fresh.advance(),
            i64::MIN,
            "partition 1 has not been read yet"
        );
    }

    #[test]
    fn a_pause_of_the_whole_pipeline_does_not_make_a_partition_idle() {
        let t0 = Instant::now();
        let mut w = Watermark::new(0, Duration::from_secs(10));
        w.tick(t0);
        w.observe(0, 1_000);
        w.observe(1, 1_000);
        w.advance();
        // A minute with no batch at all (a sink held the pipeline back), then partition 0
        // comes first: partition 1 still holds the watermark back.
        w.tick(t0 + Duration::from_secs(60));
        w.observe(0, 90_000);
        assert_eq!(w.advance(), 1_000);
    }
}
