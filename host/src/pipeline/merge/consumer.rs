//! The merging host's reader of the partials topic: assigned its one partition from the
//! merge state's position, outside any consumer group (partition 0's claim says who
//! merges), committing nothing (the position is in partition 0's cut).

use super::Plan;
use crate::connect::kafka::client_config;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::time::Duration;

/// At most this many bytes of messages are taken at once, so that the merge between two
/// source batches stays short.
const MAX_POLL_BYTES: usize = 8 << 20;
/// At most this many messages at once.
const MAX_POLL_MESSAGES: usize = 1000;

pub struct Reader {
    consumer: BaseConsumer,
    topic: String,
}

impl Reader {
    /// Reads the partials topic from `from`.
    pub fn open(plan: &Plan, from: i64) -> Result<Reader, String> {
        let group = format!("{}.merge", plan.group);
        let defaults = [
            ("group.id", group.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("fetch.wait.max.ms", "50"),
        ];
        let why =
            |e: &dyn std::fmt::Display| format!("reading the partials topic {}: {e}", plan.topic);
        let config = client_config(&plan.brokers, &defaults, &plan.options).map_err(|e| why(&e))?;
        let consumer: BaseConsumer = config.create().map_err(|e| why(&e))?;
        let mut at = TopicPartitionList::new();
        at.add_partition_offset(&plan.topic, 0, Offset::Offset(from))
            .map_err(|e| why(&e))?;
        consumer.assign(&at).map_err(|e| why(&e))?;
        Ok(Reader {
            consumer,
            topic: plan.topic.clone(),
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The messages after the last taken, each with its offset: as many as are there, up
    /// to the bounds above, waiting at most `wait` for the first.
    pub fn poll(&self, wait: Duration) -> Vec<(i64, Vec<u8>)> {
        let (mut out, mut bytes, mut wait) = (Vec::new(), 0, wait);
        while out.len() < MAX_POLL_MESSAGES && bytes < MAX_POLL_BYTES {
            match self.consumer.poll(wait) {
                None => break,
                // librdkafka retries on its own; the error is the news, not the end.
                Some(Err(e)) => {
                    tracing::warn!("reading the partials topic: {e}");
                    break;
                }
                Some(Ok(m)) => {
                    let payload = m.payload().unwrap_or_default();
                    bytes += payload.len();
                    out.push((m.offset(), payload.to_vec()));
                    wait = Duration::ZERO;
                }
            }
        }
        out
    }
}
