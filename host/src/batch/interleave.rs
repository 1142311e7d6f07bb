//! Rows of several envelopes with the same columns, put back in the order their source
//! positions had in an earlier batch: how a sharded stage's row-preserving output (a
//! validate or transform stage's) regains its input order, so that what comes after it
//! sees the rows as one instance would have passed them (a float sum over them then adds
//! in the same order).

use super::{Envelope, Position};
use adstream_sdk::{Batch, Column, Dict, FastMap, Strings, Values};

/// `parts` in the order of `input`'s positions; `None` when a row has no position, or one
/// that `input` does not have (the rows are not the input's).
pub fn in_input_order(input: &[Position], parts: &[Envelope]) -> Option<Envelope> {
    // Windows and other new rows have no positions: nothing to order, nothing to index.
    if parts.iter().any(|p| p.positions.is_none()) {
        return None;
    }
    let index: FastMap<Position, u32> = (input.iter().enumerate())
        .map(|(i, &p)| (p, i as u32))
        .collect();
    let mut order: Vec<(u32, u32, u32)> = Vec::new();
    for (k, part) in parts.iter().enumerate() {
        for (r, p) in part.positions.as_ref()?.iter().enumerate() {
            order.push((*index.get(p)?, k as u32, r as u32));
        }
    }
    order.sort_unstable();
    let picks: Vec<(u32, u32)> = order.iter().map(|&(_, k, r)| (k, r)).collect();
    let batches: Vec<&Batch> = parts.iter().map(|e| &e.batch).collect();
    Some(Envelope {
        batch: interleave(&batches, &picks)?,
        positions: Some(order.iter().map(|&(i, _, _)| input[i as usize]).collect()),
    })
}

/// The rows `picks` (batch, row) of `parts`, which must have the same columns.
fn interleave(parts: &[&Batch], picks: &[(u32, u32)]) -> Option<Batch> {
    let first = parts.first()?;
    let mut columns = Vec::with_capacity(first.columns.len());
    for (c, col) in first.columns.iter().enumerate() {
        let cols: Vec<&Column> = parts
            .iter()
            .map(|b| b.columns.get(c))
            .collect::<Option<_>>()?;
        if cols.iter().any(|x| x.name != col.name) {
            return None;
        }
        columns.push(column(&cols, picks)?);
    }
    Some(Batch {
        rows: picks.len() as u32,
        columns,
    })
}

fn column(cols: &[&Column], picks: &[(u32, u32)]) -> Option<Column> {
    macro_rules! gather {
        ($variant:ident) => {{
            let vs: Vec<_> = cols
                .iter()
                .map(|c| match &c.values {
                    Values::$variant(v) => Some(v),
                    _ => None,
                })
                .collect::<Option<_>>()?;
            let out = picks.iter().map(|&(k, r)| vs[k as usize][r as usize]);
            Values::$variant(out.collect())
        }};
    }
    let values = match &cols[0].values {
        Values::Int64(_) => gather!(Int64),
        Values::TimestampMs(_) => gather!(TimestampMs),
        Values::Float64(_) => gather!(Float64),
        Values::Boolean(_) => gather!(Boolean),
        Values::Text(_) => Values::Text(texts(cols, picks)?),
        Values::Dictionary(_) => Values::Dictionary(dicts(cols, picks)?),
    };
    Some(Column {
        name: cols[0].name.clone(),
        values,
        valid: validity(cols, picks),
    })
}

fn validity(cols: &[&Column], picks: &[(u32, u32)]) -> Option<Vec<u8>> {
    if cols.iter().all(|c| c.valid.is_none()) {
        return None;
    }
    let mut bits = vec![0u8; picks.len().div_ceil(8)];
    for (i, &(k, r)) in picks.iter().enumerate() {
        if cols[k as usize].is_valid(r as usize) {
            bits[i / 8] |= 1 << (i % 8);
        }
    }
    Some(bits)
}

