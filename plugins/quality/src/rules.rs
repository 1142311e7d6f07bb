//! The rules: configuration, checks against the input columns, and evaluation.

use crate::Failures;
use crate::unique::Unique;
use adstream_sdk::time::{iso8601, parse_duration_ms};
use adstream_sdk::{
    Batch, ColumnKind, Field, FieldsExt, INT_KINDS, PluginError, STRING_KINDS, StrCol,
};
use serde::Deserialize;

/// One rule as the pipeline file writes it.
#[derive(Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleConfig {
    NotNull {
        columns: Vec<String>,
    },
    InSet {
        column: String,
        values: Vec<String>,
    },
    InRange {
        column: String,
        min: Option<f64>,
        max: Option<f64>,
    },
    Matches {
        column: String,
        pattern: String,
    },
    Fresh {
        column: String,
        max_lag: String,
    },
    Unique {
        column: String,
        window: String,
    },
    ItemsTotal {
        column: String,
        items: String,
    },
}

enum Check {
    NotNull(Vec<String>),
    InSet(Vec<String>),
    InRange { min: f64, max: f64 },
    Matches(regex_lite::Regex),
    Fresh { max_lag_ms: i64 },
    Unique(Unique),
    ItemsTotal(String),
}

/// A compiled rule.
pub struct Rule {
    name: String,
    column: String,
    check: Check,
}

const NUMERIC_KINDS: &[ColumnKind] = &[
    ColumnKind::Int64,
    ColumnKind::Float64,
    ColumnKind::TimestampMs,
];

fn duration(text: &str, key: &str) -> Result<i64, PluginError> {
    parse_duration_ms(text).map_err(|e| PluginError::InvalidConfig(format!("{key}: {e}")))
}

impl Rule {
    /// Checks `config` against the input columns.
    pub fn compile(config: RuleConfig, input: &[Field]) -> Result<Rule, PluginError> {
        let (kind, column, check) = match config {
            RuleConfig::NotNull { columns } => {
                for c in &columns {
                    if input.get_field(c).is_none() {
                        return Err(PluginError::SchemaMismatch(format!("no column `{c}`")));
                    }
                }
                ("not_null", columns.join(","), Check::NotNull(columns))
            }
            RuleConfig::InSet { column, values } => {
                input.require(&column, STRING_KINDS)?;
                ("in_set", column, Check::InSet(values))
            }
            RuleConfig::InRange { column, min, max } => {
                input.require(&column, NUMERIC_KINDS)?;
                if min.is_none() && max.is_none() {
                    let m = "in_range needs `min`, `max` or both".to_string();
                    return Err(PluginError::InvalidConfig(m));
                }
                let (min, max) = (
                    min.unwrap_or(f64::NEG_INFINITY),
                    max.unwrap_or(f64::INFINITY),
                );
                ("in_range", column, Check::InRange { min, max })
            }
            RuleConfig::Matches { column, pattern } => {
                input.require(&column, STRING_KINDS)?;
                let re = regex_lite::Regex::new(&pattern)
                    .map_err(|e| PluginError::InvalidConfig(format!("pattern `{pattern}`: {e}")))?;
                ("matches", column, Check::Matches(re))
            }
            RuleConfig::Fresh { column, max_lag } => {
                input.require(&column, INT_KINDS)?;
                (
                    "fresh",
                    column,
                    Check::Fresh {
                        max_lag_ms: duration(&max_lag, "max_lag")?,
                    },
                )
            }
            RuleConfig::Unique { column, window } => {
                input.require(&column, STRING_KINDS)?;
                (
                    "unique",
                    column,
                    Check::Unique(Unique::new(duration(&window, "window")?)),
                )
            }
            RuleConfig::ItemsTotal { column, items } => {
                input.require(&column, &[ColumnKind::Float64])?;
                input.require(&items, STRING_KINDS)?;
                ("items_total", column, Check::ItemsTotal(items))
            }
        };
        Ok(Rule {
            name: format!("{kind}:{column}"),
            column,
            check,
        })
    }

