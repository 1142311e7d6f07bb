//! Text a plugin chose, made safe to show: cut to a length (with a note saying so), control
//! characters escaped so that a message cannot forge a log line, names reduced to
//! characters that cannot break a metric label.

use std::borrow::Cow;

/// `text` cut to at most `max` bytes (at a character boundary), with a note of the cut.
pub fn cut(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [cut: {} more bytes]", &text[..end], text.len() - end)
}

/// `text` with control characters (newlines included) written as escapes.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Longest counter name kept.
pub const NAME_BYTES: usize = 64;

/// A counter name made of letters, digits and `_ : . -` only, at most [`NAME_BYTES`]
/// bytes; `None` if nothing of it is left.
pub fn name(raw: &str) -> Option<String> {
    let clean: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.' | '-'))
        .take(NAME_BYTES)
        .collect();
    (!clean.is_empty()).then_some(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_control_characters_escaped_names_cleaned() {
        assert_eq!(cut("short".into(), 10), "short");
        assert_eq!(cut("ééé".into(), 3), "é… [cut: 4 more bytes]");
        assert_eq!(escape("line\\nINFO forged"), "line\\nINFO forged");
        assert_eq!(escape("two\nlines\r"), "two\\nlines\\r");
        assert_eq!(
            escape("plain \"quoted\" ünïcode"),
            "plain \"quoted\" ünïcode"
        );
        assert_eq!(name("rejected:unique"), Some("rejected:unique".into()));
        assert_eq!(name("x\"} 1\nevil{"), Some("x1evil".into()));
        assert_eq!(name("\n\""), None);
    }
}
