//! Row selection: keep some rows of a batch, in order. The host uses it to pass on the
//! rows a `validate` plugin accepted; plugins use it to pass input rows through.

use crate::{Batch, Column, Dict, Strings, Values};

fn take_bits(valid: &Option<Vec<u8>>, rows: &[u32]) -> Option<Vec<u8>> {
    let bits = valid.as_ref()?;
    let mut out = vec![0u8; rows.len().div_ceil(8)];
    for (i, &r) in rows.iter().enumerate() {
        let r = r as usize;
        if bits.get(r / 8).is_some_and(|b| b & (1 << (r % 8)) != 0) {
            out[i / 8] |= 1 << (i % 8);
        }
    }
    Some(out)
}

fn take_vec<T: Copy + Default>(values: &[T], rows: &[u32]) -> Vec<T> {
    rows.iter()
        .map(|&r| values.get(r as usize).copied().unwrap_or_default())
        .collect()
}

fn take_strings(s: &Strings, rows: &[u32]) -> Strings {
    let mut offsets = Vec::with_capacity(rows.len() + 1);
    offsets.push(0u32);
    let mut bytes = Vec::new();
    for &r in rows {
        let r = r as usize;
        if let (Some(&a), Some(&b)) = (s.offsets.get(r), s.offsets.get(r + 1)) {
            bytes.extend_from_slice(s.bytes.get(a as usize..b as usize).unwrap_or(&[]));
        }
        offsets.push(bytes.len() as u32);
    }
    Strings { offsets, bytes }
}

impl Column {
    /// The rows `rows` of this column, in that order.
    pub fn take(&self, rows: &[u32]) -> Column {
        let values = match &self.values {
            Values::Int64(v) => Values::Int64(take_vec(v, rows)),
            Values::TimestampMs(v) => Values::TimestampMs(take_vec(v, rows)),
            Values::Float64(v) => Values::Float64(take_vec(v, rows)),
            Values::Boolean(v) => Values::Boolean(take_vec(v, rows)),
            Values::Text(s) => Values::Text(take_strings(s, rows)),
            // The dictionary is shared as is: unused entries cost less than re-encoding.
            Values::Dictionary(d) => Values::Dictionary(Dict {
                keys: take_vec(&d.keys, rows),
                values: d.values.clone(),
            }),
        };
        Column {
            name: self.name.clone(),
            values,
            valid: take_bits(&self.valid, rows),
        }
    }
}

impl Batch {
    /// The rows `rows` of this batch, in that order.
    pub fn take(&self, rows: &[u32]) -> Batch {
        Batch {
            rows: rows.len() as u32,
            columns: self.columns.iter().map(|c| c.take(rows)).collect(),
        }
    }

    /// Every row except those in `drop` (which must be sorted ascending).
    pub fn without_rows(&self, drop: &[u32]) -> Batch {
        if drop.is_empty() {
            return self.clone();
        }
        let mut skip = drop.iter().peekable();
        let keep: Vec<u32> = (0..self.rows)
            .filter(|r| {
                while skip.next_if(|&&d| d < *r).is_some() {}
                skip.peek() != Some(&r)
            })
            .collect();
        self.take(&keep)
    }
}