    /// The input columns the rule reads.
    pub fn columns(&self) -> Vec<&str> {
        match &self.check {
            Check::NotNull(columns) => columns.iter().map(String::as_str).collect(),
            Check::ItemsTotal(items) => vec![self.column.as_str(), items.as_str()],
            _ => vec![self.column.as_str()],
        }
    }

    /// The rule's name in rejections and counters, e.g. `in_set:event_type`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rule's state, if it keeps any (only `unique` does).
    pub fn unique_ref(&self) -> Option<&Unique> {
        match &self.check {
            Check::Unique(u) => Some(u),
            _ => None,
        }
    }

    /// The same, to change.
    pub fn unique(&mut self) -> Option<&mut Unique> {
        match &mut self.check {
            Check::Unique(u) => Some(u),
            _ => None,
        }
    }

    /// Records every row of `input` that breaks this rule.
    pub fn check(
        &mut self,
        input: &Batch,
        watermark: i64,
        out: &mut Failures,
    ) -> Result<(), PluginError> {
        let rows = input.len();
        match &mut self.check {
            Check::NotNull(columns) => {
                for name in columns.iter() {
                    let Some(col) = input.column(name) else {
                        continue;
                    };
                    for row in (0..rows).filter(|&r| !col.is_valid(r)) {
                        out.fail(row, format!("{name} is null"));
                    }
                }
            }
            Check::InSet(values) => {
                let col = input.text(&self.column)?;
                let bad = |v: &str| !values.iter().any(|a| a == v);
                each_bad(&col, rows, bad, |row, v| {
                    let c = &self.column;
                    out.fail(row, format!("{c} `{v}` is not one of {values:?}"));
                });
            }
            Check::InRange { min, max } => {
                let (min, max) = (*min, *max);
                let c = &self.column;
                let mut check = |row: usize, v: f64| {
                    if !(min..=max).contains(&v) {
                        out.fail(row, format!("{c} {v} is outside [{min}, {max}]"));
                    }
                };
                if let Ok(col) = input.f64s(c) {
                    (0..rows).for_each(|r| col.get(r).into_iter().for_each(|v| check(r, v)));
                } else {
                    let col = input.i64s(c)?;
                    (0..rows).for_each(|r| col.get(r).into_iter().for_each(|v| check(r, v as f64)));
                }
            }
            Check::Matches(re) => {
                let col = input.text(&self.column)?;
                each_bad(
                    &col,
                    rows,
                    |v| !re.is_match(v),
                    |row, v| {
                        let c = &self.column;
                        out.fail(row, format!("{c} `{v}` does not match `{re}`"));
                    },
                );
            }
            Check::Fresh { max_lag_ms } => {
                let col = input.i64s(&self.column)?;
                let oldest = watermark.saturating_sub(*max_lag_ms);
                for row in 0..rows {
                    if let Some(t) = col.get(row).filter(|&t| t < oldest) {
                        let lag = (watermark - t) / 1000;
                        let msg = format!(
                            "{} {} is {lag}s behind the watermark (max {}s)",
                            self.column,
                            iso8601(t),
                            *max_lag_ms / 1000
                        );
                        out.fail(row, msg);
                    }
                }
            }
            Check::Unique(seen) => seen.check(input, &self.column, watermark, out)?,
            Check::ItemsTotal(items) => crate::items::check(input, &self.column, items, out)?,
        }
        Ok(())
    }
}

/// Calls `fail(row, value)` for each non-null row whose value `bad` says breaks the rule.
/// A dictionary column's distinct values are judged once each, not once per row.
fn each_bad(
    col: &StrCol,
    rows: usize,
    bad: impl Fn(&str) -> bool,
    mut fail: impl FnMut(usize, &str),
) {
    // Per dictionary key: 0 not judged yet, 1 passes, 2 breaks the rule.
    let mut judged: Vec<u8> = Vec::new();
    for row in 0..rows {
        let Some(v) = col.get(row) else { continue };
        let broken = match col.key(row) {
            Some(k) => {
                let k = k as usize;
                if k >= judged.len() {
                    judged.resize(k + 1, 0);
                }
                if judged[k] == 0 {
                    judged[k] = 1 + u8::from(bad(v));
                }
                judged[k] == 2
            }
            None => bad(v),
        };
        if broken {
            fail(row, v);
        }
    }
}
