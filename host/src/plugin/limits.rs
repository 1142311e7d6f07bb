//! Per-stage sandbox limits, with defaults safe for third-party plugins, built from a
//! stage's `limits` table.

use crate::config::LimitsConfig;
use crate::config::units::bytes;
use std::time::Duration;

/// Limits of one stage's plugin instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Most memory the instance may grow to, all its linear memories together.
    pub memory_bytes: usize,
    /// Longest a single call may run before it is interrupted.
    pub deadline: Duration,
    /// Most rows one call may return.
    pub max_output_rows: u64,
    /// Fuel (roughly, wasm instructions) one call may use; `None` runs unmetered.
    pub fuel: Option<u64>,
    /// Most bytes one call may return, all columns together.
    pub output_bytes: usize,
    /// Most bytes of one text value returned.
    pub value_bytes: usize,
    /// Longest error, rejection or log message kept (cut beyond, with a note).
    pub message_bytes: usize,
    /// Log lines per second (the rest dropped and counted).
    pub log_lines_per_second: u32,
    /// Distinct counter names (new ones beyond dropped and counted).
    pub counters: usize,
    /// Most bytes of a snapshot.
    pub snapshot_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 256 << 20,
            deadline: Duration::from_secs(2),
            max_output_rows: 1_000_000,
            fuel: None,
            output_bytes: 64 << 20,
            value_bytes: 1 << 20,
            message_bytes: 4 << 10,
            log_lines_per_second: 100,
            counters: 64,
            snapshot_bytes: 256 << 20,
        }
    }
}

impl Limits {
    /// The defaults with what `cfg` sets.
    pub fn from_config(cfg: Option<&LimitsConfig>) -> Limits {
        let mut l = Limits::default();
        let Some(c) = cfg else { return l };
        if let Some(m) = c.memory {
            l.memory_bytes = bytes(m);
        }
        if let Some(d) = c.deadline {
            l.deadline = d.get();
        }
        if let Some(r) = c.max_output_rows {
            l.max_output_rows = r;
        }
        l.fuel = c.fuel;
        let size = |s: Option<crate::config::ByteSize>, d: usize| s.map_or(d, bytes);
        l.output_bytes = size(c.output_bytes, l.output_bytes);
        l.value_bytes = size(c.value_bytes, l.value_bytes);
        l.message_bytes = size(c.message_bytes, l.message_bytes).max(64);
        l.snapshot_bytes = size(c.snapshot_bytes, l.snapshot_bytes);
        l.log_lines_per_second = c.log_lines_per_second.unwrap_or(l.log_lines_per_second);
        l.counters = c.counters.map_or(l.counters, |n| n as usize);
        l
    }
}
