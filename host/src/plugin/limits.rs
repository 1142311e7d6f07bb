//! Per-stage sandbox limits, with defaults safe for third-party plugins.

use std::time::Duration;

/// Limits of one stage's plugin instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Most linear memory the instance may grow to.
    pub memory_bytes: usize,
    /// Longest a single call may run before it is interrupted.
    pub deadline: Duration,
    /// Most rows one call may return.
    pub max_output_rows: u64,
    /// Fuel (roughly, wasm instructions) one call may use; `None` runs unmetered.
    pub fuel: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 256 << 20,
            deadline: Duration::from_secs(2),
            max_output_rows: 1_000_000,
            fuel: None,
        }
    }
}

/// Parses a size such as `64MiB`, `512KiB`, `1GiB` or a plain number of bytes.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size; write e.g. 64MiB"))?;
    let scale = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "KB" | "K" => 1 << 10,
        "MiB" | "MB" | "M" => 1 << 20,
        "GiB" | "GB" | "G" => 1 << 30,
        other => {
            return Err(format!(
                "`{text}` has unit `{other}`; use B, KiB, MiB or GiB"
            ));
        }
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(super::parse_size("4096"), Ok(4096));
        assert!(super::parse_size("lots").is_err());
        assert!(super::parse_size("3 parsecs").is_err());
    }
}
