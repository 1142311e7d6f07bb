use super::*;
use crate::sums::Sums;
use adstream_sdk::{ColumnKind, DictBuilder, F64Builder, I64Builder, TextBuilder, field};
use proptest::prelude::*;

mod fold;
mod merge;

#[derive(Clone, Debug)]
struct Ev {
    t: i64,
    ty: &'static str,
    country: &'static str,
    network: Option<&'static str>,
    revenue: Option<f64>,
}

fn ev(t: i64, ty: &'static str, country: &'static str) -> Ev {
    Ev {
        t,
        ty,
        country,
        network: None,
        revenue: None,
    }
}

fn setup(window: &str, lateness: &str) -> Setup {
    Setup {
        config: format!(
            r#"{{"window": "{window}", "lateness": "{lateness}", "group_by": ["country"]}}"#
        ),
        input: vec![
            field("event_time", ColumnKind::TimestampMs, false),
            field("event_type", ColumnKind::Dictionary, false),
            field("country", ColumnKind::Dictionary, false),
            field("network", ColumnKind::Text, true),
            field("revenue", ColumnKind::Float64, true),
            field("cost", ColumnKind::Float64, true),
        ],
        secrets: vec![],
    }
}

/// Countries go in as text when `text_dims`, to check both string layouts agree.
fn batch(events: &[Ev], text_dims: bool) -> Batch {
    let (mut t, mut ty) = (I64Builder::default(), DictBuilder::default());
    let (mut cd, mut ct, mut net) = (
        DictBuilder::default(),
        TextBuilder::default(),
        TextBuilder::default(),
    );
    let (mut rev, mut cost) = (F64Builder::default(), F64Builder::default());
    for e in events {
        t.push(e.t);
        ty.push(e.ty);
        // An empty country goes in as a null: both group under the empty string.
        let country = Some(e.country).filter(|c| !c.is_empty());
        cd.push_opt(country);
        ct.push_opt(country);
        net.push_opt(e.network);
        rev.push_opt(e.revenue);
        cost.push_opt(e.revenue.map(|r| r * 1.25));
    }
    let country = if text_dims {
        ct.finish("country")
    } else {
        cd.finish("country")
    };
    Batch::from_columns(vec![
        t.finish_timestamp("event_time"),
        ty.finish("event_type"),
        country,
        net.finish("network"),
        rev.finish("revenue"),
        cost.finish("cost"),
    ])
    .unwrap()
}

fn plugin(window: &str, lateness: &str) -> WindowAggregate {
    WindowAggregate::configure(&setup(window, lateness))
        .unwrap()
        .0
}

/// (window_start, country) → sums, read back from window rows.
fn read(rows: &Batch) -> Vec<(i64, String, Sums)> {
    let start = rows.i64s("window_start").unwrap();
    let country = rows.text("country").unwrap();
    let i = |n| rows.i64s(n).unwrap();
    let f = |n| rows.f64s(n).unwrap();
    (0..rows.len())
        .map(|r| {
            let sums = Sums {
                requests: i("requests").value(r),
                fills: i("fills").value(r),
                impressions: i("impressions").value(r),
                clicks: i("clicks").value(r),
                conversions: i("conversions").value(r),
                revenue: f("revenue").value(r),
                cost: f("cost").value(r),
            };
            (start.value(r), country.value(r).to_string(), sums)
        })
        .collect()
}

#[test]
fn closes_windows_by_watermark_and_derives_ratios() {
    let mut p = plugin("10s", "0s");
    let mut events = vec![Ev {
        network: Some("admob"),
        ..ev(1_000, "request", "US")
    }];
    events.push(ev(2_000, "request", "US"));
    events.extend((0..4).map(|i| Ev {
        revenue: Some(0.002),
        ..ev(3_000 + i, "impression", "US")
    }));
    events.push(ev(4_000, "click", "US"));
    events.push(ev(12_000, "impression", "KR"));
    let out = p.aggregate(&batch(&events, false), 10_000).unwrap();
    assert!(out.late.is_empty());
    let rows = read(&out.windows);
    assert_eq!(rows.len(), 1, "only the US window [0, 10s) is closed");
    let (start, country, sums) = &rows[0];
    assert_eq!((*start, country.as_str()), (0, "US"));
    assert_eq!(
        (sums.requests, sums.fills, sums.impressions, sums.clicks),
        (2, 1, 4, 1)
    );
    let w = &out.windows;
    assert_eq!(w.f64s("ctr").unwrap().get(0), Some(0.25));
    assert_eq!(w.f64s("fill_rate").unwrap().get(0), Some(0.5));
    assert!((w.f64s("ecpm").unwrap().value(0) - 2.0).abs() < 1e-9);
    assert_eq!(w.f64s("cvr").unwrap().get(0), Some(0.0));
    assert_eq!(w.i64s("window_end").unwrap().value(0), 10_000);
    assert_eq!(w.text("window").unwrap().value(0), "10s");

    let rest = read(&p.flush().unwrap());
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].1, "KR");
    assert_eq!(w.f64s("cpc").unwrap().get(0), Some(0.002 * 4.0 * 1.25));
}

