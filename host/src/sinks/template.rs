//! Line templates for readable output: `{column}`, `{column:%}` (a ratio as a percentage),
//! `{column:$}` (money), `{column:.N}` (N decimals), `{column:time}` (HH:MM:SS UTC), and
//! `{column:<N}` / `{column:>N}` to pad.

use adstream_sdk::{Batch, Column, Values};
use std::fmt::Write;

#[derive(Debug, Clone, PartialEq)]
enum Style {
    Plain,
    Percent,
    Money,
    Decimals(usize),
    Time,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Field {
        name: String,
        style: Style,
        pad: Option<(bool, usize)>,
    },
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
}

fn parse_spec(spec: &str) -> Result<(Style, Option<(bool, usize)>), String> {
    let mut style = Style::Plain;
    let mut pad = None;
    for item in spec.split(',').filter(|s| !s.is_empty()) {
        match item {
            "%" => style = Style::Percent,
            "$" => style = Style::Money,
            "time" => style = Style::Time,
            s if s.starts_with('.') => {
                style = Style::Decimals(s[1..].parse().map_err(|_| format!("bad precision `{s}`"))?)
            }
            s if s.starts_with('<') || s.starts_with('>') => {
                let width = s[1..].parse().map_err(|_| format!("bad width `{s}`"))?;
                pad = Some((s.starts_with('<'), width));
            }
            other => {
                return Err(format!(
                    "unknown format `{other}` (use %, $, time, .N, <N, >N)"
                ));
            }
        }
    }
    Ok((style, pad))
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            parts.push(Part::Text(rest[..open].to_string()));
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("template: `{{` at {open} is never closed"))?;
            let inner = &rest[open + 1..open + close];
            let (name, spec) = inner.split_once(':').unwrap_or((inner, ""));
            if name.is_empty() {
                return Err("template: `{}` names no column".into());
            }
            let (style, pad) =
                parse_spec(spec).map_err(|e| format!("template: {{{inner}}}: {e}"))?;
            parts.push(Part::Field {
                name: name.to_string(),
                style,
                pad,
            });
            rest = &rest[open + close + 1..];
        }
        parts.push(Part::Text(rest.to_string()));
        Ok(Template { parts })
    }

    /// Writes `row` of `batch` (columns the batch lacks print as `-`).
    pub fn render(&self, batch: &Batch, row: usize, out: &mut String) {
        for part in &self.parts {
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
            crate::batch::encode::write_value(&mut json, col, row);
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
        let tpl = Template::parse("[{end:time}] {country:<4}| ctr {ctr:%} {ctr:.3} {ctr:$} {nope}")
            .unwrap();
        let mut out = String::new();
        tpl.render(&b, 0, &mut out);
        assert_eq!(out, "[02:58:10] US  | ctr 3.66% 0.037 $0.04 -");
        assert!(
            Template::parse("{x:fancy}")
                .unwrap_err()
                .contains("unknown format `fancy`")
        );
        assert!(Template::parse("{x").unwrap_err().contains("never closed"));
    }
}
