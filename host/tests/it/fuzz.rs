//! Fuzzing the two parsers that read what users and ad servers send: pipeline files and
//! events. Inputs are seeds from `host/tests/fuzz-corpus/` mutated at random (bytes cut,
//! inserted, replaced, lines repeated, syntax fragments spliced in); neither parser may
//! panic, and the decoder must account for every record. The number of mutated inputs
//! per parser is ADSTREAM_FUZZ_CASES (default 3000); a failing input is written to
//! target/fuzz-failures/ so that it can be added to the corpus.

use super::support::root;
use adstream::batch::RawBatch;
use adstream::batch::decode::Decoder;
use std::path::{Path, PathBuf};

/// xorshift64*: small and deterministic, so a failure reproduces from its case number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const FRAGMENTS: &[&str] = &[
    "[",
    "]",
    "[[stage]]",
    "[sink.x]",
    "[source]",
    "{",
    "}",
    "\"",
    "'",
    "=",
    ",",
    "\n",
    "#",
    "\\",
    "\\u0000",
    "kind = \"kafka\"",
    "kind = \"clickhouse\"",
    "plugin = \"x.wasm\"",
    "to = [\"nope\"]",
    "input = \"source\"",
    "1e999",
    "-9223372036854775809",
    "9223372036854775807",
    "nan",
    "inf",
    "true",
    "1979-05-27",
    "é",
    "😀",
    "\u{0}",
    "\u{feff}",
    "null",
    "[]",
    "{}",
    "\"event_time\":",
    "\"country\":\"US\"",
    ":",
    "\t",
    "\r\n",
    "0x10",
];

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(6) {
            0 if !data.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(data.len());
                data.drain(at.min(end)..end);
            }
            1 => {
                let f = FRAGMENTS[rng.below(FRAGMENTS.len())].as_bytes();
                data.splice(at..at, f.iter().copied());
            }
            2 if at < data.len() => data[at] = rng.next() as u8,
            3 => {
                let noise: Vec<u8> = (0..rng.below(8)).map(|_| rng.next() as u8).collect();
                data.splice(at..at, noise);
            }
            4 => {
                let text = data.clone();
                let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
                let line = lines[rng.below(lines.len())];
                data.splice(at..at, line.iter().copied().chain([b'\n']));
            }
            _ => data.truncate(at),
        }
    }
    data
}

fn seeds(dir: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = root().join("host/tests/fuzz-corpus").join(dir);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty());
    out
}

fn cases() -> u64 {
    std::env::var("ADSTREAM_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

/// Runs `check` on `input`; if it panics, saves the input and fails with its path.
fn guarded(
    kind: &str,
    case: u64,
    input: &[u8],
    check: impl FnOnce(&[u8]) + std::panic::UnwindSafe,
) {
    if let Err(panic) = std::panic::catch_unwind(|| check(input)) {
        let dir = root().join("target/fuzz-failures");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{kind}-{case}"));
        std::fs::write(&path, input).unwrap();
        let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        panic!(
            "{kind} case {case} panicked ({msg}); input saved to {}",
            path.display()
        );
    }
}

fn check_pipeline(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let lines = text.lines().count() + 1;
    if let Err(diags) = adstream::config::parse(Path::new("fuzz.toml"), &text) {
        assert!(!diags.is_empty());
        for d in diags {
            assert!(
                d.line >= 1 && d.line <= lines && d.col >= 1,
                "position {}:{} outside the file",
                d.line,
                d.col
            );
            assert!(!d.message.is_empty());
        }
    }
}

fn decoder() -> Decoder {
    let text = format!(
        "[source]\nkind = \"generator\"\n{}",
        super::support::AD_SCHEMA
    );
    let cfg = adstream::config::parse(Path::new("d.toml"), &text).unwrap();
    let mut d = Decoder::new(&cfg.schema, "event_time", Some(3_600_000));
    d.max_record_bytes = 4096;
    d
}

fn check_events(decoder: &Decoder, records: &[Vec<u8>]) {
    let refs: Vec<&[u8]> = records.iter().map(|r| r.as_slice()).collect();
    let decoded = decoder.decode(&RawBatch::from_records(&refs));
    assert_eq!(
        decoded.records.len() + decoded.rejected.len(),
        records.len(),
        "every record accounted for"
    );
    assert!(
        decoded
            .batch
            .columns
            .iter()
            .all(|c| c.len() == decoded.records.len())
    );
}

#[test]
fn pipeline_parser_never_panics() {
    let seeds = seeds("pipelines");
    for (path, bytes) in &seeds {
        guarded("pipeline-seed", 0, bytes, check_pipeline);
        assert!(path.exists());
    }
    let mut rng = Rng(0x5eed_0001);
    let n = cases();
    for case in 0..n {
        let (_, seed) = &seeds[rng.below(seeds.len())];
        let input = mutate(seed, &mut rng);
        guarded("pipeline", case, &input, check_pipeline);
    }
    eprintln!(
        "pipeline parser: {n} mutated inputs from {} seeds, no panic",
        seeds.len()
    );
}

#[test]
fn event_decoder_never_panics_and_loses_nothing() {
    let seeds = seeds("events");
    let decoder = decoder();
    let all: Vec<Vec<u8>> = seeds.iter().map(|(_, b)| b.clone()).collect();
    guarded("events-seed", 0, &all.concat(), |_| {
        check_events(&decoder, &all)
    });
    let mut rng = Rng(0x5eed_0002);
    let n = cases();
    for case in 0..n {
        let batch: Vec<Vec<u8>> = (0..1 + rng.below(8))
            .map(|_| mutate(&seeds[rng.below(seeds.len())].1, &mut rng))
            .collect();
        let joined = batch.join(&b'\n');
        guarded("events", case, &joined, |_| check_events(&decoder, &batch));
    }
    eprintln!(
        "event decoder: {n} mutated batches from {} seeds, no panic, every record accounted for",
        seeds.len()
    );
}
