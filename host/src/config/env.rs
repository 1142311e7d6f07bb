//! `${NAME}` and `${NAME:-default}` in string values, filled from the host's environment
//! when the file is read: one pipeline file serves several deployments (and the tests)
//! without copies. `$${` writes a literal `${`. An unset variable without a default is a
//! diagnostic at the string's place. Secrets do not go this way: values filled in here
//! are ordinary settings, and show in errors and status like any other.

use super::Diagnostics;
use std::borrow::Cow;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Why a string could not be expanded.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ExpandError {
    #[error("environment variable {0} is not set (write ${{{0}:-default}} for a default)")]
    Unset(String),
    #[error("`${{` at byte {0} is never closed")]
    Unclosed(usize),
}

/// `text` with every `${NAME}` / `${NAME:-default}` replaced by `lookup`.
pub fn expand(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(inner) = tail.strip_prefix("${") {
            let close = inner
                .find('}')
                .ok_or(ExpandError::Unclosed(text.len() - tail.len()))?;
            let (name, default) = match inner[..close].split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (&inner[..close], None),
            };
            match (lookup(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => return Err(ExpandError::Unset(name.into())),
            }
            rest = &inner[close + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands every string value of the file from the process environment.
pub fn expand_all(root: &mut DeTable<'_>, diags: &mut Diagnostics) {
    for (_, value) in root.iter_mut() {
        expand_value(value, diags);
    }
}

fn expand_value(value: &mut Spanned<DeValue<'_>>, diags: &mut Diagnostics) {
    let span = value.span();
    match value.get_mut() {
        DeValue::String(s) if s.contains('$') => match expand(s, |n| std::env::var(n).ok()) {
            Ok(v) => *s = Cow::Owned(v),
            Err(e) => diags.error(Some(span), e.to_string()),
        },
        DeValue::Array(items) => items.iter_mut().for_each(|v| expand_value(v, diags)),
        DeValue::Table(t) => t.iter_mut().for_each(|(_, v)| expand_value(v, diags)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_defaults_escapes_and_errors() {
        let env = |n: &str| (n == "NS").then(|| "t1_".to_string());
        assert_eq!(expand("${NS}ad-events", env).unwrap(), "t1_ad-events");
        assert_eq!(
            expand("${NS:-}x ${HOST:-127.0.0.1}:9092", env).unwrap(),
            "t1_x 127.0.0.1:9092"
        );
        assert_eq!(
            expand("cost $5 and $${NS}", env).unwrap(),
            "cost $5 and ${NS}"
        );
        assert_eq!(
            expand("${NOPE}", env),
            Err(ExpandError::Unset("NOPE".into()))
        );
        assert_eq!(expand("ab${NS", env), Err(ExpandError::Unclosed(2)));
    }
}
