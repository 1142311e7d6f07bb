//! {{name}}: an adstream detect plugin. The example raises an alert for each window row
//! whose count reaches a threshold. It keeps no state between windows; a rule that does
//! (a moving baseline) saves it in `snapshot` and reads it back in `restore`.

use adstream_sdk::{
    Batch, ColumnKind, ConfigExt, Detect, Field, FieldsExt, I64Builder, INT_KINDS, PluginError,
    Setup, TextBuilder, export_detect, field,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)] // a misspelt key is an error, not ignored
struct Config {
    /// The window column to watch, e.g. "events".
    column: String,
    threshold: i64,
}

pub struct Plugin {
    column: String,
    threshold: i64,
}

impl Detect for Plugin {
    fn configure(setup: &Setup) -> Result<(Self, Vec<Field>), PluginError> {
        let cfg: Config = setup.config()?;
        setup.input.require(&cfg.column, INT_KINDS)?;
        setup.input.require("window_start", INT_KINDS)?;
        let output = vec![
            field("window_start", ColumnKind::TimestampMs, false),
            field("value", ColumnKind::Int64, false),
            field("message", ColumnKind::Text, false),
        ];
        Ok((Plugin { column: cfg.column, threshold: cfg.threshold }, output))
    }

    fn detect(&mut self, windows: &Batch) -> Result<Batch, PluginError> {
        let start = windows.i64s("window_start")?;
        let values = windows.i64s(&self.column)?;
        let (mut at, mut value, mut message) = (I64Builder::default(), I64Builder::default(), TextBuilder::default());
        for row in 0..windows.len() {
            let (Some(s), Some(v)) = (start.get(row), values.get(row)) else { continue };
            if v >= self.threshold {
                at.push(s);
                value.push(v);
                message.push(&format!("{} reached {v} (threshold {})", self.column, self.threshold));
            }
        }
        Batch::from_columns(vec![at.finish_timestamp("window_start"), value.finish("value"), message.finish("message")])
    }

    fn snapshot(&self) -> Result<Vec<u8>, PluginError> {
        Ok(Vec::new())
    }

    fn restore(&mut self, _state: &[u8]) -> Result<(), PluginError> {
        Ok(())
    }
}

export_detect!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_on_windows_at_or_above_the_threshold() {
        let setup = Setup {
            config: r#"{"column": "events", "threshold": 3}"#.into(),
            input: vec![
                field("window_start", ColumnKind::TimestampMs, false),
                field("events", ColumnKind::Int64, false),
            ],
            secrets: vec![],
        };
        let (mut p, _) = Plugin::configure(&setup).unwrap();
        let (mut start, mut events) = (I64Builder::default(), I64Builder::default());
        for (s, n) in [(0, 2), (60_000, 3), (120_000, 9)] {
            start.push(s);
            events.push(n);
        }
        let windows = Batch::from_columns(vec![start.finish_timestamp("window_start"), events.finish("events")]).unwrap();
        let alerts = p.detect(&windows).unwrap();
        assert_eq!(alerts.i64s("value").unwrap().values(), [3, 9]);
        assert_eq!(alerts.text("message").unwrap().get(0), Some("events reached 3 (threshold 3)"));
    }
}
