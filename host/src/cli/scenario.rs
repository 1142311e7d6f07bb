//! `adstream generate --scenario`: an anomaly to inject, written on one line.

use crate::config::source::{ScenarioConfig, ShopScenarioConfig, ShopScenarioKind};
use crate::config::units::Duration as Span;
use anyhow::anyhow;

/// Parses `KIND@AT[+DURATION]:COUNTRY/FORMAT[*FACTOR]`.
pub fn parse_scenario(text: &str) -> anyhow::Result<ScenarioConfig> {
    let err = || {
        anyhow!(
            "scenario `{text}`: write KIND@AT[+DURATION]:COUNTRY/FORMAT[*FACTOR], e.g. ctr_drop@2m+1m:US/banner"
        )
    };
    let (kind, rest) = text.split_once('@').ok_or_else(err)?;
    let (when, rest) = rest.split_once(':').ok_or_else(err)?;
    let (at, duration) = when.split_once('+').unwrap_or((when, "10s"));
    let (segment, factor) = match rest.split_once('*') {
        Some((s, f)) => (s, Some(f.parse::<f64>().map_err(|_| err())?)),
        None => (rest, None),
    };
    let (country, ad_format) = segment.split_once('/').ok_or_else(err)?;
    let kind = serde_json::from_value(serde_json::Value::String(kind.to_string()))
        .map_err(|_| anyhow!("scenario `{text}`: unknown kind `{kind}` (ctr_drop, ctr_spike, traffic_spike, ecpm_drop)"))?;
    let span = |t: &str| {
        t.parse::<Span>()
            .map_err(|e| anyhow!("scenario `{text}`: {e}"))
    };
    Ok(ScenarioConfig {
        kind,
        at: span(at)?,
        duration: span(duration)?,
        country: country.to_string(),
        ad_format: ad_format.to_string(),
        factor,
    })
}

/// Parses `KIND@AT[+DURATION][:TARGET][*FACTOR]`, a shop's anomaly.
pub fn parse_shop_scenario(text: &str) -> anyhow::Result<ShopScenarioConfig> {
    let err = || {
        anyhow!(
            "scenario `{text}`: write KIND@AT[+DURATION][:TARGET][*FACTOR], e.g. payment_outage@2m+1m:paypal*0.8"
        )
    };
    let (kind, rest) = text.split_once('@').ok_or_else(err)?;
    let (rest, factor) = match rest.split_once('*') {
        Some((r, f)) => (r, Some(f.parse::<f64>().map_err(|_| err())?)),
        None => (rest, None),
    };
    let (when, target) = match rest.split_once(':') {
        Some((w, t)) => (w, Some(t.to_string())),
        None => (rest, None),
    };
    let (at, duration) = when.split_once('+').unwrap_or((when, "1m"));
    let kind: ShopScenarioKind =
        serde_json::from_value(serde_json::Value::String(kind.to_string())).map_err(|_| {
            anyhow!(
                "scenario `{text}`: unknown kind `{kind}` ({})",
                ShopScenarioKind::NAMES
            )
        })?;
    let span = |t: &str| {
        t.parse::<Span>()
            .map_err(|e| anyhow!("scenario `{text}`: {e}"))
    };
    Ok(ShopScenarioConfig {
        kind,
        at: span(at)?,
        duration: span(duration)?,
        target,
        factor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shop_scenarios_read_with_and_without_their_options() {
        let s = parse_shop_scenario("payment_outage@2m+30s:paypal*0.8").unwrap();
        assert_eq!(
            (s.kind, s.target.as_deref(), s.factor),
            (ShopScenarioKind::PaymentOutage, Some("paypal"), Some(0.8))
        );
        assert_eq!(
            (s.at.as_millis_i64(), s.duration.as_millis_i64()),
            (120_000, 30_000)
        );
        let s = parse_shop_scenario("price_bug@5m").unwrap();
        assert_eq!(
            (s.target, s.factor, s.duration.as_millis_i64()),
            (None, None, 60_000)
        );
        let e = parse_shop_scenario("ctr_drop@5m").unwrap_err().to_string();
        assert!(e.contains("unknown kind `ctr_drop` (viral_product,"), "{e}");
    }
}
