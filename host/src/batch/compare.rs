//! Two outputs for the same input, row by row: what a canary reports. Rows are matched
//! as multisets (a new version may order its rows differently): by every value that is
//! not a floating-point number, and then by the floating-point values within a relative
//! tolerance, since a new version may compute a rate in another order and round
//! differently.

use super::encode::{row_json, write_value};
use adstream_sdk::{Batch, Values};
use std::collections::HashMap;

/// Characters of a row kept in an example.
const EXAMPLE_CHARS: usize = 240;

/// One row as compared.
pub struct Row<'a> {
    /// Every value but the floating-point ones, as JSON.
    key: String,
    /// The first column's value, often an id or a window: rows that differ but share it
    /// are shown as one changed row.
    first: String,
    floats: Vec<Option<f64>>,
    /// Where to find the whole row for an example; `None` for a row that is its key.
    whole: Option<(&'a Batch, usize)>,
}

impl Row<'_> {
    /// A row that is only a description, such as "late input row 3".
    pub fn label(text: String) -> Row<'static> {
        Row {
            first: text.clone(),
            key: text,
            floats: Vec::new(),
            whole: None,
        }
    }

    /// The columns whose values differ from `other`'s, as `name: this → other`.
    fn fields_against(&self, other: &Row) -> String {
        let (Some((a, i)), Some((b, j))) = (self.whole, other.whole) else {
            return format!("{} → {}", self.text(), other.text());
        };
        let value = |batch: &Batch, col: usize, row: usize| {
            let mut v = Vec::new();
            write_value(&mut v, &batch.columns[col], row);
            cut(String::from_utf8_lossy(&v).into_owned(), EXAMPLE_CHARS / 3)
        };
        let mut out = Vec::new();
        for (k, col) in a.columns.iter().enumerate() {
            let theirs = b.columns.iter().position(|c| c.name == col.name);
            let (x, y) = (
                value(a, k, i),
                theirs.map_or("(none)".into(), |l| value(b, l, j)),
            );
            if x != y {
                out.push(format!("{}: {x} → {y}", col.name));
            }
        }
        cut(out.join(", "), EXAMPLE_CHARS * 2)
    }

    fn text(&self) -> String {
        let text = self
            .whole
            .map_or_else(|| self.key.clone(), |(b, r)| row_json(b, r));
        cut(text, EXAMPLE_CHARS)
    }
}

fn cut(text: String, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// The rows of a batch, ready to compare.
pub fn rows(batch: &Batch) -> Vec<Row<'_>> {
    (0..batch.len())
        .map(|r| {
            let mut key = Vec::with_capacity(128);
            let mut first = Vec::new();
            if let Some(col) = batch.columns.first() {
                write_value(&mut first, col, r);
            }
            let mut floats = Vec::new();
            for col in &batch.columns {
                match &col.values {
                    Values::Float64(v) => {
                        floats.push(col.is_valid(r).then(|| v.get(r).copied()).flatten());
                    }
                    _ => {
                        key.extend_from_slice(col.name.as_bytes());
                        key.push(b'=');
                        write_value(&mut key, col, r);
                        key.push(b' ');
                    }
                }
            }
            Row {
                key: String::from_utf8_lossy(&key).into_owned(),
                first: String::from_utf8_lossy(&first).into_owned(),
                floats,
                whole: Some((batch, r)),
            }
        })
        .collect()
}

/// How two sets of rows differ.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RowDiff {
    pub same: u64,
    /// Rows equal in every other value whose floating-point values differ beyond the
    /// tolerance.
    pub changed: u64,
    /// Rows only the candidate has.
    pub added: u64,
    /// Rows only the current version has.
    pub removed: u64,
    /// The first differences: `+ row`, `- row`, `~ current → candidate`.
    pub examples: Vec<String>,
}

impl RowDiff {
    pub fn differing(&self) -> u64 {
        self.changed + self.added + self.removed
    }

    /// Adds `other`'s counts, keeping at most `keep` examples.
    pub fn add(&mut self, other: RowDiff, keep: usize) {
        self.same += other.same;
        self.changed += other.changed;
        self.added += other.added;
        self.removed += other.removed;
        let room = keep.saturating_sub(self.examples.len());
        self.examples.extend(other.examples.into_iter().take(room));
    }
}

fn close(a: Option<f64>, b: Option<f64>, tolerance: f64) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a == b
                || (a.is_nan() && b.is_nan())
                || (a - b).abs() <= tolerance * a.abs().max(b.abs())
        }
        _ => false,
    }
}

