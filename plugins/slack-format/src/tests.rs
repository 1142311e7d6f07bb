use super::*;
use adstream_sdk::{ColumnKind, DictBuilder, F64Builder, TextBuilder};

fn alerts(message: &str) -> (Setup, Batch) {
    let texts = [
        ("alert_id", "712b0e22-0b84-4e86-b21c-77789d187cc6"),
        ("alert_time", "2025-12-18T02:58:00Z"),
        ("alert_type", "ctr_drop"),
        ("severity", "high"),
        ("country", "UK"),
        ("ad_format", "banner"),
        ("metric_name", "CTR"),
        ("message", message),
    ];
    let mut columns = Vec::new();
    let mut input = Vec::new();
    for (name, value) in texts {
        if name == "message" || name == "alert_id" {
            let mut b = TextBuilder::default();
            b.push(value);
            columns.push(b.finish(name));
            input.push(field(name, ColumnKind::Text, false));
        } else {
            let mut b = DictBuilder::default();
            b.push(value);
            columns.push(b.finish(name));
            input.push(field(name, ColumnKind::Dictionary, false));
        }
    }
    for (name, v) in [
        ("current_value", 0.0),
        ("expected_value", 5.7),
        ("deviation_percent", -100.0),
    ] {
        let mut b = F64Builder::default();
        b.push(v);
        columns.push(b.finish(name));
        input.push(field(name, ColumnKind::Float64, false));
    }
    let setup = Setup {
        config: String::new(),
        input,
        secrets: vec![],
    };
    (setup, Batch::from_columns(columns).unwrap())
}

#[test]
fn payload_follows_the_seed_layout() {
    let (setup, batch) = alerts("🚨 CTR 급락! UK banner: 5.70% → 0.00% (-100.0%)");
    let (mut f, fields) = SlackFormat::configure(&setup).unwrap();
    assert_eq!(fields.last().unwrap().name, "payload");
    let out = f.format(&batch).unwrap();
    assert_eq!(
        out.text("country").unwrap().value(0),
        "UK",
        "input columns pass through"
    );
    let p: Value = serde_json::from_str(out.text("payload").unwrap().value(0)).unwrap();
    assert_eq!(p["text"], "🚨 AdTech 이상 탐지");
    assert_eq!(p["blocks"][0]["type"], "header");
    assert_eq!(
        p["blocks"][0]["text"]["text"],
        "🚨 🚨 CTR 급락! UK banner: 5.70% → 0.00% (-100.0%)"
    );
    let f: Vec<&str> = p["blocks"][1]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        f,
        [
            "*국가:*\nUK",
            "*광고 포맷:*\nbanner",
            "*메트릭:*\nCTR",
            "*심각도:*\nHIGH",
            "*현재 값:*\n0.00",
            "*예상 값:*\n5.70",
            "*변화율:*\n-100.0%",
            "*발생 시간:*\n2025-12-18T02:58:00Z",
        ]
    );
    assert_eq!(
        p["blocks"][2]["elements"][0]["text"],
        "Alert ID: 712b0e22-0b84-4e86-b21c-77789d187cc6 | Type: ctr_drop"
    );
}

#[test]
fn english_labels_and_long_headers() {
    let (mut setup, batch) = alerts(&"x\"y".repeat(100));
    setup.config = r#"{"language": "en"}"#.into();
    let (mut f, _) = SlackFormat::configure(&setup).unwrap();
    let out = f.format(&batch).unwrap();
    let p: Value = serde_json::from_str(out.text("payload").unwrap().value(0)).unwrap();
    assert_eq!(p["blocks"][1]["fields"][0]["text"], "*Country:*\nUK");
    let header = p["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(
        header.chars().count() <= HEADER_MAX_CHARS,
        "{}",
        header.chars().count()
    );
    assert!(header.ends_with('…'));
}

#[test]
fn missing_alert_columns_are_a_schema_error() {
    let (mut setup, _) = alerts("m");
    setup.input.retain(|f| f.name != "severity");
    let err = SlackFormat::configure(&setup).err().unwrap().describe();
    assert!(err.contains("no column `severity`"), "{err}");
}

#[test]
fn a_title_and_no_dims_suit_other_alerts() {
    let (mut setup, batch) = alerts("payment_failure_spike: failure_rate is 0.2");
    setup.config = r#"{"language": "en", "dims": [], "title": "Shop anomaly detected"}"#.into();
    let (mut f, _) = SlackFormat::configure(&setup).unwrap();
    let out = f.format(&batch).unwrap();
    let payload: Value = serde_json::from_str(out.text("payload").unwrap().value(0)).unwrap();
    assert_eq!(payload["text"], "🚨 Shop anomaly detected");
    let fields = payload["blocks"][1]["fields"].as_array().unwrap();
    assert!(
        fields[0]["text"].as_str().unwrap().starts_with("*Metric:*"),
        "{fields:?}"
    );
}
