//! The `kafka` source: assigns itself every partition of the topic (no group rebalancing,
//! so a restarted host has its partitions at once, whatever the broker thinks of the
//! member that died) and starts each at the checkpoint's position, batches messages by
//! count and by time, and mirrors checkpointed positions into the group's committed offsets
//! for lag tools. A partition that has records waiting but delivers nothing for a while is
//! reported as stalled. Shared by the hosts of a consumer group (`shared = true`), it
//! subscribes instead and reads the partitions the group gives it (`group.rs`).

use super::group::{self, Group};
use super::{Health, Lag, Resume, Source, SourceError};
use crate::batch::{Position, RawBatch};
use crate::config::OnMissing;
use crate::config::source::{KafkaSourceConfig, Start};
use crate::connect::BoxFut;
use crate::connect::kafka::{client_config, ensure_topic};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Message, Offset, Statistics, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// When to look again while no record comes: soon while partitions are held (the group
/// waits for their release), else when the lag is due.
fn tick(group: Option<&Group>) -> Instant {
    let holding = group.is_some_and(Group::holding);
    Instant::now() + if holding { RELEASE_EVERY } else { LAG_EVERY }
}

fn start_offset(start: Start) -> Offset {
    match start {
        Start::Earliest => Offset::Beginning,
        Start::Latest => Offset::End,
    }
}

/// Silence after which a source with records waiting says it is stalled.
const STALL: Duration = Duration::from_secs(30);
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the lag is brought up to date while no record arrives.
const LAG_EVERY: Duration = Duration::from_secs(1);
/// How often a shared source looks whether the partitions it holds may go.
const RELEASE_EVERY: Duration = Duration::from_millis(20);

/// How often librdkafka reports the partitions' high watermarks, from which lag is known.
const STATS_INTERVAL_MS: &str = "1000";

/// The consumer's context: keeps each partition's high watermark from librdkafka's
/// statistics (no request of its own to the broker), and takes the group's rebalances when
/// the source is shared.
#[derive(Clone, Default)]
struct Context {
    highs: Arc<Mutex<BTreeMap<i32, i64>>>,
    group: Option<Arc<Group>>,
}

impl ClientContext for Context {
    fn stats(&self, statistics: Statistics) {
        let mut highs = self.highs.lock().expect("watermarks");
        for topic in statistics.topics.values() {
            for (p, part) in &topic.partitions {
                if *p >= 0 && part.hi_offset >= 0 {
                    highs.insert(*p, part.hi_offset);
                }
            }
        }
    }
}

impl ConsumerContext for Context {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        // Only a subscribed (shared) source has rebalances.
        if let Some(group) = &self.group {
            group.rebalance(consumer, err, tpl);
        }
    }
}

pub struct KafkaSource {
    topic: String,
    group: String,
    partitions: i32,
    consumer: StreamConsumer<Context>,
    context: Context,
    lag: Lag,
    batch_size: usize,
    flush_interval: Duration,
    /// Per partition, the offset after the last record delivered.
    next: BTreeMap<i32, i64>,
    health: Health,
    /// A record read after a rebalance, for the next batch (shared sources).
    carry: Option<(Vec<u8>, Position)>,
}

impl KafkaSource {
    pub async fn open(cfg: &KafkaSourceConfig, resume: &Resume) -> Result<Self, SourceError> {
        let partitions = ensure_topic(
            &cfg.brokers,
            &cfg.topic,
            cfg.create_topic.as_ref(),
            &cfg.options,
        )
        .await?;
        let mut defaults = vec![
            ("group.id", cfg.group.as_str()),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", cfg.start.name()),
            ("fetch.wait.max.ms", "100"),
            ("max.partition.fetch.bytes", "10485760"),
            ("statistics.interval.ms", STATS_INTERVAL_MS),
        ];
        let mut context = Context::default();
        if let Resume::Shared(claims) = resume {
            defaults.extend(group::DEFAULTS);
            let start = start_offset(cfg.start);
            context.group = Some(Arc::new(Group::new(&cfg.topic, claims.clone(), start)));
        }
        let config = client_config(&cfg.brokers, &defaults, &cfg.options)?;
        let consumer: StreamConsumer<Context> = config
            .create_with_context(context.clone())
            .map_err(|e| SourceError::Consumer(e.to_string()))?;
        let mut source = KafkaSource {
            topic: cfg.topic.clone(),
            group: cfg.group.clone(),
            partitions,
            consumer,
            context,
            lag: Lag::default(),
            batch_size: cfg.batch_size.get(),
            flush_interval: cfg.flush_interval.get().max(Duration::from_millis(1)),
            next: BTreeMap::new(),
            health: Health::default(),
            carry: None,
        };
        if source.context.group.is_some() {
            (source.consumer.subscribe(&[&cfg.topic])).map_err(|e| {
                SourceError::Consumer(format!("joining group `{}`: {e}", cfg.group))
            })?;
            return Ok(source);
        }
        let starts = source.starts(cfg.start, resume)?;
        source.assign(&starts)?;
        Ok(source)
    }

