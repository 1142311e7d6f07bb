use super::*;
use adstream_sdk::ColumnKind::Int64;

fn setup(config: &str) -> Setup {
    Setup {
        config: config.into(),
        input: vec![
            field("window_start", TimestampMs, false),
            field("window_end", TimestampMs, false),
            field("method", Dictionary, false),
            field("attempts", Int64, false),
            field("failure_rate", Float64, true),
            field("revenue", Float64, false),
        ],
        secrets: vec![],
    }
}

/// Window rows: (minute, method, attempts, failure rate, revenue).
fn windows(rows: &[(i64, &str, i64, f64, f64)]) -> Batch {
    let (mut s, mut e, mut m) = (
        I64Builder::default(),
        I64Builder::default(),
        DictBuilder::default(),
    );
    let (mut a, mut f, mut r) = (
        I64Builder::default(),
        F64Builder::default(),
        F64Builder::default(),
    );
    for row in rows {
        s.push(row.0 * 60_000);
        e.push(row.0 * 60_000 + 60_000);
        m.push(row.1);
        a.push(row.2);
        f.push(row.3);
        r.push(row.4);
    }
    Batch::from_columns(vec![
        s.finish_timestamp("window_start"),
        e.finish_timestamp("window_end"),
        m.finish("method"),
        a.finish("attempts"),
        f.finish("failure_rate"),
        r.finish("revenue"),
    ])
    .unwrap()
}

fn fired(out: &Batch) -> Vec<(String, i64, f64)> {
    let (kind, start, expected) = (
        out.text("alert_type").unwrap(),
        out.i64s("window_start").unwrap(),
        out.f64s("expected_value").unwrap(),
    );
    (0..out.len())
        .map(|r| {
            (
                kind.value(r).to_string(),
                start.value(r) / 60_000,
                expected.value(r),
            )
        })
        .collect()
}

const RULES: &str = r#"{"alpha": 0.5, "rules": [
    {"alert": "failures", "metric": "failure_rate", "above": 0.15, "min": {"attempts": 50}, "where": {"method": ["all"]}},
    {"alert": "revenue_drop", "metric": "revenue", "drop": 0.5}
]}"#;

#[test]
fn thresholds_and_baselines_fire_where_they_should() {
    let (mut p, fields) = MetricAlerts::configure(&setup(RULES)).unwrap();
    assert_eq!(fields[2].name, "alert_type");
    let out = p
        .detect(&windows(&[
            (0, "all", 100, 0.03, 100.0),
            (1, "all", 100, 0.30, 120.0), // failures fire; baseline 110 after
            (2, "all", 10, 0.90, 50.0),   // too few attempts; 50 < 55 fires, baseline stays
            (3, "card", 100, 0.90, 60.0), // not `all`; 60 ≥ 55, baseline 85
            (4, "all", 100, 0.03, 42.0),  // 42 < 42.5 fires
        ]))
        .unwrap();
    assert_eq!(
        fired(&out),
        vec![
            ("failures".into(), 1, 0.15),
            ("revenue_drop".into(), 2, 110.0),
            ("revenue_drop".into(), 4, 85.0)
        ]
    );
    let message = out.text("message").unwrap().value(0).to_string();
    assert!(
        message.starts_with("failures: failure_rate is 0.3000 against 0.1500 (+100.0%)"),
        "{message}"
    );
    let again = MetricAlerts::configure(&setup(RULES))
        .unwrap()
        .0
        .detect(&windows(&[
            (0, "all", 100, 0.03, 100.0),
            (1, "all", 100, 0.30, 120.0),
        ]))
        .unwrap();
    assert_eq!(
        again.text("alert_id").unwrap().value(0),
        out.text("alert_id").unwrap().value(0),
        "ids are stable"
    );
}

#[test]
fn a_restored_baseline_continues_bit_exactly() {
    let (mut a, _) = MetricAlerts::configure(&setup(RULES)).unwrap();
    a.detect(&windows(&[
        (0, "all", 100, 0.03, 100.1),
        (1, "all", 100, 0.03, 77.7),
    ]))
    .unwrap();
    let (mut b, _) = MetricAlerts::configure(&setup(RULES)).unwrap();
    b.restore(&a.snapshot().unwrap()).unwrap();
    assert_eq!(a.baselines, b.baselines);
    assert!(b.restore(b"\xff\xff\xff").is_err());
}

#[test]
fn config_mistakes_are_named() {
    let err = |c: &str| MetricAlerts::configure(&setup(c)).err().unwrap().describe();
    assert!(
        err(r#"{"rules": [{"alert": "x", "metric": "revenue"}]}"#)
            .contains("exactly one of above, below, drop, spike")
    );
    assert!(
        err(r#"{"rules": [{"alert": "x", "metric": "profit", "above": 1}]}"#)
            .contains("no column `profit`")
    );
    assert!(err(r#"{"rules": [], "alpha": 0}"#).contains("alpha = 0"));
}
