//! What a dead letter keeps of personal fields (`[privacy]`, and the `[schema]` fields
//! marked `personal = true`). Applied to every dead letter as it leaves the pipeline —
//! to its sink and to the dashboard — whichever stage made it: its payload is read as a
//! JSON object, personal fields are redacted or hashed, and their values are cut out of
//! the error text too (a decoder or a plugin may quote the value it refused).

use crate::config::PipelineConfig;
use crate::config::privacy::PayloadPolicy;
use hmac::{KeyInit, Mac};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// Shortest `hash` key: as pii-hash's.
const MIN_KEY_BYTES: usize = 16;

/// What a redacted value reads.
pub const REDACTED: &str = "[personal]";

/// A pipeline's policy, with its key absorbed.
#[derive(Clone, Default)]
pub struct Privacy {
    policy: PayloadPolicy,
    personal: Vec<String>,
    /// The fields the schema decodes: a record that did not decode keeps only these.
    schema: Vec<String>,
    key: Option<hmac::Hmac<sha2::Sha256>>,
}

impl std::fmt::Debug for Privacy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Privacy({:?}, personal {:?})",
            self.policy, self.personal
        )
    }
}

/// What a dead letter keeps.
pub struct Kept<'a> {
    pub payload: Cow<'a, str>,
    pub error: Cow<'a, str>,
}

impl Privacy {
    /// `key` is needed by `hash` (the config check makes sure it is there).
    pub fn new(
        policy: PayloadPolicy,
        personal: Vec<String>,
        schema: Vec<String>,
        key: Option<&[u8]>,
    ) -> Privacy {
        let key = key.map(|k| {
            hmac::Hmac::<sha2::Sha256>::new_from_slice(k).expect("HMAC takes keys of any length")
        });
        Privacy {
            policy,
            personal,
            schema,
            key,
        }
    }

    /// The policy of a pipeline file: its `[privacy]` and its schema's personal fields,
    /// with the key read (a key left unread by `check --no-environment` is a placeholder).
    pub fn of(cfg: &PipelineConfig) -> Result<Privacy, String> {
        let fields = &cfg.schema.fields;
        let personal = fields.iter().filter(|f| f.personal).map(|f| f.name.clone());
        let schema = fields.iter().map(|f| f.name.clone()).collect();
        let key = match &cfg.privacy.key {
            None => None,
            Some(k) => match k.resolve("privacy.key") {
                Ok(v) if v.bytes().len() < MIN_KEY_BYTES => {
                    return Err(format!(
                        "[privacy] key is shorter than {MIN_KEY_BYTES} bytes: hashes of short ids could be reversed by trying every id"
                    ));
                }
                Ok(v) => Some(v.into_bytes()),
                Err(e) if e.not_read() => Some(crate::config::secret::PLACEHOLDER.to_vec()),
                Err(e) => return Err(format!("[privacy] {e}")),
            },
        };
        Ok(Privacy::new(
            cfg.privacy.dead_letters,
            personal.collect(),
            schema,
            key.as_deref(),
        ))
    }

    /// Keeps everything (no field is personal): what tests and replays without a pipeline
    /// file use.
    pub fn keep_all() -> Privacy {
        Privacy::default()
    }

    /// Whether anything is changed at all.
    pub fn protects(&self) -> bool {
        !self.personal.is_empty() && self.policy != PayloadPolicy::Raw
    }

    /// What a dead letter with `payload` and `error` keeps. `undecoded`: the payload is a
    /// raw record that did not decode, of which only the schema's fields are kept.
    pub fn apply<'a>(&self, payload: &'a str, error: &'a str, undecoded: bool) -> Kept<'a> {
        if !self.protects() {
            return Kept {
                payload: payload.into(),
                error: error.into(),
            };
        }
        let Ok(mut object) = serde_json::from_str::<Map<String, Value>>(payload) else {
            // Not an object: its personal fields cannot be found, so none of it is kept.
            let note = if payload.is_empty() {
                ""
            } else {
                " (payload withheld: not a JSON object, so its personal fields cannot be found)"
            };
            return Kept {
                payload: "".into(),
                error: format!("{error}{note}").into(),
            };
        };
        if undecoded {
            object.retain(|k, _| self.schema.iter().any(|s| s == k));
        }
        let mut error = Cow::Borrowed(error);
        for field in &self.personal {
            let Some(value) = object.get_mut(field).filter(|v| !v.is_null()) else {
                continue;
            };
            let text = match &mut *value {
                Value::String(s) => std::mem::take(s),
                other => other.to_string(),
            };
            let replacement = self.replace(&text);
            if !text.is_empty() && error.contains(&text) {
                error = error.replace(&text, &replacement).into();
            }
            *value = Value::String(replacement);
        }
        let payload = match self.policy {
            PayloadPolicy::Position => String::new(),
            _ => Value::Object(object).to_string(),
        };
        Kept {
            payload: payload.into(),
            error,
        }
    }

