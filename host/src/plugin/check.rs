//! Checks a batch a plugin returned before anything else reads it: a plugin may be
//! buggy or hostile, and a batch whose columns disagree would otherwise break the stages
//! and sinks after it.

use super::error::{Malformed, TrapKind};
use super::limits::Limits;
use adstream_sdk::{Batch, Field, Strings, Values, kind_name, kind_of};

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
        Values::Text(s) => {
            check_strings(&s.offsets, &s.bytes, rows, name)?;
            check_utf8(s, name)
        }
        Values::Dictionary(d) => {
            let entries = d.values.offsets.len().saturating_sub(1);
            check_strings(&d.values.offsets, &d.values.bytes, entries, name)?;
            check_utf8(&d.values, name)?;
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

/// Every value is UTF-8 (the offsets were checked first). The common case is one pass:
/// the whole buffer valid, and no value starting inside a character.
fn check_utf8(s: &Strings, name: &str) -> Result<(), Malformed> {
    let on_boundary = |&at: &u32| s.bytes.get(at as usize).is_none_or(|&b| (b as i8) >= -0x40);
    if std::str::from_utf8(&s.bytes).is_ok() && s.offsets.iter().all(on_boundary) {
        return Ok(());
    }
    let row = s
        .offsets
        .windows(2)
        .position(|w| std::str::from_utf8(&s.bytes[w[0] as usize..w[1] as usize]).is_err())
        .unwrap_or(0);
    Err(Malformed::NotUtf8 {
        column: name.into(),
        row,
    })
}

/// The bytes a batch's values take, and its longest text value.
fn sizes(batch: &Batch) -> (usize, usize) {
    let (mut total, mut longest) = (0, 0);
    for c in &batch.columns {
        let strings = match &c.values {
            Values::Text(s) => Some(s),
            Values::Dictionary(d) => Some(&d.values),
            _ => None,
        };
        total += match &c.values {
            Values::Int64(v) | Values::TimestampMs(v) => v.len() * 8,
            Values::Float64(v) => v.len() * 8,
            Values::Boolean(v) => v.len(),
            Values::Text(s) => s.bytes.len() + s.offsets.len() * 4,
            Values::Dictionary(d) => d.keys.len() * 4 + d.values.bytes.len(),
        };
        if let Some(s) = strings {
            longest = s
                .offsets
                .windows(2)
                .map(|w| (w[1] - w[0]) as usize)
                .fold(longest, usize::max);
        }
    }
    (total, longest)
}

/// Checks a returned batch against the stage's budgets: bytes in all, and per text value.
pub fn check_budget(batch: &Batch, limits: &Limits) -> Result<(), TrapKind> {
    let (total, longest) = sizes(batch);
    let over = |what, key, got, limit| TrapKind::Budget {
        what,
        key,
        got,
        limit,
    };
    if longest > limits.value_bytes {
        return Err(over(
            "bytes in one value",
            "value_bytes",
            longest,
            limits.value_bytes,
        ));
    }
    if total > limits.output_bytes {
        return Err(over(
            "bytes of output",
            "output_bytes",
            total,
            limits.output_bytes,
        ));
    }
    Ok(())
}

/// Checks that `batch` has exactly the declared `fields`, every column `batch.rows` long,
/// offsets and dictionary keys in bounds, text UTF-8, and at most `max_rows` rows.
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
