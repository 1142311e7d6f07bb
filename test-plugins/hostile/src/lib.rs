//! `hostile`: a plugin that misbehaves on purpose, to show that the host survives it. It is
//! an aggregate that counts the rows it is given (so its state shows whether each row was
//! counted exactly once), and its `mode` decides how it misbehaves in `aggregate`:
//!
//! | mode | what it does |
//! |---|---|
//! | `ok` | counts rows |
//! | `loop` | never returns |
//! | `memory` | allocates until it cannot |
//! | `recursion` | recurses without end |
//! | `panic` | panics on every call |
//! | `poison` | panics when a row's `event_id` is `poison` |
//! | `huge` | returns 1000 rows per input row |
//! | `bad_lengths` | returns columns of different lengths |
//! | `bad_types` | returns a float column where it declared an integer one |
//! | `ambient` | tries files, the environment, sockets and the clock, and reports what it got |
//! | `bad_restore` | counts rows, but refuses any state handed to it (a version whose state format changed) |
//! | `sleep` | sleeps an hour (a WASI clock poll) before counting |
//! | `sleep_loop` | sleeps 10 ms at a time, for ever |
//! | `big_error` | returns an error of 32 MiB |
//! | `huge_value` | returns one text value of 100 MiB |
//! | `log_flood` | writes 200,000 log lines per call, each trying to forge a second line |
//! | `counter_flood` | adds to 200,000 distinct counters per call, names trying to break a metric line |
//! | `bad_utf8` | returns text that is not UTF-8 |
//! | `big_snapshot` | counts rows, and snapshots 200 MiB |
//! | `random` | returns a number from its random source |
//!
//! Not for production pipelines.

mod ambient;
mod flood;

use adstream_sdk::ColumnKind::{Int64, Text};
use adstream_sdk::{
    Aggregate, AggregateOutput, Batch, ConfigExt, F64Builder, Field, I64Builder, PluginError,
    Setup, TextBuilder, export_aggregate, field,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    mode: String,
}

pub struct Hostile {
    mode: String,
    rows: i64,
}

fn out(keys: &[&str], counts: &[i64]) -> Result<Batch, PluginError> {
    let (mut k, mut c) = (TextBuilder::default(), I64Builder::default());
    for (key, n) in keys.iter().zip(counts) {
        k.push(key);
        c.push(*n);
    }
    Batch::from_columns(vec![k.finish("key"), c.finish("count")])
}

/// Recursion the optimiser cannot turn into a loop: each frame keeps a buffer alive.
fn recurse(depth: u64) -> u64 {
    let pad = std::hint::black_box([depth; 64]);
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(pad[(depth % 64) as usize] + 1) + std::hint::black_box(pad)[3]
}

impl Aggregate for Hostile {
    fn configure(setup: &Setup) -> Result<(Self, Vec<Field>), PluginError> {
        let cfg: Config = setup.config()?;
        Ok((
            Hostile {
                mode: cfg.mode,
                rows: 0,
            },
            vec![field("key", Text, false), field("count", Int64, false)],
        ))
    }

    fn aggregate(
        &mut self,
        input: &Batch,
        _watermark: i64,
    ) -> Result<AggregateOutput, PluginError> {
        let windows = match self.mode.as_str() {
            "ok" | "bad_restore" | "big_snapshot" => out(&[], &[])?,
            "loop" => {
                let mut x: u64 = 1;
                loop {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    if x == 0 {
                        break out(&[], &[])?;
                    }
                }
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    if hoard.len() == usize::MAX {
                        break out(&[], &[])?;
                    }
                }
            }
            "recursion" => out(&["depth"], &[recurse(0) as i64])?,
            "panic" => panic!("hostile plugin: panicking on purpose"),
            "poison" => {
                let ids = input.text("event_id")?;
                if (0..input.len()).any(|r| ids.get(r) == Some("poison")) {
                    panic!("hostile plugin: poisoned row");
                }
                out(&[], &[])?
            }
            "huge" => {
                let n = input.len() * 1000;
                let keys = vec!["x"; n];
                out(&keys, &vec![1; n])?
            }
            "bad_lengths" => {
                let mut k = TextBuilder::default();
                k.push("a");
                k.push("b");
                let mut c = I64Builder::default();
                c.push(1);
                // Assembled by hand: Batch::from_columns would refuse it.
                Batch {
                    rows: 2,
                    columns: vec![k.finish("key"), c.finish("count")],
                }
            }
            "bad_types" => {
                let mut k = TextBuilder::default();
                k.push("a");
                let mut c = F64Builder::default();
                c.push(1.5);
                Batch::from_columns(vec![k.finish("key"), c.finish("count")])?
            }
            "ambient" => ambient::probe()?,
            other if let Some(done) = flood::run(other, input.len()) => done?,
            other => {
                return Err(PluginError::InvalidConfig(format!(
                    "unknown mode `{other}`"
                )));
            }
        };
        self.rows += input.len() as i64;
        Ok(AggregateOutput::windows(windows))
    }

    fn flush(&mut self) -> Result<Batch, PluginError> {
        out(&["rows"], &[self.rows])
    }

    fn snapshot(&self) -> Result<Vec<u8>, PluginError> {
        if self.mode == "big_snapshot" {
            return Ok(vec![0; 200 << 20]);
        }
        Ok(self.rows.to_le_bytes().to_vec())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), PluginError> {
        if self.mode == "bad_restore" {
            return Err(PluginError::InvalidState(
                "hostile plugin: this version cannot read that state".into(),
            ));
        }
        let bytes: [u8; 8] = state
            .try_into()
            .map_err(|_| PluginError::InvalidState("expected 8 bytes".into()))?;
        self.rows = i64::from_le_bytes(bytes);
        Ok(())
    }
}

export_aggregate!(Hostile);
