//! Line and key templates: `{column}`, `{column:%}` (a ratio as a percentage),
//! `{column:$}` (money), `{column:.N}` (N decimals), `{column:time}` (HH:MM:SS UTC), and
//! `{column:<N}` / `{column:>N}` to pad. Parsed when the file is read, so that a bad
//! template is a diagnostic at its place; rendering is `batch::encode::render`.

use serde::{Deserialize, Deserializer};

/// How a field's value is written.
#[derive(Debug, Clone, PartialEq)]
pub enum Style {
    Plain,
    Percent,
    Money,
    Decimals(usize),
    Time,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Field {
        name: String,
        style: Style,
        /// (left-aligned, width)
        pad: Option<(bool, usize)>,
    },
}

/// A parsed template; equality compares the text it was parsed from.
#[derive(Debug, Clone)]
pub struct Template {
    pub text: String,
    pub parts: Vec<Part>,
}

impl PartialEq for Template {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    #[error("template: `{{` at byte {0} is never closed")]
    Unclosed(usize),
    #[error("template: `{{}}` names no column")]
    NoColumn,
    #[error("template: {{{field}}}: unknown format `{spec}` (use %, $, time, .N, <N, >N)")]
    UnknownFormat { field: String, spec: String },
    #[error("template: {{{field}}}: bad number in `{spec}`")]
    BadNumber { field: String, spec: String },
}

fn parse_spec(field: &str, spec: &str) -> Result<(Style, Option<(bool, usize)>), TemplateError> {
    let mut style = Style::Plain;
    let mut pad = None;
    let bad = |s: &str| TemplateError::BadNumber {
        field: field.into(),
        spec: s.into(),
    };
    for item in spec.split(',').filter(|s| !s.is_empty()) {
        match item {
            "%" => style = Style::Percent,
            "$" => style = Style::Money,
            "time" => style = Style::Time,
            s if s.starts_with('.') => style = Style::Decimals(s[1..].parse().map_err(|_| bad(s))?),
            s if s.starts_with('<') || s.starts_with('>') => {
                let width = s[1..].parse().map_err(|_| bad(s))?;
                pad = Some((s.starts_with('<'), width));
            }
            other => {
                return Err(TemplateError::UnknownFormat {
                    field: field.into(),
                    spec: other.into(),
                });
            }
        }
    }
    Ok((style, pad))
}

impl std::str::FromStr for Template {
    type Err = TemplateError;

    fn from_str(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            parts.push(Part::Text(rest[..open].to_string()));
            let close = rest[open..]
                .find('}')
                .ok_or(TemplateError::Unclosed(text.len() - rest.len() + open))?;
            let inner = &rest[open + 1..open + close];
            let (name, spec) = inner.split_once(':').unwrap_or((inner, ""));
            if name.is_empty() {
                return Err(TemplateError::NoColumn);
            }
            let (style, pad) = parse_spec(name, spec)?;
            parts.push(Part::Field {
                name: name.to_string(),
                style,
                pad,
            });
            rest = &rest[open + close + 1..];
        }
        parts.push(Part::Text(rest.to_string()));
        Ok(Template {
            text: text.to_string(),
            parts,
        })
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Template {
    /// The columns the template reads.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field { name, .. } => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_templates_say_what_is_wrong() {
        let t: Template = "{a:<4} and {b:%}".parse().unwrap();
        assert_eq!(t.columns().collect::<Vec<_>>(), ["a", "b"]);
        let e = "{x:fancy}".parse::<Template>().unwrap_err();
        assert!(e.to_string().contains("unknown format `fancy`"), "{e}");
        assert_eq!(
            "ab{x".parse::<Template>().unwrap_err(),
            TemplateError::Unclosed(2)
        );
        assert_eq!(
            "{}".parse::<Template>().unwrap_err(),
            TemplateError::NoColumn
        );
    }
}
