//! Each plugin's cost per row as a WebAssembly component called through the host (the
//! boundary and the output checks included) beside the same plugin code compiled natively
//! and called directly, on the same decoded batches, in the same run; and the boundary's
//! own cost per call by batch size.

use super::report::{Section, Stat, repeat};
use adstream::plugin::{Instance, Limits, Plugin, PluginEngine};
use adstream_sdk::{Aggregate, Batch, Field, Setup, Transform, Validate};
use std::time::Instant;

fn setup(config: &str, input: &[Field], key: bool) -> Setup {
    Setup {
        config: config.into(),
        input: input.to_vec(),
        secrets: if key {
            vec![adstream_sdk::Secret {
                name: "key".into(),
                value: b"adstream-bench-key-NOT-A-SECRET".to_vec(),
            }]
        } else {
            vec![]
        },
    }
}

fn instance(engine: &PluginEngine, file: &str, s: Setup) -> Box<dyn Instance> {
    let p = engine
        .load(&super::data::plugins_dir().join(file), false)
        .unwrap();
    let limits = Limits {
        memory_bytes: 1 << 30,
        ..Limits::default()
    };
    let mut inst = p.instantiate("bench".into(), &limits, 0).unwrap();
    inst.configure(s).unwrap();
    inst
}

/// The watermark after `b`: one second behind its latest event.
fn watermark(b: &Batch) -> i64 {
    let time = b.columns.iter().find(|c| c.name == "event_time").unwrap();
    match &time.values {
        adstream_sdk::Values::TimestampMs(v) => v.iter().max().copied().unwrap_or(0) - 1000,
        _ => 0,
    }
}

/// ns per row over all `batches`, `n` times, each time through a fresh plugin (stateful
/// ones start empty) that `make` returns as the function to call per batch. The function
/// may take a batch and must put it back, as the processor lends a batch to a plugin.
fn per_row<F: FnMut(&mut Batch)>(
    batches: &mut [Batch],
    n: usize,
    mut make: impl FnMut() -> F,
) -> Stat {
    let rows: usize = batches.iter().map(|b| b.rows as usize).sum();
    repeat(n, || {
        let mut f = make();
        let t = Instant::now();
        for b in batches.iter_mut() {
            f(b);
        }
        t.elapsed().as_nanos() as f64 / rows as f64
    })
}

struct Case {
    name: &'static str,
    file: &'static str,
    config: &'static str,
    key: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "pii-hash (2 HMAC-SHA256, 1 IP)",
        file: "pii_hash.wasm",
        config: r#"{"hash": ["user_id", "device_id"], "truncate_ip": ["ip"]}"#,
        key: true,
    },
    Case {
        name: "pii-hash (2 keyed BLAKE3, 1 IP)",
        file: "pii_hash.wasm",
        config: r#"{"hash": ["user_id", "device_id"], "truncate_ip": ["ip"], "algorithm": "blake3"}"#,
        key: true,
    },
    Case {
        name: "quality (3 stateless rules)",
        file: "quality.wasm",
        config: r#"{"rules": [{"rule": "in_set", "column": "event_type", "values": ["request", "impression", "click", "conversion"]}, {"rule": "in_range", "column": "revenue", "min": 0.0, "max": 10.0}, {"rule": "matches", "column": "country", "pattern": "^[A-Z]{2}$"}]}"#,
        key: false,
    },
    Case {
        name: "quality (all 5 rules)",
        file: "quality.wasm",
        config: r#"{"rules": [{"rule": "in_set", "column": "event_type", "values": ["request", "impression", "click", "conversion"]}, {"rule": "in_range", "column": "revenue", "min": 0.0, "max": 10.0}, {"rule": "matches", "column": "country", "pattern": "^[A-Z]{2}$"}, {"rule": "fresh", "column": "event_time", "max_lag": "1m"}, {"rule": "unique", "column": "event_id", "window": "10s"}]}"#,
        key: false,
    },
    Case {
        name: "window-aggregate (1 min, country × format)",
        file: "window_aggregate.wasm",
        config: r#"{"window": "1m", "group_by": ["country", "ad_format"]}"#,
        key: false,
    },
];

