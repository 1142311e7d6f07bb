//! Resolving the secrets a stage names. Values never appear in errors, logs or status:
//! only the secret's name and where it was looked for.

use crate::config::SecretRef;
use adstream_sdk::Secret;

/// Why a secret could not be resolved.
#[derive(Debug, thiserror::Error, PartialEq)]
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
}

/// Resolves one secret.
pub fn resolve(name: &str, r: &SecretRef) -> Result<Secret, SecretError> {
    let value = if let Some(var) = &r.env {
        std::env::var_os(var)
            .ok_or_else(|| SecretError::MissingEnv {
                name: name.into(),
                var: var.clone(),
            })?
            .into_encoded_bytes()
    } else if let Some(path) = &r.file {
        let mut bytes = std::fs::read(path).map_err(|e| SecretError::File {
            name: name.into(),
            path: path.clone(),
            reason: e.kind().to_string(),
        })?;
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        bytes
    } else {
        r.insecure_value.clone().unwrap_or_default().into_bytes()
    };
    if value.is_empty() {
        return Err(SecretError::Empty { name: name.into() });
    }
    Ok(Secret {
        name: name.into(),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_and_errors_never_show_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "s3cr3t-value\n").unwrap();
        let file = SecretRef {
            file: Some(path.display().to_string()),
            ..Default::default()
        };
        assert_eq!(resolve("key", &file).unwrap().value, b"s3cr3t-value");
        let missing = SecretRef {
            env: Some("ADSTREAM_TEST_NO_SUCH_VAR".into()),
            ..Default::default()
        };
        let err = resolve("key", &missing).unwrap_err().to_string();
        assert_eq!(
            err,
            "secret `key`: environment variable ADSTREAM_TEST_NO_SUCH_VAR is not set"
        );
        std::fs::write(&path, "").unwrap();
        assert!(matches!(
            resolve("key", &file),
            Err(SecretError::Empty { .. })
        ));
    }
}
