//! Partial windows merged through the host: the built `window-aggregate` component
//! exports `merge` (the `mergeable-aggregate` world), so that an instance per partition
//! and one merging instance give the windows one instance over all events gives.

use super::support::plugin;
use adstream::batch::decode::Decoder;
use adstream::batch::{Position, RawBatch};
use adstream::config::source::GeneratorConfig;
use adstream::plugin::{Output, Plugin, PluginEngine};
use adstream::sources::generator::GeneratorSource;
use adstream_sdk::{Batch, Setup};

fn windows(out: Output) -> Batch {
    match out {
        Output::Windows { windows, late } => {
            assert!(late.is_empty());
            windows
        }
        _ => panic!("an aggregate returns windows"),
    }
}

/// (window start, country, ad format, impressions, clicks) of each row, sorted.
fn rows(b: &Batch) -> Vec<(i64, String, String, i64, i64)> {
    let mut out: Vec<_> = (0..b.len())
        .map(|r| {
            (
                b.i64s("window_start").unwrap().value(r),
                b.text("country").unwrap().value(r).to_string(),
                b.text("ad_format").unwrap().value(r).to_string(),
                b.i64s("impressions").unwrap().value(r),
                b.i64s("clicks").unwrap().value(r),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn instances_per_partition_merged_equal_one_instance() {
    let engine = PluginEngine::new().unwrap();
    let p = engine.load(&plugin("window_aggregate"), false).unwrap();
    assert!(p.mergeable(), "window-aggregate exports merge");
    let quality = engine.load(&plugin("quality"), false).unwrap();
    assert!(!quality.mergeable());

    let cfg: GeneratorConfig = toml::from_str(
        "kind = \"generator\"\nrate = 2000.0\npace = false\nstart = 1700000000000\nseed = 3",
    )
    .unwrap();
    let mut raw = RawBatch::default();
    GeneratorSource::new(&cfg)
        .unwrap()
        .generate(60_000, &mut raw);
    let text = format!(
        "[source]\nkind = \"generator\"\n{}",
        super::support::AD_SCHEMA
    );
    let schema = adstream::config::parse(std::path::Path::new("d.toml"), &text).unwrap();
    let mut decoder = Decoder::new(&schema.schema, "event_time", None);
    decoder.ignore_wall_clock();
    let decode = |raw: &RawBatch| {
        let d = decoder.decode(raw);
        assert!(d.rejected.is_empty(), "{:?}", d.rejected.first());
        d.batch
    };
    let setup = Setup {
        config: r#"{"window": "10s", "group_by": ["country", "ad_format"]}"#.into(),
        input: decoder.fields(),
        secrets: vec![],
    };
    let instance = || {
        let mut i = p.instantiate("w".into(), &Default::default(), 0).unwrap();
        i.configure(setup.clone()).unwrap();
        i
    };
    // One instance over every event.
    let all = decode(&raw);
    let mut one = instance();
    let (_, out) = one.process(all.clone(), i64::MAX - 1);
    let want = rows(&windows(out.unwrap()));
    assert!(want.len() > 20, "{}", want.len());

    // Three partitions, each its own instance; the partials merged by a fourth.
    let mut merging = instance();
    let mut got = Vec::new();
    for part in 0..3 {
        let mut own = RawBatch::default();
        for i in (0..raw.len()).filter(|i| i % 3 == part) {
            own.push(raw.record(i), Position::default());
        }
        let mut inst = instance();
        let (_, out) = inst.process(decode(&own), i64::MAX - 1);
        let (_, merged) = merging.merge(windows(out.unwrap()), i64::MIN);
        got.extend(rows(&windows(merged.unwrap())));
    }
    // The watermark alone closes what is left: a batch of no rows.
    let (_, closed) = merging.merge(Batch::empty(), i64::MAX - 1);
    got.extend(rows(&windows(closed.unwrap())));
    got.sort();
    assert_eq!(got, want);
}
