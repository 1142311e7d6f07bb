use super::*;
use adstream_sdk::{ColumnKind, DictBuilder, F64Builder, I64Builder, TextBuilder, field};

fn setup(rules: &str) -> Setup {
    Setup {
        config: format!(r#"{{"rules": {rules}}}"#),
        input: vec![
            field("event_id", ColumnKind::Text, false),
            field("event_type", ColumnKind::Dictionary, true),
            field("country", ColumnKind::Dictionary, true),
            field("revenue", ColumnKind::Float64, true),
            field("event_time", ColumnKind::TimestampMs, false),
        ],
        secrets: vec![],
    }
}

struct Row<'a>(&'a str, Option<&'a str>, Option<&'a str>, Option<f64>, i64);

fn batch(rows: &[Row]) -> Batch {
    let (mut id, mut ty, mut c) = (
        TextBuilder::default(),
        DictBuilder::default(),
        DictBuilder::default(),
    );
    let (mut rev, mut t) = (F64Builder::default(), I64Builder::default());
    for r in rows {
        id.push(r.0);
        ty.push_opt(r.1);
        c.push_opt(r.2);
        rev.push_opt(r.3);
        t.push(r.4);
    }
    Batch::from_columns(vec![
        id.finish("event_id"),
        ty.finish("event_type"),
        c.finish("country"),
        rev.finish("revenue"),
        t.finish_timestamp("event_time"),
    ])
    .unwrap()
}

fn rejected(q: &mut Quality, b: &Batch, watermark: i64) -> Vec<(u32, String)> {
    q.validate(b, watermark)
        .unwrap()
        .into_iter()
        .map(|r| (r.row, r.rule))
        .collect()
}

#[test]
fn each_rule_rejects_what_it_should() {
    let rules = r#"[
        {"rule": "not_null", "columns": ["country"]},
        {"rule": "in_set", "column": "event_type", "values": ["impression", "click"]},
        {"rule": "in_range", "column": "revenue", "min": 0.0, "max": 10.0},
        {"rule": "matches", "column": "country", "pattern": "^[A-Z]{2}$"},
        {"rule": "fresh", "column": "event_time", "max_lag": "1m"}
    ]"#;
    let mut q = Quality::configure(&setup(rules)).unwrap();
    let b = batch(&[
        Row("a", Some("click"), Some("US"), Some(1.0), 100_000),
        Row("b", Some("click"), None, Some(1.0), 100_000),
        Row("c", Some("bogus"), Some("US"), Some(1.0), 100_000),
        Row("d", Some("click"), Some("US"), Some(-1.0), 100_000),
        Row("e", Some("click"), Some("usa"), Some(1.0), 100_000),
        Row("f", Some("click"), Some("US"), Some(1.0), 1_000),
        Row("g", Some("click"), Some("US"), Some(f64::NAN), 100_000),
    ]);
    let got = rejected(&mut q, &b, 120_000);
    let want = [
        (1, "not_null:country"),
        (2, "in_set:event_type"),
        (3, "in_range:revenue"),
        (4, "matches:country"),
        (5, "fresh:event_time"),
        (6, "in_range:revenue"),
    ];
    assert_eq!(got, want.map(|(r, n)| (r, n.to_string())));
}

#[test]
fn a_row_carries_only_its_first_failure_with_a_message() {
    let rules = r#"[{"rule": "not_null", "columns": ["country", "event_type"]},
                    {"rule": "in_range", "column": "revenue", "max": 5.0}]"#;
    let mut q = Quality::configure(&setup(rules)).unwrap();
    let out = q
        .validate(&batch(&[Row("a", None, None, Some(9.0), 0)]), 0)
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].message, "country is null");
}

#[test]
fn unique_within_window_remembers_only_accepted_rows() {
    let rules = r#"[{"rule": "not_null", "columns": ["country"]},
                    {"rule": "unique", "column": "event_id", "window": "10s"}]"#;
    let mut q = Quality::configure(&setup(rules)).unwrap();
    let first = batch(&[
        Row("x", None, None, None, 0),
        Row("y", None, Some("US"), None, 0),
    ]);
    assert_eq!(
        rejected(&mut q, &first, 1_000),
        vec![(0, "not_null:country".to_string())]
    );
    let again = batch(&[
        Row("x", None, Some("US"), None, 0),
        Row("y", None, Some("US"), None, 0),
    ]);
    assert_eq!(
        rejected(&mut q, &again, 2_000),
        vec![(1, "unique:event_id".to_string())]
    );
    // Two windows later, `y` is forgotten.
    assert!(
        rejected(&mut q, &again, 25_000)
            .iter()
            .all(|(r, _)| *r != 1)
    );
}

