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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 256 << 20,
            deadline: Duration::from_secs(2),
            max_output_rows: 1_000_000,
            fuel: None,
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
        l
    }
}
