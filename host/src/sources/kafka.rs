//! The `kafka` source: a consumer-group member that batches messages by count and by time,
//! and commits offsets only when the pipeline says everything before them is durable.

use super::{BoxFut, Position, RawBatch, Source, SourceError};
use crate::kafka::{CreateTopic, client_config, ensure_topic};
use adstream_sdk::time::parse_duration_ms;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// `[source] kind = "kafka"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    pub kind: String,
    pub brokers: String,
    pub topic: String,
    /// Consumer group; members of a group share the topic's partitions.
    pub group: String,
    /// Where a group with no committed offset starts: `earliest` or `latest`.
    #[serde(default = "earliest")]
    pub start: String,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Longest a batch waits to fill up.
    #[serde(default = "default_flush")]
    pub flush_interval: String,
    pub create_topic: Option<CreateTopic>,
    /// Extra librdkafka consumer settings.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

fn earliest() -> String {
    "earliest".into()
}
fn default_batch() -> usize {
    5000
}
fn default_flush() -> String {
    "200ms".into()
}

pub struct KafkaSource {
    topic: String,
    partitions: i32,
    consumer: StreamConsumer,
    batch_size: usize,
    flush_interval: Duration,
}

impl KafkaSource {
    pub async fn open(cfg: &KafkaSourceConfig) -> Result<Self, SourceError> {
        let bad = |m: String| SourceError::Config(format!("[source] kafka: {m}"));
        if cfg.start != "earliest" && cfg.start != "latest" {
            return Err(bad(format!(
                "start = {:?} (use \"earliest\" or \"latest\")",
                cfg.start
            )));
        }
        let flush = parse_duration_ms(&cfg.flush_interval)
            .map_err(|e| bad(format!("flush_interval: {e}")))?;
        let partitions = ensure_topic(
            &cfg.brokers,
            &cfg.topic,
            cfg.create_topic.as_ref(),
            &cfg.options,
        )
        .await
        .map_err(SourceError::Unavailable)?;
        let mut config = client_config(&cfg.brokers, &BTreeMap::new());
        config
            .set("group.id", &cfg.group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", &cfg.start)
            .set("fetch.wait.max.ms", "100")
            .set("max.partition.fetch.bytes", "10485760");
        for (k, v) in &cfg.options {
            config.set(k, v);
        }
        let consumer: StreamConsumer = config.create().map_err(|e| bad(e.to_string()))?;
        consumer
            .subscribe(&[&cfg.topic])
            .map_err(|e| bad(format!("subscribe to `{}`: {e}", cfg.topic)))?;
        Ok(KafkaSource {
            topic: cfg.topic.clone(),
            partitions,
            consumer,
            batch_size: cfg.batch_size.max(1),
            flush_interval: Duration::from_millis(flush.max(1) as u64),
        })
    }
}

impl Source for KafkaSource {
    fn name(&self) -> &str {
        &self.topic
    }

    fn partitions(&self) -> Vec<i32> {
        (0..self.partitions).collect()
    }

    fn next_batch(&mut self) -> BoxFut<'_, Result<Option<RawBatch>, SourceError>> {
        Box::pin(async move {
            let mut batch = RawBatch::with_capacity(self.batch_size, self.batch_size * 300);
            let mut deadline: Option<Instant> = None;
            while batch.len() < self.batch_size {
                let recv = self.consumer.recv();
                let msg = match deadline {
                    // Wait as long as it takes for the first message, then fill the batch
                    // for at most the flush interval.
                    None => recv.await,
                    Some(d) => match tokio::time::timeout_at(d, recv).await {
                        Ok(m) => m,
                        Err(_) => break,
                    },
                };
                match msg {
                    Ok(m) => {
                        let at = Position {
                            partition: m.partition(),
                            offset: m.offset(),
                        };
                        batch.push(m.payload().unwrap_or_default(), at);
                        deadline.get_or_insert_with(|| Instant::now() + self.flush_interval);
                    }
                    Err(e) => tracing::warn!(topic = %self.topic, "kafka consumer: {e}"),
                }
            }
            Ok(Some(batch))
        })
    }

    fn commit(&mut self, upto: Vec<Position>) -> BoxFut<'_, Result<(), SourceError>> {
        Box::pin(async move {
            let mut list = TopicPartitionList::new();
            for p in &upto {
                // Kafka's committed offset is the next one to read.
                list.add_partition_offset(&self.topic, p.partition, Offset::Offset(p.offset + 1))
                    .map_err(|e| SourceError::Commit(e.to_string()))?;
            }
            let consumer = &self.consumer;
            tokio::task::block_in_place(|| consumer.commit(&list, CommitMode::Sync)).map_err(|e| {
                SourceError::Commit(format!("committing offsets of `{}`: {e}", self.topic))
            })
        })
    }
}