#[test]
fn ratios_are_null_without_a_denominator() {
    let mut p = plugin("10s", "0s");
    p.aggregate(&batch(&[ev(1, "request", "US")], false), 0)
        .unwrap();
    let w = p.flush().unwrap();
    assert_eq!(w.f64s("ctr").unwrap().get(0), None);
    assert_eq!(w.f64s("fill_rate").unwrap().get(0), Some(0.0));
}

#[test]
fn late_rows_are_returned_not_dropped_and_lateness_is_honoured() {
    let mut p = plugin("10s", "5s");
    p.aggregate(&batch(&[ev(1_000, "impression", "US")], false), 12_000)
        .unwrap();
    // Within the allowed lateness: still counted in [0, 10s).
    let out = p
        .aggregate(&batch(&[ev(2_000, "impression", "US")], false), 16_000)
        .unwrap();
    assert!(out.late.is_empty());
    assert_eq!(read(&out.windows)[0].2.impressions, 2);
    // The window closed at watermark 15s; this row is late.
    let out = p
        .aggregate(
            &batch(
                &[ev(17_000, "click", "US"), ev(3_000, "click", "US")],
                false,
            ),
            17_000,
        )
        .unwrap();
    assert_eq!(out.late, vec![1]);
    assert_eq!(adstream_sdk::log::counts().get("late_rows"), Some(&1));
}

#[test]
fn snapshot_restore_continues_exactly() {
    let events: Vec<Ev> = (0..200)
        .map(|i| {
            ev(
                i * 300,
                if i % 7 == 0 { "click" } else { "impression" },
                ["US", "KR", "JP"][i as usize % 3],
            )
        })
        .collect();
    let (a, b) = events.split_at(90);
    let mut whole = plugin("10s", "0s");
    let mut out_whole = read(&whole.aggregate(&batch(a, false), 20_000).unwrap().windows);
    out_whole.extend(read(
        &whole.aggregate(&batch(b, false), 40_000).unwrap().windows,
    ));
    out_whole.extend(read(&whole.flush().unwrap()));

    let mut first = plugin("10s", "0s");
    let mut out = read(&first.aggregate(&batch(a, false), 20_000).unwrap().windows);
    let snap = first.snapshot().unwrap();
    let mut second = plugin("10s", "0s");
    second.restore(&snap).unwrap();
    out.extend(read(
        &second.aggregate(&batch(b, false), 40_000).unwrap().windows,
    ));
    out.extend(read(&second.flush().unwrap()));
    assert_eq!(out, out_whole);
}

#[test]
fn restore_refuses_a_snapshot_of_other_windows() {
    let mut p = plugin("10s", "0s");
    p.aggregate(&batch(&[ev(1, "click", "US")], false), 0)
        .unwrap();
    let snap = p.snapshot().unwrap();
    let err = plugin("1m", "0s").restore(&snap).unwrap_err();
    assert!(matches!(err, PluginError::InvalidState(_)), "{err:?}");
    assert!(plugin("10s", "0s").restore(b"garbage").is_err());
}

#[test]
fn a_version_1_snapshot_of_an_older_build_is_still_read() {
    let v1 = br#"{"v":1,"size_ms":10000,"group_by":["country"],"closed_until":0,"windows":[
        {"start":10000,"dims":["US"],"sums":{"requests":3,"fills":2,"impressions":2,"clicks":1,
         "conversions":0,"revenue":0.5,"cost":0.25}}]}"#;
    let mut p = plugin("10s", "0s");
    p.restore(v1).unwrap();
    let mut out = p.flush().unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out.i64s("requests").unwrap().value(0), 3);
    assert_eq!(out.text("country").unwrap().value(0), "US");
    // And what it writes now reads back the same.
    p.restore(v1).unwrap();
    let mut q = plugin("10s", "0s");
    q.restore(&p.snapshot().unwrap()).unwrap();
    assert_eq!(q.flush().unwrap(), {
        out = p.flush().unwrap();
        out
    });
}

#[test]
fn the_dimension_table_forgets_values_of_closed_windows() {
    let mut p = plugin("10s", "0s");
    for w in 0..3 {
        let events: Vec<Ev> = (0..5000)
            .map(|i| {
                ev(
                    w * 10_000 + 1,
                    "click",
                    Box::leak(format!("c{w}-{i}").into_boxed_str()),
                )
            })
            .collect();
        p.aggregate(&batch(&events, true), w * 10_000).unwrap();
    }
    let out = p.aggregate(&batch(&[], true), 100_000).unwrap();
    assert_eq!(
        out.windows.len(),
        5000,
        "the last window closed with its own values"
    );
    assert!(
        p.windows.interner.len() < 5000,
        "{} values kept",
        p.windows.interner.len()
    );
}

