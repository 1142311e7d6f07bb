use super::*;
use adstream_sdk::{ColumnKind, DictBuilder, F64Builder, I64Builder, field};

fn setup(config: &str) -> Setup {
    let mut input = vec![
        field("window_start", ColumnKind::TimestampMs, false),
        field("window_end", ColumnKind::TimestampMs, false),
        field("country", ColumnKind::Dictionary, false),
        field("ad_format", ColumnKind::Dictionary, false),
        field("impressions", ColumnKind::Int64, false),
    ];
    input.push(field("ctr", ColumnKind::Float64, true));
    input.push(field("ecpm", ColumnKind::Float64, true));
    Setup {
        config: config.to_string(),
        input,
        secrets: vec![],
    }
}

/// One window row: (window index, country, format, impressions, ctr, ecpm).
type W = (i64, &'static str, &'static str, i64, f64, f64);

fn windows(rows: &[W]) -> Batch {
    let (mut s, mut e, mut n) = (
        I64Builder::default(),
        I64Builder::default(),
        I64Builder::default(),
    );
    let (mut c, mut f) = (DictBuilder::default(), DictBuilder::default());
    let (mut ctr, mut ecpm) = (F64Builder::default(), F64Builder::default());
    for &(w, country, format, imps, r, m) in rows {
        s.push(w * 60_000);
        e.push((w + 1) * 60_000);
        c.push(country);
        f.push(format);
        n.push(imps);
        ctr.push(r);
        ecpm.push(m);
    }
    Batch::from_columns(vec![
        s.finish_timestamp("window_start"),
        e.finish_timestamp("window_end"),
        c.finish("country"),
        f.finish("ad_format"),
        n.finish("impressions"),
        ctr.finish("ctr"),
        ecpm.finish("ecpm"),
    ])
    .unwrap()
}

