//! Checks a batch a plugin returned before anything else reads it: a plugin may be
//! buggy or hostile, and a batch whose columns disagree would otherwise break the stages
//! and sinks after it.

use super::error::Malformed;
use adstream_sdk::{Batch, Field, Values, kind_name, kind_of};

fn check_strings(offsets: &[u32], bytes: &[u8], rows: usize, name: &str) -> Result<(), Malformed> {
    if offsets.len() != rows + 1 {
        return Err(Malformed::OffsetCount {
            column: name.into(),
            offsets: offsets.len(),
            rows,
        });
    }
    if offsets.windows(2).any(|w| w[0] > w[1])
        || offsets.last().is_some_and(|&e| e as usize > bytes.len())
    {
        return Err(Malformed::Offsets {
            column: name.into(),
        });
    }
    Ok(())
}

fn check_values(values: &Values, rows: usize, name: &str) -> Result<(), Malformed> {
    match values {
        Values::Text(s) => check_strings(&s.offsets, &s.bytes, rows, name),
        Values::Dictionary(d) => {
            let entries = d.values.offsets.len().saturating_sub(1);
            check_strings(&d.values.offsets, &d.values.bytes, entries, name)?;
            if d.keys.len() != rows || d.keys.iter().any(|&k| k as usize >= entries.max(1)) {
                return Err(Malformed::Keys {
                    column: name.into(),
                });
            }
            Ok(())
        }
        other => {
            let len = match other {
                Values::Int64(v) | Values::TimestampMs(v) => v.len(),
                Values::Float64(v) => v.len(),
                Values::Boolean(v) => v.len(),
                _ => rows,
            };
            if len != rows {
                return Err(Malformed::Length {
                    column: name.into(),
                    len,
                    rows,
                });
            }
            Ok(())
        }
    }
}

/// Checks that `batch` has exactly the declared `fields`, every column `batch.rows` long,
/// offsets and dictionary keys in bounds, and at most `max_rows` rows.
pub fn check_output(batch: &Batch, fields: &[Field], max_rows: u64) -> Result<(), Malformed> {
    let rows = batch.rows as usize;
    if batch.rows as u64 > max_rows {
        return Err(Malformed::TooManyRows {
            rows,
            limit: max_rows,
        });
    }
    let names = batch.columns.iter().map(|c| c.name.as_str());
    if !names.eq(fields.iter().map(|f| f.name.as_str())) {
        return Err(Malformed::Columns {
            got: batch.columns.iter().map(|c| c.name.clone()).collect(),
            declared: fields.iter().map(|f| f.name.clone()).collect(),
        });
    }
    for (col, field) in batch.columns.iter().zip(fields) {
        let name = &col.name;
        if kind_of(&col.values) != field.kind {
            return Err(Malformed::Kind {
                column: name.clone(),
                got: kind_name(kind_of(&col.values)),
                declared: kind_name(field.kind),
            });
        }
        check_values(&col.values, rows, name)?;
        if let Some(bits) = &col.valid
            && bits.len() < rows.div_ceil(8)
        {
            return Err(Malformed::Bitmap {
                column: name.clone(),
                rows,
            });
        }
        if col.valid.is_some() && !field.nullable && (0..rows).any(|r| !col.is_valid(r)) {
            return Err(Malformed::Nulls {
                column: name.clone(),
            });
        }
    }
    Ok(())
}
