//! Rows as JSON objects, written straight from the columns.

use adstream_sdk::{Batch, Column, Values};
use std::io::Write;

fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    // serde_json escapes correctly; invalid UTF-8 from a misbehaving plugin is replaced
    // rather than written through.
    let text = String::from_utf8_lossy(s);
    let _ = serde_json::to_writer(&mut *out, &*text);
}

fn slice<'a>(offsets: &[u32], bytes: &'a [u8], i: usize) -> &'a [u8] {
    let (Some(&a), Some(&b)) = (offsets.get(i), offsets.get(i + 1)) else {
        return &[];
    };
    bytes.get(a as usize..b as usize).unwrap_or(&[])
}

/// Writes the value of `row` in `col` as JSON.
pub fn write_value(out: &mut Vec<u8>, col: &Column, row: usize) {
    if !col.is_valid(row) {
        out.extend_from_slice(b"null");
        return;
    }
    match &col.values {
        Values::Int64(v) | Values::TimestampMs(v) => {
            let _ = write!(out, "{}", v.get(row).copied().unwrap_or(0));
        }
        Values::Float64(v) => match v.get(row) {
            Some(x) if x.is_finite() => {
                let _ = write!(out, "{x}");
            }
            _ => out.extend_from_slice(b"null"),
        },
        Values::Boolean(v) => out.extend_from_slice(if v.get(row).copied().unwrap_or(0) != 0 {
            b"true"
        } else {
            b"false"
        }),
        Values::Text(s) => write_str(out, slice(&s.offsets, &s.bytes, row)),
        Values::Dictionary(d) => {
            let key = d.keys.get(row).copied().unwrap_or(0) as usize;
            write_str(out, slice(&d.values.offsets, &d.values.bytes, key));
        }
    }
}

/// Writes `row` as one JSON object (no newline).
pub fn write_row(out: &mut Vec<u8>, batch: &Batch, row: usize) {
    out.push(b'{');
    for (i, col) in batch.columns.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, col.name.as_bytes());
        out.push(b':');
        write_value(out, col, row);
    }
    out.push(b'}');
}

/// `row` as a JSON string.
pub fn row_json(batch: &Batch, row: usize) -> String {
    let mut out = Vec::with_capacity(256);
    write_row(&mut out, batch, row);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use adstream_sdk::{DictBuilder, F64Builder, I64Builder, TextBuilder};

    #[test]
    fn rows_round_trip_through_serde_json() {
        let mut t = TextBuilder::default();
        t.push("quote \" and \n newline");
        t.push_null();
        let mut d = DictBuilder::default();
        d.push("US");
        d.push("KR");
        let mut f = F64Builder::default();
        f.push(0.25);
        f.push(f64::NAN);
        let mut i = I64Builder::default();
        i.push(-3);
        i.push(1_766_026_680_000);
        let b = Batch::from_columns(vec![
            t.finish("s"),
            d.finish("c"),
            f.finish("x"),
            i.finish_timestamp("t"),
        ])
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&row_json(&b, 0)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"s": "quote \" and \n newline", "c": "US", "x": 0.25, "t": -3})
        );
        let v: serde_json::Value = serde_json::from_str(&row_json(&b, 1)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"s": null, "c": "KR", "x": null, "t": 1_766_026_680_000i64})
        );
    }
}
