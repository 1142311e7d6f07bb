//! The one Kafka client setup the source and sinks share: client settings (with secret
//! options resolved), reaching the broker, and making sure a topic exists (creating it
//! when the pipeline asks to).

use crate::config::SecretError;
use crate::config::kafka::{CreateTopic, KafkaOptions, OptionValue};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

/// How long to wait for the broker when a pipeline starts.
const REACH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a Kafka client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("option `{key}`: {reason}")]
    Option { key: String, reason: String },
    #[error("cannot reach the Kafka broker at {brokers}: {reason}")]
    Unreachable { brokers: String, reason: String },
    #[error("creating topic `{topic}` on {brokers}: {reason}")]
    Create {
        topic: String,
        brokers: String,
        reason: String,
    },
    #[error(
        "topic `{topic}` does not exist on {brokers}; create it (tansu topic create {topic} \
         --broker tcp://{brokers} --partitions 3) or add create_topic = {{ partitions = 3 }}"
    )]
    NoTopic { topic: String, brokers: String },
}

/// Client settings: the broker list, then `defaults`, then the pipeline's own options.
pub fn client_config(
    brokers: &str,
    defaults: &[(&str, &str)],
    options: &KafkaOptions,
) -> Result<ClientConfig, KafkaError> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    for (k, v) in defaults {
        c.set(*k, *v);
    }
    for (k, v) in &options.0 {
        match v {
            OptionValue::Plain(v) => c.set(k, v),
            OptionValue::Secret(r) => c.set(k, r.resolve(k)?.text()?),
        };
    }
    Ok(c)
}

/// Checks every option with librdkafka itself, without connecting (for `adstream check`).
pub fn check_options(options: &KafkaOptions) -> Vec<KafkaError> {
    options
        .0
        .iter()
        .filter_map(|(k, v)| {
            let mut c = ClientConfig::new();
            let value = match v {
                OptionValue::Plain(v) => v.as_str(),
                // The value is not read here: the secret may exist only where it runs.
                OptionValue::Secret(_) => return None,
            };
            c.set(k, value);
            c.create_native_config().err().map(|e| KafkaError::Option {
                key: k.clone(),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Checks that the broker answers and `topic` exists, creating it first if `create` says
/// so. Returns the topic's partition count.
pub async fn ensure_topic(
    brokers: &str,
    topic: &str,
    create: Option<&CreateTopic>,
    options: &KafkaOptions,
) -> Result<i32, KafkaError> {
    let config = client_config(brokers, &[], options)?;
    let unreachable = |e: &dyn std::fmt::Display| KafkaError::Unreachable {
        brokers: brokers.into(),
        reason: e.to_string(),
    };
    if let Some(create) = create {
        let admin: AdminClient<DefaultClientContext> =
            config.create().map_err(|e| unreachable(&e))?;
        let partitions = i32::try_from(create.partitions.get()).unwrap_or(i32::MAX);
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        let opts = AdminOptions::new()
            .operation_timeout(Some(REACH_TIMEOUT))
            .request_timeout(Some(REACH_TIMEOUT));
        let results = admin
            .create_topics([&new], &opts)
            .await
            .map_err(|e| unreachable(&e))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(KafkaError::Create {
                        topic: name,
                        brokers: brokers.into(),
                        reason: code.to_string(),
                    });
                }
            }
        }
    }
    let (brokers, topic) = (brokers.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || partitions(&config, &brokers, &topic))
        .await
        .map_err(|e| KafkaError::Unreachable {
            brokers: String::new(),
            reason: e.to_string(),
        })?
}

fn partitions(config: &ClientConfig, brokers: &str, topic: &str) -> Result<i32, KafkaError> {
    let unreachable = |e: &dyn std::fmt::Display| KafkaError::Unreachable {
        brokers: brokers.into(),
        reason: e.to_string(),
    };
    let consumer: BaseConsumer = config.create().map_err(|e| unreachable(&e))?;
    let meta = consumer
        .fetch_metadata(Some(topic), REACH_TIMEOUT)
        .map_err(|e| unreachable(&e))?;
    match meta.topics().iter().find(|t| t.name() == topic) {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
            Ok(t.partitions().len() as i32)
        }
        _ => Err(KafkaError::NoTopic {
            topic: topic.into(),
            brokers: brokers.into(),
        }),
    }
}
