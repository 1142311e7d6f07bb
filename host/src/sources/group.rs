//! The Kafka source of a pipeline shared by the hosts of a consumer group: the broker's
//! group coordinator splits the topic's partitions between them (cooperative-sticky, so a
//! rebalance moves only the partitions that must move), and librdkafka tells each host
//! through its rebalance callback.
//!
//! A partition given to this host is claimed first (`Claims`: the pipeline's checkpoint
//! store raises the partition's owner epoch, which fences the host that had it) and read
//! from its cut's position. Either way the move is queued for the source loop, which ends
//! its batch there, so that the processor applies each move between the records that came
//! before it and those after (`pipeline/moves.rs`). A partition taken away is held — the
//! group waits for this host's unassign call, which librdkafka allows outside the
//! callback — until its last cut is written, so that its next owner starts where this
//! host stopped. A partition lost (this host was too long silent) is let go at once: its
//! cut could only be refused.

use super::{Claimer, SourceError};
use crate::batch::{Move, RawBatch};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaResult;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Settings a shared source starts from (the pipeline's `options` may change each): a
/// dead host's partitions go elsewhere 10 s after its last heartbeat.
pub const DEFAULTS: [(&str, &str); 3] = [
    ("partition.assignment.strategy", "cooperative-sticky"),
    ("session.timeout.ms", "10000"),
    ("heartbeat.interval.ms", "1000"),
];

pub struct Group {
    pub topic: String,
    pub claims: Claimer,
    /// Where a partition with no cut starts.
    pub start: Offset,
    /// Moves the source loop has not seen yet, in order.
    moves: Mutex<Vec<Move>>,
    /// Why a partition given to this host could not be claimed: the source stops.
    failed: Mutex<Option<String>>,
    /// Partitions taken from this host, held until their last cut is written.
    held: Mutex<Option<(TopicPartitionList, std::time::Instant)>>,
    /// The consumer is closing: nothing is held any more (no cut comes).
    closing: AtomicBool,
    /// Whether anything above wants the source loop's attention (moves, a failure, held
    /// partitions): it looks after every record, so a quiet group costs one load.
    astir: AtomicBool,
}

impl Group {
    pub fn new(topic: &str, claims: Claimer, start: Offset) -> Self {
        Group {
            topic: topic.into(),
            claims,
            start,
            moves: Mutex::default(),
            failed: Mutex::default(),
            held: Mutex::default(),
            closing: AtomicBool::new(false),
            astir: AtomicBool::new(false),
        }
    }

    /// The source is closing: partitions held or taken from now on go at once (their
    /// last cuts were written when the pipeline stopped).
    pub fn close<K: ConsumerContext, C: Consumer<K>>(&self, consumer: &C) {
        self.closing.store(true, Ordering::Release);
        self.let_go(consumer);
    }

    /// Whether partitions are held: the source then looks often for their release.
    pub fn holding(&self) -> bool {
        self.held.lock().expect("held").is_some()
    }

    /// Lets the held partitions go once their last cuts are written.
    pub fn let_go<K: ConsumerContext, C: Consumer<K>>(&self, consumer: &C) {
        if !self.astir.load(Ordering::Acquire) {
            return;
        }
        let mut held = self.held.lock().expect("held");
        let closing = self.closing.load(Ordering::Acquire);
        if held.is_none() || !(closing || self.claims.0.released()) {
            return;
        }
        let (tpl, since) = held.take().expect("held");
        self.claims.0.let_go(since.elapsed());
        let held_ms = since.elapsed().as_millis() as u64;
        tracing::info!(topic = %self.topic, partitions = ?partitions(&tpl), held_ms, "partitions released to the group");
        if let Err(e) = unassign(consumer, &tpl) {
            self.fail(format!("releasing partitions: {e}"));
        }
    }

    /// The moves since the last call (cleared of the flag first, so that a move noted
    /// meanwhile raises it again).
    fn drain(&self) -> Vec<Move> {
        self.astir.store(false, Ordering::Release);
        let moves = std::mem::take(&mut *self.moves.lock().expect("moves"));
        if self.holding() || self.failed().is_some() {
            self.astir.store(true, Ordering::Release);
        }
        moves
    }

    pub fn failed(&self) -> Option<String> {
        self.failed.lock().expect("failed").clone()
    }

    /// librdkafka's rebalance callback, on the thread that polls the consumer.
    pub fn rebalance<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let partitions = partitions(tpl);
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                for &p in &partitions {
                    let at = self.start_of(p);
                    if let Err(e) = tpl.set_partition_offset(&self.topic, p, at) {
                        self.fail(format!("partition {p}: {e}"));
                    }
                }
                tracing::info!(topic = %self.topic, ?partitions, "partitions assigned to this host");
                self.note(partitions.iter().map(|&p| Move::Assigned(p)));
                match cooperative {
                    true => consumer.incremental_assign(tpl),
                    false => consumer.assign(tpl),
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let lost = consumer.assignment_lost();
                tracing::info!(topic = %self.topic, ?partitions, lost, "partitions taken from this host");
                let hold = !lost && !self.closing.load(Ordering::Acquire);
                if hold {
                    self.claims.0.revoking(&partitions);
                }
                self.note(partitions.iter().map(|&p| Move::Revoked(p)));
                match hold {
                    true => {
                        let since = std::time::Instant::now();
                        *self.held.lock().expect("held") = Some((tpl.clone(), since));
                        self.astir.store(true, Ordering::Release);
                        Ok(())
                    }
                    false => unassign(consumer, tpl),
                }
            }
            other => {
                tracing::error!(topic = %self.topic, "consumer group rebalance failed: {other:?}");
                KafkaResult::Ok(())
            }
        };
        if let Err(e) = result {
            self.fail(format!("taking the partitions the group gave: {e}"));
        }
    }

    /// Where partition `p` starts: its cut's position, else the start policy.
    fn start_of(&self, p: i32) -> Offset {
        match self.claims.0.claim(p) {
            Ok(Some(next)) => Offset::Offset(next),
            Ok(None) => self.start,
            Err(e) => {
                self.fail(format!("claiming partition {p}: {e}"));
                self.start
            }
        }
    }

    fn note(&self, moves: impl Iterator<Item = Move>) {
        self.moves.lock().expect("moves").extend(moves);
        self.astir.store(true, Ordering::Release);
    }

    fn fail(&self, why: String) {
        tracing::error!(topic = %self.topic, "{why}");
        self.failed.lock().expect("failed").get_or_insert(why);
        self.astir.store(true, Ordering::Release);
    }
}

