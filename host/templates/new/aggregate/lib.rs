//! {{name}}: an adstream aggregate plugin. The example counts events per value of one
//! column in tumbling windows of event time, and emits each window once the watermark has
//! passed its end. Its open windows are its state: the host snapshots them at checkpoints
//! and hands them to a new version on a hot swap.

use adstream_sdk::{
    Aggregate, AggregateOutput, Batch, ColumnKind, ConfigExt, DictBuilder, Field, FieldsExt,
    I64Builder, INT_KINDS, PluginError, STRING_KINDS, Setup, export_aggregate, field,
    time::parse_duration_ms,
};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)] // a misspelt key is an error, not ignored
struct Config {
    /// The window's length, e.g. "1m".
    window: String,
    /// The column whose values are counted.
    key: String,
    #[serde(default = "event_time")]
    time_column: String,
}

fn event_time() -> String {
    "event_time".into()
}

pub struct Plugin {
    size_ms: i64,
    key: String,
    time_column: String,
    /// Events per (window start, key value), for windows not yet emitted.
    open: BTreeMap<(i64, String), i64>,
    /// Windows ending at or before this were emitted: a row for one of them is late.
    closed_until: i64,
}

impl Plugin {
    /// Emits (and forgets) the windows that end at or before `until`.
    fn emit(&mut self, until: i64) -> Batch {
        let (mut start, mut key, mut events) = (I64Builder::default(), DictBuilder::default(), I64Builder::default());
        let closed: Vec<(i64, String)> = (self.open.keys())
            .filter(|(s, _)| s + self.size_ms <= until)
            .cloned()
            .collect();
        for k in closed {
            let n = self.open.remove(&k).unwrap_or(0);
            start.push(k.0);
            key.push(&k.1);
            events.push(n);
        }
        Batch::from_columns(vec![
            start.finish_timestamp("window_start"),
            key.finish(&self.key),
            events.finish("events"),
        ])
        .expect("the columns have one row per window")
    }
}

impl Aggregate for Plugin {
    fn configure(setup: &Setup) -> Result<(Self, Vec<Field>), PluginError> {
        let cfg: Config = setup.config()?;
        let size_ms = parse_duration_ms(&cfg.window)
            .map_err(|e| PluginError::InvalidConfig(format!("window: {e}")))?;
        setup.input.require(&cfg.key, STRING_KINDS)?;
        setup.input.require(&cfg.time_column, INT_KINDS)?;
        let output = vec![
            field("window_start", ColumnKind::TimestampMs, false),
            field(&cfg.key, ColumnKind::Dictionary, false),
            field("events", ColumnKind::Int64, false),
        ];
        let plugin = Plugin {
            size_ms,
            key: cfg.key,
            time_column: cfg.time_column,
            open: BTreeMap::new(),
            closed_until: i64::MIN,
        };
        Ok((plugin, output))
    }

    fn aggregate(&mut self, input: &Batch, watermark: i64) -> Result<AggregateOutput, PluginError> {
        let time = input.i64s(&self.time_column)?;
        let key = input.text(&self.key)?;
        let mut late = Vec::new();
        for row in 0..input.len() {
            let (Some(t), Some(k)) = (time.get(row), key.get(row)) else { continue };
            let start = t.div_euclid(self.size_ms) * self.size_ms;
            if start + self.size_ms <= self.closed_until {
                late.push(row as u32); // its window was emitted already
                continue;
            }
            *self.open.entry((start, k.to_string())).or_default() += 1;
        }
        self.closed_until = self.closed_until.max(watermark);
        Ok(AggregateOutput {
            windows: self.emit(watermark),
            late,
        })
    }

    fn flush(&mut self) -> Result<Batch, PluginError> {
        Ok(self.emit(i64::MAX))
    }

    fn snapshot(&self) -> Result<Vec<u8>, PluginError> {
        let open: Vec<(&(i64, String), &i64)> = self.open.iter().collect();
        serde_json::to_vec(&(self.closed_until, open)).map_err(|e| PluginError::Other(e.to_string()))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), PluginError> {
        let (closed_until, open): (i64, Vec<((i64, String), i64)>) = serde_json::from_slice(state)
            .map_err(|e| PluginError::InvalidState(format!("not a snapshot of this plugin: {e}")))?;
        self.closed_until = closed_until;
        self.open = open.into_iter().collect();
        Ok(())
    }
}

export_aggregate!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use adstream_sdk::TextBuilder;

    fn setup() -> Setup {
        Setup {
            config: r#"{"window": "1m", "key": "country"}"#.into(),
            input: vec![
                field("event_time", ColumnKind::TimestampMs, false),
                field("country", ColumnKind::Text, false),
            ],
            secrets: vec![],
        }
    }

    fn batch(events: &[(i64, &str)]) -> Batch {
        let (mut time, mut country) = (I64Builder::default(), TextBuilder::default());
        for (t, c) in events {
            time.push(*t);
            country.push(c);
        }
        Batch::from_columns(vec![time.finish_timestamp("event_time"), country.finish("country")]).unwrap()
    }

    #[test]
    fn counts_per_window_and_emits_once_the_watermark_passes() {
        let (mut p, _) = Plugin::configure(&setup()).unwrap();
        let out = p.aggregate(&batch(&[(1_000, "US"), (2_000, "US"), (3_000, "KR")]), 0).unwrap();
        assert_eq!(out.windows.len(), 0, "the minute is still open");
        let out = p.aggregate(&batch(&[(61_000, "US")]), 60_000).unwrap();
        assert_eq!(out.windows.len(), 2);
        assert_eq!(out.windows.i64s("events").unwrap().values(), [1, 2]);
        let out = p.aggregate(&batch(&[(5_000, "US")]), 60_000).unwrap();
        assert_eq!(out.late, [0], "its window was emitted");
        assert_eq!(p.flush().unwrap().len(), 1);
    }

    #[test]
    fn a_restored_instance_continues_where_the_old_one_stopped() {
        let (mut a, _) = Plugin::configure(&setup()).unwrap();
        a.aggregate(&batch(&[(1_000, "US")]), 0).unwrap();
        let (mut b, _) = Plugin::configure(&setup()).unwrap();
        b.restore(&a.snapshot().unwrap()).unwrap();
        b.aggregate(&batch(&[(2_000, "US")]), 0).unwrap();
        assert_eq!(b.flush().unwrap().i64s("events").unwrap().values(), [2]);
    }
}
