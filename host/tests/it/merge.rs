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

/// The windows stage of a pipeline file, built as `adstream run` builds it.
fn windows_stage(dir: &std::path::Path) -> adstream::pipeline::Stage {
    let text = format!(
        "[source]\nkind = \"generator\"\n{}\n[[stage]]\nname = \"w\"\nplugin = \"@PLUGINS@/window_aggregate.wasm\"\nconfig = {{ window = \"10s\", group_by = [\"country\", \"ad_format\"] }}\n",
        super::support::AD_SCHEMA
    );
    let file = super::support::pipeline_file(dir, "p.toml", &text);
    let cfg = adstream::config::load(&file).unwrap();
    let engine = PluginEngine::new().unwrap();
    let mut p = adstream::pipeline::build(&cfg, &engine).unwrap();
    p.stages.remove(0)
}

/// A windows stage spread over three partitions (an instance each, and a merger) emits, batch
/// by batch, the windows one instance over every partition emits — whether each partition's
/// windows close by its own watermark or the pipeline's — and a snapshot of it taken midway
/// restores into a fresh spread stage that goes on the same.
#[test]
fn a_stage_spread_over_partitions_emits_what_one_instance_emits() {
    let dir = tempfile::tempdir().unwrap();
    let mut one = windows_stage(dir.path());
    let mut spread = windows_stage(dir.path());
    assert!(spread.spreadable());
    spread.spread(&[0, 1, 2]).unwrap();
    assert!(one.spreadable() && !one.partitioned() && spread.partitioned());

    let cfg: GeneratorConfig = toml::from_str(
        "kind = \"generator\"\nrate = 3000.0\npace = false\nstart = 1700000000000\nseed = 9",
    )
    .unwrap();
    let mut raw = RawBatch::default();
    GeneratorSource::new(&cfg)
        .unwrap()
        .generate(180_000, &mut raw);
    let text = format!(
        "[source]\nkind = \"generator\"\n{}",
        super::support::AD_SCHEMA
    );
    let schema = adstream::config::parse(std::path::Path::new("d.toml"), &text).unwrap();
    let mut decoder = Decoder::new(&schema.schema, "event_time", None);
    decoder.ignore_wall_clock();
    // Partition p holds every third event; each partition's own latest time is followed.
    let mut latest = [i64::MIN; 3];
    let mut restored = None;
    let (mut got, mut want) = (Vec::new(), Vec::new());
    for (b, from) in (0..raw.len()).step_by(1500).enumerate() {
        let mut chunk = RawBatch::default();
        let mut positions = Vec::new();
        for i in from..(from + 1500).min(raw.len()) {
            let p = (i % 3) as i32;
            let at = Position {
                partition: p,
                offset: i as i64,
            };
            chunk.push(raw.record(i), at);
            positions.push(at);
            let t: serde_json::Value = serde_json::from_slice(raw.record(i)).unwrap();
            latest[p as usize] = latest[p as usize].max(t["event_time"].as_i64().unwrap());
        }
        let batch = decoder.decode(&chunk).batch;
        let env = || adstream::batch::Envelope {
            batch: batch.clone(),
            positions: Some(positions.clone()),
        };
        let global = latest.iter().min().unwrap().saturating_sub(1000);
        let mut dl = adstream::batch::DeadLetters::new("t");
        for out in one.process(vec![env()], global, &mut dl).unwrap() {
            want.extend(rows(&out.batch));
        }
        let own = |p: i32| latest[p as usize].saturating_sub(1000);
        let at = adstream::pipeline::Watermarks { global, of: &own };
        let stage = restored.as_mut().unwrap_or(&mut spread);
        for out in stage
            .process_partitioned(vec![env()], &at, &mut dl)
            .unwrap()
        {
            got.extend(rows(&out.batch));
        }
        assert!(dl.is_empty(), "no late rows, no failures");
        if b == 20 {
            // Midway: the spread stage's state into a fresh one, which goes on.
            let state = spread.snapshot().unwrap().unwrap();
            let mut fresh = windows_stage(dir.path());
            fresh.spread(&[0, 1, 2]).unwrap();
            fresh.restore(&state).unwrap();
            restored = Some(fresh);
        }
        assert_eq!(got, want, "batch {b}");
    }
    let mut dl = adstream::batch::DeadLetters::new("t");
    let rest: Vec<_> = one
        .flush(&mut dl)
        .unwrap()
        .iter()
        .flat_map(|e| rows(&e.batch))
        .collect();
    let stage = restored.as_mut().unwrap();
    let merged: Vec<_> = stage
        .flush(&mut dl)
        .unwrap()
        .iter()
        .flat_map(|e| rows(&e.batch))
        .collect();
    assert_eq!(merged, rest);
    assert!(
        want.len() >= 80 && !rest.is_empty(),
        "{} {}",
        want.len(),
        rest.len()
    );
}
