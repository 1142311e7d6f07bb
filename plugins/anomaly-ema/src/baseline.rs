//! EMA baselines per group, with expiry by event time, and their snapshot format.

use adstream_sdk::{FastMap, PluginError};
use serde::{Deserialize, Serialize};

/// A group's moving averages (or one window's values), and when they were last updated.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub ctr: f64,
    pub impressions: f64,
    pub ecpm: f64,
    pub updated_at: i64,
}

impl Baseline {
    fn fold(&mut self, current: &Baseline, alpha: f64) {
        let ema = |avg: f64, cur: f64| (1.0 - alpha) * avg + alpha * cur;
        self.ctr = ema(self.ctr, current.ctr);
        self.impressions = ema(self.impressions, current.impressions);
        self.ecpm = ema(self.ecpm, current.ecpm);
        self.updated_at = current.updated_at;
    }
}

/// Baselines keyed by the group's dimension values joined with U+001F.
pub struct Baselines {
    ttl_ms: i64,
    by_group: FastMap<String, Baseline>,
    key: String,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    v: u32,
    group_by: Vec<String>,
    baselines: Vec<(Vec<String>, Baseline)>,
}

impl Baselines {
    pub fn new(ttl_ms: i64) -> Self {
        Baselines {
            ttl_ms,
            by_group: FastMap::default(),
            key: String::new(),
        }
    }

    /// Returns the baseline `current` is compared with (`None` for a group's first window
    /// or one whose baseline expired). Unless `keep` is set, `current` is then folded in;
    /// `keep` leaves an existing baseline as it was (for a window that raised an alert).
    pub fn observe(
        &mut self,
        dims: &[&str],
        current: Baseline,
        alpha: f64,
        keep: impl FnOnce(&Baseline) -> bool,
    ) -> Option<Baseline> {
        self.key.clear();
        for (i, d) in dims.iter().enumerate() {
            if i > 0 {
                self.key.push('\u{1f}');
            }
            self.key.push_str(d);
        }
        match self.by_group.get_mut(self.key.as_str()) {
            Some(avg) if current.updated_at - avg.updated_at <= self.ttl_ms => {
                let before = *avg;
                if !keep(&before) {
                    avg.fold(&current, alpha);
                }
                Some(before)
            }
            Some(avg) => {
                *avg = current;
                None
            }
            None => {
                self.by_group.insert(self.key.clone(), current);
                None
            }
        }
    }

    pub fn snapshot(&self, group_by: &[String]) -> Result<Vec<u8>, PluginError> {
        let mut baselines: Vec<(Vec<String>, Baseline)> = self
            .by_group
            .iter()
            .map(|(k, b)| (k.split('\u{1f}').map(str::to_string).collect(), *b))
            .collect();
        baselines.sort_by(|a, b| a.0.cmp(&b.0));
        let snap = Snapshot {
            v: 1,
            group_by: group_by.to_vec(),
            baselines,
        };
        serde_json::to_vec(&snap).map_err(|e| PluginError::Other(e.to_string()))
    }

    pub fn restore(&mut self, bytes: &[u8], group_by: &[String]) -> Result<(), PluginError> {
        let snap: Snapshot = serde_json::from_slice(bytes)
            .map_err(|e| PluginError::InvalidState(format!("unreadable snapshot: {e}")))?;
        if snap.v != 1 || snap.group_by != group_by {
            return Err(PluginError::InvalidState(format!(
                "snapshot v{} groups by {:?}; this stage groups by {group_by:?}",
                snap.v, snap.group_by
            )));
        }
        self.by_group = snap
            .baselines
            .into_iter()
            .map(|(dims, b)| (dims.join("\u{1f}"), b))
            .collect();
        Ok(())
    }
}
