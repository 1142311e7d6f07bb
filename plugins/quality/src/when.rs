//! `when = { event_type = ["order"] }`: a rule that applies only to rows whose column
//! holds one of the values (a stream of several event types, each with its own fields).
//! Rows it does not apply to pass it, and a `unique` rule does not remember them.

use adstream_sdk::{Batch, Field, FieldsExt, PluginError, STRING_KINDS};
use std::collections::BTreeMap;

pub struct When {
    column: String,
    values: Vec<String>,
}

impl When {
    pub fn compile(
        map: BTreeMap<String, Vec<String>>,
        input: &[Field],
    ) -> Result<When, PluginError> {
        let mut entries = map.into_iter();
        let (Some((column, values)), None) = (entries.next(), entries.next()) else {
            let m = "when names one column and its values, e.g. { event_type = [\"order\"] }";
            return Err(PluginError::InvalidConfig(m.into()));
        };
        input.require(&column, STRING_KINDS)?;
        Ok(When { column, values })
    }

    pub fn column(&self) -> &str {
        &self.column
    }

    /// Per row, whether the rule does not apply to it. A dictionary column's distinct
    /// values are judged once each, not once per row.
    pub fn skipped(&self, input: &Batch) -> Result<Vec<bool>, PluginError> {
        let col = input.text(&self.column)?;
        let skip = |v: Option<&str>| v.is_none_or(|v| !self.values.iter().any(|a| a == v));
        let Some(n) = col.dict_len() else {
            return Ok((0..input.len()).map(|r| skip(col.get(r))).collect());
        };
        let by_key: Vec<bool> = (0..n as u32)
            .map(|k| skip(Some(col.dict_value(k))))
            .collect();
        let out_of_range = skip(Some(""));
        Ok((0..input.len())
            .map(|r| match col.key(r) {
                Some(k) if col.is_valid(r) => {
                    by_key.get(k as usize).copied().unwrap_or(out_of_range)
                }
                _ => true,
            })
            .collect())
    }
}
