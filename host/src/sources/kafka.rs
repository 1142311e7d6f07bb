//! The `kafka` source: a consumer-group member that batches messages by count and by time,
//! and commits offsets only when the pipeline says everything before them is durable.

use super::{Source, SourceError};
use crate::batch::{Position, RawBatch};
use crate::config::source::KafkaSourceConfig;
use crate::connect::BoxFut;
use crate::connect::kafka::{client_config, ensure_topic};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::time::Duration;
use tokio::time::Instant;

pub struct KafkaSource {
    topic: String,
    partitions: i32,
    consumer: StreamConsumer,
    batch_size: usize,
    flush_interval: Duration,
}

impl KafkaSource {
    pub async fn open(cfg: &KafkaSourceConfig) -> Result<Self, SourceError> {
        let partitions = ensure_topic(
            &cfg.brokers,
            &cfg.topic,
            cfg.create_topic.as_ref(),
            &cfg.options,
        )
        .await?;
        let defaults = [
            ("group.id", cfg.group.as_str()),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", cfg.start.name()),
            ("fetch.wait.max.ms", "100"),
            ("max.partition.fetch.bytes", "10485760"),
        ];
        let config = client_config(&cfg.brokers, &defaults, &cfg.options)?;
        let consumer: StreamConsumer = config
            .create()
            .map_err(|e| SourceError::Consumer(e.to_string()))?;
        consumer
            .subscribe(&[&cfg.topic])
            .map_err(|e| SourceError::Consumer(format!("subscribe to `{}`: {e}", cfg.topic)))?;
        Ok(KafkaSource {
            topic: cfg.topic.clone(),
            partitions,
            consumer,
            batch_size: cfg.batch_size.get(),
            flush_interval: cfg.flush_interval.get().max(Duration::from_millis(1)),
        })
    }
}

impl KafkaSource {
    fn commit_error(&self, e: rdkafka::error::KafkaError) -> SourceError {
        SourceError::Commit {
            topic: self.topic.clone(),
            reason: e.to_string(),
        }
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
                    .map_err(|e| self.commit_error(e))?;
            }
            let consumer = &self.consumer;
            tokio::task::block_in_place(|| consumer.commit(&list, CommitMode::Sync))
                .map_err(|e| self.commit_error(e))
        })
    }
}
