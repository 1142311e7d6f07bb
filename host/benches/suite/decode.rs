//! Decode: JSON records → a columnar batch, beside a bare parse of the same bytes that
//! builds nothing (serde_json into `IgnoredAny`), the ceiling for this parser.

use super::report::{Section, repeat};
use adstream::batch::RawBatch;
use adstream::batch::decode::Decoder;
use serde::de::IgnoredAny;
use std::time::Instant;

pub fn run(decoder: &Decoder, raw: &[RawBatch], bytes: usize, n: usize) -> Section {
    let events: usize = raw.iter().map(RawBatch::len).sum();
    let bare = repeat(n, || {
        let t = Instant::now();
        for b in raw {
            for i in 0..b.len() {
                let _: IgnoredAny = serde_json::from_slice(b.record(i)).unwrap();
            }
        }
        events as f64 / t.elapsed().as_secs_f64()
    });
    let sonic = repeat(n, || {
        let t = Instant::now();
        for b in raw {
            for i in 0..b.len() {
                let _: IgnoredAny = sonic_rs::from_slice(b.record(i)).unwrap();
            }
        }
        events as f64 / t.elapsed().as_secs_f64()
    });
    let decode = repeat(n, || {
        let t = Instant::now();
        for b in raw {
            std::hint::black_box(decoder.decode(b));
        }
        events as f64 / t.elapsed().as_secs_f64()
    });
    let mb = |rate: f64| format!("{:.0}", rate * bytes as f64 / events as f64 / 1e6);
    Section {
        title: "Decode",
        about: format!(
            "{events} generated events ({:.0} bytes each, 17 fields) in batches of 5000, one \
             thread. Events/s: median (min–max) of {n} runs.",
            bytes as f64 / events as f64
        ),
        header: vec!["what", "events/s", "MB/s", "time ÷ bare parse"],
        rows: vec![
            vec![
                "bare parse (serde_json → IgnoredAny)".into(),
                bare.rate(),
                mb(bare.median),
                "1.00".into(),
            ],
            vec![
                "bare parse (sonic-rs → IgnoredAny)".into(),
                sonic.rate(),
                mb(sonic.median),
                format!("{:.2}", bare.median / sonic.median),
            ],
            vec![
                "decode into columns".into(),
                decode.rate(),
                mb(decode.median),
                format!("{:.2}", bare.median / decode.median),
            ],
        ],
    }
}
