//! The one Kafka client setup the source and sinks share: client settings (with secret
//! options resolved), reaching the broker, and making sure a topic exists (creating it
//! when the pipeline asks to).

use crate::config::SecretError;
use crate::config::kafka::{CreateTopic, KafkaOptions, OptionValue};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::types::RDKafkaErrorCode;
use std::sync::{Arc, Mutex};
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
        "topic `{topic}` does not exist on {brokers}; create it (e.g. kafka-topics.sh --create \
         --topic {topic} --partitions 3) or add create_topic = {{ partitions = 3 }}"
    )]
    NoTopic { topic: String, brokers: String },
}

/// The last error librdkafka reported on its connections — a refused certificate, a failed
/// authentication — which its timeouts do not say; kept to explain a start that failed.
#[derive(Clone, Default)]
pub struct LastError(Arc<Mutex<Option<String>>>);

impl ClientContext for LastError {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        *self.0.lock().expect("last error") = Some(format!("{error}: {reason}"));
    }

    /// librdkafka tells of a failed TLS handshake or authentication in its log (not all
    /// such failures reach `error`), from its own threads.
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        if matches!(level, L::Emerg | L::Alert | L::Critical | L::Error) {
            *self.0.lock().expect("last error") = Some(message.to_string());
        }
        tracing::debug!("librdkafka: {fac} {message}");
    }
}

impl ConsumerContext for LastError {}

impl LastError {
    /// `outer`, with what the broker connection said last, if anything.
    pub fn explain(&self, outer: &dyn std::fmt::Display) -> String {
        match &*self.0.lock().expect("last error") {
            Some(last) => format!("{outer}; the connection said: {last}"),
            None => outer.to_string(),
        }
    }
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
    // First what the broker says of the topic: a broker that cannot be reached (refused
    // certificate, failed authentication) fails here, with the reason it gave.
    match described(&config, brokers, topic).await {
        Err(KafkaError::NoTopic { .. }) if create.is_some() => {}
        found => return found,
    }
    if let Some(create) = create {
        match create_topic(&config, brokers, topic, create).await {
            // Another client may have created it at the same moment (hosts starting
            // together): nisshi 0.8.1 answered that race with an unknown error rather than
            // TOPIC_ALREADY_EXISTS (seen in CI). The topic being there is what counts.
            Err(e @ KafkaError::Create { .. }) => {
                return described(&config, brokers, topic).await.map_err(|_| e);
            }
            other => other?,
        }
    }
    described(&config, brokers, topic).await
}

async fn described(config: &ClientConfig, brokers: &str, topic: &str) -> Result<i32, KafkaError> {
    let (config, brokers, topic) = (config.clone(), brokers.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || partitions(&config, &brokers, &topic))
        .await
        .map_err(|e| KafkaError::Unreachable {
            brokers: String::new(),
            reason: e.to_string(),
        })?
}

async fn create_topic(
    config: &ClientConfig,
    brokers: &str,
    topic: &str,
    create: &CreateTopic,
) -> Result<(), KafkaError> {
    let last = LastError::default();
    let unreachable = |e: &dyn std::fmt::Display| KafkaError::Unreachable {
        brokers: brokers.into(),
        reason: last.explain(e),
    };
    let admin: AdminClient<LastError> = config
        .create_with_context(last.clone())
        .map_err(|e| unreachable(&e))?;
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
    Ok(())
}

fn partitions(config: &ClientConfig, brokers: &str, topic: &str) -> Result<i32, KafkaError> {
    let last = LastError::default();
    let consumer: BaseConsumer<LastError> =
        config
            .create_with_context(last.clone())
            .map_err(|e| KafkaError::Unreachable {
                brokers: brokers.into(),
                reason: e.to_string(),
            })?;
    let meta = match consumer.fetch_metadata(Some(topic), REACH_TIMEOUT) {
        Ok(meta) => meta,
        Err(e) => {
            // librdkafka's log of the failed connection waits in the client's queue.
            let _ = consumer.poll(Duration::from_millis(100));
            return Err(KafkaError::Unreachable {
                brokers: brokers.into(),
                reason: last.explain(&e),
            });
        }
    };
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
