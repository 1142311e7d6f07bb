//! RowBinary, written straight from the columns: each row is its values back to back, a
//! nullable value preceded by a null flag. Timestamps become DateTime (seconds, UInt32):
//! ClickHouse 18.16 has no DateTime64.

use adstream_sdk::{Batch, ColumnKind, Field, Values, kind_name, kind_of};

/// The ClickHouse type a field is stored as.
pub fn type_of(f: &Field) -> String {
    let base = match f.kind {
        ColumnKind::Int64 => "Int64",
        ColumnKind::Float64 => "Float64",
        ColumnKind::Boolean => "UInt8",
        ColumnKind::Text | ColumnKind::Dictionary => "String",
        ColumnKind::TimestampMs => "DateTime",
    };
    if f.nullable {
        format!("Nullable({base})")
    } else {
        base.to_string()
    }
}

/// Rows whose columns are not the ones the sink was opened for.
#[derive(Debug, thiserror::Error)]
#[error("rows have columns [{got}], the table was set up for [{want}]")]
pub struct Mismatch {
    got: String,
    want: String,
}

/// The rows must have the columns the sink was opened for, in that order.
pub fn check(batch: &Batch, fields: &[Field]) -> Result<(), Mismatch> {
    let same = batch.columns.len() == fields.len()
        && batch.columns.iter().zip(fields).all(|(c, f)| {
            let k = kind_of(&c.values);
            c.name == f.name
                && (k == f.kind
                    || (k == ColumnKind::Dictionary && f.kind == ColumnKind::Text)
                    || (k == ColumnKind::Text && f.kind == ColumnKind::Dictionary))
        });
    if same {
        return Ok(());
    }
    let got: Vec<String> = batch
        .columns
        .iter()
        .map(|c| format!("{} {}", c.name, kind_name(kind_of(&c.values))))
        .collect();
    let want: Vec<String> = fields
        .iter()
        .map(|f| format!("{} {}", f.name, kind_name(f.kind)))
        .collect();
    Err(Mismatch {
        got: got.join(", "),
        want: want.join(", "),
    })
}

fn varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn string(bytes: &[u8], out: &mut Vec<u8>) {
    varint(bytes.len(), out);
    out.extend_from_slice(bytes);
}

fn slice<'a>(offsets: &[u32], bytes: &'a [u8], i: usize) -> &'a [u8] {
    let (Some(&a), Some(&b)) = (offsets.get(i), offsets.get(i + 1)) else {
        return &[];
    };
    bytes.get(a as usize..b as usize).unwrap_or(&[])
}

/// Appends every row of `batch` (checked with [`check`] against `fields`) to `out`.
pub fn encode(batch: &Batch, fields: &[Field], out: &mut Vec<u8>) {
    for row in 0..batch.len() {
        for (col, field) in batch.columns.iter().zip(fields) {
            // The table's type decides the null flag, not whether this batch has nulls.
            if field.nullable {
                let null = !col.is_valid(row);
                out.push(u8::from(null));
                if null {
                    continue;
                }
            }
            match &col.values {
                Values::Int64(v) => out.extend_from_slice(&v[row].to_le_bytes()),
                Values::Float64(v) => out.extend_from_slice(&v[row].to_le_bytes()),
                Values::Boolean(v) => out.push(v[row]),
                Values::TimestampMs(v) => {
                    let secs = v[row].div_euclid(1000).clamp(0, u32::MAX as i64) as u32;
                    out.extend_from_slice(&secs.to_le_bytes());
                }
                Values::Text(s) => string(slice(&s.offsets, &s.bytes, row), out),
                Values::Dictionary(d) => {
                    let key = d.keys[row] as usize;
                    string(slice(&d.values.offsets, &d.values.bytes, key), out);
                }
            }
        }
    }
}
