//! Comparing a plugin's output with what a test expects, row by row, and saying how they
//! differ in a few readable lines.

use serde_json::Value;

/// Most differences listed before the rest are only counted.
const SHOWN: usize = 10;

/// Whether two values are the same; numbers within a relative 1e-9 (sums of floats may
/// differ in their last bits between a native and a WebAssembly build).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
            _ => x == y,
        },
        _ => a == b,
    }
}

/// How one row differs: each field whose value differs or is missing on one side.
fn row_diff(i: usize, want: &Value, got: &Value) -> Vec<String> {
    let (Value::Object(w), Value::Object(g)) = (want, got) else {
        return (!same(want, got))
            .then(|| format!("row {i}: expected {want}, got {got}"))
            .into_iter()
            .collect();
    };
    let mut out = Vec::new();
    for (k, wv) in w {
        match g.get(k) {
            Some(gv) if same(wv, gv) => {}
            Some(gv) => out.push(format!("row {i}: `{k}`: expected {wv}, got {gv}")),
            None => out.push(format!("row {i}: `{k}`: expected {wv}, got nothing")),
        }
    }
    for (k, gv) in g.iter().filter(|(k, _)| !w.contains_key(*k)) {
        out.push(format!("row {i}: `{k}`: not expected, got {gv}"));
    }
    out
}

/// The differences between the expected and the actual rows; empty when they agree.
pub fn rows(want: &[Value], got: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = want
        .iter()
        .zip(got)
        .enumerate()
        .flat_map(|(i, (w, g))| row_diff(i, w, g))
        .collect();
    if want.len() != got.len() {
        out.push(format!("expected {} rows, got {}", want.len(), got.len()));
        for (i, g) in got.iter().enumerate().skip(want.len()) {
            out.push(format!("row {i}: not expected: {g}"));
        }
        for (i, w) in want.iter().enumerate().skip(got.len()) {
            out.push(format!("row {i}: missing: {w}"));
        }
    }
    if out.len() > SHOWN {
        let more = out.len() - SHOWN;
        out.truncate(SHOWN);
        out.push(format!("… and {more} more"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_name_the_row_and_field() {
        let want = [json!({"a": 1, "b": 0.1}), json!({"a": 2})];
        assert!(rows(&want, &[json!({"a": 1, "b": 0.1 + 1e-12}), json!({"a": 2})]).is_empty());
        let d = rows(&want, &[json!({"a": 1, "b": 0.2})]);
        assert_eq!(
            d,
            [
                "row 0: `b`: expected 0.1, got 0.2",
                "expected 2 rows, got 1",
                "row 1: missing: {\"a\":2}"
            ]
        );
        let d = rows(&[json!({"a": 1})], &[json!({"a": 1, "c": true})]);
        assert_eq!(d, ["row 0: `c`: not expected, got true"]);
    }
}
