//! The four rules of seed 001, their severities and their messages.

use serde::Deserialize;

/// Which rule fired.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AlertType {
    CtrDrop,
    CtrSpike,
    TrafficSpike,
    EcpmDrop,
}

/// Message language.
#[derive(Deserialize, Clone, Copy, Default, PartialEq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    Ko,
    En,
}

/// Thresholds, as multiples of the baseline.
#[derive(Deserialize, Clone, Copy, Debug)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    pub ctr_drop: f64,
    pub ctr_spike: f64,
    pub traffic_spike: f64,
    pub ecpm_drop: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            ctr_drop: 0.5,
            ctr_spike: 2.0,
            traffic_spike: 3.0,
            ecpm_drop: 0.5,
        }
    }
}

/// The values a rule compares: current window and baseline, in display units
/// (CTR in percent, impressions as a count, eCPM in USD).
#[derive(Clone, Copy, Debug)]
pub struct Reading {
    pub current: f64,
    pub expected: f64,
}

impl Reading {
    /// Change from the baseline in percent.
    pub fn deviation_percent(&self) -> f64 {
        (self.current - self.expected) / self.expected * 100.0
    }
}

impl AlertType {
    pub fn name(self) -> &'static str {
        match self {
            AlertType::CtrDrop => "ctr_drop",
            AlertType::CtrSpike => "ctr_spike",
            AlertType::TrafficSpike => "traffic_spike",
            AlertType::EcpmDrop => "ecpm_drop",
        }
    }

    pub fn metric_name(self) -> &'static str {
        match self {
            AlertType::CtrDrop | AlertType::CtrSpike => "CTR",
            AlertType::TrafficSpike => "impressions",
            AlertType::EcpmDrop => "eCPM",
        }
    }

    /// Whether `r` breaks this rule under `t`. A zero baseline never fires: there is no
    /// "half of nothing".
    pub fn fires(self, r: Reading, t: &Thresholds) -> bool {
        if r.expected <= 0.0 {
            return false;
        }
        match self {
            AlertType::CtrDrop => r.current < r.expected * t.ctr_drop,
            AlertType::CtrSpike => r.current > r.expected * t.ctr_spike,
            AlertType::TrafficSpike => r.current > r.expected * t.traffic_spike,
            AlertType::EcpmDrop => r.current < r.expected * t.ecpm_drop,
        }
    }

    /// Seed 001 defines ctr_drop: high below −70 %, else medium. The seed is silent on the
    /// others; we grade them the same way by how far past the threshold they are.
    pub fn severity(self, deviation: f64) -> &'static str {
        match self {
            AlertType::CtrDrop | AlertType::EcpmDrop if deviation < -70.0 => "high",
            AlertType::CtrDrop | AlertType::EcpmDrop => "medium",
            AlertType::CtrSpike if deviation > 200.0 => "high",
            AlertType::CtrSpike => "medium",
            AlertType::TrafficSpike if deviation > 900.0 => "critical",
            AlertType::TrafficSpike => "high",
        }
    }

    /// The message, in the seed's format, e.g.
    /// `🚨 CTR 급락! US banner: 5.00% → 2.00% (-60.0%)`.
    pub fn message(self, lang: Language, dims: &str, r: Reading, deviation: f64) -> String {
        let (e, c) = (r.expected, r.current);
        let (head, values) = match (self, lang) {
            (AlertType::CtrDrop, Language::Ko) => ("🚨 CTR 급락!", format!("{e:.2}% → {c:.2}%")),
            (AlertType::CtrDrop, Language::En) => ("🚨 CTR drop!", format!("{e:.2}% → {c:.2}%")),
            (AlertType::CtrSpike, Language::Ko) => {
                ("🤖 CTR 급등 (봇 의심)!", format!("{e:.2}% → {c:.2}%"))
            }
            (AlertType::CtrSpike, Language::En) => (
                "🤖 CTR spike (possible bots)!",
                format!("{e:.2}% → {c:.2}%"),
            ),
            (AlertType::TrafficSpike, Language::Ko) => {
                ("📈 트래픽 급증!", format!("{e:.0} → {c:.0}"))
            }
            (AlertType::TrafficSpike, Language::En) => {
                ("📈 Traffic spike!", format!("{e:.0} → {c:.0}"))
            }
            (AlertType::EcpmDrop, Language::Ko) => ("💸 수익 급락!", format!("${e:.2} → ${c:.2}")),
            (AlertType::EcpmDrop, Language::En) => ("💸 eCPM drop!", format!("${e:.2} → ${c:.2}")),
        };
        format!("{head} {dims}: {values} ({deviation:+.1}%)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_the_seed() {
        let r = Reading {
            current: 2.0,
            expected: 5.0,
        };
        let msg = AlertType::CtrDrop.message(Language::Ko, "US banner", r, r.deviation_percent());
        assert_eq!(msg, "🚨 CTR 급락! US banner: 5.00% → 2.00% (-60.0%)");
        let r = Reading {
            current: 114.0,
            expected: 31.0,
        };
        let msg = AlertType::TrafficSpike.message(
            Language::Ko,
            "JP interstitial",
            r,
            r.deviation_percent(),
        );
        assert_eq!(msg, "📈 트래픽 급증! JP interstitial: 31 → 114 (+267.7%)");
    }

    #[test]
    fn thresholds_and_severity() {
        let t = Thresholds::default();
        let r = |current, expected| Reading { current, expected };
        assert!(AlertType::CtrDrop.fires(r(2.0, 5.0), &t));
        assert!(!AlertType::CtrDrop.fires(r(2.6, 5.0), &t));
        assert!(AlertType::CtrSpike.fires(r(10.1, 5.0), &t));
        assert!(AlertType::TrafficSpike.fires(r(301.0, 100.0), &t));
        assert!(!AlertType::TrafficSpike.fires(r(299.0, 100.0), &t));
        assert!(AlertType::EcpmDrop.fires(r(0.9, 2.0), &t));
        assert!(
            !AlertType::EcpmDrop.fires(r(0.9, 0.0), &t),
            "zero baseline never fires"
        );
        assert_eq!(AlertType::CtrDrop.severity(-60.0), "medium");
        assert_eq!(AlertType::CtrDrop.severity(-80.0), "high");
        assert_eq!(AlertType::TrafficSpike.severity(950.0), "critical");
    }
}
