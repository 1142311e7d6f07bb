//! Diagnostics: problems in a pipeline file, each pinned to `file:line:col`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem found in a pipeline file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line and column (in characters).
    pub line: usize,
    pub col: usize,
    pub message: String,
    /// What to do about it, when there is something obvious.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A problem with the file as a whole, placed at its start.
    pub fn at_start(file: &Path, message: String) -> Diagnostic {
        Diagnostic {
            file: file.to_path_buf(),
            line: 1,
            col: 1,
            message,
            hint: None,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Collects diagnostics for one file, turning byte spans into lines and columns.
pub struct Diagnostics<'a> {
    file: PathBuf,
    text: &'a str,
    pub list: Vec<Diagnostic>,
}

impl<'a> Diagnostics<'a> {
    pub fn new(file: &Path, text: &'a str) -> Self {
        Diagnostics {
            file: file.to_path_buf(),
            text,
            list: Vec::new(),
        }
    }

    /// 1-based (line, column) of byte offset `at`.
    pub fn position(&self, at: usize) -> (usize, usize) {
        let at = at.min(self.text.len());
        let before = self.text.get(..at).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    /// Records a problem at `span` (a byte range in the file; `None` means the top).
    pub fn error(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        self.push(span, message.into(), None);
    }

    /// Records a problem with a hint.
    pub fn error_hint(
        &mut self,
        span: Option<Range<usize>>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.push(span, message.into(), Some(hint.into()));
    }

    fn push(&mut self, span: Option<Range<usize>>, message: String, hint: Option<String>) {
        let (line, col) = self.position(span.map_or(0, |s| s.start));
        let d = Diagnostic {
            file: self.file.clone(),
            line,
            col,
            message,
            hint,
        };
        if !self.list.contains(&d) {
            self.list.push(d);
        }
    }

    /// Records a TOML or serde error, which carries its own span.
    pub fn toml(&mut self, e: &toml::de::Error, context: &str) {
        let message = e.message().trim_end().replace('\n', " ");
        let message = if context.is_empty() {
            message
        } else {
            format!("{context}: {message}")
        };
        let hint = hint_for(&message);
        self.push(e.span(), message, hint);
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The diagnostics in file order.
    pub fn finish(mut self) -> Vec<Diagnostic> {
        self.list.sort_by_key(|d| (d.line, d.col));
        self.list
    }
}

/// Hints for the mistakes people make most.
fn hint_for(message: &str) -> Option<String> {
    if message.contains("unknown field") {
        return Some("check the spelling; the message lists the keys this table accepts".into());
    }
    if message.contains("missing field") {
        return Some("add the key to this table".into());
    }
    if message.contains("invalid type: string") && message.contains("expected") {
        return Some("numbers and booleans are written without quotes".into());
    }
    None
}