    /// Where each partition starts: the checkpoint's position, else (with no checkpoint)
    /// the start policy — unless the group has committed offsets, whose state is gone.
    fn starts(&self, start: Start, resume: &Resume) -> Result<Vec<(i32, Offset)>, SourceError> {
        let policy = start_offset(start);
        let at: BTreeMap<i32, i64> = match resume {
            Resume::At(positions) => positions.iter().map(|p| (p.partition, p.offset)).collect(),
            Resume::Shared(_) => BTreeMap::new(),
            Resume::Fresh(on_missing) => {
                let committed = self.committed()?;
                match (committed.is_empty(), on_missing) {
                    (true, _) | (false, OnMissing::Earliest) => BTreeMap::new(),
                    (false, OnMissing::Committed) => committed,
                    (false, OnMissing::Fail) => {
                        return Err(SourceError::StateMissing {
                            topic: self.topic.clone(),
                            group: self.group.clone(),
                        });
                    }
                }
            }
        };
        Ok((0..self.partitions)
            .map(|p| (p, at.get(&p).map_or(policy, |&o| Offset::Offset(o))))
            .collect())
    }

    /// The group's committed offsets, by partition.
    fn committed(&self) -> Result<BTreeMap<i32, i64>, SourceError> {
        let mut tpl = TopicPartitionList::new();
        for p in 0..self.partitions {
            tpl.add_partition(&self.topic, p);
        }
        let consumer = &self.consumer;
        let got = tokio::task::block_in_place(|| consumer.committed_offsets(tpl, BROKER_TIMEOUT))
            .map_err(|e| SourceError::Consumer(format!("reading committed offsets: {e}")))?;
        Ok(got
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect())
    }

    fn assign(&mut self, starts: &[(i32, Offset)]) -> Result<(), SourceError> {
        let mut tpl = TopicPartitionList::new();
        for (p, offset) in starts {
            tpl.add_partition_offset(&self.topic, *p, *offset)
                .map_err(|e| SourceError::Consumer(e.to_string()))?;
            if let Offset::Offset(o) = offset {
                self.next.insert(*p, *o);
            }
        }
        self.consumer
            .assign(&tpl)
            .map_err(|e| SourceError::Consumer(format!("assigning `{}`: {e}", self.topic)))
    }

    fn commit_error(&self, e: rdkafka::error::KafkaError) -> SourceError {
        SourceError::Commit {
            topic: self.topic.clone(),
            reason: e.to_string(),
        }
    }

    /// Records waiting per partition beyond what was delivered (known positions only).
    fn waiting(&self) -> Vec<(i32, i64)> {
        let consumer = &self.consumer;
        self.next
            .iter()
            .filter_map(|(&p, &next)| {
                let (_, high) = tokio::task::block_in_place(|| {
                    consumer.fetch_watermarks(&self.topic, p, BROKER_TIMEOUT)
                })
                .ok()?;
                (high > next).then_some((p, high - next))
            })
            .collect()
    }

    /// Records behind each partition's high watermark, as last reported.
    fn update_lag(&self) {
        let highs = self.context.highs.lock().expect("watermarks");
        let lag = self
            .next
            .iter()
            .filter_map(|(p, next)| Some((*p, (highs.get(p)? - next).max(0))));
        *self.lag.lock().expect("lag") = lag.collect();
    }

