//! Settings every Kafka client of a pipeline shares (source and sinks): the broker list,
//! extra librdkafka options, and whether to create a missing topic. Options that carry
//! credentials (`sasl.password`, `ssl.key.password`, ...) must be secret references.

use super::secret::SecretRef;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::num::NonZeroU32;

/// `create_topic = { partitions = 3 }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    #[serde(default = "one")]
    pub partitions: NonZeroU32,
}

fn one() -> NonZeroU32 {
    NonZeroU32::MIN
}

/// One librdkafka option: plain text, or a secret reference.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    Plain(String),
    Secret(SecretRef),
}

/// `options = { "fetch.min.bytes" = "1000000", "sasl.password" = { env = "KAFKA_PW" } }`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KafkaOptions(pub BTreeMap<String, OptionValue>);

/// Whether librdkafka option `key` carries a credential.
pub fn is_sensitive(key: &str) -> bool {
    [
        "password",
        "secret",
        "jaas",
        "ssl.key.pem",
        "oauthbearer.config",
    ]
    .iter()
    .any(|s| key.contains(s))
}

impl<'de> Deserialize<'de> for KafkaOptions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Plain(String),
            Secret(SecretRef),
        }
        let raw = BTreeMap::<String, Raw>::deserialize(d)?;
        let mut out = BTreeMap::new();
        for (key, value) in raw {
            let value = match value {
                Raw::Plain(_) if is_sensitive(&key) => {
                    return Err(serde::de::Error::custom(format!(
                        "option `{key}` carries a credential; give it as a secret, e.g. \
                         \"{key}\" = {{ env = \"KAFKA_PASSWORD\" }}"
                    )));
                }
                Raw::Plain(v) => OptionValue::Plain(v),
                Raw::Secret(r) => OptionValue::Secret(r),
            };
            out.insert(key, value);
        }
        Ok(KafkaOptions(out))
    }
}
