//! Secrets: where a credential comes from (`{ env = "VAR" }`, `{ file = "path" }`), and
//! resolving it. A resolved value never appears in errors, logs or status: only the
//! secret's name and where it was looked for. A setting that may carry a credential (a
//! Redis or ClickHouse URL) is a [`Credential`]: written inline only when it carries
//! none, and shown with any password masked.

use serde::{Deserialize, Deserializer};
use std::fmt;

/// Where a secret comes from. Exactly one of the keys is set.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(try_from = "RawRef")]
pub struct SecretRef {
    /// An environment variable of the host process.
    pub env: Option<String>,
    /// A file whose contents (trailing newline removed) are the secret.
    pub file: Option<String>,
    /// The value itself, in the pipeline file. For demos only.
    pub insecure_value: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRef {
    env: Option<String>,
    file: Option<String>,
    insecure_value: Option<String>,
}

/// A secret table that names no source, or more than one.
#[derive(Debug, thiserror::Error)]
#[error(
    "a secret must name exactly one of env, file, insecure_value, e.g. {{ env = \"ADSTREAM_PII_KEY\" }}"
)]
pub struct NotOneSource;

impl TryFrom<RawRef> for SecretRef {
    type Error = NotOneSource;

    fn try_from(r: RawRef) -> Result<Self, NotOneSource> {
        let set = [&r.env, &r.file, &r.insecure_value]
            .iter()
            .filter(|o| o.is_some())
            .count();
        if set != 1 {
            return Err(NotOneSource);
        }
        Ok(SecretRef {
            env: r.env,
            file: r.file,
            insecure_value: r.insecure_value,
        })
    }
}

impl fmt::Display for SecretRef {
    /// Where the secret comes from, never its value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.env, &self.file) {
            (Some(v), _) => write!(f, "environment variable {v}"),
            (_, Some(p)) => write!(f, "secret file {p}"),
            _ => write!(f, "an insecure_value in the pipeline file"),
        }
    }
}

/// Why a secret could not be resolved.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SecretError {
    #[error("secret `{name}`: environment variable {var} is not set")]
    MissingEnv { name: String, var: String },
    #[error("secret `{name}`: cannot read secret file {path}: {reason}")]
    File {
        name: String,
        path: String,
        reason: String,
    },
    #[error("secret `{name}` is empty")]
    Empty { name: String },
    #[error("secret `{name}` is not UTF-8 text")]
    NotText { name: String },
    /// `adstream check --no-environment`: the value is not read, only where it comes from.
    #[error("secret `{name}` was not read (--no-environment)")]
    NotRead { name: String },
}

impl SecretError {
    /// Whether this is no problem at all, only a secret left unread on purpose.
    pub fn not_read(&self) -> bool {
        matches!(self, SecretError::NotRead { .. })
    }
}

/// Set once by `adstream check --no-environment`: secrets from the environment or files
/// are not read, so that a pipeline can be checked where production secrets are absent.
static NOT_READ: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on, leave secrets in the environment and in files unread (a one-shot `check`).
pub fn leave_secrets_unread() {
    NOT_READ.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// What a plugin's `configure` is given for a secret left unread: 32 bytes of text, enough
/// for a key's length checks; its value means nothing.
pub const PLACEHOLDER: &[u8] = b"adstream-check-no-environment-00";

/// A resolved secret. Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq)]
pub struct SecretValue {
    pub name: String,
    value: Vec<u8>,
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue({}: <redacted>)", self.name)
    }
}

impl SecretValue {
    pub fn bytes(&self) -> &[u8] {
        &self.value
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.value
    }

    /// The value as text, for URLs and passwords.
    pub fn text(&self) -> Result<&str, SecretError> {
        std::str::from_utf8(&self.value).map_err(|_| SecretError::NotText {
            name: self.name.clone(),
        })
    }
}

impl SecretRef {
    /// Reads the secret now.
    pub fn resolve(&self, name: &str) -> Result<SecretValue, SecretError> {
        if self.insecure_value.is_none() && NOT_READ.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(SecretError::NotRead { name: name.into() });
        }
        let value = if let Some(var) = &self.env {
            std::env::var_os(var)
                .ok_or_else(|| SecretError::MissingEnv {
                    name: name.into(),
                    var: var.clone(),
                })?
                .into_encoded_bytes()
        } else if let Some(path) = &self.file {
            let limit = super::bounded::MAX_SECRET_BYTES;
            let read = std::fs::File::open(path)
                .and_then(|f| super::bounded::read_at_most(f, limit))
                .map_err(|e| e.kind().to_string())
                .and_then(|b| {
                    b.ok_or_else(|| format!("larger than {}", super::bounded::size(limit)))
                });
            let mut bytes = read.map_err(|reason| SecretError::File {
                name: name.into(),
                path: path.clone(),
                reason,
            })?;
            while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                bytes.pop();
            }
            bytes
        } else {
            self.insecure_value.clone().unwrap_or_default().into_bytes()
        };
        if value.is_empty() {
            return Err(SecretError::Empty { name: name.into() });
        }
        Ok(SecretValue {
            name: name.into(),
            value,
        })
    }
}

