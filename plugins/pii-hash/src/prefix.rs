//! `prefix = { postcode = 3 }`: keeps only the first characters of a value, so that it
//! still says roughly where (a postcode's district) but no longer who.

use adstream_sdk::{Column, Dict, Strings, Values};

/// The first `n` characters of each value of `s`.
fn cut(s: &Strings, n: usize) -> Strings {
    let mut offsets = Vec::with_capacity(s.offsets.len());
    let mut bytes = Vec::with_capacity(s.bytes.len());
    offsets.push(0);
    for w in s.offsets.windows(2) {
        let value = std::str::from_utf8(&s.bytes[w[0] as usize..w[1] as usize]).unwrap_or("");
        let end = value.char_indices().nth(n).map_or(value.len(), |(i, _)| i);
        bytes.extend_from_slice(&value.as_bytes()[..end]);
        offsets.push(bytes.len() as u32);
    }
    Strings { offsets, bytes }
}

/// The column with each value cut to `n` characters; a dictionary cuts each distinct value
/// once and keeps its keys.
pub fn column(col: Column, n: usize) -> Column {
    let values = match col.values {
        Values::Dictionary(d) => Values::Dictionary(Dict {
            keys: d.keys,
            values: cut(&d.values, n),
        }),
        Values::Text(s) => Values::Text(cut(&s, n)),
        other => other,
    };
    Column { values, ..col }
}
