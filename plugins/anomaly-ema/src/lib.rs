//! `anomaly-ema`: the four anomaly rules of seed 001 over an exponential moving average
//! baseline per group (by default country × ad_format).
//!
//! ```toml
//! config = { alpha = 0.2, min_impressions = 500, baseline_ttl = "1h", language = "ko" }
//! ```
//!
//! For each window row, in order: a window with fewer than `min_impressions` impressions is
//! ignored (it neither alerts nor moves the baseline); the first window of a group sets
//! the baseline; later windows are checked against it and then folded in with
//! `avg = (1 − α) × avg + α × current` — except windows that raised an alert, unless
//! `learn_from_anomalies` is set (seed 001 folds them in; one CTR spike then lifts the
//! baseline so far that ordinary windows after it read as drops). A baseline not updated
//! for `baseline_ttl` of event time is forgotten, as the seed's one-hour Redis TTL did, so
//! a lasting change becomes the new normal after that long.

mod alerts;
mod baseline;
pub mod rules;

use adstream_sdk::time::parse_duration_ms;
use adstream_sdk::{
    Batch, ConfigExt, Detect, Field, FieldsExt, INT_KINDS, PluginError, STRING_KINDS, Setup, count,
    export_detect,
};
use alerts::AlertRows;
use baseline::{Baseline, Baselines};
use rules::{AlertType, Language, Reading, Thresholds};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_alpha")]
    alpha: f64,
    #[serde(default = "default_min_impressions")]
    min_impressions: i64,
    #[serde(default = "default_ttl")]
    baseline_ttl: String,
    #[serde(default)]
    language: Language,
    #[serde(default = "default_group_by")]
    group_by: Vec<String>,
    #[serde(default)]
    thresholds: Thresholds,
    /// Fold windows that raised an alert into the baseline too (seed 001 does). Off by
    /// default, so that one spike does not skew the baseline for the windows after it.
    #[serde(default)]
    learn_from_anomalies: bool,
}

fn default_alpha() -> f64 {
    0.2
}
fn default_min_impressions() -> i64 {
    100
}
fn default_ttl() -> String {
    "1h".to_string()
}
fn default_group_by() -> Vec<String> {
    vec!["country".to_string(), "ad_format".to_string()]
}

/// The configured detector and its baselines.
pub struct AnomalyEma {
    alpha: f64,
    min_impressions: i64,
    language: Language,
    group_by: Vec<String>,
    thresholds: Thresholds,
    learn_from_anomalies: bool,
    baselines: Baselines,
}

const RULES: [AlertType; 4] = [
    AlertType::CtrDrop,
    AlertType::CtrSpike,
    AlertType::TrafficSpike,
    AlertType::EcpmDrop,
];

fn invalid(msg: impl Into<String>) -> PluginError {
    PluginError::InvalidConfig(msg.into())
}

impl AnomalyEma {
    fn readings(current: &Baseline, avg: &Baseline) -> [Reading; 4] {
        let ctr = Reading {
            current: current.ctr * 100.0,
            expected: avg.ctr * 100.0,
        };
        let traffic = Reading {
            current: current.impressions,
            expected: avg.impressions,
        };
        let ecpm = Reading {
            current: current.ecpm,
            expected: avg.ecpm,
        };
        [ctr, ctr, traffic, ecpm]
    }
}

impl Detect for AnomalyEma {
    fn configure(setup: &Setup) -> Result<(Self, Vec<Field>), PluginError> {
        let cfg: Config = setup.config()?;
        if !(cfg.alpha > 0.0 && cfg.alpha <= 1.0) {
            return Err(invalid(format!(
                "alpha = {} (must be in (0, 1])",
                cfg.alpha
            )));
        }
        if cfg.min_impressions < 1 {
            return Err(invalid("min_impressions must be at least 1"));
        }
        let ttl = parse_duration_ms(&cfg.baseline_ttl)
            .map_err(|e| invalid(format!("baseline_ttl: {e}")))?;
        let input = &setup.input;
        let mut reads = vec!["window_start", "window_end", "impressions", "ctr", "ecpm"];
        for c in &reads[..3] {
            input.require(c, INT_KINDS)?;
        }
        for c in &reads[3..] {
            input.require(c, &[adstream_sdk::ColumnKind::Float64])?;
        }
        for d in &cfg.group_by {
            input.require(d, STRING_KINDS)?;
            reads.push(d);
        }
        adstream_sdk::reads(&reads);
        let fields = alerts::fields(&cfg.group_by);
        let plugin = AnomalyEma {
            alpha: cfg.alpha,
            min_impressions: cfg.min_impressions,
            language: cfg.language,
            thresholds: cfg.thresholds,
            learn_from_anomalies: cfg.learn_from_anomalies,
            baselines: Baselines::new(ttl),
            group_by: cfg.group_by,
        };
        Ok((plugin, fields))
    }

    fn detect(&mut self, windows: &Batch) -> Result<Batch, PluginError> {
        let start = windows.i64s("window_start")?;
        let end = windows.i64s("window_end")?;
        let impressions = windows.i64s("impressions")?;
        let (ctr, ecpm) = (windows.f64s("ctr")?, windows.f64s("ecpm")?);
        let dims: Vec<_> = self
            .group_by
            .iter()
            .map(|d| windows.text(d))
            .collect::<Result<_, _>>()?;
        let mut out = AlertRows::new(self.group_by.len());
        let mut skipped = 0;
        for row in 0..windows.len() {
            let n = impressions.value(row);
            if n < self.min_impressions {
                skipped += 1;
                continue;
            }
            let current = Baseline {
                ctr: ctr.get(row).unwrap_or(0.0),
                impressions: n as f64,
                ecpm: ecpm.get(row).unwrap_or(0.0),
                updated_at: end.value(row),
            };
            let values: Vec<&str> = dims.iter().map(|d| d.value(row)).collect();
            let (learn, t) = (self.learn_from_anomalies, self.thresholds);
            let fires = |avg: &Baseline| {
                RULES
                    .iter()
                    .zip(Self::readings(&current, avg))
                    .filter(move |(r, x)| r.fires(*x, &t))
            };
            let keep = |avg: &Baseline| !learn && fires(avg).next().is_some();
            let Some(avg) = self.baselines.observe(&values, current, self.alpha, keep) else {
                continue;
            };
            for (rule, reading) in fires(&avg) {
                let window = (start.value(row), end.value(row));
                out.push(*rule, &values, window, reading, self.language);
            }
        }
        if skipped > 0 {
            count("below_min_impressions", skipped);
        }
        if !out.is_empty() {
            count("alerts", out.len() as u64);
        }
        out.finish(&self.group_by)
    }

    fn snapshot(&self) -> Result<Vec<u8>, PluginError> {
        self.baselines.snapshot(&self.group_by)
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), PluginError> {
        self.baselines.restore(state, &self.group_by)
    }
}

export_detect!(AnomalyEma);

#[cfg(test)]
mod tests;
