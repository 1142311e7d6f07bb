//! The rules: configuration, checks against the input columns, and evaluation.

use crate::Failures;
use crate::unique::Unique;
use adstream_sdk::time::{iso8601, parse_duration_ms};
use adstream_sdk::{Batch, ColumnKind, Field, FieldsExt, INT_KINDS, PluginError, STRING_KINDS};
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
}

enum Check {
    NotNull(Vec<String>),
    InSet(Vec<String>),
    InRange { min: f64, max: f64 },
    Matches(regex_lite::Regex),
    Fresh { max_lag_ms: i64 },
    Unique(Unique),
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
        };
        Ok(Rule {
            name: format!("{kind}:{column}"),
            column,
            check,
        })
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
                for row in 0..rows {
                    if let Some(v) = col.get(row).filter(|v| !values.iter().any(|a| a == v)) {
                        out.fail(
                            row,
                            format!("{} `{v}` is not one of {values:?}", self.column),
                        );
                    }
                }
            }
            Check::InRange { min, max } => {
                let value = numeric(input, &self.column)?;
                for row in 0..rows {
                    if let Some(v) = value(row).filter(|v| !(*min..=*max).contains(v)) {
                        let c = &self.column;
                        out.fail(row, format!("{c} {v} is outside [{min}, {max}]"));
                    }
                }
            }
            Check::Matches(re) => {
                let col = input.text(&self.column)?;
                for row in 0..rows {
                    if let Some(v) = col.get(row).filter(|v| !re.is_match(v)) {
                        out.fail(row, format!("{} `{v}` does not match `{re}`", self.column));
                    }
                }
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
        }
        Ok(())
    }
}

/// A numeric column read as f64, whatever its integer or float kind.
fn numeric<'a>(
    input: &'a Batch,
    column: &str,
) -> Result<Box<dyn Fn(usize) -> Option<f64> + 'a>, PluginError> {
    if let Ok(col) = input.f64s(column) {
        return Ok(Box::new(move |r| col.get(r)));
    }
    let col = input.i64s(column)?;
    Ok(Box::new(move |r| col.get(r).map(|v| v as f64)))
}