#[test]
fn config_mistakes_name_the_rule() {
    let cases = [
        (
            r#"[{"rule": "in_set", "column": "nope", "values": []}]"#,
            "rules[0]: input has no column `nope`",
        ),
        (
            r#"[{"rule": "matches", "column": "country", "pattern": "("}]"#,
            "rules[0]: pattern `(`",
        ),
        (
            r#"[{"rule": "fresh", "column": "country", "max_lag": "1m"}]"#,
            "is dict, expected",
        ),
        (
            r#"[{"rule": "in_range", "column": "revenue"}]"#,
            "needs `min`, `max`",
        ),
        (r#"[{"rule": "sometimes"}]"#, "unknown variant `sometimes`"),
        (
            r#"[{"rule": "unique", "column": "event_id", "window": "1 fortnight"}]"#,
            "window:",
        ),
    ];
    for (rules, want) in cases {
        let err = Quality::configure(&setup(rules)).err().unwrap().describe();
        assert!(err.contains(want), "{rules}: {err}");
    }
}

#[test]
fn unique_state_survives_snapshot_and_restore_into_a_new_instance() {
    use adstream_sdk::StatefulValidate;
    let setup = setup(r#"[{"rule": "unique", "column": "event_id", "window": "10s"}]"#);
    let ids = |ids: &[&str]| {
        batch(
            &ids.iter()
                .map(|id| Row(id, None, None, None, 0))
                .collect::<Vec<_>>(),
        )
    };
    let mut a = Quality::configure(&setup).unwrap();
    assert!(rejected(&mut a, &ids(&["e1", "e2"]), 1_000).is_empty());
    let state = a.snapshot().unwrap();
    let mut b = Quality::configure(&setup).unwrap();
    b.restore(&state).unwrap();
    assert_eq!(
        rejected(&mut b, &ids(&["e2", "e3"]), 2_000),
        vec![(0, "unique:event_id".to_string())]
    );
    rejected(&mut a, &ids(&["e2", "e3"]), 2_000);
    assert_eq!(
        b.snapshot().unwrap(),
        a.snapshot().unwrap(),
        "same state, same bytes"
    );
    assert!(b.restore(b"not json").is_err());
}

proptest::proptest! {
    /// The hand-written snapshot is byte for byte what `postcard` gives for the wire form
    /// (rule index, then each bucket's start and its sorted fingerprints): the format the
    /// reader, and every older build, expects.
    #[test]
    fn a_snapshot_is_the_postcard_of_its_sorted_buckets(
        batches in proptest::collection::vec(
            (0i64..40_000, proptest::collection::vec(0u32..500, 0..30)), 0..6),
    ) {
        use adstream_sdk::StatefulValidate;
        let setup = setup(r#"[{"rule": "unique", "column": "event_id", "window": "10s"},
            {"rule": "in_range", "column": "revenue", "min": 0.0, "max": 1.0},
            {"rule": "unique", "column": "country", "window": "5s"}]"#);
        let mut q = Quality::configure(&setup).unwrap();
        let mut watermark = 0;
        for (step, ids) in batches {
            watermark += step;
            let ids: Vec<String> = ids.iter().map(|i| format!("e{i}")).collect();
            let rows: Vec<Row> =
                ids.iter().map(|id| Row(id, None, Some(id), None, 0)).collect();
            q.validate(&batch(&rows), watermark).unwrap();
        }
        let state = State::read(&q.snapshot().unwrap()).unwrap();
        let wire: Wire<Vec<u8>> = (state.unique.into_iter())
            .map(|(i, buckets)| {
                let buckets = buckets.into_iter().map(|(start, mut fps)| {
                    fps.sort_unstable();
                    (start, fps.iter().flat_map(|f| f.to_le_bytes()).collect())
                });
                (i, buckets.collect())
            })
            .collect();
        let mut want = MAGIC.to_vec();
        want.extend(postcard::to_allocvec(&wire).unwrap());
        proptest::prop_assert_eq!(q.snapshot().unwrap(), want);
    }
}

#[test]
fn a_version_1_snapshot_of_an_older_build_is_still_read() {
    use adstream_sdk::StatefulValidate;
    let setup = setup(r#"[{"rule": "unique", "column": "event_id", "window": "10s"}]"#);
    let v1 = br#"{"unique": [[0, [[0, ["e1", "e2"]]]]]}"#;
    let mut q = Quality::configure(&setup).unwrap();
    q.restore(v1).unwrap();
    let b = batch(&[
        Row("e2", None, None, None, 0),
        Row("e3", None, None, None, 0),
    ]);
    assert_eq!(
        rejected(&mut q, &b, 1_000),
        vec![(0, "unique:event_id".to_string())]
    );
}

proptest::proptest! {
    /// Judging each distinct dictionary value once rejects the same rows, with the same
    /// messages, as judging every row of a plain text column.
    #[test]
    fn dictionary_and_text_columns_are_judged_alike(
        picks in proptest::collection::vec(proptest::option::of(0usize..4), 1..60),
    ) {
        let values = ["US", "KR", "usa", "JP"];
        let rules = r#"[
            {"rule": "in_set", "column": "country", "values": ["US", "KR", "usa"]},
            {"rule": "matches", "column": "country", "pattern": "^[A-Z]{2}$"}
        ]"#;
        let judge = |kind: ColumnKind| {
            let s = Setup {
                config: format!(r#"{{"rules": {rules}}}"#),
                input: vec![field("country", kind, true)],
                secrets: vec![],
            };
            let mut q = Quality::configure(&s).unwrap();
            let col = match kind {
                ColumnKind::Dictionary => {
                    let mut b = DictBuilder::default();
                    picks.iter().for_each(|p| b.push_opt(p.map(|i| values[i])));
                    b.finish("country")
                }
                _ => {
                    let mut b = TextBuilder::default();
                    picks.iter().for_each(|p| b.push_opt(p.map(|i| values[i])));
                    b.finish("country")
                }
            };
            let batch = Batch::from_columns(vec![col]).unwrap();
            q.validate(&batch, 0)
                .unwrap()
                .into_iter()
                .map(|r| (r.row, r.rule, r.message))
                .collect::<Vec<_>>()
        };
        proptest::prop_assert_eq!(judge(ColumnKind::Dictionary), judge(ColumnKind::Text));
    }
}

/// A value first seen in the previous bucket (still within the window) is a duplicate in
/// the open one, and so is a value repeated within one batch.
#[test]
fn unique_finds_values_in_the_older_bucket_and_within_a_batch() {
    let rules = r#"[{"rule": "unique", "column": "event_id", "window": "10s"}]"#;
    let mut q = Quality::configure(&setup(rules)).unwrap();
    let x = batch(&[Row("x", None, Some("US"), None, 0)]);
    assert!(rejected(&mut q, &x, 1_000).is_empty());
    let later = batch(&[
        Row("x", None, Some("US"), None, 0),
        Row("z", None, Some("US"), None, 0),
        Row("z", None, Some("US"), None, 0),
    ]);
    assert_eq!(
        rejected(&mut q, &later, 12_000),
        vec![
            (0, "unique:event_id".to_string()),
            (2, "unique:event_id".to_string())
        ]
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// The rule's verdicts are a plain model's: a value is a duplicate when its bucket or
    /// the one before holds it (buckets by the watermark, 10 s wide), whatever the sets'
    /// filter, the watermark's jumps, or a restore in between.
    #[test]
    fn unique_judges_as_a_plain_model_does(
        batches in proptest::collection::vec(
            (0i64..60_000, proptest::collection::vec(0u32..400, 0..40), proptest::bool::ANY),
            1..12),
    ) {
        let rules = r#"[{"rule": "unique", "column": "event_id", "window": "10s"}]"#;
        let mut q = Quality::configure(&setup(rules)).unwrap();
        let mut model: Vec<(i64, std::collections::HashSet<String>)> = Vec::new();
        let mut watermark = 0;
        for (step, values, restore) in batches {
            watermark += step / 4;
            let bucket = watermark.div_euclid(10_000) * 10_000;
            model.retain(|(start, _)| *start >= bucket - 10_000);
            if model.last().is_none_or(|(start, _)| *start != bucket) {
                model.push((bucket, Default::default()));
            }
            let ids: Vec<String> = values.iter().map(|v| format!("e{v}")).collect();
            let rows: Vec<Row> = ids.iter().map(|id| Row(id, None, None, None, 0)).collect();
            let mut want = Vec::new();
            for (row, id) in ids.iter().enumerate() {
                let (open, older) = model.split_last_mut().unwrap();
                if older.iter().any(|(_, s)| s.contains(id)) || !open.1.insert(id.clone()) {
                    want.push((row as u32, "unique:event_id".to_string()));
                }
            }
            proptest::prop_assert_eq!(rejected(&mut q, &batch(&rows), watermark), want);
            if restore {
                let state = q.snapshot().unwrap();
                q = Quality::configure(&setup(rules)).unwrap();
                q.restore(&state).unwrap();
            }
        }
    }
}

/// An order stream: event_type, total and items per row.
fn orders(rows: &[(&str, Option<f64>, Option<&str>)]) -> (Setup, Batch) {
    let setup = Setup {
        config: String::new(),
        input: vec![
            field("event_id", ColumnKind::Text, false),
            field("event_type", ColumnKind::Dictionary, true),
            field("total", ColumnKind::Float64, true),
            field("items", ColumnKind::Text, true),
        ],
        secrets: vec![],
    };
    let (mut id, mut ty) = (TextBuilder::default(), DictBuilder::default());
    let (mut total, mut items) = (F64Builder::default(), TextBuilder::default());
    for (i, r) in rows.iter().enumerate() {
        id.push(&format!("o{}", i % 3));
        ty.push(r.0);
        total.push_opt(r.1);
        items.push_opt(r.2);
    }
    let cols = vec![
        id.finish("event_id"),
        ty.finish("event_type"),
        total.finish("total"),
        items.finish("items"),
    ];
    (setup, Batch::from_columns(cols).unwrap())
}

#[test]
fn items_total_and_when_check_only_the_rows_they_name() {
    let (mut s, b) = orders(&[
        (
            "order",
            Some(12.5),
            Some(r#"[{"price": 2.5, "quantity": 3}, {"price": 5.0, "quantity": 1}]"#),
        ),
        (
            "order",
            Some(12.0),
            Some(r#"[{"price": 2.5, "quantity": 3}]"#),
        ),
        ("page_view", None, None),
        ("order", Some(1.0), Some(r#"[{"price": "1"}]"#)),
        ("order", Some(1.0), None),
    ]);
    s.config = r#"{"rules": [
        {"rule": "items_total", "column": "total", "items": "items", "when": {"event_type": ["order"]}},
        {"rule": "unique", "column": "event_id", "window": "1m", "when": {"event_type": ["order"]}}
    ]}"#
    .into();
    let mut q = Quality::configure(&s).unwrap();
    let got = q.validate(&b, 0).unwrap();
    let got: Vec<_> = got
        .iter()
        .map(|r| (r.row, r.rule.as_str(), r.message.as_str()))
        .collect();
    assert_eq!(
        got[0],
        (
            1,
            "items_total:total",
            "total 12 is not the sum of its items (7.50)"
        )
    );
    assert!(
        got[1].0 == 3
            && got[1]
                .2
                .starts_with("items is not a list of {price, quantity}"),
        "{got:?}"
    );
    assert_eq!(got[2], (4, "items_total:total", "items is null"));
    assert_eq!(
        got.len(),
        3,
        "the page view (same id as an order) is skipped by both: {got:?}"
    );

    s.config = r#"{"rules": [{"rule": "unique", "column": "event_id", "window": "1m", "when": {"event_type": ["order"], "x": []}}]}"#.into();
    let e = Quality::configure(&s).err().unwrap().describe();
    assert!(e.contains("rules[0]: when names one column"), "{e}");
    s.config =
        r#"{"rules": [{"rule": "unique", "column": "event_id", "window": "1m", "whenn": {}}]}"#
            .into();
    assert!(
        Quality::configure(&s).is_err(),
        "an unknown key is still refused"
    );
}
