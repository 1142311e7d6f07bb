//! What a window accumulates, and the ratios derived from it. Ratios are never summed:
//! partial windows merge by adding their sums, and ratios are computed last.

use serde::{Deserialize, Serialize};

/// The additive measures of one window and group.
#[derive(Default, Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sums {
    pub requests: i64,
    pub fills: i64,
    pub impressions: i64,
    pub clicks: i64,
    pub conversions: i64,
    pub revenue: f64,
    pub cost: f64,
}

/// The measures derived from [`Sums`]; `None` where the denominator is zero.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ratios {
    pub ctr: Option<f64>,
    pub cvr: Option<f64>,
    pub ecpm: Option<f64>,
    pub cpm: Option<f64>,
    pub cpc: Option<f64>,
    pub fill_rate: Option<f64>,
}

fn ratio(num: f64, den: i64, scale: f64) -> Option<f64> {
    (den > 0).then(|| num / den as f64 * scale)
}

impl Sums {
    /// Adds another partial window of the same group.
    pub fn merge(&mut self, other: &Sums) {
        self.requests += other.requests;
        self.fills += other.fills;
        self.impressions += other.impressions;
        self.clicks += other.clicks;
        self.conversions += other.conversions;
        self.revenue += other.revenue;
        self.cost += other.cost;
    }

    /// CTR = clicks / impressions, CVR = conversions / clicks, eCPM = revenue /
    /// impressions × 1000, CPM = cost / impressions × 1000, CPC = cost / clicks,
    /// fill rate = fills / requests.
    pub fn ratios(&self) -> Ratios {
        Ratios {
            ctr: ratio(self.clicks as f64, self.impressions, 1.0),
            cvr: ratio(self.conversions as f64, self.clicks, 1.0),
            ecpm: ratio(self.revenue, self.impressions, 1000.0),
            cpm: ratio(self.cost, self.impressions, 1000.0),
            cpc: ratio(self.cost, self.clicks, 1.0),
            fill_rate: ratio(self.fills as f64, self.requests, 1.0),
        }
    }
}
