//! Checks a batch a plugin returned before anything else reads it: a plugin may be
//! buggy or hostile, and a batch whose columns disagree would otherwise break the stages
//! and sinks after it.

use adstream_sdk::{Batch, Field, Values, kind_name, kind_of};

fn check_strings(offsets: &[u32], bytes: &[u8], rows: usize, name: &str) -> Result<(), String> {
    if offsets.len() != rows + 1 {
        return Err(format!(
            "column `{name}` has {} offsets for {rows} strings",
            offsets.len()
        ));
    }
    if offsets.windows(2).any(|w| w[0] > w[1])
        || offsets.last().is_some_and(|&e| e as usize > bytes.len())
    {
        return Err(format!(
            "column `{name}` has offsets out of order or past its bytes"
        ));
    }
    Ok(())
}

/// Checks that `batch` has exactly the declared `fields`, every column `batch.rows` long,
/// offsets and dictionary keys in bounds, and at most `max_rows` rows.
pub fn check_output(batch: &Batch, fields: &[Field], max_rows: u64) -> Result<(), String> {
    let rows = batch.rows as usize;
    if batch.rows as u64 > max_rows {
        return Err(format!(
            "returned {rows} rows, more than the stage's limit of {max_rows}"
        ));
    }
    let names: Vec<&str> = batch.columns.iter().map(|c| c.name.as_str()).collect();
    let declared: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    if names != declared {
        return Err(format!(
            "returned columns {names:?}, but configure declared {declared:?}"
        ));
    }
    for (col, field) in batch.columns.iter().zip(fields) {
        let name = &col.name;
        if kind_of(&col.values) != field.kind {
            return Err(format!(
                "column `{name}` is {}, but configure declared {}",
                kind_name(kind_of(&col.values)),
                kind_name(field.kind)
            ));
        }
        match &col.values {
            Values::Text(s) => check_strings(&s.offsets, &s.bytes, rows, name)?,
            Values::Dictionary(d) => {
                let entries = d.values.offsets.len().saturating_sub(1);
                check_strings(&d.values.offsets, &d.values.bytes, entries, name)?;
                if d.keys.len() != rows || d.keys.iter().any(|&k| k as usize >= entries.max(1)) {
                    return Err(format!(
                        "column `{name}` has keys missing or outside its dictionary"
                    ));
                }
            }
            other => {
                let len = match other {
                    Values::Int64(v) | Values::TimestampMs(v) => v.len(),
                    Values::Float64(v) => v.len(),
                    Values::Boolean(v) => v.len(),
                    _ => rows,
                };
                if len != rows {
                    return Err(format!("column `{name}` has {len} values for {rows} rows"));
                }
            }
        }
        if let Some(bits) = &col.valid
            && bits.len() < rows.div_ceil(8)
        {
            return Err(format!(
                "column `{name}` has a validity bitmap too short for {rows} rows"
            ));
        }
        if col.valid.is_some() && !field.nullable {
            let nulls = (0..rows).any(|r| !col.is_valid(r));
            if nulls {
                return Err(format!(
                    "column `{name}` has nulls, but configure declared it not nullable"
                ));
            }
        }
    }
    Ok(())
}
