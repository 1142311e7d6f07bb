//! Field labels in Korean (the seed's) and English.

use serde::Deserialize;

/// Label language.
#[derive(Deserialize, Clone, Copy, Default, PartialEq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    Ko,
    En,
}

pub struct Labels {
    pub title: &'static str,
    pub metric: &'static str,
    pub severity: &'static str,
    pub current: &'static str,
    pub expected: &'static str,
    pub change: &'static str,
    pub time: &'static str,
    country: &'static str,
    ad_format: &'static str,
}

impl Labels {
    pub fn new(lang: Language) -> Self {
        match lang {
            Language::Ko => Labels {
                title: "AdTech 이상 탐지",
                metric: "메트릭",
                severity: "심각도",
                current: "현재 값",
                expected: "예상 값",
                change: "변화율",
                time: "발생 시간",
                country: "국가",
                ad_format: "광고 포맷",
            },
            Language::En => Labels {
                title: "AdTech anomaly detected",
                metric: "Metric",
                severity: "Severity",
                current: "Current value",
                expected: "Expected value",
                change: "Change",
                time: "Time",
                country: "Country",
                ad_format: "Ad format",
            },
        }
    }

    /// The label of a dimension column; columns other than the seed's two show their name.
    pub fn dim<'a>(&self, column: &'a str) -> &'a str {
        match column {
            "country" => self.country,
            "ad_format" => self.ad_format,
            other => other,
        }
    }
}