    fn replace(&self, value: &str) -> String {
        match (&self.policy, &self.key) {
            (PayloadPolicy::Hash, Some(key)) => hash_hex(key, value),
            _ => REDACTED.to_string(),
        }
    }
}

/// The first 16 bytes of HMAC-SHA256 in lowercase hex: pii-hash's default output, so a
/// hashed id in a dead letter equals the one stored for the same key.
fn hash_hex(key: &hmac::Hmac<sha2::Sha256>, value: &str) -> String {
    let mut mac = key.clone();
    mac.update(value.as_bytes());
    let digest = mac.finalize().into_bytes();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn privacy(policy: PayloadPolicy) -> Privacy {
        Privacy::new(
            policy,
            vec!["user_id".into(), "ip".into()],
            vec!["user_id".into(), "ip".into(), "country".into()],
            Some(b"0123456789abcdef0123456789abcdef"),
        )
    }

    const ROW: &str = r#"{"user_id":"u-4711","ip":"203.0.113.9","country":"KR"}"#;

    #[test]
    fn personal_values_leave_neither_payload_nor_error_in_clear() {
        for policy in [
            PayloadPolicy::Redact,
            PayloadPolicy::Hash,
            PayloadPolicy::Position,
        ] {
            let kept = privacy(policy).apply(ROW, "bad ip 203.0.113.9 of u-4711", false);
            for secret in ["u-4711", "203.0.113.9"] {
                assert!(
                    !kept.payload.contains(secret),
                    "{policy:?}: {}",
                    kept.payload
                );
                assert!(!kept.error.contains(secret), "{policy:?}: {}", kept.error);
            }
        }
        let redacted = privacy(PayloadPolicy::Redact).apply(ROW, "", false);
        assert_eq!(
            redacted.payload,
            r#"{"country":"KR","ip":"[personal]","user_id":"[personal]"}"#
        );
        assert_eq!(
            privacy(PayloadPolicy::Position)
                .apply(ROW, "", false)
                .payload,
            ""
        );
    }

    #[test]
    fn a_hash_is_the_keyed_hmac_pii_hash_stores() {
        let kept = privacy(PayloadPolicy::Hash).apply(ROW, "", false);
        let v: Value = serde_json::from_str(&kept.payload).unwrap();
        let key = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"0123456789abcdef0123456789abcdef")
            .unwrap();
        assert_eq!(v["user_id"], hash_hex(&key, "u-4711"));
        assert_eq!(v["user_id"].as_str().unwrap().len(), 32);
        assert_eq!(v["country"], "KR");
    }

    #[test]
    fn a_record_that_is_no_object_is_withheld_and_an_undecoded_one_keeps_only_the_schema() {
        let truncated = r#"{"user_id":"u-4711","ip":"203.0"#;
        let kept = privacy(PayloadPolicy::Redact).apply(truncated, "invalid event", true);
        assert_eq!(kept.payload, "");
        assert!(kept.error.contains("payload withheld"), "{}", kept.error);
        let extra = r#"{"user_id":"u-4711","email":"a@b.c","country":"KR"}"#;
        let kept = privacy(PayloadPolicy::Redact).apply(extra, "", true);
        assert!(!kept.payload.contains("a@b.c"), "{}", kept.payload);
        assert!(kept.payload.contains("KR"));
    }

    #[test]
    fn raw_or_no_personal_field_keeps_everything() {
        let kept = privacy(PayloadPolicy::Raw).apply(ROW, "x u-4711", false);
        assert_eq!((&*kept.payload, &*kept.error), (ROW, "x u-4711"));
        let kept = Privacy::keep_all().apply("not json", "e", true);
        assert_eq!((&*kept.payload, &*kept.error), ("not json", "e"));
    }
}
