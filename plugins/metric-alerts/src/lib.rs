//! `metric-alerts`: anomaly rules over the rows of any aggregate, in the alert shape of
//! `anomaly-ema` (so `slack-format` and the alert sinks take them as they are).
//!
//! ```toml
//! config = { group_by = [], alpha = 0.2, rules = [
//!   { alert = "payment_failure_spike", metric = "failure_rate", above = 0.15, min = { attempts = 50 }, severity = "critical" },
//!   { alert = "revenue_drop", metric = "revenue", drop = 0.5, min = { orders = 20 } },
//! ] }
//! ```
//!
//! Per rule and group (the `group_by` columns' values), a baseline is the exponential
//! moving average of the metric over earlier windows; the first window sets it. A window
//! that fires does not move it (one outage must not teach the rule that outages are
//! normal). `above`/`below` compare with a fixed threshold instead.

mod rule;

use adstream_sdk::ColumnKind::{Dictionary, Float64, Text, TimestampMs};
use adstream_sdk::time::iso8601;
use adstream_sdk::{
    Batch, ConfigExt, Detect, DictBuilder, F64Builder, Field, FieldsExt, I64Builder, INT_KINDS,
    PluginError, STRING_KINDS, Setup, TextBuilder, export_detect, field,
};
use rule::Rule;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    rules: Vec<Rule>,
    #[serde(default)]
    group_by: Vec<String>,
    #[serde(default = "alpha")]
    alpha: f64,
}

fn alpha() -> f64 {
    0.2
}

pub struct MetricAlerts {
    rules: Vec<Rule>,
    group_by: Vec<String>,
    alpha: f64,
    /// Baseline per (rule index, group values joined by U+001F).
    baselines: BTreeMap<(u32, String), f64>,
}

fn bad(m: String) -> PluginError {
    PluginError::InvalidConfig(m)
}

fn fields(group_by: &[String]) -> Vec<Field> {
    let mut f = vec![
        field("alert_id", Text, false),
        field("alert_time", Text, false),
        field("alert_type", Dictionary, false),
        field("severity", Dictionary, false),
    ];
    f.extend(group_by.iter().map(|d| field(d, Dictionary, false)));
    f.extend([
        field("metric_name", Dictionary, false),
        field("current_value", Float64, false),
        field("expected_value", Float64, false),
        field("deviation_percent", Float64, false),
        field("message", Text, false),
        field("window_start", TimestampMs, false),
        field("window_end", TimestampMs, false),
    ]);
    f
}

