//! `[source] kind = "generator"`: rate, seed, traffic profile and anomaly scenarios.

use crate::config::units::Duration;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::num::NonZeroUsize;

/// `[source] kind = "generator"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorConfig {
    pub kind: String,
    /// Events per second of event time (and of wall time when `pace` is on).
    #[serde(default = "default_rate")]
    pub rate: f64,
    /// Follow the wall clock; off generates as fast as possible.
    #[serde(default = "yes")]
    pub pace: bool,
    /// With `pace`, how many times faster than the wall clock event time runs (e.g. 10:
    /// a minute of traffic in six seconds).
    #[serde(default = "one")]
    pub speed: f64,
    /// Stop after this many events.
    pub count: Option<u64>,
    /// Event time of the first event (ms since the epoch); default now.
    pub start: Option<i64>,
    /// Round the start down to a multiple of this (e.g. "10s"), so that the first window
    /// is a full one.
    pub align: Option<Duration>,
    #[serde(default = "default_seed")]
    pub seed: u64,
    #[serde(default = "default_batch")]
    pub batch_size: NonZeroUsize,
    #[serde(default = "default_flush")]
    pub flush_interval: Duration,
    /// Traffic share and eCPM multiplier per country.
    pub countries: Option<BTreeMap<String, CountryProfile>>,
    /// Traffic share, CTR, eCPM and fill rate per ad format.
    pub formats: Option<BTreeMap<String, FormatProfile>>,
    /// Traffic share per ad network.
    pub networks: Option<BTreeMap<String, f64>>,
    /// Overrides for single country × format segments.
    #[serde(default)]
    pub segment: Vec<SegmentOverride>,
    /// Anomalies to inject.
    #[serde(default)]
    pub scenario: Vec<ScenarioConfig>,
    /// Share of events written broken (truncated JSON, a missing field, a negative
    /// revenue, an unknown event type), as ad servers sometimes do.
    #[serde(default)]
    pub malformed_rate: f64,
    /// Share of events stamped two minutes in the past, as a device that was offline.
    #[serde(default)]
    pub late_rate: f64,
    /// Shop events (seed 000's e-commerce system) instead of ad events.
    pub shop: Option<super::shop::ShopConfig>,
}

fn default_rate() -> f64 {
    1000.0
}
fn yes() -> bool {
    true
}
fn default_seed() -> u64 {
    42
}
fn default_batch() -> NonZeroUsize {
    NonZeroUsize::new(1000).expect("not zero")
}
fn default_flush() -> Duration {
    Duration::from_millis(100)
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountryProfile {
    pub weight: f64,
    #[serde(default = "one")]
    pub ecpm: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatProfile {
    pub weight: f64,
    pub ctr: f64,
    /// eCPM in USD before the country multiplier.
    pub ecpm: f64,
    pub fill_rate: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentOverride {
    pub country: String,
    pub ad_format: String,
    pub ctr: Option<f64>,
    pub ecpm: Option<f64>,
    pub weight: Option<f64>,
}

/// The four seed anomalies.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioKind {
    CtrDrop,
    CtrSpike,
    TrafficSpike,
    EcpmDrop,
}

impl ScenarioKind {
    /// The multiplier used when the scenario names none.
    pub fn default_factor(self) -> f64 {
        match self {
            ScenarioKind::CtrDrop => 0.4,
            ScenarioKind::CtrSpike => 4.0,
            ScenarioKind::TrafficSpike => 4.0,
            ScenarioKind::EcpmDrop => 0.3,
        }
    }
}

/// `[[source.scenario]]`: multiply one segment's CTR, traffic or eCPM for a while.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioConfig {
    pub kind: ScenarioKind,
    /// Event time after the start when it begins, e.g. "20s".
    pub at: Duration,
    #[serde(default = "default_duration")]
    pub duration: Duration,
    pub country: String,
    pub ad_format: String,
    pub factor: Option<f64>,
}

fn default_duration() -> Duration {
    Duration::from_secs(10)
}
