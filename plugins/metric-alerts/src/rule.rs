//! One rule: which rows it reads, what it compares, and when it fires.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The alert's type, e.g. `payment_failure_spike`.
    pub alert: String,
    /// The column compared.
    pub metric: String,
    /// Fires when the value is above this.
    pub above: Option<f64>,
    /// Fires when the value is below this.
    pub below: Option<f64>,
    /// Fires when the value is below this share of its baseline (e.g. 0.5: halved).
    pub drop: Option<f64>,
    /// Fires when the value is above this multiple of its baseline (e.g. 3.0).
    pub spike: Option<f64>,
    /// Rows with less than this in a column are ignored (too little volume to judge).
    #[serde(default)]
    pub min: BTreeMap<String, f64>,
    /// Only rows whose column holds one of these values.
    #[serde(default, rename = "where")]
    pub only: BTreeMap<String, Vec<String>>,
    #[serde(default = "high")]
    pub severity: String,
}

fn high() -> String {
    "high".into()
}

/// What a rule compared a value with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verdict {
    pub expected: f64,
    pub fired: bool,
}

impl Rule {
    pub fn uses_baseline(&self) -> bool {
        self.drop.is_some() || self.spike.is_some()
    }

    pub fn check(&self) -> Result<(), String> {
        let set = [self.above, self.below, self.drop, self.spike]
            .iter()
            .flatten()
            .count();
        if set != 1 {
            return Err(format!(
                "rule `{}`: give exactly one of above, below, drop, spike",
                self.alert
            ));
        }
        Ok(())
    }

    /// The verdict on `value`, given the baseline (`None` before the first window).
    pub fn judge(&self, value: f64, baseline: Option<f64>) -> Option<Verdict> {
        let v = |expected: f64, fired: bool| Some(Verdict { expected, fired });
        match (self.above, self.below, self.drop, self.spike, baseline) {
            (Some(t), ..) => v(t, value > t),
            (_, Some(t), ..) => v(t, value < t),
            (_, _, Some(f), _, Some(b)) => v(b, value < f * b),
            (_, _, _, Some(f), Some(b)) => v(b, value > f * b),
            _ => None,
        }
    }
}
