//! Rows as readable lines, by a [`Template`] parsed from the pipeline file.

use crate::config::template::{Part, Style, Template};
use adstream_sdk::{Batch, Column, Values};
use std::fmt::Write;

/// Writes `row` of `batch` by `template` (columns the batch lacks print as `-`).
pub fn render(template: &Template, batch: &Batch, row: usize, out: &mut String) {
    for part in &template.parts {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Field { name, style, pad } => {
                let mut value = String::new();
                match batch.column(name) {
                    Some(col) => value_of(col, row, style, &mut value),
                    None => value.push('-'),
                }
                match pad {
                    Some((true, w)) => {
                        let _ = write!(out, "{value:<w$}");
                    }
                    Some((false, w)) => {
                        let _ = write!(out, "{value:>w$}");
                    }
                    None => out.push_str(&value),
                }
            }
        }
    }
}

fn value_of(col: &Column, row: usize, style: &Style, out: &mut String) {
    if !col.is_valid(row) {
        out.push('-');
        return;
    }
    let number = match &col.values {
        Values::Float64(v) => v.get(row).copied(),
        Values::Int64(v) | Values::TimestampMs(v) => v.get(row).map(|&x| x as f64),
        _ => None,
    };
    match (style, number) {
        (Style::Percent, Some(x)) => {
            let _ = write!(out, "{:.2}%", x * 100.0);
        }
        (Style::Money, Some(x)) => {
            let _ = write!(out, "${x:.2}");
        }
        (Style::Decimals(n), Some(x)) => {
            let _ = write!(out, "{x:.n$}");
        }
        (Style::Time, Some(x)) => {
            let iso = adstream_sdk::time::iso8601(x as i64);
            out.push_str(iso.get(11..19).unwrap_or(&iso));
        }
        _ => {
            let mut json = Vec::new();
            super::encode::write_value(&mut json, col, row);
            let text = String::from_utf8_lossy(&json);
            out.push_str(text.trim_matches('"'));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use adstream_sdk::{DictBuilder, F64Builder, I64Builder};

    #[test]
    fn renders_styles_and_padding() {
        let mut c = DictBuilder::default();
        c.push("US");
        let mut r = F64Builder::default();
        r.push(0.0366);
        let mut t = I64Builder::default();
        t.push(1_766_026_690_000);
        let b = Batch::from_columns(vec![
            c.finish("country"),
            r.finish("ctr"),
            t.finish_timestamp("end"),
        ])
        .unwrap();
        let tpl: Template = "[{end:time}] {country:<4}| ctr {ctr:%} {ctr:.3} {ctr:$} {nope}"
            .parse()
            .unwrap();
        let mut out = String::new();
        render(&tpl, &b, 0, &mut out);
        assert_eq!(out, "[02:58:10] US  | ctr 3.66% 0.037 $0.04 -");
    }
}
