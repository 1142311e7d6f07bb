use super::*;
use crate::batch::{Position, RawBatch};
use crate::config::parse;
use proptest::prelude::*;

fn decoder() -> Decoder {
    let text = r#"
[source]
kind = "generator"
[schema]
event_time = { type = "timestamp_ms", required = true }
country = "dict"
user_id = "string"
revenue = "f64"
clicks = "i64"
bot = "bool"
items = "json"
"#;
    let cfg = parse(std::path::Path::new("t.toml"), text).unwrap();
    Decoder::new(&cfg.schema, "event_time", Some(3_600_000))
}

fn raw(lines: &[&str]) -> RawBatch {
    let mut b = RawBatch::default();
    for (i, l) in lines.iter().enumerate() {
        b.push(
            l.as_bytes(),
            Position {
                partition: 0,
                offset: i as i64,
            },
        );
    }
    b
}

#[test]
fn decodes_typed_columns_with_nulls() {
    let d = decoder().decode(&raw(&[
        r#"{"event_time": 5, "country": "US", "user_id": "a", "revenue": 1, "clicks": 2, "bot": true, "extra": [1, {"x": 2}]}"#,
        r#"{"event_time": 9, "country": "KR", "revenue": 0.5}"#,
        r#"{"event_time": 7, "coun\u0074ry": "US", "user_id": null}"#,
    ]));
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    let b = &d.batch;
    assert_eq!(b.rows, 3);
    assert_eq!(d.max_time, Some(9));
    let c = b.text("country").unwrap();
    assert_eq!(
        (c.get(0), c.get(1), c.get(2)),
        (Some("US"), Some("KR"), Some("US"))
    );
    assert_eq!(c.key(0), c.key(2), "dictionary-encoded");
    assert_eq!(b.text("user_id").unwrap().get(1), None);
    assert_eq!(
        b.f64s("revenue").unwrap().get(0),
        Some(1.0),
        "integers widen to f64"
    );
    assert_eq!(b.i64s("clicks").unwrap().get(1), None);
    assert_eq!(b.bools("bot").unwrap().get(0), Some(1));
}

#[test]
fn json_fields_keep_their_value_as_compact_json() {
    let d = decoder().decode(&raw(&[
        r#"{"event_time": 1, "items": [ {"p": "a", "q": 2}, {"p": "b\"", "q": 1.5} ]}"#,
        r#"{"event_time": 2, "items": "x"}"#,
        r#"{"event_time": 3, "items": null}"#,
        r#"{"event_time": 4}"#,
    ]));
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    let items = d.batch.text("items").unwrap();
    assert_eq!(
        items.get(0),
        Some(r#"[{"p":"a","q":2},{"p":"b\"","q":1.5}]"#)
    );
    assert_eq!(items.get(1), Some(r#""x""#));
    assert_eq!((items.get(2), items.get(3)), (None, None));
}

#[test]
fn bad_records_are_rejected_with_a_reason_and_the_rest_decodes() {
    let lines = [
        r#"{"event_time": 1, "country": "US"}"#,
        r#"{"event_time": 2, "country": "US""#,
        r#"{"country": "US"}"#,
        r#"{"event_time": 3, "revenue": "1.5"}"#,
        r#"{"event_time": 4, "clicks": 1.5}"#,
        r#"{"event_time": 5, "country": "US", "country": "KR"}"#,
        r#"[1, 2]"#,
        r#"{"event_time": 6} trailing"#,
        r#"{"event_time": null}"#,
        r#"{"event_time": 18446744073709551615}"#,
        r#"{"event_time": 8, "country": {"code": "US"}}"#,
        r#"{"event_time": 9, "country": "JP"}"#,
    ];
    let d = decoder().decode(&raw(&lines));
    assert_eq!(d.records, vec![0, 11]);
    let reasons: Vec<(u32, &str)> = d.rejected.iter().map(|(i, r)| (*i, r.as_str())).collect();
    let expect = [
        (1, "EOF while parsing"),
        (2, "missing required field `event_time`"),
        (3, "field `revenue`: expected a number, got string \"1.5\""),
        (
            4,
            "field `clicks`: expected an integer, got floating point `1.5`",
        ),
        (5, "field `country` appears twice"),
        (6, "expected a JSON object"),
        (7, "trailing characters"),
        (8, "required field `event_time` is null"),
        (9, "out of range"),
        (10, "field `country`: expected a string, got map"),
    ];
    assert_eq!(reasons.len(), expect.len(), "{reasons:?}");
    for ((i, r), (ei, e)) in reasons.iter().zip(expect) {
        assert_eq!(*i, ei);
        assert!(r.contains(e), "record {i}: `{r}` lacks `{e}`");
    }
    let c = d.batch.text("country").unwrap();
    assert_eq!(
        (c.get(0), c.get(1)),
        (Some("US"), Some("JP")),
        "rolled-back rows leave no trace"
    );
    assert_eq!(
        d.batch.columns.iter().map(|c| c.len()).collect::<Vec<_>>(),
        vec![2; 7]
    );
}

proptest! {
    /// Whatever the bytes, every record is either a row or a rejection: nothing is lost.
    #[test]
    fn every_record_is_a_row_or_a_rejection(records in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..60), 0..40), valid in 0usize..40) {
        let mut b = RawBatch::default();
        for r in &records {
            b.push(r, Position::default());
        }
        for i in 0..valid {
            b.push(format!(r#"{{"event_time": {i}, "country": "C{}"}}"#, i % 3).as_bytes(), Position::default());
        }
        let d = decoder().decode(&b);
        prop_assert_eq!(d.records.len() + d.rejected.len(), records.len() + valid);
        prop_assert!(d.records.len() >= valid);
        prop_assert_eq!(d.batch.rows as usize, d.records.len());
        for c in &d.batch.columns {
            prop_assert_eq!(c.len(), d.records.len());
        }
    }
}