    /// After a silence: stalled if records are waiting, idle otherwise.
    fn check_stall(&self) {
        let waiting = self.waiting();
        let mut health = self.health.lock().expect("health");
        if waiting.is_empty() {
            *health = None;
            return;
        }
        let what = format!(
            "no record from `{}` for {} s while records wait on partitions {:?} (partition, count)",
            self.topic,
            STALL.as_secs(),
            waiting
        );
        if health.is_none() {
            tracing::error!(topic = %self.topic, "source stalled: {what}");
        }
        *health = Some(what);
    }

    /// Notes that a record of `partition` at `offset` was delivered.
    fn delivered(
        next: &mut BTreeMap<i32, i64>,
        health: &Health,
        topic: &str,
        partition: i32,
        offset: i64,
    ) {
        next.insert(partition, offset + 1);
        let mut health = health.lock().expect("health");
        if health.take().is_some() {
            tracing::info!(topic, "source recovered: records arrive again");
        }
    }
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        if let Some(group) = &self.context.group {
            group.close(&self.consumer);
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

    fn health(&self) -> Health {
        self.health.clone()
    }

    fn lag(&self) -> Lag {
        self.lag.clone()
    }

    fn next_batch(&mut self) -> BoxFut<'_, Result<Option<RawBatch>, SourceError>> {
        Box::pin(async move {
            let mut batch = RawBatch::with_capacity(self.batch_size, self.batch_size * 300);
            let mut deadline: Option<Instant> = None;
            let mut stall_at = Instant::now() + STALL;
            let group = self.context.group.clone();
            if let Some((payload, at)) = self.carry.take() {
                batch.push(&payload, at);
                deadline = Some(Instant::now() + self.flush_interval);
            }
            while batch.len() < self.batch_size {
                // Wait for the first message (saying so when records wait but none come;
                // the lag stays current meanwhile), then fill the batch for at most the
                // flush interval.
                let tick = tick(group.as_deref());
                let until = deadline.unwrap_or_else(|| stall_at.min(tick));
                let msg = tokio::time::timeout_at(until, self.consumer.recv()).await;
                // A rebalance ends the batch: the moves apply after what came before them.
                let moved = group::take_moves(group.as_deref(), &mut self.next, &mut batch)?;
                if let Some(group) = &group {
                    group.let_go(&self.consumer);
                }
                let msg = match msg {
                    Ok(m) => m,
                    Err(_) if deadline.is_some() || moved => break,
                    Err(_) if Instant::now() >= stall_at => {
                        self.check_stall();
                        stall_at = Instant::now() + STALL;
                        continue;
                    }
                    Err(_) => {
                        self.update_lag();
                        continue;
                    }
                };
                match msg {
                    Ok(m) => {
                        let at = Position {
                            partition: m.partition(),
                            offset: m.offset(),
                        };
                        Self::delivered(
                            &mut self.next,
                            &self.health,
                            &self.topic,
                            at.partition,
                            at.offset,
                        );
                        let payload = m.payload().unwrap_or_default();
                        if moved {
                            self.carry = Some((payload.to_vec(), at));
                            break;
                        }
                        batch.push(payload, at);
                        deadline.get_or_insert_with(|| Instant::now() + self.flush_interval);
                    }
                    Err(e) => tracing::warn!(topic = %self.topic, "kafka consumer: {e}"),
                }
                if moved {
                    break;
                }
            }
            self.update_lag();
            Ok(Some(batch))
        })
    }

    fn commit(&mut self, next: Vec<Position>) -> BoxFut<'_, Result<(), SourceError>> {
        Box::pin(async move {
            if next.is_empty() {
                // A cut with no position (nothing read yet): librdkafka calls an empty
                // commit an error (NoOffset).
                return Ok(());
            }
            let mut list = TopicPartitionList::new();
            for p in &next {
                list.add_partition_offset(&self.topic, p.partition, Offset::Offset(p.offset))
                    .map_err(|e| self.commit_error(e))?;
            }
            let consumer = &self.consumer;
            tokio::task::block_in_place(|| consumer.commit(&list, CommitMode::Sync))
                .map_err(|e| self.commit_error(e))
        })
    }
}