#[test]
fn config_errors_are_clear() {
    let mut s = setup("10 parsecs", "0s");
    assert!(
        WindowAggregate::configure(&s)
            .err()
            .unwrap()
            .describe()
            .contains("window:")
    );
    s.config = r#"{"window": "10s", "group_by": ["nope"]}"#.into();
    assert!(
        WindowAggregate::configure(&s)
            .err()
            .unwrap()
            .describe()
            .contains("no column `nope`")
    );
}

fn arb_event() -> impl Strategy<Value = Ev> {
    events_of(
        &["request", "impression", "click", "conversion"],
        &["US", "KR", "JP"],
        &["admob", "unity"],
    )
}

/// Events within one minute with the given types, countries and networks (or none).
fn events_of(
    types: &[&'static str],
    countries: &[&'static str],
    networks: &[&'static str],
) -> impl Strategy<Value = Ev> {
    (
        0i64..60_000,
        prop::sample::select(types.to_vec()),
        prop::sample::select(countries.to_vec()),
        prop::option::of(prop::sample::select(networks.to_vec())),
        prop::option::of(0.0f64..0.05),
    )
        .prop_map(|(t, ty, country, network, revenue)| Ev {
            t,
            ty,
            country,
            network,
            revenue,
        })
}

fn aggregate_all(events: &[Ev], text_dims: bool) -> Vec<(i64, String, Sums)> {
    let mut p = plugin("10s", "0s");
    let mut rows = read(
        &p.aggregate(&batch(events, text_dims), i64::MIN)
            .unwrap()
            .windows,
    );
    rows.extend(read(&p.flush().unwrap()));
    rows.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    rows
}

proptest! {
    /// Two partial windows merged give the same sums, and so the same ratios, as one
    /// window over the union of their events.
    #[test]
    fn merging_partials_equals_the_union(events in prop::collection::vec(arb_event(), 0..300), split in 0usize..300) {
        let split = split.min(events.len());
        let whole = aggregate_all(&events, false);
        let mut merged: std::collections::BTreeMap<(i64, String), Sums> = Default::default();
        for part in [&events[..split], &events[split..]] {
            for (start, c, s) in aggregate_all(part, true) {
                merged.entry((start, c)).or_default().merge(&s);
            }
        }
        prop_assert_eq!(merged.len(), whole.len());
        for (start, c, s) in &whole {
            let m = &merged[&(*start, c.clone())];
            let (a, b) = (m.ratios(), s.ratios());
            prop_assert_eq!((m.requests, m.fills, m.impressions, m.clicks, m.conversions),
                            (s.requests, s.fills, s.impressions, s.clicks, s.conversions));
            prop_assert_eq!((a.ctr, a.cvr, a.fill_rate), (b.ctr, b.cvr, b.fill_rate));
            for (x, y) in [(a.ecpm, b.ecpm), (a.cpm, b.cpm), (a.cpc, b.cpc)] {
                let close = match (x, y) { (Some(x), Some(y)) => (x - y).abs() < 1e-9, (x, y) => x == y };
                prop_assert!(close, "{:?} vs {:?}", x, y);
            }
        }
    }
}

proptest! {
    /// A snapshot taken anywhere and restored into a new instance gives bit-identical
    /// sums: hot swaps and checkpoints must not change a cent, not even in the last bit.
    #[test]
    fn snapshot_restore_is_bit_exact(mut events in prop::collection::vec(arb_event(), 1..300), split in 0usize..300) {
        events.sort_by_key(|e| e.t);
        let split = split.min(events.len());
        let (a, b) = events.split_at(split);
        let mut whole = plugin("10s", "0s");
        let mut expected = read(&whole.aggregate(&batch(a, false), i64::MIN).unwrap().windows);
        expected.extend(read(&whole.aggregate(&batch(b, false), i64::MIN).unwrap().windows));
        expected.extend(read(&whole.flush().unwrap()));

        let mut first = plugin("10s", "0s");
        let mut got = read(&first.aggregate(&batch(a, false), i64::MIN).unwrap().windows);
        let mut second = plugin("10s", "0s");
        second.restore(&first.snapshot().unwrap()).unwrap();
        got.extend(read(&second.aggregate(&batch(b, false), i64::MIN).unwrap().windows));
        got.extend(read(&second.flush().unwrap()));
        let bits = |rows: &[(i64, String, Sums)]| -> Vec<(i64, String, u64, u64)> {
            rows.iter().map(|(t, c, s)| (*t, c.clone(), s.revenue.to_bits(), s.cost.to_bits())).collect()
        };
        prop_assert_eq!(bits(&got), bits(&expected));
    }
}