fn within(a: &Row, b: &Row, tolerance: f64) -> bool {
    a.floats.len() == b.floats.len()
        && a.floats
            .iter()
            .zip(&b.floats)
            .all(|(x, y)| close(*x, *y, tolerance))
}

/// Compares the current version's rows with the candidate's; keeps up to `examples`
/// examples of what differs.
pub fn compare(current: &[Row], candidate: &[Row], tolerance: f64, examples: usize) -> RowDiff {
    let mut unmatched: HashMap<&str, Vec<&Row>> = HashMap::new();
    for r in current {
        unmatched.entry(&r.key).or_default().push(r);
    }
    let mut diff = RowDiff::default();
    let mut added = Vec::new();
    for c in candidate {
        let Some(same_key) = unmatched.get_mut(c.key.as_str()).filter(|v| !v.is_empty()) else {
            added.push(c);
            continue;
        };
        match same_key.iter().position(|r| within(r, c, tolerance)) {
            Some(i) => {
                same_key.swap_remove(i);
                diff.same += 1;
            }
            None => {
                let r = same_key.swap_remove(0);
                diff.note_changed(r, c, examples);
            }
        }
    }
    // What is left differs in more than floating-point values: a row of each side with
    // the same first value is one changed row, the rest were added or removed.
    let mut left: Vec<&Row> = unmatched.into_values().flatten().collect();
    left.sort_by(|a, b| b.key.cmp(&a.key));
    let mut by_first: HashMap<&str, Vec<&Row>> = HashMap::new();
    for r in left {
        by_first.entry(r.first.as_str()).or_default().push(r);
    }
    for c in added {
        match by_first.get_mut(c.first.as_str()).and_then(Vec::pop) {
            Some(r) => diff.note_changed(r, c, examples),
            None => {
                diff.added += 1;
                diff.note(format!("+ {}", c.text()), examples);
            }
        }
    }
    let mut removed: Vec<&Row> = by_first.into_values().flatten().collect();
    removed.sort_by(|a, b| a.key.cmp(&b.key));
    for r in removed {
        diff.removed += 1;
        diff.note(format!("- {}", r.text()), examples);
    }
    diff
}

impl RowDiff {
    fn note(&mut self, text: String, examples: usize) {
        if self.examples.len() < examples {
            self.examples.push(text);
        }
    }

    fn note_changed(&mut self, current: &Row, candidate: &Row, examples: usize) {
        self.changed += 1;
        if self.examples.len() < examples {
            let first = cut(current.first.clone(), EXAMPLE_CHARS / 3);
            self.note(
                format!("~ {first}: {}", current.fields_against(candidate)),
                examples,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use adstream_sdk::{F64Builder, TextBuilder};

    fn batch(rows: &[(&str, f64)]) -> Batch {
        let (mut k, mut v) = (TextBuilder::default(), F64Builder::default());
        for (key, value) in rows {
            k.push(key);
            v.push(*value);
        }
        Batch::from_columns(vec![k.finish("country"), v.finish("ctr")]).unwrap()
    }

    #[test]
    fn rows_match_in_any_order_and_floats_within_the_tolerance() {
        let a = batch(&[("US", 0.02), ("KR", 0.05), ("JP", 0.1)]);
        let b = batch(&[("JP", 0.1), ("US", 0.020_01), ("KR", 0.05)]);
        let exact = compare(&rows(&a), &rows(&b), 0.0, 10);
        assert_eq!((exact.same, exact.changed), (2, 1));
        assert_eq!(
            exact.examples,
            vec!["~ \"US\": ctr: 0.02 → 0.02001".to_string()]
        );
        let loose = compare(&rows(&a), &rows(&b), 0.001, 10);
        assert_eq!((loose.same, loose.differing()), (3, 0));
    }

    #[test]
    fn rows_only_one_side_has_are_added_or_removed() {
        let a = batch(&[("US", 0.02), ("US", 0.02), ("KR", 0.05)]);
        let b = batch(&[("US", 0.02), ("DE", 0.3)]);
        let d = compare(&rows(&a), &rows(&b), 0.0, 1);
        assert_eq!((d.same, d.changed, d.added, d.removed), (1, 0, 1, 2));
        assert_eq!(
            d.examples,
            vec!["+ {\"country\":\"DE\",\"ctr\":0.3}".to_string()]
        );
        assert_eq!(d.examples.len(), 1, "examples are bounded");
        let labels = [Row::label("late input row 3".into())];
        let d = compare(&labels, &[], 0.0, 5);
        assert_eq!(d.examples, vec!["- late input row 3".to_string()]);
    }
}