fn text(s: &Strings, r: usize) -> Option<&[u8]> {
    let (a, b) = (*s.offsets.get(r)? as usize, *s.offsets.get(r + 1)? as usize);
    s.bytes.get(a..b)
}

fn texts(cols: &[&Column], picks: &[(u32, u32)]) -> Option<Strings> {
    let mut out = Strings {
        offsets: vec![0],
        bytes: Vec::new(),
    };
    for &(k, r) in picks {
        let Values::Text(s) = &cols[k as usize].values else {
            return None;
        };
        out.bytes.extend_from_slice(text(s, r as usize)?);
        out.offsets.push(out.bytes.len() as u32);
    }
    Some(out)
}

/// Dictionary columns: shards' pieces of one input share its dictionary, kept as is;
/// otherwise the values are encoded again into one dictionary.
fn dicts(cols: &[&Column], picks: &[(u32, u32)]) -> Option<Dict> {
    let ds: Vec<&Dict> = cols
        .iter()
        .map(|c| match &c.values {
            Values::Dictionary(d) => Some(d),
            _ => None,
        })
        .collect::<Option<_>>()?;
    if ds.iter().all(|d| d.values == ds[0].values) {
        let keys = picks.iter().map(|&(k, r)| ds[k as usize].keys[r as usize]);
        return Some(Dict {
            keys: keys.collect(),
            values: ds[0].values.clone(),
        });
    }
    let mut values = Strings {
        offsets: vec![0],
        bytes: Vec::new(),
    };
    let mut seen: FastMap<&[u8], u32> = FastMap::default();
    let mut keys = Vec::with_capacity(picks.len());
    for &(k, r) in picks {
        let d = ds[k as usize];
        let v = text(&d.values, *d.keys.get(r as usize)? as usize)?;
        let next = seen.len() as u32;
        let key = *seen.entry(v).or_insert_with(|| {
            values.bytes.extend_from_slice(v);
            values.offsets.push(values.bytes.len() as u32);
            next
        });
        keys.push(key);
    }
    Some(Dict { keys, values })
}

#[cfg(test)]
mod tests {
    use super::*;
    use adstream_sdk::{DictBuilder, I64Builder};

    fn env(rows: &[(i64, &str)], offsets: &[i64]) -> Envelope {
        let (mut n, mut c) = (I64Builder::default(), DictBuilder::default());
        for &(v, s) in rows {
            n.push(v);
            c.push(s);
        }
        Envelope {
            batch: Batch::from_columns(vec![n.finish("n"), c.finish("c")]).unwrap(),
            positions: Some(
                offsets
                    .iter()
                    .map(|&o| Position {
                        partition: 0,
                        offset: o,
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn rows_return_to_their_input_order_with_their_values() {
        let input: Vec<Position> = [10, 11, 12, 13, 14]
            .map(|o| Position {
                partition: 0,
                offset: o,
            })
            .to_vec();
        let a = env(&[(1, "x"), (4, "y")], &[11, 14]);
        let b = env(&[(0, "z"), (3, "x")], &[10, 13]);
        let merged = in_input_order(&input, &[a, b]).unwrap();
        let got: Vec<String> = (0..merged.rows())
            .map(|r| crate::batch::encode::row_json(&merged.batch, r))
            .collect();
        let want = [
            r#"{"n":0,"c":"z"}"#,
            r#"{"n":1,"c":"x"}"#,
            r#"{"n":3,"c":"x"}"#,
            r#"{"n":4,"c":"y"}"#,
        ];
        assert_eq!(got, want);
        let offsets: Vec<i64> = merged.positions.unwrap().iter().map(|p| p.offset).collect();
        assert_eq!(offsets, [10, 11, 13, 14]);
        let stranger = env(&[(9, "q")], &[99]);
        assert!(in_input_order(&input, &[stranger]).is_none());
    }
}
