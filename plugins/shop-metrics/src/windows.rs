//! Tumbling event-time windows of any report's sums: a window closes when the watermark,
//! less the allowed lateness, passes its end plus the report's own delay (matching waits
//! a lookback for payments).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Serialize, Deserialize, Clone)]
pub struct Windows<S> {
    pub size_ms: i64,
    /// How long after its end a window stays open.
    pub hold_ms: i64,
    /// Windows ending at or before this were emitted; their rows are late.
    pub closed_until: i64,
    pub open: BTreeMap<i64, S>,
}

impl<S: Default> Windows<S> {
    pub fn new(size_ms: i64, hold_ms: i64) -> Self {
        Windows {
            size_ms,
            hold_ms,
            closed_until: i64::MIN,
            open: BTreeMap::new(),
        }
    }

    pub fn start_of(&self, time: i64) -> i64 {
        time.div_euclid(self.size_ms) * self.size_ms
    }

    /// The sums of the window holding `time`, or `None` if it closed already.
    pub fn slot(&mut self, time: i64) -> Option<&mut S> {
        let start = self.start_of(time);
        if start.saturating_add(self.size_ms) <= self.closed_until {
            return None;
        }
        Some(self.open.entry(start).or_default())
    }

    /// Removes and returns the windows `watermark` closed, oldest first.
    pub fn close(&mut self, watermark: i64) -> Vec<(i64, S)> {
        let horizon = watermark.saturating_sub(self.hold_ms);
        let mut closed = Vec::new();
        while let Some(entry) = self.open.first_entry() {
            if entry.key().saturating_add(self.size_ms) > horizon {
                break;
            }
            closed.push((*entry.key(), entry.remove()));
        }
        self.closed_until = self.closed_until.max(horizon);
        closed
    }

    /// Removes and returns every open window.
    pub fn close_all(&mut self) -> Vec<(i64, S)> {
        if let Some(last) = self.open.keys().next_back() {
            self.closed_until = self.closed_until.max(last + self.size_ms);
        }
        std::mem::take(&mut self.open).into_iter().collect()
    }
}