/// A UUID-shaped id from rule, group and window: a replay gives the same ids.
fn alert_id(alert: &str, group: &str, window: (i64, i64)) -> String {
    let mut h = Sha256::new();
    for part in [
        alert.as_bytes(),
        group.as_bytes(),
        &window.0.to_le_bytes(),
        &window.1.to_le_bytes(),
    ] {
        h.update(part);
        h.update([0x1f]);
    }
    let mut b: [u8; 16] = h.finalize()[..16].try_into().expect("SHA-256 has 32 bytes");
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

impl MetricAlerts {
    fn check_input(cfg: &Config, input: &[Field]) -> Result<(), PluginError> {
        for name in ["window_start", "window_end"] {
            input.require(name, INT_KINDS)?;
        }
        for d in &cfg.group_by {
            input.require(d, STRING_KINDS)?;
        }
        for r in &cfg.rules {
            r.check().map_err(bad)?;
            input.require(&r.metric, &[Float64])?;
            for c in r.min.keys() {
                input.require(c, &[Float64, adstream_sdk::ColumnKind::Int64])?;
            }
            for c in r.only.keys() {
                input.require(c, STRING_KINDS)?;
            }
        }
        Ok(())
    }

    /// A numeric column's value at `row` as f64.
    fn number(b: &Batch, name: &str, row: usize) -> Option<f64> {
        match b.f64s(name) {
            Ok(c) => c.get(row),
            Err(_) => b.i64s(name).ok()?.get(row).map(|v| v as f64),
        }
    }

    fn applies(r: &Rule, b: &Batch, row: usize) -> bool {
        let enough = r
            .min
            .iter()
            .all(|(c, m)| Self::number(b, c, row).is_some_and(|v| v >= *m));
        let wanted = r.only.iter().all(|(c, values)| {
            b.text(c)
                .ok()
                .and_then(|col| col.get(row))
                .is_some_and(|v| values.iter().any(|x| x == v))
        });
        enough && wanted
    }
}

#[derive(Default)]
struct Rows {
    id: TextBuilder,
    time: TextBuilder,
    kind: DictBuilder,
    severity: DictBuilder,
    dims: Vec<DictBuilder>,
    metric: DictBuilder,
    current: F64Builder,
    expected: F64Builder,
    deviation: F64Builder,
    message: TextBuilder,
    start: I64Builder,
    end: I64Builder,
}

impl Rows {
    fn push(&mut self, r: &Rule, group: &[&str], window: (i64, i64), current: f64, expected: f64) {
        let deviation = if expected == 0.0 {
            0.0
        } else {
            (current - expected) / expected.abs() * 100.0
        };
        self.id
            .push(&alert_id(&r.alert, &group.join("\u{1f}"), window));
        self.time.push(&iso8601(window.1));
        self.kind.push(&r.alert);
        self.severity.push(&r.severity);
        for (b, d) in self.dims.iter_mut().zip(group) {
            b.push(d);
        }
        self.metric.push(&r.metric);
        self.current.push(current);
        self.expected.push(expected);
        self.deviation.push((deviation * 100.0).round() / 100.0);
        let at = if group.is_empty() {
            String::new()
        } else {
            format!(" for {}", group.join(" "))
        };
        self.message.push(&format!(
            "{}: {} is {current:.4} against {expected:.4} ({deviation:+.1}%){at}, window {} to {}",
            r.alert,
            r.metric,
            iso8601(window.0),
            iso8601(window.1)
        ));
        self.start.push(window.0);
        self.end.push(window.1);
    }

    fn finish(self, group_by: &[String]) -> Result<Batch, PluginError> {
        let mut columns = vec![
            self.id.finish("alert_id"),
            self.time.finish("alert_time"),
            self.kind.finish("alert_type"),
            self.severity.finish("severity"),
        ];
        columns.extend(
            self.dims
                .into_iter()
                .zip(group_by)
                .map(|(b, d)| b.finish(d)),
        );
        columns.extend([
            self.metric.finish("metric_name"),
            self.current.finish("current_value"),
            self.expected.finish("expected_value"),
            self.deviation.finish("deviation_percent"),
            self.message.finish("message"),
            self.start.finish_timestamp("window_start"),
            self.end.finish_timestamp("window_end"),
        ]);
        Batch::from_columns(columns)
    }
}

impl Detect for MetricAlerts {
    fn configure(setup: &Setup) -> Result<(Self, Vec<Field>), PluginError> {
        let cfg: Config = setup.config()?;
        if !(cfg.alpha > 0.0 && cfg.alpha <= 1.0) {
            return Err(bad(format!(
                "alpha = {} (use a value in (0, 1])",
                cfg.alpha
            )));
        }
        Self::check_input(&cfg, &setup.input)?;
        let out = fields(&cfg.group_by);
        let plugin = MetricAlerts {
            rules: cfg.rules,
            group_by: cfg.group_by,
            alpha: cfg.alpha,
            baselines: BTreeMap::new(),
        };
        Ok((plugin, out))
    }

    fn detect(&mut self, windows: &Batch) -> Result<Batch, PluginError> {
        let (starts, ends) = (windows.i64s("window_start")?, windows.i64s("window_end")?);
        let dims: Vec<_> = self
            .group_by
            .iter()
            .map(|d| windows.text(d))
            .collect::<Result<_, _>>()?;
        let mut rows = Rows {
            dims: vec![DictBuilder::default(); self.group_by.len()],
            ..Rows::default()
        };
        for row in 0..windows.len() {
            let (Some(start), Some(end)) = (starts.get(row), ends.get(row)) else {
                continue;
            };
            let group: Vec<&str> = dims.iter().map(|c| c.get(row).unwrap_or("")).collect();
            for (i, r) in self.rules.iter().enumerate() {
                let Some(value) = Self::number(windows, &r.metric, row) else {
                    continue;
                };
                if !Self::applies(r, windows, row) || !value.is_finite() {
                    continue;
                }
                let key = (i as u32, group.join("\u{1f}"));
                let baseline = self.baselines.get(&key).copied();
                let verdict = r.judge(value, baseline);
                if let Some(v) = verdict.filter(|v| v.fired) {
                    rows.push(r, &group, (start, end), value, v.expected);
                    continue;
                }
                if r.uses_baseline() {
                    let next =
                        baseline.map_or(value, |b| (1.0 - self.alpha) * b + self.alpha * value);
                    self.baselines.insert(key, next);
                }
            }
        }
        rows.finish(&self.group_by)
    }

    fn snapshot(&self) -> Result<Vec<u8>, PluginError> {
        let entries: Vec<(&(u32, String), u64)> = self
            .baselines
            .iter()
            .map(|(k, v)| (k, v.to_bits()))
            .collect();
        postcard::to_allocvec(&entries).map_err(|e| PluginError::Other(format!("snapshot: {e}")))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), PluginError> {
        let entries: Vec<((u32, String), u64)> = postcard::from_bytes(state)
            .map_err(|e| PluginError::InvalidState(format!("unreadable snapshot: {e}")))?;
        self.baselines = entries
            .into_iter()
            .map(|(k, v)| (k, f64::from_bits(v)))
            .collect();
        Ok(())
    }
}

export_detect!(MetricAlerts);

#[cfg(test)]
mod tests;
