//! What the Kafka source and sink share: client settings, reaching the broker, and making
//! sure a topic exists (creating it when the pipeline asks to).

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long to wait for the broker when a pipeline starts.
const REACH_TIMEOUT: Duration = Duration::from_secs(10);

/// `create_topic = { partitions = 3 }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    #[serde(default = "one")]
    pub partitions: i32,
}

fn one() -> i32 {
    1
}

/// Client settings: the broker list and any librdkafka option the pipeline adds.
pub fn client_config(brokers: &str, options: &BTreeMap<String, String>) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    for (k, v) in options {
        c.set(k, v);
    }
    c
}

/// Checks that the broker answers and `topic` exists, creating it first if `create` says so.
pub async fn ensure_topic(
    brokers: &str,
    topic: &str,
    create: Option<&CreateTopic>,
    options: &BTreeMap<String, String>,
) -> Result<i32, String> {
    let config = client_config(brokers, options);
    if let Some(create) = create {
        let admin: AdminClient<DefaultClientContext> = config
            .create()
            .map_err(|e| format!("Kafka client for {brokers}: {e}"))?;
        let new = NewTopic::new(topic, create.partitions, TopicReplication::Fixed(1));
        let opts = AdminOptions::new()
            .operation_timeout(Some(REACH_TIMEOUT))
            .request_timeout(Some(REACH_TIMEOUT));
        let results = admin
            .create_topics([&new], &opts)
            .await
            .map_err(|e| format!("cannot reach the Kafka broker at {brokers}: {e}"))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(format!("creating topic `{name}` on {brokers}: {code}"));
                }
            }
        }
    }
    let (brokers, topic) = (brokers.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = config.create().map_err(|e| format!("Kafka client for {brokers}: {e}"))?;
        let meta = consumer
            .fetch_metadata(Some(&topic), REACH_TIMEOUT)
            .map_err(|e| format!("cannot reach the Kafka broker at {brokers}: {e}"))?;
        match meta.topics().iter().find(|t| t.name() == topic) {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(t.partitions().len() as i32),
            _ => Err(format!(
                "topic `{topic}` does not exist on {brokers}; create it (tansu topic create {topic} \
                 --broker tcp://{brokers} --partitions 3) or add create_topic = {{ partitions = 3 }}"
            )),
        }
    })
    .await
    .map_err(|e| e.to_string())?
}
