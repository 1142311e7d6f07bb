//! Durations and sizes as pipeline files write them (`"500ms"`, `"1m"`, `"64MiB"`), typed
//! so that a bad value is a diagnostic at its `file:line:col` when the file is read, not an
//! error when a component opens. Parsing is humantime's and bytesize's.

use serde::{Deserialize, Deserializer};
use std::fmt;

/// A duration such as `500ms`, `10s`, `1m`, `2h` or `1h 30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }

    pub const fn from_secs(s: u64) -> Self {
        Duration(std::time::Duration::from_secs(s))
    }

    pub fn get(self) -> std::time::Duration {
        self.0
    }

    /// Whole milliseconds, saturating (event-time arithmetic is in ms).
    pub fn as_millis_i64(self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A text that is not a duration, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{text}` is not a duration ({reason}); write e.g. 500ms, 10s, 1m, 2h")]
pub struct BadDuration {
    text: String,
    reason: String,
}

impl std::str::FromStr for Duration {
    type Err = BadDuration;

    fn from_str(text: &str) -> Result<Self, BadDuration> {
        humantime::parse_duration(text.trim())
            .map(Duration)
            .map_err(|e| BadDuration {
                text: text.into(),
                reason: e.to_string(),
            })
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

/// A size such as `64MiB`, `512KiB` or a plain number of bytes (`MB` means 10^6 bytes,
/// `MiB` 2^20); parsing is bytesize's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub bytesize::ByteSize);

impl ByteSize {
    pub const fn mib(n: u64) -> Self {
        ByteSize(bytesize::ByteSize::mib(n))
    }

    pub const fn kib(n: u64) -> Self {
        ByteSize(bytesize::ByteSize::kib(n))
    }

    pub fn as_u64(self) -> u64 {
        self.0.as_u64()
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bytes(n) => Ok(ByteSize(bytesize::ByteSize::b(n))),
            Raw::Text(t) => t.trim().parse().map(ByteSize).map_err(|_| {
                serde::de::Error::custom(format!(
                    "`{t}` is not a size; write e.g. 64MiB, 512KiB or 1048576"
                ))
            }),
        }
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.display().iec())
    }
}

/// `size` in bytes as a `usize`, saturating.
pub fn bytes(size: ByteSize) -> usize {
    usize::try_from(size.as_u64()).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        d: Duration,
        s: ByteSize,
    }

    #[test]
    fn durations_and_sizes_parse_and_bad_ones_say_why() {
        let t: T = toml::from_str("d = \"1m 30s\"\ns = \"64MiB\"").unwrap();
        assert_eq!(t.d.get(), std::time::Duration::from_secs(90));
        assert_eq!(bytes(t.s), 64 << 20);
        let e = toml::from_str::<T>("d = \"soon\"\ns = 1").err().unwrap();
        assert!(e.message().contains("`soon` is not a duration"), "{e}");
        assert_eq!(e.span(), Some(4..10));
        let e = toml::from_str::<T>("d = \"1s\"\ns = \"lots\"")
            .err()
            .unwrap();
        assert!(e.message().contains("`lots` is not a size"), "{e}");
        let t: T = toml::from_str("d = \"0s\"\ns = 4096").unwrap();
        assert_eq!(bytes(t.s), 4096);
    }
}