/// A URL that may carry a password: inline when it carries none, or a secret reference.
#[derive(Debug, Clone, PartialEq)]
pub enum Credential {
    Inline(String),
    Secret(SecretRef),
}

impl<'de> Deserialize<'de> for Credential {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Inline(String),
            Secret(SecretRef),
        }
        let either = Either::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "expected a URL without a password, or a secret such as { env = \"REDIS_URL\" }",
            )
        })?;
        match either {
            Either::Inline(url) if has_password(&url) => Err(serde::de::Error::custom(format!(
                "{} carries a password in the pipeline file; put the URL in an environment \
                 variable or a secret file instead, e.g. {{ env = \"REDIS_URL\" }}",
                redact_url(&url)
            ))),
            Either::Inline(url) => Ok(Credential::Inline(url)),
            Either::Secret(r) => Ok(Credential::Secret(r)),
        }
    }
}

impl Credential {
    pub fn inline(url: &str) -> Self {
        Credential::Inline(url.to_string())
    }

    /// The URL, read from its secret if it has one.
    pub fn resolve(&self, name: &str) -> Result<RedactedUrl, SecretError> {
        match self {
            Credential::Inline(u) => Ok(RedactedUrl(u.clone())),
            Credential::Secret(r) => Ok(RedactedUrl(r.resolve(name)?.text()?.to_string())),
        }
    }
}

impl fmt::Display for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Inline(u) => f.write_str(&redact_url(u)),
            Credential::Secret(r) => write!(f, "the URL in {r}"),
        }
    }
}

/// A resolved URL: `Display` and `Debug` mask its password; [`expose`](Self::expose)
/// hands the whole URL to the client that connects with it.
#[derive(Clone, PartialEq)]
pub struct RedactedUrl(String);

impl RedactedUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

fn has_password(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| u.password().is_some())
}

/// `url` with its password (if any) replaced by `***`; text that is not a URL is shown
/// as `<not a URL>`, since it may be a credential written in the wrong place.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<not a URL>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    struct T {
        url: Credential,
    }

    #[test]
    fn env_file_and_errors_never_show_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "s3cr3t-value\n").unwrap();
        let file = SecretRef {
            file: Some(path.display().to_string()),
            ..Default::default()
        };
        let v = file.resolve("key").unwrap();
        assert_eq!(v.bytes(), b"s3cr3t-value");
        assert!(!format!("{v:?}").contains("s3cr3t"));
        let missing = SecretRef {
            env: Some("ADSTREAM_TEST_NO_SUCH_VAR".into()),
            ..Default::default()
        };
        let err = missing.resolve("key").unwrap_err().to_string();
        assert_eq!(
            err,
            "secret `key`: environment variable ADSTREAM_TEST_NO_SUCH_VAR is not set"
        );
        std::fs::write(&path, "").unwrap();
        assert!(matches!(
            file.resolve("key"),
            Err(SecretError::Empty { .. })
        ));
        // A file far larger than any secret (a log, a disk image named by mistake).
        std::fs::write(
            &path,
            vec![b'k'; super::super::bounded::MAX_SECRET_BYTES + 1],
        )
        .unwrap();
        let err = file.resolve("key").unwrap_err().to_string();
        assert!(err.ends_with(": larger than 64 KiB"), "{err}");
    }

    #[test]
    fn a_url_with_a_password_must_be_a_secret_and_is_masked() {
        // Diagnostics show the message, not the TOML snippet (which is the user's own line).
        let e = toml::from_str::<T>("url = \"redis://:hunter2@h:6379\"").unwrap_err();
        assert!(!e.message().contains("hunter2"), "{e}");
        assert!(e.message().contains("redis://:***@h:6379"), "{e}");
        let t: T = toml::from_str("url = { env = \"X\" }").unwrap();
        assert_eq!(t.url.to_string(), "the URL in environment variable X");
        let both = toml::from_str::<T>("url = { env = \"X\", file = \"y\" }");
        assert!(both.is_err());
        assert_eq!(
            RedactedUrl("redis://u:pw@h/0".into()).to_string(),
            "redis://u:***@h/0"
        );
    }
}