fn detector() -> AnomalyEma {
    AnomalyEma::configure(&setup(r#"{"min_impressions": 100}"#))
        .unwrap()
        .0
}

fn types(alerts: &Batch) -> Vec<String> {
    let t = alerts.text("alert_type").unwrap();
    (0..alerts.len()).map(|r| t.value(r).to_string()).collect()
}

#[test]
fn each_seed_rule_fires_on_its_scenario() {
    let mut d = detector();
    assert!(
        d.detect(&windows(&[(0, "US", "banner", 1000, 0.05, 2.0)]))
            .unwrap()
            .is_empty()
    );
    let cases: [(W, &str); 4] = [
        ((1, "US", "banner", 1000, 0.02, 2.0), "ctr_drop"),
        ((1, "UK", "banner", 1000, 0.12, 2.0), "ctr_spike"),
        ((1, "JP", "interstitial", 4000, 0.05, 2.0), "traffic_spike"),
        ((1, "KR", "native", 1000, 0.05, 0.6), "ecpm_drop"),
    ];
    for ((_, c, f, ..), _) in &cases {
        d.detect(&windows(&[(0, c, f, 1000, 0.05, 2.0)])).unwrap();
    }
    for (w, want) in cases {
        let alerts = d.detect(&windows(&[w])).unwrap();
        assert_eq!(types(&alerts), vec![want.to_string()], "{w:?}");
    }
}

#[test]
fn alert_carries_the_seed_fields() {
    let mut d = detector();
    d.detect(&windows(&[(0, "US", "banner", 1000, 0.05, 2.0)]))
        .unwrap();
    let a = d
        .detect(&windows(&[(1, "US", "banner", 1000, 0.02, 2.0)]))
        .unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(
        a.text("message").unwrap().value(0),
        "🚨 CTR 급락! US banner: 5.00% → 2.00% (-60.0%)"
    );
    assert_eq!(a.text("severity").unwrap().value(0), "medium");
    assert_eq!(a.text("metric_name").unwrap().value(0), "CTR");
    assert_eq!(
        a.text("alert_time").unwrap().value(0),
        "1970-01-01T00:02:00Z"
    );
    assert_eq!(a.f64s("deviation_percent").unwrap().value(0), -60.0);
    assert!((a.f64s("expected_value").unwrap().value(0) - 5.0).abs() < 1e-9);
    let id = a.text("alert_id").unwrap().value(0).to_string();
    assert_eq!(id.len(), 36);
    // Replaying the same windows into a fresh detector gives the same id.
    let mut again = detector();
    again
        .detect(&windows(&[(0, "US", "banner", 1000, 0.05, 2.0)]))
        .unwrap();
    let b = again
        .detect(&windows(&[(1, "US", "banner", 1000, 0.02, 2.0)]))
        .unwrap();
    assert_eq!(b.text("alert_id").unwrap().value(0), id);
}

#[test]
fn ema_follows_the_seed_formula() {
    let mut d = AnomalyEma::configure(&setup(r#"{"learn_from_anomalies": true}"#))
        .unwrap()
        .0;
    // 5, 5, 20 → baseline 5.0 then 8.0; 10 % is not < 0.5 × 8.0 + ... (seed's lunch example)
    for (w, ctr) in [(0, 0.05), (1, 0.05), (2, 0.20)] {
        d.detect(&windows(&[(w, "US", "banner", 1000, ctr, 2.0)]))
            .unwrap();
    }
    let snap: serde_json::Value = serde_json::from_slice(&d.snapshot().unwrap()).unwrap();
    let avg = snap["baselines"][0][1]["ctr"].as_f64().unwrap();
    assert!((avg - 0.08).abs() < 1e-12, "{avg}");
}

#[test]
fn volume_guard_and_expiry() {
    let mut d = AnomalyEma::configure(&setup(r#"{"min_impressions": 500, "baseline_ttl": "2m"}"#))
        .unwrap()
        .0;
    d.detect(&windows(&[(0, "US", "banner", 1000, 0.05, 2.0)]))
        .unwrap();
    // Too small to judge: no alert even at 0 % CTR, and the baseline is untouched.
    assert!(
        d.detect(&windows(&[(1, "US", "banner", 3, 0.0, 2.0)]))
            .unwrap()
            .is_empty()
    );
    // Ten minutes later the baseline has expired: this window starts a new one.
    assert!(
        d.detect(&windows(&[(10, "US", "banner", 1000, 0.01, 2.0)]))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        types(
            &d.detect(&windows(&[(11, "US", "banner", 1000, 0.004, 2.0)]))
                .unwrap()
        ),
        ["ctr_drop"]
    );
}

#[test]
fn snapshot_restore_keeps_baselines_and_checks_grouping() {
    let mut d = detector();
    d.detect(&windows(&[(0, "US", "banner", 1000, 0.05, 2.0)]))
        .unwrap();
    let snap = d.snapshot().unwrap();
    let mut fresh = detector();
    fresh.restore(&snap).unwrap();
    assert_eq!(
        types(
            &fresh
                .detect(&windows(&[(1, "US", "banner", 1000, 0.02, 2.0)]))
                .unwrap()
        ),
        ["ctr_drop"]
    );
    let mut other = AnomalyEma::configure(&setup(r#"{"group_by": ["country"]}"#))
        .unwrap()
        .0;
    assert!(matches!(
        other.restore(&snap),
        Err(PluginError::InvalidState(_))
    ));
}

#[test]
fn english_messages_and_config_errors() {
    let mut d = AnomalyEma::configure(&setup(r#"{"language": "en"}"#))
        .unwrap()
        .0;
    d.detect(&windows(&[(0, "US", "banner", 1000, 0.05, 2.0)]))
        .unwrap();
    let a = d
        .detect(&windows(&[(1, "US", "banner", 1000, 0.05, 0.5)]))
        .unwrap();
    assert_eq!(
        a.text("message").unwrap().value(0),
        "💸 eCPM drop! US banner: $2.00 → $0.50 (-75.0%)"
    );
    for (cfg, want) in [
        (r#"{"alpha": 0}"#, "alpha"),
        (r#"{"language": "fr"}"#, "unknown variant"),
        (r#"{"group_by": ["nope"]}"#, "no column `nope`"),
    ] {
        let err = AnomalyEma::configure(&setup(cfg)).err().unwrap().describe();
        assert!(err.contains(want), "{cfg}: {err}");
    }
}

#[test]
fn an_alerting_window_does_not_move_the_baseline_unless_asked() {
    let spike_then_normal = |cfg: &str| {
        let mut d = AnomalyEma::configure(&setup(cfg)).unwrap().0;
        d.detect(&windows(&[(0, "UK", "banner", 1000, 0.02, 2.0)]))
            .unwrap();
        d.detect(&windows(&[(1, "UK", "banner", 1000, 0.08, 2.0)]))
            .unwrap();
        types(
            &d.detect(&windows(&[(2, "UK", "banner", 1000, 0.014, 2.0)]))
                .unwrap(),
        )
    };
    // Baseline stays 2 %: 1.4 % is not a drop.
    assert!(spike_then_normal("{}").is_empty());
    // Seed behaviour: baseline 0.8 × 2 + 0.2 × 8 = 3.2 %, and 1.4 % < 1.6 % is a drop.
    assert_eq!(
        spike_then_normal(r#"{"learn_from_anomalies": true}"#),
        ["ctr_drop"]
    );
}