/// The native run of `case` over `batches`. A native transform consumes its input, so it
/// is handed a clone, whose own cost (measured here too) is taken off: the pipeline lends
/// a batch to a plugin and never copies it.
fn native(case: &Case, input: &[Field], batches: &mut [Batch], n: usize) -> Stat {
    let s = || setup(case.config, input, case.key);
    match case.file {
        "pii_hash.wasm" => {
            let with_clone = per_row(batches, n, || {
                let (mut p, _) = pii_hash::PiiHash::configure(&s()).unwrap();
                move |b: &mut Batch| {
                    std::hint::black_box(p.transform(b.clone()).unwrap());
                }
            });
            let clone = per_row(batches, n, || {
                |b: &mut Batch| {
                    std::hint::black_box(b.clone());
                }
            });
            with_clone.minus(clone.median)
        }
        "quality.wasm" => per_row(batches, n, || {
            let mut p = quality::Quality::configure(&s()).unwrap();
            move |b: &mut Batch| {
                std::hint::black_box(p.validate(b, watermark(b)).unwrap());
            }
        }),
        _ => per_row(batches, n, || {
            let (mut p, _) = window_aggregate::WindowAggregate::configure(&s()).unwrap();
            move |b: &mut Batch| {
                std::hint::black_box(p.aggregate(b, watermark(b)).unwrap());
            }
        }),
    }
}

/// `inst` called on `b` as the processor calls it: the batch is lent and comes back.
fn lend(inst: &mut dyn Instance, b: &mut Batch, wm: i64) {
    let (back, out) = inst.process(std::mem::replace(b, Batch::empty()), wm);
    *b = back;
    std::hint::black_box(out.unwrap());
}

/// Each case (those whose name holds `only`, if given): ns per row in WebAssembly and
/// natively.
pub fn run(
    engine: &PluginEngine,
    input: &[Field],
    batches: &[Batch],
    n: usize,
    only: Option<&str>,
) -> Section {
    let mut batches = batches.to_vec();
    let mut rows = Vec::new();
    let cases = CASES
        .iter()
        .filter(|c| only.is_none_or(|o| c.name.contains(o)));
    for case in cases {
        let wasm = per_row(&mut batches, n, || {
            let mut inst = instance(engine, case.file, setup(case.config, input, case.key));
            move |b: &mut Batch| lend(inst.as_mut(), b, watermark(b))
        });
        let native = native(case, input, &mut batches, n);
        rows.push(vec![
            case.name.to_string(),
            wasm.show(0),
            native.show(0),
            format!("{:.2}", wasm.median / native.median),
        ]);
    }
    Section {
        title: "Plugins: WebAssembly beside native",
        about: format!(
            "ns per row over {} batches of 5000 decoded events: the component called \
             through the host as the processor calls it (the batch lent, not copied; the \
             columns it reads lowered, its output lifted and checked) beside the same crate \
             compiled natively and called directly (a transform, which consumes its input, \
             on a clone whose cost, measured in the same run, is taken off). Median \
             (min–max) of {n} runs.",
            batches.len()
        ),
        header: vec!["plugin", "wasm ns/row", "native ns/row", "wasm ÷ native"],
        rows,
    }
}

/// The cost of a call that does nothing: pii-hash with no rule hands every column back.
pub fn boundary(engine: &PluginEngine, input: &[Field], batches: &[Batch], n: usize) -> Section {
    let mut inst = instance(engine, "pii_hash.wasm", setup("{}", input, true));
    let whole = &batches[0];
    let mut rows = Vec::new();
    for size in [100u32, 1000, 5000] {
        let mut b = whole.take(&(0..size.min(whole.rows)).collect::<Vec<_>>());
        let calls = 2_000_000 / size as usize;
        let us = repeat(n, || {
            let t = Instant::now();
            for _ in 0..calls {
                lend(inst.as_mut(), &mut b, 0);
            }
            t.elapsed().as_secs_f64() * 1e6 / calls as f64
        });
        rows.push(vec![
            size.to_string(),
            us.show(1),
            format!("{:.0}", us.median * 1e3 / size as f64),
        ]);
    }
    Section {
        title: "The boundary",
        about: format!(
            "A call that returns its input unchanged (pii-hash with no rule), all 17 columns \
             in and out: what crossing into a plugin and back costs per batch. Median \
             (min–max) of {n} runs."
        ),
        header: vec!["rows per batch", "µs per call", "ns per row"],
        rows,
    }
}