fn partitions(tpl: &TopicPartitionList) -> Vec<i32> {
    tpl.elements().iter().map(|e| e.partition()).collect()
}

fn unassign<K: ConsumerContext, C: Consumer<K>>(
    consumer: &C,
    tpl: &TopicPartitionList,
) -> KafkaResult<()> {
    match matches!(
        consumer.rebalance_protocol(),
        RebalanceProtocol::Cooperative
    ) {
        true => consumer.incremental_unassign(tpl),
        false => consumer.unassign(),
    }
}

/// The group's moves since the last look (none for a source that is not shared), taken
/// into `batch`; the partitions taken away are no longer followed. A claim that failed
/// stops the source.
pub fn take_moves(
    group: Option<&Group>,
    next: &mut BTreeMap<i32, i64>,
    batch: &mut RawBatch,
) -> Result<bool, SourceError> {
    let Some(group) = group.filter(|g| g.astir.load(Ordering::Acquire)) else {
        return Ok(false);
    };
    if let Some(why) = group.failed() {
        return Err(SourceError::Consumer(why));
    }
    let moves = group.drain();
    for m in &moves {
        if let Move::Revoked(p) = m {
            next.remove(p);
        }
    }
    batch.moves.extend(&moves);
    Ok(!moves.is_empty())
}
